//! Reliability under faults and crashes: a nightly `spotcost run` never loses, doubles or invents a
//! dollar. Each harness drives the binary the way cron does (a config file, `SPOTCOST_NOW`, the
//! simulator's `today` set to the same night) and compares the data dir with a fault-free,
//! uninterrupted run's: random transient faults at 5, 20 and 50 %, a small rate limit, SIGKILL at
//! seeded points of every stage, and a full or read-only data dir. Each prints one figures line
//! (`cargo test --release --test it reliability -- --nocapture` shows them).
//!
//! The crash harness tries 8 kill points by default; the long form tries as many as asked:
//! `SPOTCOST_KILL_POINTS=60 cargo test --release --test it reliability::crash -- --nocapture`.
//!
//! No restatement here (`restatement_days = 0`): a past day's data never changes, so the last
//! fault-free night's lake holds the one right version of every partition any night can write.
#![cfg(unix)]

use crate::support::*;
use chrono::NaiveDate;
use spotcost::sim::rng::SplitMix64;
use spotcost::sim::{SimConfig, SimServer, DEFAULT_TOKEN};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Files under a folder with their bytes, by relative path.
type Files = BTreeMap<String, Vec<u8>>;
type WatermarkMap = BTreeMap<String, NaiveDate>;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// 02:15 UTC on `night`, as `SPOTCOST_NOW`.
fn now_of(night: &str) -> String {
    format!("{night}T02:15:00Z")
}

/// A config file beside `data_dir`'s folder, named after it.
fn write_config(dir: &Path, data_dir: &Path, settings: &str) -> PathBuf {
    let path = dir.join(format!(
        "{}.toml",
        data_dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n{settings}",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    path
}

fn run_command(url: &str, config: &Path, night: &str) -> Command {
    spotcost(
        &["run", "--config", &config.display().to_string()],
        &[
            ("SPOTINST_TOKEN", DEFAULT_TOKEN),
            ("SPOTINST_API_URL", url),
            ("SPOTCOST_NOW", &now_of(night)),
        ],
    )
}

/// `spotcost run` as of `night`, with the simulator's today set to it.
async fn run_night(server: &SimServer, config: &Path, night: &str) -> Output {
    server.set_today(day(night));
    output(run_command(&server.url(), config, night)).await
}

fn files_under(folder: &Path) -> Files {
    if folder.exists() {
        snapshot_tree(folder).into_iter().collect()
    } else {
        Files::new()
    }
}

/// The lake's visible files (a hidden `.…tmp-…` file is a writer's, never a partition).
fn lake_of(data_dir: &Path) -> Files {
    files_under(&data_dir.join("lake"))
        .into_iter()
        .filter(|(path, _)| !path.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect()
}

fn warehouse_bytes(data_dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(data_dir.join("warehouse.duckdb")).ok()
}

fn watermarks_of(data_dir: &Path) -> WatermarkMap {
    let Ok(text) = std::fs::read_to_string(data_dir.join("state/watermarks.json")) else {
        return WatermarkMap::new();
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["entries"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| (key.clone(), day(value.as_str().unwrap())))
        .collect()
}

/// Every path under `dir`, relative, symlinks not followed.
fn all_paths(dir: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                stack.push(path.clone());
            }
            paths.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    paths.sort();
    paths
}

fn is_temporary(path: &str) -> bool {
    path.rsplit('/').next().unwrap_or("").contains(".tmp-")
}

fn is_hidden(path: &str) -> bool {
    path.rsplit('/').next().unwrap_or("").starts_with('.')
}

/// Temporary files of any writer, hidden or not.
fn temporary_files(data_dir: &Path) -> Vec<String> {
    all_paths(data_dir)
        .into_iter()
        .filter(|path| is_temporary(path))
        .collect()
}

/// Temporary files a reader (a `ls`, a glob, a browser on the reports) could take for real ones.
fn visible_temporary_files(data_dir: &Path) -> Vec<String> {
    all_paths(data_dir)
        .into_iter()
        .filter(|path| (is_temporary(path) || path.contains("tmp")) && !is_hidden(path))
        .collect()
}

fn file_names(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The one file of `folder` not in `before`.
fn new_file(folder: &Path, before: &BTreeSet<String>) -> PathBuf {
    let added: Vec<String> = file_names(folder).difference(before).cloned().collect();
    assert_eq!(
        added.len(),
        1,
        "one new file in {}: {added:?}",
        folder.display()
    );
    folder.join(&added[0])
}

/// Copies a data dir, symlinks (`reports/latest`) as symlinks.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// One dataset × scope of a run, from `DIR/state/run_items/<run id>.parquet`.
#[derive(Debug)]
struct ItemRow {
    dataset: String,
    account: String,
    first_day: Option<NaiveDate>,
    days_landed: i64,
    error: Option<String>,
}

impl ItemRow {
    fn key(&self) -> String {
        format!("{}/{}", self.dataset, self.account)
    }
}

fn item_rows(file: &Path) -> Vec<ItemRow> {
    let db = duckdb();
    let sql = format!(
        "select dataset, account_id, first_day::varchar, days_landed, error from read_parquet('{}')",
        file.display()
    );
    let mut statement = db.prepare(&sql).unwrap();
    statement
        .query_map([], |row| {
            Ok(ItemRow {
                dataset: row.get(0)?,
                account: row.get(1)?,
                first_day: row.get::<_, Option<String>>(2)?.map(|d| day(&d)),
                days_landed: row.get(3)?,
                error: row.get(4)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// status, failed_items and error of the one run in `DIR/state/runs/<run id>.parquet`.
fn run_row(file: &Path) -> (String, i64, String) {
    duckdb()
        .query_row(
            &format!(
                "select status, failed_items, coalesce(error, '') from read_parquet('{}')",
                file.display()
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
}

/// The (dataset, account) of every item the log reports as failed (ERROR inside its span).
fn logged_failures(stderr: &str) -> BTreeSet<(String, String)> {
    const SPAN: &str = "ERROR extract{dataset=\"";
    stderr
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(SPAN)? + SPAN.len()..];
            let (dataset, rest) = rest.split_once('"')?;
            let account = rest.trim_start().strip_prefix("account=")?;
            let account = &account[..account.find('}')?];
            Some((dataset.to_owned(), account.to_owned()))
        })
        .collect()
}

fn lake_path(dataset: &str, day: NaiveDate, scope: &str) -> String {
    format!("{dataset}/day={day}/part-{scope}.parquet")
}

fn summary_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|line| line.starts_with("spotcost run "))
        .unwrap_or_else(|| panic!("no summary line:\n{}", text(out)))
        .to_owned()
}

/// The ERROR lines of a run's log, for assertion messages.
fn error_lines(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|line| line.contains(" ERROR "))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// 1. Random transient faults
// ---------------------------------------------------------------------------------------------

const FAULT_NIGHTS: [&str; 3] = ["2026-03-07", "2026-03-08", "2026-03-09"];
/// `timeout_secs = 1`: the simulator's slow fault (1.5 s) is a timeout; five attempts per call.
const FAULT_SETTINGS: &str =
    "start_date = 2026-03-04\nlookback_days = 3\ntimeout_secs = 1\nbackoff_base_ms = 10\nmax_attempts = 5\n";

/// The fault-free run of every night.
struct FaultReference {
    lakes: Vec<Files>,
    watermarks: Vec<WatermarkMap>,
    /// The last night's lake: every partition any night writes, in its one right version.
    every_file: Files,
}

/// What a data dir held before a run.
struct Before {
    lake: Files,
    watermarks: WatermarkMap,
    warehouse: Option<Vec<u8>>,
    reports: Files,
    runs: BTreeSet<String>,
    run_items: BTreeSet<String>,
}

impl Before {
    fn take(data_dir: &Path) -> Before {
        Before {
            lake: lake_of(data_dir),
            watermarks: watermarks_of(data_dir),
            warehouse: warehouse_bytes(data_dir),
            reports: files_under(&data_dir.join("reports")),
            runs: file_names(&data_dir.join("state/runs")),
            run_items: file_names(&data_dir.join("state/run_items")),
        }
    }
}

#[derive(Debug, Default)]
struct FaultFigures {
    rate: f64,
    requests: usize,
    faults: BTreeMap<String, u64>,
    nights_completed: usize,
    nights_failed: usize,
    items_failed: usize,
    items_planned: usize,
    listing_failures: usize,
    /// Why items failed: the last error once every attempt was spent, by kind.
    reasons: BTreeMap<String, usize>,
    elapsed: Duration,
}

/// The gist of an item's error: "gave up: <what the last attempt met>" when every attempt was
/// spent, else "final: <the error>" (which no random fault should cause: they are all transient).
fn failure_reason(error: &str) -> String {
    match error.split_once(" attempts: ") {
        Some((_, last)) => format!(
            "gave up: {}",
            last.split(['(', ':']).next().unwrap_or(last).trim()
        ),
        None => format!("final: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_5_20_and_50_percent_never_lose_double_or_invent_a_dollar() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let clean = simulator(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
    .await;
    let reference_dir = dir.path().join("reference");
    let config = write_config(dir.path(), &reference_dir, FAULT_SETTINGS);
    let mut reference = FaultReference {
        lakes: Vec::new(),
        watermarks: Vec::new(),
        every_file: Files::new(),
    };
    for night in FAULT_NIGHTS {
        let out = run_night(&clean, &config, night).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        reference.lakes.push(lake_of(&reference_dir));
        reference.watermarks.push(watermarks_of(&reference_dir));
    }
    reference.every_file = reference.lakes.last().unwrap().clone();
    for lake in &reference.lakes {
        for (path, bytes) in lake {
            assert!(
                reference.every_file.get(path) == Some(bytes),
                "{path} changed between fault-free nights"
            );
        }
    }

    let runs = [0.05, 0.20, 0.50].map(|rate| nights_under_faults(rate, dir.path(), &reference));
    let figures = futures_util::future::join_all(runs).await;

    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for figure in &figures {
        let injected: u64 = spotcost::sim::RANDOM_FAULT_KINDS
            .iter()
            .map(|kind| figure.faults.get(*kind).copied().unwrap_or(0))
            .sum();
        println!(
            "faults: rate {:.2}: {} requests, {injected} faults injected {:?}; {} of {} nights completed under faults, {} failed ({} item(s) failed of the {} planned on those nights, by reason {:?}; {} account listing(s) failed) and each re-ran to the fault-free lake; {:.1} s",
            figure.rate,
            figure.requests,
            figure.faults,
            figure.nights_completed,
            FAULT_NIGHTS.len(),
            figure.nights_failed,
            figure.items_failed,
            figure.items_planned,
            figure.reasons,
            figure.listing_failures,
            figure.elapsed.as_secs_f64()
        );
        assert!(injected > 0, "rate {}: no fault injected", figure.rate);
        for (kind, count) in &figure.faults {
            *kinds.entry(kind.clone()).or_insert(0) += count;
        }
    }
    for kind in spotcost::sim::RANDOM_FAULT_KINDS {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault was injected: {kinds:?}"
        );
    }
    // Every random fault is transient: an item may fail only once all its attempts are spent.
    for figure in &figures {
        for (reason, count) in &figure.reasons {
            let Some(error) = reason.strip_prefix("final: ") else {
                continue;
            };
            if error.contains("expected CSV, got JSON: HTTP 200 with an empty body") {
                let message = format!(
                    "KNOWN BUG: rate {}: {count} item(s) failed at once on a dropped connection to the instance-cost export: {error}: \
                     spot::endpoints::consume_csv reads a JSON-typed 200 with `.unwrap_or_default()`, so a body cut off \
                     in transit becomes an empty one and a final decode error instead of a retried transport error",
                    figure.rate
                );
                println!("{message}");
                assert!(!strict(), "{message}");
            } else {
                panic!(
                    "rate {}: {count} item(s) failed at once, without retrying, on a transient fault: {error}",
                    figure.rate
                );
            }
        }
    }
    // At 50 %, a call fails all five attempts with probability 1/32: some night fails.
    assert!(
        figures[2].nights_failed > 0,
        "at 50 % every night completed, so the failure path went untested"
    );
    println!(
        "faults: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Three nights against a simulator failing `rate` of the requests; a night that fails is
/// checked, then re-run against a fault-free simulator.
async fn nights_under_faults(rate: f64, root: &Path, reference: &FaultReference) -> FaultFigures {
    let started = Instant::now();
    let faulty = simulator(SimConfig {
        fault_rate: rate,
        rate_limit: 0,
        ..SimConfig::default()
    })
    .await;
    let clean = simulator(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
    .await;
    let data_dir = root.join(format!("faults-{:02}", (rate * 100.0).round() as u32));
    let config = write_config(root, &data_dir, FAULT_SETTINGS);
    let mut figures = FaultFigures {
        rate,
        ..FaultFigures::default()
    };
    for (index, night) in FAULT_NIGHTS.into_iter().enumerate() {
        let what = format!("rate {rate}, night {night}");
        let before = Before::take(&data_dir);
        let out = run_night(&faulty, &config, night).await;
        match out.status.code() {
            Some(0) => {
                figures.nights_completed += 1;
                assert!(
                    lake_of(&data_dir) == reference.lakes[index],
                    "{what}: the run succeeded but its lake is not the fault-free one"
                );
                assert_eq!(
                    watermarks_of(&data_dir),
                    reference.watermarks[index],
                    "{what}"
                );
                assert!(data_dir
                    .join(format!("reports/{night}/index.html"))
                    .exists());
            }
            Some(1) => {
                figures.nights_failed += 1;
                match check_failed_night(&data_dir, &before, &out, index, reference, &what) {
                    Some((errors, planned)) => {
                        figures.items_failed += errors.len();
                        figures.items_planned += planned;
                        for error in errors {
                            *figures.reasons.entry(failure_reason(&error)).or_insert(0) += 1;
                        }
                    }
                    None => figures.listing_failures += 1,
                }
                let again = run_night(&clean, &config, night).await;
                assert_eq!(
                    again.status.code(),
                    Some(0),
                    "{what}: the fault-free re-run failed\n{}",
                    text(&again)
                );
                assert!(
                    lake_of(&data_dir) == reference.lakes[index],
                    "{what}: after the re-run the lake is not the fault-free one"
                );
                assert_eq!(
                    watermarks_of(&data_dir),
                    reference.watermarks[index],
                    "{what}: after the re-run"
                );
            }
            other => panic!("{what}: exit {other:?}\n{}", text(&out)),
        }
        assert!(
            temporary_files(&data_dir).is_empty(),
            "{what}: {:?}",
            temporary_files(&data_dir)
        );
    }
    figures.requests = faulty.request_count("");
    figures.faults = faulty.random_faults_injected();
    figures.elapsed = started.elapsed();
    figures
}

/// Checks a night that exited 1. Returns (the failed items' errors, items planned), or None when
/// the run could not list the accounts and so planned nothing.
fn check_failed_night(
    data_dir: &Path,
    before: &Before,
    out: &Output,
    index: usize,
    reference: &FaultReference,
    what: &str,
) -> Option<(Vec<String>, usize)> {
    let summary = summary_line(out);
    assert!(summary.contains(": FAILED in "), "{what}: {summary}");
    let (status, failed_count, error) =
        run_row(&new_file(&data_dir.join("state/runs"), &before.runs));
    assert_eq!(status, "failed", "{what}");
    let items = item_rows(&new_file(
        &data_dir.join("state/run_items"),
        &before.run_items,
    ));
    let failed: BTreeSet<(String, String)> = items
        .iter()
        .filter(|item| item.error.is_some())
        .map(|item| (item.dataset.clone(), item.account.clone()))
        .collect();
    let lake = lake_of(data_dir);

    // (b) Every partition file there is the fault-free run's, and none was lost.
    for (path, bytes) in &lake {
        match reference.every_file.get(path) {
            Some(right) if right == bytes => {}
            Some(_) => panic!("{what}: {path} differs from the fault-free run's"),
            None => panic!("{what}: {path} is in no fault-free lake"),
        }
    }
    for path in before.lake.keys() {
        assert!(lake.contains_key(path), "{what}: {path} was lost");
    }
    // (d) Nothing was modelled or published.
    assert!(
        warehouse_bytes(data_dir) == before.warehouse,
        "{what}: the warehouse changed although the run failed"
    );
    assert!(
        files_under(&data_dir.join("reports")) == before.reports,
        "{what}: reports changed although the run failed"
    );
    let watermarks = watermarks_of(data_dir);

    if items.is_empty() {
        // The account listing failed: nothing was planned, so nothing may have moved.
        assert!(
            error.starts_with("cannot list the organisation's accounts"),
            "{what}: {error}"
        );
        assert!(summary.contains("cannot list the organisation's accounts"));
        assert!(lake == before.lake, "{what}: the lake changed");
        assert_eq!(watermarks, before.watermarks, "{what}");
        return None;
    }

    // (a) The run history, the log and the summary line name the same failed items.
    assert!(
        !failed.is_empty(),
        "{what}: exit 1 but no item failed: {summary}"
    );
    assert_eq!(
        failed,
        logged_failures(&String::from_utf8_lossy(&out.stderr)),
        "{what}: the run history and the log disagree\n{}",
        error_lines(out)
    );
    assert_eq!(failed_count as usize, failed.len(), "{what}");
    let marker = format!(
        "extract: {} of {} item(s) failed: ",
        failed.len(),
        items.len()
    );
    let (_, named) = summary
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{what}: {summary}"));
    let named: Vec<&str> = named
        .split(", ")
        .map(|name| name.trim_end_matches('…').trim())
        .filter(|name| !name.is_empty())
        .collect();
    assert_eq!(named.len(), failed.len().min(3), "{what}: {summary}");
    for name in named {
        let (dataset, account) = name
            .strip_suffix(')')
            .and_then(|name| name.split_once(" ("))
            .unwrap_or_else(|| panic!("{what}: {name}"));
        assert!(
            failed.contains(&(dataset.to_owned(), account.to_owned())),
            "{what}: the summary names {name}, which did not fail"
        );
    }

    // (c) A failed item's watermark covers exactly what landed; the others moved as without faults.
    let reference_watermarks = &reference.watermarks[index];
    for item in &items {
        let key = item.key();
        let now = watermarks.get(&key).copied();
        match &item.error {
            Some(error) => {
                let landed_until = item
                    .first_day
                    .filter(|_| item.days_landed > 0)
                    .map(|first| first + chrono::Duration::days(item.days_landed - 1));
                let expected = before.watermarks.get(&key).copied().max(landed_until);
                assert_eq!(
                    now, expected,
                    "{what}: {key} failed after {} day(s) ({error})",
                    item.days_landed
                );
                assert!(
                    now <= reference_watermarks.get(&key).copied(),
                    "{what}: {key}"
                );
                for offset in 0..item.days_landed {
                    let landed = item.first_day.unwrap() + chrono::Duration::days(offset);
                    let path = lake_path(&item.dataset, landed, &item.account);
                    assert!(
                        !reference.every_file.contains_key(&path) || lake.contains_key(&path),
                        "{what}: {path} counted as landed but missing"
                    );
                }
            }
            None => assert_eq!(
                now,
                reference_watermarks.get(&key).copied(),
                "{what}: {key} landed, but its watermark is not the fault-free run's"
            ),
        }
    }
    let planned: BTreeSet<String> = items.iter().map(ItemRow::key).collect();
    for (key, value) in &watermarks {
        if !planned.contains(key) {
            assert_eq!(before.watermarks.get(key), Some(value), "{what}: {key}");
        }
    }
    let errors = items.iter().filter_map(|item| item.error.clone()).collect();
    Some((errors, items.len()))
}

// ---------------------------------------------------------------------------------------------
// 2. The rate budget
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_budget_no_request_reaches_a_blocked_route() {
    const NIGHT: &str = "2026-03-10";
    const LIMIT: u32 = 20;
    let settings = "start_date = 2026-03-07\nbackoff_base_ms = 10\n";
    let limited = simulator(SimConfig {
        rate_limit: LIMIT,
        ..SimConfig::default()
    })
    .await;
    let unlimited = simulator(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let limited_dir = dir.path().join("limited");
    let free_dir = dir.path().join("free");
    let limited_config = write_config(dir.path(), &limited_dir, settings);
    let free_config = write_config(dir.path(), &free_dir, settings);

    let started = Instant::now();
    let out = run_night(&limited, &limited_config, NIGHT).await;
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let free = run_night(&unlimited, &free_config, NIGHT).await;
    assert_eq!(free.status.code(), Some(0), "{}", text(&free));

    let blocks = limited.rate_limit_blocks();
    let while_blocked = limited.requests_while_blocked();
    let summary = summary_line(&out);
    println!(
        "rate budget: limit {LIMIT} per route per minute; {} requests in {:.1} s; {blocks} block(s) started (the first 429 of each); {while_blocked} request(s) arrived while blocked; run: {summary}",
        limited.request_count(""),
        elapsed.as_secs_f64()
    );
    assert!(
        lake_of(&limited_dir) == lake_of(&free_dir),
        "the rate-limited run's lake differs from the unlimited run's"
    );
    assert!(
        blocks >= 1,
        "the run never hit the limit, so the test proves nothing: {summary}"
    );
    assert_eq!(
        while_blocked, 0,
        "the client sent requests to a route the simulator had blocked (after its 429, before the reset)"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL anywhere
// ---------------------------------------------------------------------------------------------

const CRASH_NIGHTS: [&str; 2] = ["2026-03-09", "2026-03-10"];
const CRASH_SETTINGS: &str = "start_date = 2026-03-06\nlookback_days = 3\nbackoff_base_ms = 10\n";
const KILL_POINTS_DEFAULT: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Extract,
    Model,
    Report,
    /// The reports were written; the kill came while the run record was written, or never.
    AfterReports,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Extract => "extract",
            Stage::Model => "model",
            Stage::Report => "report",
            Stage::AfterReports => "after-reports",
        }
    }
}

fn is_item_line(line: &str) -> bool {
    line.contains("spotcost::pipeline: landed")
}

/// Where a kill is sent: `delay` after the `count`-th line that `marker` matches (count 0: after
/// the start), or once a folder holds `count` entries (temporary files included).
#[derive(Clone, Debug)]
enum Marker {
    Start,
    ItemLanded,
    ModelsBuilt,
    EntriesIn(PathBuf),
}

#[derive(Clone, Debug)]
struct KillPoint {
    marker: Marker,
    count: usize,
    delay: Duration,
}

/// A run whose log lines were read as they came, with their times since the start.
struct Watched {
    lines: Vec<(Duration, String)>,
    code: Option<i32>,
    killed: bool,
}

impl Watched {
    fn time_of(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, line)| line.contains(needle))
            .map(|(at, _)| *at)
    }

    fn item_times(&self) -> Vec<Duration> {
        self.lines
            .iter()
            .filter(|(_, line)| is_item_line(line))
            .map(|(at, _)| *at)
            .collect()
    }

    fn stage_reached(&self, items: usize) -> Stage {
        if self.time_of("reports written").is_some() {
            Stage::AfterReports
        } else if self.time_of("models built").is_some() {
            Stage::Report
        } else if self.item_times().len() >= items {
            Stage::Model
        } else {
            Stage::Extract
        }
    }
}

/// Runs `command`, reading its log as it comes, and SIGKILLs it at `kill` (if it gets there).
fn run_watched(mut command: Command, kill: Option<KillPoint>) -> Watched {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("spotcost starts");
    let mut stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let (sender, receiver) = mpsc::channel();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send((started.elapsed(), line)).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut matched = 0;
    let mut kill_at = kill
        .as_ref()
        .filter(|point| matches!(point.marker, Marker::Start) || point.count == 0)
        .map(|point| started + point.delay);
    let mut pending = kill.filter(|_| kill_at.is_none());
    loop {
        if let Some(KillPoint {
            marker: Marker::EntriesIn(folder),
            count,
            delay,
        }) = &pending
        {
            let entries = std::fs::read_dir(folder).map_or(0, Iterator::count);
            if entries >= *count {
                kill_at = Some(Instant::now() + *delay);
                pending = None;
            }
        }
        if let Some(at) = kill_at {
            if Instant::now() >= at {
                let _ = child.kill(); // SIGKILL
                kill_at = None;
            }
        }
        let wait = match (&kill_at, &pending) {
            (Some(at), _) => at.saturating_duration_since(Instant::now()),
            (
                None,
                Some(KillPoint {
                    marker: Marker::EntriesIn(_),
                    ..
                }),
            ) => Duration::from_micros(500),
            (None, _) => Duration::from_secs(600),
        };
        match receiver.recv_timeout(wait) {
            Ok((at, line)) => {
                if let Some(point) = &pending {
                    let hit = match point.marker {
                        Marker::Start | Marker::EntriesIn(_) => false,
                        Marker::ItemLanded => is_item_line(&line),
                        Marker::ModelsBuilt => line.contains("models built"),
                    };
                    if hit {
                        matched += 1;
                        if matched >= point.count {
                            kill_at = Some(Instant::now() + point.delay);
                            pending = None;
                        }
                    }
                }
                lines.push((at, line));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().unwrap();
    let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
    let _ = stderr_reader.join();
    let stdout = stdout_reader.join().unwrap_or_default();
    if !killed && status.code() != Some(0) {
        panic!(
            "an unkilled run failed:\n{stdout}\n{}",
            lines
                .iter()
                .map(|(_, line)| line.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Watched {
        lines,
        code: status.code(),
        killed,
    }
}

/// What an uninterrupted night leaves, to compare against.
struct NightState {
    dir: PathBuf,
    lake: Files,
    watermarks: WatermarkMap,
    warehouse: Relations,
    warehouse_exact: Relations,
    reports: BTreeMap<String, String>,
    latest: String,
    /// Times of the item lines, "models built" and the last line.
    items: Vec<Duration>,
    models_built: Duration,
    finished: Duration,
}

/// Every mart table (and `spotcost_settings`) and every staging view, each as its sorted rows.
type Relations = BTreeMap<String, Vec<String>>;

fn open_read_only(path: &Path) -> duckdb::Result<duckdb::Connection> {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
    duckdb::Connection::open_with_flags(path, config)
}

fn mart_names() -> Vec<String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/marts");
    let mut names: Vec<String> = file_names(&folder)
        .into_iter()
        .filter_map(|name| name.strip_suffix(".sql").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The contents of a warehouse, each relation's rows sorted; unless `exact`, doubles are rounded
/// to 9 significant digits, so that a different summation order (DuckDB sums in parallel) cannot
/// tell two builds of the same lake apart. `with_views`: the staging views too (they read the
/// lake live).
fn warehouse_contents(path: &Path, with_views: bool, exact: bool) -> Result<Relations, String> {
    let db = open_read_only(path).map_err(|e| format!("{} does not open: {e}", path.display()))?;
    let query_strings = |sql: &str| -> Result<Vec<String>, String> {
        let mut statement = db.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
        let rows = statement
            .query_map([], |row| row.get::<_, Option<String>>(0))
            .map_err(|e| format!("{sql}: {e}"))?;
        rows.map(|row| {
            row.map(|value| value.unwrap_or_else(|| "NULL".into()))
                .map_err(|e| format!("{sql}: {e}"))
        })
        .collect()
    };
    let mut names = query_strings(
        "select table_name from duckdb_tables() where database_name = current_database() and not temporary",
    )?;
    if with_views {
        names.extend(query_strings(
            "select view_name from duckdb_views() where database_name = current_database() and starts_with(view_name, 'stg_spot__')",
        )?);
    }
    let mut relations = Relations::new();
    for name in names {
        let columns: Vec<(String, String)> = {
            let sql = format!(
                "select column_name, data_type from duckdb_columns() where database_name = current_database() and table_name = '{name}' order by column_index"
            );
            let mut statement = db.prepare(&sql).map_err(|e| format!("{sql}: {e}"))?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(|e| format!("{sql}: {e}"))?;
            rows.collect::<duckdb::Result<_>>()
                .map_err(|e| format!("{sql}: {e}"))?
        };
        let values: Vec<String> = columns
            .iter()
            .map(|(column, data_type)| match data_type.as_str() {
                "DOUBLE" | "FLOAT" if !exact => format!("printf('%.9g', \"{column}\")"),
                _ => format!("\"{column}\"::varchar"),
            })
            .collect();
        let rows = query_strings(&format!(
            "select [{}]::varchar as r from \"{name}\" order by r",
            values.join(", ")
        ))?;
        relations.insert(name, rows);
    }
    Ok(relations)
}

/// The first difference between two warehouses' contents, if any.
fn relations_difference(got: &Relations, want: &Relations) -> Option<String> {
    let names: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    for name in names {
        match (got.get(name), want.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let first = a
                    .iter()
                    .zip(b)
                    .find(|(x, y)| x != y)
                    .map(|(x, y)| format!("{x} vs {y}"))
                    .unwrap_or_default();
                return Some(format!(
                    "{name}: {} rows vs {}; first difference {first}",
                    a.len(),
                    b.len()
                ));
            }
            (a, _) => {
                return Some(format!(
                    "{name} is {} one warehouse only",
                    if a.is_some() {
                        "in the first"
                    } else {
                        "in the second"
                    }
                ))
            }
        }
    }
    None
}

/// A report file with its "Generated" time blanked (the clock runs at the real pace).
fn normalised_report(bytes: &[u8]) -> String {
    const OPEN: &str = "<dt>Generated</dt><dd>";
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    let mut from = 0;
    while let Some(start) = text[from..].find(OPEN).map(|at| from + at + OPEN.len()) {
        let Some(end) = text[start..].find("</dd>").map(|at| start + at) else {
            break;
        };
        text.replace_range(start..end, "(generated)");
        from = start;
    }
    text
}

/// A report as a set of lines with every decimal number rounded to 9 significant digits: equal
/// for two renderings of the same data whose sums were added in another order, or whose rows tie
/// on the report's sort key.
fn tolerant_report(text: &str) -> String {
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            let mut token = String::new();
            let flush = |token: &mut String, out: &mut String| {
                match token.parse::<f64>() {
                    Ok(value) if token.matches('.').count() == 1 => {
                        out.push_str(&format!("{value:.8e}"))
                    }
                    _ => out.push_str(token),
                }
                token.clear();
            };
            for c in line.chars() {
                if c.is_ascii_digit() || c == '.' {
                    token.push(c);
                } else {
                    flush(&mut token, &mut out);
                    out.push(c);
                }
            }
            flush(&mut token, &mut out);
            out
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn same_reports(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((name_a, a), (name_b, b))| {
            name_a == name_b && tolerant_report(a) == tolerant_report(b)
        })
}

fn reports_folder(folder: &Path) -> BTreeMap<String, String> {
    files_under(folder)
        .into_iter()
        .map(|(path, bytes)| (path, normalised_report(&bytes)))
        .collect()
}

fn latest_of(data_dir: &Path) -> Option<String> {
    std::fs::read_link(data_dir.join("reports/latest"))
        .ok()
        .map(|target| target.display().to_string())
}

impl NightState {
    fn capture(dir: &Path, night: &str, watched: &Watched) -> NightState {
        NightState {
            dir: dir.to_owned(),
            lake: lake_of(dir),
            watermarks: watermarks_of(dir),
            warehouse: warehouse_contents(&dir.join("warehouse.duckdb"), true, false).unwrap(),
            warehouse_exact: warehouse_contents(&dir.join("warehouse.duckdb"), true, true).unwrap(),
            reports: reports_folder(&dir.join("reports").join(night)),
            latest: latest_of(dir).expect("reports/latest"),
            items: watched.item_times(),
            models_built: watched.time_of("models built").unwrap(),
            finished: watched.lines.last().unwrap().0,
        }
    }

    fn marts(&self) -> Relations {
        marts_only(&self.warehouse)
    }
}

fn marts_only(relations: &Relations) -> Relations {
    relations
        .iter()
        .filter(|(name, _)| !name.starts_with("stg_spot__"))
        .map(|(name, rows)| (name.clone(), rows.clone()))
        .collect()
}

/// Seeded kill point number `index`: its stage cycles extract, model, report; its night
/// alternates every three points between the first night (from an empty data dir) and the second
/// (from the first night's data dir). A report kill comes either while the reports are rendered
/// (a delay after "models built") or while their files are written (at the k-th file in the
/// night's report folder).
fn kill_point(index: usize, night: &NightState, data_dir: &Path, day: &str) -> (Stage, KillPoint) {
    let mut random = SplitMix64::new(0x5EED_C0DE ^ (index as u64).wrapping_mul(0x9E37_79B9));
    let items = night.items.len();
    let k = random.next_below(items as u64) as usize;
    let mut within =
        |span: Duration| Duration::from_micros(random.next_below(span.as_micros().max(1) as u64));
    match index % 3 {
        0 => {
            // After the k-th item line (k = 0: after the start), within the gap to the next one.
            let since = if k == 0 {
                Duration::ZERO
            } else {
                night.items[k - 1]
            };
            let delay = within(night.items[k].saturating_sub(since));
            let marker = if k == 0 {
                Marker::Start
            } else {
                Marker::ItemLanded
            };
            (
                Stage::Extract,
                KillPoint {
                    marker,
                    count: k,
                    delay,
                },
            )
        }
        1 => (
            // Within the first 80 % of the model stage (its length varies with the machine's load).
            Stage::Model,
            KillPoint {
                marker: Marker::ItemLanded,
                count: items,
                delay: within(night.models_built.saturating_sub(night.items[items - 1]) * 4 / 5),
            },
        ),
        _ if within(Duration::from_micros(2)).is_zero() => (
            Stage::Report,
            KillPoint {
                marker: Marker::ModelsBuilt,
                count: 1,
                delay: within(night.finished.saturating_sub(night.models_built) * 4 / 5),
            },
        ),
        _ => {
            let files = night.reports.len() as u64;
            let count = 1 + within(Duration::from_micros(files)).as_micros() as usize;
            (
                Stage::Report,
                KillPoint {
                    marker: Marker::EntriesIn(data_dir.join("reports").join(day)),
                    count,
                    delay: within(Duration::from_millis(2)),
                },
            )
        }
    }
}

/// The checks between a kill and the re-run: what a reader sees in a killed run's data dir.
fn check_killed_dir(
    data_dir: &Path,
    previous: Option<&NightState>,
    target: &NightState,
    marts: &[String],
    differences: &mut Vec<String>,
    known_bugs: &mut Vec<String>,
    label: &str,
) {
    let mut differ = |what: String| differences.push(format!("{label}: {what}"));
    // The warehouse: absent (nothing built yet) or a complete one, the previous or the new.
    let warehouse = data_dir.join("warehouse.duckdb");
    if warehouse.exists() {
        match warehouse_contents(&warehouse, false, false) {
            Err(error) => differ(error),
            Ok(contents) => {
                for mart in marts {
                    if !contents.contains_key(mart) {
                        differ(format!("warehouse.duckdb has no mart {mart}"));
                    }
                }
                let previous_marts = previous.map(NightState::marts);
                if contents != target.marts() && Some(&contents) != previous_marts.as_ref() {
                    differ(format!(
                        "warehouse.duckdb is neither the previous nor the new build: {}",
                        relations_difference(&contents, &target.marts()).unwrap_or_default()
                    ));
                }
            }
        }
    } else if previous.is_some() {
        differ("the previous warehouse.duckdb vanished".into());
    }
    if data_dir.join("warehouse.duckdb.wal").exists() {
        differ("warehouse.duckdb.wal exists beside the warehouse".into());
    }
    // The lake: only complete partitions, each the right one, none lost.
    let lake = lake_of(data_dir);
    for (path, bytes) in &lake {
        if target.lake.get(path) != Some(bytes) {
            differ(format!("lake/{path} is not the uninterrupted run's"));
        }
    }
    if let Some(previous) = previous {
        for path in previous.lake.keys() {
            if !lake.contains_key(path) {
                differ(format!("lake/{path} was lost"));
            }
        }
    }
    for path in visible_temporary_files(data_dir) {
        if path.starts_with("reports/latest.tmp-") {
            known_bugs.push(format!("{label}: {path}"));
        } else {
            differ(format!("{path}: a temporary file a reader can see"));
        }
    }
    // Watermarks: between the previous night's and the uninterrupted run's.
    for (key, value) in watermarks_of(data_dir) {
        let floor = previous.and_then(|p| p.watermarks.get(&key));
        if target.watermarks.get(&key) < Some(&value) || floor > Some(&value) {
            differ(format!("watermark {key} = {value} is out of range"));
        }
    }
    // Reports: `latest` is absent or points at a complete folder, the previous one or the new one.
    match latest_of(data_dir) {
        None if previous.is_some() => differ("reports/latest vanished".into()),
        None => {}
        Some(folder) => {
            let shown = reports_folder(&data_dir.join("reports").join(&folder));
            let is_previous =
                previous.is_some_and(|p| p.latest == folder && same_reports(&p.reports, &shown));
            let is_new = target.latest == folder && same_reports(&target.reports, &shown);
            if !is_previous && !is_new {
                differ(format!(
                    "reports/latest -> {folder} is neither the previous nor the new reports"
                ));
            }
        }
    }
}

/// The checks after the re-run: the data dir is the uninterrupted run's.
/// `unstable` counts, per report file or warehouse relation, re-runs whose output differed from
/// the uninterrupted run's only in float rounding or in the order of tied rows.
fn check_repaired_dir(
    data_dir: &Path,
    night: &str,
    target: &NightState,
    differences: &mut Vec<String>,
    unstable: &mut BTreeMap<String, usize>,
    label: &str,
) {
    let mut differ = |what: String| differences.push(format!("{label}: after the re-run, {what}"));
    let lake = lake_of(data_dir);
    if lake != target.lake {
        let missing: Vec<&String> = target
            .lake
            .keys()
            .filter(|p| !lake.contains_key(*p))
            .collect();
        let different: Vec<&String> = lake
            .iter()
            .filter(|(p, b)| target.lake.get(*p) != Some(*b))
            .map(|(p, _)| p)
            .collect();
        differ(format!(
            "the lake differs: missing {missing:?}, extra or different {different:?}"
        ));
    }
    if watermarks_of(data_dir) != target.watermarks {
        differ("the watermarks differ".into());
    }
    match warehouse_contents(&data_dir.join("warehouse.duckdb"), true, false) {
        Err(error) => differ(error),
        Ok(contents) => {
            if let Some(difference) = relations_difference(&contents, &target.warehouse) {
                differ(format!("the warehouse differs: {difference}"));
            }
        }
    }
    if let Ok(exact) = warehouse_contents(&data_dir.join("warehouse.duckdb"), true, true) {
        for (name, rows) in &exact {
            if target.warehouse_exact.get(name) != Some(rows) {
                *unstable.entry(format!("warehouse {name}")).or_insert(0) += 1;
            }
        }
    }
    let reports = reports_folder(&data_dir.join("reports").join(night));
    if reports != target.reports {
        let names: BTreeSet<&String> = reports.keys().chain(target.reports.keys()).collect();
        for name in names {
            let (got, want) = (reports.get(name), target.reports.get(name));
            if got == want {
                continue;
            }
            let tolerated = got
                .zip(want)
                .is_some_and(|(got, want)| tolerant_report(got) == tolerant_report(want));
            if tolerated {
                *unstable.entry(format!("report {name}")).or_insert(0) += 1;
            } else {
                let first = got
                    .zip(want)
                    .and_then(|(got, want)| got.lines().zip(want.lines()).find(|(a, b)| a != b))
                    .map(|(a, b)| format!("{a:?} vs {b:?}"))
                    .unwrap_or_else(|| "present in one only".into());
                differ(format!("reports/{night}/{name} differs: {first}"));
            }
        }
    }
    if latest_of(data_dir).as_deref() != Some(target.latest.as_str()) {
        differ(format!("reports/latest is {:?}", latest_of(data_dir)));
    }
    for path in temporary_files(data_dir) {
        differ(format!("{path} was left behind"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_at_seeded_points_then_a_rerun_equals_an_uninterrupted_run() {
    let started = Instant::now();
    let points: usize = std::env::var("SPOTCOST_KILL_POINTS")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(KILL_POINTS_DEFAULT);
    let server = simulator(SimConfig {
        rate_limit: 0,
        latency_ms: 2,
        ..SimConfig::default()
    })
    .await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let marts = mart_names();
    assert_eq!(marts.len(), 10, "{marts:?}");

    // The uninterrupted nights: the first from nothing, the second from the first.
    let mut nights: Vec<NightState> = Vec::new();
    for (index, night) in CRASH_NIGHTS.into_iter().enumerate() {
        let data_dir = dir.path().join(format!("uninterrupted-{index}"));
        if let Some(previous) = nights.last() {
            copy_tree(&previous.dir, &data_dir);
        }
        let config = write_config(dir.path(), &data_dir, CRASH_SETTINGS);
        server.set_today(day(night));
        let command = run_command(&url, &config, night);
        let watched = tokio::task::spawn_blocking(move || run_watched(command, None))
            .await
            .unwrap();
        assert_eq!(watched.code, Some(0));
        nights.push(NightState::capture(&data_dir, night, &watched));
    }

    let mut differences = Vec::new();
    let mut known_bugs = Vec::new();
    let mut unstable = BTreeMap::new();
    let mut tried = Vec::new();
    for index in 0..points {
        let night_index = (index / 3) % 2;
        let night = CRASH_NIGHTS[night_index];
        let target = &nights[night_index];
        let previous = night_index.checked_sub(1).map(|i| &nights[i]);
        let data_dir = dir.path().join(format!("killed-{index}"));
        let (aimed, point) = kill_point(index, target, &data_dir, night);
        if let Some(previous) = previous {
            copy_tree(&previous.dir, &data_dir);
        }
        let config = write_config(dir.path(), &data_dir, CRASH_SETTINGS);
        server.set_today(day(night));
        let command = run_command(&url, &config, night);
        let watched = {
            let point = point.clone();
            tokio::task::spawn_blocking(move || run_watched(command, Some(point)))
                .await
                .unwrap()
        };
        let reached = watched.stage_reached(target.items.len());
        let label = format!(
            "kill point {index} ({night}, aimed at {}, {point:?}, reached {}{})",
            aimed.name(),
            reached.name(),
            if watched.killed {
                ""
            } else {
                ", finished first"
            }
        );
        check_killed_dir(
            &data_dir,
            previous,
            target,
            &marts,
            &mut differences,
            &mut known_bugs,
            &label,
        );
        let rerun = output(run_command(&url, &config, night)).await;
        if rerun.status.code() != Some(0) {
            differences.push(format!("{label}: the re-run failed:\n{}", text(&rerun)));
        } else {
            check_repaired_dir(
                &data_dir,
                night,
                target,
                &mut differences,
                &mut unstable,
                &label,
            );
        }
        let after = match &point.marker {
            Marker::Start => "start".to_owned(),
            Marker::ItemLanded => format!("item {}", point.count),
            Marker::ModelsBuilt => "models built".to_owned(),
            Marker::EntriesIn(_) => format!("report file {}", point.count),
        };
        let how = format!("{after} +{} ms", point.delay.as_millis());
        tried.push((index, night, reached, watched.killed, how));
        let _ = std::fs::remove_dir_all(&data_dir);
    }

    let mut by_stage: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, stage, killed, _) in &tried {
        let name = if *killed { stage.name() } else { "finished" };
        *by_stage.entry(name).or_insert(0) += 1;
    }
    let stages: Vec<String> = tried
        .iter()
        .map(|(index, night, stage, killed, how)| {
            format!(
                "{index}:{}@{}({how})",
                if *killed { stage.name() } else { "finished" },
                &night[5..]
            )
        })
        .collect();
    println!(
        "crash: {} kill points tried, by stage {by_stage:?}; {} difference(s) found; outputs that differed from the uninterrupted run's only in float rounding or tied-row order (times) {unstable:?}; {:.1} s; points {}",
        tried.len(),
        differences.len(),
        started.elapsed().as_secs_f64(),
        stages.join(" ")
    );
    if !known_bugs.is_empty() {
        let message = format!(
            "KNOWN BUG: a kill while `reports/latest` is switched leaves a visible link `reports/latest.tmp-<pid>` \
             (report::files::create_latest_symlink names it without a leading dot; the next run now sweeps it): {}",
            known_bugs.join("; ")
        );
        println!("{message}");
        assert!(!strict(), "{message}");
    }
    assert!(
        differences.is_empty(),
        "{} difference(s):\n{}",
        differences.len(),
        differences.join("\n")
    );
    if points >= 6 {
        for stage in [Stage::Extract, Stage::Model, Stage::Report] {
            assert!(
                tried
                    .iter()
                    .any(|(_, _, s, killed, _)| *killed && *s == stage),
                "no kill landed in the {} stage: {stages:?}",
                stage.name()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A full or read-only data dir
// ---------------------------------------------------------------------------------------------

const DISK_NIGHTS: [&str; 2] = ["2026-03-09", "2026-03-10"];
const DISK_SETTINGS: &str = "start_date = 2026-03-06\nlookback_days = 3\nbackoff_base_ms = 10\n";

/// Unmounts a test's tmpfs when the test ends, however it ends.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(arguments: &[&str], target: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(arguments)
        .arg(target)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Fills the file system holding `filler`, then frees `leave_free` bytes of it.
fn fill(filler: &Path, leave_free: u64) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(filler)
        .unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(28) => break,
            Err(error) => panic!("filling {}: {error}", filler.display()),
        }
    }
    let length = file.metadata().unwrap().len();
    file.set_len(length.saturating_sub(leave_free)).unwrap();
    file.sync_all().unwrap();
}

/// What must survive a failed run byte for byte.
#[derive(PartialEq)]
struct Kept {
    lake: Files,
    warehouse: Option<Vec<u8>>,
    reports: Files,
    latest: Option<String>,
    watermarks: WatermarkMap,
}

impl Kept {
    fn take(data_dir: &Path) -> Kept {
        Kept {
            lake: lake_of(data_dir),
            warehouse: warehouse_bytes(data_dir),
            reports: files_under(&data_dir.join("reports")),
            latest: latest_of(data_dir),
            watermarks: watermarks_of(data_dir),
        }
    }
}

/// After a run that failed for want of space: what was there is intact, what is new is complete
/// and right, and no watermark moved past what landed. Returns the problems found.
fn check_kept(
    data_dir: &Path,
    before: &Kept,
    reference: &Files,
    reference_watermarks: &WatermarkMap,
) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let lake = lake_of(data_dir);
    for (path, bytes) in &before.lake {
        if lake.get(path) != Some(bytes) {
            problems.push(format!("lake/{path} changed or vanished"));
        }
    }
    for (path, bytes) in &lake {
        if !before.lake.contains_key(path) && reference.get(path) != Some(bytes) {
            problems.push(format!("lake/{path} is new and not the reference's"));
        }
    }
    if warehouse_bytes(data_dir) != before.warehouse {
        problems.push("warehouse.duckdb changed".into());
    }
    if files_under(&data_dir.join("reports")) != before.reports
        || latest_of(data_dir) != before.latest
    {
        problems.push("the reports changed".into());
    }
    for (key, value) in watermarks_of(data_dir) {
        if before.watermarks.get(&key) > Some(&value) {
            problems.push(format!("watermark {key} moved back"));
        }
        if reference_watermarks.get(&key) < Some(&value) {
            problems.push(format!("watermark {key} moved past the reference's"));
        }
        // The day a watermark names has landed.
        let (dataset, scope) = key.split_once('/').unwrap();
        let path = lake_path(dataset, value, scope);
        if reference.contains_key(&path) && !lake.contains_key(&path) {
            problems.push(format!(
                "watermark {key} = {value}, but lake/{path} is missing"
            ));
        }
    }
    let mut leftovers = Vec::new();
    for path in temporary_files(data_dir) {
        if is_hidden(&path) {
            leftovers.push(path);
        } else {
            problems.push(format!("{path} was left behind where a reader sees it"));
        }
    }
    (problems, leftovers)
}

/// The checks for once-known bugs fail the test; `SPOTCOST_RELIABILITY_REPORT_ONLY=1` only reports
/// them (each as a `KNOWN BUG` line), for investigating a regression across every kill point.
fn strict() -> bool {
    std::env::var_os("SPOTCOST_RELIABILITY_REPORT_ONLY").is_none()
}

/// Reports hidden temporary files a failed run left (the next run sweeps them, but until then
/// they hold the space a full disk lacks).
fn report_leftovers(what: &str, leftovers: &[String]) {
    if leftovers.is_empty() {
        return;
    }
    let message = format!(
        "KNOWN BUG: {what}: {} hidden temporary file(s) left behind after a failed write, e.g. {}: \
         lake::PartitionWriter::commit takes the writer before finishing the file, so when finishing, \
         the fsync or the rename fails, Drop no longer removes the temporary file",
        leftovers.len(),
        leftovers[0]
    );
    println!("{message}");
    assert!(!strict(), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_or_read_only_data_dir_fails_the_run_and_keeps_what_was_there() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("tmpfs");
    std::fs::create_dir(&mount_point).unwrap();
    if let Err(why) = mount(
        &["-t", "tmpfs", "-o", "size=16m", "spotcost-test"],
        &mount_point,
    ) {
        println!(
            "disk: skipped the full and read-only data dir: cannot mount a tmpfs here ({why}); \
             disk_a_file_where_a_partition_folder_belongs still runs"
        );
        return;
    }
    let _unmount = Unmount(mount_point.clone());
    let server = simulator(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
    .await;
    let data_dir = mount_point.join("data");
    let config = write_config(dir.path(), &data_dir, DISK_SETTINGS);
    let [first, second] = DISK_NIGHTS;
    let out = run_night(&server, &config, first).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The second night, uninterrupted and with room, elsewhere: the reference for what lands.
    let reference_dir = dir.path().join("reference");
    copy_tree(&data_dir, &reference_dir);
    let reference_config = write_config(dir.path(), &reference_dir, DISK_SETTINGS);
    let out = run_night(&server, &reference_config, second).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let reference = lake_of(&reference_dir);
    let reference_watermarks = watermarks_of(&reference_dir);

    let filler = mount_point.join("filler");
    let mut figures = Vec::new();
    for free in [0u64, 64 * 1024, 1024 * 1024] {
        fill(&filler, free);
        let before = Kept::take(&data_dir);
        let out = run_night(&server, &config, second).await;
        let said = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{free} bytes free: the run should fail\n{said}"
        );
        assert!(
            said.contains("No space left on device"),
            "{free} bytes free: the error does not say the disk is full\n{said}"
        );
        let first_error = said
            .lines()
            .find(|line| line.contains("No space left on device"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            first_error.contains(&data_dir.display().to_string()),
            "{free} bytes free: the error does not name the path: {first_error}"
        );
        let (problems, leftovers) =
            check_kept(&data_dir, &before, &reference, &reference_watermarks);
        assert!(
            problems.is_empty(),
            "{free} bytes free: {problems:?}\n{said}"
        );
        report_leftovers(&format!("disk with {free} bytes free"), &leftovers);
        let landed = lake_of(&data_dir).len() - before.lake.len();
        figures.push(format!(
            "{} KiB free: exit 1, {landed} partition(s) landed, error {:?}",
            free / 1024,
            first_error
                .split_once(": ")
                .map_or(first_error.as_str(), |(_, message)| message)
        ));
    }

    // Read-only: nothing at all may change.
    std::fs::remove_file(&filler).unwrap();
    mount(&["-o", "remount,ro"], &mount_point).unwrap();
    let before = snapshot_tree(&data_dir);
    let out = run_night(&server, &config, second).await;
    let said = text(&out);
    mount(&["-o", "remount,rw"], &mount_point).unwrap();
    assert_eq!(out.status.code(), Some(1), "read-only: {said}");
    assert!(said.contains("Read-only file system"), "{said}");
    assert!(
        said.contains(&data_dir.join(".spotcost.lock").display().to_string()),
        "read-only: the error does not name the path: {said}"
    );
    assert!(
        snapshot_tree(&data_dir) == before,
        "read-only: the data dir changed"
    );
    figures.push("read-only: exit 1, nothing changed".into());

    // With room again, the next run completes and lands the uninterrupted run's lake.
    let out = run_night(&server, &config, second).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        lake_of(&data_dir) == reference,
        "after the disk had room again, the lake is not the reference's"
    );
    assert_eq!(watermarks_of(&data_dir), reference_watermarks);
    assert!(
        temporary_files(&data_dir).is_empty(),
        "the next run did not sweep {:?}",
        temporary_files(&data_dir)
    );
    assert_eq!(latest_of(&data_dir).as_deref(), Some(second));
    println!(
        "disk: {}; then with room the run completed to the reference lake; {:.1} s",
        figures.join("; "),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_a_file_where_a_partition_folder_belongs_fails_those_items_only() {
    let started = Instant::now();
    let server = simulator(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = write_config(dir.path(), &data_dir, DISK_SETTINGS);
    let [first, second] = DISK_NIGHTS;
    let out = run_night(&server, &config, first).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let reference_dir = dir.path().join("reference");
    copy_tree(&data_dir, &reference_dir);
    let reference_config = write_config(dir.path(), &reference_dir, DISK_SETTINGS);
    let out = run_night(&server, &reference_config, second).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let reference = lake_of(&reference_dir);
    let reference_watermarks = watermarks_of(&reference_dir);

    // The second night's new usage day of account_costs cannot be a folder: root or not, writing
    // under it fails.
    let new_day = day(second) - chrono::Duration::days(1);
    let blocker = data_dir.join(format!("lake/account_costs/day={new_day}"));
    std::fs::write(&blocker, "not a folder").unwrap();
    let before = Kept::take(&data_dir);
    let runs_before = file_names(&data_dir.join("state/run_items"));
    let out = run_night(&server, &config, second).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&blocker.display().to_string()),
        "the error does not name the path: {said}"
    );
    let items = item_rows(&new_file(&data_dir.join("state/run_items"), &runs_before));
    let failed: BTreeSet<String> = items
        .iter()
        .filter(|item| item.error.is_some())
        .map(ItemRow::key)
        .collect();
    let account_cost_items: BTreeSet<String> = items
        .iter()
        .filter(|item| item.dataset == "account_costs")
        .map(ItemRow::key)
        .collect();
    assert_eq!(failed, account_cost_items, "{said}");
    let watermarks = watermarks_of(&data_dir);
    for key in &failed {
        assert_eq!(
            watermarks.get(key).copied(),
            Some(new_day - chrono::Duration::days(1)),
            "{key}: the watermark moved past the day that could not land"
        );
    }
    let (problems, leftovers) = check_kept(&data_dir, &before, &reference, &reference_watermarks);
    assert!(problems.is_empty(), "{problems:?}\n{said}");
    report_leftovers("a file where a folder belongs", &leftovers);

    std::fs::remove_file(&blocker).unwrap();
    let out = run_night(&server, &config, second).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        lake_of(&data_dir) == reference,
        "after the folder was freed, the lake is not the reference's"
    );
    assert_eq!(watermarks_of(&data_dir), reference_watermarks);
    assert!(temporary_files(&data_dir).is_empty());
    println!(
        "disk: a file where lake/account_costs/day={new_day} belongs: exit 1, {} item(s) failed ({}), the rest landed, nothing published; the next run completed to the reference lake; {:.1} s",
        failed.len(),
        failed.iter().cloned().collect::<Vec<_>>().join(", "),
        started.elapsed().as_secs_f64()
    );
}

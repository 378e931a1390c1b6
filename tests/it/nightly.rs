//! Nightly operation against the simulator with a controlled "today": incremental runs and their
//! watermarks, restatement within the lookback, backfill, the lock, interruption and repair, the
//! scheduler and `check`, each through the same entry points cron uses.

use crate::support::*;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use spotcost::cli::{self, BackfillArgs, Command, Locations, RunArgs, ShardArg};
use spotcost::config::Environment;
use spotcost::extract::{Dataset, Grain};
use spotcost::pipeline::Outcome;
use spotcost::schedule::Clock;
use spotcost::sim::{FaultResponse, ScriptedFault, SimConfig, SimServer, DEFAULT_TOKEN};
use spotcost::spot::Token;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn at(today: &str) -> Clock {
    let moment: DateTime<Utc> = Utc.from_utc_datetime(&day(today).and_hms_opt(2, 15, 0).unwrap());
    Arc::new(move || moment)
}

fn environment(server: &SimServer) -> Environment {
    Environment {
        token: Some(Token::new(DEFAULT_TOKEN)),
        api_url: Some(server.url()),
        ..Environment::default()
    }
}

/// A config file for `data_dir` with quick retries, plus `extra` lines.
fn config(dir: &Path, data_dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join(format!(
        "spotcost-{}.toml",
        data_dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\nbackoff_base_ms = 10\nmax_attempts = 6\n{extra}",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    path
}

async fn nightly(config: &Path, server: &SimServer, today: &str) -> bool {
    nightly_shard(config, server, today, None).await
}

async fn nightly_shard(
    config: &Path,
    server: &SimServer,
    today: &str,
    shard: Option<spotcost::pipeline::Shard>,
) -> bool {
    let args = RunArgs {
        locations: Locations {
            data_dir: None,
            config: Some(config.to_owned()),
        },
        sharding: ShardArg { shard },
    };
    cli::run(Command::Run(args), environment(server), at(today))
        .await
        .expect("the nightly run starts")
        == Outcome::Succeeded
}

/// The lake files of the daily datasets, by path and bytes.
fn daily_lake(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    Dataset::ALL
        .into_iter()
        .filter(|d| d.grain() == Grain::Daily)
        .flat_map(|d| {
            let folder = data_dir.join("lake").join(d.name());
            snapshot_tree(&folder)
                .into_iter()
                .map(move |(path, bytes)| (format!("{}/{path}", d.name()), bytes))
        })
        .collect()
}

fn account_cost(data_dir: &Path, account: &str, usage_day: NaiveDate) -> f64 {
    let db = duckdb();
    keyed_numbers(
        &db,
        &format!(
            "select account_id, sum(actual_cost_usd) from {} where account_id = '{account}' and usage_date = '{usage_day}' group by all",
            dataset_sql(data_dir, "account_costs")
        ),
    )
    .first()
    .map_or(0.0, |(_, cost)| *cost)
}

fn lake_days(data_dir: &Path, dataset: &str) -> Vec<String> {
    let mut days: Vec<String> = std::fs::read_dir(data_dir.join("lake").join(dataset))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    days.sort();
    days
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nightly_runs_equal_one_backfill_and_pick_up_restated_costs() {
    let server = simulator(SimConfig {
        restatement_days: 2,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let nights_dir = dir.path().join("nights");
    let backfill_dir = dir.path().join("backfill");
    let settings = "start_date = 2026-03-01\nlookback_days = 3\n";
    let nights_config = config(dir.path(), &nights_dir, settings);
    let backfill_config = config(dir.path(), &backfill_dir, settings);
    let organisation = server.shared_organisation();
    let account = organisation.accounts[0].id.clone();
    let watched_day = day("2026-03-05");

    let mut seen = Vec::new();
    for today in ["2026-03-06", "2026-03-07", "2026-03-08"] {
        server.set_today(day(today));
        assert!(
            nightly(&nights_config, &server, today).await,
            "night {today}"
        );
        let landed = account_cost(&nights_dir, &account, watched_day);
        let truth = organisation.account_day(&account, watched_day).actual.usd();
        assert_usd(
            &format!("{account} on {watched_day} as of {today}"),
            landed,
            truth,
        );
        seen.push(landed);
    }
    // 03-05 is provisional on the 6th and 7th (ages 1 and 2) and restated by the 8th, within the lookback.
    assert_usd("provisional both nights", seen[0], seen[1]);
    assert!(
        seen[2] > seen[0] + 0.01,
        "the restated day replaced the provisional one: {seen:?}"
    );
    // Snapshots are kept as history, one partition per run day.
    assert_eq!(
        lake_days(&nights_dir, "accounts"),
        ["day=2026-03-06", "day=2026-03-07", "day=2026-03-08"]
    );
    let watermarks = std::fs::read_to_string(nights_dir.join("state/watermarks.json")).unwrap();
    assert!(
        watermarks.contains(&format!("\"ocean_costs/{account}\": \"2026-03-07\"")),
        "{watermarks}"
    );

    // One backfill of the whole range, as of the last night, lands the same daily files.
    let backfill = |config: &Path, data_dir: Option<PathBuf>| {
        Command::Backfill(BackfillArgs {
            from: day("2026-03-01"),
            to: day("2026-03-07"),
            datasets: None,
            accounts: None,
            sharding: ShardArg { shard: None },
            locations: Locations {
                data_dir,
                config: Some(config.to_owned()),
            },
        })
    };
    assert!(
        cli::run(
            backfill(&backfill_config, None),
            environment(&server),
            at("2026-03-08")
        )
        .await
        .unwrap()
            == Outcome::Succeeded
    );
    assert_eq!(lake_days(&backfill_dir, "accounts"), Vec::<String>::new());
    let nights = daily_lake(&nights_dir);
    let backfilled = daily_lake(&backfill_dir);
    assert!(nights.len() > 40, "{} files", nights.len());
    assert_eq!(
        nights.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        backfilled.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(nights == backfilled, "three nights and one backfill differ");

    // A backfill beside the history moves no watermark.
    assert!(
        cli::run(
            backfill(&nights_config, None),
            environment(&server),
            at("2026-03-08")
        )
        .await
        .unwrap()
            == Outcome::Succeeded
    );
    assert_eq!(
        std::fs::read_to_string(nights_dir.join("state/watermarks.json")).unwrap(),
        watermarks
    );

    // The run history is in the warehouse: three nightly runs and the backfill so far.
    let db = duckdb::Connection::open(nights_dir.join("warehouse.duckdb")).unwrap();
    let runs = keyed_numbers(
        &db,
        "select command || ':' || status, count(*)::double from runs group by all order by 1",
    );
    assert_eq!(
        runs,
        [
            ("backfill:succeeded".to_owned(), 1.0),
            ("run:succeeded".to_owned(), 3.0)
        ]
    );
    let requests = count(
        &db,
        "select sum(api_requests)::bigint from run_items where dataset = 'ocean_costs'",
    );
    assert!(requests > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dataset_keeps_its_watermark_and_the_reports_unpublished() {
    let server = simulator(SimConfig {
        scripted_faults: vec![ScriptedFault {
            method: None,
            path_contains: "/audit/events".into(),
            times: 1000,
            response: FaultResponse::Status {
                status: 403,
                body: String::new(),
            },
        }],
        ..SimConfig::default()
    })
    .await;
    server.set_today(day("2026-03-06"));
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = config(dir.path(), &data_dir, "start_date = 2026-03-03\n");
    assert!(!nightly(&config, &server, "2026-03-06").await);
    let watermarks = std::fs::read_to_string(data_dir.join("state/watermarks.json")).unwrap();
    assert!(!watermarks.contains("audit_events"), "{watermarks}");
    assert!(watermarks.contains("ocean_costs"), "{watermarks}");
    assert!(!data_dir.join("warehouse.duckdb").exists());
    assert!(!data_dir.join("reports").exists());
    let db = duckdb();
    let record = keyed_numbers(
        &db,
        &format!(
            "select status || ': ' || error, exit_code::double from read_parquet('{}/state/runs/*.parquet')",
            data_dir.display()
        ),
    );
    assert_eq!(record.len(), 1);
    let (summary, exit_code) = &record[0];
    assert!(summary.starts_with("failed: extract: 1 of "), "{summary}");
    assert!(summary.contains("audit_events (org)"), "{summary}");
    assert_eq!(*exit_code, 1.0);
}

/// `spotcost run` against `server` as of `now`, with the config at `config`.
fn run_command(server: &SimServer, config: &Path, now: &str) -> std::process::Command {
    spotcost(
        &["run", "--config", &config.display().to_string()],
        &[
            ("SPOTINST_TOKEN", DEFAULT_TOKEN),
            ("SPOTINST_API_URL", &server.url()),
            ("SPOTCOST_NOW", now),
        ],
    )
}

fn spawn_run(server: &SimServer, config: &Path, now: &str) -> std::process::Child {
    run_command(server, config, now)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spotcost starts")
}

fn parquet_files(data_dir: &Path) -> usize {
    let lake = data_dir.join("lake");
    if !lake.exists() {
        return 0;
    }
    // The run is still writing: only the names are read.
    files_under(&lake)
        .iter()
        .filter(|path| path.ends_with(".parquet"))
        .count()
}

fn hidden_temporary_files(data_dir: &Path) -> Vec<String> {
    files_under(data_dir)
        .into_iter()
        .filter(|path| path.contains(".tmp-"))
        .collect()
}

async fn wait_for_files(data_dir: &Path, at_least: usize) {
    for _ in 0..600 {
        if parquet_files(data_dir) >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the run never landed {at_least} files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_extraction_is_repaired_without_gaps_or_duplicates() {
    let server = simulator(SimConfig {
        latency_ms: 15,
        rate_limit: 0,
        today: Some(day("2026-03-10")),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let killed_dir = dir.path().join("killed");
    let clean_dir = dir.path().join("clean");
    let settings = "start_date = 2026-03-01\nconcurrency = 4\n";
    let killed_config = config(dir.path(), &killed_dir, settings);
    let clean_config = config(dir.path(), &clean_dir, settings);
    let now = "2026-03-10T02:15:00Z";

    let mut child = spawn_run(&server, &killed_config, now);
    wait_for_files(&killed_dir, 15).await;
    child.kill().unwrap(); // SIGKILL: no destructor runs
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!killed_dir.join("warehouse.duckdb").exists());

    let repaired = output(run_command(&server, &killed_config, now)).await;
    assert_eq!(repaired.status.code(), Some(0), "{}", text(&repaired));
    assert!(hidden_temporary_files(&killed_dir).is_empty());
    let clean = output(run_command(&server, &clean_config, now)).await;
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(
        snapshot_tree(&killed_dir.join("lake")) == snapshot_tree(&clean_dir.join("lake")),
        "the repaired lake differs from an uninterrupted run's"
    );
    // No duplicate rows: every (account, day) of account costs appears once.
    let db = duckdb();
    let duplicates = count(
        &db,
        &format!(
            "select count(*) from (select account_id, usage_date, cost_block from {} group by all having count(*) > 1)",
            dataset_sql(&killed_dir, "account_costs")
        ),
    );
    assert_eq!(duplicates, 0);
    // The killed run left its trace in the history.
    let warehouse = duckdb::Connection::open(killed_dir.join("warehouse.duckdb")).unwrap();
    let statuses = keyed_numbers(
        &warehouse,
        "select status, count(*)::double from runs group by all order by 1",
    );
    assert_eq!(
        statuses,
        [("running".to_owned(), 1.0), ("succeeded".to_owned(), 1.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_run_cleanly_and_the_next_run_completes() {
    let server = simulator(SimConfig {
        latency_ms: 15,
        rate_limit: 0,
        today: Some(day("2026-03-10")),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = config(dir.path(), &data_dir, "start_date = 2026-03-01\n");
    let now = "2026-03-10T02:15:00Z";
    let child = spawn_run(&server, &config, now);
    wait_for_files(&data_dir, 10).await;
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("SIGTERM received"), "{}", text(&out));
    assert!(text(&out).contains("INTERRUPTED"), "{}", text(&out));
    assert!(hidden_temporary_files(&data_dir).is_empty());
    assert_eq!(
        std::fs::read_to_string(data_dir.join(".spotcost.lock")).unwrap(),
        "",
        "the lock was released"
    );
    assert!(!data_dir.join("reports").exists());
    let again = output(run_command(&server, &config, now)).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let summary = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(
        summary.starts_with("spotcost run 2026-03-10T02:15:") && summary.contains(": ok in"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_started_together_one_runs_the_other_says_why_it_did_not() {
    let server = simulator(SimConfig {
        latency_ms: 10,
        today: Some(day("2026-03-10")),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = config(dir.path(), &data_dir, "start_date = 2026-03-07\n");
    let now = "2026-03-10T02:15:00Z";
    let first = spawn_run(&server, &config, now);
    let second = spawn_run(&server, &config, now);
    let (first, second) = tokio::task::spawn_blocking(move || {
        (
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        )
    })
    .await
    .unwrap();
    let mut codes = [first.status.code(), second.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(0), Some(1)],
        "{}\n---\n{}",
        text(&first),
        text(&second)
    );
    let refused = if first.status.code() == Some(1) {
        &first
    } else {
        &second
    };
    assert!(
        text(refused).contains("another spotcost run holds the lock"),
        "{}",
        text(refused)
    );
    assert!(text(refused).contains("spotcost run` from 2026-03-10T02:15"));
}

#[tokio::test]
async fn an_invalid_cron_expression_exits_2_naming_it() {
    for expression in ["61 * * * *", "* * *", "0 0 30 2 *"] {
        let out = output(spotcost(
            &["schedule", "--cron", expression, "--max-runs", "1"],
            &[("SPOTINST_TOKEN", "t")],
        ))
        .await;
        assert_eq!(out.status.code(), Some(2), "{expression}: {}", text(&out));
        assert!(text(&out).contains(expression), "{}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_the_nightly_job_at_its_fire_times() {
    let server = simulator(SimConfig {
        today: Some(day("2026-03-10")),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = config(dir.path(), &data_dir, "start_date = 2026-03-08\n");
    // Run from a folder without queries/ or reports/: the copies built into the binary serve.
    let mut scheduler = spotcost(
        &[
            "schedule",
            "--cron",
            "*/2 * * * * *",
            "--max-runs",
            "2",
            "--config",
            &config.display().to_string(),
        ],
        &[
            ("SPOTINST_TOKEN", DEFAULT_TOKEN),
            ("SPOTINST_API_URL", &server.url()),
            ("SPOTCOST_NOW", "2026-03-10T02:14:59Z"),
        ],
    );
    scheduler.current_dir(dir.path());
    let out = output(scheduler).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summaries: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("spotcost run "))
        .collect();
    assert_eq!(summaries.len(), 2, "{stdout}");
    assert!(summaries.iter().all(|l| l.contains(": ok in")), "{stdout}");
    assert!(text(&out).contains("next run at"), "{}", text(&out));
    assert!(data_dir.join("reports/latest/index.html").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_permission_a_refused_dataset_needs() {
    let refused = simulator(SimConfig {
        scripted_faults: vec![ScriptedFault {
            method: None,
            path_contains: "/audit/events".into(),
            times: 100,
            response: FaultResponse::Status {
                status: 403,
                body: String::new(),
            },
        }],
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = config(dir.path(), &data_dir, "schedule = \"15 2 * * *\"\n");
    let check = |server: &SimServer| {
        spotcost(
            &["check", "--config", &config.display().to_string()],
            &[
                ("SPOTINST_TOKEN", DEFAULT_TOKEN),
                ("SPOTINST_API_URL", &server.url()),
            ],
        )
    };
    let out = output(check(&refused)).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("audit_events: refused (403)"), "{said}");
    assert!(said.contains("setup:describeAllAuditEvents"), "{said}");
    assert!(said.contains("ocean_costs"), "{said}");

    let allowed = simulator(SimConfig::default()).await;
    let out = output(check(&allowed)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("the nightly job can run"),
        "{}",
        text(&out)
    );
    // `check` is read-only: no lake, no state beyond the folder it proved writable.
    assert!(!data_dir.join("lake").exists());
}

/// Two machines each extracting one shard write disjoint files whose union is, byte for byte,
/// the lake of one unsharded run; a shard's nightly run leaves modelling to the merged lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_together_equal_one_unsharded_run() {
    let server = simulator(SimConfig {
        today: Some(day("2026-03-11")),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut lakes = Vec::new();
    for (name, shard) in [
        ("whole", None),
        ("shard-1", Some("1/2")),
        ("shard-2", Some("2/2")),
    ] {
        let data_dir = dir.path().join(name);
        let config = config(dir.path(), &data_dir, "start_date = 2026-03-01\n");
        let shard = shard.map(|s| s.parse().expect("a valid shard"));
        assert!(
            nightly_shard(&config, &server, "2026-03-11", shard).await,
            "{name} failed"
        );
        assert_eq!(
            data_dir.join("warehouse.duckdb").exists(),
            shard.is_none(),
            "{name}: only the unsharded run builds the warehouse"
        );
        lakes.push(snapshot_tree(&data_dir.join("lake")));
    }
    let whole = &lakes[0];
    let (first, second) = (&lakes[1], &lakes[2]);
    assert!(
        !first.is_empty() && !second.is_empty(),
        "each shard extracts something"
    );
    let accounts_of = |lake: &[(String, Vec<u8>)]| -> std::collections::BTreeSet<String> {
        lake.iter()
            .filter_map(|(path, _)| path.rsplit('/').next())
            .filter(|file| file.starts_with("part-act"))
            .map(str::to_owned)
            .collect()
    };
    assert!(
        accounts_of(first).is_disjoint(&accounts_of(second)),
        "an account belongs to one shard"
    );
    assert!(
        !accounts_of(first).is_empty() && !accounts_of(second).is_empty(),
        "both shards own accounts"
    );
    let mut merged: Vec<(String, Vec<u8>)> = first.iter().chain(second).cloned().collect();
    merged.sort();
    let merged_paths: Vec<&String> = merged.iter().map(|(p, _)| p).collect();
    let whole_paths: Vec<&String> = whole.iter().map(|(p, _)| p).collect();
    assert_eq!(
        merged_paths, whole_paths,
        "the shards' files are exactly the unsharded run's"
    );
    assert!(merged == *whole, "and byte for byte the same");
}

/// A local webhook: answers every POST with the status in `status` and keeps each request's path
/// and JSON body.
struct Webhook {
    url: String,
    status: Arc<std::sync::atomic::AtomicU16>,
    received: Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Webhook {
    async fn start(path: &str) -> Webhook {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (answer, keep) = (status.clone(), received.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                // Headers, then as much body as Content-Length says.
                let (head_end, length) = loop {
                    let read = socket.read(&mut buffer).await.unwrap();
                    assert!(read > 0, "the request ended early");
                    request.extend_from_slice(&buffer[..read]);
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .map_or(0, |value| value.trim().parse::<usize>().unwrap());
                        break (end + 4, length);
                    }
                };
                while request.len() < head_end + length {
                    let read = socket.read(&mut buffer).await.unwrap();
                    assert!(read > 0, "the body ended early");
                    request.extend_from_slice(&buffer[..read]);
                }
                let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                let body = serde_json::from_slice(&request[head_end..]).expect("a JSON body");
                keep.lock().unwrap().push((path, body));
                let code = answer.load(std::sync::atomic::Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 {code} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            }
        });
        Webhook {
            url,
            status,
            received,
        }
    }

    fn answer(&self, code: u16) {
        self.status.store(code, std::sync::atomic::Ordering::SeqCst);
    }

    fn received(&self) -> Vec<(String, serde_json::Value)> {
        self.received.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_raise_alerts_once_through_the_webhook_and_exit_code_3() {
    // The simulator raises a group's capacity on 2026-11-11; the night of the 13th lands the 12th,
    // the first full day at the raised capacity, over a 16-day baseline.
    let server = simulator(SimConfig {
        today: Some(day("2026-11-13")),
        ..SimConfig::default()
    })
    .await;
    let raise = server
        .organisation()
        .capacity_changes(day("2026-11-11"))
        .into_iter()
        .next()
        .expect("a capacity raise on 2026-11-11");
    let secret = "/services/T0001/B0001/hook-secret-4f9a";
    let webhook = Webhook::start(secret).await;
    let min_usd = 50.0;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = config(
        dir.path(),
        &data_dir,
        &format!(
            "start_date = 2026-10-26\nanomaly_alert_usd = {min_usd}\nanomaly_webhook_url = {:?}\n",
            webhook.url
        ),
    );
    let now = "2026-11-13T02:15:00Z";

    // The webhook is down: the run fails, naming only the host, and nothing is marked alerted.
    webhook.answer(503);
    let down = output(run_command(&server, &config, now)).await;
    assert_eq!(down.status.code(), Some(1), "{}", text(&down));
    assert!(
        text(&down).contains("webhook at 127.0.0.1") && text(&down).contains("503"),
        "{}",
        text(&down)
    );
    assert_eq!(webhook.received().len(), 1);
    assert!(!data_dir.join("state/anomaly_alerts.json").exists());

    // The next run posts the same anomalies and exits 3.
    webhook.answer(200);
    let alerted = output(run_command(&server, &config, now)).await;
    assert_eq!(alerted.status.code(), Some(3), "{}", text(&alerted));
    let received = webhook.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].1, received[1].1,
        "the retry posts the same alerts"
    );
    let (path, body) = &received[1];
    assert_eq!(path, secret);
    let anomalies = body["anomalies"].as_array().expect("a list of anomalies");
    let raised = anomalies
        .iter()
        .find(|a| {
            a["day"] == "2026-11-12"
                && a["scope"] == "account"
                && a["account_id"] == raise.account_id
        })
        .unwrap_or_else(|| panic!("the raise's account on 2026-11-12 alerted: {body:#}"));
    let truth = server
        .organisation()
        .account_day(&raise.account_id, day("2026-11-12"))
        .actual
        .usd();
    assert_usd(
        "the alerted actual",
        raised["actual_usd"].as_f64().unwrap(),
        truth,
    );
    let cause = raised["cause"].as_str().expect("a cause");
    assert!(
        cause.contains(&raise.user) && cause.contains(&raise.group_id),
        "{cause}"
    );
    for anomaly in anomalies {
        assert!(
            anomaly["delta_usd"].as_f64().unwrap().abs() >= min_usd,
            "{anomaly}"
        );
    }
    let summary = body["text"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("spotcost: {} new cost anomal", anomalies.len()))
            && summary.contains(&raise.group_id),
        "{summary}"
    );
    // Each anomaly is logged for cron mail, with its cause.
    let log = text(&alerted);
    assert!(
        log.contains("cost anomaly: 2026-11-12") && log.contains(cause),
        "{log}"
    );

    // A re-run finds nothing new: no post, exit 0.
    let again = output(run_command(&server, &config, now)).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(webhook.received().len(), 2);

    for out in [&down, &alerted, &again] {
        assert!(!text(out).contains("hook-secret"), "{}", text(out));
    }
    for (path, bytes) in snapshot_tree(&data_dir) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("hook-secret"),
            "{path} holds the webhook's secret"
        );
    }
}

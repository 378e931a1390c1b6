//! The organisation instance-cost CSV export into Parquet, against DuckDB's own
//! `copy (from read_csv(…)) to '….parquet'` on the same file in the same run.
//!
//! The input is one account's day of about 5 million rows (about 1 GB), in the format the simulator
//! serves and Spot documents (the 19-column header, every row ending in a comma), generated once
//! and cached in the bench folder. The simulator (in this process) serves that file as the export
//! ([`SimConfig::instance_costs_export_file`]); the measured child is `spotcost extract
//! --datasets instance_costs` for that account and day, the real code path: HTTP download,
//! streamed parse and validation, Parquet (zstd) into a temporary file, fsync, rename. DuckDB
//! (also in this process, all cores) reads the same file from disk and writes zstd Parquet.
//! The two alternate over three rounds; the figure is the ratio of the medians. Both outputs
//! are checked against each other: the same rows and, to the micro-dollar, the same actual cost.

use crate::common::{megabytes, run_measured, seconds, Bench, Figure, Target};
use anyhow::{bail, Context};
use chrono::NaiveDate;
use spotcost::sim::{SimConfig, SimServer, DEFAULT_TOKEN};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROWS: u64 = 5_000_000;
const ROUNDS: usize = 3;
const HEADER: &str = "id,accountId,accountName,resourceId,cloudProvider,instanceId,instanceType,region,useCase,lifeCycle,product,launchTime,terminationTime,runningHours,odHourlyPrice,odCost,actualCost,savings,reservationId";

pub fn run(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).expect("a valid date");
    let today = day + chrono::Duration::days(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The simulator's first account owns the export; the file is generated for it.
    let probe = runtime.block_on(SimServer::start(
        "127.0.0.1:0".parse()?,
        SimConfig::default(),
    ))?;
    let account = probe
        .organisation()
        .accounts
        .first()
        .context("the simulated organisation has no account")?;
    let (account_id, account_name) = (account.id.clone(), account.name.clone());
    runtime.block_on(probe.shutdown());

    let input = export_file(bench, &account_id, &account_name, day)?;
    let input_bytes = std::fs::metadata(&input)?.len();
    let simulator = runtime.block_on(SimServer::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            today: Some(today),
            rate_limit: 0,
            instance_costs_export_file: Some(input.clone()),
            ..SimConfig::default()
        },
    ))?;

    eprintln!("{}", duckdb_reading(&input)?);

    let mut spotcost_times = Vec::new();
    let mut duckdb_times = Vec::new();
    let mut peak_rss = 0;
    let mut outputs = (PathBuf::new(), PathBuf::new());
    for round in 0..ROUNDS {
        for turn in 0..2 {
            // Alternate which goes first, so neither always finds the caches as the other left them.
            if (round + turn) % 2 == 0 {
                let dir = bench.scratch("csv-duckdb")?;
                let output = dir.join("instance_costs.parquet");
                duckdb_times.push(duckdb_copy(&input, &output)?);
                outputs.1 = output;
            } else {
                let dir = bench.scratch("csv-spotcost")?;
                let measured = run_measured(
                    bench
                        .spotcost(&[
                            "extract",
                            "--data-dir",
                            &dir.to_string_lossy(),
                            "--api-url",
                            &simulator.url(),
                            "--datasets",
                            "instance_costs",
                            "--accounts",
                            &account_id,
                            "--from",
                            &day.to_string(),
                            "--to",
                            &day.to_string(),
                        ])
                        .current_dir(&dir)
                        .env("SPOTINST_TOKEN", DEFAULT_TOKEN)
                        .env("SPOTCOST_NOW", format!("{today}T06:00:00Z")),
                )
                .context("spotcost extract of the large export")?;
                spotcost_times.push(measured.elapsed);
                peak_rss = peak_rss.max(measured.peak_rss_bytes);
                outputs.0 = partition_file(&dir, day)?;
            }
        }
        eprintln!(
            "round {}: spotcost {:.2} s, DuckDB {:.2} s",
            round + 1,
            seconds(spotcost_times[round]),
            seconds(duckdb_times[round])
        );
    }
    runtime.block_on(simulator.shutdown());
    let (rows, micros) = compare_outputs(&outputs.0, &outputs.1)?;

    let spotcost_median = median(&spotcost_times);
    let duckdb_median = median(&duckdb_times);
    let rate = |time: Duration| megabytes(input_bytes) / seconds(time);
    let list = |times: &[Duration]| {
        times
            .iter()
            .map(|t| format!("{:.2}", seconds(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let parquet_mb = |path: &Path| std::fs::metadata(path).map_or(0.0, |m| megabytes(m.len()));
    Ok(vec![
        Figure::new(
            "csv-throughput",
            rate(spotcost_median) / rate(duckdb_median),
            "×",
            Target::AtLeast(0.9),
            format!(
                "spotcost {:.0} MB/s vs DuckDB {:.0} MB/s (medians of {ROUNDS}: spotcost {} s, DuckDB {} s); \
                 {rows} rows, {:.0} MB CSV → Parquet zstd {:.0} MB (spotcost) / {:.0} MB (DuckDB); actual cost {:.2} USD in both",
                rate(spotcost_median),
                rate(duckdb_median),
                list(&spotcost_times),
                list(&duckdb_times),
                megabytes(input_bytes),
                parquet_mb(&outputs.0),
                parquet_mb(&outputs.1),
                micros as f64 / 1e6,
            ),
        ),
        Figure::new(
            "csv-memory",
            megabytes(peak_rss),
            " MB",
            Target::AtMost(512.0),
            format!(
                "peak resident memory (VmHWM) of `spotcost extract`, largest of {ROUNDS} runs"
            ),
        ),
    ])
}

/// DuckDB's COPY of the CSV into zstd Parquet (its default is snappy; spotcost writes zstd level
/// 3, which is also DuckDB's default zstd level), with every core DuckDB wants.
fn duckdb_copy(input: &Path, output: &Path) -> anyhow::Result<Duration> {
    let connection = duckdb::Connection::open_in_memory()?;
    let started = std::time::Instant::now();
    let rows = connection
        .execute(
            &format!(
                "copy (from read_csv('{}')) to '{}' (format parquet, compression zstd)",
                input.display(),
                output.display()
            ),
            [],
        )
        .context("DuckDB's copy of the export")?;
    let elapsed = started.elapsed();
    if rows as u64 != ROWS {
        bail!("DuckDB copied {rows} rows, expected {ROWS}");
    }
    Ok(elapsed)
}

/// DuckDB's version and the column types its CSV sniffer settles on, for the record.
fn duckdb_reading(input: &Path) -> anyhow::Result<String> {
    let connection = duckdb::Connection::open_in_memory()?;
    let (version, threads): (String, String) = connection.query_row(
        "select version(), current_setting('threads')::varchar",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let mut statement =
        connection.prepare(&format!("describe from read_csv('{}')", input.display()))?;
    let columns: Vec<String> = statement
        .query_map([], |row| {
            Ok(format!(
                "{} {}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(format!(
        "DuckDB {version} ({threads} threads) reads the export as: {}",
        columns.join(", ")
    ))
}

fn partition_file(data_dir: &Path, day: NaiveDate) -> anyhow::Result<PathBuf> {
    let folder = data_dir.join(format!("lake/instance_costs/day={day}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    match (files.pop(), files.is_empty()) {
        (Some(file), true) => Ok(file),
        _ => bail!("expected one partition file in {}", folder.display()),
    }
}

/// Both outputs hold every row and the same actual cost to the micro-dollar: (rows, micro-USD).
fn compare_outputs(spotcost: &Path, duckdb: &Path) -> anyhow::Result<(u64, i64)> {
    let connection = duckdb::Connection::open_in_memory()?;
    let totals = |sql: String| -> anyhow::Result<(u64, i64)> {
        Ok(connection.query_row(&sql, [], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)?))
        })?)
    };
    let ours = totals(format!(
        "select count(*), sum(round(actual_cost_usd * 1e6)::bigint) from read_parquet('{}')",
        spotcost.display()
    ))?;
    let theirs = totals(format!(
        "select count(*), sum(round(actualCost * 1e6)::bigint) from read_parquet('{}')",
        duckdb.display()
    ))?;
    if ours != theirs || ours.0 != ROWS {
        bail!(
            "the outputs disagree: spotcost has {} rows and {} micro-USD, DuckDB {} rows and {} micro-USD ({ROWS} rows exported)",
            ours.0,
            ours.1,
            theirs.0,
            theirs.1
        );
    }
    Ok(ours)
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// The cached export of `account` for `day`, generated on first use (into a temporary file,
/// renamed when complete, so an interrupted generation is not reused).
fn export_file(
    bench: &Bench,
    account_id: &str,
    account_name: &str,
    day: NaiveDate,
) -> anyhow::Result<PathBuf> {
    let path = bench
        .dir
        .join(format!("instance-costs-{account_id}-{day}-{ROWS}.csv"));
    if path.exists() {
        return Ok(path);
    }
    eprintln!("generating {} ({ROWS} rows)…", path.display());
    let partial = path.with_extension("csv.partial");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&partial)?);
    writeln!(out, "{HEADER}")?;
    let name = csv_field(account_name);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        // SplitMix64: the same file on every machine.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    const TYPES: [(&str, u64); 8] = [
        ("m5.large", 96_000),
        ("m5.2xlarge", 384_000),
        ("c5.xlarge", 170_000),
        ("r5.4xlarge", 1_008_000),
        ("t3.medium", 41_600),
        ("m6i.8xlarge", 1_536_000),
        ("c6g.2xlarge", 272_000),
        ("g4dn.xlarge", 526_000),
    ];
    const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
    const USE_CASES: [&str; 4] = ["K8S", "Load Balancing", "Stateful", "EMR"];
    let day_start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    for id in 1..=ROWS {
        let random = next();
        let (instance_type, hourly_micros) = TYPES[(random % 8) as usize];
        let region = REGIONS[((random >> 8) % 4) as usize];
        let use_case = USE_CASES[((random >> 12) % 4) as usize];
        let spot = (random >> 16) % 10 < 8;
        let group = (random >> 20) % 4000;
        // Running within the day: launched up to 10 days before, a third terminated that day.
        let launched = day_start - chrono::Duration::seconds(((random >> 24) % 864_000) as i64);
        let terminated = ((random >> 44) % 3 == 0)
            .then(|| day_start + chrono::Duration::seconds(((random >> 46) % 86_000) as i64 + 60));
        let running_milli = match terminated {
            Some(end) => ((end - day_start.max(launched)).num_seconds() * 1000 / 3600).max(1),
            None => 24_000,
        } as u64;
        let od_micros = hourly_micros * running_milli / 1000;
        let actual_micros = if spot { od_micros * 3 / 10 } else { od_micros };
        let reservation = if !spot && (random >> 50) % 4 == 0 {
            format!("ri-{:017x}", random >> 4)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{id},{account_id},{name},sig-{group:08x},AWS,i-{:017x},{instance_type},{region},{use_case},{},LINUX,{},{},{},{},{},{},{},{reservation},",
            next() >> 4,
            if spot { "EXCESS" } else { "ON_DEMAND" },
            launched.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            terminated.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()).unwrap_or_default(),
            fixed(running_milli, 3),
            fixed(hourly_micros, 6),
            fixed(od_micros, 6),
            fixed(actual_micros, 6),
            fixed(od_micros - actual_micros, 6),
        )?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// `value` with `places` implied decimals, as the export writes money and hours.
fn fixed(value: u64, places: u32) -> String {
    let scale = 10u64.pow(places);
    format!(
        "{}.{:0width$}",
        value / scale,
        value % scale,
        width = places as usize
    )
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

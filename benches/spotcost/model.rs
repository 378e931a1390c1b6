//! A year of history: `spotcost model` over the year-long lake (22 M Ocean rows, 9.9 M
//! instance-cost rows, 19,120 files), measured side by side with one plain DuckDB
//! scan-and-aggregate of every dataset the build reads, over the same Parquet files in this
//! process with the same thread count: the full build against that
//! scan (target ≤ 4 ×), the build's peak memory under the configured `duckdb_memory_limit`
//! (target ≤ 2 GB), and the nightly incremental rebuild after four days are restated (the
//! lookback and the new day) against the full build (target ≤ 10 %).

use crate::common::{megabytes, run_measured, seconds, timed, Bench, Figure, Target};
use crate::year_lake;
use anyhow::Context;
use std::path::Path;

/// Days a nightly run replaces: yesterday and the `lookback_days` (3) before it.
const NIGHTLY_DAYS: i64 = 4;

pub fn run(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let data_dir = year_lake::year_lake(bench)?;
    let data = data_dir.to_string_lossy().into_owned();
    let config = year_lake::config_path(bench).to_string_lossy().into_owned();

    let full = run_measured(&mut bench.spotcost(&[
        "model",
        "--full",
        "--data-dir",
        &data,
        "--config",
        &config,
    ]))?;
    let (scan_time, (scanned, large_scan_time)) = timed(|| plain_scan(&data_dir))?;
    let files = parquet_files(&data_dir.join("lake"));

    // The nightly case: the lookback and yesterday are rewritten (restated figures), the rest of
    // the year is as the last build saw it.
    let revision = next_revision(&data_dir)?;
    for back in 0..NIGHTLY_DAYS {
        year_lake::restate_day(
            &data_dir,
            year_lake::last_day() - chrono::Duration::days(back),
            revision,
        )?;
    }
    let incremental =
        run_measured(&mut bench.spotcost(&["model", "--data-dir", &data, "--config", &config]))?;
    let (kind, days) = last_build(&data_dir)?;
    if kind != "incremental" {
        anyhow::bail!("the nightly rebuild ran as a {kind} build, not an incremental one");
    }

    let full_s = seconds(full.elapsed);
    let scan_s = seconds(scan_time);
    let incremental_s = seconds(incremental.elapsed);
    Ok(vec![
        Figure::new(
            "model-full",
            full_s / scan_s,
            " ×",
            Target::AtMost(4.0),
            format!(
                "full build {full_s:.1} s against one DuckDB scan-and-aggregate of the {} datasets it reads, {scan_s:.1} s ({scanned} rows in {} files, {} threads); against the Ocean and instance-cost scan alone ({:.1} s) {:.1}×",
                SCANNED.len(),
                files,
                threads(),
                seconds(large_scan_time),
                full_s / seconds(large_scan_time),
            ),
        ),
        Figure::new(
            "model-memory",
            megabytes(full.peak_rss_bytes),
            " MB",
            Target::AtMost(2048.0),
            format!(
                "peak RSS of the full build with duckdb_memory_limit = 1536MB; the incremental build peaked at {:.0} MB",
                megabytes(incremental.peak_rss_bytes)
            ),
        ),
        Figure::new(
            "model-incremental",
            incremental_s / full_s,
            " ×",
            Target::AtMost(0.10),
            format!(
                "nightly rebuild {incremental_s:.1} s ({days} day(s) recomputed) against the full build {full_s:.1} s"
            ),
        ),
    ])
}

/// How many Parquet files are under `folder`.
fn parquet_files(folder: &Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    parquet_files(&path)
                } else {
                    usize::from(path.extension().is_some_and(|e| e == "parquet"))
                }
            })
            .sum()
    })
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The datasets the models read, each with the keys and the figure a plain scan-and-aggregate
/// of it groups and sums: the reference reads every file the build reads, once.
const SCANNED: [(&str, &str, &str); 9] = [
    (
        "ocean_costs",
        "day, cluster_id, namespace",
        "total_cost_usd",
    ),
    (
        "instance_costs",
        "day, account_id, resource_id",
        "actual_cost_usd",
    ),
    ("account_costs", "day, account_id", "actual_cost_usd"),
    (
        "elastigroup_costs",
        "day, account_id, group_id",
        "actual_cost_usd",
    ),
    (
        "managed_instance_costs",
        "day, account_id, managed_instance_id",
        "actual_cost_usd",
    ),
    ("accounts", "day, account_id", "1"),
    ("audit_events", "day, account_id", "1"),
    ("ocean_rightsizing", "day, cluster_id", "1"),
    (
        "potential_savings",
        "day, account_id",
        "monthly_savings_usd",
    ),
];

/// The reference: one scan-and-aggregate of each dataset the build reads, as an analyst would
/// type it. Returns the rows read and the time the two large datasets (the first two) took.
fn plain_scan(data_dir: &Path) -> anyhow::Result<(i64, std::time::Duration)> {
    let lake = data_dir.join("lake");
    let connection = duckdb::Connection::open_in_memory()?;
    connection.execute_batch(&format!("set threads = {}", threads()))?;
    let mut rows = 0;
    let started = std::time::Instant::now();
    let mut large = std::time::Duration::ZERO;
    for (index, (dataset, keys, value)) in SCANNED.into_iter().enumerate() {
        let glob = lake.join(dataset).join("**").join("*.parquet");
        let sql = format!(
            "select sum(n), count(*) from (select {keys}, sum({value}) as figure, count(*) as n \
             from read_parquet('{}', hive_partitioning = true) group by all)",
            glob.display()
        );
        let (read, _groups): (Option<i64>, i64) = connection
            .query_row(&sql, [], |row| Ok((row.get(0)?, row.get(1)?)))
            .with_context(|| format!("scanning {dataset}"))?;
        rows += read.unwrap_or(0);
        if index == 1 {
            large = started.elapsed();
        }
    }
    Ok((rows, large))
}

/// A new restatement number for this run, so the rewritten days really change.
fn next_revision(data_dir: &Path) -> anyhow::Result<u64> {
    let path = data_dir
        .parent()
        .unwrap_or(data_dir)
        .join("restatement-revision");
    let last: u64 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    std::fs::write(&path, format!("{}\n", last + 1))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(last + 1)
}

/// What the last build recorded: its kind and the days it recomputed.
fn last_build(data_dir: &Path) -> anyhow::Result<(String, usize)> {
    let (kind, days) = spotcost::models::last_build(data_dir)
        .context("the build left no record of what it built")?;
    Ok((kind.as_str().to_owned(), days))
}

//! A year of history: `spotcost model` over the year-long lake (22 M Ocean rows, 9.9 M
//! instance-cost rows), measured side by side with one plain DuckDB scan-and-aggregate over the
//! same Parquet files in this process with the same thread count: the full build against that
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
    let (scan_time, scanned) = timed(|| plain_scan(&data_dir))?;

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
                "full build {full_s:.1} s against one DuckDB scan-and-aggregate of {scan_s:.1} s ({scanned} Ocean and instance-cost rows read, {} threads)",
                threads()
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

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The reference: one scan-and-aggregate per large dataset, as an analyst would type it.
fn plain_scan(data_dir: &Path) -> anyhow::Result<i64> {
    let lake = data_dir.join("lake");
    let connection = duckdb::Connection::open_in_memory()?;
    connection.execute_batch(&format!("set threads = {}", threads()))?;
    let mut rows = 0;
    for (dataset, keys, value) in [
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
    ] {
        let glob = lake.join(dataset).join("**").join("*.parquet");
        let sql = format!(
            "select sum(n), count(*) from (select {keys}, sum({value}) as cost_usd, count(*) as n \
             from read_parquet('{}', hive_partitioning = true) group by all)",
            glob.display()
        );
        let (read, _groups): (i64, i64) = connection
            .query_row(&sql, [], |row| Ok((row.get(0)?, row.get(1)?)))
            .with_context(|| format!("scanning {dataset}"))?;
        rows += read;
    }
    Ok(rows)
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

//! Extraction at organisation scale against the API's own bound.
//!
//! The simulator (in this process) serves the `xlarge` organisation (20 accounts, about 2,000
//! Elastigroups, 100 Ocean clusters of 40 namespaces) with 50 ms added to every response and a
//! per-route rate limit; `spotcost extract` (a child process) takes 30 days of every dataset.
//! The bound is the larger of (requests × latency ÷ concurrency) and, for the busiest route,
//! (its requests ÷ its rate limit): no client can finish sooner. The requests are the ones the
//! simulator answered, per route, so a request the data did not need counts against spotcost.
//! A second measurement takes one day of two accounts at `--concurrency 1` and at the configured
//! concurrency to give the speedup (30 days at concurrency 1 would take most of an hour).

use crate::common::{run_measured, seconds, Bench, Figure, Target};
use anyhow::Context;
use chrono::NaiveDate;
use spotcost::sim::{Scale, SimConfig, SimServer, DEFAULT_TOKEN};
use std::collections::BTreeMap;
use std::time::Duration;

const LATENCY_MS: u64 = 50;
/// Requests per 60 s per route: high enough that the busiest route's bound is of the same order
/// as the latency bound at `CONCURRENCY`, so both constraints bite.
const RATE_LIMIT: u32 = 40_000;
const CONCURRENCY: usize = 32;
const DAYS: i64 = 30;

struct Extraction {
    wall: Duration,
    /// CPU time of the spotcost child, and of the simulator in this process.
    client_cpu: Duration,
    simulator_cpu: Duration,
    peak_rss_bytes: u64,
    per_route: BTreeMap<String, u64>,
    rate_limited: u64,
    /// The simulator's time answering requests, summed over them.
    answering: Duration,
}

impl Extraction {
    fn requests(&self) -> u64 {
        self.per_route.values().sum()
    }

    /// The routes, busiest first.
    fn routes_by_requests(&self) -> Vec<(&str, u64)> {
        let mut routes: Vec<_> = self
            .per_route
            .iter()
            .map(|(r, n)| (r.as_str(), *n))
            .collect();
        routes.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        routes
    }

    /// The mean number of requests the simulator had in flight.
    fn mean_in_flight(&self) -> f64 {
        seconds(self.answering) / seconds(self.wall)
    }

    /// (bound, what sets it).
    fn bound(&self, concurrency: usize) -> (Duration, String) {
        let latency_bound = Duration::from_secs_f64(
            self.requests() as f64 * LATENCY_MS as f64 / 1000.0 / concurrency as f64,
        );
        let (busiest, busiest_requests) = self
            .routes_by_requests()
            .first()
            .copied()
            .unwrap_or_default();
        let route_bound =
            Duration::from_secs_f64(busiest_requests as f64 / RATE_LIMIT as f64 * 60.0);
        if route_bound > latency_bound {
            (
                route_bound,
                format!("rate limit of {busiest} ({busiest_requests} requests)"),
            )
        } else {
            (latency_bound, format!("latency × requests ÷ {concurrency}"))
        }
    }
}

/// Extracts `from..=to` (of the first `accounts` accounts; all when `None`) from a fresh simulator.
fn extract(
    bench: &Bench,
    name: &str,
    from: NaiveDate,
    to: NaiveDate,
    concurrency: usize,
    accounts: Option<usize>,
) -> anyhow::Result<Extraction> {
    let runtime = tokio::runtime::Runtime::new()?;
    let today = to + chrono::Duration::days(1);
    let simulator = runtime.block_on(SimServer::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            scale: Scale::Xlarge,
            latency_ms: LATENCY_MS,
            rate_limit: RATE_LIMIT,
            today: Some(today),
            ..SimConfig::default()
        },
    ))?;
    let dir = bench.scratch(name)?;
    let config = dir.join("spotcost.toml");
    std::fs::write(&config, format!("concurrency = {concurrency}\n"))?;
    let cpu_before = crate::common::own_cpu_time();
    let mut command = bench.spotcost(&[
        "extract",
        "--data-dir",
        &dir.join("data").to_string_lossy(),
        "--config",
        &config.to_string_lossy(),
        "--api-url",
        &simulator.url(),
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
    ]);
    command
        .env("SPOTINST_TOKEN", DEFAULT_TOKEN)
        .env("SPOTCOST_NOW", format!("{today}T06:00:00Z"));
    if let Some(count) = accounts {
        let ids: Vec<&str> = simulator
            .organisation()
            .accounts
            .iter()
            .take(count)
            .map(|a| a.id.as_str())
            .collect();
        command.args(["--accounts", &ids.join(",")]);
    }
    let measured = run_measured(&mut command)
        .with_context(|| format!("extracting {from}..{to} at concurrency {concurrency}"))?;
    let extraction = Extraction {
        wall: measured.elapsed,
        client_cpu: measured.cpu,
        simulator_cpu: crate::common::own_cpu_time() - cpu_before,
        peak_rss_bytes: measured.peak_rss_bytes,
        per_route: simulator.accepted_requests_per_route(),
        rate_limited: simulator.rate_limit_blocks(),
        answering: simulator.answering_time(),
    };
    runtime.block_on(simulator.shutdown());
    Ok(extraction)
}

pub fn run(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let to = NaiveDate::from_ymd_opt(2026, 10, 31).expect("a valid date");
    let from = to - chrono::Duration::days(DAYS - 1);
    let full = extract(bench, "extract-30-days", from, to, CONCURRENCY, None)?;
    let (bound, bound_by) = full.bound(CONCURRENCY);
    let busiest: Vec<String> = full
        .routes_by_requests()
        .iter()
        .take(4)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    let one_day_parallel = extract(bench, "extract-1-day", to, to, CONCURRENCY, Some(2))?;
    let one_day_serial = extract(bench, "extract-1-day-serial", to, to, 1, Some(2))?;
    let speedup = seconds(one_day_serial.wall) / seconds(one_day_parallel.wall);
    Ok(vec![
        Figure::new(
            "extract-vs-bound",
            seconds(full.wall) / seconds(bound),
            "",
            Target::AtMost(1.25),
            format!(
                "{DAYS} days in {:.1} s against a bound of {:.1} s ({bound_by}); {} requests ({}), {} rate-limit blocks; {:.1} requests in flight on average; CPU: spotcost {:.0} s, simulator {:.0} s; peak memory {:.0} MB; {LATENCY_MS} ms latency, {RATE_LIMIT}/min per route, concurrency {CONCURRENCY}",
                seconds(full.wall),
                seconds(bound),
                full.requests(),
                busiest.join(", "),
                full.rate_limited,
                full.mean_in_flight(),
                seconds(full.client_cpu),
                seconds(full.simulator_cpu),
                crate::common::megabytes(full.peak_rss_bytes),
            ),
        ),
        Figure::new(
            "extract-speedup",
            speedup,
            "×",
            Target::AtLeast(1.0),
            format!(
                "one day of two accounts at concurrency {CONCURRENCY}: {:.1} s, at concurrency 1: {:.1} s ({} requests); informational, the ideal is {CONCURRENCY}×",
                seconds(one_day_parallel.wall),
                seconds(one_day_serial.wall),
                one_day_serial.requests()
            ),
        ),
    ])
}

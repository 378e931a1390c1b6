//! The `spotcost` binary as cron runs it: exit codes, messages, and no token anywhere in its output.

use crate::support::*;
use spotcost::sim::SimConfig;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[tokio::test]
async fn a_missing_token_exits_2_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let out = output(spotcost(&["extract", "--data-dir", &data_dir], &[])).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("SPOTINST_TOKEN"), "{}", text(&out));
}

#[tokio::test]
async fn plain_http_to_a_remote_host_exits_2_without_sending_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let out = output(spotcost(
        &[
            "extract",
            "--data-dir",
            &data_dir,
            "--api-url",
            "http://api.example.com",
        ],
        &[("SPOTINST_TOKEN", "tok-secret-remote")],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("plain http"), "{}", text(&out));
    assert!(!text(&out).contains("tok-secret-remote"));
}

#[tokio::test]
async fn an_unknown_dataset_is_a_usage_error() {
    let out = output(spotcost(
        &["extract", "--datasets", "ocean_costs,nope"],
        &[("SPOTINST_TOKEN", "t")],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nope"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_under_faults_succeeds_and_never_prints_the_token() {
    let token = "tok-4f2a9c-very-secret";
    let server = simulator(SimConfig {
        token: token.into(),
        fault_rate: 0.15,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    // Eight attempts make a call that fails every time (0.15^8) vanishingly rare.
    let config = dir.path().join("spotcost.toml");
    std::fs::write(&config, "max_attempts = 8\nbackoff_base_ms = 20\n").unwrap();
    let config = config.display().to_string();
    let out = output(spotcost(
        &[
            "extract",
            "--config",
            &config,
            "--data-dir",
            &data_dir,
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02",
            "--datasets",
            "accounts,elastigroup_costs,ocean_costs,instance_costs,audit_events",
        ],
        &[
            ("SPOTINST_TOKEN", token),
            ("SPOTINST_API_URL", &server.url()),
            ("RUST_LOG", "debug"),
        ],
    ))
    .await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains(token), "the token leaked into the output");
    assert!(
        !all.to_ascii_lowercase().contains("bearer"),
        "an Authorization header leaked"
    );
    assert!(
        all.contains("retrying"),
        "the faults were not retried (or not logged): {all}"
    );
    for file in snapshot_tree(dir.path()) {
        assert!(
            !file.1.windows(token.len()).any(|w| w == token.as_bytes()),
            "{} holds the token",
            file.0
        );
    }
    assert!(dir.path().join("data/lake/ocean_costs").is_dir());
    server.shutdown().await;
}

#[tokio::test]
async fn simulate_prints_its_url_on_the_first_line_and_stops_on_sigterm() {
    let mut child = spotcost(&["simulate", "--listen", "127.0.0.1:0"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(first.starts_with("http://127.0.0.1:"), "{first:?}");
    assert!(!first.trim_end().ends_with(":0"), "{first:?}");
    // SIGTERM (what systemd and container runtimes send) stops it cleanly, like Ctrl-C.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[tokio::test]
async fn demo_runs_the_whole_pipeline_and_prints_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo").display().to_string();
    let out = output(spotcost(
        &["demo", "--data-dir", &data_dir, "--days", "3"],
        &[],
    ))
    .await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let index = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("open the reports: ").map(str::to_owned))
        .expect("demo prints where index.html is");
    assert!(std::path::Path::new(&index).is_file(), "{index}");
    let demo = dir.path().join("demo");
    assert!(demo.join("warehouse.duckdb").is_file());
    assert!(demo.join("reports/latest/index.html").is_file());
    let db = duckdb::Connection::open(demo.join("warehouse.duckdb")).unwrap();
    assert!(count(&db, "select count(*) from chargeback_namespace") > 0);
}

#[tokio::test]
async fn a_bad_shared_cost_policy_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let out = output(spotcost(
        &[
            "model",
            "--data-dir",
            &data_dir,
            "--shared-cost-policy",
            "fair",
        ],
        &[],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("none, proportional or even"),
        "{}",
        text(&out)
    );
}

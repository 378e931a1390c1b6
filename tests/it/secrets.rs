//! The token never leaves the Authorization header: a whole nightly run at trace level, in both log
//! formats and under faults, leaves no byte of it in stdout, stderr, the lake (Parquet metadata
//! included), the warehouse, the reports, the run history or the lock; nor do refusals, `--help`,
//! or a base URL that tries to carry credentials.

use crate::support::*;
use spotcost::sim::SimConfig;
use std::path::Path;

const TOKEN: &str = "tok-7c1e5b-recognisable-secret";

/// Every place `needle` occurs in the files under `dir`, by path.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    snapshot_tree(dir)
        .into_iter()
        .filter(|(_, bytes)| {
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
        .map(|(path, _)| path)
        .collect()
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} holds the token:\n{text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        !lower.contains("bearer ") && !lower.contains("authorization:"),
        "{what} shows an Authorization header:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_run_at_trace_level_leaves_the_token_nowhere() {
    let server = simulator(SimConfig {
        token: TOKEN.into(),
        fault_rate: 0.1,
        today: Some(day("2026-03-10")),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spotcost.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nstart_date = 2026-03-07\nmax_attempts = 10\nbackoff_base_ms = 10\ntimeout_secs = 3\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let mut log_bytes = 0;
    for (now, format) in [
        ("2026-03-10T02:15:00Z", "text"),
        ("2026-03-11T02:15:00Z", "json"),
    ] {
        server.set_today(day(&now[..10]));
        let out = output(spotcost(
            &["run", "--config", &config, "--log-format", format],
            &[
                ("SPOTINST_TOKEN", TOKEN),
                ("SPOTINST_API_URL", &server.url()),
                ("SPOTCOST_NOW", now),
                ("RUST_LOG", "trace"),
            ],
        ))
        .await;
        let all = text(&out);
        let errors: Vec<&str> = all.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(out.status.code(), Some(0), "{}", errors.join("\n"));
        assert!(
            all.contains("retrying"),
            "no fault was injected and retried"
        );
        assert!(
            all.len() > 100_000,
            "trace logging produced only {} bytes",
            all.len()
        );
        assert_clean(&format!("the {format} log at trace level"), &all);
        log_bytes += all.len();
    }
    assert!(dir.path().join("data/reports/latest/index.html").exists());
    assert!(dir.path().join("data/warehouse.duckdb").exists());
    assert_eq!(
        files_holding(dir.path(), TOKEN),
        Vec::<String>::new(),
        "files hold the token"
    );
    let files = snapshot_tree(dir.path());
    println!(
        "figures: secrets: {log_bytes} bytes of trace logs and {} files ({} bytes) searched, 0 copies of the token",
        files.len(),
        files.iter().map(|(_, bytes)| bytes.len()).sum::<usize>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_not_echoed() {
    let server = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let out = output(spotcost(
        &["run", "--data-dir", &data_dir],
        &[
            ("SPOTINST_TOKEN", TOKEN),
            ("SPOTINST_API_URL", &server.url()),
            ("RUST_LOG", "trace"),
        ],
    ))
    .await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("401"), "{all}");
    assert_clean("a refused run", &all);
    assert_eq!(files_holding(dir.path(), TOKEN), Vec::<String>::new());
}

#[tokio::test]
async fn help_and_credential_urls_never_show_the_token() {
    for command in [
        "run", "backfill", "schedule", "check", "config", "extract", "model", "report", "demo",
        "simulate",
    ] {
        let out = output(spotcost(&[command, "--help"], &[("SPOTINST_TOKEN", TOKEN)])).await;
        assert_eq!(out.status.code(), Some(0), "{command} --help");
        assert_clean(&format!("{command} --help"), &text(&out));
    }
    for url in [
        format!("https://spot:{TOKEN}@api.example.com"),
        format!("https://api.example.com/?token={TOKEN}"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let out = output(spotcost(
            &["check", "--api-url", &url, "--data-dir", &data_dir],
            &[("SPOTINST_TOKEN", "t")],
        ))
        .await;
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out));
        assert_clean(&format!("check --api-url {url}"), &text(&out));
    }
}

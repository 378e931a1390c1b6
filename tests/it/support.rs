//! Shared test helpers: a simulator per test, a client tuned for quick retries, DuckDB over the lake.

use chrono::NaiveDate;
use spotcost::extract::Dataset;
use spotcost::pipeline::{DayPlan, ExtractPlan};
use spotcost::sim::{SimConfig, SimServer, DEFAULT_TOKEN};
use spotcost::spot::{ClientConfig, SpotClient, Token};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a YYYY-MM-DD date")
}

pub async fn simulator(config: SimConfig) -> SimServer {
    SimServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("the simulator starts")
}

/// A client for `url` that retries quickly, so fault tests stay fast.
pub fn client(url: &str, max_attempts: u32) -> Arc<SpotClient> {
    let mut config = ClientConfig::new(url, Token::new(DEFAULT_TOKEN));
    config.max_attempts = max_attempts;
    config.backoff_base = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    config.timeout = Duration::from_secs(10);
    Arc::new(SpotClient::new(config).expect("a valid client"))
}

pub fn plan(data_dir: &Path, from: &str, to: &str, datasets: &[Dataset]) -> ExtractPlan {
    ExtractPlan {
        data_dir: data_dir.to_owned(),
        days: DayPlan::Range {
            from: day(from),
            to: day(to),
        },
        snapshot_day: day(to) + chrono::Duration::days(1),
        datasets: datasets.to_vec(),
        accounts: None,
        exclude_accounts: Vec::new(),
        default_account: None,
        namespace_label_keys: vec!["team".into(), "cost-center".into()],
        parallel_items: 6,
        shard: None,
        shutdown: tokio_util::sync::CancellationToken::new(),
    }
}

/// `read_parquet` over one dataset of the lake, as a finance user would write it.
pub fn dataset_sql(data_dir: &Path, dataset: &str) -> String {
    format!(
        "read_parquet('{}/lake/{dataset}/**/*.parquet', hive_partitioning = true)",
        data_dir.display()
    )
}

pub fn duckdb() -> duckdb::Connection {
    duckdb::Connection::open_in_memory().expect("an in-memory DuckDB")
}

/// Runs a query whose rows are (text key, number) pairs.
pub fn keyed_numbers(connection: &duckdb::Connection, sql: &str) -> Vec<(String, f64)> {
    let mut statement = connection
        .prepare(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, f64>(1)?))
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.unwrap())
        .collect()
}

pub fn count(connection: &duckdb::Connection, sql: &str) -> i64 {
    connection
        .query_row(sql, [], |row| row.get::<_, i64>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The paths of the files under `dir`, relative to it, in order. A spotcost process may be
/// writing there meanwhile: a file or folder (other than `dir`) renamed or removed during the walk
/// is left out.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if folder == dir => panic!("{}: {error}", dir.display()),
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Symbolic links are followed (the reports' `latest` is one), as `Path::is_dir` does.
            match std::fs::metadata(&path) {
                Ok(kind) if kind.is_dir() => stack.push(path),
                Ok(_) => files.push(path.strip_prefix(dir).unwrap().display().to_string()),
                // A dangling link is listed, so that reading it fails loudly.
                Err(_) if entry.file_type().is_ok_and(|kind| kind.is_symlink()) => {
                    files.push(path.strip_prefix(dir).unwrap().display().to_string())
                }
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

/// Every file under `dir` with its bytes, in path order: two equal listings are the same lake.
pub fn snapshot_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|relative| {
            let bytes = std::fs::read(dir.join(&relative))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join(&relative).display()));
            (relative, bytes)
        })
        .collect()
}

/// Money agrees to the cent (and, row by row, far tighter).
pub fn assert_usd(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() < 0.005,
        "{what}: the lake says {got:.6} USD, the simulator {want:.6} USD"
    );
}

/// The `spotcost` binary with a clean Spot environment plus `env`.
pub fn spotcost(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spotcost"));
    command
        .args(args)
        .env_remove("SPOTINST_TOKEN")
        .env_remove("SPOTINST_API_URL")
        .env_remove("SPOTINST_ACCOUNT")
        .env_remove("SPOTCOST_CONFIG")
        .env_remove("SPOTCOST_DATA_DIR")
        .env_remove("SPOTCOST_NOW");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs a command to completion off the async runtime.
pub async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("spotcost runs"))
        .await
        .unwrap()
}

/// stdout then stderr, for assertions and failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

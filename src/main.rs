//! The `spotcost` binary: parse the command line, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use spotcost::cli::{self, Cli, LogFormat};
use spotcost::config::Environment;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc: extraction decodes a tree of small allocations per response, which glibc malloc
/// spent a third of the CPU on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    if terminal && cli.log_format == LogFormat::Text {
        spotcost::progress::enable();
    }
    let builder = tracing_subscriber::fmt()
        .with_writer(spotcost::progress::LogWriter)
        .with_env_filter(filter)
        .with_ansi(terminal);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let clock = match fixed_clock() {
        Ok(clock) => clock,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli.command, Environment::from_process(), clock)) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::from(cli::exit_code(&error))
        }
    }
}

/// The wall clock, or, when `SPOTCOST_NOW` holds an RFC 3339 time, a clock that starts there and
/// runs at the real pace (to replay a past night, and for tests).
fn fixed_clock() -> Result<spotcost::schedule::Clock, String> {
    let Ok(text) = std::env::var("SPOTCOST_NOW") else {
        return Ok(std::sync::Arc::new(chrono::Utc::now));
    };
    let start = chrono::DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| {
            format!("SPOTCOST_NOW must be an RFC 3339 time such as 2026-03-10T02:15:00Z: {e}")
        })?
        .with_timezone(&chrono::Utc);
    let real_start = std::time::Instant::now();
    Ok(std::sync::Arc::new(move || {
        start + chrono::Duration::from_std(real_start.elapsed()).unwrap_or_default()
    }))
}

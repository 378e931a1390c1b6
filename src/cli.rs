//! The command line: one clap `Args` struct per subcommand, turned into validated settings and
//! handed to the library. Also maps every error to its exit code (0 ok, 1 run failed, 2 usage).

use crate::config::{ConfigError, Environment, FileConfig, Overrides, Settings};
use crate::extract::Dataset;
use crate::models::{self, ModelSettings};
use crate::pipeline::{self, ExtractPlan, ExtractReport, PipelineError};
use crate::sim::{Scale, SimConfig, SimServer, DEFAULT_TOKEN};
use crate::spot::{ClientConfig, SpotClient, SpotError, Token};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "spotcost",
    version,
    about = "FinOps cost analytics for Spot by NetApp"
)]
pub struct Cli {
    /// Log format on stderr: plain text for cron mail, or JSON lines for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline against the built-in Spot API simulator (no token needed).
    Demo(DemoArgs),
    /// Serve the Spot API simulator on a loopback port until interrupted.
    Simulate(SimulateArgs),
    /// Extract datasets from the Spot API into the Parquet lake.
    Extract(ExtractArgs),
    /// Build DIR/warehouse.duckdb from the lake and the SQL models, then run the data tests.
    Model(ModelArgs),
    /// Write the CSV and HTML reports of DIR/warehouse.duckdb into DIR/reports/<today>/.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Data directory holding the warehouse. Default: data_dir from the config, else ./data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Config file. Default: ./spotcost.toml if present.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Data directory holding the lake. Default: data_dir from the config, else ./data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How shared Ocean cost is spread: none, proportional or even. Default: the config's, else proportional.
    #[arg(long)]
    pub shared_cost_policy: Option<String>,
    /// Config file. Default: ./spotcost.toml if present.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the lake (and later the warehouse and reports) go.
    #[arg(long, default_value = "spotcost-demo")]
    pub data_dir: PathBuf,
    /// Days of history to extract, ending yesterday.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value = "small")]
    pub scale: Scale,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on; loopback only (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// The bearer token the simulator accepts.
    #[arg(long, default_value = DEFAULT_TOKEN)]
    pub token: String,
    /// Added to every response.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests (0 to 1) answered with a transient fault: 429, 5xx, slow, cut-off or dropped.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Requests per 60 s per route and method before 429s (0: unlimited).
    #[arg(long, default_value_t = 600)]
    pub rate_limit: u32,
    /// The simulator's "today" (YYYY-MM-DD): the snapshot routes' day and the restatement reference. Default: the UTC date.
    #[arg(long)]
    pub today: Option<NaiveDate>,
    /// Days before today whose costs are provisional (90 % of the running time) until restated (0: off).
    #[arg(long, default_value_t = 0)]
    pub restatement_days: u32,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Data directory (the lake is DIR/lake). Default: data_dir from the config, else ./data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// First usage day (YYYY-MM-DD). Default: 7 days before --to.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last usage day, inclusive (YYYY-MM-DD). Default: yesterday (UTC).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Datasets to extract, comma-separated. Default: all.
    #[arg(long, value_delimiter = ',', value_parser = parse_dataset)]
    pub datasets: Option<Vec<Dataset>>,
    /// Account ids to extract, comma-separated. Default: every account of the organisation.
    #[arg(long, value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// Spot API base URL. Default: SPOTINST_API_URL, else https://api.spotinst.io.
    #[arg(long)]
    pub api_url: Option<String>,
    /// Config file. Default: ./spotcost.toml if present.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn parse_dataset(name: &str) -> Result<Dataset, String> {
    Dataset::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
        format!(
            "unknown dataset {name:?}; expected one of: {}",
            names.join(", ")
        )
    })
}

/// The exit code an error deserves: 2 for usage and configuration, 1 for a failed run.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let usage = error.chain().any(|cause| {
        cause.downcast_ref::<ConfigError>().is_some()
            || cause
                .downcast_ref::<PipelineError>()
                .is_some_and(PipelineError::is_usage)
            || matches!(
                cause.downcast_ref::<SpotError>(),
                Some(SpotError::InsecureUrl { .. } | SpotError::InvalidBaseUrl { .. })
            )
    });
    if usage {
        2
    } else {
        1
    }
}

/// Runs a command. `today` is the UTC date of the run (a parameter, so tests choose it).
/// Returns whether the run succeeded; an `Err` is a run that could not start or went wrong as a whole.
pub async fn run(command: Command, env: Environment, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let today = now.date_naive();
    match command {
        Command::Demo(args) => demo(args, now).await,
        Command::Simulate(args) => simulate(args).await.map(|()| true),
        Command::Extract(args) => extract(args, env, today).await,
        Command::Model(args) => {
            let file = FileConfig::load(args.config.as_deref())?;
            let settings = file.model_settings(args.shared_cost_policy.as_deref())?;
            let data_dir = args
                .data_dir
                .or(file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from("data"));
            build_models(&data_dir, &file.queries_dir(), &settings).map(|()| true)
        }
        Command::Report(args) => {
            let file = FileConfig::load(args.config.as_deref())?;
            let data_dir = args
                .data_dir
                .or(file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from("data"));
            let index = pipeline::publish_reports(&data_dir, &file.reports_dir(), now)?;
            tracing::info!(index = %index.display(), "reports written");
            println!("{}", index.display());
            Ok(true)
        }
    }
}

/// Builds the warehouse; a failing data test is a failed run (exit 1) that names the test.
fn build_models(
    data_dir: &std::path::Path,
    queries_dir: &std::path::Path,
    settings: &ModelSettings,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = models::build(data_dir, queries_dir, settings)?;
    tracing::info!(
        warehouse = %report.warehouse.display(),
        marts = report.marts.len(),
        tests = report.tests_passed.len(),
        policy = settings.shared_cost_policy.as_str(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "models built and data tests passed"
    );
    Ok(())
}

async fn extract(args: ExtractArgs, env: Environment, today: NaiveDate) -> anyhow::Result<bool> {
    let file = FileConfig::load(args.config.as_deref())?;
    let settings = Settings::resolve(
        file,
        env,
        Overrides {
            data_dir: args.data_dir,
            api_url: args.api_url,
            accounts: args.accounts,
        },
    )?;
    let to = args.to.unwrap_or(today - chrono::Duration::days(1));
    let from = args.from.unwrap_or(to - chrono::Duration::days(6));
    let client = Arc::new(SpotClient::new(settings.client.clone())?);
    let plan = ExtractPlan {
        data_dir: settings.data_dir.clone(),
        from,
        to,
        snapshot_day: today,
        datasets: args.datasets.unwrap_or_else(|| Dataset::ALL.to_vec()),
        accounts: settings.accounts.clone(),
        default_account: settings.default_account.clone(),
        namespace_label_keys: settings.namespace_label_keys.clone(),
        parallel_items: settings.client.concurrency,
    };
    let report = pipeline::extract(client, &plan).await?;
    Ok(summarise(&plan, &report))
}

/// Logs the closing line of an extraction and says whether everything landed.
fn summarise(plan: &ExtractPlan, report: &ExtractReport) -> bool {
    let failed = report.failures().count();
    if failed == 0 {
        tracing::info!(
            items = report.items.len(),
            rows = report.rows(),
            lake = %plan.data_dir.join("lake").display(),
            "extracted {} to {}",
            plan.from,
            plan.to
        );
        true
    } else {
        tracing::error!(
            failed,
            items = report.items.len(),
            "extraction incomplete: {failed} of {} items failed (see the errors above); landed partitions are kept",
            report.items.len()
        );
        false
    }
}

async fn demo(args: DemoArgs, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let today = now.date_naive();
    let sim_config = SimConfig {
        seed: args.seed,
        scale: args.scale,
        ..SimConfig::default()
    };
    let server = SimServer::start("127.0.0.1:0".parse()?, sim_config)
        .await
        .context("starting the Spot API simulator")?;
    tracing::info!(url = %server.url(), seed = args.seed, scale = %args.scale, "simulator started");
    let mut client_config = ClientConfig::new(server.url(), Token::new(DEFAULT_TOKEN));
    client_config.backoff_base = Duration::from_millis(100);
    let client = Arc::new(SpotClient::new(client_config)?);
    let to = today - chrono::Duration::days(1);
    let plan = ExtractPlan {
        data_dir: args.data_dir.clone(),
        from: to - chrono::Duration::days(i64::from(args.days) - 1),
        to,
        snapshot_day: today,
        datasets: Dataset::ALL.to_vec(),
        accounts: None,
        default_account: None,
        namespace_label_keys: FileConfig::default().label_keys(),
        parallel_items: 8,
    };
    let outcome = pipeline::extract(client, &plan).await;
    server.shutdown().await;
    let report = outcome?;
    if !summarise(&plan, &report) {
        return Ok(false);
    }
    let file = FileConfig::default();
    build_models(
        &args.data_dir,
        &file.queries_dir(),
        &file.model_settings(None)?,
    )?;
    let index = pipeline::publish_reports(&args.data_dir, &file.reports_dir(), now)?;
    println!(
        "spotcost demo: {} rows from {} accounts landed in {}",
        report.rows(),
        report.accounts.len(),
        args.data_dir.join("lake").display()
    );
    println!(
        "query it: duckdb {} -c \"from chargeback_namespace limit 5\"",
        models::warehouse_path(&args.data_dir).display()
    );
    println!("open the reports: {}", index.display());
    Ok(true)
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(ConfigError::OutOfRange {
            key: "--listen",
            expected: "a loopback address (127.0.0.1 or [::1])",
            value: args.listen.to_string(),
        });
    }
    if !(0.0..=1.0).contains(&args.fault_rate) {
        anyhow::bail!(ConfigError::OutOfRange {
            key: "--fault-rate",
            expected: "between 0 and 1",
            value: args.fault_rate.to_string(),
        });
    }
    let config = SimConfig {
        seed: args.seed,
        scale: args.scale,
        token: args.token,
        latency_ms: args.latency_ms,
        fault_rate: args.fault_rate,
        rate_limit: args.rate_limit,
        scripted_faults: Vec::new(),
        today: args.today,
        restatement_days: args.restatement_days,
    };
    let server = SimServer::start(args.listen, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // The first line of stdout is the URL, for scripts to read.
    println!("{}", server.url());
    tracing::info!(url = %server.url(), "Spot API simulator listening; Ctrl-C stops it");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(())
}

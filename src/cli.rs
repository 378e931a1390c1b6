//! The command line: one clap `Args` struct per subcommand, turned into validated settings and
//! handed to the library. Also maps every error to its exit code (0 ok, 1 run failed, 2 usage).

use crate::check;
use crate::config::{ConfigError, Environment, FileConfig, Overrides, Settings, EXAMPLE_CONFIG};
use crate::extract::{Dataset, Grain};
use crate::models;
use crate::pipeline::{
    run_stages, DayPlan, ExtractPlan, Job, Outcome, PipelineError, Shard, Stages, StagesOutcome,
};
use crate::schedule::{run_scheduler, Clock, CronSchedule};
use crate::sim::{Scale, SimConfig, SimServer, DEFAULT_TOKEN};
use crate::spot::{ClientConfig, SpotClient, SpotError, Token};
use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    Report(Locations),
    /// Export the warehouse's charges in a standard format.
    #[command(subcommand)]
    Export(ExportCommand),
    /// The nightly job: extract incrementally from the watermarks (re-reading the lookback), model, report.
    Run(RunArgs),
    /// Load a past range of usage days without moving the nightly watermarks.
    Backfill(BackfillArgs),
    /// Run the nightly job on a cron schedule, in the foreground, until SIGTERM or SIGINT.
    Schedule(ScheduleArgs),
    /// Check the configuration, the data dir and the token's permissions for every dataset.
    Check(CheckArgs),
    /// Print an example spotcost.toml with every key.
    Config(ConfigArgs),
}

/// Where a command finds its data and its configuration.
#[derive(Debug, Args, Clone, Default)]
pub struct Locations {
    /// Data directory. Default: SPOTCOST_DATA_DIR, else data_dir from the config, else ./data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Config file. Default: SPOTCOST_CONFIG, else ./spotcost.toml if present.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First usage day (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last usage day, inclusive (YYYY-MM-DD); at most yesterday (UTC).
    #[arg(long)]
    pub to: NaiveDate,
    /// Daily datasets to load, comma-separated. Default: the configured ones that are daily.
    #[arg(long, value_delimiter = ',', value_parser = parse_dataset)]
    pub datasets: Option<Vec<Dataset>>,
    /// Account ids, comma-separated. Default: the configured accounts.
    #[arg(long, value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    #[command(flatten)]
    pub sharding: ShardArg,
    #[command(flatten)]
    pub locations: Locations,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub locations: Locations,
    #[command(flatten)]
    pub sharding: ShardArg,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Cron expression: 5-field crontab (`15 2 * * *`) or 6/7 fields with seconds first
    /// (`0 15 2 * * *`). Default: `schedule` from the config.
    #[arg(long)]
    pub cron: Option<String>,
    /// Stop after this many runs (for tests and one-off containers).
    #[arg(long)]
    pub max_runs: Option<u32>,
    #[command(flatten)]
    pub locations: Locations,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub locations: Locations,
    /// Spot API base URL. Default: SPOTINST_API_URL, else the config's, else https://api.spotinst.io.
    #[arg(long)]
    pub api_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print a commented example spotcost.toml showing every key.
    #[arg(long)]
    pub example: bool,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub locations: Locations,
    /// How shared Ocean cost is spread: none, proportional or even. Default: the config's, else proportional.
    #[arg(long)]
    pub shared_cost_policy: Option<String>,
    /// Rebuild every day from the lake, even when only some days' files changed since the last build.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A FOCUS 1.2 CostAndUsage file (Parquet or CSV) of the usage days --from..--to.
    Focus(FocusArgs),
}

#[derive(Debug, Args)]
pub struct FocusArgs {
    /// First usage day (YYYY-MM-DD). Default: the first of --to's month.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last usage day, inclusive (YYYY-MM-DD). Default: the warehouse's latest day.
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// The file to write, `.parquet` or `.csv`. Default: DIR/exports/focus_<from>_<to>.parquet.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub locations: Locations,
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
    /// The API token the simulator accepts (a demo value, never a real Spot token).
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
    /// Serve this CSV file as every instance-cost export (a recorded Spot export, replayed as is).
    #[arg(long, value_name = "FILE")]
    pub instance_costs_export: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub locations: Locations,
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
    #[command(flatten)]
    pub sharding: ShardArg,
}

/// `--shard`, shared by the commands that extract.
#[derive(Debug, Args)]
pub struct ShardArg {
    /// Extract only shard I of N (`I/N`): the accounts whose id hashes to it, and the
    /// organisation-wide datasets in shard 1. Default: `shard` from the config, else everything. A
    /// shard's `run` extracts only; models and reports are built where the shards' lakes merge.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    text.parse()
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
            || cause
                .downcast_ref::<crate::export::ExportError>()
                .is_some_and(crate::export::ExportError::is_usage)
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

/// Runs a command. `clock` gives "now" (a parameter, so tests choose the day).
/// Returns whether the run succeeded; an `Err` is a run that could not start or went wrong as a whole.
pub async fn run(command: Command, env: Environment, clock: Clock) -> anyhow::Result<Outcome> {
    let shutdown = CancellationToken::new();
    let _signals = listen_for_signals(shutdown.clone());
    match command {
        Command::Demo(args) => demo(args, &clock, shutdown).await,
        Command::Simulate(args) => simulate(args, shutdown).await.map(|()| Outcome::Succeeded),
        Command::Extract(args) => extract(args, &env, &clock, shutdown).await,
        Command::Backfill(args) => backfill(args, &env, &clock, shutdown).await,
        Command::Run(args) => {
            nightly(&args.locations, args.sharding.shard, &env, &clock, shutdown).await
        }
        Command::Schedule(args) => schedule(args, &env, &clock, shutdown).await,
        Command::Check(args) => check::run(args, &env, &clock).await.map(Outcome::from),
        Command::Config(args) => {
            if !args.example {
                anyhow::bail!(ConfigError::OutOfRange {
                    key: "config",
                    expected: "called with --example",
                    value: "no flag".into(),
                });
            }
            print!("{EXAMPLE_CONFIG}");
            Ok(Outcome::Succeeded)
        }
        Command::Model(args) => {
            let file = env.load_config(args.locations.config.as_deref())?;
            let mut settings = file.model_settings(args.shared_cost_policy.as_deref())?;
            if args.full {
                settings.rebuild = models::Rebuild::Full;
            }
            let data_dir = env.data_dir(args.locations.data_dir, &file);
            let stages = Stages {
                extract: None,
                model: Some((file.queries_dir(), settings)),
                reports: None,
                alerts: None,
                shutdown,
            };
            run_job("model", &data_dir, &clock, stages).await
        }
        Command::Export(ExportCommand::Focus(args)) => {
            let file = env.load_config(args.locations.config.as_deref())?;
            let data_dir = env.data_dir(args.locations.data_dir, &file);
            let request = crate::export::FocusRequest {
                from: args.from,
                to: args.to,
                out: args.out,
            };
            let summary = crate::export::focus(&data_dir, &file.queries_dir(), &request)?;
            tracing::info!(
                path = %summary.path.display(),
                from = %summary.from,
                to = %summary.to,
                rows = summary.rows,
                billed_cost_usd = format!("{:.2}", summary.billed_cost_usd),
                "FOCUS export written"
            );
            println!("{}", summary.path.display());
            Ok(Outcome::Succeeded)
        }
        Command::Report(args) => {
            let file = env.load_config(args.config.as_deref())?;
            let data_dir = env.data_dir(args.data_dir, &file);
            let mut job = Job::begin("report", &data_dir, &clock)?;
            let stages = Stages {
                extract: None,
                model: None,
                reports: Some(file.reports_dir()),
                alerts: None,
                shutdown,
            };
            let outcome = run_stages(&mut job, stages).await;
            if let Ok(StagesOutcome {
                index: Some(index), ..
            }) = &outcome
            {
                println!("{}", index.display());
            }
            job.end(outcome.map(drop), exit_code)
        }
    }
}

/// Runs `stages` as one job: the lock, the run record, the summary line and the outcome.
async fn run_job(
    command: &str,
    data_dir: &std::path::Path,
    clock: &Clock,
    stages: Stages,
) -> anyhow::Result<Outcome> {
    let mut job = Job::begin(command, data_dir, clock)?;
    let outcome = run_stages(&mut job, stages).await.map(drop);
    job.end(outcome, exit_code)
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT, so the run in progress stops cleanly.
fn listen_for_signals(shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut terminate), Ok(mut interrupt)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            tracing::warn!("{name} received: stopping cleanly (the partition in progress is discarded, the watermarks keep what landed)");
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            tracing::warn!("Ctrl-C received: stopping cleanly");
        }
        shutdown.cancel();
    })
}

/// The client and extraction settings every extracting command shares.
fn extract_plan(
    settings: &Settings,
    days: DayPlan,
    today: NaiveDate,
    shutdown: CancellationToken,
) -> ExtractPlan {
    ExtractPlan {
        data_dir: settings.data_dir.clone(),
        days,
        snapshot_day: today,
        datasets: settings.datasets.clone(),
        accounts: settings.accounts.clone(),
        exclude_accounts: settings.exclude_accounts.clone(),
        default_account: settings.default_account.clone(),
        namespace_label_keys: settings.namespace_label_keys.clone(),
        parallel_items: settings.client.concurrency,
        shard: settings.shard,
        shutdown,
    }
}

async fn extract(
    args: ExtractArgs,
    env: &Environment,
    clock: &Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let file = env.load_config(args.locations.config.as_deref())?;
    let mut settings = Settings::resolve(
        file,
        env.clone(),
        Overrides {
            data_dir: args.locations.data_dir,
            api_url: args.api_url,
            accounts: args.accounts,
            shard: args.sharding.shard,
        },
    )?;
    if let Some(datasets) = args.datasets {
        settings.datasets = datasets;
    }
    let today = clock().date_naive();
    let to = args.to.unwrap_or(today - chrono::Duration::days(1));
    let from = args.from.unwrap_or(to - chrono::Duration::days(6));
    let client = Arc::new(SpotClient::new(settings.client.clone())?);
    let plan = extract_plan(
        &settings,
        DayPlan::Range { from, to },
        today,
        shutdown.clone(),
    );
    let stages = Stages {
        extract: Some((client, plan)),
        model: None,
        reports: None,
        alerts: None,
        shutdown,
    };
    run_job("extract", &settings.data_dir, clock, stages).await
}

async fn backfill(
    args: BackfillArgs,
    env: &Environment,
    clock: &Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let file = env.load_config(args.locations.config.as_deref())?;
    let mut settings = Settings::resolve(
        file,
        env.clone(),
        Overrides {
            data_dir: args.locations.data_dir,
            api_url: None,
            accounts: args.accounts,
            shard: args.sharding.shard,
        },
    )?;
    let today = clock().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    if args.to > yesterday {
        anyhow::bail!(ConfigError::OutOfRange {
            key: "--to",
            expected: "at most yesterday (UTC), since today's costs are not complete",
            value: args.to.to_string(),
        });
    }
    settings.datasets = match args.datasets {
        Some(datasets) => {
            if let Some(snapshot) = datasets.iter().find(|d| d.grain() == Grain::Snapshot) {
                anyhow::bail!(ConfigError::OutOfRange {
                    key: "--datasets",
                    expected: "daily datasets: Spot serves only the current state of a snapshot dataset, so it cannot be backfilled",
                    value: snapshot.name().to_owned(),
                });
            }
            datasets
        }
        None => settings
            .datasets
            .iter()
            .copied()
            .filter(|d| d.grain() == Grain::Daily)
            .collect(),
    };
    let client = Arc::new(SpotClient::new(settings.client.clone())?);
    let plan = extract_plan(
        &settings,
        DayPlan::Range {
            from: args.from,
            to: args.to,
        },
        today,
        shutdown.clone(),
    );
    tracing::info!(
        from = %args.from,
        to = %args.to,
        datasets = settings.datasets.len(),
        "backfilling; the nightly watermarks stay where they are"
    );
    let stages = Stages {
        extract: Some((client, plan)),
        model: None,
        reports: None,
        alerts: None,
        shutdown,
    };
    run_job("backfill", &settings.data_dir, clock, stages).await
}

/// `spotcost run`: the nightly job. Reads the configuration afresh each time (the scheduler calls it
/// once per fire time), so a fixed config file or a rotated token is picked up by the next run.
async fn nightly(
    args: &Locations,
    shard: Option<Shard>,
    env: &Environment,
    clock: &Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let file = env.load_config(args.config.as_deref())?;
    let model_settings = file.model_settings(None)?;
    let settings = Settings::resolve(
        file.clone(),
        env.clone(),
        Overrides {
            data_dir: args.data_dir.clone(),
            shard,
            ..Overrides::default()
        },
    )?;
    let today = clock().date_naive();
    let days = DayPlan::Incremental {
        start_date: file.start_date(today)?,
        lookback_days: file.lookback_days()?,
        to: today - chrono::Duration::days(1),
    };
    let client = Arc::new(SpotClient::new(settings.client.clone())?);
    let plan = extract_plan(&settings, days, today, shutdown.clone());
    // A shard holds part of the lake: the models and reports are built where the lakes merge.
    let whole = settings.shard.is_none();
    if let Some(shard) = settings.shard {
        tracing::info!(%shard, "shard run: extracting only; build the models and reports where the shards' lakes are merged");
    }
    let stages = Stages {
        extract: Some((client, plan)),
        model: whole.then(|| (file.queries_dir(), model_settings)),
        reports: whole.then(|| file.reports_dir()),
        alerts: if whole { file.anomaly_alerts()? } else { None },
        shutdown,
    };
    run_job("run", &settings.data_dir, clock, stages).await
}

/// `spotcost schedule`: the nightly job at every fire time of a cron expression, one at a time.
async fn schedule(
    args: ScheduleArgs,
    env: &Environment,
    clock: &Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let file = env.load_config(args.locations.config.as_deref())?;
    let Some(expression) = args.cron.clone().or(file.schedule.clone()) else {
        anyhow::bail!(ConfigError::OutOfRange {
            key: "--cron",
            expected: "a cron expression, on the command line or as `schedule` in the config",
            value: "nothing".into(),
        });
    };
    let schedule = CronSchedule::parse(&expression, file.time_zone())
        .map_err(|error| ConfigError::Schedule(error.to_string()))?;
    if args.max_runs == Some(0) {
        anyhow::bail!(ConfigError::OutOfRange {
            key: "--max-runs",
            expected: "at least 1",
            value: "0".into(),
        });
    }
    tracing::info!(schedule = %schedule.expression(), time_zone = %schedule.time_zone(), "scheduler started; SIGTERM or SIGINT stops it");
    let summary = run_scheduler(
        &schedule,
        Arc::clone(clock),
        args.max_runs,
        shutdown.clone(),
        |fire_time| {
            let locations = args.locations.clone();
            let shutdown = shutdown.clone();
            async move {
                tracing::info!(fire_time = %fire_time, "scheduled run starting");
                match nightly(&locations, None, env, clock, shutdown).await {
                    Ok(outcome) => outcome.succeeded(),
                    Err(error) => {
                        tracing::error!("{error:#}");
                        false
                    }
                }
            }
        },
    )
    .await;
    tracing::info!(
        runs = summary.runs,
        failed_runs = summary.failed_runs,
        skipped_fire_times = summary.skipped_fire_times,
        "scheduler stopped"
    );
    Ok(Outcome::from(summary.failed_runs == 0))
}

async fn demo(
    args: DemoArgs,
    clock: &Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let today = clock().date_naive();
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
    let file = FileConfig::default();
    let plan = ExtractPlan {
        data_dir: args.data_dir.clone(),
        days: DayPlan::Range {
            from: to - chrono::Duration::days(i64::from(args.days) - 1),
            to,
        },
        snapshot_day: today,
        datasets: Dataset::ALL.to_vec(),
        accounts: None,
        exclude_accounts: Vec::new(),
        default_account: None,
        namespace_label_keys: file.label_keys(),
        parallel_items: 8,
        shard: None,
        shutdown: shutdown.clone(),
    };
    let mut job = Job::begin("demo", &args.data_dir, clock)?;
    let stages = Stages {
        extract: Some((client, plan)),
        model: Some((file.queries_dir(), file.model_settings(None)?)),
        reports: Some(file.reports_dir()),
        alerts: None,
        shutdown,
    };
    let outcome = run_stages(&mut job, stages).await;
    server.shutdown().await;
    if let Ok(StagesOutcome {
        extract: Some(report),
        index: Some(index),
    }) = &outcome
    {
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
    }
    job.end(outcome.map(drop), exit_code)
}

async fn simulate(args: SimulateArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
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
    if let Some(path) = &args.instance_costs_export {
        std::fs::File::open(path)
            .with_context(|| format!("--instance-costs-export {}", path.display()))?;
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
        hostile_names: false,
        instance_costs_export_file: args.instance_costs_export,
    };
    let server = SimServer::start(args.listen, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // The first line of stdout is the URL, for scripts to read.
    println!("{}", server.url());
    tracing::info!(url = %server.url(), "Spot API simulator listening; Ctrl-C or SIGTERM stops it");
    server
        .run_until(shutdown.cancelled())
        .await
        .context("serving the simulator")
}

//! The pipeline: extract → models (with their data tests) → reports, each command running some of
//! these stages as one [`Job`] that holds the data dir's lock and leaves one run record.
//! Extract lists the organisation's accounts, plans one item per dataset × account (or ×
//! organisation), runs items concurrently and lands each day of an item as its own partition; the
//! nightly plan moves each item's watermark once its days are durable. One failed item does not
//! stop the others, but a failed stage stops the stages after it, so reports are never published
//! from missing data.

use crate::extract::{
    fetch_unit, land_unit, AccountRef, Dataset, ExtractContext, Grain, Scope, Unit,
};
use crate::history::{RunRecord, RunStatus};
use crate::lake::state::{sweep_temporary_files, RunLock, StateError, Watermarks};
use crate::lake::Lake;
use crate::models;
use crate::progress::StageProgress;
use crate::report::{self, ReportContext};
use crate::schedule::Clock;
use crate::spot::types::{Account, Cloud};
use crate::spot::{with_call_stats, CallCounts, CallStats, SpotClient, SpotError};
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Which days each item covers.
#[derive(Debug, Clone)]
pub enum DayPlan {
    /// The same inclusive range of usage days for every daily item (`extract`, `backfill`). Watermarks
    /// are neither read nor moved.
    Range { from: NaiveDate, to: NaiveDate },
    /// The nightly job: each daily item from its watermark, less `lookback_days` re-read because Spot
    /// restates recent costs, up to `to`; from `start_date` when it has no watermark yet. Snapshot
    /// items are taken once per snapshot day. Watermarks move once an item's days are durable.
    Incremental {
        start_date: NaiveDate,
        lookback_days: u32,
        to: NaiveDate,
    },
}

/// What to extract.
#[derive(Debug, Clone)]
pub struct ExtractPlan {
    pub data_dir: PathBuf,
    pub days: DayPlan,
    /// The day snapshot datasets are filed under (the run's "today", UTC).
    pub snapshot_day: NaiveDate,
    pub datasets: Vec<Dataset>,
    /// Account ids to extract; `None` means every account of the organisation.
    pub accounts: Option<Vec<String>>,
    /// Account ids to leave out (after `accounts`).
    pub exclude_accounts: Vec<String>,
    /// Used when the token may not list the organisation's accounts.
    pub default_account: Option<String>,
    pub namespace_label_keys: Vec<String>,
    /// Items run at once (each item's calls are further bounded by the client's concurrency).
    pub parallel_items: usize,
    /// The part of the organisation this machine extracts; `None`: all of it.
    pub shard: Option<Shard>,
    /// Cancelled on SIGTERM/SIGINT: the partition being written is discarded, nothing further starts.
    pub shutdown: CancellationToken,
}

/// One of `count` machines that extract disjoint parts of the organisation into the same lake
/// layout (`--shard index/count`). An account belongs to shard `fnv1a(id) mod count + 1`, a hash
/// of its id alone, so it keeps its shard when accounts are added or removed; the
/// organisation-wide datasets (`accounts`, `audit_events`) belong to shard 1. Every partition
/// file is written by exactly one shard, so the shards' lakes merge by copying files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// At most this many shards (a sanity bound; an organisation has far fewer machines).
    pub const MAXIMUM_COUNT: u32 = 1024;

    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (1..=Shard::MAXIMUM_COUNT)
            .contains(&count)
            .then_some(())
            .filter(|()| (1..=count).contains(&index))
            .map(|()| Shard { index, count })
    }

    pub fn owns_account(self, account_id: &str) -> bool {
        // FNV-1a, 64 bits: stable across Rust versions and platforms, unlike std's hasher.
        let hash = account_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        hash % u64::from(self.count) + 1 == u64::from(self.index)
    }

    pub fn owns_organisation(self) -> bool {
        self.index == 1
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let invalid = || {
            format!(
                "invalid shard {text:?}: expected i/n with 1 <= i <= n <= {}, e.g. 1/4",
                Shard::MAXIMUM_COUNT
            )
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(invalid)?;
        let number = |part: &str| part.trim().parse::<u32>().map_err(|_| invalid());
        Shard::new(number(index)?, number(count)?).ok_or_else(invalid)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.index, self.count)
    }
}

/// What one item (a dataset for one account, or for the organisation) landed.
#[derive(Debug, Clone)]
pub struct ItemReport {
    pub dataset: Dataset,
    pub account: Option<String>,
    /// The days planned, first and last; `None` when the item had nothing to do.
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    /// Days landed (a prefix of the plan).
    pub days: usize,
    pub rows: u64,
    pub bytes: u64,
    pub calls: CallCounts,
    pub elapsed: Duration,
    /// The first failure; days before it are landed, days from it on are not.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct ExtractReport {
    pub items: Vec<ItemReport>,
    pub accounts: Vec<AccountRef>,
    /// The run was interrupted by a signal before every item finished.
    pub interrupted: bool,
}

impl ExtractReport {
    pub fn failures(&self) -> impl Iterator<Item = &ItemReport> {
        self.items.iter().filter(|i| i.error.is_some())
    }
    pub fn is_success(&self) -> bool {
        self.failures().next().is_none() && !self.interrupted
    }
    pub fn rows(&self) -> u64 {
        self.items.iter().map(|i| i.rows).sum()
    }
    pub fn calls(&self) -> CallCounts {
        self.items.iter().fold(CallCounts::default(), |sum, item| {
            let calls = item.calls;
            CallCounts {
                requests: sum.requests + calls.requests,
                retries: sum.retries + calls.retries,
                rate_limited: sum.rate_limited + calls.rate_limited,
                errors: sum.errors + calls.errors,
            }
        })
    }
    /// The span of usage days planned over the daily items (snapshots are filed under the run day).
    pub fn day_span(&self) -> Option<(NaiveDate, NaiveDate)> {
        let daily = || {
            self.items
                .iter()
                .filter(|i| i.dataset.grain() == Grain::Daily)
        };
        let first = daily().filter_map(|i| i.first_day).min()?;
        let last = daily().filter_map(|i| i.last_day).max()?;
        Some((first, last))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot list the organisation's accounts: {0}")]
    Accounts(#[source] SpotError),
    #[error("account(s) not found in the organisation: {}", .0.join(", "))]
    UnknownAccounts(Vec<String>),
    #[error("--from {from} is after --to {to}")]
    EmptyRange { from: NaiveDate, to: NaiveDate },
    #[error(transparent)]
    State(#[from] StateError),
}

impl PipelineError {
    /// Errors in what the user asked for (exit 2), as opposed to failures of the run (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            PipelineError::UnknownAccounts(_) | PipelineError::EmptyRange { .. }
        )
    }
}

/// Lists the accounts and keeps the requested ones. A token that may not list accounts still works
/// for `SPOTINST_ACCOUNT` (assumed AWS, as Spot's oldest accounts are).
pub async fn resolve_accounts(
    client: &SpotClient,
    plan: &ExtractPlan,
) -> Result<(Vec<Account>, Vec<AccountRef>), PipelineError> {
    let listed = match client.accounts().await {
        Ok(listed) => listed,
        Err(SpotError::Unauthorized { .. }) if plan.default_account.is_some() => {
            let id = plan.default_account.clone().unwrap_or_default();
            tracing::warn!(account = %id, "the token may not list the organisation's accounts; extracting SPOTINST_ACCOUNT only");
            vec![Account {
                account_id: id,
                name: None,
                organization_id: None,
                cloud_provider: None,
                provider_external_id: None,
                created_at: None,
            }]
        }
        Err(error) => return Err(PipelineError::Accounts(error)),
    };
    let to_ref = |a: &Account| AccountRef {
        id: a.account_id.clone(),
        name: a.name.clone(),
        cloud: Cloud::of(a.cloud_provider.as_deref()),
    };
    let named: Vec<&String> = plan
        .accounts
        .iter()
        .flatten()
        .chain(&plan.exclude_accounts)
        .collect();
    let unknown: Vec<String> = named
        .into_iter()
        .filter(|id| !listed.iter().any(|a| &a.account_id == *id))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(PipelineError::UnknownAccounts(unknown));
    }
    let selected = listed
        .iter()
        .filter(|a| {
            plan.accounts
                .as_ref()
                .is_none_or(|wanted| wanted.contains(&a.account_id))
        })
        .filter(|a| !plan.exclude_accounts.contains(&a.account_id))
        .map(to_ref)
        .collect();
    Ok((listed, selected))
}

/// The days one item covers under `plan`, in order.
fn item_days(
    plan: &ExtractPlan,
    dataset: Dataset,
    scope: &str,
    watermarks: &Watermarks,
) -> Vec<NaiveDate> {
    let range = |from: NaiveDate, to: NaiveDate| -> Vec<NaiveDate> {
        from.iter_days().take_while(|d| *d <= to).collect()
    };
    match (dataset.grain(), &plan.days) {
        (Grain::Snapshot, DayPlan::Range { .. }) => vec![plan.snapshot_day],
        (Grain::Snapshot, DayPlan::Incremental { .. }) => {
            match watermarks.get(dataset.name(), scope) {
                Some(taken) if taken >= plan.snapshot_day => Vec::new(),
                _ => vec![plan.snapshot_day],
            }
        }
        (Grain::Daily, DayPlan::Range { from, to }) => range(*from, *to),
        (
            Grain::Daily,
            DayPlan::Incremental {
                start_date,
                lookback_days,
                to,
            },
        ) => {
            let from = match watermarks.get(dataset.name(), scope) {
                None => *start_date,
                Some(loaded) => (loaded + chrono::Duration::days(1 - i64::from(*lookback_days)))
                    .max(*start_date),
            };
            range(from, *to)
        }
    }
}

/// Runs the extract stage: every planned item, `parallel_items` at a time.
pub async fn extract(
    client: Arc<SpotClient>,
    plan: &ExtractPlan,
) -> Result<ExtractReport, PipelineError> {
    if let DayPlan::Range { from, to } = plan.days {
        if from > to {
            return Err(PipelineError::EmptyRange { from, to });
        }
    }
    let incremental = matches!(plan.days, DayPlan::Incremental { .. });
    let watermarks = if incremental {
        Watermarks::load(&plan.data_dir)?
    } else {
        Watermarks::default()
    };
    let (listed, selected) = resolve_accounts(&client, plan).await?;
    let context = Arc::new(ExtractContext::new(
        client,
        Lake::new(&plan.data_dir),
        plan.namespace_label_keys.clone(),
    ));
    let listed = Arc::new(listed);
    let mut items: Vec<(Dataset, Option<AccountRef>)> = Vec::new();
    for &dataset in &plan.datasets {
        match dataset.scope() {
            Scope::Organisation => {
                if plan.shard.is_none_or(Shard::owns_organisation) {
                    items.push((dataset, None));
                }
            }
            Scope::Account => items.extend(
                selected
                    .iter()
                    .filter(|a| dataset.applies_to(a.cloud))
                    .filter(|a| plan.shard.is_none_or(|shard| shard.owns_account(&a.id)))
                    .cloned()
                    .map(|a| (dataset, Some(a))),
            ),
        }
    }
    items.sort_by_key(|(dataset, _)| std::cmp::Reverse(dataset.extraction_weight()));
    if let Some(shard) = plan.shard {
        tracing::info!(%shard, items = items.len(), "extracting this shard's part of the organisation");
    }
    let shared_watermarks = Arc::new(tokio::sync::Mutex::new(watermarks.clone()));
    let progress = StageProgress::start("extract", items.len() as u64);
    let reports = futures_util::stream::iter(items)
        .map(|(dataset, account)| {
            let context = Arc::clone(&context);
            let listed = Arc::clone(&listed);
            let shared_watermarks = Arc::clone(&shared_watermarks);
            let progress = &progress;
            let scope = account.as_ref().map_or("org", |a| a.id.as_str()).to_owned();
            let days = item_days(plan, dataset, &scope, &watermarks);
            let span = tracing::info_span!("extract", dataset = dataset.name(), account = %scope);
            async move {
                let report = run_item(&context, dataset, account, &days, &listed, &plan.shutdown).await;
                progress.advance(&format!("{dataset} {scope}"));
                if incremental && report.days > 0 {
                    let landed_until = days[report.days - 1];
                    let mut watermarks = shared_watermarks.lock().await;
                    watermarks.advance(dataset.name(), &scope, landed_until);
                    if let Err(error) = watermarks.save(&plan.data_dir) {
                        tracing::error!("the watermark could not be saved, so the next run re-reads these days: {error}");
                    }
                }
                report
            }
            .instrument(span)
        })
        .buffer_unordered(plan.parallel_items.max(1))
        .collect::<Vec<ItemReport>>()
        .await;
    let mut reports = reports;
    reports.sort_by(|a, b| (a.dataset, &a.account).cmp(&(b.dataset, &b.account)));
    Ok(ExtractReport {
        items: reports,
        accounts: selected,
        interrupted: plan.shutdown.is_cancelled(),
    })
}

/// How many of an item's days are fetched at once.
const DAYS_IN_FLIGHT: usize = 2;

/// One item: its days in order, each landed as soon as it is complete; stops at the first failure
/// or when `shutdown` is cancelled (the partition in progress is then dropped, unwritten).
async fn run_item(
    context: &ExtractContext,
    dataset: Dataset,
    account: Option<AccountRef>,
    days: &[NaiveDate],
    listed: &[Account],
    shutdown: &CancellationToken,
) -> ItemReport {
    let started = Instant::now();
    let stats = Arc::new(CallStats::default());
    let mut report = ItemReport {
        dataset,
        account: account.as_ref().map(|a| a.id.clone()),
        first_day: days.first().copied(),
        last_day: days.last().copied(),
        days: 0,
        rows: 0,
        bytes: 0,
        calls: CallCounts::default(),
        elapsed: Duration::ZERO,
        error: None,
    };
    if days.is_empty() {
        tracing::debug!("nothing to do: already loaded (a snapshot is taken once per run day)");
        return report;
    }
    // The next day is fetched while the current one finishes, so the item keeps its requests
    // flowing across day boundaries; days are still landed in order, and nothing after a failure.
    let depth = if dataset.lands_while_fetching() {
        1
    } else {
        DAYS_IN_FLIGHT
    };
    let mut fetches = futures_util::stream::iter(days.iter().copied())
        .map(|day| {
            let unit = Unit {
                dataset,
                account: account.clone(),
                day,
            };
            let stats = Arc::clone(&stats);
            async move {
                let fetched = with_call_stats(stats, fetch_unit(context, &unit, listed)).await;
                (unit, fetched)
            }
        })
        .buffered(depth);
    while let Some(&day) = days.get(report.days) {
        if shutdown.is_cancelled() {
            report.error = Some(format!("interrupted before {day}"));
            break;
        }
        let next = tokio::select! {
            next = fetches.next() => next,
            () = shutdown.cancelled() => {
                report.error = Some(format!("interrupted while extracting {day}; that day was discarded"));
                break;
            }
        };
        let Some((unit, fetched)) = next else { break };
        let landed = match fetched {
            Ok(fetched) => land_unit(context, &unit, fetched).await,
            Err(error) => Err(error),
        };
        match landed {
            Ok(written) => {
                report.days += 1;
                report.rows += written.rows;
                report.bytes += written.bytes;
            }
            Err(error) => {
                report.error = Some(error.to_string());
                break;
            }
        }
    }
    report.calls = stats.counts();
    report.elapsed = started.elapsed();
    let elapsed_ms = report.elapsed.as_millis() as u64;
    match &report.error {
        Some(error) => tracing::error!(
            days_landed = report.days,
            rows = report.rows,
            elapsed_ms,
            "{error}"
        ),
        None if report.rows == 0 => tracing::warn!(
            days = report.days,
            elapsed_ms,
            "landed, but the dataset is empty"
        ),
        None => tracing::info!(
            days = report.days,
            rows = report.rows,
            bytes = report.bytes,
            requests = report.calls.requests,
            elapsed_ms,
            "landed"
        ),
    }
    report
}

/// Renders every report in `reports_dir` from the built warehouse into
/// `DIR/reports/<run day>/` and points `DIR/reports/latest` at it. Returns the index page.
pub fn publish_reports(
    data_dir: &Path,
    reports_dir: &Path,
    now: DateTime<Utc>,
) -> anyhow::Result<PathBuf> {
    let definitions = report::load_definitions(reports_dir)?;
    let warehouse = models::Warehouse::open_read_only(data_dir)?;
    let date = |sql: &str| -> anyhow::Result<Option<NaiveDate>> {
        Ok(warehouse
            .query_text(sql)?
            .and_then(|text| NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()))
    };
    let period_from =
        date("select min(day)::varchar from stg_spot__account_costs")?.unwrap_or(now.date_naive());
    let period_to =
        date("select max(day)::varchar from stg_spot__account_costs")?.unwrap_or(now.date_naive());
    let context = ReportContext {
        period_from,
        period_to,
        data_fresh_until: date("select max(day)::varchar from stg_spot__ocean_costs")?,
        generated_at: now,
        shared_cost_policy: warehouse
            .query_text("select shared_cost_policy from spotcost_settings")?
            .unwrap_or_else(|| "proportional".into()),
        organisation: None,
    };
    let mut rendered = Vec::new();
    let mut entries = Vec::new();
    for definition in definitions {
        let batches = warehouse.query_arrow(&definition.query_sql())?;
        let (page, entry) = report::render_report(&definition, &batches, &context)?;
        rendered.push(page);
        entries.push((definition, entry));
    }
    let index = report::render_index(&entries, &context);
    let folder =
        report::write_reports(&data_dir.join("reports"), now.date_naive(), rendered, index)?;
    Ok(folder.join("index.html"))
}

/// One command's run: holds the data dir's lock from `begin` to `end` and leaves one run record.
pub struct Job {
    data_dir: PathBuf,
    pub record: RunRecord,
    clock: Clock,
    started: Instant,
    _lock: RunLock,
    /// New anomalies the run alerted on (they make a successful run exit with code 3).
    alerted: usize,
}

/// How a command ended, for its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done (exit 0).
    Succeeded,
    /// The run failed, wholly or in part (exit 1).
    Failed,
    /// Everything was done, and new cost anomalies above `anomaly_alert_usd` were found (exit 3).
    Alerted,
}

impl Outcome {
    /// Whether everything asked for was done (an alert is not a failure).
    pub fn succeeded(self) -> bool {
        self != Outcome::Failed
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::Failed => 1,
            Outcome::Alerted => 3,
        }
    }
}

impl From<bool> for Outcome {
    fn from(succeeded: bool) -> Outcome {
        if succeeded {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        }
    }
}

impl Job {
    /// Takes the lock (or fails naming who holds it) and starts the record.
    pub fn begin(command: &str, data_dir: &Path, clock: &Clock) -> anyhow::Result<Job> {
        let now = clock();
        let lock = RunLock::acquire(data_dir, command, now)?;
        let swept = sweep_temporary_files(data_dir);
        if swept > 0 {
            tracing::warn!(
                files = swept,
                "removed temporary files left by an interrupted run"
            );
        }
        let record = RunRecord::start(command, now);
        record.save_started(data_dir)?;
        Ok(Job {
            data_dir: data_dir.to_owned(),
            record,
            clock: Arc::clone(clock),
            started: Instant::now(),
            _lock: lock,
            alerted: 0,
        })
    }

    /// Writes the record, prints the summary line on stdout and releases the lock. Returns how the
    /// run ended; an error that ended the run is recorded and handed back for its exit code.
    pub fn end(
        mut self,
        outcome: anyhow::Result<()>,
        exit_code: impl Fn(&anyhow::Error) -> u8,
    ) -> anyhow::Result<Outcome> {
        let ended = match (&outcome, self.record.is_success()) {
            (Ok(()), true) if self.alerted > 0 => Outcome::Alerted,
            (Ok(()), success) => Outcome::from(success),
            (Err(_), _) => Outcome::Failed,
        };
        let code = match &outcome {
            Ok(()) => ended.exit_code(),
            Err(error) => {
                self.record.fail(&format!("{error:#}"));
                exit_code(error)
            }
        };
        if let Err(error) = self.record.finish(&self.data_dir, (self.clock)(), code) {
            tracing::error!("the run record could not be written: {error}");
        }
        let line = self.record.summary_line(self.started.elapsed());
        if self.record.is_success() {
            tracing::info!(run_id = %self.record.run_id, "{line}");
        } else {
            tracing::error!(run_id = %self.record.run_id, "{line}");
        }
        println!("{line}");
        outcome.map(|()| ended)
    }
}

/// The stages a command runs, in order; `None` skips one.
pub struct Stages {
    pub extract: Option<(Arc<SpotClient>, ExtractPlan)>,
    pub model: Option<(PathBuf, models::ModelSettings)>,
    /// Where the report definitions are.
    pub reports: Option<PathBuf>,
    /// Whether and how new cost anomalies alert (after the reports).
    pub alerts: Option<crate::alerts::AlertSettings>,
    pub shutdown: CancellationToken,
}

/// What the stages produced, for the commands' closing words.
#[derive(Debug, Default)]
pub struct StagesOutcome {
    pub extract: Option<ExtractReport>,
    pub index: Option<PathBuf>,
}

/// Runs `stages` for `job`. A stage that fails or is interrupted stops the ones after it.
pub async fn run_stages(job: &mut Job, stages: Stages) -> anyhow::Result<StagesOutcome> {
    let mut outcome = StagesOutcome::default();
    let data_dir = job.data_dir.clone();
    if let Some((client, plan)) = stages.extract {
        let started = Instant::now();
        let report = extract(client, &plan).await?;
        job.record
            .add_extract(&report, started.elapsed().as_millis() as u64);
        let complete = report.is_success();
        outcome.extract = Some(report);
        if !complete {
            return Ok(outcome);
        }
    }
    if stages.shutdown.is_cancelled() {
        job.record.add_stage(
            "model",
            RunStatus::Interrupted,
            0,
            "interrupted before the models".into(),
        );
        return Ok(outcome);
    }
    if let Some((queries_dir, settings)) = stages.model {
        let started = Instant::now();
        let built = {
            let (data_dir, settings) = (data_dir.clone(), settings.clone());
            tokio::task::spawn_blocking(move || models::build(&data_dir, &queries_dir, &settings))
                .await?
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match built {
            Ok(built) => {
                let warned: Vec<&str> =
                    built.tests_warned.iter().map(|t| t.name.as_str()).collect();
                tracing::info!(
                    warehouse = %built.warehouse.display(),
                    build = built.kind.as_str(),
                    days_recomputed = built.days_recomputed,
                    full_because = built.full_reason.as_deref().unwrap_or(""),
                    marts = built.marts.len(),
                    tests = built.tests_passed.len(),
                    tests_warned = %warned.join(", "),
                    policy = settings.shared_cost_policy.as_str(),
                    elapsed_ms,
                    "models built and data tests passed"
                );
                let mut detail = format!(
                    "{} build of {} day(s): {} marts built, {} data tests passed",
                    built.kind.as_str(),
                    built.days_recomputed,
                    built.marts.len(),
                    built.tests_passed.len()
                );
                if !warned.is_empty() {
                    detail.push_str(&format!(
                        ", {} warned ({})",
                        warned.len(),
                        warned.join(", ")
                    ));
                }
                job.record
                    .add_stage("model", RunStatus::Succeeded, elapsed_ms, detail);
            }
            Err(error) => {
                job.record
                    .add_stage("model", RunStatus::Failed, elapsed_ms, error.to_string());
                return Err(error.into());
            }
        }
    }
    if stages.shutdown.is_cancelled() {
        job.record.add_stage(
            "report",
            RunStatus::Interrupted,
            0,
            "interrupted before the reports".into(),
        );
        return Ok(outcome);
    }
    if let Some(reports_dir) = stages.reports {
        let started = Instant::now();
        let now = (job.clock)();
        let published = {
            let data_dir = data_dir.clone();
            tokio::task::spawn_blocking(move || publish_reports(&data_dir, &reports_dir, now))
                .await?
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match published {
            Ok(index) => {
                tracing::info!(index = %index.display(), elapsed_ms, "reports written");
                job.record.add_stage(
                    "report",
                    RunStatus::Succeeded,
                    elapsed_ms,
                    format!("reports in {}", index.parent().unwrap_or(&index).display()),
                );
                outcome.index = Some(index);
            }
            Err(error) => {
                job.record.add_stage(
                    "report",
                    RunStatus::Failed,
                    elapsed_ms,
                    format!("{error:#}"),
                );
                return Err(error);
            }
        }
    }
    if let Some(settings) = stages.alerts {
        job.alerted = alert(job, &data_dir, &settings).await?;
    }
    Ok(outcome)
}

/// The alert stage: logs the new anomalies, posts them to the webhook if one is set, and records
/// them as alerted once that worked. Returns how many there were.
async fn alert(
    job: &mut Job,
    data_dir: &Path,
    settings: &crate::alerts::AlertSettings,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let pending = {
        let (data_dir, settings) = (data_dir.to_owned(), settings.clone());
        tokio::task::spawn_blocking(move || crate::alerts::pending(&data_dir, &settings)).await?
    };
    let delivered = match pending {
        Ok(alerts) if alerts.is_empty() => Ok(alerts),
        Ok(alerts) => {
            for alert in &alerts {
                tracing::warn!(
                    day = %alert.day,
                    delta_usd = format!("{:.2}", alert.delta_usd),
                    "cost anomaly: {}",
                    alert.describe()
                );
            }
            match &settings.webhook {
                Some(url) => crate::alerts::post(url, &alerts, settings.min_usd)
                    .await
                    .map(|()| alerts),
                None => Ok(alerts),
            }
        }
        Err(error) => Err(error),
    }
    .and_then(|alerts| crate::alerts::mark_alerted(data_dir, &alerts).map(|()| alerts.len()));
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match delivered {
        Ok(count) => {
            job.record.add_stage(
                "alert",
                RunStatus::Succeeded,
                elapsed_ms,
                format!(
                    "{count} new cost anomal{} of at least {:.2} USD",
                    if count == 1 { "y" } else { "ies" },
                    settings.min_usd
                ),
            );
            Ok(count)
        }
        Err(error) => {
            job.record
                .add_stage("alert", RunStatus::Failed, elapsed_ms, error.to_string());
            Err(error.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn a_shard_is_i_of_n() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(
            " 1 / 1 ".parse::<Shard>().map(|s| s.to_string()),
            Ok("1/1".into())
        );
        for bad in [
            "0/2", "3/2", "1/0", "1", "a/b", "1/2/3", "-1/2", "1/1025", "",
        ] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{bad}: {error}");
        }
    }

    #[test]
    fn every_account_has_exactly_one_shard_and_keeps_it() {
        let ids: Vec<String> = (0..200).map(|n| format!("act-{n:08x}")).collect();
        for count in [1, 2, 3, 7] {
            let shards: Vec<Shard> = (1..=count).map(|i| Shard::new(i, count).unwrap()).collect();
            for id in &ids {
                assert_eq!(
                    shards.iter().filter(|s| s.owns_account(id)).count(),
                    1,
                    "{id}"
                );
            }
            assert_eq!(shards.iter().filter(|s| s.owns_organisation()).count(), 1);
            // Roughly even: no shard of 200 accounts gets more than twice its share.
            for shard in &shards {
                let owned = ids.iter().filter(|id| shard.owns_account(id)).count();
                assert!(owned <= 2 * 200 / count as usize + 1, "{shard}: {owned}");
            }
        }
        // The assignment is part of the on-disk contract between machines: it must not move.
        let one_of_three: Vec<bool> = ["act-0", "act-1", "act-2", "act-3"]
            .iter()
            .map(|id| Shard::new(1, 3).unwrap().owns_account(id))
            .collect();
        assert_eq!(one_of_three, GOLDEN);
    }

    // Computed independently: FNV-1a 64 of each id, mod 3, plus 1, is 1, 2, 2, 3.
    const GOLDEN: [bool; 4] = [true, false, false, false];
}

//! The pipeline's stages. Today: extract, which lists the organisation's accounts, plans one item per
//! dataset × account (or × organisation), runs items concurrently and lands each day of an item as
//! its own partition. One failed item does not stop the others; the report says what failed.

use crate::extract::{extract_unit, AccountRef, Dataset, ExtractContext, Grain, Scope, Unit};
use crate::lake::Lake;
use crate::models;
use crate::report::{self, ReportContext};
use crate::spot::types::{Account, Cloud};
use crate::spot::{SpotClient, SpotError};
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What to extract.
#[derive(Debug, Clone)]
pub struct ExtractPlan {
    pub data_dir: PathBuf,
    /// First and last usage day, inclusive.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The day snapshot datasets are filed under (the run's "today", UTC).
    pub snapshot_day: NaiveDate,
    pub datasets: Vec<Dataset>,
    /// Account ids to extract; `None` means every account of the organisation.
    pub accounts: Option<Vec<String>>,
    /// Used when the token may not list the organisation's accounts.
    pub default_account: Option<String>,
    pub namespace_label_keys: Vec<String>,
    /// Items run at once (each item's calls are further bounded by the client's concurrency).
    pub parallel_items: usize,
}

/// What one item (a dataset for one account, or for the organisation) landed.
#[derive(Debug, Clone)]
pub struct ItemReport {
    pub dataset: Dataset,
    pub account: Option<String>,
    pub days: usize,
    pub rows: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// The first failure; days before it are landed, days from it on are not.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct ExtractReport {
    pub items: Vec<ItemReport>,
    pub accounts: Vec<AccountRef>,
}

impl ExtractReport {
    pub fn failures(&self) -> impl Iterator<Item = &ItemReport> {
        self.items.iter().filter(|i| i.error.is_some())
    }
    pub fn is_success(&self) -> bool {
        self.failures().next().is_none()
    }
    pub fn rows(&self) -> u64 {
        self.items.iter().map(|i| i.rows).sum()
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
async fn resolve_accounts(
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
    let selected = match &plan.accounts {
        None => listed.iter().map(to_ref).collect(),
        Some(wanted) => {
            let unknown: Vec<String> = wanted
                .iter()
                .filter(|id| !listed.iter().any(|a| &a.account_id == *id))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(PipelineError::UnknownAccounts(unknown));
            }
            listed
                .iter()
                .filter(|a| wanted.contains(&a.account_id))
                .map(to_ref)
                .collect()
        }
    };
    Ok((listed, selected))
}

/// Runs the extract stage: every planned item, `parallel_items` at a time.
pub async fn extract(
    client: Arc<SpotClient>,
    plan: &ExtractPlan,
) -> Result<ExtractReport, PipelineError> {
    if plan.from > plan.to {
        return Err(PipelineError::EmptyRange {
            from: plan.from,
            to: plan.to,
        });
    }
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
            Scope::Organisation => items.push((dataset, None)),
            Scope::Account => items.extend(
                selected
                    .iter()
                    .filter(|a| dataset.applies_to(a.cloud))
                    .cloned()
                    .map(|a| (dataset, Some(a))),
            ),
        }
    }
    let days: Vec<NaiveDate> = plan
        .from
        .iter_days()
        .take_while(|d| *d <= plan.to)
        .collect();
    let reports = futures_util::stream::iter(items)
        .map(|(dataset, account)| {
            let context = Arc::clone(&context);
            let listed = Arc::clone(&listed);
            let item_days = match dataset.grain() {
                Grain::Snapshot => vec![plan.snapshot_day],
                Grain::Daily => days.clone(),
            };
            let span = tracing::info_span!(
                "extract",
                dataset = dataset.name(),
                account = account.as_ref().map_or("org", |a| a.id.as_str()).to_owned()
            );
            async move { run_item(&context, dataset, account, &item_days, &listed).await }
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
    })
}

/// One item: its days in order, each landed as soon as it is complete; stops at the first failure.
async fn run_item(
    context: &ExtractContext,
    dataset: Dataset,
    account: Option<AccountRef>,
    days: &[NaiveDate],
    listed: &[Account],
) -> ItemReport {
    let started = Instant::now();
    let mut report = ItemReport {
        dataset,
        account: account.as_ref().map(|a| a.id.clone()),
        days: 0,
        rows: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        error: None,
    };
    for &day in days {
        let unit = Unit {
            dataset,
            account: account.clone(),
            day,
        };
        match extract_unit(context, &unit, listed).await {
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

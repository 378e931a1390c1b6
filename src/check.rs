//! `spotcost check`: can the nightly job run? Checks the configuration, the schedule, the data
//! dir (writable, and whether a run holds its lock), then reaches the API with the token and probes,
//! per account, one cheap call for every configured dataset, naming the Spot permission a refused
//! one needs. Exit 0 only if every check passed.

use crate::cli::CheckArgs;
use crate::config::{ConfigError, Environment, Overrides, Settings};
use crate::extract::{Dataset, Scope};
use crate::lake::state::{write_atomically, RunLock};
use crate::schedule::{Clock, CronSchedule};
use crate::spot::types::{Account, Cloud};
use crate::spot::{DayWindow, InstanceCostSink, SpotClient, SpotError};
use std::collections::BTreeMap;

/// What a refused call needs, per dataset, in Spot's own words.
fn required_permission(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::Accounts => "Organization Admin (to list every account), or set SPOTINST_ACCOUNT",
        Dataset::AuditEvents => {
            "Organization Viewer, or an access policy with the action setup:describeAllAuditEvents"
        }
        Dataset::InstanceCosts => {
            "an organization-level token (Organization Admin or Organization Viewer)"
        }
        _ => "Account Viewer (or a policy allowing read access) on this account",
    }
}

/// The call that shows whether the token may read `dataset` for `account`. Datasets read through
/// the same route share a probe; the result is cached per (probe, account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Probe {
    AuditEvents,
    Groups,
    ManagedInstances,
    OceanClusters,
    PotentialSavings,
    AccountCosts,
    InstanceCosts,
}

fn probe_of(dataset: Dataset) -> Option<Probe> {
    match dataset {
        Dataset::Accounts => None,
        Dataset::Elastigroups | Dataset::ElastigroupCosts => Some(Probe::Groups),
        Dataset::ManagedInstances | Dataset::ManagedInstanceCosts => Some(Probe::ManagedInstances),
        Dataset::OceanClusters
        | Dataset::OceanCosts
        | Dataset::OceanRightsizing
        | Dataset::OceanVirtualNodeGroups => Some(Probe::OceanClusters),
        Dataset::PotentialSavings => Some(Probe::PotentialSavings),
        Dataset::AccountCosts => Some(Probe::AccountCosts),
        Dataset::InstanceCosts => Some(Probe::InstanceCosts),
        Dataset::AuditEvents => Some(Probe::AuditEvents),
    }
}

/// Counts the rows of a probing export and keeps none.
struct DiscardRows;

impl InstanceCostSink for DiscardRows {
    fn restart(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn write(&mut self, _rows: Vec<crate::spot::types::InstanceCostRow>) -> Result<(), String> {
        Ok(())
    }
}

async fn run_probe(
    client: &SpotClient,
    probe: Probe,
    account: Option<&Account>,
    window: DayWindow,
) -> Result<(), SpotError> {
    let (id, cloud) = match account {
        Some(a) => (
            a.account_id.as_str(),
            Cloud::of(a.cloud_provider.as_deref()),
        ),
        None => ("", Cloud::Aws),
    };
    match probe {
        Probe::AuditEvents => client.audit_events(window).await.map(drop),
        Probe::Groups => client.groups(id, cloud).await.map(drop),
        Probe::ManagedInstances => client.managed_instances(id, cloud).await.map(drop),
        Probe::OceanClusters => client.ocean_clusters(id, cloud).await.map(drop),
        Probe::PotentialSavings => client.potential_savings(id, cloud).await.map(drop),
        Probe::AccountCosts => client.account_costs(id, cloud, window).await.map(drop),
        Probe::InstanceCosts => client
            .export_instance_costs(id, window, DiscardRows)
            .await
            .map(drop),
    }
}

/// One line of verdict per check, printed as the checks go.
struct Verdicts {
    failed: usize,
}

impl Verdicts {
    fn ok(&mut self, what: &str, detail: impl std::fmt::Display) {
        println!("ok      {what}: {detail}");
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed += 1;
        println!("FAILED  {what}: {detail}");
    }
    fn note(&mut self, what: &str, detail: impl std::fmt::Display) {
        println!("note    {what}: {detail}");
    }
}

pub async fn run(args: CheckArgs, env: &Environment, clock: &Clock) -> anyhow::Result<bool> {
    let mut verdicts = Verdicts { failed: 0 };
    let config_path = args.locations.config.clone().or(env.config_path.clone());
    let file = env.load_config(config_path.as_deref())?;
    let settings = Settings::resolve(
        file.clone(),
        env.clone(),
        Overrides {
            data_dir: args.locations.data_dir,
            api_url: args.api_url,
            accounts: None,
            shard: None,
        },
    )?;
    file.model_settings(None)?;
    file.anomaly_alerts()?;
    let client = SpotClient::new(settings.client.clone())?;
    let now = clock();
    let today = now.date_naive();
    let start_date = file.start_date(today)?;
    let lookback_days = file.lookback_days()?;
    verdicts.ok(
        "configuration",
        match &config_path {
            Some(path) => format!("{} is valid", path.display()),
            None => "defaults (no spotcost.toml), environment and flags are valid".to_owned(),
        },
    );
    verdicts.note(
        "nightly range",
        format!("from each watermark less {lookback_days} day(s) of lookback up to yesterday; first run from {start_date}"),
    );
    if let Some(expression) = &file.schedule {
        let schedule = CronSchedule::parse(expression, file.time_zone())
            .map_err(|error| ConfigError::Schedule(error.to_string()))?;
        match schedule.next_after(now) {
            Some(next) => verdicts.ok(
                "schedule",
                format!("{expression:?}, next run {}", schedule.local_display(next)),
            ),
            None => verdicts.fail("schedule", format!("{expression:?} never fires")),
        }
    }

    let data_dir = &settings.data_dir;
    let probe_file = data_dir.join("state").join(".check");
    match write_atomically(&probe_file, b"spotcost check\n") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe_file);
            verdicts.ok("data dir", format!("{} is writable", data_dir.display()));
        }
        Err(error) => verdicts.fail("data dir", error),
    }
    match RunLock::acquire(data_dir, "check", now) {
        Ok(lock) => drop(lock),
        Err(error) => verdicts.note("lock", error),
    }

    let listed = match client.accounts().await {
        Ok(listed) => {
            verdicts.ok(
                "API",
                format!(
                    "{} reached; the token lists {} account(s)",
                    settings.client.base_url,
                    listed.len()
                ),
            );
            listed
        }
        Err(error @ SpotError::Unauthorized { .. }) if settings.default_account.is_some() => {
            verdicts.note(
                "accounts",
                format!(
                    "{error}; the nightly job will extract SPOTINST_ACCOUNT only (listing every account needs {})",
                    required_permission(Dataset::Accounts)
                ),
            );
            vec![Account {
                account_id: settings.default_account.clone().unwrap_or_default(),
                name: None,
                organization_id: None,
                cloud_provider: None,
                provider_external_id: None,
                created_at: None,
            }]
        }
        Err(error) => {
            let hint = match &error {
                SpotError::Unauthorized { .. } => format!(
                    " (the token needs {})",
                    required_permission(Dataset::Accounts)
                ),
                _ => String::new(),
            };
            verdicts.fail("API", format!("{error}{hint}"));
            return Ok(false);
        }
    };
    let selected: Vec<&Account> = listed
        .iter()
        .filter(|a| {
            settings
                .accounts
                .as_ref()
                .is_none_or(|wanted| wanted.contains(&a.account_id))
        })
        .filter(|a| !settings.exclude_accounts.contains(&a.account_id))
        .collect();
    for wanted in settings
        .accounts
        .iter()
        .flatten()
        .chain(&settings.exclude_accounts)
    {
        if !listed.iter().any(|a| &a.account_id == wanted) {
            verdicts.fail(
                "accounts",
                format!("{wanted} is configured but the token does not see it"),
            );
        }
    }

    let window = DayWindow::new(today - chrono::Duration::days(1));
    let mut results: BTreeMap<(Probe, String), Result<(), String>> = BTreeMap::new();
    let scopes: Vec<Option<&Account>> = std::iter::once(None)
        .chain(selected.iter().map(|a| Some(*a)))
        .collect();
    for account in scopes {
        let scope_name = account.map_or("organisation".to_owned(), |a| {
            format!(
                "{} ({}, {})",
                a.account_id,
                a.name.as_deref().unwrap_or("unnamed"),
                Cloud::of(a.cloud_provider.as_deref()).as_str()
            )
        });
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for &dataset in &settings.datasets {
            let applies = match (dataset.scope(), account) {
                (Scope::Organisation, None) => true,
                (Scope::Account, Some(a)) => {
                    dataset.applies_to(Cloud::of(a.cloud_provider.as_deref()))
                }
                _ => false,
            };
            if !applies {
                continue;
            }
            let Some(probe) = probe_of(dataset) else {
                allowed.push(dataset.name().to_owned());
                continue;
            };
            let key = (
                probe,
                account.map_or(String::new(), |a| a.account_id.clone()),
            );
            if !results.contains_key(&key) {
                let outcome = run_probe(&client, probe, account, window).await;
                let outcome = outcome.map_err(|error| match error {
                    SpotError::Unauthorized { status, .. } => format!(
                        "refused ({status}): the token needs {}",
                        required_permission(dataset)
                    ),
                    other => other.to_string(),
                });
                results.insert(key.clone(), outcome);
            }
            match &results[&key] {
                Ok(()) => allowed.push(dataset.name().to_owned()),
                Err(reason) => refused.push(format!("{}: {reason}", dataset.name())),
            }
        }
        if allowed.is_empty() && refused.is_empty() {
            continue;
        }
        if refused.is_empty() {
            verdicts.ok(&scope_name, format!("{} readable", allowed.join(", ")));
        } else {
            verdicts.fail(
                &scope_name,
                format!(
                    "{}{}; remove a dataset from `datasets` in the config to skip it",
                    if allowed.is_empty() {
                        String::new()
                    } else {
                        format!("{} readable; ", allowed.join(", "))
                    },
                    refused.join("; ")
                ),
            );
        }
    }
    if verdicts.failed == 0 {
        println!("spotcost check: the nightly job can run");
        Ok(true)
    } else {
        println!(
            "spotcost check: {} problem(s); the nightly job would fail",
            verdicts.failed
        );
        Ok(false)
    }
}

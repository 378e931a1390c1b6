//! The Spot routes spotcost reads, grouped by resource, each a method on `SpotClient`. This is where
//! the API's quirks live: which route serves which cloud, date formats per route, one-day windows,
//! the right-sizing v2 → v1 fallback and the streamed instance-cost CSV.

use super::types::*;
use super::{Call, Endpoint, Failure, SpotClient, SpotError};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde_json::json;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// The UTC day `[day 00:00, day+1 00:00)` that a cost call covers. Every dated call spotcost makes is
/// one such day, so rows are keyed on the window asked for, never on times the API echoes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    pub day: NaiveDate,
}

impl DayWindow {
    pub fn new(day: NaiveDate) -> DayWindow {
        DayWindow { day }
    }
    fn start(&self) -> DateTime<Utc> {
        self.day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }
    fn end(&self) -> DateTime<Utc> {
        self.start() + chrono::Duration::days(1)
    }
    fn from_date(&self) -> String {
        self.day.format("%Y-%m-%d").to_string()
    }
    fn to_date(&self) -> String {
        self.end().date_naive().format("%Y-%m-%d").to_string()
    }
    /// Keeps the items of this day: items stamped with another day (a route that treats `toDate`
    /// as inclusive) are dropped; unstamped items belong to the window.
    fn keep<T>(&self, items: Vec<T>, stamp: impl Fn(&T) -> Option<DateTime<Utc>>) -> Vec<T> {
        items
            .into_iter()
            .filter(|item| stamp(item).is_none_or(|at| at.date_naive() == self.day))
            .collect()
    }
}

/// Where the streamed instance-cost CSV goes. `restart` is called before every attempt, so a
/// retried download never appends to rows of a failed one.
pub trait InstanceCostSink: Send + 'static {
    fn restart(&mut self) -> Result<(), String>;
    fn write(&mut self, rows: Vec<InstanceCostRow>) -> Result<(), String>;
}

/// Rows handed to an `InstanceCostSink` at a time.
const CSV_BATCH_ROWS: usize = 8192;

impl SpotClient {
    /// `GET /setup/account`: every account of the organisation (§1). Org level: no `accountId`.
    /// An account listed twice is kept once (its first listing), with a warning: extracting it
    /// twice would double its costs.
    pub async fn accounts(&self) -> Result<Vec<Account>, SpotError> {
        let call = Call::get("/setup/account", "/setup/account".into());
        let endpoint = call.endpoint();
        let accounts: Vec<Account> = self.items(call, None).await?;
        Ok(first_per_id(accounts, &endpoint, |account| {
            &account.account_id
        }))
    }

    /// The account's Elastigroups: `/aws/ec2/group` or `/gcp/gce/group` (§2). Azure has none here.
    pub async fn groups(&self, account_id: &str, cloud: Cloud) -> Result<Vec<Group>, SpotError> {
        let route = match cloud {
            Cloud::Aws => "/aws/ec2/group",
            Cloud::Gcp => "/gcp/gce/group",
            Cloud::Azure => return Ok(Vec::new()),
            Cloud::Unknown => return Err(unknown_cloud(account_id, "Elastigroups")),
        };
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("group"),
        )
        .await
    }

    /// `GET /aws/emr/mrScaler` (§4.3); items flat or wrapped in `mrScaler`.
    pub async fn emr_scalers(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<EmrScaler>, SpotError> {
        match cloud {
            Cloud::Aws => {}
            Cloud::Gcp | Cloud::Azure => return Ok(Vec::new()),
            Cloud::Unknown => return Err(unknown_cloud(account_id, "EMR scalers")),
        }
        let route = "/aws/emr/mrScaler";
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("mrScaler"),
        )
        .await
    }

    /// A dated cost GET over one day for the resource `id`, daily-aggregated where the route allows
    /// it. `per_instance` routes answer one item per instance (keyed by instance and day), the
    /// others one item per day; see [`dedupe`] for repeated keys.
    async fn day_costs(
        &self,
        route: &'static str,
        id: &str,
        account_id: &str,
        window: DayWindow,
        per_instance: bool,
    ) -> Result<Vec<CostItem>, SpotError> {
        let call = Call::get(route, fill_route(route, id)?)
            .param("fromDate", window.from_date())
            .param("toDate", window.to_date())
            .param("aggregationPeriod", "daily")
            .account(account_id);
        let endpoint = call.endpoint();
        let items: Vec<CostItem> = self.items(call, None).await?;
        let items = if per_instance {
            dedupe(&endpoint, items, "the instance", |item| {
                item.instance_id
                    .as_ref()
                    .map(|id| format!("{id} at {}", stamp_key(item.timestamp)))
            })?
        } else {
            dedupe(&endpoint, items, "the cost of", |item| {
                Some(stamp_key(item.timestamp))
            })?
        };
        Ok(window.keep(items, |item| item.timestamp))
    }

    /// `GET /aws/ec2/group/{id}/costs`: spot lifecycle only (§3.1).
    pub async fn group_spot_costs(
        &self,
        account_id: &str,
        group_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        let route = "/aws/ec2/group/{id}/costs";
        self.day_costs(route, group_id, account_id, window, false)
            .await
    }

    /// `GET /aws/ec2/group/{id}/costs/detailed`: every lifecycle, one item per instance (§3.2).
    pub async fn group_detailed_costs(
        &self,
        account_id: &str,
        group_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        let route = "/aws/ec2/group/{id}/costs/detailed";
        self.day_costs(route, group_id, account_id, window, true)
            .await
    }

    /// `GET /gcp/gce/group/{id}/costs` (§4.1).
    pub async fn gcp_group_costs(
        &self,
        account_id: &str,
        group_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        let route = "/gcp/gce/group/{id}/costs";
        self.day_costs(route, group_id, account_id, window, false)
            .await
    }

    /// `GET /aws/emr/mrScaler/{id}/costs` (§4.3).
    pub async fn emr_scaler_costs(
        &self,
        account_id: &str,
        scaler_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        let route = "/aws/emr/mrScaler/{id}/costs";
        self.day_costs(route, scaler_id, account_id, window, false)
            .await
    }

    /// `GET /aws/ec2/managedInstance` (§6.1); list items wrap their settings in `config`.
    pub async fn managed_instances(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<ManagedInstance>, SpotError> {
        match cloud {
            Cloud::Aws => {}
            Cloud::Gcp | Cloud::Azure => return Ok(Vec::new()),
            Cloud::Unknown => return Err(unknown_cloud(account_id, "Managed Instances")),
        }
        let route = "/aws/ec2/managedInstance";
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("config"),
        )
        .await
    }

    /// `GET /aws/ec2/managedInstance/{id}/costs` (§6.2).
    pub async fn managed_instance_costs(
        &self,
        account_id: &str,
        instance_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        let route = "/aws/ec2/managedInstance/{id}/costs";
        self.day_costs(route, instance_id, account_id, window, false)
            .await
    }

    /// The account's Ocean Kubernetes clusters (§7.1): AWS, GKE (items maybe wrapped in `cluster`) or AKS.
    pub async fn ocean_clusters(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<OceanCluster>, SpotError> {
        let route = match cloud {
            Cloud::Aws => "/ocean/aws/k8s/cluster",
            Cloud::Gcp => "/ocean/gcp/k8s/cluster",
            Cloud::Azure => "/ocean/azure/np/cluster",
            Cloud::Unknown => return Err(unknown_cloud(account_id, "Ocean clusters")),
        };
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("cluster"),
        )
        .await
    }

    /// `POST /ocean/{cloud}/k8s/cluster/{id}/aggregatedCosts` for one day (§7.3), with exclusive
    /// midnight boundaries. `group_by` is `namespace` or `namespace.label.<key>`.
    ///
    /// Repeats never add up: a group (namespace) listed twice in `aggregations` is refused unless
    /// identical (see `envelope::parse_root`), a resource listed twice in one group is counted once
    /// if identical and refused otherwise, and so are several `items`.
    pub async fn aggregated_costs(
        &self,
        account_id: &str,
        cloud: Cloud,
        cluster_id: &str,
        window: DayWindow,
        group_by: &str,
    ) -> Result<TotalForDuration, SpotError> {
        self.aggregated_costs_at(account_id, cloud, cluster_id, window, group_by)
            .await
            .map(|(total, _)| total)
    }

    /// [`SpotClient::aggregated_costs`], and the endpoint it called.
    async fn aggregated_costs_at(
        &self,
        account_id: &str,
        cloud: Cloud,
        cluster_id: &str,
        window: DayWindow,
        group_by: &str,
    ) -> Result<(TotalForDuration, Endpoint), SpotError> {
        let route = match cloud {
            Cloud::Aws => "/ocean/aws/k8s/cluster/{id}/aggregatedCosts",
            Cloud::Gcp => "/ocean/gcp/k8s/cluster/{id}/aggregatedCosts",
            Cloud::Azure => "/ocean/azure/k8s/cluster/{id}/aggregatedCosts",
            Cloud::Unknown => return Err(unknown_cloud(account_id, "Ocean costs")),
        };
        let body = json!({
            "startTime": window.start().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "endTime": window.end().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "groupBy": group_by,
        });
        let call = Call::post(route, fill_route(route, cluster_id)?, body).account(account_id);
        let endpoint = call.endpoint();
        let items: Vec<AggregatedCostsItem> = self.items(call, None).await?;
        let mut totals = items
            .into_iter()
            .enumerate()
            .filter_map(|(index, item)| item.into_total().map(|total| (index, total)));
        let Some((_, mut total)) = totals.next() else {
            return Ok((TotalForDuration::default(), endpoint));
        };
        for (index, other) in totals {
            if other != total {
                return Err(SpotError::Decode {
                    endpoint: endpoint.clone(),
                    json_path: format!("response.items[{index}]"),
                    request_id: None,
                    message: "a second, different cost result for the same cluster and window; refusing to pick one or add both".into(),
                });
            }
        }
        if let Some(detailed) = total.detailed_costs.as_mut() {
            for (group, aggregation) in detailed.aggregations.iter_mut() {
                let resources = std::mem::take(&mut aggregation.resources);
                aggregation.resources = dedupe_at(
                    &endpoint,
                    &format!(
                        "response.items[0].result.totalForDuration.detailedCosts.aggregations.{group}.resources"
                    ),
                    resources,
                    "the resource",
                    |resource| {
                        let metadata = resource.metadata.clone().unwrap_or_default();
                        Some(format!(
                            "{}/{}/{} of group {group}",
                            metadata.namespace.unwrap_or_default(),
                            metadata.resource_type.unwrap_or_default(),
                            metadata.name.unwrap_or_default()
                        ))
                    },
                )?;
            }
        }
        Ok((total, endpoint))
    }

    /// The value of the namespace label `key` of every namespace of a cluster, from one
    /// `groupBy: namespace.label.<key>` aggregated-cost call: namespace → label value. A namespace
    /// filed under two values of one label is an error, not a coin toss over whose chargeback it is.
    pub async fn namespace_labels(
        &self,
        account_id: &str,
        cloud: Cloud,
        cluster_id: &str,
        window: DayWindow,
        key: &str,
    ) -> Result<BTreeMap<String, String>, SpotError> {
        let (by_label, endpoint) = self
            .aggregated_costs_at(
                account_id,
                cloud,
                cluster_id,
                window,
                &format!("namespace.label.{key}"),
            )
            .await?;
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        for (value, aggregation) in by_label.detailed_costs.unwrap_or_default().aggregations {
            for resource in &aggregation.resources {
                let Some(namespace) = resource.metadata.as_ref().and_then(|m| m.namespace.clone())
                else {
                    continue;
                };
                match labels.get(&namespace) {
                    Some(earlier) if *earlier != value => {
                        return Err(SpotError::Decode {
                            endpoint,
                            json_path: format!(
                                "response.items[0].result.totalForDuration.detailedCosts.aggregations.{value}"
                            ),
                            request_id: None,
                            message: format!(
                                "namespace {namespace:?} is filed under both {earlier:?} and {value:?} of the label {key:?}"
                            ),
                        });
                    }
                    Some(_) => {}
                    None => {
                        labels.insert(namespace, value.clone());
                    }
                }
            }
        }
        Ok(labels)
    }

    /// Right-sizing for a cluster: the current `POST /ocean/{id}/rightSizing/recommendations` (§8.2),
    /// falling back to the v1 `…/rightSizing/suggestion` (§8.1) where the cluster's API lacks it (404).
    /// A workload listed twice is counted once if identical and refused otherwise.
    pub async fn rightsizing(
        &self,
        account_id: &str,
        cloud: Cloud,
        cluster_id: &str,
    ) -> Result<Rightsizing, SpotError> {
        let v1_route = match cloud {
            Cloud::Aws => "/ocean/aws/k8s/cluster/{id}/rightSizing/suggestion",
            Cloud::Gcp => "/ocean/gcp/k8s/cluster/{id}/rightSizing/suggestion",
            Cloud::Azure => "/ocean/azure/np/cluster/{id}/rightSizing/suggestion",
            Cloud::Unknown => return Err(unknown_cloud(account_id, "right-sizing")),
        };
        let v2_route = "/ocean/{id}/rightSizing/recommendations";
        let v2 =
            Call::post(v2_route, fill_route(v2_route, cluster_id)?, json!({})).account(account_id);
        let workload_key = |item: &RightsizingItem| {
            Some(format!(
                "{}/{}/{}",
                item.namespace.as_deref().unwrap_or_default(),
                item.workload_type.as_deref().unwrap_or_default(),
                item.workload_name.as_deref().unwrap_or_default()
            ))
        };
        let endpoint = v2.endpoint();
        match self.items::<RightsizingItem>(v2, None).await {
            Ok(items) => {
                return Ok(Rightsizing {
                    api_version: "v2",
                    items: dedupe(&endpoint, items, "the workload", workload_key)?,
                })
            }
            Err(error) if error.status() == Some(404) => {
                tracing::debug!(
                    cluster = cluster_id,
                    "right-sizing v2 answered 404; using v1"
                );
            }
            Err(error) => return Err(error),
        }
        let v1 =
            Call::post(v1_route, fill_route(v1_route, cluster_id)?, json!({})).account(account_id);
        let endpoint = v1.endpoint();
        let items = self.items::<RightsizingItem>(v1, None).await?;
        Ok(Rightsizing {
            api_version: "v1",
            items: dedupe(&endpoint, items, "the workload", workload_key)?,
        })
    }

    /// `GET /aws/potentialSavings` (§9.1): monthly USD per resource. AWS accounts only. Items have
    /// no documented key, so only exact repeats are recognised (and counted once).
    pub async fn potential_savings(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<PotentialSaving>, SpotError> {
        match cloud {
            Cloud::Aws => {}
            Cloud::Gcp | Cloud::Azure => return Ok(Vec::new()),
            Cloud::Unknown => return Err(unknown_cloud(account_id, "potential savings")),
        }
        let route = "/aws/potentialSavings";
        let call = Call::get(route, route.into()).account(account_id);
        let endpoint = call.endpoint();
        let items: Vec<PotentialSaving> = self.items(call, None).await?;
        Ok(dedupe(&endpoint, items, "the saving", |item| {
            Some(format!("{item:?}"))
        })?)
    }

    /// Account costs for one day (§4, §5): `/aws/costs` (`spot`), `/gcp/gce/costs` (`preemptible`) or
    /// `/azure/costs` (`lowPriority`). AWS falls back to `/aws/ec2/costs` where `/aws/costs` is 404.
    /// One item per day: a day listed twice is counted once if identical and refused otherwise.
    pub async fn account_costs(
        &self,
        account_id: &str,
        cloud: Cloud,
        window: DayWindow,
    ) -> Result<Vec<LifecycleCosts>, SpotError> {
        let call = |route: &'static str, daily: bool| {
            let call = Call::get(route, route.into())
                .param("fromDate", window.from_date())
                .param("toDate", window.to_date());
            let call = if daily {
                call.param("aggregationPeriod", "daily")
            } else {
                call
            };
            call.account(account_id)
        };
        let get = |call: Call| async move {
            let endpoint = call.endpoint();
            let items: Vec<AccountCostItem> = self.items(call, None).await?;
            let items = dedupe(&endpoint, items, "the cost of", |item| {
                Some(stamp_key(item.timestamp))
            })?;
            Ok::<_, SpotError>(items)
        };
        let items: Vec<AccountCostItem> = match cloud {
            Cloud::Aws => match get(call("/aws/costs", true)).await {
                Err(error) if error.status() == Some(404) => {
                    get(call("/aws/ec2/costs", true)).await?
                }
                other => other?,
            },
            Cloud::Gcp => get(call("/gcp/gce/costs", false)).await?,
            Cloud::Azure => get(call("/azure/costs", false)).await?,
            Cloud::Unknown => return Err(unknown_cloud(account_id, "account costs")),
        };
        Ok(window
            .keep(items, |item| item.timestamp)
            .into_iter()
            .filter_map(|item| match cloud {
                Cloud::Aws => item.spot,
                Cloud::Gcp => item.preemptible,
                Cloud::Azure => item.low_priority,
                Cloud::Unknown => None,
            })
            .collect())
    }

    /// `GET /audit/events` for one day (§11), successful and failed calls alike. Dates are epoch ms.
    pub async fn audit_events(&self, window: DayWindow) -> Result<Vec<AuditEvent>, SpotError> {
        let route = "/audit/events";
        let call = Call::get(route, route.into())
            .param("fromDate", window.start().timestamp_millis().to_string())
            .param("toDate", (window.end().timestamp_millis() - 1).to_string())
            .param("responseStatus", "all");
        let events: Vec<AuditEvent> = self.items(call, None).await?;
        Ok(window.keep(events, |event| event.created_at))
    }

    /// `POST /insights/instanceCosts/export` for one account and day (§10), streamed: the CSV is parsed
    /// as it arrives and handed to `sink` in batches, so memory stays bounded by one batch.
    pub async fn export_instance_costs<S: InstanceCostSink>(
        &self,
        account_id: &str,
        window: DayWindow,
        sink: S,
    ) -> Result<S, SpotError> {
        let route = "/insights/instanceCosts/export";
        let body = json!({
            "accountIds": [account_id],
            "fromDate": window.start().timestamp().to_string(),
            "toDate": window.end().timestamp().to_string(),
        });
        let mut call = Call::post(route, route.into(), body);
        call.account = Some(account_id.to_owned());
        let endpoint = call.endpoint();
        let shared = Arc::new(Mutex::new(sink));
        let sink_for_attempts = Arc::clone(&shared);
        self.execute(&call, move |response| {
            let sink = Arc::clone(&sink_for_attempts);
            let endpoint = endpoint.clone();
            Box::pin(async move { consume_csv(response, sink, endpoint).await })
        })
        .await?;
        let sink = Arc::try_unwrap(shared)
            .map_err(|_| SpotError::Client("instance-cost sink still shared".into()))?;
        Ok(sink.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

fn unknown_cloud(account_id: &str, what: &'static str) -> SpotError {
    SpotError::UnknownCloud {
        account: account_id.to_owned(),
        what,
    }
}

/// A route template with its `{id}` filled by one path segment: `id` percent-encoded (every byte
/// but `A-Z a-z 0-9 - _ . ~`), so `/`, `?`, `#`, `%`, spaces or NUL in an id can never change the
/// path or add a query. An empty id, `.` or `..` cannot be one segment (a URL normalises them
/// away, in any encoding), so they are refused.
fn fill_route(route: &'static str, id: &str) -> Result<String, UnsafeSegment> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(UnsafeSegment {
            route,
            id: super::lenient::shorten(id, 80),
        });
    }
    Ok(route.replace("{id}", &super::percent_encode(id)))
}

/// An id [`fill_route`] refused; becomes [`SpotError::UnsafeId`].
#[derive(Debug)]
struct UnsafeSegment {
    route: &'static str,
    id: String,
}

impl From<UnsafeSegment> for SpotError {
    fn from(refused: UnsafeSegment) -> SpotError {
        SpotError::UnsafeId {
            route: refused.route,
            id: refused.id,
        }
    }
}

/// A key repeated with other figures ([`dedupe`]); becomes a [`SpotError::Decode`].
#[derive(Debug)]
struct Conflict {
    endpoint: Endpoint,
    json_path: String,
    message: String,
}

impl From<Conflict> for SpotError {
    fn from(conflict: Conflict) -> SpotError {
        SpotError::Decode {
            endpoint: conflict.endpoint,
            json_path: conflict.json_path,
            request_id: None,
            message: conflict.message,
        }
    }
}

/// A day as a dedupe key: the item's timestamp, or "the window" for an unstamped item.
fn stamp_key(timestamp: Option<DateTime<Utc>>) -> String {
    timestamp.map_or_else(|| "the window".to_owned(), |at| at.to_rfc3339())
}

/// The items of one response, each key once. An item that repeats an earlier one's key and
/// figures exactly is dropped (one WARN per response): adding it would double the figure. One that
/// repeats the key with other figures is an error naming the key and both positions: either
/// could be right, so neither is guessed. Items without a key (`None`) are all kept.
fn dedupe<T: PartialEq>(
    endpoint: &Endpoint,
    items: Vec<T>,
    what: &str,
    key: impl Fn(&T) -> Option<String>,
) -> Result<Vec<T>, Conflict> {
    dedupe_at(endpoint, "response.items", items, what, key)
}

fn dedupe_at<T: PartialEq>(
    endpoint: &Endpoint,
    list_path: &str,
    items: Vec<T>,
    what: &str,
    key: impl Fn(&T) -> Option<String>,
) -> Result<Vec<T>, Conflict> {
    let mut first: HashMap<String, (usize, usize)> = HashMap::new();
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    let mut repeats = 0usize;
    for (index, item) in items.into_iter().enumerate() {
        if let Some(key) = key(&item) {
            if let Some(&(kept_at, listed_at)) = first.get(&key) {
                if kept[kept_at] == item {
                    repeats += 1;
                    continue;
                }
                return Err(Conflict {
                    endpoint: endpoint.clone(),
                    json_path: format!("{list_path}[{index}]"),
                    message: format!(
                        "{what} {:?} is listed twice ({list_path}[{listed_at}] and [{index}]) with different figures; refusing to pick one or add both",
                        super::lenient::shorten(&key, 120)
                    ),
                });
            }
            first.insert(key, (kept.len(), index));
        }
        kept.push(item);
    }
    if repeats > 0 {
        tracing::warn!(
            endpoint = %endpoint,
            repeats,
            "the response listed {repeats} item(s) twice with identical figures; each is counted once"
        );
    }
    Ok(kept)
}

/// The first account of each id, with one WARN when the list repeats ids: an account listed twice
/// is one account, and extracting it twice would double its costs.
fn first_per_id<T>(items: Vec<T>, endpoint: &Endpoint, id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    let total = items.len();
    let kept: Vec<T> = items
        .into_iter()
        .filter(|item| seen.insert(id(item).to_owned()))
        .collect();
    if kept.len() < total {
        tracing::warn!(
            endpoint = %endpoint,
            repeats = total - kept.len(),
            "the account list repeats {} id(s); each account is kept once (its first listing)",
            total - kept.len()
        );
    }
    kept
}

/// The export's columns (§10), and whether an export without the column is refused. The money,
/// usage and identity columns are required: without them every row would land with nulls where
/// figures belong. The descriptive ones may be missing (a null column).
const CSV_COLUMNS: [(&str, bool); 19] = [
    ("id", true),
    ("accountId", true),
    ("accountName", false),
    ("resourceId", true),
    ("cloudProvider", true),
    ("instanceId", true),
    ("instanceType", true),
    ("region", true),
    ("useCase", false),
    ("lifeCycle", true),
    ("product", true),
    ("launchTime", false),
    ("terminationTime", false),
    ("runningHours", true),
    ("odHourlyPrice", true),
    ("odCost", true),
    ("actualCost", true),
    ("savings", true),
    ("reservationId", false),
];

/// How much of the body is looked at before parsing, to tell a CSV from an HTML page.
const CSV_SNIFF_BYTES: usize = 1024;

async fn consume_csv<S: InstanceCostSink>(
    response: reqwest::Response,
    sink: Arc<Mutex<S>>,
    endpoint: Endpoint,
) -> Result<(), Failure> {
    let content_type = super::content_type(&response);
    if content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"))
    {
        let body = super::read_capped(response, super::MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        let info = super::envelope::decode_error(&body, 200);
        // A real error envelope is final; an empty or garbled body is a response cut short.
        if info.request_id.is_none() {
            return Err(Failure::Transient {
                reason: format!(
                    "expected CSV, got a {} body that is not a Spot envelope ({} bytes)",
                    content_type.as_deref().unwrap_or("JSON"),
                    body.len()
                ),
                wait: None,
            });
        }
        return Err(Failure::Fatal(SpotError::Decode {
            endpoint,
            json_path: "(body)".into(),
            request_id: info.request_id,
            message: format!("expected CSV, got JSON: {}", info.message),
        }));
    }
    let stream = response
        .bytes_stream()
        .map_err(|error| std::io::Error::other(super::describe_transport_error(&error)));
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let outcome = tokio::task::spawn_blocking(move || {
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        parse_csv(reader, content_type.as_deref(), &mut *sink, &endpoint)
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(join_error) => Err(Failure::Transient {
            reason: format!("CSV reader stopped: {join_error}"),
            wait: None,
        }),
    }
}

/// The documented header, for messages: `id,accountId,…,reservationId`.
fn documented_header() -> String {
    CSV_COLUMNS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

fn cut_off(error: std::io::Error) -> Failure {
    Failure::Transient {
        reason: format!("the CSV body was cut off: {error}"),
        wait: None,
    }
}

/// Parses the export as it streams in and hands rows to `sink` in batches.
///
/// Columns are found by header name (any order, any case; unknown ones ignored; a UTF-8 BOM
/// skipped); a missing required column, or one named twice, is an error naming it. Fields may be
/// quoted (with commas and newlines inside), lines may end in CRLF. A field that is not UTF-8 is
/// kept with U+FFFD in place of the bad bytes (one WARN naming the first line): text, never a
/// figure, since a number with a bad byte fails to parse and names its line and column. A row
/// id repeated with the same fields is counted once (one WARN); with other fields it is an error.
/// An empty body is an export with no rows, as a header alone is. A body that is an HTML page (by
/// content type or by its first byte) is worth a retry and says what came back.
fn parse_csv<S: InstanceCostSink>(
    reader: impl std::io::Read,
    content_type: Option<&str>,
    sink: &mut S,
    endpoint: &Endpoint,
) -> Result<(), Failure> {
    use std::io::Read;
    let sink_error = |message: String| {
        Failure::Fatal(SpotError::Sink {
            endpoint: endpoint.clone(),
            message,
        })
    };
    let decode_error = |json_path: String, message: String| {
        Failure::Fatal(SpotError::Decode {
            endpoint: endpoint.clone(),
            json_path,
            request_id: None,
            message,
        })
    };
    sink.restart().map_err(sink_error)?;

    let mut reader = reader;
    let mut prefix = Vec::with_capacity(CSV_SNIFF_BYTES);
    (&mut reader)
        .take(CSV_SNIFF_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(cut_off)?;
    let start = if prefix.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let first_byte = prefix[start..]
        .iter()
        .find(|byte| !byte.is_ascii_whitespace());
    // A CSV mislabelled text/html still parses; markup, whatever its label, does not.
    let labelled_html = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("html"));
    let has_header = String::from_utf8_lossy(&prefix)
        .to_ascii_lowercase()
        .contains("accountid");
    if first_byte == Some(&b'<') || (labelled_html && !has_header) {
        return Err(Failure::Transient {
            reason: format!(
                "expected CSV with header {} but got {}",
                super::lenient::shorten(&documented_header(), 30),
                super::envelope::describe_body(content_type, &prefix)
            ),
            wait: None,
        });
    }
    let newlines = Rc::new(RefCell::new(VecDeque::new()));
    let body = LineCounting {
        inner: std::io::Cursor::new(prefix[start..].to_vec()).chain(reader),
        offset: 0,
        newlines: Rc::clone(&newlines),
    };
    let mut lines = Lines {
        newlines,
        passed: 0,
    };

    // Fields are not trimmed: a name's leading tab or trailing newline is data. Numbers and
    // times are trimmed where they are parsed.
    let mut csv_reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let header_record = csv_reader
        .byte_headers()
        .map_err(|error| csv_failure(error, endpoint))?
        .clone();
    let names: Vec<String> = header_record
        .iter()
        .map(|name| String::from_utf8_lossy(name).trim().to_ascii_lowercase())
        .collect();
    if names.iter().all(String::is_empty) {
        // An empty body: an export with no rows, as before.
        return Ok(());
    }
    let mut header: HashMap<String, usize> = HashMap::new();
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if header.insert(name.clone(), index).is_some() {
            return Err(decode_error(
                "CSV header".into(),
                format!("the column {name:?} appears twice; refusing to pick one"),
            ));
        }
    }
    let missing: Vec<&str> = CSV_COLUMNS
        .iter()
        .filter(|(name, required)| *required && !header.contains_key(&name.to_ascii_lowercase()))
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(decode_error(
            "CSV header".into(),
            format!(
                "expected CSV with header {} but the header lacks {} (got {:?})",
                documented_header(),
                missing.join(", "),
                super::lenient::shorten(&names.join(","), 200)
            ),
        ));
    }
    let last_required = CSV_COLUMNS
        .iter()
        .filter(|(_, required)| *required)
        .filter_map(|(name, _)| header.get(&name.to_ascii_lowercase()))
        .max()
        .copied()
        .unwrap_or(0);
    let id_column = header.get("id").copied().unwrap_or(0);

    let mut batch = Vec::with_capacity(CSV_BATCH_ROWS);
    let mut record = csv::ByteRecord::new();
    let mut seen: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut repeats = 0u64;
    let mut first_lossy: Option<(u64, String)> = None;
    loop {
        match csv_reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => return Err(csv_failure(error, endpoint)),
        }
        // The csv crate counts records, not the newlines inside quoted fields: count them here.
        let line = record
            .position()
            .map_or(0, |position| lines.line_at(position.byte()));
        if record.len() <= last_required {
            return Err(decode_error(
                format!("CSV line {line}"),
                format!(
                    "the row has {} fields but the header has {}: it is cut short",
                    record.len(),
                    names.len()
                ),
            ));
        }
        let row_id = record.get(id_column).unwrap_or_default().to_vec();
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            for field in record.iter() {
                field.hash(&mut hasher);
            }
            hasher.finish()
        };
        if !row_id.is_empty() {
            match seen.get(&row_id) {
                Some(&(_, earlier)) if earlier == fingerprint => {
                    repeats += 1;
                    continue;
                }
                Some(&(earlier_line, _)) => {
                    return Err(decode_error(
                        format!("CSV line {line}, column id"),
                        format!(
                            "the row id {:?} of line {earlier_line} comes again with other values; refusing to pick one or add both",
                            super::lenient::shorten(&String::from_utf8_lossy(&row_id), 80)
                        ),
                    ));
                }
                None => {
                    seen.insert(row_id, (line, fingerprint));
                }
            }
        }
        let row = instance_cost_row(&header, &record, |column| {
            if first_lossy.is_none() {
                first_lossy = Some((line, column.to_owned()));
            }
        })
        .map_err(|(column, message)| {
            decode_error(format!("CSV line {line}, column {column}"), message)
        })?;
        batch.push(row);
        if batch.len() >= CSV_BATCH_ROWS {
            sink.write(std::mem::replace(
                &mut batch,
                Vec::with_capacity(CSV_BATCH_ROWS),
            ))
            .map_err(sink_error)?;
        }
    }
    if !batch.is_empty() {
        sink.write(batch).map_err(sink_error)?;
    }
    if repeats > 0 {
        tracing::warn!(endpoint = %endpoint, repeats, "the export repeated {repeats} row(s) identically; each is counted once");
    }
    if let Some((line, column)) = first_lossy {
        tracing::warn!(endpoint = %endpoint, "the export has text that is not UTF-8 (first at line {line}, column {column}); the bad bytes were replaced with U+FFFD");
    }
    Ok(())
}

/// A reader that notes where its newlines are, so a record's byte offset gives its line.
struct LineCounting<R> {
    inner: R,
    offset: u64,
    newlines: Rc<RefCell<VecDeque<u64>>>,
}

impl<R: std::io::Read> std::io::Read for LineCounting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        let mut newlines = self.newlines.borrow_mut();
        for (index, byte) in buffer[..read].iter().enumerate() {
            if *byte == b'\n' {
                newlines.push_back(self.offset + index as u64);
            }
        }
        self.offset += read as u64;
        Ok(read)
    }
}

/// The newlines a [`LineCounting`] reader saw, consumed as records move forward (so only the
/// reader's read-ahead is ever held).
struct Lines {
    newlines: Rc<RefCell<VecDeque<u64>>>,
    passed: u64,
}

impl Lines {
    /// The 1-based line of the record starting at `offset`; offsets must not go backwards. The
    /// csv crate may place a record's start on the `\n` of the previous CRLF: a newline there
    /// counts as before it (a record cannot start with a newline of its own).
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut newlines = self.newlines.borrow_mut();
        while newlines.front().is_some_and(|&at| at <= offset) {
            newlines.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

fn csv_failure(error: csv::Error, endpoint: &Endpoint) -> Failure {
    if error.is_io_error() {
        Failure::Transient {
            reason: format!("the CSV body was cut off: {error}"),
            wait: None,
        }
    } else {
        let json_path = error
            .position()
            .map_or_else(|| "CSV".to_owned(), |p| format!("CSV line {}", p.line()));
        Failure::Fatal(SpotError::Decode {
            endpoint: endpoint.clone(),
            json_path,
            request_id: None,
            message: error.to_string(),
        })
    }
}

/// Builds one row by header name, so column order and extra columns do not matter. `on_lossy` is
/// told the column of a field that was not UTF-8.
fn instance_cost_row(
    header: &HashMap<String, usize>,
    record: &csv::ByteRecord,
    mut on_lossy: impl FnMut(&str),
) -> Result<InstanceCostRow, (&'static str, String)> {
    let lossy: std::cell::Cell<Option<&'static str>> = std::cell::Cell::new(None);
    let text = |column: &'static str| -> Option<String> {
        let raw = header
            .get(&column.to_ascii_lowercase())
            .and_then(|&index| record.get(index))?;
        let value = match std::str::from_utf8(raw) {
            Ok(value) => std::borrow::Cow::Borrowed(value),
            Err(_) => {
                lossy.set(lossy.get().or(Some(column)));
                String::from_utf8_lossy(raw)
            }
        };
        (!value.is_empty()).then(|| value.into_owned())
    };
    let number = |column: &'static str| -> Result<Option<f64>, (&'static str, String)> {
        match text(column) {
            None => Ok(None),
            Some(raw) => super::lenient::parse_number(&raw).map_err(|message| (column, message)),
        }
    };
    let time = |column: &'static str| -> Result<Option<DateTime<Utc>>, (&'static str, String)> {
        match text(column).filter(|raw| !raw.trim().is_empty()) {
            None => Ok(None),
            Some(raw) => super::lenient::parse_timestamp(&raw)
                .map(Some)
                .ok_or_else(|| {
                    (
                        column,
                        format!(
                            "unrecognised timestamp {:?}",
                            super::lenient::shorten(&raw, 40)
                        ),
                    )
                }),
        }
    };
    let row = InstanceCostRow {
        id: text("id"),
        account_id: text("accountId"),
        account_name: text("accountName"),
        resource_id: text("resourceId"),
        cloud_provider: text("cloudProvider"),
        instance_id: text("instanceId"),
        instance_type: text("instanceType"),
        region: text("region"),
        use_case: text("useCase"),
        life_cycle: text("lifeCycle"),
        product: text("product"),
        launch_time: time("launchTime")?,
        termination_time: time("terminationTime")?,
        running_hours: number("runningHours")?,
        od_hourly_price: number("odHourlyPrice")?,
        od_cost: number("odCost")?,
        actual_cost: number("actualCost")?,
        savings: number("savings")?,
        reservation_id: text("reservationId"),
    };
    if let Some(column) = lossy.get() {
        on_lossy(column);
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        rows: Vec<InstanceCostRow>,
        restarts: usize,
    }

    impl InstanceCostSink for Collect {
        fn restart(&mut self) -> Result<(), String> {
            self.rows.clear();
            self.restarts += 1;
            Ok(())
        }
        fn write(&mut self, rows: Vec<InstanceCostRow>) -> Result<(), String> {
            self.rows.extend(rows);
            Ok(())
        }
    }

    fn endpoint() -> super::super::Endpoint {
        super::super::Endpoint {
            method: "POST",
            route: "/insights/instanceCosts/export",
            path: "/insights/instanceCosts/export".into(),
        }
    }

    const HEADER: &str = "id,accountId,accountName,resourceId,cloudProvider,instanceId,instanceType,region,useCase,lifeCycle,product,launchTime,terminationTime,runningHours,odHourlyPrice,odCost,actualCost,savings,reservationId";

    fn parse(body: &[u8], content_type: Option<&str>) -> Result<Vec<InstanceCostRow>, String> {
        let mut sink = Collect::default();
        match parse_csv(body, content_type, &mut sink, &endpoint()) {
            Ok(()) => Ok(sink.rows),
            Err(Failure::Fatal(error)) => Err(format!("fatal: {error}")),
            Err(Failure::Transient { reason, .. }) => Err(format!("transient: {reason}")),
        }
    }

    fn row(id: u32, actual: &str) -> String {
        format!("{id},act-1,Demo,sig-1,AWS,i-{id},m5.large,us-east-1,Load Balancing,EXCESS,LINUX,2024-03-06T00:00:00.000Z,,24,0.096,2.304,{actual},0.5,\n")
    }

    #[test]
    fn csv_rows_with_trailing_commas_and_empty_times() {
        let csv = "id,accountId,accountName,resourceId,cloudProvider,instanceId,instanceType,region,useCase,lifeCycle,product,launchTime,terminationTime,runningHours,odHourlyPrice,odCost,actualCost,savings,reservationId\n\
2439,act-abc12345,\"Demo, Inc\",oesg-cc4740e1,AWS,i-00d6,r4.large,us-west-2,K8S,EXCESS,LINUX,2019-10-05T02:59:40.000Z,2019-10-05T03:15:12.000Z,1,0.133,0.133,0.0337,0.0993,\n\
2440,act-abc12345,Demo,sig-1,AWS,i-00d7,m5.large,us-west-2,Load Balancing,ON_DEMAND,LINUX,2019-10-05T00:00:00.000Z,,24,0.096,2.304,2.304,0,\n";
        let mut sink = Collect::default();
        parse_csv(
            csv.as_bytes(),
            Some("application/csv"),
            &mut sink,
            &endpoint(),
        )
        .ok()
        .unwrap();
        assert_eq!(sink.restarts, 1);
        assert_eq!(sink.rows.len(), 2);
        assert_eq!(sink.rows[0].account_name.as_deref(), Some("Demo, Inc"));
        assert_eq!(sink.rows[0].actual_cost, Some(0.0337));
        assert_eq!(sink.rows[1].termination_time, None);
        assert_eq!(sink.rows[1].reservation_id, None);
    }

    #[test]
    fn an_empty_export_is_no_rows() {
        let mut sink = Collect::default();
        assert!(parse_csv("".as_bytes(), None, &mut sink, &endpoint()).is_ok());
        assert!(parse_csv(
            format!("{HEADER}\n").as_bytes(),
            None,
            &mut sink,
            &endpoint()
        )
        .is_ok());
        assert!(parse_csv(
            format!("\u{feff}{HEADER}\r\n").as_bytes(),
            None,
            &mut sink,
            &endpoint()
        )
        .is_ok());
        assert_eq!((sink.restarts, sink.rows.len()), (3, 0));
    }

    #[test]
    fn a_bad_number_names_line_and_column() {
        let csv = format!("{HEADER}\n{}{}", row(1, "0.5"), row(2, "lots"));
        let mut sink = Collect::default();
        match parse_csv(csv.as_bytes(), None, &mut sink, &endpoint()) {
            Err(Failure::Fatal(SpotError::Decode { json_path, .. })) => {
                assert_eq!(json_path, "CSV line 3, column actualCost")
            }
            _ => panic!("expected a decode error"),
        }
    }

    #[test]
    fn non_finite_and_absurd_figures_are_refused_naming_line_and_column() {
        for bad in ["NaN", "inf", "-inf", "1e999", "1e300", "Infinity"] {
            let csv = format!("{HEADER}\n{}{}", row(1, "0.5"), row(2, bad));
            let error = parse(csv.as_bytes(), None).unwrap_err();
            assert!(
                error.starts_with("fatal")
                    && error.contains("CSV line 3, column actualCost")
                    && error.contains(bad),
                "{bad}: {error}"
            );
        }
        // A negative cost (a refund) is kept; the model's data test flags it.
        let rows = parse(format!("{HEADER}\n{}", row(1, "-0.25")).as_bytes(), None).unwrap();
        assert_eq!(rows[0].actual_cost, Some(-0.25));
    }

    #[test]
    fn a_missing_required_column_is_named_and_optional_ones_may_be_missing() {
        let without = |column: &str| -> (String, String) {
            let names: Vec<&str> = HEADER.split(',').collect();
            let keep: Vec<usize> = (0..names.len()).filter(|&i| names[i] != column).collect();
            let values: Vec<String> = row(1, "0.5")
                .trim_end()
                .split(',')
                .map(str::to_owned)
                .collect();
            let header = keep.iter().map(|&i| names[i]).collect::<Vec<_>>().join(",");
            let line = keep
                .iter()
                .map(|&i| values[i].clone())
                .collect::<Vec<_>>()
                .join(",");
            (header, line)
        };
        for (column, required) in CSV_COLUMNS {
            let (header, line) = without(column);
            let outcome = parse(format!("{header}\n{line}\n").as_bytes(), None);
            if required {
                let error = outcome.unwrap_err();
                assert!(
                    error.contains("CSV header") && error.contains(&format!("lacks {column}")),
                    "{column}: {error}"
                );
                assert!(
                    error.contains("expected CSV with header id,accountId,"),
                    "{error}"
                );
            } else {
                let rows = outcome.unwrap_or_else(|e| panic!("{column}: {e}"));
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].actual_cost, Some(0.5));
            }
        }
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_and_case_and_extras_are_ignored() {
        let mut names: Vec<&str> = HEADER.split(',').collect();
        let mut values: Vec<String> = row(7, "1.25")
            .trim_end()
            .split(',')
            .map(str::to_owned)
            .collect();
        names.reverse();
        values.reverse();
        names.insert(3, "SomethingNew");
        values.insert(3, "whatever, \"quoted\"".replace('"', "\"\"").to_string());
        let header = names
            .iter()
            .map(|n| n.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(",");
        let line = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i == 3 {
                    format!("\"{v}\"")
                } else {
                    v.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let rows = parse(
            format!("{header}\r\n{line}\r\n").as_bytes(),
            Some("text/csv"),
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id.as_deref(), Some("7"));
        assert_eq!(rows[0].instance_id.as_deref(), Some("i-7"));
        assert_eq!(rows[0].actual_cost, Some(1.25));
        assert_eq!(rows[0].savings, Some(0.5));
    }

    #[test]
    fn a_bom_crlf_and_quoted_fields_with_commas_and_newlines() {
        let line = "5,act-1,\"Demo, Inc\r\nsecond line\",sig-1,AWS,i-5,m5.large,us-east-1,\"K8S, \"\"big\"\"\",EXCESS,LINUX,,,2,0.1,0.2,0.05,0.15,\r\n";
        let csv = format!(
            "\u{feff}{HEADER}\r\n{line}{}",
            row(6, "0.5").replace('\n', "\r\n")
        );
        let rows = parse(csv.as_bytes(), None).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id.as_deref(), Some("5"));
        assert_eq!(
            rows[0].account_name.as_deref(),
            Some("Demo, Inc\r\nsecond line")
        );
        assert_eq!(rows[0].use_case.as_deref(), Some("K8S, \"big\""));
        assert_eq!(rows[0].actual_cost, Some(0.05));
        assert_eq!(rows[1].reservation_id, None);
        // A bad number after a multi-line field names the line the row starts on.
        let csv = format!("{HEADER}\n{}{}", line.replace("0.05", "x"), row(6, "0.5"));
        let error = parse(csv.as_bytes(), None).unwrap_err();
        assert!(error.contains("CSV line 2, column actualCost"), "{error}");
        let csv = format!("{HEADER}\n{}{}", line, row(6, "y"));
        let error = parse(csv.as_bytes(), None).unwrap_err();
        assert!(error.contains("CSV line 4, column actualCost"), "{error}");
    }

    #[test]
    fn text_keeps_its_whitespace_and_figures_may_be_padded() {
        let line = "\" 9 \",\"act-1\n\",\"\t<b>Demo</b>\n\",sig-1,AWS,i-9,m5.large,us-east-1, K8S ,EXCESS,LINUX, 2024-03-06T00:00:00Z ,  , 2 , 0.1 ,0.2, 0.05 ,0.15,   \n";
        let rows = parse(format!("{HEADER}\n{line}").as_bytes(), None).unwrap();
        assert_eq!(rows[0].id.as_deref(), Some(" 9 "));
        assert_eq!(rows[0].account_id.as_deref(), Some("act-1\n"));
        assert_eq!(rows[0].account_name.as_deref(), Some("\t<b>Demo</b>\n"));
        assert_eq!(rows[0].use_case.as_deref(), Some(" K8S "));
        assert_eq!(rows[0].actual_cost, Some(0.05));
        assert!(rows[0].launch_time.is_some());
        assert_eq!(rows[0].termination_time, None);
        assert_eq!(rows[0].reservation_id.as_deref(), Some("   "));
    }

    #[test]
    fn non_utf8_text_is_replaced_and_a_non_utf8_figure_is_refused() {
        let mut csv = format!("{HEADER}\n").into_bytes();
        csv.extend_from_slice(b"1,act-1,Soci\xE9t\xE9,sig-1,AWS,i-1,m5.large,us-east-1,K8S,EXCESS,LINUX,,,2,0.1,0.2,0.05,0.15,\n");
        let rows = parse(&csv, None).unwrap();
        assert_eq!(
            rows[0].account_name.as_deref(),
            Some("Soci\u{FFFD}t\u{FFFD}")
        );
        assert_eq!(rows[0].actual_cost, Some(0.05));
        let mut csv = format!("{HEADER}\n").into_bytes();
        csv.extend_from_slice(b"1,act-1,Demo,sig-1,AWS,i-1,m5.large,us-east-1,K8S,EXCESS,LINUX,,,2,0.1,0.2,0.0\xFF5,0.15,\n");
        let error = parse(&csv, None).unwrap_err();
        assert!(error.contains("CSV line 2, column actualCost"), "{error}");
    }

    #[test]
    fn repeated_rows_are_counted_once_and_conflicting_repeats_refused() {
        let csv = format!(
            "{HEADER}\n{}{}{}",
            row(1, "0.5"),
            row(2, "0.7"),
            row(1, "0.5")
        );
        let rows = parse(csv.as_bytes(), None).unwrap();
        assert_eq!(rows.len(), 2);
        let csv = format!(
            "{HEADER}\n{}{}{}",
            row(1, "0.5"),
            row(2, "0.7"),
            row(1, "0.9")
        );
        let error = parse(csv.as_bytes(), None).unwrap_err();
        assert!(
            error.contains("CSV line 4, column id")
                && error.contains("\"1\"")
                && error.contains("line 2"),
            "{error}"
        );
    }

    #[test]
    fn duplicate_header_names_and_short_rows_are_refused() {
        let csv = format!("{HEADER},actualCost\n{}", row(1, "0.5"));
        let error = parse(csv.as_bytes(), None).unwrap_err();
        assert!(error.contains("\"actualcost\" appears twice"), "{error}");
        let csv = format!("{HEADER}\n{}1,act-1,Demo,sig-1\n", row(1, "0.5"));
        let error = parse(csv.as_bytes(), None).unwrap_err();
        assert!(
            error.contains("CSV line 3") && error.contains("cut short"),
            "{error}"
        );
    }

    #[test]
    fn an_html_page_is_named_as_such() {
        let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
        for content_type in [
            Some("text/html; charset=utf-8"),
            None,
            Some("application/csv"),
        ] {
            let error = parse(page.as_bytes(), content_type).unwrap_err();
            assert!(
                error.starts_with("transient: expected CSV with header id,accountId,")
                    && error.contains("<!DOCTYPE html> <html><head><title>502 Bad Gateway"),
                "{error}"
            );
        }
        let error = parse(page.as_bytes(), Some("text/html")).unwrap_err();
        assert!(
            error.contains(&format!("text/html, {} B", page.len())),
            "{error}"
        );
        // A real CSV mislabelled as HTML still parses.
        let csv = format!("{HEADER}\n{}", row(1, "0.5"));
        assert_eq!(parse(csv.as_bytes(), Some("text/html")).unwrap().len(), 1);
        // Plain text that is no CSV header at all names what is missing.
        let error = parse(b"Service Unavailable", Some("text/plain")).unwrap_err();
        assert!(
            error.contains("lacks id, accountId") && error.contains("service unavailable"),
            "{error}"
        );
    }

    #[test]
    fn ids_fill_one_path_segment_or_are_refused() {
        let route = "/aws/ec2/group/{id}/costs";
        assert_eq!(
            fill_route(route, "sig-1/../../setup/account?x=1").unwrap(),
            "/aws/ec2/group/sig-1%2F..%2F..%2Fsetup%2Faccount%3Fx%3D1/costs"
        );
        assert_eq!(
            fill_route(route, "a b#c%d\0e\u{202E}").unwrap(),
            "/aws/ec2/group/a%20b%23c%25d%00e%E2%80%AE/costs"
        );
        assert_eq!(
            fill_route(route, "...").unwrap(),
            "/aws/ec2/group/.../costs"
        );
        for bad in ["", ".", ".."] {
            assert!(matches!(fill_route(route, bad), Err(UnsafeSegment { .. })));
        }
    }

    #[derive(Debug, PartialEq)]
    struct Keyed(&'static str, u32);

    #[test]
    fn dedupe_keeps_exact_repeats_once_and_refuses_conflicting_ones() {
        let key = |item: &Keyed| Some(item.0.to_owned());
        let kept = dedupe(
            &endpoint(),
            vec![Keyed("a", 1), Keyed("b", 2), Keyed("a", 1)],
            "the thing",
            key,
        )
        .unwrap();
        assert_eq!(kept, vec![Keyed("a", 1), Keyed("b", 2)]);
        let error = SpotError::from(
            dedupe(
                &endpoint(),
                vec![Keyed("a", 1), Keyed("b", 2), Keyed("a", 3)],
                "the thing",
                key,
            )
            .unwrap_err(),
        )
        .to_string();
        assert!(
            error.contains("response.items[2]") && error.contains("\"a\"") && error.contains("[0]"),
            "{error}"
        );
        let kept = dedupe(
            &endpoint(),
            vec![Keyed("a", 1), Keyed("a", 2)],
            "the thing",
            |_| None,
        )
        .unwrap();
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn day_windows_drop_items_of_other_days() {
        let window = DayWindow::new(NaiveDate::from_ymd_opt(2024, 3, 6).unwrap());
        assert_eq!(
            (window.from_date(), window.to_date()),
            ("2024-03-06".into(), "2024-03-07".into())
        );
        let stamps = vec![
            Some(super::super::lenient::parse_timestamp("2024-03-06T00:00:00.000Z").unwrap()),
            Some(super::super::lenient::parse_timestamp("2024-03-07T00:00:00.000Z").unwrap()),
            None,
        ];
        let kept = window.keep(stamps, |s| *s);
        assert_eq!(kept.len(), 2);
    }
}

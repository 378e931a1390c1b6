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

use arrow::array::{
    Array, Float64Array, Float64Builder, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};

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
/// retried download never appends to rows of a failed one. Rows arrive a batch at a time, column
/// by column ([`InstanceCostSink::write_batch`]), on a thread of their own while the parser reads
/// the next batch; a sink that wants rows implements `write` alone.
pub trait InstanceCostSink: Send + 'static {
    fn restart(&mut self) -> Result<(), String>;
    fn write(&mut self, rows: Vec<InstanceCostRow>) -> Result<(), String>;
    /// One batch of rows as columns; by default handed to [`InstanceCostSink::write`] as rows.
    fn write_batch(&mut self, batch: InstanceCostBatch) -> Result<(), String> {
        self.write(batch.rows())
    }
}

/// Rows of the instance-cost export decoded column by column: one Arrow array per export column
/// (§10), row `i` of every array being the `i`-th row kept. Text is UTF-8 as sent (null when
/// empty), times are UTC microseconds (typed as the lake's timestamps), figures `f64`. A column
/// the export lacks is all nulls. Built straight from the CSV fields, with no row struct between.
#[derive(Debug, Clone)]
pub struct InstanceCostBatch {
    pub id: StringArray,
    pub account_id: StringArray,
    pub account_name: StringArray,
    pub resource_id: StringArray,
    pub cloud_provider: StringArray,
    pub instance_id: StringArray,
    pub instance_type: StringArray,
    pub region: StringArray,
    pub use_case: StringArray,
    pub life_cycle: StringArray,
    pub product: StringArray,
    pub launch_time: TimestampMicrosecondArray,
    pub termination_time: TimestampMicrosecondArray,
    pub running_hours: Float64Array,
    pub od_hourly_price: Float64Array,
    pub od_cost: Float64Array,
    pub actual_cost: Float64Array,
    pub savings: Float64Array,
    pub reservation_id: StringArray,
}

impl InstanceCostBatch {
    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// The batch of `rows`.
    pub fn from_rows(rows: &[InstanceCostRow]) -> InstanceCostBatch {
        let text = |value: fn(&InstanceCostRow) -> &Option<String>| {
            rows.iter().map(|row| value(row).as_deref()).collect()
        };
        let time = |value: fn(&InstanceCostRow) -> &Option<DateTime<Utc>>| {
            rows.iter()
                .map(|row| value(row).map(|time| time.timestamp_micros()))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC")
        };
        let number = |value: fn(&InstanceCostRow) -> &Option<f64>| {
            rows.iter().map(|row| *value(row)).collect()
        };
        InstanceCostBatch {
            id: text(|row| &row.id),
            account_id: text(|row| &row.account_id),
            account_name: text(|row| &row.account_name),
            resource_id: text(|row| &row.resource_id),
            cloud_provider: text(|row| &row.cloud_provider),
            instance_id: text(|row| &row.instance_id),
            instance_type: text(|row| &row.instance_type),
            region: text(|row| &row.region),
            use_case: text(|row| &row.use_case),
            life_cycle: text(|row| &row.life_cycle),
            product: text(|row| &row.product),
            launch_time: time(|row| &row.launch_time),
            termination_time: time(|row| &row.termination_time),
            running_hours: number(|row| &row.running_hours),
            od_hourly_price: number(|row| &row.od_hourly_price),
            od_cost: number(|row| &row.od_cost),
            actual_cost: number(|row| &row.actual_cost),
            savings: number(|row| &row.savings),
            reservation_id: text(|row| &row.reservation_id),
        }
    }

    /// The same rows as [`InstanceCostRow`]s.
    pub fn rows(&self) -> Vec<InstanceCostRow> {
        let text = |array: &StringArray, row: usize| {
            array.is_valid(row).then(|| array.value(row).to_owned())
        };
        let time = |array: &TimestampMicrosecondArray, row: usize| {
            array
                .is_valid(row)
                .then(|| DateTime::<Utc>::from_timestamp_micros(array.value(row)))
                .flatten()
        };
        let number =
            |array: &Float64Array, row: usize| array.is_valid(row).then(|| array.value(row));
        (0..self.len())
            .map(|row| InstanceCostRow {
                id: text(&self.id, row),
                account_id: text(&self.account_id, row),
                account_name: text(&self.account_name, row),
                resource_id: text(&self.resource_id, row),
                cloud_provider: text(&self.cloud_provider, row),
                instance_id: text(&self.instance_id, row),
                instance_type: text(&self.instance_type, row),
                region: text(&self.region, row),
                use_case: text(&self.use_case, row),
                life_cycle: text(&self.life_cycle, row),
                product: text(&self.product, row),
                launch_time: time(&self.launch_time, row),
                termination_time: time(&self.termination_time, row),
                running_hours: number(&self.running_hours, row),
                od_hourly_price: number(&self.od_hourly_price, row),
                od_cost: number(&self.od_cost, row),
                actual_cost: number(&self.actual_cost, row),
                savings: number(&self.savings, row),
                reservation_id: text(&self.reservation_id, row),
            })
            .collect()
    }
}

/// Rows handed to an `InstanceCostSink` at a time: large enough that the per-batch work (the
/// hand-over between threads, the Parquet writer's bookkeeping) is noise, small enough that
/// the batches in flight stay a few tens of megabytes.
const CSV_BATCH_ROWS: usize = 65_536;

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

    /// A cluster's virtual node groups: `GET /ocean/aws/k8s/launchSpec?oceanId=`, the GKE
    /// `/ocean/gcp/k8s/launchSpec` or the AKS `/ocean/azure/np/virtualNodeGroup`. They tie the
    /// node groups that audit events and the instance-cost export name to their cluster. A 404
    /// (an API without the listing) gives none, so the cost datasets are never held up by it; a
    /// group listed twice is counted once if identical and refused otherwise.
    pub async fn virtual_node_groups(
        &self,
        account_id: &str,
        cloud: Cloud,
        cluster_id: &str,
    ) -> Result<Vec<OceanVirtualNodeGroup>, SpotError> {
        let (route, wrapper) = match cloud {
            Cloud::Aws => ("/ocean/aws/k8s/launchSpec", "launchSpec"),
            Cloud::Gcp => ("/ocean/gcp/k8s/launchSpec", "launchSpec"),
            Cloud::Azure => ("/ocean/azure/np/virtualNodeGroup", "virtualNodeGroup"),
            Cloud::Unknown => return Err(unknown_cloud(account_id, "virtual node groups")),
        };
        let call = Call::get(route, route.into())
            .param("oceanId", cluster_id)
            .account(account_id);
        let endpoint = call.endpoint();
        match self
            .items::<OceanVirtualNodeGroup>(call, Some(wrapper))
            .await
        {
            Ok(groups) => Ok(dedupe(
                &endpoint,
                groups,
                "the virtual node group",
                |group| Some(group.id.clone()),
            )?),
            Err(error) if error.status() == Some(404) => {
                tracing::debug!(
                    cluster = cluster_id,
                    "the virtual node group listing answered 404; the cluster's node groups are not recorded"
                );
                Ok(Vec::new())
            }
            Err(error) => Err(error),
        }
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
        self.execute(&call, move |response, permit| {
            let sink = Arc::clone(&sink_for_attempts);
            let endpoint = endpoint.clone();
            Box::pin(async move {
                // The export streams from its connection to the end: it keeps its permit.
                let consumed = consume_csv(response, sink, endpoint).await;
                drop(permit);
                consumed
            })
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

/// The CSV reader's buffer: reads from the body this much at a time.
const CSV_READ_BUFFER_BYTES: usize = 256 * 1024;

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
    let mut csv_reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(CSV_READ_BUFFER_BYTES)
        .from_reader(body);
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
    let mut columns = [None; CSV_COLUMNS.len()];
    for (slot, (name, _)) in CSV_COLUMNS.iter().enumerate() {
        columns[slot] = header.get(&name.to_ascii_lowercase()).copied();
    }
    let layout = Layout {
        columns,
        width: names.len(),
        last_required,
        id_column,
    };

    // This thread reads and decodes; a second one hands the finished batches to the sink (for
    // the lake, Parquet encoding), so the two overlap. One batch waits between them at most.
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        let (batches, received) = std::sync::mpsc::sync_channel::<InstanceCostBatch>(1);
        let writer = scope.spawn(move || {
            let _entered = span.enter();
            for batch in received {
                sink.write_batch(batch)?;
            }
            Ok::<(), String>(())
        });
        let decoded = decode_rows(&mut csv_reader, &mut lines, &layout, endpoint, |batch| {
            batches.send(batch).is_ok()
        });
        drop(batches);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err("the instance-cost sink panicked".into()));
        match (decoded, written) {
            // A sink that failed stopped the decoding: its error is the one to report.
            (_, Err(message)) => Err(sink_error(message)),
            (decoded, Ok(())) => decoded,
        }
    })
}

/// Where the export's columns are: `columns[i]` is the CSV field of `CSV_COLUMNS[i]`.
struct Layout {
    columns: [Option<usize>; CSV_COLUMNS.len()],
    /// Fields in the header.
    width: usize,
    /// The last field a row must reach.
    last_required: usize,
    id_column: usize,
}

/// `CSV_COLUMNS` positions by kind, in the order a row is decoded (and the first failure named).
const TIME_COLUMNS: [usize; 2] = [11, 12];
const NUMBER_COLUMNS: [usize; 5] = [13, 14, 15, 16, 17];
const TEXT_COLUMNS: [usize; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 18];

/// Reads every record after the header into batches and hands each to `deliver`, which says
/// whether to go on (false: the sink has stopped, and its error is reported by the caller).
fn decode_rows<R: std::io::Read>(
    csv_reader: &mut csv::Reader<R>,
    lines: &mut Lines,
    layout: &Layout,
    endpoint: &Endpoint,
    mut deliver: impl FnMut(InstanceCostBatch) -> bool,
) -> Result<(), Failure> {
    let decode_error = |json_path: String, message: String| {
        Failure::Fatal(SpotError::Decode {
            endpoint: endpoint.clone(),
            json_path,
            request_id: None,
            message,
        })
    };
    let mut batch = BatchBuilder::new();
    let mut record = csv::ByteRecord::new();
    let mut seen = SeenIds::default();
    let mut repeats = 0u64;
    let mut first_lossy: Option<(u64, &'static str)> = None;
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
        if record.len() <= layout.last_required {
            return Err(decode_error(
                format!("CSV line {line}"),
                format!(
                    "the row has {} fields but the header has {}: it is cut short",
                    record.len(),
                    layout.width
                ),
            ));
        }
        let row_id = record.get(layout.id_column).unwrap_or_default();
        if !row_id.is_empty() {
            match seen.check(row_id, line, fingerprint(&record)) {
                Seen::New => {}
                Seen::Repeat => {
                    repeats += 1;
                    continue;
                }
                Seen::Conflict { earlier_line } => {
                    return Err(decode_error(
                        format!("CSV line {line}, column id"),
                        format!(
                            "the row id {:?} of line {earlier_line} comes again with other values; refusing to pick one or add both",
                            super::lenient::shorten(&String::from_utf8_lossy(row_id), 80)
                        ),
                    ));
                }
            }
        }
        let lossy = batch
            .push(&layout.columns, &record)
            .map_err(|(column, message)| {
                decode_error(format!("CSV line {line}, column {column}"), message)
            })?;
        if let (Some(column), None) = (lossy, &first_lossy) {
            first_lossy = Some((line, column));
        }
        if batch.rows >= CSV_BATCH_ROWS
            && !deliver(std::mem::replace(&mut batch, BatchBuilder::new()).finish())
        {
            return Ok(());
        }
    }
    if batch.rows > 0 && !deliver(batch.finish()) {
        return Ok(());
    }
    if repeats > 0 {
        tracing::warn!(endpoint = %endpoint, repeats, "the export repeated {repeats} row(s) identically; each is counted once");
    }
    if let Some((line, column)) = first_lossy {
        tracing::warn!(endpoint = %endpoint, "the export has text that is not UTF-8 (first at line {line}, column {column}); the bad bytes were replaced with U+FFFD");
    }
    Ok(())
}

/// The columns of the batch being decoded: `texts`, `times` and `numbers` in the order of
/// `TEXT_COLUMNS`, `TIME_COLUMNS` and `NUMBER_COLUMNS`.
struct BatchBuilder {
    rows: usize,
    texts: [StringBuilder; TEXT_COLUMNS.len()],
    times: [TimestampMicrosecondBuilder; TIME_COLUMNS.len()],
    numbers: [Float64Builder; NUMBER_COLUMNS.len()],
}

impl BatchBuilder {
    fn new() -> BatchBuilder {
        BatchBuilder {
            rows: 0,
            texts: std::array::from_fn(|_| {
                StringBuilder::with_capacity(CSV_BATCH_ROWS, CSV_BATCH_ROWS * 16)
            }),
            times: std::array::from_fn(|_| {
                TimestampMicrosecondBuilder::with_capacity(CSV_BATCH_ROWS)
            }),
            numbers: std::array::from_fn(|_| Float64Builder::with_capacity(CSV_BATCH_ROWS)),
        }
    }

    /// Decodes one row by header position, so column order and extra columns do not matter.
    /// Fails naming the column of a figure or time that does not read; otherwise returns the
    /// first text column that was not UTF-8 (kept with U+FFFD), if any. A failed row leaves the
    /// builder unusable, which is fine: a failure ends the export.
    fn push(
        &mut self,
        columns: &[Option<usize>; CSV_COLUMNS.len()],
        record: &csv::ByteRecord,
    ) -> Result<Option<&'static str>, (&'static str, String)> {
        let field = |slot: usize| {
            columns[slot]
                .and_then(|index| record.get(index))
                .unwrap_or_default()
        };
        let mut times = [None; TIME_COLUMNS.len()];
        for (value, &slot) in times.iter_mut().zip(&TIME_COLUMNS) {
            *value = decode_time(field(slot)).map_err(|message| (CSV_COLUMNS[slot].0, message))?;
        }
        let mut numbers = [None; NUMBER_COLUMNS.len()];
        for (value, &slot) in numbers.iter_mut().zip(&NUMBER_COLUMNS) {
            *value =
                decode_number(field(slot)).map_err(|message| (CSV_COLUMNS[slot].0, message))?;
        }
        for (builder, value) in self.times.iter_mut().zip(times) {
            builder.append_option(value);
        }
        for (builder, value) in self.numbers.iter_mut().zip(numbers) {
            builder.append_option(value);
        }
        let mut lossy = None;
        for (builder, &slot) in self.texts.iter_mut().zip(&TEXT_COLUMNS) {
            let raw = field(slot);
            if raw.is_empty() {
                builder.append_null();
                continue;
            }
            match std::str::from_utf8(raw) {
                Ok(text) => builder.append_value(text),
                Err(_) => {
                    lossy = lossy.or(Some(CSV_COLUMNS[slot].0));
                    builder.append_value(String::from_utf8_lossy(raw));
                }
            }
        }
        self.rows += 1;
        Ok(lossy)
    }

    fn finish(self) -> InstanceCostBatch {
        let [id, account_id, account_name, resource_id, cloud_provider, instance_id, instance_type, region, use_case, life_cycle, product, reservation_id] =
            self.texts.map(|mut builder| builder.finish());
        let [launch_time, termination_time] = self
            .times
            .map(|mut builder| builder.finish().with_timezone("UTC"));
        let [running_hours, od_hourly_price, od_cost, actual_cost, savings] =
            self.numbers.map(|mut builder| builder.finish());
        InstanceCostBatch {
            id,
            account_id,
            account_name,
            resource_id,
            cloud_provider,
            instance_id,
            instance_type,
            region,
            use_case,
            life_cycle,
            product,
            launch_time,
            termination_time,
            running_hours,
            od_hourly_price,
            od_cost,
            actual_cost,
            savings,
            reservation_id,
        }
    }
}

/// A figure: blank is absent; otherwise what [`super::lenient::parse_number`] accepts. The usual
/// case (plain digits) is read without building an error message first.
fn decode_number(raw: &[u8]) -> Result<Option<f64>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    match std::str::from_utf8(raw) {
        Ok(text) => match text.parse::<f64>().map(super::lenient::check_number) {
            Ok(Ok(value)) => Ok(Some(value)),
            _ => super::lenient::parse_number(text),
        },
        Err(_) => super::lenient::parse_number(&String::from_utf8_lossy(raw)),
    }
}

/// A time, as UTC microseconds: blank is absent; otherwise what
/// [`super::lenient::parse_timestamp`] accepts. The export's own form is read directly.
fn decode_time(raw: &[u8]) -> Result<Option<i64>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    if let Some(micros) = export_time_micros(raw) {
        return Ok(Some(micros));
    }
    let text = String::from_utf8_lossy(raw);
    if text.trim().is_empty() {
        return Ok(None);
    }
    super::lenient::parse_timestamp(&text)
        .map(|time| Some(time.timestamp_micros()))
        .ok_or_else(|| {
            format!(
                "unrecognised timestamp {:?}",
                super::lenient::shorten(&text, 40)
            )
        })
}

/// `YYYY-MM-DDTHH:MM:SS[.f…]Z` (one to nine fraction digits), the form the export writes, read
/// without a parser: the same instant RFC 3339 parsing gives. Anything else is `None`.
fn export_time_micros(raw: &[u8]) -> Option<i64> {
    if raw.len() < 20
        || raw[4] != b'-'
        || raw[7] != b'-'
        || raw[10] != b'T'
        || raw[13] != b':'
        || raw[16] != b':'
        || raw.last() != Some(&b'Z')
    {
        return None;
    }
    let digits = |from: usize, to: usize| {
        raw[from..to].iter().try_fold(0u32, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let nanos = match &raw[19..raw.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(20, raw.len() - 1)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(0, 4)? as i32, digits(5, 7)?, digits(8, 10)?)?;
    Some(
        date.and_hms_nano_opt(hour, minute, second, nanos)?
            .and_utc()
            .timestamp_micros(),
    )
}

/// A 64-bit digest of a record (each field's length, then its bytes), to tell an identical repeat
/// of a row from a conflicting one without keeping the row. Folded 128-bit multiplies, two
/// words a round.
fn fingerprint(record: &csv::ByteRecord) -> u64 {
    let mut digest = Digest::new(record.len() as u64);
    for field in record.iter() {
        digest.word(field.len() as u64);
    }
    let bytes = record.as_slice();
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut buffer = [0u8; 8];
        buffer.copy_from_slice(word);
        digest.word(u64::from_le_bytes(buffer));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    digest.word(u64::from_le_bytes(tail));
    digest.finish(bytes.len() as u64)
}

struct Digest {
    state: u64,
    pending: Option<u64>,
}

impl Digest {
    const S0: u64 = 0xA076_1D64_78BD_642F;
    const S1: u64 = 0xE703_7ED1_A0B4_28DB;

    fn new(seed: u64) -> Digest {
        Digest {
            state: seed ^ Self::S1,
            pending: None,
        }
    }

    fn fold(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn word(&mut self, word: u64) {
        match self.pending.take() {
            None => self.pending = Some(word),
            Some(first) => self.state = Self::fold(first ^ Self::S0, word ^ self.state ^ Self::S1),
        }
    }

    fn finish(mut self, length: u64) -> u64 {
        if let Some(first) = self.pending.take() {
            self.state = Self::fold(first ^ Self::S0, self.state ^ Self::S1);
        }
        Self::fold(self.state ^ Self::S0, length ^ Self::S1)
    }
}

/// The row ids seen so far, with the line and fingerprint of each id's first row. Spot numbers
/// its rows 1, 2, 3…: an id that continues a run of consecutive numbers on consecutive lines
/// extends that run and costs its 8-byte fingerprint alone, so a 5-million-row export needs
/// 40 MB here rather than a map of 5 million strings. Any other id (not a plain number, or not
/// above every run) goes to a map. Runs stay ascending and disjoint, and a number in the map
/// is below every later run, so each id has one place to look.
#[derive(Default)]
struct SeenIds {
    runs: Vec<IdRun>,
    fingerprints: Vec<u64>,
    others: HashMap<Vec<u8>, (u64, u64)>,
}

struct IdRun {
    first_id: u64,
    first_line: u64,
    /// Index in `fingerprints` of the first id's.
    first_fingerprint: usize,
    len: u64,
}

enum Seen {
    New,
    Repeat,
    Conflict { earlier_line: u64 },
}

impl SeenIds {
    fn check(&mut self, id: &[u8], line: u64, fingerprint: u64) -> Seen {
        let compare = |earlier: u64, earlier_line: u64| {
            if earlier == fingerprint {
                Seen::Repeat
            } else {
                Seen::Conflict { earlier_line }
            }
        };
        if let Some(number) = plain_number(id) {
            let end = self.runs.last().map_or(0, |run| run.first_id + run.len);
            if number >= end {
                match self.runs.last_mut() {
                    Some(run) if number == end && line == run.first_line + run.len => run.len += 1,
                    _ => self.runs.push(IdRun {
                        first_id: number,
                        first_line: line,
                        first_fingerprint: self.fingerprints.len(),
                        len: 1,
                    }),
                }
                self.fingerprints.push(fingerprint);
                return Seen::New;
            }
            let index = self
                .runs
                .partition_point(|run| run.first_id + run.len <= number);
            if let Some(run) = self.runs.get(index).filter(|run| run.first_id <= number) {
                let offset = number - run.first_id;
                let earlier = self.fingerprints[run.first_fingerprint + offset as usize];
                return compare(earlier, run.first_line + offset);
            }
        }
        match self.others.get(id) {
            Some(&(earlier_line, earlier)) => compare(earlier, earlier_line),
            None => {
                self.others.insert(id.to_vec(), (line, fingerprint));
                Seen::New
            }
        }
    }
}

/// An id that is a plain decimal number (digits, no leading zero, below 10^19), so that its
/// number and its bytes name each other.
fn plain_number(id: &[u8]) -> Option<u64> {
    if id.is_empty() || id.len() > 19 || (id[0] == b'0' && id.len() > 1) {
        return None;
    }
    id.iter().try_fold(0u64, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u64::from(byte - b'0'))
    })
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
        // Eight bytes at a time: a byte is flagged when it equals `\n`, with no carry between
        // bytes, so every flag is exact.
        const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
        let mut words = buffer[..read].chunks_exact(8);
        let mut at = self.offset;
        for word in &mut words {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            let x = u64::from_le_bytes(bytes) ^ 0x0A0A_0A0A_0A0A_0A0A;
            let mut flags = !(((x & LOW7) + LOW7) | x | LOW7);
            while flags != 0 {
                newlines.push_back(at + u64::from(flags.trailing_zeros() / 8));
                flags &= flags - 1;
            }
            at += 8;
        }
        for (index, byte) in words.remainder().iter().enumerate() {
            if *byte == b'\n' {
                newlines.push_back(at + index as u64);
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
    fn rows_cross_batches_in_order_and_a_failing_sink_ends_the_export() {
        let rows = CSV_BATCH_ROWS + 7;
        let mut csv = format!("{HEADER}\n");
        for id in 1..=rows {
            csv.push_str(&row(id as u32, "0.5"));
        }
        let parsed = parse(csv.as_bytes(), None).unwrap();
        assert_eq!(parsed.len(), rows);
        assert!(parsed
            .iter()
            .enumerate()
            .all(|(index, row)| row.id == Some((index + 1).to_string())));

        struct Refuse;
        impl InstanceCostSink for Refuse {
            fn restart(&mut self) -> Result<(), String> {
                Ok(())
            }
            fn write(&mut self, _rows: Vec<InstanceCostRow>) -> Result<(), String> {
                Err("disk full".into())
            }
        }
        match parse_csv(csv.as_bytes(), None, &mut Refuse, &endpoint()) {
            Err(Failure::Fatal(SpotError::Sink { message, .. })) => {
                assert_eq!(message, "disk full")
            }
            _ => panic!("expected the sink's error"),
        }
    }

    #[test]
    fn export_times_read_as_lenient_parsing_reads_them() {
        for text in [
            "2024-03-06T00:00:00Z",
            "2024-03-06T00:00:00.000Z",
            "2024-02-29T23:59:59.5Z",
            "2019-10-05T02:59:40.123456789Z",
            "1970-01-01T00:00:00.000001Z",
            "2023-02-29T00:00:00Z",
            "2024-03-06T24:00:00Z",
            "2024-03-06T10:00:60Z",
            "2024-03-06T10:00:00.1234567891Z",
            "2024-03-06T10:00:00+02:00",
            "2024-03-06 10:00:00",
            " 2024-03-06T10:00:00Z ",
            "1719792000",
            "Mon Jul 01 00:00:00 UTC 2024",
            "2024-3-6T10:00:00Z",
            "yesterday",
        ] {
            let lenient =
                super::super::lenient::parse_timestamp(text).map(|t| t.timestamp_micros());
            if let Some(fast) = export_time_micros(text.as_bytes()) {
                assert_eq!(Some(fast), lenient, "{text}");
            }
            match decode_time(text.as_bytes()) {
                Ok(decoded) => assert_eq!(decoded, lenient, "{text}"),
                Err(message) => {
                    assert_eq!(lenient, None, "{text}");
                    assert!(message.starts_with("unrecognised timestamp"), "{message}");
                }
            }
        }
        assert_eq!(
            export_time_micros(b"2019-10-05T02:59:40.123456789Z"),
            Some(1_570_244_380_123_456)
        );
    }

    #[test]
    fn repeated_ids_are_found_in_runs_and_in_the_map() {
        let mut seen = SeenIds::default();
        let new = |outcome: Seen| matches!(outcome, Seen::New);
        let repeat = |outcome: Seen| matches!(outcome, Seen::Repeat);
        let conflict = |outcome: Seen| match outcome {
            Seen::Conflict { earlier_line } => Some(earlier_line),
            _ => None,
        };
        // 1, 2, 3 on lines 2, 3, 4: one run.
        for (id, line) in [(b"1", 2), (b"2", 3), (b"3", 4)] {
            assert!(new(seen.check(id, line, line * 10)));
        }
        assert_eq!(seen.runs.len(), 1);
        assert!(new(seen.check(b"x-1", 5, 50)));
        // A gap, then a row that spans two lines: new runs.
        assert!(new(seen.check(b"10", 6, 60)));
        assert!(new(seen.check(b"11", 8, 80)));
        assert_eq!(seen.runs.len(), 3);
        // Below the top but in no run, or not a plain number: the map.
        assert!(new(seen.check(b"5", 9, 90)));
        assert!(new(seen.check(b"02", 10, 100)));
        assert!(new(seen.check(b"0", 11, 110)));
        assert!(repeat(seen.check(b"2", 12, 30)));
        assert_eq!(conflict(seen.check(b"2", 12, 31)), Some(3));
        assert_eq!(conflict(seen.check(b"11", 12, 0)), Some(8));
        assert!(repeat(seen.check(b"10", 12, 60)));
        assert!(repeat(seen.check(b"5", 12, 90)));
        assert_eq!(conflict(seen.check(b"5", 12, 91)), Some(9));
        assert!(repeat(seen.check(b"02", 12, 100)));
        assert!(repeat(seen.check(b"x-1", 12, 50)));
        assert!(repeat(seen.check(b"0", 12, 110)));
        assert!(new(seen.check(b"4", 12, 120)));
        assert!(new(seen.check(b"12", 13, 130)));
        assert!(repeat(seen.check(b"4", 14, 120)));
        assert!(repeat(seen.check(b"12", 14, 130)));
    }

    #[test]
    fn fingerprints_tell_field_boundaries_and_bytes_apart() {
        let record = |fields: &[&str]| csv::ByteRecord::from(fields.to_vec());
        let base = fingerprint(&record(&["1", "act-1", "0.5", ""]));
        assert_eq!(base, fingerprint(&record(&["1", "act-1", "0.5", ""])));
        for other in [
            record(&["1", "act-1", "0.5"]),
            record(&["1", "act-10", ".5", ""]),
            record(&["1", "act-1", "0.6", ""]),
            record(&["1", "act-1", "0.5", "", ""]),
            record(&["1", "act-1", "0.5", " "]),
        ] {
            assert_ne!(base, fingerprint(&other), "{other:?}");
        }
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

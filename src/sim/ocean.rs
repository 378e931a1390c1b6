//! Ocean routes of the simulator: cluster and virtual node group listings, `aggregatedCosts` (grouped by namespace or namespace label, optionally filtered) and right-sizing (v1 suggestions, v2 recommendations); every figure comes from `Organisation::cluster_day` and `rightsizing`, so the JSON reconciles with the ground truth exactly.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::org::{
    day_from_number, day_number, storage_split, Account, Cloud, Cluster, ClusterDay, Money,
    Organisation, StorageSplit,
};
use super::rng::{stable_hash, SplitMix64};
use super::routes::{
    check_plausible_year, iso_timestamp_millis, json_object, usd_number, ApiError, Payload,
};

/// Longest window an aggregatedCosts request may span.
const MAXIMUM_AGGREGATION_DAYS: i64 = 366;

/// The cluster with this id if it belongs to the account (and, for cloud-specific routes, to that cloud).
pub(crate) fn scoped_cluster<'a>(
    organisation: &'a Organisation,
    account: &Account,
    cluster_id: &str,
    cloud: Option<Cloud>,
) -> Result<&'a Cluster, ApiError> {
    match organisation.find_cluster(cluster_id) {
        Some((owner, cluster))
            if owner.id == account.id && cloud.is_none_or(|wanted| wanted == cluster.cloud) =>
        {
            Ok(cluster)
        }
        _ => Err(ApiError::new(
            400,
            "CLUSTER_DOESNT_EXIST",
            format!("Cluster {cluster_id} does not exist"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Listings
// ---------------------------------------------------------------------------------------------

/// `GET /ocean/aws/k8s/launchSpec`, `/ocean/gcp/k8s/launchSpec` and
/// `/ocean/azure/np/virtualNodeGroup`, each `?oceanId=`: the cluster's virtual node groups, flat.
pub(crate) fn list_virtual_node_groups(cluster: &Cluster, cloud: Cloud) -> Payload {
    let kind = match cloud {
        Cloud::Aws => "spotinst:ocean:aws:k8s:launchSpec",
        Cloud::Gcp => "spotinst:ocean:gcp:k8s:launchSpec",
        Cloud::Azure => "spotinst:ocean:azure:np:virtualNodeGroup",
    };
    let items = cluster
        .virtual_node_groups
        .iter()
        .map(|group| {
            json!({
                "id": group.id,
                "oceanId": cluster.id,
                "name": group.name,
                "instanceTypes": group.instance_types,
                "createdAt": iso_timestamp_millis(cluster.created_at),
                "updatedAt": iso_timestamp_millis(cluster.updated_at),
            })
        })
        .collect();
    Payload::items(kind, items)
}

/// `GET /ocean/aws/k8s/cluster` (flat items), `/ocean/gcp/k8s/cluster` (items wrapped in
/// `{"cluster":…}`, as the SPEC shows) and `/ocean/azure/np/cluster` (flat, with `aks{…}`).
pub(crate) fn list_clusters(account: &Account, cloud: Cloud) -> Payload {
    let kind = match cloud {
        Cloud::Aws => "spotinst:ocean:aws:k8s",
        Cloud::Gcp => "spotinst:ocean:gcp:k8s",
        Cloud::Azure => "spotinst:ocean:azure:np",
    };
    if account.cloud != cloud {
        return Payload::items(kind, Vec::new());
    }
    let items = account
        .clusters
        .iter()
        .map(|cluster| {
            let capacity = json!({
                "minimum": cluster.capacity_minimum,
                "maximum": cluster.capacity_maximum,
                "target": cluster.capacity_target,
            });
            match cloud {
                Cloud::Aws => json!({
                    "id": cluster.id,
                    "name": cluster.name,
                    "controllerClusterId": cluster.controller_cluster_id,
                    "region": cluster.region,
                    "capacity": capacity,
                    "strategy": {
                        "spotPercentage": cluster.spot_percentage,
                        "fallbackToOd": cluster.fallback_to_od,
                        "utilizeReservedInstances": cluster.utilize_reserved_instances,
                    },
                    "createdAt": iso_timestamp_millis(cluster.created_at),
                    "updatedAt": iso_timestamp_millis(cluster.updated_at),
                }),
                Cloud::Gcp => json!({
                    "cluster": {
                        "id": cluster.id,
                        "name": cluster.name,
                        "controllerClusterId": cluster.controller_cluster_id,
                        "gke": { "clusterName": cluster.name, "masterLocation": cluster.region },
                        "capacity": capacity,
                        "strategy": { "preemptiblePercentage": cluster.spot_percentage, "fallbackToOd": cluster.fallback_to_od },
                        "createdAt": iso_timestamp_millis(cluster.created_at),
                        "updatedAt": iso_timestamp_millis(cluster.updated_at),
                    }
                }),
                Cloud::Azure => json!({
                    "id": cluster.id,
                    "name": cluster.name,
                    "controllerClusterId": cluster.controller_cluster_id,
                    "aks": {
                        "clusterName": cluster.name,
                        "resourceGroupName": cluster.resource_group_name,
                        "region": cluster.region,
                        "infrastructureResourceGroupName": format!("MC_{}_{}_{}", cluster.resource_group_name, cluster.name, cluster.region),
                    },
                    "createdAt": iso_timestamp_millis(cluster.created_at),
                    "updatedAt": iso_timestamp_millis(cluster.updated_at),
                }),
            }
        })
        .collect();
    Payload::items(kind, items)
}

// ---------------------------------------------------------------------------------------------
// aggregatedCosts
// ---------------------------------------------------------------------------------------------

/// A time of the aggregatedCosts body: ISO-8601, epoch milliseconds (string or number) or `yyyy-mm-dd`.
fn parse_body_time(field: &str, value: Option<&Value>) -> Result<DateTime<Utc>, ApiError> {
    let value = value.ok_or_else(|| ApiError::missing(field))?;
    let invalid = || {
        ApiError::validation(
            field,
            format!("\"{field}\" must be an ISO-8601 time, epoch milliseconds or yyyy-mm-dd"),
        )
    };
    let timestamp = match value {
        Value::Number(number) => number
            .as_i64()
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or_else(invalid)?,
        Value::String(text) => {
            let text = text.trim();
            if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
                text.parse::<i64>()
                    .ok()
                    .and_then(DateTime::<Utc>::from_timestamp_millis)
                    .ok_or_else(invalid)?
            } else if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                day.and_hms_opt(0, 0, 0).ok_or_else(invalid)?.and_utc()
            } else if let Ok(timestamp) = DateTime::parse_from_rfc3339(text) {
                timestamp.with_timezone(&Utc)
            } else if let Ok(naive) =
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            {
                naive.and_utc()
            } else {
                return Err(invalid());
            }
        }
        _ => return Err(invalid()),
    };
    check_plausible_year(field, timestamp.date_naive())?;
    Ok(timestamp)
}

/// The whole-day window of an aggregatedCosts body. Times are rounded down to the hour, as
/// Spot does; the simulator then insists on midnight boundaries.
fn parse_aggregation_window(body: &Value) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let mut days = Vec::with_capacity(2);
    for field in ["startTime", "endTime"] {
        let timestamp = parse_body_time(field, body.get(field))?;
        let rounded_seconds = timestamp.timestamp().div_euclid(3600) * 3600;
        if rounded_seconds.rem_euclid(86_400) != 0 {
            return Err(ApiError::validation(
                field,
                format!("the simulator serves whole UTC days only: \"{field}\" must fall within the first hour of a UTC day"),
            ));
        }
        days.push(day_from_number(rounded_seconds.div_euclid(86_400)));
    }
    let (start_day, end_day) = (days[0], days[1]);
    let length = day_number(end_day) - day_number(start_day);
    if length <= 0 {
        return Err(ApiError::validation(
            "endTime",
            "\"endTime\" must be after \"startTime\"",
        ));
    }
    if length > MAXIMUM_AGGREGATION_DAYS {
        return Err(ApiError::validation(
            "endTime",
            format!("the window may span at most {MAXIMUM_AGGREGATION_DAYS} days"),
        ));
    }
    Ok((start_day, end_day))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Grouping {
    Namespace,
    NamespaceLabel(String),
    NamespaceAnnotation(String),
}

impl Grouping {
    fn parse(body: &Value) -> Result<Grouping, ApiError> {
        let text = match body.get("groupBy") {
            None | Some(Value::Null) => return Ok(Grouping::Namespace),
            Some(Value::String(text)) => text.as_str(),
            Some(_) => {
                return Err(ApiError::validation(
                    "groupBy",
                    "\"groupBy\" must be a string",
                ))
            }
        };
        if text == "namespace" {
            return Ok(Grouping::Namespace);
        }
        if let Some(key) = text
            .strip_prefix("namespace.label.")
            .filter(|key| !key.is_empty())
        {
            return Ok(Grouping::NamespaceLabel(key.to_string()));
        }
        if let Some(key) = text
            .strip_prefix("namespace.annotation.")
            .filter(|key| !key.is_empty())
        {
            return Ok(Grouping::NamespaceAnnotation(key.to_string()));
        }
        Err(ApiError::validation(
            "groupBy",
            format!("\"groupBy\" must be namespace, namespace.label.<key> or namespace.annotation.<key>, got {text:?}"),
        ))
    }

    /// The abbreviated form Spot echoes in `detailedCosts.groupedBy`.
    fn echoed(&self) -> String {
        match self {
            Grouping::Namespace => "namespace".to_string(),
            Grouping::NamespaceLabel(key) => format!("n.l.{key}"),
            Grouping::NamespaceAnnotation(key) => format!("n.a.{key}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilterScope {
    Namespace,
    Resource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct FilterCondition {
    is_annotation: bool,
    key: String,
    operator: String,
    value: Option<String>,
}

/// `filter.conditions.anyMatch[].allMatch[]`: OR of ANDs. Namespaces carry labels (no
/// annotations); workloads and the UnusedStorage pseudo-resource carry neither.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CostFilter {
    scope: FilterScope,
    any_match: Vec<Vec<FilterCondition>>,
}

impl CostFilter {
    fn parse(body: &Value) -> Result<Option<CostFilter>, ApiError> {
        let filter = match body.get("filter") {
            None | Some(Value::Null) => return Ok(None),
            Some(filter) if filter.is_object() => filter,
            Some(_) => {
                return Err(ApiError::validation(
                    "filter",
                    "\"filter\" must be an object",
                ))
            }
        };
        let scope = match filter.get("scope").and_then(Value::as_str) {
            None | Some("namespace") => FilterScope::Namespace,
            Some("resource") => FilterScope::Resource,
            Some(other) => {
                return Err(ApiError::validation(
                    "filter.scope",
                    format!("\"scope\" must be namespace or resource, got {other:?}"),
                ))
            }
        };
        let any_match = filter
            .pointer("/conditions/anyMatch")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ApiError::validation(
                    "filter.conditions.anyMatch",
                    "\"conditions.anyMatch\" must be an array",
                )
            })?;
        let mut alternatives = Vec::with_capacity(any_match.len());
        for (alternative_index, alternative) in any_match.iter().enumerate() {
            let field = format!("filter.conditions.anyMatch[{alternative_index}].allMatch");
            let all_match = alternative
                .get("allMatch")
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::validation(&field, "\"allMatch\" must be an array"))?;
            let mut conditions = Vec::with_capacity(all_match.len());
            for (condition_index, condition) in all_match.iter().enumerate() {
                let condition_field = format!("{field}[{condition_index}]");
                let is_annotation = match condition.get("type").and_then(Value::as_str) {
                    Some("label") => false,
                    Some("annotation") => true,
                    _ => {
                        return Err(ApiError::validation(
                            &condition_field,
                            "\"type\" must be label or annotation",
                        ))
                    }
                };
                let key = condition
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::validation(&condition_field, "\"key\" is required"))?
                    .to_string();
                let operator = condition
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let value = condition
                    .get("value")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match operator.as_str() {
                    "equals" | "notEquals" if value.is_none() => {
                        return Err(ApiError::validation(
                            &condition_field,
                            "\"value\" is required for equals and notEquals",
                        ))
                    }
                    "equals" | "notEquals" | "exists" | "notExists" => {}
                    _ => {
                        return Err(ApiError::validation(
                            &condition_field,
                            "\"operator\" must be equals, notEquals, exists or notExists",
                        ))
                    }
                }
                conditions.push(FilterCondition {
                    is_annotation,
                    key,
                    operator,
                    value,
                });
            }
            alternatives.push(conditions);
        }
        Ok(Some(CostFilter {
            scope,
            any_match: alternatives,
        }))
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let no_annotations = BTreeMap::new();
        self.any_match.iter().any(|all_match| {
            all_match.iter().all(|condition| {
                let attributes = if condition.is_annotation {
                    &no_annotations
                } else {
                    labels
                };
                let found = attributes.get(&condition.key);
                match condition.operator.as_str() {
                    "equals" => found == condition.value.as_ref(),
                    "notEquals" => found != condition.value.as_ref(),
                    "exists" => found.is_some(),
                    _ => found.is_none(),
                }
            })
        })
    }

    fn includes_namespace(&self, labels: &BTreeMap<String, String>) -> bool {
        self.scope == FilterScope::Resource || self.matches(labels)
    }

    fn includes_resource(&self) -> bool {
        self.scope == FilterScope::Namespace || self.matches(&BTreeMap::new())
    }
}

/// Compute, storage (split) and networking of a set of resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CostBreakdown {
    compute: Money,
    storage: StorageSplit,
    networking: Money,
}

impl CostBreakdown {
    fn storage_total(&self) -> Money {
        self.storage.persistent_block + self.storage.non_persistent_block + self.storage.file
    }

    fn total(&self) -> Money {
        self.compute + self.storage_total() + self.networking
    }

    fn add(&mut self, other: &CostBreakdown) {
        self.compute += other.compute;
        self.storage.persistent_block += other.storage.persistent_block;
        self.storage.non_persistent_block += other.storage.non_persistent_block;
        self.storage.file += other.storage.file;
        self.networking += other.networking;
    }
}

fn storage_json(cloud: Cloud, split: &StorageSplit) -> Value {
    let block_total = split.persistent_block + split.non_persistent_block;
    let total = block_total + split.file;
    match cloud {
        Cloud::Aws => json!({
            "total": usd_number(total),
            "block": {
                "total": usd_number(block_total),
                "ebsPv": { "total": usd_number(split.persistent_block) },
                "nonPv": { "total": usd_number(split.non_persistent_block) },
            },
            "file": { "total": usd_number(split.file), "efsPv": { "total": usd_number(split.file) } },
        }),
        Cloud::Gcp => json!({
            "total": usd_number(total),
            "block": {
                "total": usd_number(block_total),
                "pdPv": { "total": usd_number(split.persistent_block) },
                "pdBoot": { "total": usd_number(split.non_persistent_block) },
            },
        }),
        Cloud::Azure => json!({
            "total": usd_number(total),
            "block": {
                "total": usd_number(block_total),
                "azureDisk": { "total": usd_number(split.persistent_block) },
                "osDisk": { "total": usd_number(split.non_persistent_block) },
            },
        }),
    }
}

/// `{}` when there is no networking cost, else cost and usage (GiB at 0.09 USD/GiB) of egress.
fn networking_json(networking: Money) -> Value {
    if networking == Money::ZERO {
        return json!({});
    }
    let usage_gib = (networking.micros() as f64 / 90_000.0 * 1000.0).round() / 1000.0;
    json!({
        "totalCost": usd_number(networking),
        "totalUsage": usage_gib,
        "total": { "out": { "cost": usd_number(networking), "usage": usage_gib } },
    })
}

/// A resource or aggregation summary: `{total, compute{total}, storage{…}, networking{…}}`
/// (no networking on GKE).
fn breakdown_json(cloud: Cloud, breakdown: &CostBreakdown) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("total".to_string(), usd_number(breakdown.total()));
    fields.insert(
        "compute".to_string(),
        json!({ "total": usd_number(breakdown.compute) }),
    );
    fields.insert(
        "storage".to_string(),
        storage_json(cloud, &breakdown.storage),
    );
    if cloud != Cloud::Gcp {
        fields.insert(
            "networking".to_string(),
            networking_json(breakdown.networking),
        );
    }
    fields
}

fn unused_storage_resource(cloud: Cloud, unused_storage: Money) -> Value {
    let mut fields = Map::new();
    fields.insert(
        "metadata".to_string(),
        json!({ "name": "UnusedStorage", "type": "UnusedStorage" }),
    );
    fields.insert("total".to_string(), usd_number(unused_storage));
    fields.insert("compute".to_string(), json!({}));
    fields.insert(
        "storage".to_string(),
        json!({ "total": usd_number(unused_storage) }),
    );
    if cloud != Cloud::Gcp {
        fields.insert("networking".to_string(), json!({}));
    }
    Value::Object(fields)
}

/// One aggregation being built: its resources and their summed costs.
#[derive(Default)]
struct AggregationBuilder {
    resources: Vec<Value>,
    breakdown: CostBreakdown,
    unused_storage: Money,
    has_unused_storage_entry: bool,
}

/// `Mon Jul 01 00:00:00 UTC 2024`, Java's `Date.toString()`, as the real API returns it.
fn java_date_text(day: NaiveDate) -> String {
    day.and_hms_opt(0, 0, 0)
        .map_or_else(String::new, |midnight| {
            midnight.format("%a %b %d %H:%M:%S UTC %Y").to_string()
        })
}

/// POST `…/aggregatedCosts` (detailed) and `…/aggregatedCosts/summary`.
pub(crate) fn aggregated_costs(
    organisation: &Organisation,
    cluster: &Cluster,
    body: &Value,
    summary_only: bool,
) -> Result<Payload, ApiError> {
    let (start_day, end_day) = parse_aggregation_window(body)?;
    let grouping = Grouping::parse(body)?;
    let filter = CostFilter::parse(body)?;

    let mut window_total = ClusterDay::default();
    for number in day_number(start_day)..day_number(end_day) {
        window_total.accumulate(&organisation.cluster_day(&cluster.id, day_from_number(number)));
    }

    let mut aggregations: BTreeMap<String, AggregationBuilder> = BTreeMap::new();
    let mut included = CostBreakdown::default();
    let mut included_workload_compute = Money::ZERO;
    for namespace in &window_total.namespaces {
        if filter
            .as_ref()
            .is_some_and(|filter| !filter.includes_namespace(&namespace.labels))
        {
            continue;
        }
        let group_key = match &grouping {
            Grouping::Namespace => Some(namespace.name.clone()),
            Grouping::NamespaceLabel(key) => namespace.labels.get(key).cloned(),
            Grouping::NamespaceAnnotation(_) => None,
        };
        let resources_included = filter.as_ref().is_none_or(CostFilter::includes_resource);
        if !resources_included {
            continue;
        }
        let mut namespace_breakdown = CostBreakdown::default();
        let mut namespace_resources = Vec::with_capacity(namespace.workloads.len());
        for workload in &namespace.workloads {
            let breakdown = CostBreakdown {
                compute: workload.compute,
                storage: storage_split(cluster.cloud, &workload.kind, workload.storage),
                networking: workload.networking,
            };
            namespace_breakdown.add(&breakdown);
            let mut fields = Map::new();
            fields.insert(
                "metadata".to_string(),
                json!({ "name": workload.name, "type": workload.kind, "namespace": namespace.name }),
            );
            fields.extend(breakdown_json(cluster.cloud, &breakdown));
            namespace_resources.push(Value::Object(fields));
        }
        included_workload_compute += namespace_breakdown.compute;
        included.add(&namespace_breakdown);
        included.storage.persistent_block += namespace.unused_storage;
        if let Some(group_key) = group_key {
            let aggregation = aggregations.entry(group_key).or_default();
            aggregation.resources.extend(namespace_resources);
            aggregation.breakdown.add(&namespace_breakdown);
            aggregation.unused_storage += namespace.unused_storage;
            aggregation.has_unused_storage_entry = true;
        }
    }

    let cluster_summary = if filter.is_none() {
        let mut storage = StorageSplit::default();
        for namespace in &window_total.namespaces {
            storage.persistent_block += namespace.unused_storage;
            for workload in &namespace.workloads {
                let split = storage_split(cluster.cloud, &workload.kind, workload.storage);
                storage.persistent_block += split.persistent_block;
                storage.non_persistent_block += split.non_persistent_block;
                storage.file += split.file;
            }
        }
        let breakdown = CostBreakdown {
            compute: window_total.compute,
            storage,
            networking: window_total.networking,
        };
        cluster_summary_json(
            cluster.cloud,
            &breakdown,
            window_total.compute - window_total.headroom,
            window_total.headroom,
        )
    } else {
        cluster_summary_json(
            cluster.cloud,
            &included,
            included_workload_compute,
            Money::ZERO,
        )
    };

    let mut total_for_duration = Map::new();
    total_for_duration.insert("startTime".to_string(), json!(java_date_text(start_day)));
    total_for_duration.insert("endTime".to_string(), json!(java_date_text(end_day)));
    total_for_duration.insert("summary".to_string(), cluster_summary);
    if summary_only {
        let item = json_object([(
            "result",
            json_object([("totalForDuration", Value::Object(total_for_duration))]),
        )]);
        return Ok(Payload::items(
            "ocean:k8s:cluster:aggregatedCosts:summary",
            vec![item],
        ));
    }
    let mut aggregations_json = Map::new();
    for (group_key, mut aggregation) in aggregations {
        if aggregation.has_unused_storage_entry {
            aggregation.resources.push(unused_storage_resource(
                cluster.cloud,
                aggregation.unused_storage,
            ));
            aggregation.breakdown.storage.persistent_block += aggregation.unused_storage;
        }
        aggregations_json.insert(
            group_key,
            json_object([
                (
                    "summary",
                    Value::Object(breakdown_json(cluster.cloud, &aggregation.breakdown)),
                ),
                ("resources", Value::Array(aggregation.resources)),
            ]),
        );
    }
    total_for_duration.insert(
        "detailedCosts".to_string(),
        json_object([
            ("groupedBy", json!(grouping.echoed())),
            ("aggregations", Value::Object(aggregations_json)),
        ]),
    );
    let item = json_object([(
        "result",
        json_object([("totalForDuration", Value::Object(total_for_duration))]),
    )]);
    Ok(Payload::items(
        "ocean:k8s:cluster:aggregatedCosts:detailed",
        vec![item],
    ))
}

/// The cluster-level CostSummary, with `compute.workloads` and `compute.headroom`.
fn cluster_summary_json(
    cloud: Cloud,
    breakdown: &CostBreakdown,
    workloads: Money,
    headroom: Money,
) -> Value {
    let mut fields = breakdown_json(cloud, breakdown);
    fields.insert(
        "compute".to_string(),
        json!({
            "total": usd_number(breakdown.compute),
            "workloads": { "total": usd_number(workloads) },
            "headroom": { "total": usd_number(headroom) },
        }),
    );
    Value::Object(fields)
}

// ---------------------------------------------------------------------------------------------
// Right-sizing
// ---------------------------------------------------------------------------------------------

/// `2026-04-24T04:55:22.043813`: naive, microseconds (right-sizing v2).
fn naive_microsecond_text(day: NaiveDate, random: &mut SplitMix64) -> String {
    let second_of_day = random.next_below(86_400) as u32;
    let microsecond = random.next_below(1_000_000) as u32;
    day.and_hms_micro_opt(
        second_of_day / 3600,
        (second_of_day / 60) % 60,
        second_of_day % 60,
        microsecond,
    )
    .map_or_else(String::new, |timestamp| {
        timestamp.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    })
}

/// POST `/ocean/{id}/rightSizing/recommendations` (v2). Body filters: `clusterResources`
/// (`{"<ns>":{"<workload>":[…]}}`; an empty workload map means the whole namespace).
pub(crate) fn rightsizing_recommendations(
    organisation: &Organisation,
    cluster: &Cluster,
    body: &Value,
    today: NaiveDate,
) -> Result<Payload, ApiError> {
    let cluster_resources = match body.get("clusterResources") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(ApiError::validation(
                "clusterResources",
                "\"clusterResources\" must be an object",
            ))
        }
    };
    let mut random = SplitMix64::keyed(
        organisation.seed,
        &[&cluster.id, "applied-at", &today.to_string()],
    );
    let mut items = Vec::new();
    for workload in organisation.rightsizing(&cluster.id, today) {
        if let Some(filter) = cluster_resources {
            let Some(namespace_filter) = filter.get(&workload.namespace) else {
                continue;
            };
            let workload_listed = namespace_filter.as_object().is_none_or(|workloads| {
                workloads.is_empty() || workloads.contains_key(&workload.workload_name)
            });
            if !workload_listed {
                continue;
            }
        }
        let applied_at = naive_microsecond_text(today, &mut random);
        let status_roll = stable_hash(
            organisation.seed,
            &[&cluster.id, &workload.namespace, &workload.workload_name],
        ) % 3;
        let (rule_name, optimization_status, reasons): (Value, &str, Vec<&str>) = match status_roll
        {
            0 => (Value::Null, "NOT_OPTIMIZED", Vec::new()),
            1 => (
                json!("default-rule"),
                "PARTLY_OPTIMIZED",
                vec!["AUTO_APPLY_DISABLED"],
            ),
            _ => (
                json!("aggressive"),
                "PARTLY_OPTIMIZED",
                vec!["RESTART_REQUIRED"],
            ),
        };
        let containers: Vec<Value> = workload
            .containers
            .iter()
            .map(|container| {
                json!({
                    "name": container.name,
                    "requestedCPU": container.requested_cpu_millicores,
                    "suggestedCPU": container.suggested_cpu_millicores,
                    "requestedMemory": container.requested_memory_mib,
                    "suggestedMemory": container.suggested_memory_mib,
                    "preliminary": false,
                    "appliedAt": applied_at,
                })
            })
            .collect();
        items.push(json!({
            "namespace": workload.namespace,
            "workloadName": workload.workload_name,
            "workloadType": workload.workload_type,
            "requestedCPU": workload.requested_cpu_millicores,
            "suggestedCPU": workload.suggested_cpu_millicores,
            "requestedMemory": workload.requested_memory_mib,
            "suggestedMemory": workload.suggested_memory_mib,
            "monthlyMaxSavings": usd_number(workload.monthly_savings),
            "ruleName": rule_name,
            "optimizationStatus": optimization_status,
            "reasonsForPartialOptimized": reasons,
            "appliedAt": applied_at,
        }));
        if let Some(item) = items.last_mut() {
            item["containers"] = Value::Array(containers);
        }
    }
    Ok(Payload::items(
        "mcs:ocean:rightSizing:recommendations",
        items,
    ))
}

/// `deployment`, `statefulSet`, `daemonSet`, `job`: the v1 `resourceType` casing.
fn lower_camel_kind(kind: &str) -> String {
    let mut characters = kind.chars();
    characters.next().map_or_else(String::new, |first| {
        first.to_ascii_lowercase().to_string() + characters.as_str()
    })
}

/// POST `…/rightSizing/suggestion` (v1). Body `{"filter":{"namespaces":[…],"attribute":{…}}}`,
/// all optional; the attribute filter is evaluated against namespace labels. Container values
/// use the `requestedCpu`/`suggestedCpu` casing, workload values `requestedCPU`/`suggestedCPU`.
pub(crate) fn rightsizing_suggestions(
    organisation: &Organisation,
    cluster: &Cluster,
    body: &Value,
    today: NaiveDate,
) -> Result<Payload, ApiError> {
    let kind = match cluster.cloud {
        Cloud::Aws => "spotinst:ocean:aws:k8s:cluster:rightSizing:suggestion",
        Cloud::Gcp => "spotinst:ocean:gcp:k8s:cluster:rightSizing:resourceSuggestion",
        Cloud::Azure => "spotinst:ocean:azure:np:cluster:rightSizing:suggestion",
    };
    let filter = body.get("filter").filter(|filter| !filter.is_null());
    let namespaces: Option<Vec<String>> = match filter.and_then(|filter| filter.get("namespaces")) {
        None | Some(Value::Null) => None,
        Some(Value::Array(values)) => Some(
            values
                .iter()
                .map(|value| {
                    value.as_str().map(str::to_string).ok_or_else(|| {
                        ApiError::validation("filter.namespaces", "\"namespaces\" must be strings")
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(ApiError::validation(
                "filter.namespaces",
                "\"namespaces\" must be an array",
            ))
        }
    };
    let attribute = match filter.and_then(|filter| filter.get("attribute")) {
        None | Some(Value::Null) => None,
        Some(attribute) => {
            let key = attribute
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::validation("filter.attribute.key", "\"key\" is required")
                })?;
            let operator = attribute
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or("Equals");
            if !matches!(
                operator,
                "Equals" | "equals" | "notEquals" | "exists" | "doesNotExist"
            ) {
                return Err(ApiError::validation(
                    "filter.attribute.operator",
                    "\"operator\" must be Equals, notEquals, exists or doesNotExist",
                ));
            }
            let is_annotation = attribute.get("type").and_then(Value::as_str) == Some("annotation");
            Some((
                is_annotation,
                key.to_string(),
                operator.to_string(),
                attribute
                    .get("value")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ))
        }
    };
    let namespace_passes = |namespace_name: &str| -> bool {
        if namespaces
            .as_ref()
            .is_some_and(|wanted| !wanted.iter().any(|name| name == namespace_name))
        {
            return false;
        }
        let Some((is_annotation, key, operator, value)) = &attribute else {
            return true;
        };
        let labels = cluster
            .namespaces
            .iter()
            .find(|namespace| namespace.name == namespace_name)
            .map(|namespace| &namespace.labels);
        let found = if *is_annotation {
            None
        } else {
            labels.and_then(|labels| labels.get(key))
        };
        match operator.as_str() {
            "Equals" | "equals" => found == value.as_ref(),
            "notEquals" => found != value.as_ref(),
            "exists" => found.is_some(),
            _ => found.is_none(),
        }
    };
    let items = organisation
        .rightsizing(&cluster.id, today)
        .into_iter()
        .filter(|workload| namespace_passes(&workload.namespace))
        .map(|workload| {
            let containers: Vec<Value> = workload
                .containers
                .iter()
                .map(|container| {
                    json!({
                        "name": container.name,
                        "requestedCpu": container.requested_cpu_millicores,
                        "suggestedCpu": container.suggested_cpu_millicores,
                        "requestedMemory": container.requested_memory_mib,
                        "suggestedMemory": container.suggested_memory_mib,
                    })
                })
                .collect();
            let mut item = json!({
                "resourceName": workload.workload_name,
                "resourceType": lower_camel_kind(&workload.workload_type),
                "namespace": workload.namespace,
                "requestedCPU": workload.requested_cpu_millicores,
                "suggestedCPU": workload.suggested_cpu_millicores,
                "requestedMemory": workload.requested_memory_mib,
                "suggestedMemory": workload.suggested_memory_mib,
            });
            item["containers"] = Value::Array(containers);
            item
        })
        .collect();
    Ok(Payload::items(kind, items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Scale;

    fn aggregated_item(payload: Payload) -> Value {
        match payload {
            Payload::Items { mut items, .. } => items.remove(0),
            _ => panic!("expected items"),
        }
    }

    fn micros(value: &Value) -> i64 {
        (value.as_f64().unwrap() * 1e6).round() as i64
    }

    #[test]
    fn aggregated_costs_by_namespace_add_up_to_the_cluster_total_over_several_days() {
        let organisation = Organisation::generate(42, Scale::Small);
        for cluster in organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
        {
            let body = json!({ "startTime": "2024-07-01T00:00:00Z", "endTime": "1720051200000", "groupBy": "namespace" });
            let item =
                aggregated_item(aggregated_costs(&organisation, cluster, &body, false).unwrap());
            let total_for_duration = &item["result"]["totalForDuration"];
            assert_eq!(
                total_for_duration["startTime"],
                "Mon Jul 01 00:00:00 UTC 2024"
            );
            assert_eq!(
                total_for_duration["endTime"],
                "Thu Jul 04 00:00:00 UTC 2024"
            );
            let mut expected = ClusterDay::default();
            for day in 1..4 {
                expected.accumulate(
                    &organisation
                        .cluster_day(&cluster.id, NaiveDate::from_ymd_opt(2024, 7, day).unwrap()),
                );
            }
            let summary = &total_for_duration["summary"];
            assert_eq!(micros(&summary["total"]), expected.total.micros());
            assert_eq!(
                micros(&summary["compute"]["headroom"]["total"]),
                expected.headroom.micros()
            );
            let aggregations = total_for_duration["detailedCosts"]["aggregations"]
                .as_object()
                .unwrap();
            assert_eq!(aggregations.len(), cluster.namespaces.len());
            let mut resources_total = 0;
            let mut unused_total = 0;
            for aggregation in aggregations.values() {
                let resources = aggregation["resources"].as_array().unwrap();
                let sum: i64 = resources
                    .iter()
                    .map(|resource| micros(&resource["total"]))
                    .sum();
                assert_eq!(sum, micros(&aggregation["summary"]["total"]));
                let unused: Vec<&Value> = resources
                    .iter()
                    .filter(|resource| resource["metadata"]["type"] == "UnusedStorage")
                    .collect();
                assert_eq!(unused.len(), 1);
                assert!(unused[0]["metadata"].get("namespace").is_none());
                unused_total += micros(&unused[0]["total"]);
                resources_total += sum;
            }
            assert_eq!(unused_total, expected.unused_storage.micros());
            assert_eq!(
                resources_total + expected.headroom.micros(),
                expected.total.micros()
            );
            let block_key = match cluster.cloud {
                Cloud::Aws => "ebsPv",
                Cloud::Gcp => "pdPv",
                Cloud::Azure => "azureDisk",
            };
            assert!(summary["storage"]["block"].get(block_key).is_some());
            assert_eq!(
                summary.get("networking").is_some(),
                cluster.cloud != Cloud::Gcp
            );
        }
    }

    #[test]
    fn label_grouping_keeps_only_labelled_namespaces() {
        let organisation = Organisation::generate(42, Scale::Small);
        let cluster = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .next()
            .unwrap();
        let body = json!({ "startTime": "2024-07-01", "endTime": "2024-07-02", "groupBy": "namespace.label.team" });
        let item = aggregated_item(aggregated_costs(&organisation, cluster, &body, false).unwrap());
        let detailed = &item["result"]["totalForDuration"]["detailedCosts"];
        assert_eq!(detailed["groupedBy"], "n.l.team");
        let teams: std::collections::BTreeSet<String> = cluster
            .namespaces
            .iter()
            .filter_map(|namespace| namespace.labels.get("team").cloned())
            .collect();
        let keys: std::collections::BTreeSet<String> = detailed["aggregations"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, teams);
        for aggregation in detailed["aggregations"].as_object().unwrap().values() {
            for resource in aggregation["resources"].as_array().unwrap() {
                if resource["metadata"]["type"] != "UnusedStorage" {
                    assert_ne!(resource["metadata"]["namespace"], "kube-system");
                }
            }
        }
        let annotation = json!({ "startTime": "2024-07-01", "endTime": "2024-07-02", "groupBy": "namespace.annotation.owner" });
        let item =
            aggregated_item(aggregated_costs(&organisation, cluster, &annotation, false).unwrap());
        assert_eq!(
            item["result"]["totalForDuration"]["detailedCosts"]["aggregations"],
            json!({})
        );
    }

    #[test]
    fn aggregated_costs_reject_partial_days_bad_grouping_and_reversed_windows() {
        let organisation = Organisation::generate(42, Scale::Small);
        let cluster = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .next()
            .unwrap();
        let cases = [
            (
                json!({ "startTime": "2024-07-01T05:00:00Z", "endTime": "2024-07-02" }),
                "startTime",
            ),
            (
                json!({ "startTime": "2024-07-02", "endTime": "2024-07-01" }),
                "endTime",
            ),
            (
                json!({ "startTime": "2024-07-01", "endTime": "2024-07-02", "groupBy": "resource.label.app" }),
                "groupBy",
            ),
            (json!({ "endTime": "2024-07-02" }), "startTime"),
            (
                json!({ "startTime": "yesterday", "endTime": "2024-07-02" }),
                "startTime",
            ),
        ];
        for (body, field) in cases {
            let error = aggregated_costs(&organisation, cluster, &body, false)
                .err()
                .unwrap();
            assert_eq!(
                (error.status, error.code.as_str(), error.field.as_deref()),
                (400, "ValidationError", Some(field)),
                "{body}"
            );
        }
        // 00:59:59 rounds down to midnight and is accepted.
        let body =
            json!({ "startTime": "2024-07-01T00:59:59Z", "endTime": "2024-07-02T00:00:00.000Z" });
        assert!(aggregated_costs(&organisation, cluster, &body, true).is_ok());
    }

    #[test]
    fn namespace_filters_narrow_the_result() {
        let organisation = Organisation::generate(42, Scale::Small);
        let cluster = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .next()
            .unwrap();
        let body = json!({
            "startTime": "2024-07-01", "endTime": "2024-07-02", "groupBy": "namespace",
            "filter": { "scope": "namespace", "conditions": { "anyMatch": [ { "allMatch": [ { "type": "label", "key": "team", "operator": "exists" } ] } ] } },
        });
        let item = aggregated_item(aggregated_costs(&organisation, cluster, &body, false).unwrap());
        let keys: Vec<String> = item["result"]["totalForDuration"]["detailedCosts"]["aggregations"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let expected: std::collections::BTreeSet<String> = cluster
            .namespaces
            .iter()
            .filter(|namespace| namespace.labels.contains_key("team"))
            .map(|namespace| namespace.name.clone())
            .collect();
        assert_eq!(
            keys.into_iter().collect::<std::collections::BTreeSet<_>>(),
            expected
        );
    }

    #[test]
    fn rightsizing_shapes_use_their_casings() {
        let organisation = Organisation::generate(42, Scale::Small);
        let cluster = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .next()
            .unwrap();
        let today = NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
        let Payload::Items { items: v2, .. } =
            rightsizing_recommendations(&organisation, cluster, &json!({}), today).unwrap()
        else {
            panic!("expected items");
        };
        assert!(!v2.is_empty());
        assert!(v2[0]["containers"][0].get("requestedCPU").is_some());
        assert!(v2[0]["appliedAt"]
            .as_str()
            .unwrap()
            .starts_with("2024-07-01T"));
        assert_eq!(
            v2[0]["appliedAt"].as_str().unwrap().len(),
            "2026-04-24T04:55:22.043813".len()
        );
        let Payload::Items { items: v1, .. } =
            rightsizing_suggestions(&organisation, cluster, &json!({}), today).unwrap()
        else {
            panic!("expected items");
        };
        assert_eq!(v1.len(), v2.len());
        assert!(v1[0]["containers"][0].get("requestedCpu").is_some());
        assert!(v1[0].get("requestedCPU").is_some());
        let only_system = json!({ "filter": { "namespaces": ["kube-system"] } });
        let Payload::Items {
            items: filtered, ..
        } = rightsizing_suggestions(&organisation, cluster, &only_system, today).unwrap()
        else {
            panic!("expected items");
        };
        assert!(filtered
            .iter()
            .all(|item| item["namespace"] == "kube-system"));
        assert!(filtered.len() < v1.len());
    }
}

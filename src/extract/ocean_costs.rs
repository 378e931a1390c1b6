//! `ocean_costs`: daily Ocean cluster cost per namespace and workload, with headroom and unused
//! storage, from `POST …/aggregatedCosts` (one-day windows, `groupBy: namespace`), and the namespace
//! labels chargeback needs, from one `groupBy: namespace.label.<key>` call per configured key.

use super::columns::*;
use super::{for_each, ExtractContext, ExtractError, ForUnit, Unit};
use crate::spot::types::{CostResource, OceanCluster, TotalForDuration};
use crate::spot::SpotError;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per cluster × usage day × namespace × workload (`row_kind = 'workload'`), plus per cluster-day one `headroom` row (namespace null) and per namespace one `unused_storage` row, and an `unattributed` row where a namespace's total exceeds its resources.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        column("usage_date", DataType::Date32, false, "The UTC day the cost was incurred (also the `day=` partition)."),
        account_id_column(),
        column("cluster_id", DataType::Utf8, false, "Ocean cluster id (`o-…`)."),
        column("cluster_name", DataType::Utf8, true, "Ocean cluster name as listed on the run day."),
        column("cloud", DataType::Utf8, false, "Cloud of the account: `aws`, `gcp` or `azure`."),
        column("row_kind", DataType::Utf8, false, "`workload`, `headroom` (cluster-level spare capacity), `unused_storage` (a namespace's unmounted volumes) or `unattributed` (namespace cost Spot did not itemise)."),
        column("namespace", DataType::Utf8, true, "Kubernetes namespace; null on the `headroom` row."),
        column("workload_name", DataType::Utf8, true, "Workload name; null on non-workload rows."),
        column("workload_type", DataType::Utf8, true, "`Deployment`, `StatefulSet`, `DaemonSet`, `Job`, …, `UnusedStorage` or `Headroom`."),
        column("compute_cost_usd", DataType::Float64, false, "Compute cost, USD."),
        column("storage_cost_usd", DataType::Float64, false, "Storage cost (block and file), USD."),
        column("network_cost_usd", DataType::Float64, false, "Networking cost, USD (0 where the cloud reports none)."),
        column("total_cost_usd", DataType::Float64, false, "Total cost of the row, USD."),
        column("cluster_total_cost_usd", DataType::Float64, false, "The cluster-day total Spot reports, repeated on every row of the cluster-day; the rows' `total_cost_usd` add up to it."),
        column("namespace_labels", string_map_type(), true, "The namespace's labels among the configured keys (`namespace_labels['team']`)."),
    ]))
}

/// Below this a namespace's total and the sum of its resources are taken as equal.
const UNATTRIBUTED_EPSILON_USD: f64 = 0.000_001;

struct Row {
    cluster: usize,
    kind: &'static str,
    namespace: Option<String>,
    workload_name: Option<String>,
    workload_type: Option<String>,
    compute: f64,
    storage: f64,
    network: f64,
    total: f64,
    cluster_total: f64,
}

struct ClusterDay {
    costs: TotalForDuration,
    /// namespace → (label key → value)
    labels: BTreeMap<String, BTreeMap<String, String>>,
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let account = unit.account()?;
    let client = &context.client;
    let window = unit.window();
    let clusters = context.clusters(account).await.for_unit(unit)?;
    let label_keys = &context.namespace_label_keys;
    let days = for_each(&clusters, |cluster: &OceanCluster| async move {
        let costs = client
            .aggregated_costs(&account.id, account.cloud, &cluster.id, window, "namespace")
            .await?;
        let mut labels: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for key in label_keys {
            let values = client
                .namespace_labels(&account.id, account.cloud, &cluster.id, window, key)
                .await?;
            for (namespace, value) in values {
                labels
                    .entry(namespace)
                    .or_default()
                    .insert(key.clone(), value);
            }
        }
        Ok::<_, SpotError>(ClusterDay { costs, labels })
    })
    .await
    .for_unit(unit)?;

    let mut rows = Vec::new();
    for (index, day) in days.iter().enumerate() {
        rows.extend(cluster_rows(index, &day.costs));
    }
    let labels_of = |row: &Row| -> Vec<(&str, Option<&str>)> {
        row.namespace
            .as_ref()
            .and_then(|ns| days[row.cluster].labels.get(ns))
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                    .collect()
            })
            .unwrap_or_default()
    };
    RecordBatch::try_new(
        schema(),
        vec![
            date(rows.iter().map(|_| Some(unit.day))),
            text(rows.iter().map(|_| Some(account.id.as_str()))),
            text(rows.iter().map(|r| Some(clusters[r.cluster].id.as_str()))),
            text(rows.iter().map(|r| clusters[r.cluster].name.as_deref())),
            text(rows.iter().map(|_| Some(account.cloud.as_str()))),
            text(rows.iter().map(|r| Some(r.kind))),
            text(rows.iter().map(|r| r.namespace.as_deref())),
            text(rows.iter().map(|r| r.workload_name.as_deref())),
            text(rows.iter().map(|r| r.workload_type.as_deref())),
            float(rows.iter().map(|r| Some(r.compute))),
            float(rows.iter().map(|r| Some(r.storage))),
            float(rows.iter().map(|r| Some(r.network))),
            float(rows.iter().map(|r| Some(r.total))),
            float(rows.iter().map(|r| Some(r.cluster_total))),
            string_map(rows.iter().map(labels_of)),
        ],
    )
    .for_unit(unit)
}

fn resource_parts(resource: &CostResource) -> (f64, f64, f64, f64) {
    let compute = resource
        .compute
        .as_ref()
        .and_then(|c| c.total)
        .unwrap_or(0.0);
    let storage = resource
        .storage
        .as_ref()
        .and_then(|s| s.total)
        .unwrap_or(0.0);
    let network = resource
        .networking
        .as_ref()
        .and_then(|n| n.total_cost)
        .unwrap_or(0.0);
    let total = resource.total.unwrap_or(compute + storage + network);
    (compute, storage, network, total)
}

/// The rows of one cluster-day. Namespaces come from the aggregation keys (`groupBy: namespace`),
/// so the `UnusedStorage` pseudo-resource, which has no namespace of its own, lands in its group's.
fn cluster_rows(cluster: usize, costs: &TotalForDuration) -> Vec<Row> {
    let summary = costs.summary.clone().unwrap_or_default();
    let headroom = summary
        .compute
        .as_ref()
        .and_then(|c| c.headroom.as_ref())
        .and_then(|h| h.total)
        .unwrap_or(0.0);
    let cluster_total = summary.total.unwrap_or(0.0);
    let mut rows = vec![Row {
        cluster,
        kind: "headroom",
        namespace: None,
        workload_name: None,
        workload_type: Some("Headroom".into()),
        compute: headroom,
        storage: 0.0,
        network: 0.0,
        total: headroom,
        cluster_total,
    }];
    let aggregations = costs
        .detailed_costs
        .as_ref()
        .map(|d| &d.aggregations)
        .cloned()
        .unwrap_or_default();
    for (namespace, aggregation) in aggregations {
        let mut attributed = 0.0;
        for resource in &aggregation.resources {
            let metadata = resource.metadata.clone().unwrap_or_default();
            let (compute, storage, network, total) = resource_parts(resource);
            attributed += total;
            let is_unused_storage = metadata.resource_type.as_deref() == Some("UnusedStorage")
                || (metadata.namespace.is_none()
                    && metadata.name.as_deref() == Some("UnusedStorage"));
            rows.push(Row {
                cluster,
                kind: if is_unused_storage {
                    "unused_storage"
                } else {
                    "workload"
                },
                namespace: Some(
                    metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| namespace.clone()),
                ),
                workload_name: if is_unused_storage {
                    None
                } else {
                    metadata.name
                },
                workload_type: metadata.resource_type,
                compute,
                storage,
                network,
                total,
                cluster_total,
            });
        }
        let namespace_total = aggregation
            .summary
            .as_ref()
            .and_then(|s| s.total)
            .unwrap_or(attributed);
        let gap = namespace_total - attributed;
        if gap > UNATTRIBUTED_EPSILON_USD {
            rows.push(Row {
                cluster,
                kind: "unattributed",
                namespace: Some(namespace.clone()),
                workload_name: None,
                workload_type: None,
                compute: 0.0,
                storage: 0.0,
                network: 0.0,
                total: gap,
                cluster_total,
            });
        }
    }
    rows
}

//! `ocean_rightsizing`: Ocean right-sizing recommendations per workload and container, as of today
//! (`POST /ocean/{id}/rightSizing/recommendations`, or the v1 `…/rightSizing/suggestion`).

use super::columns::*;
use super::{for_each, ExtractContext, ExtractError, ForUnit, Unit};
use crate::spot::types::{RightsizingContainer, RightsizingItem};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per cluster × workload × container per snapshot day (one row with a null `container_name` for a workload that lists no containers).";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        snapshot_date_column(),
        account_id_column(),
        column("cluster_id", DataType::Utf8, false, "Ocean cluster id (`o-…`)."),
        column("api_version", DataType::Utf8, false, "`v2` (`/ocean/{id}/rightSizing/recommendations`) or `v1` (`…/rightSizing/suggestion`)."),
        column("namespace", DataType::Utf8, true, "Kubernetes namespace."),
        column("workload_name", DataType::Utf8, true, "Workload name."),
        column("workload_type", DataType::Utf8, true, "Workload kind as Spot reports it."),
        column("container_name", DataType::Utf8, true, "Container name; null when Spot lists no containers for the workload."),
        column("requested_cpu_millicores", DataType::Float64, true, "The container's CPU request, millicores."),
        column("suggested_cpu_millicores", DataType::Float64, true, "Spot's suggested CPU request for the container, millicores."),
        column("requested_memory_mib", DataType::Float64, true, "The container's memory request, MiB."),
        column("suggested_memory_mib", DataType::Float64, true, "Spot's suggested memory request for the container, MiB."),
        column("workload_requested_cpu_millicores", DataType::Float64, true, "The workload's CPU request, millicores."),
        column("workload_suggested_cpu_millicores", DataType::Float64, true, "Spot's suggested CPU for the workload, millicores."),
        column("workload_requested_memory_mib", DataType::Float64, true, "The workload's memory request, MiB."),
        column("workload_suggested_memory_mib", DataType::Float64, true, "Spot's suggested memory for the workload, MiB."),
        column("workload_monthly_savings_usd", DataType::Float64, true, "Spot's own monthly savings estimate for the whole workload, USD (v2 only; repeated on each container row, so do not sum it over containers)."),
        column("optimization_status", DataType::Utf8, true, "`NOT_OPTIMIZED`, `PARTLY_OPTIMIZED`, … (v2)."),
        column("applied_at", timestamp_type(), true, "When a recommendation was last applied (UTC; v2)."),
    ]))
}

struct Row<'a> {
    cluster_id: &'a str,
    api_version: &'static str,
    workload: &'a RightsizingItem,
    container: Option<&'a RightsizingContainer>,
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let account = unit.account()?;
    let client = &context.client;
    let clusters = context.clusters(account).await.for_unit(unit)?;
    let per_cluster = for_each(&clusters, |cluster| async move {
        client
            .rightsizing(&account.id, account.cloud, &cluster.id)
            .await
    })
    .await
    .for_unit(unit)?;
    let mut rows = Vec::new();
    for (cluster, rightsizing) in clusters.iter().zip(&per_cluster) {
        for workload in &rightsizing.items {
            let row = |container| Row {
                cluster_id: &cluster.id,
                api_version: rightsizing.api_version,
                workload,
                container,
            };
            if workload.containers.is_empty() {
                rows.push(row(None));
            } else {
                rows.extend(workload.containers.iter().map(|c| row(Some(c))));
            }
        }
    }
    let container =
        |r: &Row, pick: fn(&RightsizingContainer) -> Option<f64>| r.container.and_then(pick);
    RecordBatch::try_new(
        schema(),
        vec![
            date(rows.iter().map(|_| Some(unit.day))),
            text(rows.iter().map(|_| Some(account.id.as_str()))),
            text(rows.iter().map(|r| Some(r.cluster_id))),
            text(rows.iter().map(|r| Some(r.api_version))),
            text(rows.iter().map(|r| r.workload.namespace.as_deref())),
            text(rows.iter().map(|r| r.workload.workload_name.as_deref())),
            text(rows.iter().map(|r| r.workload.workload_type.as_deref())),
            text(
                rows.iter()
                    .map(|r| r.container.and_then(|c| c.name.as_deref())),
            ),
            float(rows.iter().map(|r| container(r, |c| c.requested_cpu))),
            float(rows.iter().map(|r| container(r, |c| c.suggested_cpu))),
            float(rows.iter().map(|r| container(r, |c| c.requested_memory))),
            float(rows.iter().map(|r| container(r, |c| c.suggested_memory))),
            float(rows.iter().map(|r| r.workload.requested_cpu)),
            float(rows.iter().map(|r| r.workload.suggested_cpu)),
            float(rows.iter().map(|r| r.workload.requested_memory)),
            float(rows.iter().map(|r| r.workload.suggested_memory)),
            float(rows.iter().map(|r| r.workload.monthly_max_savings)),
            text(
                rows.iter()
                    .map(|r| r.workload.optimization_status.as_deref()),
            ),
            timestamp(rows.iter().map(|r| r.workload.applied_at)),
        ],
    )
    .for_unit(unit)
}

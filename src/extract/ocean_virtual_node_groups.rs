//! `ocean_virtual_node_groups`: each Ocean cluster's virtual node groups (launch specifications), as
//! listed today. They tie the node groups that audit events and the instance-cost export name
//! (`ols-…`) to their cluster.

use super::columns::*;
use super::{for_each, ExtractContext, ExtractError, ForUnit, Unit};
use crate::spot::types::{OceanCluster, OceanVirtualNodeGroup};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per Ocean virtual node group per snapshot day (none for a cluster whose API has no listing).";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        snapshot_date_column(),
        account_id_column(),
        column(
            "cluster_id",
            DataType::Utf8,
            false,
            "The Ocean cluster (`o-…`) the group belongs to: the one whose listing holds it (a listed group that names another cluster is left out).",
        ),
        column(
            "node_group_id",
            DataType::Utf8,
            false,
            "Virtual node group id (`ols-…`; Azure: `vng-…`).",
        ),
        column(
            "node_group_name",
            DataType::Utf8,
            true,
            "Virtual node group name.",
        ),
        column(
            "cloud",
            DataType::Utf8,
            false,
            "Cloud of the account: `aws`, `gcp` or `azure`.",
        ),
        created_at_column(),
        updated_at_column(),
    ]))
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
            .virtual_node_groups(&account.id, account.cloud, &cluster.id)
            .await
    })
    .await
    .for_unit(unit)?;
    let rows: Vec<(&OceanCluster, &OceanVirtualNodeGroup)> = clusters
        .iter()
        .zip(&per_cluster)
        .flat_map(|(cluster, groups)| {
            // A group that names another cluster is that cluster's (an answer that ignored
            // `oceanId` would otherwise tie every group to every cluster).
            groups
                .iter()
                .filter(|group| group.ocean_id.as_deref().is_none_or(|id| id == cluster.id))
                .map(move |group| (cluster, group))
        })
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            date(rows.iter().map(|_| Some(unit.day))),
            text(rows.iter().map(|_| Some(account.id.as_str()))),
            text(rows.iter().map(|(cluster, _)| Some(cluster.id.as_str()))),
            text(rows.iter().map(|(_, group)| Some(group.id.as_str()))),
            text(rows.iter().map(|(_, group)| group.name.as_deref())),
            text(rows.iter().map(|_| Some(account.cloud.as_str()))),
            timestamp(rows.iter().map(|(_, group)| group.created_at)),
            timestamp(rows.iter().map(|(_, group)| group.updated_at)),
        ],
    )
    .for_unit(unit)
}

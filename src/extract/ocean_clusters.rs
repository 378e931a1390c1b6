//! `ocean_clusters`: the Ocean Kubernetes clusters (EKS, GKE, AKS) of each account, as listed today.

use super::columns::*;
use super::{ExtractContext, ExtractError, ForUnit, Unit};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per Ocean cluster per snapshot day.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        snapshot_date_column(),
        account_id_column(),
        column(
            "cluster_id",
            DataType::Utf8,
            false,
            "Ocean cluster id (`o-…`).",
        ),
        column("cluster_name", DataType::Utf8, true, "Ocean cluster name."),
        column(
            "cloud",
            DataType::Utf8,
            false,
            "Cloud of the account: `aws`, `gcp` or `azure`.",
        ),
        column(
            "controller_cluster_id",
            DataType::Utf8,
            true,
            "The Ocean controller's cluster identifier.",
        ),
        column(
            "region",
            DataType::Utf8,
            true,
            "Region (GKE: master location).",
        ),
        column(
            "kubernetes_cluster_name",
            DataType::Utf8,
            true,
            "The GKE or AKS cluster name (null for EKS).",
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
    let clusters = context.clusters(account).await.for_unit(unit)?;
    let regions: Vec<Option<&str>> = clusters
        .iter()
        .map(|c| {
            c.region
                .as_deref()
                .or(c.aks.as_ref().and_then(|a| a.region.as_deref()))
                .or(c.gke.as_ref().and_then(|g| g.master_location.as_deref()))
        })
        .collect();
    let k8s_names: Vec<Option<&str>> = clusters
        .iter()
        .map(|c| {
            c.gke
                .as_ref()
                .and_then(|g| g.cluster_name.as_deref())
                .or(c.aks.as_ref().and_then(|a| a.cluster_name.as_deref()))
        })
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            date(clusters.iter().map(|_| Some(unit.day))),
            text(clusters.iter().map(|_| Some(account.id.as_str()))),
            text(clusters.iter().map(|c| Some(c.id.as_str()))),
            text(clusters.iter().map(|c| c.name.as_deref())),
            text(clusters.iter().map(|_| Some(account.cloud.as_str()))),
            text(clusters.iter().map(|c| c.controller_cluster_id.as_deref())),
            text(regions),
            text(k8s_names),
            timestamp(clusters.iter().map(|c| c.created_at)),
            timestamp(clusters.iter().map(|c| c.updated_at)),
        ],
    )
    .for_unit(unit)
}

//! `elastigroups`: the Elastigroups (AWS and GCP) and EMR scalers of each account, as listed today.

use super::columns::*;
use super::{ExtractContext, ExtractError, ForUnit, Unit};
use crate::spot::types::Tag;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per group (or EMR scaler) per snapshot day.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        snapshot_date_column(),
        account_id_column(),
        column(
            "group_id",
            DataType::Utf8,
            false,
            "Elastigroup id (`sig-…`) or EMR scaler id (`simrs-…`).",
        ),
        column("group_name", DataType::Utf8, true, "Group name."),
        column(
            "cloud",
            DataType::Utf8,
            false,
            "Cloud of the account: `aws`, `gcp` or `azure`.",
        ),
        column(
            "product",
            DataType::Utf8,
            false,
            "`elastigroup` or `emr_scaler`.",
        ),
        column("region", DataType::Utf8, true, "Cloud region."),
        column(
            "capacity_minimum",
            DataType::Int64,
            true,
            "Minimum capacity (instances or weight units, see `capacity_unit`).",
        ),
        column(
            "capacity_maximum",
            DataType::Int64,
            true,
            "Maximum capacity.",
        ),
        column("capacity_target", DataType::Int64, true, "Target capacity."),
        column(
            "capacity_unit",
            DataType::Utf8,
            true,
            "`instance` or `weight`.",
        ),
        column(
            "spot_percentage",
            DataType::Float64,
            true,
            "Share of capacity run on spot, 0–100 (Spot's `strategy.risk`).",
        ),
        column(
            "on_demand_count",
            DataType::Int64,
            true,
            "Fixed number of on-demand instances, when set instead of a percentage.",
        ),
        column(
            "on_demand_instance_type",
            DataType::Utf8,
            true,
            "Instance type used for on-demand capacity.",
        ),
        column(
            "spot_instance_types",
            DataType::Utf8,
            true,
            "Spot instance types, comma-separated.",
        ),
        column(
            "tags",
            string_map_type(),
            true,
            "Launch-specification tags (AWS) or labels (GCP) as a map (`tags['team']`).",
        ),
        created_at_column(),
        updated_at_column(),
    ]))
}

struct Row {
    group_id: String,
    name: Option<String>,
    product: &'static str,
    region: Option<String>,
    capacity: [Option<i64>; 3],
    capacity_unit: Option<String>,
    spot_percentage: Option<f64>,
    on_demand_count: Option<i64>,
    on_demand_type: Option<String>,
    spot_types: Option<String>,
    tags: Vec<(String, Option<String>)>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

pub(crate) fn tag_pairs(tags: Option<&Vec<Tag>>) -> Vec<(String, Option<String>)> {
    tags.into_iter()
        .flatten()
        .filter_map(|tag| Some((tag.tag_key.clone()?, tag.tag_value.clone())))
        .collect()
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let account = unit.account()?;
    let groups = context.groups(account).await.for_unit(unit)?;
    let scalers = context.emr_scalers(account).await.for_unit(unit)?;
    let mut rows: Vec<Row> = groups
        .iter()
        .map(|group| {
            let capacity = group.capacity.clone().unwrap_or_default();
            let strategy = group.strategy.clone().unwrap_or_default();
            let compute = group.compute.clone().unwrap_or_default();
            let types = compute.instance_types.clone().unwrap_or_default();
            Row {
                group_id: group.id.clone(),
                name: group.name.clone(),
                product: "elastigroup",
                region: group.region.clone(),
                capacity: [
                    whole(capacity.minimum),
                    whole(capacity.maximum),
                    whole(capacity.target),
                ],
                capacity_unit: capacity.unit,
                spot_percentage: strategy.risk,
                on_demand_count: whole(strategy.on_demand_count),
                on_demand_type: types.ondemand,
                spot_types: types.spot.map(|t| t.join(",")),
                // AWS tags, GCP labels.
                tags: compute
                    .launch_specification
                    .as_ref()
                    .map(|l| {
                        let mut pairs = tag_pairs(l.tags.as_ref());
                        pairs.extend(tag_pairs(l.labels.as_ref()));
                        pairs
                    })
                    .unwrap_or_default(),
                created_at: group.created_at,
                updated_at: group.updated_at,
            }
        })
        .collect();
    rows.extend(scalers.iter().map(|scaler| Row {
        group_id: scaler.id.clone(),
        name: scaler.name.clone(),
        product: "emr_scaler",
        region: scaler.region.clone(),
        capacity: [None; 3],
        capacity_unit: None,
        spot_percentage: None,
        on_demand_count: None,
        on_demand_type: None,
        spot_types: None,
        tags: Vec::new(),
        created_at: scaler.created_at,
        updated_at: scaler.updated_at,
    }));
    RecordBatch::try_new(
        schema(),
        vec![
            date(rows.iter().map(|_| Some(unit.day))),
            text(rows.iter().map(|_| Some(account.id.as_str()))),
            text(rows.iter().map(|r| Some(r.group_id.as_str()))),
            text(rows.iter().map(|r| r.name.as_deref())),
            text(rows.iter().map(|_| Some(account.cloud.as_str()))),
            text(rows.iter().map(|r| Some(r.product))),
            text(rows.iter().map(|r| r.region.as_deref())),
            int(rows.iter().map(|r| r.capacity[0])),
            int(rows.iter().map(|r| r.capacity[1])),
            int(rows.iter().map(|r| r.capacity[2])),
            text(rows.iter().map(|r| r.capacity_unit.as_deref())),
            float(rows.iter().map(|r| r.spot_percentage)),
            int(rows.iter().map(|r| r.on_demand_count)),
            text(rows.iter().map(|r| r.on_demand_type.as_deref())),
            text(rows.iter().map(|r| r.spot_types.as_deref())),
            string_map(
                rows.iter()
                    .map(|r| r.tags.iter().map(|(k, v)| (k.as_str(), v.as_deref()))),
            ),
            timestamp(rows.iter().map(|r| r.created_at)),
            timestamp(rows.iter().map(|r| r.updated_at)),
        ],
    )
    .for_unit(unit)
}

//! `potential_savings`: what Spot estimates each AWS account could still save per resource
//! (`GET /aws/potentialSavings`), as of today.

use super::columns::*;
use super::{ExtractContext, ExtractError, ForUnit, Unit};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per resource per snapshot day.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        snapshot_date_column(),
        account_id_column(),
        column(
            "resource_type",
            DataType::Utf8,
            true,
            "`Auto Scaling Group`, `Elastic Load Balancer`, `EC2Instance`, …",
        ),
        column(
            "resource_name",
            DataType::Utf8,
            true,
            "Resource name (an instance id for `EC2Instance`).",
        ),
        column("region", DataType::Utf8, true, "Cloud region."),
        column(
            "instance_count",
            DataType::Int64,
            true,
            "Instances in the resource.",
        ),
        column(
            "instance_types",
            DataType::Utf8,
            true,
            "Instance types, comma-separated.",
        ),
        column(
            "monthly_savings_usd",
            DataType::Float64,
            true,
            "Spot's estimate of what moving the resource to Spot would save per month, USD.",
        ),
    ]))
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let account = unit.account()?;
    let items = context
        .client
        .potential_savings(&account.id, account.cloud)
        .await
        .for_unit(unit)?;
    let types: Vec<Option<String>> = items
        .iter()
        .map(|i| i.instance_types.as_ref().map(|t| t.join(",")))
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            date(items.iter().map(|_| Some(unit.day))),
            text(items.iter().map(|_| Some(account.id.as_str()))),
            text(items.iter().map(|i| i.resource_type.as_deref())),
            text(items.iter().map(|i| i.name.as_deref())),
            text(items.iter().map(|i| i.region.as_deref())),
            int(items.iter().map(|i| whole(i.instances))),
            text(types.iter().map(|t| t.as_deref())),
            float(items.iter().map(|i| i.potential_savings)),
        ],
    )
    .for_unit(unit)
}

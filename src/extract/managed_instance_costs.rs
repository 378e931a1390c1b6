//! `managed_instance_costs`: daily cost of every Managed Instance (`/aws/ec2/managedInstance/{id}/costs`).

use super::columns::*;
use super::{for_each, ExtractContext, ExtractError, ForUnit, Unit};
use crate::spot::SpotError;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per managed instance per usage day.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        column(
            "usage_date",
            DataType::Date32,
            false,
            "The UTC day the cost was incurred (also the `day=` partition).",
        ),
        account_id_column(),
        column(
            "managed_instance_id",
            DataType::Utf8,
            false,
            "Managed instance id (`smi-…`).",
        ),
        column(
            "managed_instance_name",
            DataType::Utf8,
            true,
            "Managed instance name as listed on the run day.",
        ),
        column(
            "running_hours",
            DataType::Float64,
            false,
            "Instance hours run in the day.",
        ),
        column(
            "actual_cost_usd",
            DataType::Float64,
            false,
            "What was actually paid, USD.",
        ),
        column(
            "potential_cost_usd",
            DataType::Float64,
            false,
            "On-demand equivalent cost (what the same usage would cost on demand), USD.",
        ),
    ]))
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let account = unit.account()?;
    let client = &context.client;
    let window = unit.window();
    let instances = context.managed_instances(account).await.for_unit(unit)?;
    let sums = for_each(&instances, |instance| async move {
        let items = client
            .managed_instance_costs(&account.id, &instance.id, window)
            .await?;
        Ok::<_, SpotError>(items.iter().fold((0.0, 0.0, 0.0), |(h, a, p), item| {
            (
                h + item.running_hours(),
                a + item.actual(),
                p + item.potential(),
            )
        }))
    })
    .await
    .for_unit(unit)?;
    RecordBatch::try_new(
        schema(),
        vec![
            date(instances.iter().map(|_| Some(unit.day))),
            text(instances.iter().map(|_| Some(account.id.as_str()))),
            text(instances.iter().map(|i| Some(i.id.as_str()))),
            text(instances.iter().map(|i| i.name.as_deref())),
            float(sums.iter().map(|s| Some(s.0))),
            float(sums.iter().map(|s| Some(s.1))),
            float(sums.iter().map(|s| Some(s.2))),
        ],
    )
    .for_unit(unit)
}

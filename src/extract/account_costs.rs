//! `account_costs`: each account's daily cost as Spot totals it (`/aws/costs`, `/gcp/gce/costs`,
//! `/azure/costs`), the figure chargeback per account reconciles against.

use super::columns::*;
use super::{ExtractContext, ExtractError, ForUnit, Unit};
use crate::spot::types::Cloud;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per account per usage day.";

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
            "cloud",
            DataType::Utf8,
            false,
            "Cloud of the account: `aws`, `gcp` or `azure`.",
        ),
        column(
            "cost_block",
            DataType::Utf8,
            false,
            "The block Spot reported: `spot` (AWS), `preemptible` (GCP) or `lowPriority` (Azure).",
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
        column(
            "savings_percent",
            DataType::Float64,
            true,
            "Savings against on-demand as Spot reports it, 0–100.",
        ),
    ]))
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let account = unit.account()?;
    let blocks = context
        .client
        .account_costs(&account.id, account.cloud, unit.window())
        .await
        .for_unit(unit)?;
    let sum = |pick: fn(&crate::spot::types::LifecycleCosts) -> Option<f64>| -> f64 {
        blocks.iter().filter_map(pick).sum()
    };
    let (hours, actual, potential) = (
        sum(|b| b.running_hours),
        sum(|b| b.actual_costs),
        sum(|b| b.potential_costs),
    );
    let savings_percent = match blocks.as_slice() {
        [only] => only.savings_percentage,
        // A tiny potential can make the ratio overflow: no figure rather than an infinity.
        _ if potential > 0.0 => Some((1.0 - actual / potential) * 100.0).filter(|p| p.is_finite()),
        _ => None,
    };
    let cost_block = match account.cloud {
        Cloud::Aws => "spot",
        Cloud::Gcp => "preemptible",
        Cloud::Azure => "lowPriority",
        Cloud::Unknown => {
            return Err(unit.error(
                crate::spot::SpotError::UnknownCloud {
                    account: account.id.clone(),
                    what: "account costs",
                }
                .into(),
            ))
        }
    };
    RecordBatch::try_new(
        schema(),
        vec![
            date([Some(unit.day)]),
            text([Some(account.id.as_str())]),
            text([Some(account.cloud.as_str())]),
            text([Some(cost_block)]),
            float([Some(hours)]),
            float([Some(actual)]),
            float([Some(potential)]),
            float([savings_percent]),
        ],
    )
    .for_unit(unit)
}

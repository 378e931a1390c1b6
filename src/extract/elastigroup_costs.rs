//! `elastigroup_costs`: daily cost of every Elastigroup (AWS: `/costs/detailed`, every lifecycle per
//! instance, one request per group and day; GCP: `/gcp/gce/group/{id}/costs`) and EMR scaler.

use super::columns::*;
use super::{for_each, ExtractContext, ExtractError, ForUnit, Unit};
use crate::spot::types::{Cloud, CostItem};
use crate::spot::SpotError;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per group (or EMR scaler) per usage day.";

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
            "product",
            DataType::Utf8,
            false,
            "`elastigroup` or `emr_scaler`.",
        ),
        column(
            "group_id",
            DataType::Utf8,
            false,
            "Elastigroup id (`sig-…`) or EMR scaler id (`simrs-…`).",
        ),
        column(
            "group_name",
            DataType::Utf8,
            true,
            "Group name as listed on the run day.",
        ),
        column(
            "running_hours",
            DataType::Float64,
            false,
            "Instance hours run in the day, every lifecycle.",
        ),
        column(
            "actual_cost_usd",
            DataType::Float64,
            false,
            "Paid in the day, every lifecycle, USD.",
        ),
        column(
            "potential_cost_usd",
            DataType::Float64,
            false,
            "On-demand equivalent cost (what the same usage would cost on demand), USD.",
        ),
        column(
            "spot_running_hours",
            DataType::Float64,
            true,
            "Spot instance hours (AWS Elastigroups; null elsewhere).",
        ),
        column(
            "spot_actual_cost_usd",
            DataType::Float64,
            true,
            "Paid for spot instances (those with a spot request), USD (AWS Elastigroups; null elsewhere).",
        ),
        column(
            "spot_potential_cost_usd",
            DataType::Float64,
            true,
            "On-demand equivalent of the spot instances, USD (AWS Elastigroups).",
        ),
        column(
            "on_demand_running_hours",
            DataType::Float64,
            true,
            "On-demand instance hours (AWS Elastigroups).",
        ),
        column(
            "on_demand_actual_cost_usd",
            DataType::Float64,
            true,
            "Paid for on-demand instances, USD (AWS Elastigroups).",
        ),
        column(
            "instance_count",
            DataType::Int64,
            true,
            "Distinct instances that ran in the day (AWS Elastigroups).",
        ),
    ]))
}

#[derive(Default)]
struct Sums {
    running_hours: f64,
    actual: f64,
    potential: f64,
}

impl Sums {
    fn of<'a>(items: impl IntoIterator<Item = &'a CostItem>) -> Sums {
        items.into_iter().fold(Sums::default(), |mut sums, item| {
            sums.running_hours += item.running_hours();
            sums.actual += item.actual();
            sums.potential += item.potential();
            sums
        })
    }
}

struct Row {
    product: &'static str,
    group_id: String,
    group_name: Option<String>,
    total: Sums,
    spot: Option<Sums>,
    on_demand: Option<Sums>,
    instance_count: Option<i64>,
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let account = unit.account()?;
    let client = &context.client;
    let window = unit.window();
    let groups = context.groups(account).await.for_unit(unit)?;
    let scalers = context.emr_scalers(account).await.for_unit(unit)?;
    let mut rows = for_each(&groups, |group| async move {
        let row = match account.cloud {
            Cloud::Aws => {
                // The detailed route has every lifecycle per instance; the spot share is its
                // instances with a spot request, so `/costs` (spot only) would be a second
                // request per group and day for nothing the detailed one lacks.
                let detailed = client
                    .group_detailed_costs(&account.id, &group.id, window)
                    .await?;
                let instances: BTreeSet<&str> = detailed
                    .iter()
                    .filter_map(|i| i.instance_id.as_deref())
                    .collect();
                Row {
                    product: "elastigroup",
                    group_id: group.id.clone(),
                    group_name: group.name.clone(),
                    total: Sums::of(&detailed),
                    spot: Some(Sums::of(
                        detailed
                            .iter()
                            .filter(|i| i.spot_instance_request_id.is_some()),
                    )),
                    on_demand: Some(Sums::of(
                        detailed
                            .iter()
                            .filter(|i| i.spot_instance_request_id.is_none()),
                    )),
                    instance_count: Some(instances.len() as i64),
                }
            }
            Cloud::Unknown => {
                return Err(SpotError::UnknownCloud {
                    account: account.id.clone(),
                    what: "Elastigroup costs",
                })
            }
            Cloud::Gcp | Cloud::Azure => Row {
                product: "elastigroup",
                group_id: group.id.clone(),
                group_name: group.name.clone(),
                total: Sums::of(
                    &client
                        .gcp_group_costs(&account.id, &group.id, window)
                        .await?,
                ),
                spot: None,
                on_demand: None,
                instance_count: None,
            },
        };
        Ok::<Row, SpotError>(row)
    })
    .await
    .for_unit(unit)?;
    rows.extend(
        for_each(&scalers, |scaler| async move {
            let items = client
                .emr_scaler_costs(&account.id, &scaler.id, window)
                .await?;
            Ok::<Row, SpotError>(Row {
                product: "emr_scaler",
                group_id: scaler.id.clone(),
                group_name: scaler.name.clone(),
                total: Sums::of(&items),
                spot: None,
                on_demand: None,
                instance_count: None,
            })
        })
        .await
        .for_unit(unit)?,
    );
    RecordBatch::try_new(
        schema(),
        vec![
            date(rows.iter().map(|_| Some(unit.day))),
            text(rows.iter().map(|_| Some(account.id.as_str()))),
            text(rows.iter().map(|_| Some(account.cloud.as_str()))),
            text(rows.iter().map(|r| Some(r.product))),
            text(rows.iter().map(|r| Some(r.group_id.as_str()))),
            text(rows.iter().map(|r| r.group_name.as_deref())),
            float(rows.iter().map(|r| Some(r.total.running_hours))),
            float(rows.iter().map(|r| Some(r.total.actual))),
            float(rows.iter().map(|r| Some(r.total.potential))),
            float(
                rows.iter()
                    .map(|r| r.spot.as_ref().map(|s| s.running_hours)),
            ),
            float(rows.iter().map(|r| r.spot.as_ref().map(|s| s.actual))),
            float(rows.iter().map(|r| r.spot.as_ref().map(|s| s.potential))),
            float(
                rows.iter()
                    .map(|r| r.on_demand.as_ref().map(|s| s.running_hours)),
            ),
            float(rows.iter().map(|r| r.on_demand.as_ref().map(|s| s.actual))),
            int(rows.iter().map(|r| r.instance_count)),
        ],
    )
    .for_unit(unit)
}

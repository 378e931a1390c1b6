//! `managed_instances`: the Managed Instances (stateful nodes) of each AWS account, as listed today.

use super::columns::*;
use super::elastigroups::tag_pairs;
use super::{ExtractContext, ExtractError, ForUnit, Unit};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per managed instance per snapshot day.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        snapshot_date_column(),
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
            "Managed instance name.",
        ),
        column("region", DataType::Utf8, true, "Cloud region."),
        column("lifecycle", DataType::Utf8, true, "`spot` or `on_demand`."),
        column(
            "orientation",
            DataType::Utf8,
            true,
            "Spot's placement orientation (e.g. `balanced`, `cost`).",
        ),
        column(
            "product",
            DataType::Utf8,
            true,
            "Operating system product, e.g. `Linux/UNIX`.",
        ),
        column(
            "instance_types",
            DataType::Utf8,
            true,
            "Allowed instance types, comma-separated.",
        ),
        column(
            "preferred_instance_type",
            DataType::Utf8,
            true,
            "Preferred instance type.",
        ),
        column(
            "tags",
            string_map_type(),
            true,
            "Launch-specification tags as a map (`tags['team']`).",
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
    let instances = context.managed_instances(account).await.for_unit(unit)?;
    let strategies: Vec<_> = instances
        .iter()
        .map(|i| i.strategy.clone().unwrap_or_default())
        .collect();
    let computes: Vec<_> = instances
        .iter()
        .map(|i| i.compute.clone().unwrap_or_default())
        .collect();
    let launch: Vec<_> = computes
        .iter()
        .map(|c| c.launch_specification.clone().unwrap_or_default())
        .collect();
    let types: Vec<_> = launch
        .iter()
        .map(|l| l.instance_types.clone().unwrap_or_default())
        .collect();
    let tags: Vec<_> = launch.iter().map(|l| tag_pairs(l.tags.as_ref())).collect();
    let joined: Vec<Option<String>> = types
        .iter()
        .map(|t| t.types.as_ref().map(|t| t.join(",")))
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            date(instances.iter().map(|_| Some(unit.day))),
            text(instances.iter().map(|_| Some(account.id.as_str()))),
            text(instances.iter().map(|i| Some(i.id.as_str()))),
            text(instances.iter().map(|i| i.name.as_deref())),
            text(instances.iter().map(|i| i.region.as_deref())),
            text(strategies.iter().map(|s| s.life_cycle.as_deref())),
            text(strategies.iter().map(|s| s.orientation.as_deref())),
            text(computes.iter().map(|c| c.product.as_deref())),
            text(joined.iter().map(|t| t.as_deref())),
            text(types.iter().map(|t| t.preferred_type.as_deref())),
            string_map(
                tags.iter()
                    .map(|t| t.iter().map(|(k, v)| (k.as_str(), v.as_deref()))),
            ),
            timestamp(instances.iter().map(|i| i.created_at)),
            timestamp(instances.iter().map(|i| i.updated_at)),
        ],
    )
    .for_unit(unit)
}

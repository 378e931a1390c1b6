//! `instance_costs`: the organisation instance-cost CSV (`POST /insights/instanceCosts/export`), one
//! account and day per export, streamed into Parquet batch by batch so memory stays bounded.

use super::columns::*;
use super::{ExtractContext, ExtractError, ForUnit, Unit};
use crate::lake::{LakeError, PartitionWriter, WrittenFile};
use crate::spot::types::InstanceCostRow;
use crate::spot::{InstanceCostBatch, InstanceCostSink};
use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per instance per usage day (the export is asked for one day at a time, so each row is the instance's cost within that day).";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        column("usage_date", DataType::Date32, false, "The UTC day the cost was incurred (also the `day=` partition)."),
        account_id_column(),
        column("account_name", DataType::Utf8, true, "Account name."),
        column("export_row_id", DataType::Utf8, true, "Row id of the export (not stable across exports)."),
        column("resource_id", DataType::Utf8, true, "The Elastigroup, EMR scaler, managed instance or Ocean virtual node group the instance belongs to."),
        column("cloud_provider", DataType::Utf8, true, "`AWS`, `GCP` or `Azure`."),
        column("instance_id", DataType::Utf8, true, "Cloud instance id."),
        column("instance_type", DataType::Utf8, true, "Instance type."),
        column("region", DataType::Utf8, true, "Cloud region."),
        column("use_case", DataType::Utf8, true, "Spot's use case, e.g. `K8S`, `Load Balancing`."),
        column("lifecycle", DataType::Utf8, true, "`EXCESS` (spot/preemptible) or on-demand as Spot spells it."),
        column("product", DataType::Utf8, true, "Operating system product, e.g. `LINUX`."),
        column("launched_at", timestamp_type(), true, "Instance launch time (UTC)."),
        column("terminated_at", timestamp_type(), true, "Instance termination time (UTC); null while it runs."),
        column("running_hours", DataType::Float64, true, "Hours the instance ran within the day."),
        column("on_demand_hourly_price_usd", DataType::Float64, true, "On-demand hourly price of the instance type, USD."),
        column("on_demand_cost_usd", DataType::Float64, true, "On-demand equivalent cost within the day, USD."),
        column("actual_cost_usd", DataType::Float64, true, "Paid within the day, USD."),
        column("savings_usd", DataType::Float64, true, "On-demand equivalent minus paid, USD."),
        column("reservation_id", DataType::Utf8, true, "Reservation or savings plan applied, if any."),
    ]))
}

/// Writes each batch of CSV rows straight into the partition's temporary file; a retried download
/// starts a fresh file. Rows that name another account are left out: the partition is this
/// account's, and the other account's rows land from its own export (an API that ignored
/// `accountIds` would otherwise put every account's costs into every account's file).
struct ParquetSink {
    open: Box<dyn Fn() -> Result<PartitionWriter, LakeError> + Send>,
    writer: Option<PartitionWriter>,
    day: chrono::NaiveDate,
    account_id: String,
    /// Rows of other accounts left out of the current attempt.
    foreign_rows: u64,
}

impl InstanceCostSink for ParquetSink {
    fn restart(&mut self) -> Result<(), String> {
        self.writer = None; // dropping an uncommitted writer removes its temporary file
        self.foreign_rows = 0;
        self.writer = Some((self.open)().map_err(|e| e.to_string())?);
        Ok(())
    }

    fn write(&mut self, rows: Vec<InstanceCostRow>) -> Result<(), String> {
        self.write_batch(InstanceCostBatch::from_rows(&rows))
    }

    fn write_batch(&mut self, batch: InstanceCostBatch) -> Result<(), String> {
        let (batch, foreign) =
            to_batch(self.day, &self.account_id, batch).map_err(|e| e.to_string())?;
        self.foreign_rows += foreign;
        let writer = self.writer.as_mut().ok_or("the sink was not started")?;
        writer.write(&batch).map_err(|e| e.to_string())
    }
}

/// The lake's batch of `export`'s rows of `account_id`, and how many rows of other accounts were
/// left out. A row without an account id is the account's.
fn to_batch(
    day: chrono::NaiveDate,
    account_id: &str,
    export: InstanceCostBatch,
) -> Result<(RecordBatch, u64), arrow::error::ArrowError> {
    let own: BooleanArray = export
        .account_id
        .iter()
        .map(|id| Some(id.is_none_or(|id| id == account_id || id.trim() == account_id.trim())))
        .collect();
    let foreign = own.false_count() as u64;
    let rows = export.len() - foreign as usize;
    let columns: Vec<ArrayRef> = vec![
        date(std::iter::repeat_n(Some(day), rows)),
        // The file is this account's export (rows naming another account were left out):
        // every row carries the account id exactly as it was asked for.
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            account_id, rows,
        ))),
        Arc::new(export.account_name),
        Arc::new(export.id),
        Arc::new(export.resource_id),
        Arc::new(export.cloud_provider),
        Arc::new(export.instance_id),
        Arc::new(export.instance_type),
        Arc::new(export.region),
        Arc::new(export.use_case),
        Arc::new(export.life_cycle),
        Arc::new(export.product),
        Arc::new(export.launch_time),
        Arc::new(export.termination_time),
        Arc::new(export.running_hours),
        Arc::new(export.od_hourly_price),
        Arc::new(export.od_cost),
        Arc::new(export.actual_cost),
        Arc::new(export.savings),
        Arc::new(export.reservation_id),
    ];
    let columns = if foreign == 0 {
        columns
    } else {
        columns
            .into_iter()
            .enumerate()
            .map(|(index, column)| match index {
                // The two columns built above already hold only the kept rows.
                0 | 1 => Ok(column),
                _ => arrow::compute::filter(&column, &own),
            })
            .collect::<Result<_, _>>()?
    };
    Ok((RecordBatch::try_new(schema(), columns)?, foreign))
}

pub(super) async fn land(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<WrittenFile, ExtractError> {
    let account = unit.account()?;
    let lake = context.lake.clone();
    let (dataset, day, scope) = (unit.dataset.name(), unit.day, account.id.clone());
    let sink = ParquetSink {
        open: Box::new(move || lake.partition_writer(dataset, day, &scope, &schema())),
        writer: None,
        day,
        account_id: account.id.clone(),
        foreign_rows: 0,
    };
    let mut sink = context
        .client
        .export_instance_costs(&account.id, unit.window(), sink)
        .await
        .for_unit(unit)?;
    if sink.foreign_rows > 0 {
        tracing::warn!(
            account = %account.id,
            rows = sink.foreign_rows,
            "the instance-cost export of account {:?} held {} row(s) of other accounts; they were left out of its partition",
            account.id,
            sink.foreign_rows
        );
    }
    let writer = sink.writer.take().ok_or_else(|| {
        unit.error(super::ExtractFailure::Spot(crate::spot::SpotError::Client(
            "the export finished without opening its partition".into(),
        )))
    })?;
    // Committing fsyncs and renames: blocking work, kept off the async threads.
    tokio::task::spawn_blocking(move || writer.commit())
        .await
        .map_err(|e| {
            unit.error(super::ExtractFailure::Spot(crate::spot::SpotError::Client(
                e.to_string(),
            )))
        })?
        .for_unit(unit)
}

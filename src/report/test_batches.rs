//! Tiny hand-built Arrow batches and definitions for the report tests.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Field, Schema};
use chrono::{DateTime, NaiveDate, Utc};

use super::{ColumnFormat, ColumnSpec, ReportContext, ReportDefinition};

pub(crate) enum ColumnValues {
    Text(Vec<Option<&'static str>>),
    Float(Vec<Option<f64>>),
    Int64(Vec<Option<i64>>),
    Int32(Vec<Option<i32>>),
    Date(Vec<Option<NaiveDate>>),
    TimestampMicros(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
}

pub(crate) fn batch(columns: Vec<(&str, ColumnValues)>) -> RecordBatch {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (name, values) in columns {
        let array: ArrayRef = match values {
            ColumnValues::Text(values) => Arc::new(StringArray::from(values)),
            ColumnValues::Float(values) => Arc::new(Float64Array::from(values)),
            ColumnValues::Int64(values) => Arc::new(Int64Array::from(values)),
            ColumnValues::Int32(values) => Arc::new(Int32Array::from(values)),
            ColumnValues::Date(values) => Arc::new(Date32Array::from(
                values
                    .into_iter()
                    .map(|date| date.map(|date| (date - epoch).num_days() as i32))
                    .collect::<Vec<_>>(),
            )),
            ColumnValues::TimestampMicros(values) => {
                Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
            }
            ColumnValues::Boolean(values) => Arc::new(BooleanArray::from(values)),
        };
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

pub(crate) fn definition_with_columns(columns: &[(&str, ColumnFormat)]) -> ReportDefinition {
    ReportDefinition {
        name: "test_report".into(),
        title: "Test report".into(),
        mart: "test_mart".into(),
        description: "A report for tests.".into(),
        columns: columns
            .iter()
            .map(|(name, format)| ColumnSpec {
                name: (*name).into(),
                label: name.replace('_', " "),
                format: *format,
            })
            .collect(),
        order_by: Vec::new(),
        chart: None,
        totals: Vec::new(),
        limit: None,
        period_days: None,
        html_rows: super::definition::DEFAULT_HTML_ROWS,
    }
}

pub(crate) fn day(day_of_november: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 11, day_of_november)
}

pub(crate) fn fixed_context() -> ReportContext {
    ReportContext {
        period_from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        period_to: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
        data_fresh_until: NaiveDate::from_ymd_opt(2026, 11, 3),
        generated_at: DateTime::<Utc>::from_timestamp(1_793_770_200, 0).unwrap(),
        shared_cost_policy: "proportional to direct cost".into(),
        organisation: Some("Acme & Co".into()),
    }
}

//! Column builders shared by the extractors: each turns an iterator of optional values into an Arrow
//! array of the type the dataset schemas declare (UTC microsecond timestamps, string maps, …).

use arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, MapBuilder, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// A column with its description, kept in the field's metadata under `description` so the Parquet
/// files carry it and SCHEMA.md is generated from it.
pub(crate) fn column(name: &str, data_type: DataType, nullable: bool, description: &str) -> Field {
    Field::new(name, data_type, nullable).with_metadata(HashMap::from([(
        "description".to_owned(),
        description.to_owned(),
    )]))
}

/// `snapshot_date`, the first column of every snapshot dataset.
pub(crate) fn snapshot_date_column() -> Field {
    column(
        "snapshot_date",
        DataType::Date32,
        false,
        "The UTC day this snapshot was taken (also the `day=` partition).",
    )
}

/// `account_id`, as every dataset extracted per account has it.
pub(crate) fn account_id_column() -> Field {
    column(
        "account_id",
        DataType::Utf8,
        false,
        "Spot account id (`act-…`).",
    )
}

/// `created_at`, as Spot reports it for a resource.
pub(crate) fn created_at_column() -> Field {
    column(
        "created_at",
        timestamp_type(),
        true,
        "When the resource was created in Spot (UTC).",
    )
}

/// `updated_at`, as Spot reports it for a resource.
pub(crate) fn updated_at_column() -> Field {
    column(
        "updated_at",
        timestamp_type(),
        true,
        "When the resource was last changed in Spot (UTC).",
    )
}

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `map<varchar, varchar>`, as DuckDB and Spark read it: `labels['team']`.
pub(crate) fn string_map_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ]
                .into(),
            ),
            false,
        )),
        false,
    )
}

pub(crate) fn text<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<StringArray>())
}

pub(crate) fn float<I: IntoIterator<Item = Option<f64>>>(values: I) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Float64Array>())
}

pub(crate) fn int<I: IntoIterator<Item = Option<i64>>>(values: I) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Int64Array>())
}

pub(crate) fn date<I: IntoIterator<Item = Option<NaiveDate>>>(values: I) -> ArrayRef {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Arc::new(
        values
            .into_iter()
            .map(|d| d.map(|d| (d - epoch).num_days() as i32))
            .collect::<Date32Array>(),
    )
}

pub(crate) fn timestamp<I: IntoIterator<Item = Option<DateTime<Utc>>>>(values: I) -> ArrayRef {
    Arc::new(
        values
            .into_iter()
            .map(|t| t.map(|t| t.timestamp_micros()))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

pub(crate) fn string_map<'a, I, M>(values: I) -> ArrayRef
where
    I: IntoIterator<Item = M>,
    M: IntoIterator<Item = (&'a str, Option<&'a str>)>,
{
    let mut builder = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for entries in values {
        for (key, value) in entries {
            builder.keys().append_value(key);
            builder.values().append_option(value);
        }
        // Appending an (empty) entry list never fails for string keys.
        let _ = builder.append(true);
    }
    Arc::new(builder.finish())
}

/// Counts become `i64`; a value that is not a whole number is kept rounded.
pub(crate) fn whole(value: Option<f64>) -> Option<i64> {
    value.filter(|v| v.is_finite()).map(|v| v.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    #[test]
    fn string_maps_match_the_declared_type() {
        let labels = [vec![("team", Some("payments"))], vec![]];
        let array = string_map(labels.iter().map(|entries| entries.iter().copied()));
        assert_eq!(array.data_type(), &string_map_type());
        assert_eq!(array.len(), 2);
    }

    #[test]
    fn timestamps_are_utc_microseconds() {
        let array = timestamp([None]);
        assert_eq!(array.data_type(), &timestamp_type());
    }
}

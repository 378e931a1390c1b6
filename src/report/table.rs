//! Arrow batches → a small table of typed cells that the CSV, HTML and chart renderers share,
//! plus the presentation formats (`$12,345.67`, `15.3%`); checks the batches hold exactly the
//! definition's columns, in order.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use chrono::{DateTime, NaiveDate, Utc};

use super::definition::{ColumnFormat, ReportDefinition};
use super::{ReportError, ReportTotal};

/// One value of the mart, typed the way the renderers need it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Text(String),
    Float(f64),
    Integer(i64),
    /// An exact decimal (DuckDB `DECIMAL`): the exact text for the CSV, the value for HTML.
    Decimal {
        exact_text: String,
        value: f64,
    },
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    Boolean(bool),
}

impl Cell {
    /// The number a cell holds, if it holds one.
    pub(crate) fn numeric_value(&self) -> Option<f64> {
        match self {
            Cell::Float(value) => Some(*value),
            Cell::Integer(value) => Some(*value as f64),
            Cell::Decimal { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// The plain text of a cell, as a chart label or grouping key (not escaped).
    pub(crate) fn plain_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Float(value) => value.to_string(),
            Cell::Integer(value) => value.to_string(),
            Cell::Decimal { exact_text, .. } => exact_text.clone(),
            Cell::Date(date) => date.format("%Y-%m-%d").to_string(),
            Cell::Timestamp(timestamp) => timestamp.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            Cell::Boolean(value) => value.to_string(),
        }
    }
}

/// The whole result of a report's query, column-major over the definition's columns.
#[derive(Debug, Clone)]
pub(crate) struct ReportTable {
    /// `columns[c][r]`: the definition's column `c`, row `r`.
    pub(crate) columns: Vec<Vec<Cell>>,
    /// The Arrow type each column arrived with (for error messages).
    pub(crate) column_types: Vec<DataType>,
    row_count: usize,
}

impl ReportTable {
    pub(crate) fn from_batches(
        definition: &ReportDefinition,
        batches: &[RecordBatch],
    ) -> Result<Self, ReportError> {
        let mismatch = |message: String| ReportError::ColumnMismatch {
            report: definition.name.clone(),
            message,
        };
        let mut columns = vec![Vec::new(); definition.columns.len()];
        let mut column_types: Vec<Option<DataType>> = vec![None; definition.columns.len()];
        let mut row_count = 0;
        for batch in batches {
            let schema = batch.schema();
            let batch_column_names: Vec<&str> = schema
                .fields()
                .iter()
                .map(|field| field.name().as_str())
                .collect();
            let expected_column_names: Vec<&str> = definition
                .columns
                .iter()
                .map(|column| column.name.as_str())
                .collect();
            if batch_column_names != expected_column_names {
                return Err(mismatch(format!(
                    "expected columns [{}], got [{}]",
                    expected_column_names.join(", "),
                    batch_column_names.join(", ")
                )));
            }
            for (column_index, array) in batch.columns().iter().enumerate() {
                let column_name = &definition.columns[column_index].name;
                let known_type = &mut column_types[column_index];
                match known_type {
                    Some(data_type)
                        if data_type != array.data_type()
                            && *array.data_type() != DataType::Null =>
                    {
                        return Err(mismatch(format!(
                            "column `{column_name}` is {data_type} in one batch and {} in another",
                            array.data_type()
                        )));
                    }
                    Some(_) => {}
                    None => *known_type = Some(array.data_type().clone()),
                }
                append_cells(&mut columns[column_index], array).map_err(|data_type| {
                    ReportError::UnsupportedColumnType {
                        report: definition.name.clone(),
                        column: column_name.clone(),
                        data_type,
                    }
                })?;
            }
            row_count += batch.num_rows();
        }
        Ok(ReportTable {
            columns,
            column_types: column_types
                .into_iter()
                .map(|data_type| data_type.unwrap_or(DataType::Null))
                .collect(),
            row_count,
        })
    }

    pub(crate) fn row_count(&self) -> usize {
        self.row_count
    }

    pub(crate) fn column_index(definition: &ReportDefinition, column_name: &str) -> Option<usize> {
        definition
            .columns
            .iter()
            .position(|column| column.name == column_name)
    }

    /// The column's numbers (null → 0), or an error when it holds text.
    pub(crate) fn numeric_column(
        &self,
        definition: &ReportDefinition,
        column_name: &str,
        purpose: &'static str,
    ) -> Result<Vec<f64>, ReportError> {
        let column_index = Self::column_index(definition, column_name).ok_or_else(|| {
            ReportError::ColumnMismatch {
                report: definition.name.clone(),
                message: format!("no column `{column_name}`"),
            }
        })?;
        self.columns[column_index]
            .iter()
            .map(|cell| match cell {
                Cell::Null => Ok(0.0),
                other => other
                    .numeric_value()
                    .ok_or_else(|| ReportError::NotNumeric {
                        report: definition.name.clone(),
                        column: column_name.to_owned(),
                        purpose,
                        data_type: self.column_types[column_index].to_string(),
                    }),
            })
            .collect()
    }

    pub(crate) fn totals(
        &self,
        definition: &ReportDefinition,
    ) -> Result<Vec<ReportTotal>, ReportError> {
        definition
            .totals
            .iter()
            .map(|total_column| {
                let values = self.numeric_column(definition, total_column, "totals")?;
                let column = definition.column(total_column).expect("checked at load");
                Ok(ReportTotal {
                    column: column.name.clone(),
                    label: column.label.clone(),
                    format: column.format,
                    value: values.iter().filter(|value| value.is_finite()).sum(),
                })
            })
            .collect()
    }
}

/// Appends one Arrow array's values as cells; on an unsupported type returns the type's name.
fn append_cells(cells: &mut Vec<Cell>, array: &ArrayRef) -> Result<(), String> {
    let length = array.len();
    let mut push_each = |cell_at: &dyn Fn(usize) -> Cell| {
        cells.extend((0..length).map(|row| {
            if array.is_null(row) {
                Cell::Null
            } else {
                cell_at(row)
            }
        }));
    };
    match array.data_type() {
        DataType::Null => push_each(&|_| Cell::Null),
        DataType::Utf8 => {
            let strings = array.as_string::<i32>();
            push_each(&|row| Cell::Text(strings.value(row).to_owned()))
        }
        DataType::LargeUtf8 => {
            let strings = array.as_string::<i64>();
            push_each(&|row| Cell::Text(strings.value(row).to_owned()))
        }
        DataType::Utf8View => {
            let strings = array.as_string_view();
            push_each(&|row| Cell::Text(strings.value(row).to_owned()))
        }
        DataType::Boolean => {
            let booleans = array.as_boolean();
            push_each(&|row| Cell::Boolean(booleans.value(row)))
        }
        DataType::Float64 => {
            let floats = array.as_primitive::<Float64Type>();
            push_each(&|row| Cell::Float(floats.value(row)))
        }
        DataType::Float32 => {
            let floats = array.as_primitive::<Float32Type>();
            push_each(&|row| Cell::Float(f64::from(floats.value(row))))
        }
        DataType::Int64 => {
            let integers = array.as_primitive::<Int64Type>();
            push_each(&|row| Cell::Integer(integers.value(row)))
        }
        DataType::Int32 => {
            let integers = array.as_primitive::<Int32Type>();
            push_each(&|row| Cell::Integer(i64::from(integers.value(row))))
        }
        DataType::Int16 => {
            let integers = array.as_primitive::<Int16Type>();
            push_each(&|row| Cell::Integer(i64::from(integers.value(row))))
        }
        DataType::Int8 => {
            let integers = array.as_primitive::<Int8Type>();
            push_each(&|row| Cell::Integer(i64::from(integers.value(row))))
        }
        DataType::UInt32 => {
            let integers = array.as_primitive::<UInt32Type>();
            push_each(&|row| Cell::Integer(i64::from(integers.value(row))))
        }
        DataType::UInt16 => {
            let integers = array.as_primitive::<UInt16Type>();
            push_each(&|row| Cell::Integer(i64::from(integers.value(row))))
        }
        DataType::UInt8 => {
            let integers = array.as_primitive::<UInt8Type>();
            push_each(&|row| Cell::Integer(i64::from(integers.value(row))))
        }
        DataType::UInt64 => {
            let integers = array.as_primitive::<UInt64Type>();
            push_each(&|row| match i64::try_from(integers.value(row)) {
                Ok(value) => Cell::Integer(value),
                Err(_) => Cell::Float(integers.value(row) as f64),
            })
        }
        DataType::Decimal128(_, scale) => {
            let scale = *scale;
            let decimals = array.as_primitive::<arrow::datatypes::Decimal128Type>();
            push_each(&|row| {
                let exact_text = decimals.value_as_string(row);
                let value = decimals.value(row) as f64 / 10f64.powi(i32::from(scale));
                Cell::Decimal { exact_text, value }
            })
        }
        DataType::Date32 => {
            let dates = array.as_primitive::<Date32Type>();
            push_each(&|row| match dates.value_as_date(row) {
                Some(date) => Cell::Date(date),
                None => Cell::Null,
            })
        }
        DataType::Date64 => {
            let dates = array.as_primitive::<Date64Type>();
            push_each(&|row| match dates.value_as_date(row) {
                Some(date) => Cell::Date(date),
                None => Cell::Null,
            })
        }
        DataType::Timestamp(unit, _) => {
            let (raw_values, micros_per_unit_numerator, micros_per_unit_denominator): (
                Vec<i64>,
                i64,
                i64,
            ) = match unit {
                TimeUnit::Second => (
                    timestamp_values::<arrow::datatypes::TimestampSecondType>(array),
                    1_000_000,
                    1,
                ),
                TimeUnit::Millisecond => (
                    timestamp_values::<arrow::datatypes::TimestampMillisecondType>(array),
                    1_000,
                    1,
                ),
                TimeUnit::Microsecond => (
                    timestamp_values::<arrow::datatypes::TimestampMicrosecondType>(array),
                    1,
                    1,
                ),
                TimeUnit::Nanosecond => (
                    timestamp_values::<arrow::datatypes::TimestampNanosecondType>(array),
                    1,
                    1_000,
                ),
            };
            // A timestamp without a time zone is read as UTC, like DuckDB's `timestamp`.
            push_each(&|row| {
                let micros = raw_values[row]
                    .checked_mul(micros_per_unit_numerator)
                    .map(|scaled| scaled.div_euclid(micros_per_unit_denominator));
                match micros.and_then(DateTime::<Utc>::from_timestamp_micros) {
                    Some(timestamp) => Cell::Timestamp(timestamp),
                    None => Cell::Null,
                }
            })
        }
        other => return Err(other.to_string()),
    }
    Ok(())
}

fn timestamp_values<T: arrow::datatypes::ArrowPrimitiveType<Native = i64>>(
    array: &ArrayRef,
) -> Vec<i64> {
    array.as_primitive::<T>().values().to_vec()
}

/// `1234567` → `1,234,567` (digits only; the sign is handled by the callers).
fn group_thousands(digits: &str) -> String {
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A number with thousands separators and a fixed number of decimals; `-0.00` becomes `0.00`.
/// Returns the sign separately so money can put it before the `$`.
fn grouped_number(value: f64, decimals: usize) -> (bool, String) {
    if !value.is_finite() {
        return (false, value.to_string());
    }
    let fixed = format!("{:.*}", decimals, value.abs());
    let (integer_part, fraction_part) = match fixed.split_once('.') {
        Some((integer_part, fraction_part)) => (integer_part, Some(fraction_part)),
        None => (fixed.as_str(), None),
    };
    let is_zero = fixed
        .chars()
        .all(|character| character == '0' || character == '.');
    let mut text = group_thousands(integer_part);
    if let Some(fraction_part) = fraction_part {
        text.push('.');
        text.push_str(fraction_part);
    }
    (value < 0.0 && !is_zero, text)
}

pub(crate) fn format_usd(value: f64) -> String {
    let (negative, text) = grouped_number(value, 2);
    if negative {
        format!("-${text}")
    } else {
        format!("${text}")
    }
}

pub(crate) fn format_number(value: f64, decimals: usize) -> String {
    let (negative, text) = grouped_number(value, decimals);
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

pub(crate) fn format_percent(fraction: f64) -> String {
    format!("{}%", format_number(fraction * 100.0, 1))
}

/// A number as its column's format shows it in HTML.
pub(crate) fn format_value(format: ColumnFormat, value: f64) -> String {
    match format {
        ColumnFormat::Usd => format_usd(value),
        ColumnFormat::Percent => format_percent(value),
        ColumnFormat::Integer => format_number(value, 0),
        ColumnFormat::Number | ColumnFormat::Text | ColumnFormat::Date => format_number(value, 2),
    }
}

pub(crate) fn format_total(format: ColumnFormat, value: f64) -> String {
    format_value(format, value)
}

/// A cell as the HTML table shows it (not yet escaped).
pub(crate) fn format_cell_for_html(format: ColumnFormat, cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Text(text) => text.clone(),
        Cell::Boolean(value) => if *value { "yes" } else { "no" }.to_owned(),
        Cell::Date(date) => date.format("%Y-%m-%d").to_string(),
        Cell::Timestamp(timestamp) => timestamp.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Cell::Float(_) | Cell::Integer(_) | Cell::Decimal { .. } => {
            let value = cell.numeric_value().unwrap_or_default();
            match (format, cell) {
                // An integer in a text column (an id, a year) is shown as is.
                (ColumnFormat::Text | ColumnFormat::Date, Cell::Integer(integer)) => {
                    integer.to_string()
                }
                (ColumnFormat::Text | ColumnFormat::Date, _) => cell.plain_text(),
                _ => format_value(format, value),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_numbers_are_grouped_and_rounded_for_people() {
        assert_eq!(format_usd(12345.678), "$12,345.68");
        assert_eq!(format_usd(0.0), "$0.00");
        assert_eq!(format_usd(-0.001), "$0.00");
        assert_eq!(format_usd(-1234.5), "-$1,234.50");
        assert_eq!(format_usd(999.999), "$1,000.00");
        assert_eq!(format_usd(1_000_000.0), "$1,000,000.00");
        assert_eq!(format_number(1234567.0, 0), "1,234,567");
        assert_eq!(format_number(-12.345, 2), "-12.35");
        assert_eq!(format_number(123.0, 0), "123");
        assert_eq!(format_percent(0.1534), "15.3%");
        assert_eq!(format_value(ColumnFormat::Integer, 12345.0), "12,345");
    }
}

//! A report as CSV for spreadsheets and scripts: UTF-8 without a byte-order mark, `\n` line ends, a header of column
//! names, raw values (full precision, ISO dates, RFC 3339 UTC timestamps, empty for null), and
//! text that a spreadsheet would run as a formula neutralised with a leading `'`.
//!
//! No BOM: scripts and DuckDB read the file as is; Excel users open it through Data → From Text
//! (or DuckDB) with UTF-8 chosen, since a BOM would corrupt the first header for many tools.

use arrow::array::RecordBatch;
use chrono::SecondsFormat;

use super::definition::ReportDefinition;
use super::table::{Cell, ReportTable};
use super::ReportError;

/// Renders the batches (exactly the definition's columns, in order) as CSV bytes.
pub fn render_csv(
    definition: &ReportDefinition,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, ReportError> {
    let report_table = ReportTable::from_batches(definition, batches)?;
    render_csv_table(definition, &report_table)
}

pub(crate) fn render_csv_table(
    definition: &ReportDefinition,
    report_table: &ReportTable,
) -> Result<Vec<u8>, ReportError> {
    let csv_error = |source| ReportError::Csv {
        report: definition.name.clone(),
        source,
    };
    let mut csv_writer = csv::WriterBuilder::new().from_writer(Vec::new());
    csv_writer
        .write_record(
            definition
                .columns
                .iter()
                .map(|column| neutralise_formula(&column.name)),
        )
        .map_err(csv_error)?;
    let mut record = Vec::with_capacity(definition.columns.len());
    for row in 0..report_table.row_count() {
        record.clear();
        record.extend(
            report_table
                .columns
                .iter()
                .map(|column_cells| csv_field(&column_cells[row])),
        );
        csv_writer.write_record(&record).map_err(csv_error)?;
    }
    csv_writer
        .into_inner()
        .map_err(|into_inner_error| csv_error(csv::Error::from(into_inner_error.into_error())))
}

/// One cell as CSV text. Numbers are written by Rust's shortest round-trip formatting (never an
/// exponent), so money keeps the precision the mart computed.
fn csv_field(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Text(text) => neutralise_formula(text),
        Cell::Float(value) if !value.is_finite() => String::new(),
        Cell::Float(value) => value.to_string(),
        Cell::Integer(value) => value.to_string(),
        Cell::Decimal { exact_text, .. } => exact_text.clone(),
        Cell::Date(date) => date.format("%Y-%m-%d").to_string(),
        Cell::Timestamp(timestamp) => timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        Cell::Boolean(value) => value.to_string(),
    }
}

/// Spreadsheets run a cell starting with `=`, `+`, `-`, `@`, tab or carriage return as a formula
/// (CSV injection); a leading `'` makes them show it as text. Only text cells pass through here.
fn neutralise_formula(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_batches::{batch, definition_with_columns, ColumnValues};
    use crate::report::ColumnFormat;
    use chrono::NaiveDate;

    #[test]
    fn neutralises_formulas_in_text_but_not_numbers() {
        let definition = definition_with_columns(&[
            ("namespace", ColumnFormat::Text),
            ("cost_usd", ColumnFormat::Usd),
        ]);
        let batch = batch(vec![
            (
                "namespace",
                ColumnValues::Text(vec![
                    Some("=HYPERLINK(\"x\")"),
                    Some("+1"),
                    Some("-2"),
                    Some("@SUM(A1)"),
                    Some("\tx"),
                    Some("\rx"),
                    Some("plain = fine"),
                ]),
            ),
            (
                "cost_usd",
                ColumnValues::Float(vec![
                    Some(-1.5),
                    Some(1.0),
                    None,
                    Some(0.1 + 0.2),
                    Some(2.5e-7),
                    Some(1e16),
                    Some(0.0),
                ]),
            ),
        ]);
        let csv_text = String::from_utf8(render_csv(&definition, &[batch]).unwrap()).unwrap();
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        assert_eq!(reader.headers().unwrap(), vec!["namespace", "cost_usd"]);
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|record| record.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(rows[0], ["'=HYPERLINK(\"x\")", "-1.5"]);
        assert_eq!(rows[1], ["'+1", "1"]);
        assert_eq!(rows[2], ["'-2", ""]);
        assert_eq!(rows[3], ["'@SUM(A1)", "0.30000000000000004"]);
        assert_eq!(rows[4], ["'\tx", "0.00000025"]);
        assert_eq!(rows[5], ["'\rx", "10000000000000000"]);
        assert_eq!(rows[6], ["plain = fine", "0"]);
        // The quote from the formula is escaped the CSV way, not stripped.
        assert!(
            csv_text.contains("\"'=HYPERLINK(\"\"x\"\")\""),
            "{csv_text}"
        );
    }

    #[test]
    fn writes_iso_dates_rfc3339_timestamps_integers_and_empty_nulls() {
        let definition = definition_with_columns(&[
            ("day", ColumnFormat::Date),
            ("seen_at", ColumnFormat::Date),
            ("event_count", ColumnFormat::Integer),
            ("is_failed", ColumnFormat::Text),
            ("note", ColumnFormat::Text),
        ]);
        let batch = batch(vec![
            (
                "day",
                ColumnValues::Date(vec![NaiveDate::from_ymd_opt(2026, 11, 3), None]),
            ),
            (
                "seen_at",
                ColumnValues::TimestampMicros(vec![Some(1_793_714_400_123_000), None]),
            ),
            ("event_count", ColumnValues::Int32(vec![Some(-7), None])),
            ("is_failed", ColumnValues::Boolean(vec![Some(true), None])),
            ("note", ColumnValues::Text(vec![Some("a, \"b\"\nc"), None])),
        ]);
        let csv_text = String::from_utf8(render_csv(&definition, &[batch]).unwrap()).unwrap();
        assert_eq!(
            csv_text,
            "day,seen_at,event_count,is_failed,note\n\
             2026-11-03,2026-11-03T14:00:00.123Z,-7,true,\"a, \"\"b\"\"\nc\"\n\
             ,,,,\n"
        );
    }

    #[test]
    fn rejects_batches_whose_columns_differ_from_the_definition() {
        let definition = definition_with_columns(&[("namespace", ColumnFormat::Text)]);
        let batch = batch(vec![("team", ColumnValues::Text(vec![Some("a")]))]);
        let error = render_csv(&definition, &[batch]).unwrap_err();
        assert!(
            matches!(error, ReportError::ColumnMismatch { .. }),
            "{error}"
        );
    }
}

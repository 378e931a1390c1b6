//! Reports: renders one mart (already queried into Arrow batches) into a CSV file and a
//! self-contained HTML page, as `reports/*.toml` defines them, and publishes a run's files
//! atomically under `DIR/reports/<run day>/` with `latest` pointing at the newest day.
//! Invariant: only this module writes report files, and no rendered page makes a request.
//!
//! The flow the caller drives:
//! 1. [`load_definitions`] reads every `reports/*.toml` into a [`ReportDefinition`];
//! 2. for each, the caller runs [`ReportDefinition::query_sql`] (or its own
//!    `select <columns> from <mart> order by <order_by> limit <limit>`) and passes the batches to
//!    [`render_report`] (or to [`render_csv`], [`render_html`] and [`compute_totals`] one by one);
//! 3. [`render_index`] builds the landing page and [`write_reports`] publishes everything.

mod chart;
mod csv_output;
mod definition;
mod files;
mod html;
mod table;

use std::path::PathBuf;

use arrow::array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};

pub use csv_output::render_csv;
pub use definition::{
    load_definition_file, load_definitions, parse_definition, ChartAggregate, ChartKind, ChartSpec,
    ColumnFormat, ColumnSpec, ReportDefinition,
};
pub use files::{write_reports, RenderedReport};
pub use html::{render_html, render_index};

/// Everything that can go wrong while loading report definitions, rendering or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report definitions folder (or one file in it) could not be read.
    #[error("cannot read report definitions at {path}: {source}")]
    DefinitionRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A report definition file is malformed: `key` is the TOML key path (`columns[2].format`,
    /// `chart.x`, or `.` for the whole file).
    #[error("report definition {path}: key `{key}`: {message}")]
    Definition {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// The batches do not hold the definition's columns, in its order.
    #[error("report `{report}`: the data does not match the definition: {message}")]
    ColumnMismatch { report: String, message: String },
    /// A column arrived with an Arrow type the renderer does not handle.
    #[error("report `{report}`: column `{column}` has unsupported type {data_type}")]
    UnsupportedColumnType {
        report: String,
        column: String,
        data_type: String,
    },
    /// A chart or totals column holds text where a number is needed.
    #[error(
        "report `{report}`: column `{column}` must be numeric for {purpose}, found {data_type}"
    )]
    NotNumeric {
        report: String,
        column: String,
        purpose: &'static str,
        data_type: String,
    },
    /// Writing the CSV through the csv crate failed.
    #[error("report `{report}`: cannot write CSV: {source}")]
    Csv {
        report: String,
        #[source]
        source: csv::Error,
    },
    /// A rendered report's name cannot be a file name (or appears twice in one run).
    #[error("report name `{name}` is not usable as a file name: {reason}")]
    InvalidReportName { name: String, reason: &'static str },
    /// Writing a report file, the dated folder, or the `latest` pointer failed.
    #[error("cannot write report output {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What every page says in its header: the period covered, how fresh the data is, and how shared
/// costs were split. `generated_at` is a parameter (tests never read the clock).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportContext {
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    /// The latest usage day present in the lake; `None` when unknown.
    pub data_fresh_until: Option<NaiveDate>,
    pub generated_at: DateTime<Utc>,
    /// How shared costs (headroom, unused storage, …) were allocated to namespaces, in words.
    pub shared_cost_policy: String,
    pub organisation: Option<String>,
}

/// The sum of one `totals` column, carrying the column's format so a count is never shown as money.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTotal {
    /// The column name (snake_case, as in the CSV header).
    pub column: String,
    /// The column label shown on the card.
    pub label: String,
    pub format: ColumnFormat,
    pub value: f64,
}

impl ReportTotal {
    /// The value as the card shows it: `$12,345.67` for money, `12,345` for integers, …
    pub fn formatted_value(&self) -> String {
        table::format_total(self.format, self.value)
    }
}

/// One line of the index page: where a report's files are and what they add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// File name relative to the dated folder, e.g. `chargeback_namespace.html`.
    pub html_file: String,
    /// File name relative to the dated folder, e.g. `chargeback_namespace.csv`.
    pub csv_file: String,
    pub rows: usize,
    pub totals: Vec<ReportTotal>,
}

/// Sums each of the definition's `totals` columns over all rows (nulls count as zero).
pub fn compute_totals(
    definition: &ReportDefinition,
    batches: &[RecordBatch],
) -> Result<Vec<ReportTotal>, ReportError> {
    let report_table = table::ReportTable::from_batches(definition, batches)?;
    report_table.totals(definition)
}

/// Renders one report completely: its CSV, its HTML page and its line on the index page.
/// This is the one call per report the `report` command needs.
pub fn render_report(
    definition: &ReportDefinition,
    batches: &[RecordBatch],
    context: &ReportContext,
) -> Result<(RenderedReport, IndexEntry), ReportError> {
    let report_table = table::ReportTable::from_batches(definition, batches)?;
    let csv = csv_output::render_csv_table(definition, &report_table)?;
    let html = html::render_html_table(definition, &report_table, context)?;
    let index_entry = IndexEntry {
        html_file: format!("{}.html", definition.name),
        csv_file: format!("{}.csv", definition.name),
        rows: report_table.row_count(),
        totals: report_table.totals(definition)?,
    };
    let rendered_report = RenderedReport {
        name: definition.name.clone(),
        csv,
        html,
    };
    Ok((rendered_report, index_entry))
}

#[cfg(test)]
mod test_batches;

#[cfg(test)]
mod tests {
    use super::test_batches::{batch, day, fixed_context, ColumnValues};
    use super::*;
    use std::path::Path;

    /// Compares `actual` with `src/report/golden/<file_name>`; `UPDATE_EXPECT=1` rewrites the file.
    fn assert_golden(file_name: &str, actual: &str) {
        let golden_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/report/golden")
            .join(file_name);
        if std::env::var_os("UPDATE_EXPECT").is_some_and(|value| value == "1") {
            std::fs::write(&golden_path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&golden_path).unwrap_or_else(|error| {
            panic!(
                "{}: {error} (run with UPDATE_EXPECT=1 to create it)",
                golden_path.display()
            )
        });
        if expected != actual {
            let first_difference = expected
                .lines()
                .zip(actual.lines())
                .position(|(expected_line, actual_line)| expected_line != actual_line)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            panic!(
                "{} differs from the rendered output at line {} (review, then re-bless with UPDATE_EXPECT=1)\n\
                 expected: {:?}\n  actual: {:?}",
                golden_path.display(),
                first_difference + 1,
                expected.lines().nth(first_difference),
                actual.lines().nth(first_difference)
            );
        }
    }

    /// The shipped `chargeback_namespace` report over a fixed three-day, four-namespace batch.
    fn golden_report() -> (ReportDefinition, RecordBatch) {
        let definitions = load_definitions(&ReportDefinition::shipped_folder()).unwrap();
        let definition = definitions
            .into_iter()
            .find(|definition| definition.name == "chargeback_namespace")
            .unwrap();
        let days = vec![day(1), day(1), day(1), day(2), day(2), day(3), day(3)];
        let namespaces = vec![
            Some("web"),
            Some("batch"),
            Some("=cmd|' /C calc'!A0"),
            Some("web"),
            Some("batch"),
            Some("web"),
            None,
        ];
        let teams = vec![
            Some("storefront"),
            Some("data"),
            Some("<b>red team</b>"),
            Some("storefront"),
            Some("data"),
            Some("storefront"),
            None,
        ];
        let money = |values: [f64; 7]| ColumnValues::Float(values.into_iter().map(Some).collect());
        let report_batch = batch(vec![
            ("day", ColumnValues::Date(days)),
            (
                "account_id",
                ColumnValues::Text(vec![Some("act-1234abcd"); 7]),
            ),
            (
                "cluster_id",
                ColumnValues::Text(vec![Some("o-11aa22bb"); 7]),
            ),
            (
                "cluster_name",
                ColumnValues::Text(vec![Some("prod-eks"); 7]),
            ),
            ("namespace", ColumnValues::Text(namespaces)),
            ("team", ColumnValues::Text(teams)),
            (
                "cost_center",
                ColumnValues::Text(vec![
                    Some("CC-100"),
                    Some("CC-200"),
                    None,
                    Some("CC-100"),
                    Some("CC-200"),
                    Some("CC-100"),
                    None,
                ]),
            ),
            (
                "compute_cost_usd",
                money([1200.123456, 310.5, 0.25, 1180.0, 295.75, 1210.0, 0.0]),
            ),
            (
                "storage_cost_usd",
                money([40.0, 12.5, 0.0, 40.0, 12.5, 40.0, 0.0]),
            ),
            (
                "network_cost_usd",
                money([5.25, 1.0, 0.0, 5.0, 1.25, 5.5, 0.0]),
            ),
            (
                "direct_cost_usd",
                money([1245.373456, 324.0, 0.25, 1225.0, 309.5, 1255.5, 0.0]),
            ),
            (
                "shared_cost_usd",
                money([120.0, 31.2, 0.02, 118.0, 29.8, 121.0, 44.5]),
            ),
            (
                "total_cost_usd",
                money([1365.373456, 355.2, 0.27, 1343.0, 339.3, 1376.5, 44.5]),
            ),
            (
                "shared_cost_policy",
                ColumnValues::Text(vec![Some("proportional"); 7]),
            ),
        ]);
        (definition, report_batch)
    }

    #[test]
    fn golden_chargeback_namespace_csv() {
        let (definition, report_batch) = golden_report();
        let csv = render_csv(&definition, &[report_batch]).unwrap();
        assert_golden("chargeback_namespace.csv", &String::from_utf8(csv).unwrap());
    }

    #[test]
    fn golden_chargeback_namespace_html() {
        let (definition, report_batch) = golden_report();
        let html = render_html(&definition, &[report_batch], &fixed_context()).unwrap();
        assert_golden("chargeback_namespace.html", &html);
    }

    #[test]
    fn render_report_agrees_with_the_single_renderers() {
        let (definition, report_batch) = golden_report();
        let batches = [report_batch.slice(0, 3), report_batch.slice(3, 4)];
        let (rendered, index_entry) =
            render_report(&definition, &batches, &fixed_context()).unwrap();
        assert_eq!(rendered.name, "chargeback_namespace");
        assert_eq!(
            rendered.csv,
            render_csv(&definition, std::slice::from_ref(&report_batch)).unwrap()
        );
        assert_eq!(
            rendered.html,
            render_html(&definition, &[report_batch], &fixed_context()).unwrap()
        );
        assert_eq!(index_entry.rows, 7);
        assert_eq!(index_entry.html_file, "chargeback_namespace.html");
        let total_cost = &index_entry.totals[0];
        assert_eq!(total_cost.column, "total_cost_usd");
        assert!(
            (total_cost.value - 4824.143456).abs() < 1e-9,
            "{}",
            total_cost.value
        );
        assert_eq!(total_cost.formatted_value(), "$4,824.14");
    }
}

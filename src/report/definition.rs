//! Report definitions: `reports/<name>.toml` → [`ReportDefinition`], checked so that every name
//! the caller puts into SQL (mart, columns, `order by` items) is a plain identifier, and every
//! error names the file and the TOML key.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::ReportError;

/// One report: which mart it renders, which columns (in order), how they are sorted and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDefinition {
    /// The file stem, which is also the output file stem (`<name>.csv`, `<name>.html`).
    pub name: String,
    pub title: String,
    /// The DuckDB relation (mart table) to select from.
    pub mart: String,
    pub description: String,
    pub columns: Vec<ColumnSpec>,
    /// `order by` items, each `<column>` or `<column> asc|desc`; every column is one of `columns`.
    pub order_by: Vec<String>,
    pub chart: Option<ChartSpec>,
    /// Numeric columns summed into the header cards (formatted by their column's format).
    pub totals: Vec<String>,
    pub limit: Option<usize>,
    /// Only the last this many days of the report's first `date` column (counted back from the
    /// mart's latest day); `None`: every day.
    pub period_days: Option<u32>,
    /// Most rows the HTML table shows; the CSV, the cards and the chart cover every row.
    pub html_rows: usize,
}

/// The HTML table's default row cap: a page of this many rows is about half a megabyte.
pub const DEFAULT_HTML_ROWS: usize = 1000;

/// One column of a report: its name in the mart and the CSV header, its label in the HTML page.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    pub label: String,
    pub format: ColumnFormat,
}

/// How a column is presented in HTML (the CSV always carries the raw value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnFormat {
    /// As is (escaped).
    Text,
    /// `YYYY-MM-DD`; a timestamp is shown as `YYYY-MM-DD HH:MM:SS UTC`.
    Date,
    /// Money: `$12,345.67`.
    Usd,
    /// A quantity with two decimals: `1,234.50`.
    Number,
    /// A fraction shown as a percentage with one decimal: `0.153` → `15.3%`.
    Percent,
    /// A whole number: `12,345`.
    Integer,
}

impl ColumnFormat {
    /// Whether the column holds a quantity (right-aligned; allowed in totals and chart values).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnFormat::Usd
                | ColumnFormat::Number
                | ColumnFormat::Percent
                | ColumnFormat::Integer
        )
    }
}

/// The chart drawn above the table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    pub kind: ChartKind,
    /// Stacked bars: the date-ish column along the x axis. Bars: the category column.
    pub x: String,
    /// The numeric column summed into the bars.
    pub y: String,
    /// The column whose values stack within a bar (optional).
    #[serde(default)]
    pub series: Option<String>,
    /// Stacked bars: how many series are kept before the rest become "Other" (at most 9).
    /// Bars: how many categories are kept before the rest become "Other".
    #[serde(default = "default_chart_top")]
    pub top: usize,
    /// How a bar combines the y values of its rows: their sum (the default) or their mean.
    #[serde(default)]
    pub aggregate: ChartAggregate,
}

/// How a chart bar combines the y values of its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartAggregate {
    /// The sum: costs, counts.
    #[default]
    Sum,
    /// The mean of the rows that have a value (empty cells are left out): rates, errors. Only
    /// for `bars` without `series`, whose bars stand alone.
    Mean,
}

fn default_chart_top() -> usize {
    8
}

/// The colour palette holds nine colours (plus grey for "Other"), so at most nine series stack.
pub(crate) const MAX_SERIES: usize = 9;

/// Most bars a horizontal bar chart draws (a bar chart with 500 rows helps nobody).
const MAX_BAR_CATEGORIES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// One vertical bar per x value (a day, a month), stacked by series; top N series + "Other".
    StackedBars,
    /// One horizontal bar per category, largest first; top N categories + "Other".
    Bars,
}

/// The file as written; turned into a [`ReportDefinition`] after the checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportDefinitionFile {
    title: String,
    mart: String,
    #[serde(default)]
    description: String,
    columns: Vec<ColumnSpec>,
    #[serde(default)]
    order_by: Vec<String>,
    #[serde(default)]
    chart: Option<ChartSpec>,
    #[serde(default)]
    totals: Vec<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    period_days: Option<u32>,
    #[serde(default)]
    html_rows: Option<usize>,
}

/// Loads every `*.toml` file in `dir`, sorted by name. Any bad file fails the whole load, with
/// an error naming the file and the key.
pub fn load_definitions(dir: &Path) -> Result<Vec<ReportDefinition>, ReportError> {
    let files =
        crate::shipped::files(dir, "toml").map_err(|source| ReportError::DefinitionRead {
            path: dir.to_path_buf(),
            source,
        })?;
    let definitions = files
        .iter()
        .map(|(path, text)| {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or_default();
            parse_definition(path, name, text)
        })
        .collect::<Result<Vec<_>, _>>()?;
    tracing::debug!(dir = %dir.display(), reports = definitions.len(), "loaded report definitions");
    Ok(definitions)
}

/// Loads one definition file; its stem becomes the report name.
pub fn load_definition_file(path: &Path) -> Result<ReportDefinition, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::DefinitionRead {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default()
        .to_owned();
    parse_definition(path, &name, &text)
}

/// Parses and checks one definition's text. `path` is only used in errors.
pub fn parse_definition(
    path: &Path,
    name: &str,
    text: &str,
) -> Result<ReportDefinition, ReportError> {
    let definition_error = |key: &str, message: String| ReportError::Definition {
        path: path.to_path_buf(),
        key: key.to_owned(),
        message,
    };
    if !is_file_stem(name) {
        return Err(definition_error(
            ".",
            format!("the file name `{name}` must be lowercase letters, digits, `_` or `-`"),
        ));
    }
    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|toml_error| definition_error(".", describe_toml_error(&toml_error, text)))?;
    let file: ReportDefinitionFile =
        serde_path_to_error::deserialize(deserializer).map_err(|path_error| {
            let key = path_error.path().to_string();
            definition_error(&key, describe_toml_error(path_error.inner(), text))
        })?;
    let definition = ReportDefinition {
        name: name.to_owned(),
        title: file.title,
        mart: file.mart,
        description: file.description,
        columns: file.columns,
        order_by: file.order_by,
        chart: file.chart,
        totals: file.totals,
        limit: file.limit,
        period_days: file.period_days,
        html_rows: file.html_rows.unwrap_or(DEFAULT_HTML_ROWS),
    };
    check_definition(&definition).map_err(|(key, message)| definition_error(&key, message))?;
    Ok(definition)
}

fn describe_toml_error(toml_error: &toml::de::Error, text: &str) -> String {
    match toml_error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{} (line {line})", toml_error.message().trim_end())
        }
        None => toml_error.message().trim_end().to_owned(),
    }
}

/// The semantic checks serde cannot do. Returns the offending key and what is wrong.
fn check_definition(definition: &ReportDefinition) -> Result<(), (String, String)> {
    if definition.title.trim().is_empty() {
        return Err(("title".into(), "must not be empty".into()));
    }
    if !is_identifier(&definition.mart) {
        return Err((
            "mart".into(),
            format!("`{}` is not a plain SQL identifier", definition.mart),
        ));
    }
    if definition.columns.is_empty() {
        return Err((
            "columns".into(),
            "a report needs at least one column".into(),
        ));
    }
    let mut seen_columns = HashSet::new();
    for (index, column) in definition.columns.iter().enumerate() {
        if !is_identifier(&column.name) {
            return Err((
                format!("columns[{index}].name"),
                format!("`{}` is not a plain snake_case identifier", column.name),
            ));
        }
        if !seen_columns.insert(column.name.as_str()) {
            return Err((
                format!("columns[{index}].name"),
                format!("`{}` appears twice", column.name),
            ));
        }
        if column.label.trim().is_empty() {
            return Err((
                format!("columns[{index}].label"),
                "must not be empty".into(),
            ));
        }
    }
    let column_format = |column_name: &str| {
        definition
            .columns
            .iter()
            .find(|column| column.name == column_name)
            .map(|column| column.format)
    };
    for (index, order_by_item) in definition.order_by.iter().enumerate() {
        let mut words = order_by_item.split_whitespace();
        let column_name = words.next().unwrap_or_default();
        let direction = words.next().map(str::to_ascii_lowercase);
        let valid_direction = matches!(direction.as_deref(), None | Some("asc") | Some("desc"));
        if column_format(column_name).is_none() || !valid_direction || words.next().is_some() {
            return Err((
                format!("order_by[{index}]"),
                format!(
                    "`{order_by_item}` must be `<column>` or `<column> asc|desc`, with a column of this report"
                ),
            ));
        }
    }
    for (index, total_column) in definition.totals.iter().enumerate() {
        match column_format(total_column) {
            None => {
                return Err((
                    format!("totals[{index}]"),
                    format!("`{total_column}` is not a column of this report"),
                ))
            }
            Some(ColumnFormat::Usd | ColumnFormat::Number | ColumnFormat::Integer) => {}
            Some(other_format) => {
                return Err((
                    format!("totals[{index}]"),
                    format!(
                        "`{total_column}` has format {other_format:?}; only usd, number and integer columns add up"
                    ),
                ))
            }
        }
    }
    if definition.html_rows == 0 {
        return Err((
            "html_rows".into(),
            "must be at least 1 (or left out)".into(),
        ));
    }
    if let Some(days) = definition.period_days {
        if days == 0 {
            return Err((
                "period_days".into(),
                "must be at least 1 (or left out)".into(),
            ));
        }
        if definition.period_column().is_none() {
            return Err((
                "period_days".into(),
                "needs a column with format = \"date\" to count the days on".into(),
            ));
        }
    }
    if definition.limit == Some(0) {
        return Err(("limit".into(), "must be at least 1 (or left out)".into()));
    }
    if let Some(chart) = &definition.chart {
        for (key, column_name) in [("chart.x", Some(&chart.x)), ("chart.y", Some(&chart.y))]
            .into_iter()
            .chain([("chart.series", chart.series.as_ref())])
        {
            let Some(column_name) = column_name else {
                continue;
            };
            if column_format(column_name).is_none() {
                return Err((
                    key.into(),
                    format!("`{column_name}` is not a column of this report"),
                ));
            }
        }
        if column_format(&chart.y).is_some_and(|format| !format.is_numeric()) {
            return Err((
                "chart.y".into(),
                format!(
                    "`{}` must be a usd, number, percent or integer column",
                    chart.y
                ),
            ));
        }
        let max_top = match chart.kind {
            ChartKind::StackedBars if chart.series.is_some() => MAX_SERIES,
            ChartKind::StackedBars => usize::MAX,
            ChartKind::Bars => MAX_BAR_CATEGORIES,
        };
        if chart.top == 0 || chart.top > max_top {
            return Err((
                "chart.top".into(),
                format!("must be between 1 and {max_top}"),
            ));
        }
        if chart.aggregate == ChartAggregate::Mean
            && (chart.kind != ChartKind::Bars || chart.series.is_some())
        {
            return Err((
                "chart.aggregate".into(),
                "`mean` is for a `bars` chart without `series` (means do not stack)".into(),
            ));
        }
    }
    Ok(())
}

/// A plain lowercase SQL identifier: safe to put into a query and a CSV header as is.
fn is_identifier(candidate: &str) -> bool {
    let mut characters = candidate.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && characters.all(|rest| rest.is_ascii_lowercase() || rest.is_ascii_digit() || rest == '_')
}

/// A report name usable as a file stem on every platform.
pub(crate) fn is_file_stem(candidate: &str) -> bool {
    !candidate.is_empty()
        && candidate.len() <= 100
        && !candidate.starts_with(['.', '-'])
        && candidate.chars().all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || character == '_'
                || character == '-'
        })
}

/// Quotes an identifier for DuckDB (the checks above already rule out quotes in it).
fn quote_identifier(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl ReportDefinition {
    /// `select "a", "b" from "mart" order by "a" desc limit 200`: the query whose result
    /// [`super::render_report`] expects (exactly the definition's columns, in order).
    pub fn query_sql(&self) -> String {
        let selected_columns = self
            .columns
            .iter()
            .map(|column| quote_identifier(&column.name))
            .collect::<Vec<_>>()
            .join(", ");
        let mut query = format!(
            "select {selected_columns} from {}",
            quote_identifier(&self.mart)
        );
        if let (Some(days), Some(column)) = (self.period_days, self.period_column()) {
            let column = quote_identifier(column);
            query.push_str(&format!(
                " where {column} > (select max({column}) from {}) - interval {days} day",
                quote_identifier(&self.mart)
            ));
        }
        if !self.order_by.is_empty() {
            let order_by_items = self
                .order_by
                .iter()
                .map(|order_by_item| {
                    let mut words = order_by_item.split_whitespace();
                    let column_name = words.next().unwrap_or_default();
                    match words.next() {
                        Some(direction) => format!(
                            "{} {}",
                            quote_identifier(column_name),
                            direction.to_ascii_lowercase()
                        ),
                        None => quote_identifier(column_name),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            query.push_str(&format!(" order by {order_by_items}"));
        }
        if let Some(limit) = self.limit {
            query.push_str(&format!(" limit {limit}"));
        }
        query
    }

    /// The column `period_days` counts on: the first one shown as a date.
    pub fn period_column(&self) -> Option<&str> {
        self.columns
            .iter()
            .find(|column| column.format == ColumnFormat::Date)
            .map(|column| column.name.as_str())
    }

    /// The column's spec, by name.
    pub fn column(&self, column_name: &str) -> Option<&ColumnSpec> {
        self.columns
            .iter()
            .find(|column| column.name == column_name)
    }

    /// Whether the page should state the shared-cost policy: only reports that show shared costs.
    pub fn shows_shared_costs(&self) -> bool {
        self.mart == "chargeback_namespace"
            || self
                .columns
                .iter()
                .any(|column| column.name.starts_with("shared_cost"))
    }

    /// The shipped definitions folder, for tests.
    #[cfg(test)]
    pub(crate) fn shipped_folder() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reports")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
title = "Costs"
mart = "chargeback_namespace"
columns = [
    { name = "day", label = "Day", format = "date" },
    { name = "namespace", label = "Namespace", format = "text" },
    { name = "total_cost_usd", label = "Total", format = "usd" },
]
order_by = ["day", "total_cost_usd desc"]
totals = ["total_cost_usd"]
limit = 10

[chart]
kind = "stacked_bars"
x = "day"
y = "total_cost_usd"
series = "namespace"
top = 3
"#;

    fn parse(text: &str) -> Result<ReportDefinition, ReportError> {
        parse_definition(Path::new("reports/costs.toml"), "costs", text)
    }

    fn expect_definition_error(text: &str) -> (String, String) {
        match parse(text) {
            Err(ReportError::Definition { path, key, message }) => {
                assert_eq!(path, Path::new("reports/costs.toml"));
                (key, message)
            }
            other => panic!("expected a definition error, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_minimal_definition_and_builds_its_query() {
        let definition = parse(MINIMAL).unwrap();
        assert_eq!(definition.name, "costs");
        assert_eq!(definition.columns.len(), 3);
        assert_eq!(definition.columns[2].format, ColumnFormat::Usd);
        assert_eq!(
            definition.chart.as_ref().unwrap().kind,
            ChartKind::StackedBars
        );
        assert_eq!(
            definition.query_sql(),
            r#"select "day", "namespace", "total_cost_usd" from "chargeback_namespace" order by "day", "total_cost_usd" desc limit 10"#
        );
    }

    #[test]
    fn a_period_keeps_the_last_days_of_the_first_date_column() {
        let definition = parse(&MINIMAL.replace("limit = 10", "period_days = 31")).unwrap();
        assert_eq!(
            definition.query_sql(),
            r#"select "day", "namespace", "total_cost_usd" from "chargeback_namespace" where "day" > (select max("day") from "chargeback_namespace") - interval 31 day order by "day", "total_cost_usd" desc"#
        );
        let (key, message) =
            expect_definition_error(&MINIMAL.replace("limit = 10", "period_days = 0"));
        assert_eq!(
            (key.as_str(), message.contains("at least 1")),
            ("period_days", true)
        );
        let undated = MINIMAL
            .replace("format = \"date\"", "format = \"text\"")
            .replace("limit = 10", "period_days = 7");
        let (key, message) = expect_definition_error(&undated);
        assert_eq!(key, "period_days", "{message}");
        let (key, _) = expect_definition_error(&MINIMAL.replace("limit = 10", "html_rows = 0"));
        assert_eq!(key, "html_rows");
    }

    #[test]
    fn loads_every_shipped_report_sorted_by_name() {
        let definitions = load_definitions(&ReportDefinition::shipped_folder()).unwrap();
        let names: Vec<&str> = definitions
            .iter()
            .map(|definition| definition.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "audit_activity",
                "chargeback_account",
                "chargeback_namespace",
                "cost_anomalies",
                "cost_forecast",
                "forecast_accuracy",
                "reconciliation",
                "rightsizing",
                "savings_potential",
                "savings_realized"
            ]
        );
        for definition in &definitions {
            assert_eq!(
                definition.mart, definition.name,
                "one report per mart, named after it"
            );
            assert!(
                definition.chart.is_some(),
                "{} has a chart",
                definition.name
            );
        }
    }

    #[test]
    fn rejects_an_unknown_key_naming_file_and_key() {
        let (key, message) =
            expect_definition_error(&MINIMAL.replace("top = 3", "top = 3\ncolour = \"red\""));
        assert_eq!(key, "chart.colour");
        assert!(message.contains("colour"), "{message}");
        let (key, message) = expect_definition_error(&format!("subtitle = \"x\"\n{MINIMAL}"));
        assert_eq!(key, "subtitle");
        assert!(message.contains("subtitle"), "{message}");
    }

    #[test]
    fn rejects_an_unknown_column_format_naming_the_column() {
        let (key, message) =
            expect_definition_error(&MINIMAL.replace("format = \"usd\"", "format = \"money\""));
        assert_eq!(key, "columns[2].format");
        assert!(message.contains("money"), "{message}");
        let error = parse(&MINIMAL.replace("format = \"usd\"", "format = \"money\"")).unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.contains("reports/costs.toml") && shown.contains("columns[2].format"),
            "{shown}"
        );
    }

    #[test]
    fn rejects_references_to_columns_the_report_does_not_have() {
        let (key, _) = expect_definition_error(
            &MINIMAL.replace("series = \"namespace\"", "series = \"team\""),
        );
        assert_eq!(key, "chart.series");
        let (key, _) = expect_definition_error(
            &MINIMAL.replace("totals = [\"total_cost_usd\"]", "totals = [\"day\"]"),
        );
        assert_eq!(key, "totals[0]");
        let (key, _) = expect_definition_error(&MINIMAL.replace(
            "\"total_cost_usd desc\"",
            "\"total_cost_usd; drop table x\"",
        ));
        assert_eq!(key, "order_by[1]");
        let (key, _) = expect_definition_error(
            &MINIMAL.replace("\"total_cost_usd desc\"", "\"total_cost_usd sideways\""),
        );
        assert_eq!(key, "order_by[1]");
        let (key, _) = expect_definition_error(
            &MINIMAL.replace("mart = \"chargeback_namespace\"", "mart = \"x; drop\""),
        );
        assert_eq!(key, "mart");
        let (key, _) = expect_definition_error(&MINIMAL.replace("top = 3", "top = 12"));
        assert_eq!(key, "chart.top");
        let (key, message) =
            expect_definition_error(&MINIMAL.replace("top = 3", "top = 3\naggregate = \"mean\""));
        assert_eq!(key, "chart.aggregate");
        assert!(message.contains("stack"), "{message}");
        let (key, message) =
            expect_definition_error(&MINIMAL.replace("top = 3", "top = 3\naggregate = \"median\""));
        assert_eq!(key, "chart.aggregate");
        assert!(message.contains("median"), "{message}");
    }

    #[test]
    fn rejects_bad_toml_syntax_with_a_line_number() {
        let (key, message) = expect_definition_error("title = \"x\"\nmart = \n");
        assert_eq!(key, ".");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn load_definitions_names_the_bad_file() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("a_good.toml"), MINIMAL).unwrap();
        std::fs::write(
            folder.path().join("b_bad.toml"),
            MINIMAL.replace("format = \"date\"", "format = \"calendar\""),
        )
        .unwrap();
        std::fs::write(folder.path().join("notes.md"), "not a report").unwrap();
        let error = load_definitions(folder.path()).unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.contains("b_bad.toml") && shown.contains("columns[0].format"),
            "{shown}"
        );
    }
}

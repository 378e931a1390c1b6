//! `spotcost export focus`: the warehouse's charges as a FOCUS 1.2 CostAndUsage file (Parquet or
//! CSV), from the shipped query `queries/exports/focus.sql`. The query runs in DuckDB over the
//! read-only warehouse and DuckDB writes the file; spotcost sets the period, neutralises formula
//! text in CSV, writes beside the target and renames into place, so a reader never sees half a
//! file and a failed export leaves the previous one untouched.

use crate::models::{ModelError, Warehouse};
use chrono::{Datelike, NaiveDate};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: the export file must end in .parquet or .csv")]
    Format { path: PathBuf },
    #[error("--from {from} is after --to {to}")]
    Range { from: NaiveDate, to: NaiveDate },
    #[error("no warehouse at {path}: run `spotcost model` (or `spotcost run`) first")]
    NoWarehouse { path: PathBuf },
    #[error("the warehouse holds no usage day to export")]
    Empty,
    #[error("cannot read the export query {path}: {message}")]
    Query { path: PathBuf, message: String },
    #[error(transparent)]
    Warehouse(#[from] ModelError),
    #[error("cannot write the export {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ExportError {
    /// A mistake in the command line rather than a failed export.
    pub fn is_usage(&self) -> bool {
        matches!(self, ExportError::Format { .. } | ExportError::Range { .. })
    }
}

/// The file formats an export is written in, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Parquet,
    Csv,
}

impl ExportFormat {
    pub fn of(path: &Path) -> Result<ExportFormat, ExportError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet") => Ok(ExportFormat::Parquet),
            Some("csv") => Ok(ExportFormat::Csv),
            _ => Err(ExportError::Format {
                path: path.to_owned(),
            }),
        }
    }

    /// DuckDB's `COPY … TO` options. CSV timestamps are ISO 8601 UTC with a `Z`, as FOCUS asks.
    fn copy_options(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "format parquet, compression zstd",
            ExportFormat::Csv => "format csv, header, timestampformat '%Y-%m-%dT%H:%M:%SZ'",
        }
    }
}

/// What to export: usage days `from..=to` (default: the month of the warehouse's latest day, up
/// to that day) into `out` (default `DIR/exports/focus_<from>_<to>.parquet`).
#[derive(Debug, Clone, Default)]
pub struct FocusRequest {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub out: Option<PathBuf>,
}

/// What one export wrote, read back from the file itself.
#[derive(Debug, Clone)]
pub struct FocusSummary {
    pub path: PathBuf,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rows: u64,
    /// The sum of BilledCost, USD.
    pub billed_cost_usd: f64,
}

/// Writes the FOCUS export of the warehouse in `data_dir`, with the export query of `queries_dir`.
pub fn focus(
    data_dir: &Path,
    queries_dir: &Path,
    request: &FocusRequest,
) -> Result<FocusSummary, ExportError> {
    if let (Some(from), Some(to)) = (request.from, request.to) {
        if from > to {
            return Err(ExportError::Range { from, to });
        }
    }
    if let Some(out) = &request.out {
        ExportFormat::of(out)?;
    }
    let sql = export_query(queries_dir, "focus")?;
    let warehouse_path = crate::models::warehouse_path(data_dir);
    if !warehouse_path.exists() {
        return Err(ExportError::NoWarehouse {
            path: warehouse_path,
        });
    }
    let warehouse = Warehouse::open_read_only(data_dir)?;
    let (from, to) = match (request.from, request.to) {
        (Some(from), Some(to)) => (from, to),
        (from, to) => {
            let latest = latest_day(&warehouse)?.ok_or(ExportError::Empty)?;
            let to = to.unwrap_or(latest);
            let from = from.unwrap_or_else(|| to.with_day(1).unwrap_or(to));
            if from > to {
                return Err(ExportError::Range { from, to });
            }
            (from, to)
        }
    };
    let out = request.out.clone().unwrap_or_else(|| {
        data_dir
            .join("exports")
            .join(format!("focus_{from}_{to}.parquet"))
    });
    let format = ExportFormat::of(&out)?;
    if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| ExportError::Write {
            path: folder.to_owned(),
            source,
        })?;
    }
    let file_name = out.file_name().and_then(|n| n.to_str()).unwrap_or("export");
    let temp = out.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = write(&warehouse, &sql, from, to, format, &temp);
    let summary = written.and_then(|()| read_back(&warehouse, &temp, format));
    let (rows, billed_cost_usd) = match summary {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
    };
    std::fs::rename(&temp, &out).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        ExportError::Write {
            path: out.clone(),
            source,
        }
    })?;
    Ok(FocusSummary {
        path: out,
        from,
        to,
        rows,
        billed_cost_usd,
    })
}

/// The text of `queries_dir/exports/<name>.sql` (a real folder or the built-in one).
fn export_query(queries_dir: &Path, name: &str) -> Result<String, ExportError> {
    let folder = queries_dir.join("exports");
    let path = folder.join(format!("{name}.sql"));
    let files = crate::shipped::files(&folder, "sql").map_err(|e| ExportError::Query {
        path: path.clone(),
        message: e.to_string(),
    })?;
    files
        .into_iter()
        .find(|(file, _)| file.file_stem().and_then(|s| s.to_str()) == Some(name))
        .map(|(_, text)| text)
        .ok_or_else(|| ExportError::Query {
            path,
            message: "no such file".into(),
        })
}

/// The warehouse's latest usage day with a charge.
fn latest_day(warehouse: &Warehouse) -> Result<Option<NaiveDate>, ExportError> {
    let text = warehouse.query_text(
        "select max(day)::varchar from (select max(day) as day from savings_realized \
         union all select max(day) from int_ocean_cluster_days)",
    )?;
    Ok(text.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok()))
}

/// JSON text for the export's Tags and allocation details, built in SQL: the bundled DuckDB has no
/// json extension. A string is quoted with `"`, `\` and control characters escaped (the slow
/// per-character path only for strings that hold one); a map becomes an object of its entries in
/// order, a null map `{}`.
const JSON_MACROS: &str = r#"
create or replace temp macro spotcost_json_string(s) as
    case
        when s is null then 'null'
        when not regexp_matches(s, '["\\\x00-\x1f]') then '"' || s || '"'
        else '"' || array_to_string(list_transform(string_split(s, ''), lambda c:
            case
                when c = '"' then '\"'
                when c = '\' then '\\'
                when ord(c) < 32 then '\u' || lpad(hex(ord(c)), 4, '0')
                else c
            end), '') || '"'
    end;
create or replace temp macro spotcost_json_object(m) as
    '{' || coalesce(array_to_string(list_transform(map_entries(m), lambda e:
        spotcost_json_string(e.key) || ':' || spotcost_json_string(e.value)), ','), '') || '}';
"#;

/// Runs the export query over `from..=to` and has DuckDB write it to `path`.
fn write(
    warehouse: &Warehouse,
    sql: &str,
    from: NaiveDate,
    to: NaiveDate,
    format: ExportFormat,
    path: &Path,
) -> Result<(), ExportError> {
    // Dates are formatted from parsed values, never pasted from input.
    warehouse.execute(
        "binding the export query",
        &format!(
            "{JSON_MACROS}\n\
             set variable spotcost_export_from = date '{from}';\n\
         set variable spotcost_export_to = date '{to}';\n\
         create or replace temp view spotcost_export as\n{}",
            sql.trim().trim_end_matches(';')
        ),
    )?;
    let select = match format {
        ExportFormat::Parquet => "select * from spotcost_export".to_owned(),
        ExportFormat::Csv => neutralised_select(warehouse)?,
    };
    warehouse.execute(
        &format!("writing {}", path.display()),
        &format!(
            "copy ({select}) to {} ({})",
            crate::models::quote_literal(&path.display().to_string()),
            format.copy_options()
        ),
    )?;
    Ok(())
}

/// The export's columns with every text value that a spreadsheet would run as a formula (leading
/// `=`, `+`, `-`, `@`, tab or carriage return) prefixed with `'`, as the CSV reports do.
fn neutralised_select(warehouse: &Warehouse) -> Result<String, ExportError> {
    let batches = warehouse.query_arrow(
        "select column_name, data_type from information_schema.columns \
         where table_name = 'spotcost_export' order by ordinal_position",
    )?;
    let mut columns = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let text = |index: usize| {
                arrow::util::display::array_value_to_string(batch.column(index), row)
                    .unwrap_or_default()
            };
            let (name, data_type) = (text(0), text(1));
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            columns.push(if data_type == "VARCHAR" {
                format!(
                    "case when regexp_matches({quoted}, '^[=+\\-@\\t\\r]') then '''' || {quoted} else {quoted} end as {quoted}"
                )
            } else {
                quoted
            });
        }
    }
    Ok(format!(
        "select {} from spotcost_export",
        columns.join(", ")
    ))
}

/// Rows and BilledCost of the written file, read back through DuckDB.
fn read_back(
    warehouse: &Warehouse,
    path: &Path,
    format: ExportFormat,
) -> Result<(u64, f64), ExportError> {
    let literal = crate::models::quote_literal(&path.display().to_string());
    let source = match format {
        ExportFormat::Parquet => format!("read_parquet({literal})"),
        ExportFormat::Csv => format!("read_csv({literal}, header = true)"),
    };
    let text = warehouse
        .query_text(&format!(
            "select count(*) || ' ' || coalesce(sum(BilledCost::decimal(38, 10)), 0) from {source}"
        ))?
        .unwrap_or_default();
    let mut parts = text.split(' ');
    let rows = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let billed = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0.0);
    Ok((rows, billed))
}

//! The DuckDB model runner: the only code that opens DuckDB. It builds `DIR/warehouse.duckdb` from
//! the SQL in `queries/`: a `raw_spot__<dataset>` view over each lake dataset, staging views, mart
//! tables (in dependency order), column comments, then the data tests. It never names a dataset
//! itself beyond the list the lake declares, and it replaces the warehouse atomically: a failed
//! build leaves the previous warehouse in place.

use crate::extract::Dataset;
use crate::history;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read the models in {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model {model} ({path}): {message}")]
    Sql {
        model: String,
        path: PathBuf,
        message: String,
    },
    #[error("DuckDB: {context}: {message}")]
    Duckdb { context: String, message: String },
    #[error("models depend on each other in a cycle: {0}")]
    Cycle(String),
    #[error("{} data test(s) failed:\n{}", .0.len(), .0.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"))]
    DataTests(Vec<FailedTest>),
    #[error("cannot replace the warehouse {path}: {source}")]
    Replace {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A data test that returned rows: its name, how many, and the first few, printed as text.
#[derive(Debug, Clone)]
pub struct FailedTest {
    pub name: String,
    pub rows: usize,
    pub first_rows: Vec<String>,
}

impl std::fmt::Display for FailedTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "  {} returned {} offending row(s):",
            self.name, self.rows
        )?;
        for row in &self.first_rows {
            writeln!(f, "    {row}")?;
        }
        Ok(())
    }
}

/// How shared Ocean cost (headroom, unused storage, unattributed) is spread over namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedCostPolicy {
    /// Kept as an explicit `__shared__` row per cluster and day.
    None,
    /// In proportion to each namespace's own cost (the default).
    Proportional,
    /// Evenly over the cluster-day's namespaces.
    Even,
}

impl SharedCostPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SharedCostPolicy::None => "none",
            SharedCostPolicy::Proportional => "proportional",
            SharedCostPolicy::Even => "even",
        }
    }
}

impl std::str::FromStr for SharedCostPolicy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "none" => Ok(SharedCostPolicy::None),
            "proportional" => Ok(SharedCostPolicy::Proportional),
            "even" => Ok(SharedCostPolicy::Even),
            other => Err(format!(
                "unknown shared-cost policy {other:?}: expected none, proportional or even"
            )),
        }
    }
}

/// The settings the SQL reads from the `spotcost_settings` table (data, not templating).
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub shared_cost_policy: SharedCostPolicy,
    pub team_label_key: String,
    pub cost_center_label_key: String,
    /// How far the instance-cost CSV may stray from the group costs per group-day before the
    /// data test fails, USD.
    pub instance_cost_tolerance_usd: f64,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            shared_cost_policy: SharedCostPolicy::Proportional,
            team_label_key: "team".into(),
            cost_center_label_key: "cost-center".into(),
            instance_cost_tolerance_usd: 0.01,
        }
    }
}

/// What one build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub warehouse: PathBuf,
    pub staging: Vec<String>,
    pub marts: Vec<String>,
    pub tests_passed: Vec<String>,
}

/// One SQL model file: its relation name (the file stem) and its text.
#[derive(Debug, Clone)]
struct Model {
    name: String,
    path: PathBuf,
    sql: String,
}

fn load_folder(folder: &Path) -> Result<Vec<Model>, ModelError> {
    let files = match crate::shipped::files(folder, "sql") {
        Ok(files) => files,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(ModelError::Read {
                path: folder.to_owned(),
                source,
            })
        }
    };
    let mut models: Vec<Model> = files
        .into_iter()
        .map(|(path, sql)| Model {
            name: path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned(),
            path,
            sql,
        })
        .collect();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(models)
}

/// Orders marts so each comes after the marts its SQL names (a word-boundary match on the name).
fn dependency_order(marts: Vec<Model>) -> Result<Vec<Model>, ModelError> {
    let names: BTreeSet<String> = marts.iter().map(|m| m.name.clone()).collect();
    let mut depends: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for mart in &marts {
        let words: BTreeSet<&str> = mart
            .sql
            .lines()
            .map(|line| line.split("--").next().unwrap_or(""))
            .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .collect();
        let needs = names
            .iter()
            .filter(|n| **n != mart.name && words.contains(n.as_str()))
            .cloned()
            .collect();
        depends.insert(mart.name.clone(), needs);
    }
    let mut by_name: BTreeMap<String, Model> =
        marts.into_iter().map(|m| (m.name.clone(), m)).collect();
    let mut ordered = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    while !by_name.is_empty() {
        let ready: Vec<String> = by_name
            .keys()
            .filter(|name| depends[*name].iter().all(|d| done.contains(d)))
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(ModelError::Cycle(
                by_name.keys().cloned().collect::<Vec<_>>().join(", "),
            ));
        }
        for name in ready {
            if let Some(model) = by_name.remove(&name) {
                ordered.push(model);
            }
            done.insert(name);
        }
    }
    Ok(ordered)
}

/// The comments a mart file declares: its first line (`-- <purpose>. grain: …`) for the table
/// and `-- column <name>: <description>` lines for its columns.
fn declared_comments(sql: &str) -> (String, BTreeMap<String, String>) {
    let table = sql
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("--")
        .trim()
        .to_owned();
    let columns = sql
        .lines()
        .filter_map(|line| line.trim().strip_prefix("-- column "))
        .filter_map(|rest| rest.split_once(':'))
        .map(|(name, text)| (name.trim().to_owned(), text.trim().to_owned()))
        .collect();
    (table, columns)
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// DuckDB's name for a lake column type, for the empty stand-in view of a dataset with no files.
fn duckdb_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Utf8 => "varchar",
        DataType::Float64 => "double",
        DataType::Int64 => "bigint",
        DataType::Date32 => "date",
        DataType::Timestamp(_, _) => "timestamptz",
        DataType::Map(_, _) => "map(varchar, varchar)",
        _ => "varchar",
    }
}

/// `create view raw_spot__<dataset>` over the lake folder, or an empty view of the declared
/// schema when the dataset has no files yet (so models still bind).
fn raw_view_sql(lake: &Path, dataset: Dataset) -> String {
    parquet_view_sql(
        &format!("raw_spot__{}", dataset.name()),
        &lake.join(dataset.name()),
        &dataset.schema(),
        true,
    )
}

/// A view over the Parquet files under `folder` (Hive `day=` folders when `partitioned`), or an
/// empty view of `schema` when there are none yet.
fn parquet_view_sql(name: &str, folder: &Path, schema: &Schema, partitioned: bool) -> String {
    if walk_has_parquet(folder) {
        let glob = if partitioned {
            format!("{}/**/*.parquet", folder.display())
        } else {
            format!("{}/*.parquet", folder.display())
        };
        format!(
            "create or replace view {name} as select * from read_parquet({}, hive_partitioning = {partitioned}, union_by_name = true)",
            quote_literal(&glob)
        )
    } else {
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                format!(
                    "cast(null as {}) as {}",
                    duckdb_type(f.data_type()),
                    f.name()
                )
            })
            .chain(partitioned.then(|| "cast(null as date) as day".to_owned()))
            .collect();
        format!(
            "create or replace view {name} as select {} where false",
            columns.join(", ")
        )
    }
}

/// The run history: the views `runs` and `run_items` over `DIR/state/{runs,run_items}/*.parquet`.
/// They read the files when queried, so they include runs recorded after the build.
fn run_history_sql(state_dir: &Path) -> String {
    let runs = parquet_view_sql(
        "runs",
        &state_dir.join("runs"),
        &history::runs_schema(),
        false,
    );
    let items = parquet_view_sql(
        "run_items",
        &state_dir.join("run_items"),
        &history::run_items_schema(),
        false,
    );
    format!(
        "{runs};\n{items};\n\
         comment on view runs is 'One row per spotcost command run (run, extract, backfill, model, report, demo): running while it runs (or if it was killed), then succeeded, failed or interrupted.';\n\
         comment on view run_items is 'One row per run, dataset and account (account_id org for organisation-wide datasets): days and rows landed, API requests, retries, 429s and the error.';"
    )
}

fn walk_has_parquet(folder: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            walk_has_parquet(&path)
        } else {
            path.extension().and_then(|e| e.to_str()) == Some("parquet")
                && !path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .starts_with('.')
        }
    })
}

fn duck<T>(context: &str, result: duckdb::Result<T>) -> Result<T, ModelError> {
    result.map_err(|e| ModelError::Duckdb {
        context: context.to_owned(),
        message: e.to_string(),
    })
}

pub fn warehouse_path(data_dir: &Path) -> PathBuf {
    data_dir.join("warehouse.duckdb")
}

/// Builds the warehouse from `queries_dir` over `data_dir/lake`, runs the data tests, and only
/// then moves it into place as `data_dir/warehouse.duckdb`. A build whose tests fail is kept as
/// `warehouse.failed.duckdb` for inspection; the previous warehouse stays untouched.
pub fn build(
    data_dir: &Path,
    queries_dir: &Path,
    settings: &ModelSettings,
) -> Result<BuildReport, ModelError> {
    let lake =
        std::fs::canonicalize(data_dir.join("lake")).unwrap_or_else(|_| data_dir.join("lake"));
    let final_path = warehouse_path(data_dir);
    let temp_path = data_dir.join(format!(".warehouse.duckdb.tmp-{}", std::process::id()));
    let failed_path = data_dir.join("warehouse.failed.duckdb");
    std::fs::create_dir_all(data_dir).map_err(|source| ModelError::Replace {
        path: data_dir.to_owned(),
        source,
    })?;
    remove_database(&temp_path);

    let state_dir = std::fs::canonicalize(data_dir)
        .unwrap_or_else(|_| data_dir.to_owned())
        .join("state");
    let outcome = build_into(&temp_path, &lake, &state_dir, queries_dir, settings);
    match outcome {
        Ok(mut report) => {
            std::fs::rename(&temp_path, &final_path).map_err(|source| ModelError::Replace {
                path: final_path.clone(),
                source,
            })?;
            remove_database(&failed_path);
            report.warehouse = final_path;
            Ok(report)
        }
        Err(error @ ModelError::DataTests(_)) => {
            remove_database(&failed_path);
            let _ = std::fs::rename(&temp_path, &failed_path);
            Err(error)
        }
        Err(error) => {
            remove_database(&temp_path);
            Err(error)
        }
    }
}

fn remove_database(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut wal = path.as_os_str().to_owned();
    wal.push(".wal");
    let _ = std::fs::remove_file(PathBuf::from(wal));
}

fn build_into(
    path: &Path,
    lake: &Path,
    state_dir: &Path,
    queries_dir: &Path,
    settings: &ModelSettings,
) -> Result<BuildReport, ModelError> {
    let connection = duck("opening the new warehouse", duckdb::Connection::open(path))?;
    let mut report = BuildReport::default();
    // Configuration values reach SQL only as bound parameters.
    duck(
        "writing spotcost_settings",
        connection.execute_batch(
            "create or replace table spotcost_settings (shared_cost_policy varchar, team_label_key varchar, \
             cost_center_label_key varchar, instance_cost_tolerance_usd double);\n\
             comment on table spotcost_settings is 'The settings the models were built with (one row).';",
        ),
    )?;
    duck(
        "writing spotcost_settings",
        connection.execute(
            "insert into spotcost_settings values (?, ?, ?, ?)",
            duckdb::params![
                settings.shared_cost_policy.as_str(),
                settings.team_label_key,
                settings.cost_center_label_key,
                settings.instance_cost_tolerance_usd,
            ],
        ),
    )?;
    for dataset in Dataset::ALL {
        let sql = raw_view_sql(lake, dataset);
        duck(
            &format!("creating raw_spot__{}", dataset.name()),
            connection.execute_batch(&sql),
        )?;
    }
    duck(
        "creating the run history views",
        connection.execute_batch(&run_history_sql(state_dir)),
    )?;
    for model in load_folder(&queries_dir.join("staging"))? {
        run_model(&connection, &model, "view")?;
        report.staging.push(model.name);
    }
    for model in dependency_order(load_folder(&queries_dir.join("marts"))?)? {
        run_model(&connection, &model, "table")?;
        comment_model(&connection, &model)?;
        report.marts.push(model.name);
    }
    let mut failures = Vec::new();
    for test in load_folder(&queries_dir.join("tests"))? {
        match run_test(&connection, &test)? {
            None => report.tests_passed.push(test.name),
            Some(failure) => failures.push(failure),
        }
    }
    duck("checkpointing", connection.execute_batch("checkpoint"))?;
    drop(connection);
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(ModelError::DataTests(failures))
    }
}

fn run_model(connection: &duckdb::Connection, model: &Model, kind: &str) -> Result<(), ModelError> {
    let body = model.sql.trim().trim_end_matches(';');
    let sql = format!("create or replace {kind} {} as\n{body}", model.name);
    connection.execute_batch(&sql).map_err(|e| ModelError::Sql {
        model: model.name.clone(),
        path: model.path.clone(),
        message: e.to_string(),
    })
}

fn comment_model(connection: &duckdb::Connection, model: &Model) -> Result<(), ModelError> {
    let (table, columns) = declared_comments(&model.sql);
    let mut sql = format!(
        "comment on table {} is {};\n",
        model.name,
        quote_literal(&table)
    );
    let actual = mart_columns(connection, &model.name)?;
    for column in &actual {
        let text = columns.get(column).ok_or_else(|| ModelError::Sql {
            model: model.name.clone(),
            path: model.path.clone(),
            message: format!("column {column} has no `-- column {column}: …` description"),
        })?;
        sql.push_str(&format!(
            "comment on column {}.{} is {};\n",
            model.name,
            column,
            quote_literal(text)
        ));
    }
    duck(
        &format!("commenting {}", model.name),
        connection.execute_batch(&sql),
    )
}

fn mart_columns(connection: &duckdb::Connection, table: &str) -> Result<Vec<String>, ModelError> {
    let mut statement = duck(
        "listing columns",
        connection.prepare("select column_name from information_schema.columns where table_name = ? order by ordinal_position"),
    )?;
    let rows = duck(
        "listing columns",
        statement.query_map([table], |row| row.get::<_, String>(0)),
    )?;
    rows.map(|r| duck("listing columns", r)).collect()
}

/// Runs one data test; `Some` with its first rows when it returned any.
fn run_test(
    connection: &duckdb::Connection,
    test: &Model,
) -> Result<Option<FailedTest>, ModelError> {
    let body = test.sql.trim().trim_end_matches(';');
    let sql_error = |e: duckdb::Error| ModelError::Sql {
        model: test.name.clone(),
        path: test.path.clone(),
        message: e.to_string(),
    };
    let count: i64 = connection
        .query_row(&format!("select count(*) from (\n{body}\n)"), [], |row| {
            row.get(0)
        })
        .map_err(sql_error)?;
    if count == 0 {
        return Ok(None);
    }
    let mut statement = connection
        .prepare(&format!("select * from (\n{body}\n) limit 5"))
        .map_err(sql_error)?;
    let batches: Vec<RecordBatch> = statement.query_arrow([]).map_err(sql_error)?.collect();
    let first_rows = batches.iter().flat_map(describe_rows).collect();
    Ok(Some(FailedTest {
        name: test.name.clone(),
        rows: count as usize,
        first_rows,
    }))
}

fn describe_rows(batch: &RecordBatch) -> Vec<String> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            schema
                .fields()
                .iter()
                .enumerate()
                .map(|(index, field)| {
                    let value =
                        arrow::util::display::array_value_to_string(batch.column(index), row)
                            .unwrap_or_else(|_| "?".into());
                    format!("{}={}", field.name(), value)
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// A built warehouse opened read-only, for the reports.
pub struct Warehouse {
    connection: duckdb::Connection,
}

impl Warehouse {
    pub fn open_read_only(data_dir: &Path) -> Result<Warehouse, ModelError> {
        let config = duck(
            "configuring",
            duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly),
        )?;
        let connection = duck(
            "opening the warehouse",
            duckdb::Connection::open_with_flags(warehouse_path(data_dir), config),
        )?;
        Ok(Warehouse { connection })
    }

    /// Runs a query and returns its rows as Arrow batches.
    pub fn query_arrow(&self, sql: &str) -> Result<Vec<RecordBatch>, ModelError> {
        let mut statement = duck(sql, self.connection.prepare(sql))?;
        let batches: Vec<RecordBatch> = duck(sql, statement.query_arrow([]))?.collect();
        Ok(batches)
    }

    /// A one-value query, as text.
    pub fn query_text(&self, sql: &str) -> Result<Option<String>, ModelError> {
        duck(
            sql,
            self.connection
                .query_row(sql, [], |row| row.get::<_, Option<String>>(0)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, sql: &str) -> Model {
        Model {
            name: name.into(),
            path: PathBuf::from(format!("{name}.sql")),
            sql: sql.into(),
        }
    }

    #[test]
    fn marts_run_after_the_marts_they_read() {
        let ordered = dependency_order(vec![
            model("a_top", "select * from b_middle"),
            model("b_middle", "select * from c_base -- not a_top"),
            model("c_base", "select 1"),
        ])
        .unwrap();
        let names: Vec<_> = ordered.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["c_base", "b_middle", "a_top"]);
        assert!(matches!(
            dependency_order(vec![
                model("x", "select * from y"),
                model("y", "select * from x")
            ]),
            Err(ModelError::Cycle(_))
        ));
    }

    #[test]
    fn comments_come_from_the_file_header() {
        let (table, columns) = declared_comments("-- Cost per thing. grain: one row per thing.\n-- column cost_usd: What it cost.\nselect 1");
        assert_eq!(table, "Cost per thing. grain: one row per thing.");
        assert_eq!(columns["cost_usd"], "What it cost.");
    }
}

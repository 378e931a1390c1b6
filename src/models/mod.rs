//! The DuckDB model runner: the only code that opens DuckDB. It builds `DIR/warehouse.duckdb` from
//! the SQL in `queries/`: a `raw_spot__<dataset>` view over each lake dataset, staging views, mart
//! tables (in dependency order), column comments, then the data tests. It never names a dataset
//! itself beyond the list the lake declares, and it replaces the warehouse atomically: a failed
//! build leaves the previous warehouse in place.
//!
//! A build is incremental when it can be: `DIR/state/warehouse.json` records the lake files (size,
//! modification time) and the models and settings the warehouse was built from; when only lake
//! files changed, a copy of the warehouse recomputes just the days whose files changed in the
//! marts that declare `-- incremental: <day column>`, rebuilds the other marts whole, runs the data
//! tests, and replaces the warehouse the same way. Anything else is a full build.

use crate::extract::Dataset;
use crate::history;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use chrono::NaiveDate;
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
    /// DuckDB's `memory_limit` (validated, e.g. `2GB`); `None`: DuckDB's default (80 % of RAM).
    /// Beyond it DuckDB spills to `DIR/.warehouse-spill/`.
    pub duckdb_memory_limit: Option<String>,
    /// DuckDB's worker threads; `None`: one per core.
    pub duckdb_threads: Option<usize>,
    /// Whether a build may recompute only the days whose lake files changed.
    pub rebuild: Rebuild,
    /// Anomalies: how many trailing days' median is a day's expected cost.
    pub anomaly_baseline_days: u32,
    /// Anomalies: a cost is flagged when it departs from the expected by more than this fraction
    /// of the expected…
    pub anomaly_min_relative: f64,
    /// …and by more than this many USD.
    pub anomaly_min_usd: f64,
    /// Reconciliation: the largest residual per day, account, level and item (cluster, account,
    /// resource) that still reconciles, USD; it also bounds how far the instance-cost export may
    /// stray from a resource's own cost.
    pub reconciliation_tolerance_usd: f64,
    /// Whether a residual beyond the tolerance only warns; otherwise it fails the build. The data
    /// test reads it as `spotcost_settings.reconciliation_warn_only` (`-- warn_if:`).
    pub reconciliation_warn_only: bool,
    /// Monthly budgets per account or team (the `spotcost_budgets` table).
    pub budgets: Vec<Budget>,
}

/// What a budget applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    /// A Spot account id (`act-…`).
    Account,
    /// A team: the value of the team label of the namespaces' chargeback.
    Team,
}

impl BudgetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Account => "account",
            BudgetScope::Team => "team",
        }
    }
}

/// A monthly budget: `monthly_usd` for every calendar month, for one account or team.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub scope: BudgetScope,
    pub name: String,
    pub monthly_usd: f64,
}

/// What kind of build `build` may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rebuild {
    /// Only the changed days when the previous warehouse allows it, else everything (the default).
    #[default]
    Incremental,
    /// Everything, from the lake (`spotcost model --full`).
    Full,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            shared_cost_policy: SharedCostPolicy::Proportional,
            team_label_key: "team".into(),
            cost_center_label_key: "cost-center".into(),
            duckdb_memory_limit: None,
            duckdb_threads: None,
            rebuild: Rebuild::Incremental,
            anomaly_baseline_days: 14,
            anomaly_min_relative: 0.5,
            anomaly_min_usd: 10.0,
            reconciliation_tolerance_usd: 0.01,
            reconciliation_warn_only: false,
            budgets: Vec::new(),
        }
    }
}

/// What one build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub warehouse: PathBuf,
    pub staging: Vec<String>,
    pub marts: Vec<String>,
    /// Tables the marts are built from (`queries/intermediate/`).
    pub intermediate: Vec<String>,
    pub tests_passed: Vec<String>,
    /// Data tests that returned rows but only warn (`-- warn_if: <setting>` with the setting on).
    pub tests_warned: Vec<FailedTest>,
    pub kind: BuildKind,
    /// Why a full build ran (`None` for an incremental one).
    pub full_reason: Option<String>,
    /// Usage days recomputed in the incremental marts (every day with files, in a full build).
    pub days_recomputed: usize,
}

/// Whether a build recomputed everything or only the changed days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildKind {
    #[default]
    Full,
    Incremental,
}

impl BuildKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildKind::Full => "full",
            BuildKind::Incremental => "incremental",
        }
    }
}

/// One SQL model file: its relation name (the file stem) and its text.
#[derive(Debug, Clone)]
struct Model {
    name: String,
    path: PathBuf,
    sql: String,
    /// The column holding the lake's day, when the file declares `-- incremental: <column>`: its
    /// rows for a day are computed from that day's lake files alone (a mart), or it checks each
    /// day on its own (a data test), so an incremental build may run it over the changed days.
    incremental_by: Option<String>,
    /// A data test's `-- warn_if: <setting>` line: the boolean column of `spotcost_settings` that,
    /// when true, makes its offending rows a warning rather than a failure.
    warn_if: Option<String>,
    /// `-- incremental_following_days: <n or spotcost_settings column>`: an incremental table whose
    /// rows for a day also read the tables' rows of the days before it (a trailing baseline), so a
    /// changed day also changes the rows of the following days, which are recomputed with it.
    following_days: Option<FollowingDays>,
    /// `-- incremental_unit: month`: the incremental column holds the first day of a month, and a
    /// build replaces the whole months of the days it computes (for rows, like a month's latest
    /// forecast, that a later day of the month changes).
    monthly: bool,
}

/// How many days after each changed day an incremental table also recomputes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FollowingDays {
    Fixed(u32),
    /// The value of this `spotcost_settings` column.
    Setting(String),
}

/// The `-- incremental_following_days: <n | settings column>` line of a model file.
fn declared_following_days(
    path: &Path,
    name: &str,
    sql: &str,
) -> Result<Option<FollowingDays>, ModelError> {
    let what = "a number of days or a spotcost_settings column";
    let Some(value) = declared_column(path, name, sql, "incremental_following_days", what)? else {
        return Ok(None);
    };
    if let Ok(days) = value.parse::<u32>() {
        return Ok(Some(FollowingDays::Fixed(days)));
    }
    if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(ModelError::Sql {
            model: name.to_owned(),
            path: path.to_owned(),
            message: format!("`-- incremental_following_days:` must be {what}, got {value:?}"),
        });
    }
    Ok(Some(FollowingDays::Setting(value)))
}

/// The `-- <key>: <column>` header line of a model file (`incremental`, `warn_if`), checked to
/// be a plain column name; `what` says which column it must name.
fn declared_column(
    path: &Path,
    name: &str,
    sql: &str,
    key: &str,
    what: &str,
) -> Result<Option<String>, ModelError> {
    let prefix = format!("-- {key}:");
    let Some(rest) = sql
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
    else {
        return Ok(None);
    };
    let column = rest.trim();
    let plain = !column.is_empty()
        && column
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        return Err(ModelError::Sql {
            model: name.to_owned(),
            path: path.to_owned(),
            message: format!("`{prefix}` must name one lowercase column ({what}), got {column:?}"),
        });
    }
    Ok(Some(column.to_owned()))
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
    let mut models = Vec::new();
    for (path, sql) in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let incremental_by = declared_column(&path, &name, &sql, "incremental", "the lake's day")?;
        let warn_if = declared_column(
            &path,
            &name,
            &sql,
            "warn_if",
            "a boolean setting of spotcost_settings",
        )?;
        let following_days = declared_following_days(&path, &name, &sql)?;
        if following_days.is_some() && incremental_by.is_none() {
            return Err(ModelError::Sql {
                model: name,
                path,
                message: "`-- incremental_following_days:` needs an `-- incremental:` line".into(),
            });
        }
        let monthly = match declared_column(&path, &name, &sql, "incremental_unit", "day or month")?
            .as_deref()
        {
            None | Some("day") => false,
            Some("month") if incremental_by.is_some() => true,
            Some(unit) => {
                return Err(ModelError::Sql {
                    model: name,
                    path,
                    message: format!(
                        "`-- incremental_unit:` must be day or month, with an `-- incremental:` line; got {unit:?}"
                    ),
                })
            }
        };
        models.push(Model {
            name,
            path,
            sql,
            incremental_by,
            warn_if,
            following_days,
            monthly,
        });
    }
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

pub(crate) fn quote_literal(text: &str) -> String {
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

/// `create view raw_spot__<dataset>` over the lake folder, or with `files`, a temporary view of
/// that name over those files alone (the changed days of an incremental build), which shadows the
/// lake-wide view in this connection. `union_by_name` is `None` when the dataset has no files yet
/// (the view is then empty, with the declared columns, so models still bind), else whether the
/// files may hold different columns.
fn raw_view_sql(
    lake: &Path,
    dataset: Dataset,
    files: Option<&[PathBuf]>,
    union_by_name: Option<bool>,
) -> String {
    let name = format!("raw_spot__{}", dataset.name());
    let sources = match files {
        None => vec![format!(
            "{}/**/*.parquet",
            lake.join(dataset.name()).display()
        )],
        Some(files) => files.iter().map(|f| f.display().to_string()).collect(),
    };
    let query = match union_by_name {
        Some(union_by_name) if !sources.is_empty() => {
            let list: Vec<String> = sources.iter().map(|s| quote_literal(s)).collect();
            format!(
                "select * from read_parquet([{}], hive_partitioning = true, union_by_name = {union_by_name})",
                list.join(", ")
            )
        }
        _ => empty_view_query(&dataset.schema(), true),
    };
    let kind = if files.is_some() { "temp view" } else { "view" };
    format!("create or replace {kind} {name} as {query}")
}

/// A query over the Parquet files directly in `folder`, or an empty one of `schema`'s columns when
/// there are none yet.
fn parquet_folder_query(folder: &Path, schema: &Schema) -> String {
    if walk_has_parquet(folder) {
        format!(
            "select * from read_parquet({}, union_by_name = true)",
            quote_literal(&format!("{}/*.parquet", folder.display()))
        )
    } else {
        empty_view_query(schema, false)
    }
}

/// A query with `schema`'s columns (and the `day` partition column when `partitioned`) and no rows.
fn empty_view_query(schema: &Schema, partitioned: bool) -> String {
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
    format!("select {} where false", columns.join(", "))
}

/// The run history: the views `runs` and `run_items` over `DIR/state/{runs,run_items}/*.parquet`.
/// They read the files when queried, so they include runs recorded after the build.
fn run_history_sql(state_dir: &Path) -> String {
    let runs = parquet_folder_query(&state_dir.join("runs"), &history::runs_schema());
    let items = parquet_folder_query(&state_dir.join("run_items"), &history::run_items_schema());
    format!(
        "create or replace view runs as {runs};\ncreate or replace view run_items as {items};\n\
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

/// The record of what the warehouse was last built from: `DIR/state/warehouse.json`.
pub fn manifest_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("warehouse.json")
}

/// Bump when the runner changes what a build computes, so the next build is a full one.
const RUNNER_VERSION: u32 = 2;
const MANIFEST_VERSION: u32 = 2;

/// A file as the manifest knows it: a rewrite (a new file renamed into place) changes its inode
/// and modification time even when the size stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FileStamp {
    bytes: u64,
    modified_ns: i64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    let modified_ns = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos() as i64;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        bytes: metadata.len(),
        modified_ns,
        inode,
    })
}

/// A lake file as the manifest knows it: its stamp and which columns it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LakeFile {
    #[serde(flatten)]
    stamp: FileStamp,
    /// A hash of the file's column names (0 when its footer cannot be read). When every file of a
    /// dataset has the same, its raw view can skip DuckDB's `union_by_name`, which reads every
    /// file's footer again each time a query binds the view.
    columns: u64,
}

/// The lake's Parquet files by path relative to the lake (`<dataset>/day=…/part-….parquet`).
type Listing = BTreeMap<String, LakeFile>;

/// Lists the lake. A file's columns are read from its footer unless `known` (the previous
/// build's listing) has it with the same stamp.
fn list_lake(lake: &Path, known: Option<&Listing>) -> Listing {
    fn walk(folder: &Path, relative: &str, known: Option<&Listing>, listing: &mut Listing) {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let key = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            if path.is_dir() {
                walk(&path, &key, known, listing);
            } else if name.ends_with(".parquet") {
                if let Some(stamp) = stamp(&path) {
                    let columns = known
                        .and_then(|k| k.get(&key))
                        .filter(|file| file.stamp == stamp)
                        .map_or_else(|| column_names_hash(&path), |file| file.columns);
                    listing.insert(key, LakeFile { stamp, columns });
                }
            }
        }
    }
    let mut listing = Listing::new();
    walk(lake, "", known, &mut listing);
    listing
}

/// FNV-1a over a Parquet file's top-level column names in order; 0 when the footer is unreadable.
fn column_names_hash(path: &Path) -> u64 {
    use parquet::file::reader::FileReader as _;
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    let Ok(reader) = parquet::file::reader::SerializedFileReader::new(file) else {
        return 0;
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
    {
        for byte in field.name().bytes().chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The datasets that have lake files, each with whether its files may hold different columns
/// (and so need DuckDB's `union_by_name`). The raw views are a function of this alone.
fn lake_datasets(listing: &Listing) -> BTreeMap<Dataset, bool> {
    let mut columns: BTreeMap<Dataset, BTreeSet<u64>> = BTreeMap::new();
    for (key, file) in listing {
        if let Some(dataset) = key.split('/').next().and_then(Dataset::from_name) {
            columns.entry(dataset).or_default().insert(file.columns);
        }
    }
    columns
        .into_iter()
        .map(|(dataset, hashes)| (dataset, hashes.len() > 1 || hashes.contains(&0)))
        .collect()
}

/// The daily dataset and usage day a lake file belongs to; `None` for snapshot datasets (the
/// marts that read them are rebuilt whole) and for files outside the layout.
fn daily_file(key: &str) -> Option<(Dataset, NaiveDate)> {
    let mut parts = key.split('/');
    let dataset = Dataset::from_name(parts.next()?)?;
    if dataset.grain() != crate::extract::Grain::Daily {
        return None;
    }
    let day = parts.next()?.strip_prefix("day=")?;
    Some((dataset, NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?))
}

/// What `DIR/state/warehouse.json` holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    version: u32,
    /// `full` or `incremental`.
    kind: String,
    days_recomputed: usize,
    /// The warehouse file this record describes; any other file there is not trusted.
    warehouse: FileStamp,
    /// The models, settings, lake schemas and spotcost version the warehouse was built with.
    fingerprint: String,
    files: Listing,
}

fn read_manifest(data_dir: &Path) -> Option<Manifest> {
    let text = std::fs::read(manifest_path(data_dir)).ok()?;
    let manifest: Manifest = serde_json::from_slice(&text).ok()?;
    (manifest.version == MANIFEST_VERSION).then_some(manifest)
}

/// The kind of the build that made the current warehouse and the days it recomputed, if the
/// record of it is there and describes that warehouse.
pub fn last_build(data_dir: &Path) -> Option<(BuildKind, usize)> {
    let manifest = read_manifest(data_dir)?;
    if Some(manifest.warehouse) != stamp(&warehouse_path(data_dir)) {
        return None;
    }
    let kind = match manifest.kind.as_str() {
        "incremental" => BuildKind::Incremental,
        _ => BuildKind::Full,
    };
    Some((kind, manifest.days_recomputed))
}

/// Everything a build's results depend on besides the lake: a changed model, setting, lake schema,
/// lake location or spotcost version makes the next build a full one.
fn fingerprint(lake: &Path, models: &Models, settings: &ModelSettings) -> String {
    let mut text = format!(
        "spotcost {} runner {RUNNER_VERSION}\nlake {}\nsettings {} {:?} {:?} {} {:?} {:?} {:?} {}\n",
        env!("CARGO_PKG_VERSION"),
        lake.display(),
        settings.shared_cost_policy.as_str(),
        settings.team_label_key,
        settings.cost_center_label_key,
        settings.anomaly_baseline_days,
        settings.anomaly_min_relative,
        settings.anomaly_min_usd,
        settings.reconciliation_tolerance_usd,
        settings.reconciliation_warn_only,
    );
    for budget in &settings.budgets {
        text.push_str(&format!(
            "budget {} {:?} {:?}\n",
            budget.scope.as_str(),
            budget.name,
            budget.monthly_usd
        ));
    }
    for dataset in Dataset::ALL {
        text.push_str(&format!("dataset {}:", dataset.name()));
        for field in dataset.schema().fields() {
            text.push_str(&format!(
                " {} {:?} {}",
                field.name(),
                field.data_type(),
                field.is_nullable()
            ));
        }
        text.push('\n');
    }
    for (folder, list) in [
        ("staging", &models.staging),
        ("tables", &models.tables),
        ("tests", &models.tests),
    ] {
        for model in list {
            text.push_str(&format!("-- {folder}/{}\n{}\n", model.name, model.sql));
        }
    }
    text
}

/// The SQL of `queries/`: staging views, the intermediate and mart tables in dependency order,
/// data tests.
struct Models {
    staging: Vec<Model>,
    tables: Vec<Model>,
    /// Which of `tables` are marts (the others are intermediate tables).
    mart_names: BTreeSet<String>,
    tests: Vec<Model>,
}

impl Models {
    fn load(queries_dir: &Path) -> Result<Models, ModelError> {
        let marts = load_folder(&queries_dir.join("marts"))?;
        let mart_names = marts.iter().map(|m| m.name.clone()).collect();
        let mut tables = load_folder(&queries_dir.join("intermediate"))?;
        tables.extend(marts);
        Ok(Models {
            staging: load_folder(&queries_dir.join("staging"))?,
            tables: dependency_order(tables)?,
            mart_names,
            tests: load_folder(&queries_dir.join("tests"))?,
        })
    }
}

/// The kind of build the lake and the previous warehouse allow.
enum Plan {
    /// Everything, and why.
    Full(String),
    /// Only these usage days in the incremental marts.
    Incremental(BTreeSet<NaiveDate>),
}

/// `previous` is the record of the last build, if it could be read.
fn plan(
    data_dir: &Path,
    previous: Option<&Manifest>,
    fingerprint: &str,
    listing: &Listing,
    rebuild: Rebuild,
) -> Plan {
    if rebuild == Rebuild::Full {
        return Plan::Full("a full build was asked for".into());
    }
    let warehouse = warehouse_path(data_dir);
    let Some(current) = stamp(&warehouse) else {
        return Plan::Full("there is no previous warehouse".into());
    };
    let mut wal = warehouse.clone().into_os_string();
    wal.push(".wal");
    if Path::new(&wal).exists() {
        return Plan::Full("the previous warehouse has changes in its write-ahead log".into());
    }
    let Some(manifest) = previous else {
        return Plan::Full(format!(
            "{} is missing or unreadable",
            manifest_path(data_dir).display()
        ));
    };
    if manifest.warehouse != current {
        return Plan::Full("the warehouse changed since the last build recorded it".into());
    }
    if manifest.fingerprint != fingerprint {
        return Plan::Full(
            "the models, settings, lake schemas or spotcost version changed since the last build"
                .into(),
        );
    }
    let mut days = BTreeSet::new();
    for key in listing.keys().chain(manifest.files.keys()) {
        if listing.get(key) != manifest.files.get(key) {
            if let Some((_, day)) = daily_file(key) {
                days.insert(day);
            }
        }
    }
    Plan::Incremental(days)
}

/// The usage days an incremental build recomputes, and per daily dataset the lake files of those
/// days (absolute paths) that the raw views read meanwhile.
struct Changed {
    days: BTreeSet<NaiveDate>,
    files: BTreeMap<Dataset, Vec<PathBuf>>,
    /// Whether the previous warehouse's views read the lake as this build's would.
    views_unchanged: bool,
}

impl Changed {
    fn new(
        lake: &Path,
        listing: &Listing,
        days: BTreeSet<NaiveDate>,
        views_unchanged: bool,
    ) -> Changed {
        let mut files: BTreeMap<Dataset, Vec<PathBuf>> = Dataset::ALL
            .into_iter()
            .filter(|d| d.grain() == crate::extract::Grain::Daily)
            .map(|d| (d, Vec::new()))
            .collect();
        for key in listing.keys() {
            if let Some((dataset, day)) = daily_file(key) {
                if days.contains(&day) {
                    files.entry(dataset).or_default().push(lake.join(key));
                }
            }
        }
        Changed {
            days,
            files,
            views_unchanged,
        }
    }
}

/// What one build reads and how.
struct BuildInput<'a> {
    lake: &'a Path,
    state_dir: &'a Path,
    models: &'a Models,
    settings: &'a ModelSettings,
    spill_dir: &'a Path,
    /// The datasets that have lake files, and whether their files may hold different columns.
    datasets: &'a BTreeMap<Dataset, bool>,
    /// The usage days of the lake's daily datasets.
    lake_days: &'a BTreeSet<NaiveDate>,
}

/// Builds the warehouse from `queries_dir` over `data_dir/lake`, runs the data tests, and only
/// then moves it into place as `data_dir/warehouse.duckdb`. A build whose tests fail is kept as
/// `warehouse.failed.duckdb` for inspection; the previous warehouse stays untouched.
///
/// Unless `settings.rebuild` asks for a full build, it starts from a copy of the previous
/// warehouse when `DIR/state/warehouse.json` shows that only lake files changed since, and
/// recomputes the changed days alone in the marts that declare `-- incremental: <column>`; the
/// other marts and the data tests run as in a full build (a test that declares it runs over the
/// changed days' files only). If that fails for any reason but a data test, it builds everything.
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
    // Spilled intermediate results stay inside the data dir; the lock makes the name ours.
    let spill_dir = state_dir
        .parent()
        .unwrap_or(data_dir)
        .join(".warehouse-spill");
    let _ = std::fs::remove_dir_all(&spill_dir);

    let models = Models::load(queries_dir)?;
    // The lake as it is now: the warehouse built below is recorded as made from it.
    let listed = std::time::Instant::now();
    let previous = read_manifest(data_dir);
    let listing = list_lake(&lake, previous.as_ref().map(|m| &m.files));
    let datasets = lake_datasets(&listing);
    // The previous warehouse's views read the lake as this build would: an incremental build
    // keeps them rather than binding every view over the whole lake again.
    let views_unchanged = previous
        .as_ref()
        .is_some_and(|manifest| lake_datasets(&manifest.files) == datasets);
    tracing::debug!(
        files = listing.len(),
        elapsed_ms = listed.elapsed().as_millis() as u64,
        "lake listed"
    );
    let lake_days: BTreeSet<NaiveDate> = listing
        .keys()
        .filter_map(|key| daily_file(key).map(|(_, day)| day))
        .collect();
    let fingerprint = fingerprint(&lake, &models, settings);
    let input = BuildInput {
        lake: &lake,
        state_dir: &state_dir,
        models: &models,
        settings,
        spill_dir: &spill_dir,
        datasets: &datasets,
        lake_days: &lake_days,
    };
    let full = |reason: String| {
        build_into(&temp_path, &input, None).map(|mut report| {
            report.full_reason = Some(reason);
            report.days_recomputed = lake_days.len();
            report
        })
    };
    let outcome = match plan(
        data_dir,
        previous.as_ref(),
        &fingerprint,
        &listing,
        settings.rebuild,
    ) {
        Plan::Full(reason) => full(reason),
        Plan::Incremental(days) => {
            let changed = Changed::new(&lake, &listing, days, views_unchanged);
            let copied = std::time::Instant::now();
            let attempt = std::fs::copy(&final_path, &temp_path)
                .map_err(|source| ModelError::Replace {
                    path: temp_path.clone(),
                    source,
                })
                .and_then(|bytes| {
                    tracing::debug!(
                        bytes,
                        elapsed_ms = copied.elapsed().as_millis() as u64,
                        "previous warehouse copied"
                    );
                    build_into(&temp_path, &input, Some(&changed))
                });
            match attempt {
                Err(error) if !matches!(error, ModelError::DataTests(_)) => {
                    tracing::warn!(%error, "the incremental build failed; building everything");
                    remove_database(&temp_path);
                    full(format!("the incremental build failed: {error}"))
                }
                other => other,
            }
        }
    };
    let _ = std::fs::remove_dir_all(&spill_dir);
    match outcome {
        Ok(mut report) => {
            std::fs::rename(&temp_path, &final_path).map_err(|source| ModelError::Replace {
                path: final_path.clone(),
                source,
            })?;
            remove_database(&failed_path);
            record_build(data_dir, &report, fingerprint, listing);
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

/// Writes `DIR/state/warehouse.json` for the warehouse just moved into place. If it cannot be
/// written, the stale record (which names the previous warehouse file) is removed, so the next
/// build is a full one rather than one trusting a record of another warehouse.
fn record_build(data_dir: &Path, report: &BuildReport, fingerprint: String, files: Listing) {
    let path = manifest_path(data_dir);
    let written = stamp(&warehouse_path(data_dir))
        .ok_or_else(|| "the new warehouse cannot be read".to_owned())
        .and_then(|warehouse| {
            let manifest = Manifest {
                version: MANIFEST_VERSION,
                kind: report.kind.as_str().to_owned(),
                days_recomputed: report.days_recomputed,
                warehouse,
                fingerprint,
                files,
            };
            let bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
            }
            crate::lake::state::write_atomically(&path, &bytes).map_err(|e| e.to_string())
        });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&path);
        tracing::warn!(
            path = %path.display(),
            %error,
            "cannot record what the warehouse was built from; the next build will be a full one"
        );
    }
}

fn remove_database(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut wal = path.as_os_str().to_owned();
    wal.push(".wal");
    let _ = std::fs::remove_file(PathBuf::from(wal));
}

/// DuckDB's memory cap, worker threads and spill folder.
fn configure(connection: &duckdb::Connection, input: &BuildInput) -> Result<(), ModelError> {
    // One checkpoint, at the end of the build: DuckDB's automatic one (at 16 MB of write-ahead
    // log) came in the middle of a nightly build and wrote the same tables twice. Footers are read
    // once per file: the Ocean and audit files are each scanned by two models.
    let mut sql = format!(
        "set temp_directory = {};\nset checkpoint_threshold = '1GB';\nset parquet_metadata_cache = true;\n",
        quote_literal(&input.spill_dir.display().to_string())
    );
    if let Some(limit) = &input.settings.duckdb_memory_limit {
        sql.push_str(&format!("set memory_limit = {};\n", quote_literal(limit)));
    }
    if let Some(threads) = input.settings.duckdb_threads {
        sql.push_str(&format!("set threads = {threads};\n"));
    }
    duck("configuring DuckDB", connection.execute_batch(&sql))
}

/// Creates the raw views over the whole lake.
fn raw_views(connection: &duckdb::Connection, input: &BuildInput) -> Result<(), ModelError> {
    let mut sql = String::new();
    for dataset in Dataset::ALL {
        let union_by_name = input.datasets.get(&dataset).copied();
        sql.push_str(&raw_view_sql(input.lake, dataset, None, union_by_name));
        sql.push_str(";\n");
    }
    duck("creating the raw views", connection.execute_batch(&sql))
}

/// Points the daily datasets' raw views at the changed days' files only (`Some`), with temporary
/// views that shadow the lake-wide ones, or back at the whole lake (`None`). Either is cheap: the
/// lake-wide views are never recreated.
fn restrict_raw_views(
    connection: &duckdb::Connection,
    input: &BuildInput,
    changed: Option<&Changed>,
) -> Result<(), ModelError> {
    let mut sql = String::new();
    for dataset in Dataset::ALL {
        if dataset.grain() != crate::extract::Grain::Daily {
            continue;
        }
        match changed {
            Some(changed) => {
                let files = changed.files.get(&dataset).map_or(&[][..], Vec::as_slice);
                let union_by_name = input.datasets.get(&dataset).copied();
                sql.push_str(&raw_view_sql(
                    input.lake,
                    dataset,
                    Some(files),
                    union_by_name,
                ));
                sql.push_str(";\n");
            }
            None => sql.push_str(&format!(
                "drop view if exists temp.main.raw_spot__{};\n",
                dataset.name()
            )),
        }
    }
    duck("restricting the raw views", connection.execute_batch(&sql))
}

/// Builds into `path`: from nothing when `changed` is `None`, else over the previous warehouse
/// copied there, recomputing only the changed days of the incremental marts.
fn build_into(
    path: &Path,
    input: &BuildInput,
    changed: Option<&Changed>,
) -> Result<BuildReport, ModelError> {
    let opened = std::time::Instant::now();
    let connection = duck(
        "opening the new warehouse",
        duckdb::Connection::open_with_flags(path, offline_config()?),
    )?;
    configure(&connection, input)?;
    let settings = input.settings;
    let mut report = BuildReport {
        kind: if changed.is_some() {
            BuildKind::Incremental
        } else {
            BuildKind::Full
        },
        days_recomputed: changed.map_or(0, |c| c.days.len()),
        ..BuildReport::default()
    };
    // Configuration values reach SQL only as bound parameters.
    duck(
        "writing spotcost_settings",
        connection.execute_batch(
            "create or replace table spotcost_settings (shared_cost_policy varchar, team_label_key varchar, \
             cost_center_label_key varchar, \
             anomaly_baseline_days integer, anomaly_min_relative double, anomaly_min_usd double, \
             reconciliation_tolerance_usd double, reconciliation_warn_only boolean);\n\
             comment on table spotcost_settings is 'The settings the models were built with (one row).';\n\
             create or replace table spotcost_budgets (scope varchar not null, name varchar not null, \
             monthly_usd double not null);\n\
             comment on table spotcost_budgets is 'The configured monthly budgets: scope (account or team), the account id or team name, USD per calendar month.';\n\
             comment on column spotcost_budgets.scope is 'What the budget applies to: account or team.';\n\
             comment on column spotcost_budgets.name is 'The account id (act-…) or the team name.';\n\
             comment on column spotcost_budgets.monthly_usd is 'The budget for every calendar month, USD.';",
        ),
    )?;
    duck(
        "writing spotcost_settings",
        connection.execute(
            "insert into spotcost_settings values (?, ?, ?, ?, ?, ?, ?, ?)",
            duckdb::params![
                settings.shared_cost_policy.as_str(),
                settings.team_label_key,
                settings.cost_center_label_key,
                settings.anomaly_baseline_days,
                settings.anomaly_min_relative,
                settings.anomaly_min_usd,
                settings.reconciliation_tolerance_usd,
                settings.reconciliation_warn_only,
            ],
        ),
    )?;
    for budget in &settings.budgets {
        duck(
            "writing spotcost_budgets",
            connection.execute(
                "insert into spotcost_budgets values (?, ?, ?)",
                duckdb::params![budget.scope.as_str(), budget.name, budget.monthly_usd],
            ),
        )?;
    }
    // Which files the raw views read now: `true` for the changed days only.
    let mut restricted = false;
    // An incremental build keeps the copied warehouse's raw and staging views when they read the
    // lake as this build's would.
    let keep_views = changed.is_some_and(|c| c.views_unchanged);
    if !keep_views {
        raw_views(&connection, input)?;
    }
    duck(
        "creating the run history views",
        connection.execute_batch(&run_history_sql(input.state_dir)),
    )?;
    for model in &input.models.staging {
        if !keep_views {
            run_model(&connection, model, "view")?;
        }
        report.staging.push(model.name.clone());
    }
    tracing::debug!(
        elapsed_ms = opened.elapsed().as_millis() as u64,
        "warehouse opened, views created"
    );
    // The days this build computes (every day of the lake in a full build), for the data tests
    // that check each day on its own.
    duck(
        "listing the changed days",
        connection.execute_batch("create temp table spotcost_changed_days (day date primary key)"),
    )?;
    let mut appender = duck(
        "listing the changed days",
        connection.appender("spotcost_changed_days"),
    )?;
    for day in changed.map_or(input.lake_days, |c| &c.days) {
        duck(
            "listing the changed days",
            appender.append_row([day.format("%Y-%m-%d").to_string()]),
        )?;
    }
    duck("listing the changed days", appender.flush())?;
    drop(appender);
    for model in &input.models.tables {
        let started = std::time::Instant::now();
        model_days(&connection, model)?;
        match (changed, &model.incremental_by) {
            (Some(changed), Some(column)) => {
                if !restricted {
                    restrict_raw_views(&connection, input, Some(changed))?;
                    restricted = true;
                }
                run_incremental_model(&connection, model, column)?;
            }
            _ => {
                if restricted {
                    restrict_raw_views(&connection, input, None)?;
                    restricted = false;
                }
                run_model(&connection, model, "table")?;
            }
        }
        comment_model(&connection, model)?;
        tracing::debug!(
            model = %model.name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "table built"
        );
        if input.models.mart_names.contains(&model.name) {
            report.marts.push(model.name.clone());
        } else {
            report.intermediate.push(model.name.clone());
        }
    }
    let mut failures = Vec::new();
    for test in &input.models.tests {
        let over_changed_days = changed.filter(|_| test.incremental_by.is_some());
        if over_changed_days.is_some() != restricted {
            restrict_raw_views(&connection, input, over_changed_days)?;
            restricted = over_changed_days.is_some();
        }
        let started = std::time::Instant::now();
        let outcome = run_test(&connection, test)?;
        tracing::debug!(
            test = %test.name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "data test run"
        );
        match outcome {
            None => report.tests_passed.push(test.name.clone()),
            Some(failure) if warns_only(&connection, test)? => {
                tracing::warn!(
                    test = %failure.name,
                    rows = failure.rows,
                    setting = test.warn_if.as_deref().unwrap_or_default(),
                    first_rows = %failure.first_rows.join("; "),
                    "data test returned offending rows; warning only, as configured"
                );
                report.tests_warned.push(failure);
            }
            Some(failure) => failures.push(failure),
        }
    }
    let checkpointing = std::time::Instant::now();
    duck("checkpointing", connection.execute_batch("checkpoint"))?;
    tracing::debug!(
        elapsed_ms = checkpointing.elapsed().as_millis() as u64,
        "warehouse checkpointed"
    );
    drop(connection);
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(ModelError::DataTests(failures))
    }
}

/// Fills the temporary table `spotcost_model_days` with the days `model` computes: the days of
/// `spotcost_changed_days` (every day of the lake in a full build), each followed by the
/// `-- incremental_following_days:` the model declares. A model may read it to bound what it
/// scans; an incremental build replaces exactly these days of the table.
fn model_days(connection: &duckdb::Connection, model: &Model) -> Result<(), ModelError> {
    let sql_error = |e: duckdb::Error| ModelError::Sql {
        model: model.name.clone(),
        path: model.path.clone(),
        message: e.to_string(),
    };
    let following: i64 = match &model.following_days {
        None => 0,
        Some(FollowingDays::Fixed(days)) => i64::from(*days),
        Some(FollowingDays::Setting(column)) => connection
            .query_row(
                &format!("select cast({column} as bigint) from spotcost_settings"),
                [],
                |row| row.get::<_, Option<i64>>(0),
            )
            .map_err(sql_error)?
            .unwrap_or(0)
            .max(0),
    };
    connection
        .execute_batch(&format!(
            "create or replace temp table spotcost_model_days as \
             select distinct cast(day + following.range::integer as date) as day \
             from spotcost_changed_days cross join range(0, {}) as following",
            following + 1
        ))
        .map_err(sql_error)
}

/// Replaces the days of an incremental mart that `spotcost_model_days` lists: its SQL, run over
/// the changed days' lake files (and the tables built before it), computes exactly those days.
fn run_incremental_model(
    connection: &duckdb::Connection,
    model: &Model,
    column: &str,
) -> Result<(), ModelError> {
    let body = model.sql.trim().trim_end_matches(';');
    let name = &model.name;
    let computed = if model.monthly {
        "select distinct cast(date_trunc('month', day) as date) from spotcost_model_days"
    } else {
        "select day from spotcost_model_days"
    };
    let sql = format!(
        "delete from {name} where {column} in ({computed});\n\
         insert into {name} by name\n\
         select * from (\n{body}\n) where {column} in ({computed});"
    );
    connection.execute_batch(&sql).map_err(|e| ModelError::Sql {
        model: model.name.clone(),
        path: model.path.clone(),
        message: e.to_string(),
    })
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

/// Whether `test`'s offending rows only warn: it declares `-- warn_if: <setting>` and that boolean
/// column of `spotcost_settings` is true.
fn warns_only(connection: &duckdb::Connection, test: &Model) -> Result<bool, ModelError> {
    let Some(setting) = &test.warn_if else {
        return Ok(false);
    };
    connection
        .query_row(
            &format!("select {setting}::boolean from spotcost_settings"),
            [],
            |row| row.get::<_, Option<bool>>(0),
        )
        .map(|value| value.unwrap_or(false))
        .map_err(|e| ModelError::Sql {
            model: test.name.clone(),
            path: test.path.clone(),
            message: format!(
                "`-- warn_if: {setting}` must name a boolean column of spotcost_settings: {e}"
            ),
        })
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

/// DuckDB's settings for every connection: the extensions built in are all there is, so a query
/// that needs another fails at once, instead of after trying to download it.
fn offline_config() -> Result<duckdb::Config, ModelError> {
    duck(
        "configuring DuckDB",
        duckdb::Config::default()
            .enable_autoload_extension(false)
            .and_then(|config| config.with("autoinstall_known_extensions", "false")),
    )
}

/// A built warehouse opened read-only, for the reports and exports.
pub struct Warehouse {
    connection: duckdb::Connection,
}

impl Warehouse {
    pub fn open_read_only(data_dir: &Path) -> Result<Warehouse, ModelError> {
        let config = duck(
            "configuring",
            offline_config()?.access_mode(duckdb::AccessMode::ReadOnly),
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

    /// Runs statements that leave the warehouse as it is: variables, temporary views, `COPY … TO`
    /// a file. `context` names what they do in an error.
    pub fn execute(&self, context: &str, sql: &str) -> Result<(), ModelError> {
        duck(context, self.connection.execute_batch(sql))
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
            incremental_by: None,
            warn_if: None,
            following_days: None,
            monthly: false,
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
    fn a_dataset_whose_files_differ_in_columns_is_read_by_name() {
        let lake = tempfile::tempdir().unwrap();
        let connection = duckdb::Connection::open_in_memory().unwrap();
        for (dataset, day, columns) in [
            ("account_costs", "2026-11-01", "1 as a, 2 as b"),
            ("account_costs", "2026-11-02", "1 as a, 2 as b"),
            ("audit_events", "2026-11-01", "1 as a"),
            ("audit_events", "2026-11-02", "1 as a, 2 as b"),
        ] {
            let folder = lake.path().join(dataset).join(format!("day={day}"));
            std::fs::create_dir_all(&folder).unwrap();
            let file = folder.join("part-x.parquet");
            connection
                .execute_batch(&format!(
                    "copy (select {columns}) to '{}' (format parquet)",
                    file.display()
                ))
                .unwrap();
        }
        let listing = list_lake(lake.path(), None);
        let datasets = lake_datasets(&listing);
        assert_eq!(datasets.get(&Dataset::AccountCosts), Some(&false));
        assert_eq!(datasets.get(&Dataset::AuditEvents), Some(&true));
        assert_eq!(datasets.get(&Dataset::OceanCosts), None);

        // A file that is not Parquet: its columns are unknown, so the dataset is read by name.
        let broken = lake
            .path()
            .join("account_costs/day=2026-11-03/part-y.parquet");
        std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
        std::fs::write(&broken, b"not parquet").unwrap();
        let relisted = list_lake(lake.path(), Some(&listing));
        assert_eq!(
            lake_datasets(&relisted).get(&Dataset::AccountCosts),
            Some(&true)
        );
        // Unchanged files keep the columns the previous listing read from their footers.
        let key = "account_costs/day=2026-11-01/part-x.parquet";
        let mut known = listing.clone();
        known.get_mut(key).unwrap().columns = 7;
        assert_eq!(list_lake(lake.path(), Some(&known))[key].columns, 7);
    }

    #[test]
    fn a_table_with_following_days_recomputes_the_days_after_each_changed_day() {
        let path = Path::new("queries/marts/rolling.sql");
        let sql = "-- Trailing. grain: one row per day.\n-- incremental: day\n-- incremental_following_days: baseline_days\n\
                   select day, 'new' as source from generated_days";
        let mut rolling = model("rolling", sql);
        rolling.incremental_by =
            declared_column(path, "rolling", sql, "incremental", "the lake's day").unwrap();
        rolling.following_days = declared_following_days(path, "rolling", sql).unwrap();
        assert_eq!(
            rolling.following_days,
            Some(FollowingDays::Setting("baseline_days".into()))
        );
        assert_eq!(
            declared_following_days(path, "x", "-- incremental_following_days: 3").unwrap(),
            Some(FollowingDays::Fixed(3))
        );
        assert!(
            declared_following_days(path, "x", "-- incremental_following_days: 1; drop").is_err()
        );
        assert!(load_folder_rejects_following_days_without_incremental());

        let connection = duckdb::Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "create table spotcost_settings as select 2 as baseline_days;
                 create temp table spotcost_changed_days as
                     select unnest(['2026-11-03'::date, '2026-11-10'::date]) as day;
                 create table generated_days as
                     select cast('2026-11-01'::date + range::integer as date) as day from range(0, 12);
                 create table rolling as select day, 'old' as source from generated_days;",
            )
            .unwrap();
        model_days(&connection, &rolling).unwrap();
        run_incremental_model(&connection, &rolling, "day").unwrap();
        let mut statement = connection
            .prepare("select strftime(day, '%d') from rolling where source = 'new' order by day")
            .unwrap();
        let recomputed: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(recomputed, ["03", "04", "05", "10", "11", "12"]);
        let total: i64 = connection
            .query_row("select count(*) from rolling", [], |row| row.get(0))
            .unwrap();
        assert_eq!(total, 12);

        // A table without the line recomputes the changed days alone.
        let plain = model("plain", "select 1");
        model_days(&connection, &plain).unwrap();
        let days: i64 = connection
            .query_row("select count(*) from spotcost_model_days", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(days, 2);
    }

    fn load_folder_rejects_following_days_without_incremental() -> bool {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(
            folder.path().join("x.sql"),
            "-- X. grain: one row per x.\n-- incremental_following_days: 2\nselect 1",
        )
        .unwrap();
        matches!(load_folder(folder.path()), Err(ModelError::Sql { message, .. }) if message.contains("needs an `-- incremental:`"))
    }

    #[test]
    fn a_monthly_table_replaces_the_whole_months_of_the_days_it_computes() {
        let folder = tempfile::tempdir().unwrap();
        let write = |name: &str, sql: &str| {
            std::fs::write(folder.path().join(format!("{name}.sql")), sql).unwrap();
        };
        write(
            "monthly",
            "-- Per month. grain: one row per month.\n-- incremental: month\n-- incremental_unit: month\n\
             select month, 'new' as source from generated_months",
        );
        let monthly = load_folder(folder.path()).unwrap().remove(0);
        assert!(monthly.monthly);
        let connection = duckdb::Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "create temp table spotcost_changed_days as select '2026-10-31'::date as day;
                 create table generated_months as
                     select unnest(['2026-09-01'::date, '2026-10-01'::date, '2026-11-01'::date]) as month;
                 create table monthly as select month, 'old' as source from generated_months;",
            )
            .unwrap();
        model_days(&connection, &monthly).unwrap();
        run_incremental_model(&connection, &monthly, "month").unwrap();
        let sources: Vec<(String, String)> = connection
            .prepare("select strftime(month, '%m'), source from monthly order by month")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                ("09".into(), "old".into()),
                ("10".into(), "new".into()),
                ("11".into(), "old".into())
            ]
        );

        for unit in ["week", "month\nselect 1 -- without incremental"] {
            write(
                "monthly",
                &format!("-- X. grain: x.\n-- incremental_unit: {unit}\nselect 1"),
            );
            assert!(
                matches!(load_folder(folder.path()), Err(ModelError::Sql { message, .. }) if message.contains("incremental_unit")),
                "{unit}"
            );
        }
    }

    #[test]
    fn comments_come_from_the_file_header() {
        let (table, columns) = declared_comments("-- Cost per thing. grain: one row per thing.\n-- column cost_usd: What it cost.\nselect 1");
        assert_eq!(table, "Cost per thing. grain: one row per thing.");
        assert_eq!(columns["cost_usd"], "What it cost.");
    }
}

//! The year-long lake: 365 days of a synthetic organisation of 10 AWS accounts, 200 Ocean clusters ×
//! 50 namespaces × 5 workloads (18.25 M workload rows, 22 M `ocean_costs` rows in all) and 9.9 M
//! `instance_costs` rows, plus the Elastigroup, Managed Instance and account costs, the account,
//! right-sizing and potential-savings snapshots and the audit log the marts read. Its figures agree
//! the way Spot's do, so every data test passes: a cluster-day's rows add up to its total, the
//! instance export adds up to each group's cost, and each account's total is its groups, managed
//! instances and Ocean compute.
//!
//! Files are written with the crate's declared schemas (`Dataset::schema()`) and its one
//! `writer_properties()`, into the layout extraction uses
//! (`lake/<dataset>/day=YYYY-MM-DD/part-<account>.parquet`), so DuckDB sees exactly what extraction
//! writes. Generated once into `<bench dir>/year-lake-v<VERSION>/data` and reused while its
//! `complete` marker is there; bump `VERSION` when the generator changes.

use crate::common::{run_measured, Bench};
use anyhow::{bail, Context};
use arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, MapBuilder, MapFieldNames, RecordBatch,
    StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::DataType;
use chrono::{Datelike, NaiveDate};
use parquet::arrow::ArrowWriter;
use spotcost::extract::Dataset;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bump when the generated data changes, so a stale cache is not reused.
const VERSION: u32 = 1;

pub const DAYS: u32 = 365;
pub const ACCOUNTS: usize = 10;
pub const CLUSTERS_PER_ACCOUNT: usize = 20;
pub const NAMESPACES: usize = 50;
pub const WORKLOADS: usize = 5;
/// Ocean nodes per cluster in the instance-cost export, over `NODE_GROUPS` virtual node groups.
const NODES_PER_CLUSTER: usize = 100;
const NODE_GROUPS: usize = 4;
const GROUPS_PER_ACCOUNT: usize = 10;
const INSTANCES_PER_GROUP: usize = 70;
const MANAGED_INSTANCES_PER_ACCOUNT: usize = 10;
/// Snapshot datasets are kept for the last days only (a nightly job takes one per day).
const SNAPSHOT_DAYS: u32 = 7;

/// The last usage day of the lake.
pub fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).expect("a valid date")
}

pub fn first_day() -> NaiveDate {
    last_day() - chrono::Duration::days(i64::from(DAYS) - 1)
}

/// The folder of the cached year: `data/` (the data dir) and `spotcost.toml` live in it.
pub fn year_dir(bench: &Bench) -> PathBuf {
    bench.dir.join(format!("year-lake-v{VERSION}"))
}

/// The configuration the benchmarks run `spotcost` with: this checkout's SQL, and DuckDB capped
/// at the memory target.
pub fn config_path(bench: &Bench) -> PathBuf {
    year_dir(bench).join("spotcost.toml")
}

/// The data dir holding the year-long lake, generated on first use.
pub fn year_lake(bench: &Bench) -> anyhow::Result<PathBuf> {
    let root = year_dir(bench);
    let data_dir = root.join("data");
    let marker = root.join("complete");
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(
        config_path(bench),
        format!(
            "queries_dir = {:?}\nduckdb_memory_limit = \"1536MB\"\n",
            queries.display().to_string()
        ),
    )
    .with_context(|| format!("writing {}", config_path(bench).display()))?;
    if marker.exists() {
        return Ok(data_dir);
    }
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("clearing {}", data_dir.display()))?;
    }
    let started = std::time::Instant::now();
    eprintln!(
        "generating the year-long lake ({DAYS} days) into {}",
        data_dir.display()
    );
    let org = Organisation::new();
    let days: Vec<NaiveDate> = first_day().iter_days().take(DAYS as usize).collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rows: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (org, days, data_dir) = (&org, &days, &data_dir);
                scope.spawn(move || -> anyhow::Result<u64> {
                    let mut rows = 0;
                    for day in days.iter().skip(worker).step_by(workers) {
                        rows += write_day(data_dir, org, *day, 0)?;
                    }
                    Ok(rows)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a generator thread panicked"))
            })
            .sum::<anyhow::Result<u64>>()
    })?;
    std::fs::write(&marker, format!("{rows} rows\n"))
        .with_context(|| format!("writing {}", marker.display()))?;
    eprintln!(
        "generated {rows} rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(data_dir)
}

/// The year-long data dir with a built `warehouse.duckdb` (built with `spotcost model` if missing).
#[allow(dead_code)]
pub fn year_warehouse(bench: &Bench) -> anyhow::Result<PathBuf> {
    let data_dir = year_lake(bench)?;
    if !spotcost::models::warehouse_path(&data_dir).exists() {
        run_measured(&mut bench.spotcost(&[
            "model",
            "--data-dir",
            &data_dir.to_string_lossy(),
            "--config",
            &config_path(bench).to_string_lossy(),
        ]))?;
    }
    Ok(data_dir)
}

/// Rewrites `day`'s partitions as Spot's restatement `revision` would (every figure moves a
/// little, and they still agree with each other), as a nightly re-read of the lookback does.
pub fn restate_day(data_dir: &Path, day: NaiveDate, revision: u64) -> anyhow::Result<u64> {
    write_day(data_dir, &Organisation::new(), day, revision)
}

/// Names fixed for the whole year, built once.
struct Organisation {
    accounts: Vec<String>,
    account_names: Vec<String>,
    clusters: Vec<String>,
    cluster_names: Vec<String>,
    namespaces: Vec<String>,
    /// Per namespace: (team, cost centre).
    labels: Vec<(String, String)>,
    /// Per cluster × namespace × workload.
    workloads: Vec<String>,
    node_groups: Vec<String>,
    groups: Vec<String>,
    managed_instances: Vec<String>,
}

impl Organisation {
    fn new() -> Organisation {
        let accounts: Vec<String> = (0..ACCOUNTS).map(|a| format!("act-y{a:07x}")).collect();
        let clusters: Vec<String> = (0..ACCOUNTS * CLUSTERS_PER_ACCOUNT)
            .map(|c| format!("o-y{c:07x}"))
            .collect();
        Organisation {
            account_names: (0..ACCOUNTS).map(|a| format!("year account {a}")).collect(),
            cluster_names: (0..clusters.len())
                .map(|c| format!("cluster-{c}"))
                .collect(),
            namespaces: (0..NAMESPACES).map(|n| format!("ns-{n:02}")).collect(),
            labels: (0..NAMESPACES)
                .map(|n| (format!("team-{}", n % 12), format!("cc-{}", n % 7)))
                .collect(),
            workloads: (0..clusters.len() * NAMESPACES * WORKLOADS)
                .map(|w| format!("wl-{:02}-{}", (w / WORKLOADS) % NAMESPACES, w % WORKLOADS))
                .collect(),
            node_groups: (0..clusters.len() * NODE_GROUPS)
                .map(|g| format!("ols-y{g:07x}"))
                .collect(),
            groups: (0..ACCOUNTS * GROUPS_PER_ACCOUNT)
                .map(|g| format!("sig-y{g:07x}"))
                .collect(),
            managed_instances: (0..ACCOUNTS * MANAGED_INSTANCES_PER_ACCOUNT)
                .map(|m| format!("smi-y{m:07x}"))
                .collect(),
            accounts,
            clusters,
        }
    }
}

/// splitmix64: a fast, well-mixed hash of a counter.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A deterministic amount in whole cents in `[0, max_cents)`, as USD.
fn cents(seed: u64, max_cents: u64) -> f64 {
    (mix(seed) % max_cents) as f64 / 100.0
}

/// Columns of one batch by name; the dataset's date column is filled with the day, and every
/// other column not given is null (the schema check refuses a missing non-null column).
struct Columns {
    dataset: Dataset,
    rows: usize,
    arrays: HashMap<&'static str, ArrayRef>,
}

impl Columns {
    fn new(dataset: Dataset, rows: usize) -> Columns {
        Columns {
            dataset,
            rows,
            arrays: HashMap::new(),
        }
    }

    fn text<'a>(mut self, name: &'static str, values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut builder = StringBuilder::new();
        for value in values {
            builder.append_value(value);
        }
        self.arrays.insert(name, Arc::new(builder.finish()));
        self
    }

    fn same_text(self, name: &'static str, value: &str) -> Self {
        let rows = self.rows;
        self.text(name, std::iter::repeat_n(value, rows))
    }

    fn number(mut self, name: &'static str, values: Vec<f64>) -> Self {
        self.arrays
            .insert(name, Arc::new(Float64Array::from(values)));
        self
    }

    fn integer(mut self, name: &'static str, values: Vec<i64>) -> Self {
        self.arrays.insert(name, Arc::new(Int64Array::from(values)));
        self
    }

    fn array(mut self, name: &'static str, array: ArrayRef) -> Self {
        self.arrays.insert(name, array);
        self
    }

    fn batch(mut self, day: NaiveDate) -> anyhow::Result<RecordBatch> {
        let schema = self.dataset.schema();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
        let day_number = (day - epoch).num_days() as i32;
        let mut columns = Vec::new();
        for field in schema.fields() {
            let name = field.name().as_str();
            let array = match (self.arrays.remove(name), field.data_type()) {
                (Some(array), _) => array,
                (None, DataType::Date32) => {
                    Arc::new(Date32Array::from(vec![day_number; self.rows])) as ArrayRef
                }
                (None, data_type) if field.is_nullable() => {
                    arrow::array::new_null_array(data_type, self.rows)
                }
                (None, _) => bail!("{}: no values for the column {name}", self.dataset),
            };
            columns.push(array);
        }
        if let Some(name) = self.arrays.keys().next() {
            bail!("{}: {name} is not a column", self.dataset);
        }
        RecordBatch::try_new(schema, columns)
            .with_context(|| format!("assembling a {} batch", self.dataset))
    }
}

/// Writes one partition file the way the lake lays it out, with the lake's writer properties.
fn write_file(
    data_dir: &Path,
    dataset: Dataset,
    day: NaiveDate,
    scope: &str,
    batch: &RecordBatch,
) -> anyhow::Result<u64> {
    let path = spotcost::lake::Lake::new(data_dir).partition_path(dataset.name(), day, scope);
    let folder = path.parent().expect("a partition has a folder");
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    // Written beside its final name and renamed, so a restated day is replaced whole.
    let temp = folder.join(format!(".year-lake-{}", std::process::id()));
    let file =
        std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
    let mut writer = ArrowWriter::try_new(
        file,
        dataset.schema(),
        Some(spotcost::lake::writer_properties()),
    )?;
    writer.write(batch)?;
    writer.close()?;
    std::fs::rename(&temp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(batch.num_rows() as u64)
}

fn labels_array(org: &Organisation, namespaces: &[Option<usize>]) -> anyhow::Result<ArrayRef> {
    let mut builder = MapBuilder::new(
        Some(MapFieldNames {
            entry: "entries".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    for namespace in namespaces {
        match namespace {
            Some(n) => {
                let (team, cost_center) = &org.labels[*n];
                builder.keys().append_value("team");
                builder.values().append_value(team);
                builder.keys().append_value("cost-center");
                builder.values().append_value(cost_center);
                builder.append(true)?;
            }
            None => builder.append(false)?,
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// Every dataset of one day, for every account; returns the rows written.
fn write_day(
    data_dir: &Path,
    org: &Organisation,
    day: NaiveDate,
    revision: u64,
) -> anyhow::Result<u64> {
    let day_seed = mix(day.num_days_from_ce() as u64 ^ (revision << 40));
    let mut rows = 0;
    let snapshot = day > last_day() - chrono::Duration::days(i64::from(SNAPSHOT_DAYS));
    for account in 0..ACCOUNTS {
        let account_id = org.accounts[account].as_str();
        let seed = mix(day_seed ^ (account as u64) << 20);

        // Ocean: per cluster, 5 workloads per namespace, an unused-storage row per namespace and
        // one headroom row; the cluster total is what its rows add up to.
        let clusters = account * CLUSTERS_PER_ACCOUNT..(account + 1) * CLUSTERS_PER_ACCOUNT;
        let per_cluster = NAMESPACES * WORKLOADS + NAMESPACES + 1;
        let n = clusters.len() * per_cluster;
        let (mut cluster_ids, mut cluster_names, mut kinds) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut namespaces, mut workload_names, mut workload_types) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut compute, mut storage, mut network, mut total, mut cluster_total) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut label_namespaces = Vec::with_capacity(n);
        let mut ocean_compute_usd = 0.0;
        for cluster in clusters.clone() {
            let first = total.len();
            let mut sum = 0.0;
            let mut push = |kind: &'static str,
                            namespace: Option<usize>,
                            workload: Option<usize>,
                            costs: (f64, f64, f64)| {
                cluster_ids.push(org.clusters[cluster].as_str());
                cluster_names.push(org.cluster_names[cluster].as_str());
                kinds.push(kind);
                namespaces.push(namespace.map(|n| org.namespaces[n].as_str()));
                workload_names.push(workload.map(|w| org.workloads[w].as_str()));
                workload_types.push(match kind {
                    "workload" => "Deployment",
                    "headroom" => "Headroom",
                    _ => "UnusedStorage",
                });
                label_namespaces.push(namespace);
                compute.push(costs.0);
                storage.push(costs.1);
                network.push(costs.2);
                total.push(costs.0 + costs.1 + costs.2);
                sum += costs.0 + costs.1 + costs.2;
                ocean_compute_usd += costs.0;
            };
            for namespace in 0..NAMESPACES {
                for workload in 0..WORKLOADS {
                    let w = (cluster * NAMESPACES + namespace) * WORKLOADS + workload;
                    let s = seed ^ (w as u64) << 8;
                    push(
                        "workload",
                        Some(namespace),
                        Some(w),
                        (cents(s, 2_000), cents(s ^ 1, 300), cents(s ^ 2, 100)),
                    );
                }
                let s = seed ^ ((cluster * NAMESPACES + namespace) as u64) << 8 ^ 3;
                push(
                    "unused_storage",
                    Some(namespace),
                    None,
                    (0.0, cents(s, 200), 0.0),
                );
            }
            let s = seed ^ (cluster as u64) << 8 ^ 5;
            push("headroom", None, None, (cents(s, 20_000), 0.0, 0.0));
            cluster_total.extend(std::iter::repeat_n(sum, total.len() - first));
        }
        let batch = Columns::new(Dataset::OceanCosts, n)
            .same_text("account_id", account_id)
            .text("cluster_id", cluster_ids)
            .text("cluster_name", cluster_names)
            .same_text("cloud", "aws")
            .text("row_kind", kinds)
            .array(
                "namespace",
                Arc::new(arrow::array::StringArray::from(namespaces)),
            )
            .array(
                "workload_name",
                Arc::new(arrow::array::StringArray::from(workload_names)),
            )
            .text("workload_type", workload_types)
            .number("compute_cost_usd", compute)
            .number("storage_cost_usd", storage)
            .number("network_cost_usd", network)
            .number("total_cost_usd", total)
            .number("cluster_total_cost_usd", cluster_total)
            .array("namespace_labels", labels_array(org, &label_namespaces)?)
            .batch(day)?;
        rows += write_file(data_dir, Dataset::OceanCosts, day, account_id, &batch)?;

        // The instance-cost export: Ocean nodes (K8S) by virtual node group, Elastigroup
        // instances and managed instances; a group's cost is the sum of its instances.
        let n = clusters.len() * NODES_PER_CLUSTER
            + GROUPS_PER_ACCOUNT * INSTANCES_PER_GROUP
            + MANAGED_INSTANCES_PER_ACCOUNT;
        let (mut resources, mut instance_ids, mut use_cases, mut lifecycles) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut hours, mut on_demand, mut actual) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut instance = |resource: &str, use_case: &'static str, s: u64| -> (f64, f64) {
            let paid = cents(s, 3_000) + 0.01;
            let spot = mix(s ^ 7) % 4 != 0;
            let potential = if spot { paid * 3.0 } else { paid };
            instance_ids.push(format!("i-{:016x}", mix(s ^ 11)));
            resources.push(resource.to_owned());
            use_cases.push(use_case);
            lifecycles.push(if spot { "EXCESS" } else { "ON_DEMAND" });
            hours.push(24.0);
            on_demand.push(potential);
            actual.push(paid);
            (paid, potential)
        };
        for cluster in clusters.clone() {
            for node in 0..NODES_PER_CLUSTER {
                let group = cluster * NODE_GROUPS + node % NODE_GROUPS;
                instance(
                    &org.node_groups[group],
                    "K8S",
                    seed ^ ((cluster * NODES_PER_CLUSTER + node) as u64) << 8 ^ 13,
                );
            }
        }
        let mut group_costs = Vec::new();
        for g in 0..GROUPS_PER_ACCOUNT {
            let group = account * GROUPS_PER_ACCOUNT + g;
            let mut paid = 0.0;
            let mut potential = 0.0;
            for i in 0..INSTANCES_PER_GROUP {
                let (p, o) = instance(
                    &org.groups[group],
                    "Load Balancing",
                    seed ^ ((group * INSTANCES_PER_GROUP + i) as u64) << 8 ^ 17,
                );
                paid += p;
                potential += o;
            }
            group_costs.push((group, paid, potential));
        }
        let mut managed_costs = Vec::new();
        for m in 0..MANAGED_INSTANCES_PER_ACCOUNT {
            let managed = account * MANAGED_INSTANCES_PER_ACCOUNT + m;
            let (paid, potential) = instance(
                &org.managed_instances[managed],
                "Stateful",
                seed ^ (managed as u64) << 8 ^ 19,
            );
            managed_costs.push((managed, paid, potential));
        }
        let savings: Vec<f64> = on_demand.iter().zip(&actual).map(|(o, a)| o - a).collect();
        let batch = Columns::new(Dataset::InstanceCosts, n)
            .same_text("account_id", account_id)
            .same_text("account_name", &org.account_names[account])
            .text("resource_id", resources.iter().map(String::as_str))
            .same_text("cloud_provider", "AWS")
            .text("instance_id", instance_ids.iter().map(String::as_str))
            .same_text("instance_type", "m5.xlarge")
            .same_text("region", "us-east-1")
            .text("use_case", use_cases)
            .text("lifecycle", lifecycles)
            .same_text("product", "LINUX")
            .number("running_hours", hours)
            .number("on_demand_cost_usd", on_demand)
            .number("actual_cost_usd", actual)
            .number("savings_usd", savings)
            .batch(day)?;
        rows += write_file(data_dir, Dataset::InstanceCosts, day, account_id, &batch)?;

        let batch = Columns::new(Dataset::ElastigroupCosts, group_costs.len())
            .same_text("account_id", account_id)
            .same_text("cloud", "aws")
            .same_text("product", "elastigroup")
            .text(
                "group_id",
                group_costs.iter().map(|g| org.groups[g.0].as_str()),
            )
            .text(
                "group_name",
                group_costs.iter().map(|g| org.groups[g.0].as_str()),
            )
            .number(
                "running_hours",
                vec![24.0 * INSTANCES_PER_GROUP as f64; group_costs.len()],
            )
            .number("actual_cost_usd", group_costs.iter().map(|g| g.1).collect())
            .number(
                "potential_cost_usd",
                group_costs.iter().map(|g| g.2).collect(),
            )
            .batch(day)?;
        rows += write_file(data_dir, Dataset::ElastigroupCosts, day, account_id, &batch)?;

        let batch = Columns::new(Dataset::ManagedInstanceCosts, managed_costs.len())
            .same_text("account_id", account_id)
            .text(
                "managed_instance_id",
                managed_costs
                    .iter()
                    .map(|m| org.managed_instances[m.0].as_str()),
            )
            .number("running_hours", vec![24.0; managed_costs.len()])
            .number(
                "actual_cost_usd",
                managed_costs.iter().map(|m| m.1).collect(),
            )
            .number(
                "potential_cost_usd",
                managed_costs.iter().map(|m| m.2).collect(),
            )
            .batch(day)?;
        rows += write_file(
            data_dir,
            Dataset::ManagedInstanceCosts,
            day,
            account_id,
            &batch,
        )?;

        // Spot's account total: its groups, managed instances and Ocean compute.
        let paid: f64 = group_costs.iter().map(|g| g.1).sum::<f64>()
            + managed_costs.iter().map(|m| m.1).sum::<f64>()
            + ocean_compute_usd;
        let batch = Columns::new(Dataset::AccountCosts, 1)
            .same_text("account_id", account_id)
            .same_text("cloud", "aws")
            .same_text("cost_block", "spot")
            .number("running_hours", vec![24.0 * n as f64])
            .number("actual_cost_usd", vec![paid])
            .number("potential_cost_usd", vec![paid * 2.0])
            .number("savings_percent", vec![50.0])
            .batch(day)?;
        rows += write_file(data_dir, Dataset::AccountCosts, day, account_id, &batch)?;

        if snapshot {
            rows += write_snapshots(data_dir, org, day, account, seed)?;
        }
    }

    // Organisation-wide: the account list and the audit log.
    let batch = Columns::new(Dataset::Accounts, ACCOUNTS)
        .text("account_id", org.accounts.iter().map(String::as_str))
        .text("account_name", org.account_names.iter().map(String::as_str))
        .same_text("organization_id", "606079870000")
        .same_text("cloud", "aws")
        .same_text("cloud_provider", "AWS")
        .batch(day)?;
    rows += write_file(data_dir, Dataset::Accounts, day, "org", &batch)?;
    let events = 40;
    let epoch_micros = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();
    let batch = Columns::new(Dataset::AuditEvents, events)
        .array(
            "event_at",
            Arc::new(
                TimestampMicrosecondArray::from(
                    (0..events as i64)
                        .map(|e| epoch_micros + e * 1_800_000_000)
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        )
        .text(
            "account_id",
            (0..events).map(|e| org.accounts[e % ACCOUNTS].as_str()),
        )
        .text(
            "user_name",
            (0..events).map(|e| ["alice", "bob", "ci-bot"][e % 3]),
        )
        .text(
            "action_type",
            (0..events).map(|e| ["Update", "Create", "Delete"][e % 3]),
        )
        .text("resource_type", (0..events).map(|_| "Elastigroup"))
        .text(
            "resource_id",
            (0..events).map(|e| org.groups[e % org.groups.len()].as_str()),
        )
        .integer(
            "response_status",
            (0..events as u64)
                .map(|e| {
                    if mix(day_seed ^ e) % 10 == 0 {
                        400
                    } else {
                        200
                    }
                })
                .collect(),
        )
        .batch(day)?;
    rows += write_file(data_dir, Dataset::AuditEvents, day, "org", &batch)?;
    Ok(rows)
}

/// One account's right-sizing and potential-savings snapshots for `day`.
fn write_snapshots(
    data_dir: &Path,
    org: &Organisation,
    day: NaiveDate,
    account: usize,
    seed: u64,
) -> anyhow::Result<u64> {
    let account_id = org.accounts[account].as_str();
    let clusters = account * CLUSTERS_PER_ACCOUNT..(account + 1) * CLUSTERS_PER_ACCOUNT;
    let workloads: Vec<usize> = clusters
        .clone()
        .flat_map(|c| c * NAMESPACES * WORKLOADS..(c + 1) * NAMESPACES * WORKLOADS)
        .collect();
    let n = workloads.len();
    let requested: Vec<f64> = workloads
        .iter()
        .map(|w| 100.0 + (mix(seed ^ *w as u64) % 2000) as f64)
        .collect();
    let suggested: Vec<f64> = requested.iter().map(|r| (r * 0.6).round()).collect();
    let memory: Vec<f64> = workloads
        .iter()
        .map(|w| 128.0 + (mix(seed ^ *w as u64 ^ 1) % 4096) as f64)
        .collect();
    let suggested_memory: Vec<f64> = memory.iter().map(|m| (m * 0.7).round()).collect();
    let batch = Columns::new(Dataset::OceanRightsizing, n)
        .same_text("account_id", account_id)
        .text(
            "cluster_id",
            workloads
                .iter()
                .map(|w| org.clusters[w / (NAMESPACES * WORKLOADS)].as_str()),
        )
        .same_text("api_version", "v1")
        .text(
            "namespace",
            workloads
                .iter()
                .map(|w| org.namespaces[(w / WORKLOADS) % NAMESPACES].as_str()),
        )
        .text(
            "workload_name",
            workloads.iter().map(|w| org.workloads[*w].as_str()),
        )
        .same_text("workload_type", "Deployment")
        .same_text("container_name", "main")
        .number("requested_cpu_millicores", requested.clone())
        .number("suggested_cpu_millicores", suggested.clone())
        .number("requested_memory_mib", memory.clone())
        .number("suggested_memory_mib", suggested_memory.clone())
        .number("workload_requested_cpu_millicores", requested)
        .number("workload_suggested_cpu_millicores", suggested)
        .number("workload_requested_memory_mib", memory)
        .number("workload_suggested_memory_mib", suggested_memory)
        .batch(day)?;
    let mut rows = write_file(data_dir, Dataset::OceanRightsizing, day, account_id, &batch)?;
    let resources = 20;
    let batch = Columns::new(Dataset::PotentialSavings, resources)
        .same_text("account_id", account_id)
        .same_text("resource_type", "EC2Instance")
        .text(
            "resource_name",
            (0..resources)
                .map(|r| format!("i-{:016x}", mix(seed ^ r as u64)))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
        .same_text("region", "us-east-1")
        .number(
            "monthly_savings_usd",
            (0..resources as u64)
                .map(|r| cents(seed ^ r, 50_000))
                .collect(),
        )
        .batch(day)?;
    rows += write_file(data_dir, Dataset::PotentialSavings, day, account_id, &batch)?;
    Ok(rows)
}

//! Hostile input end to end: the simulator in hostile-names mode serves account, Elastigroup,
//! cluster, namespace, workload, label and audit-user strings (and a few account, Elastigroup and
//! cluster ids) carrying path traversal, markup, spreadsheet formulas, quotes, newlines, tabs,
//! NUL and bidi overrides. The real pipeline extracts, models and reports them; the lake keeps its
//! layout (and nothing lands outside the data dir), every string round-trips unchanged into the
//! lake and the marts, the money reconciles to the cent, the CSV neutralises formulas and the
//! HTML runs nothing, fetches nothing and cannot be reordered by a bidi override.

use crate::browser::{chromium, visit};
use crate::support::*;
use chrono::TimeZone;
use spotcost::extract::{Dataset, Scope};
use spotcost::models::{self, ModelSettings};
use spotcost::pipeline;
use spotcost::sim::{
    Organisation, SimConfig, HOSTILE_ACCOUNT_NAMES, HOSTILE_AUDIT_USERS, HOSTILE_PAYLOADS,
};
use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

const FROM: &str = "2026-11-01";
const TO: &str = "2026-11-03";
/// The snapshot datasets are keyed on the day after the range.
const SNAPSHOT_DAY: &str = "2026-11-04";

/// The Unicode bidirectional formatting characters, which the HTML must show rather than obey.
const BIDI_CONTROLS: &[char] = &[
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// The first characters that make a spreadsheet run a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// What a spreadsheet would run as a formula, and what the CSV must therefore prefix with `'`.
fn neutralised(text: &str) -> String {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The inverse of the lake's file-name encoding (`%XX` for every byte outside `[a-z0-9_-]`).
fn decode_scope(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(position + 1..position + 3)?).ok()?;
                if !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
                {
                    return None;
                }
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                position += 3;
            }
            byte if byte.is_ascii_lowercase()
                || byte.is_ascii_digit()
                || byte == b'-'
                || byte == b'_' =>
            {
                decoded.push(byte);
                position += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(decoded).ok()
}

/// Every entry under `root` (files, symlinks and empty folders), relative, without following links.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut entries = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(folder) = stack.pop() {
        let mut empty = true;
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            empty = false;
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                entries.insert(entry.path().strip_prefix(root).unwrap().to_owned());
            }
        }
        if empty && folder != root {
            entries.insert(folder.strip_prefix(root).unwrap().to_owned());
        }
    }
    entries
}

fn strings(db: &duckdb::Connection, sql: &str) -> BTreeSet<String> {
    let mut statement = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.unwrap())
        .collect()
}

fn rows(db: &duckdb::Connection, sql: &str, width: usize) -> BTreeSet<Vec<String>> {
    let mut statement = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    statement
        .query_map([], |row| {
            (0..width)
                .map(|column| row.get::<_, Option<String>>(column))
                .map(|value| value.map(Option::unwrap_or_default))
                .collect::<Result<Vec<String>, _>>()
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.unwrap())
        .collect()
}

/// `(text key, day) → USD` from a query returning key, day text and an amount.
fn amounts(db: &duckdb::Connection, sql: &str) -> HashMap<(String, String), f64> {
    let mut statement = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    statement
        .query_map([], |row| {
            Ok((
                (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                row.get::<_, f64>(2)?,
            ))
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.unwrap())
        .collect()
}

/// Violations found so far: the test reports them all at once rather than the first alone.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// Sets must be equal; says what is missing and what is extra.
    fn same<T: Ord + std::fmt::Debug>(
        &mut self,
        what: &str,
        got: &BTreeSet<T>,
        want: &BTreeSet<T>,
    ) {
        let missing: Vec<_> = want.difference(got).collect();
        let extra: Vec<_> = got.difference(want).collect();
        self.check(missing.is_empty() && extra.is_empty(), || {
            format!("{what}: missing {missing:?}, unexpected {extra:?}")
        });
    }

    /// Everything in `want` is in `got`.
    fn includes<T: Ord + std::fmt::Debug>(
        &mut self,
        what: &str,
        got: &BTreeSet<T>,
        want: &BTreeSet<T>,
    ) {
        let missing: Vec<_> = want.difference(got).collect();
        self.check(missing.is_empty(), || {
            format!("{what}: missing {missing:?}")
        });
    }

    /// Everything in `got` is in `allowed`.
    fn within<T: Ord + std::fmt::Debug>(
        &mut self,
        what: &str,
        got: &BTreeSet<T>,
        allowed: &BTreeSet<T>,
    ) {
        let unexpected: Vec<_> = got.difference(allowed).collect();
        self.check(unexpected.is_empty(), || {
            format!("{what}: unexpected {unexpected:?}")
        });
    }

    /// Money agrees to the cent.
    fn usd(&mut self, what: &str, got: Option<f64>, want: f64) {
        self.check(got.is_some_and(|got| (got - want).abs() < 0.005), || {
            format!("{what}: {got:?} USD, the simulator says {want:.6} USD")
        });
    }
}

/// What the organisation's structure says the lake and marts must hold.
struct Expected {
    accounts: BTreeSet<Vec<String>>,
    groups: BTreeSet<Vec<String>>,
    clusters: BTreeSet<Vec<String>>,
    namespaces: BTreeSet<Vec<String>>,
    workloads: BTreeSet<Vec<String>>,
    labels: BTreeSet<Vec<String>>,
    audit_users: BTreeSet<String>,
}

fn expected(organisation: &Organisation, days: &[chrono::NaiveDate]) -> Expected {
    let mut expected = Expected {
        accounts: BTreeSet::new(),
        groups: BTreeSet::new(),
        clusters: BTreeSet::new(),
        namespaces: BTreeSet::new(),
        workloads: BTreeSet::new(),
        labels: BTreeSet::new(),
        audit_users: days
            .iter()
            .flat_map(|day| organisation.audit_events(*day))
            .map(|event| event.user)
            .collect(),
    };
    for account in &organisation.accounts {
        expected
            .accounts
            .insert(vec![account.id.clone(), account.name.clone()]);
        for group in &account.groups {
            expected
                .groups
                .insert(vec![group.id.clone(), group.name.clone()]);
        }
        for cluster in &account.clusters {
            expected
                .clusters
                .insert(vec![cluster.id.clone(), cluster.name.clone()]);
            for namespace in &cluster.namespaces {
                expected
                    .namespaces
                    .insert(vec![cluster.id.clone(), namespace.name.clone()]);
                let label = |key: &str| namespace.labels.get(key).cloned().unwrap_or_default();
                expected.labels.insert(vec![
                    cluster.id.clone(),
                    namespace.name.clone(),
                    label("team"),
                    label("cost-center"),
                ]);
                for workload in &namespace.workloads {
                    expected.workloads.insert(vec![
                        cluster.id.clone(),
                        namespace.name.clone(),
                        workload.name.clone(),
                    ]);
                }
            }
        }
    }
    expected
}

/// The data dir holds the lake layout, the warehouse, the reports and the state, nothing else.
fn assert_layout(data_dir: &Path, organisation: &Organisation, days: &[chrono::NaiveDate]) {
    let account_ids: BTreeSet<&str> = organisation
        .accounts
        .iter()
        .map(|account| account.id.as_str())
        .collect();
    let mut account_cost_scopes: HashMap<String, BTreeSet<String>> = HashMap::new();
    for path in tree(data_dir) {
        let parts: Vec<&str> = path
            .components()
            .map(|component| match component {
                Component::Normal(part) => part.to_str().expect("a UTF-8 file name"),
                other => panic!("{path:?} has the component {other:?}"),
            })
            .collect();
        match parts.as_slice() {
            ["lake", dataset_name, day_folder, file_name] => {
                let dataset = Dataset::from_name(dataset_name)
                    .unwrap_or_else(|| panic!("{path:?}: no dataset {dataset_name}"));
                let day_text = day_folder
                    .strip_prefix("day=")
                    .unwrap_or_else(|| panic!("{path:?}: not a day folder"));
                chrono::NaiveDate::parse_from_str(day_text, "%Y-%m-%d")
                    .unwrap_or_else(|_| panic!("{path:?}: not a day"));
                let encoded = file_name
                    .strip_prefix("part-")
                    .and_then(|rest| rest.strip_suffix(".parquet"))
                    .unwrap_or_else(|| panic!("{path:?}: not a partition file"));
                let scope = decode_scope(encoded)
                    .unwrap_or_else(|| panic!("{path:?}: {encoded} is not an encoded scope"));
                match dataset.scope() {
                    Scope::Organisation => assert_eq!(scope, "org", "{path:?}"),
                    Scope::Account => assert!(
                        account_ids.contains(scope.as_str()),
                        "{path:?}: {scope:?} is no account"
                    ),
                }
                if dataset == Dataset::AccountCosts {
                    account_cost_scopes
                        .entry((*day_text).to_owned())
                        .or_default()
                        .insert(scope);
                }
            }
            ["warehouse.duckdb"] | [".spotcost.lock"] => {}
            ["reports", "latest" | "latest.txt"] => {}
            ["reports", day_folder, file_name] => {
                assert!(
                    chrono::NaiveDate::parse_from_str(day_folder, "%Y-%m-%d").is_ok(),
                    "{path:?}"
                );
                assert!(
                    !file_name.starts_with('.')
                        && (file_name.ends_with(".html") || file_name.ends_with(".csv")),
                    "{path:?}"
                );
            }
            ["state", ..] => {}
            _ => panic!("{path:?} is outside the data dir's layout"),
        }
    }
    // Every account has its own account-costs file every day: no two ids share a file.
    for day in days {
        let scopes = &account_cost_scopes[&day.to_string()];
        assert_eq!(
            scopes.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            account_ids,
            "{day}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_ids_stay_data_from_the_api_to_the_reports() {
    let server = simulator(SimConfig {
        hostile_names: true,
        ..SimConfig::default()
    })
    .await;
    let organisation = server.organisation().clone();
    let days: Vec<_> = day(FROM)
        .iter_days()
        .take_while(|d| *d <= day(TO))
        .collect();
    let expected = expected(&organisation, &days);
    // The ids that used to share a file name, and the Elastigroup id with a NUL.
    let hostile_accounts = [&organisation.accounts[1], &organisation.accounts[2]];
    assert!(hostile_accounts[0].id.contains("/../"));
    let hostile_group = &organisation.accounts[0].groups[0];
    assert!(hostile_group.id.contains('\0'));

    // The data dir sits deep in a sandbox, so even `../..` from a partition folder stays inside it.
    let sandbox = tempfile::tempdir().unwrap();
    let data_dir = sandbox.path().join("a/b/c/d/data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let extracted = pipeline::extract(
        client(&server.url(), 4),
        &plan(&data_dir, FROM, TO, &Dataset::ALL),
    )
    .await
    .unwrap();
    let failures: Vec<_> = extracted.failures().map(|f| f.error.clone()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(extracted.accounts.len(), organisation.accounts.len());
    server.shutdown().await;

    // The lake holds every hostile string exactly as the API served it.
    let mut problems = Problems::default();
    let db = duckdb();
    let lake = |dataset: &str| dataset_sql(&data_dir, dataset);
    let query = |columns: &str, dataset: &str, rest: &str, width: usize| {
        rows(
            &db,
            &format!("select distinct {columns} from {} {rest}", lake(dataset)),
            width,
        )
    };
    problems.same(
        "accounts",
        &query("account_id, account_name", "accounts", "", 2),
        &expected.accounts,
    );
    problems.includes(
        "elastigroups",
        &query("group_id, group_name", "elastigroups", "", 2),
        &expected.groups,
    );
    problems.includes(
        "elastigroup_costs",
        &query("group_id, group_name", "elastigroup_costs", "", 2),
        &expected.groups,
    );
    problems.same(
        "ocean_clusters",
        &query("cluster_id, cluster_name", "ocean_clusters", "", 2),
        &expected.clusters,
    );
    problems.same(
        "ocean_costs namespaces",
        &query(
            "cluster_id, namespace",
            "ocean_costs",
            "where namespace is not null",
            2,
        ),
        &expected.namespaces,
    );
    problems.same(
        "ocean_costs workloads",
        &query(
            "cluster_id, namespace, workload_name",
            "ocean_costs",
            "where workload_name is not null",
            3,
        ),
        &expected.workloads,
    );
    problems.same(
        "ocean_costs labels",
        &query(
            "cluster_id, namespace, namespace_labels['team'], namespace_labels['cost-center']",
            "ocean_costs",
            "where namespace is not null",
            4,
        ),
        &expected.labels,
    );
    problems.same(
        "audit_events users",
        &strings(
            &db,
            &format!("select distinct user_name from {}", lake("audit_events")),
        ),
        &expected.audit_users,
    );
    problems.same(
        "instance_costs accounts",
        &query("account_id, account_name", "instance_costs", "", 2),
        &expected.accounts,
    );
    let group_use_cases: BTreeSet<Vec<String>> = organisation
        .accounts
        .iter()
        .flat_map(|account| &account.groups)
        .map(|group| vec![group.id.clone(), group.use_case.clone()])
        .collect();
    let group_ids: BTreeSet<&str> = group_use_cases.iter().map(|row| row[0].as_str()).collect();
    let exported_use_cases: BTreeSet<Vec<String>> =
        query("resource_id, use_case", "instance_costs", "", 2)
            .into_iter()
            .filter(|row| group_ids.contains(row[0].as_str()))
            .collect();
    problems.within(
        "instance_costs use cases",
        &exported_use_cases,
        &group_use_cases,
    );
    let exported_resources = strings(
        &db,
        &format!(
            "select distinct resource_id from {}",
            lake("instance_costs")
        ),
    );
    problems.check(exported_resources.contains(&hostile_group.id), || {
        format!("instance_costs lacks the resource {:?}", hostile_group.id)
    });

    // The money reconciles to the cent for every account (hostile ids included), for the
    // Elastigroup with a NUL in its id, and in the instance-costs export.
    let account_costs = amounts(
        &db,
        &format!(
            "select account_id, usage_date::varchar, actual_cost_usd from {}",
            lake("account_costs")
        ),
    );
    let exported = amounts(
        &db,
        &format!(
            "select account_id, usage_date::varchar, sum(actual_cost_usd) from {} group by all",
            lake("instance_costs")
        ),
    );
    let group_costs = amounts(
        &db,
        &format!(
            "select group_id, usage_date::varchar, actual_cost_usd from {}",
            lake("elastigroup_costs")
        ),
    );
    for day in &days {
        let day_text = day.to_string();
        for account in &organisation.accounts {
            let key = (account.id.clone(), day_text.clone());
            let truth = organisation.account_day(&account.id, *day).actual.usd();
            problems.usd(
                &format!("account_costs {key:?}"),
                account_costs.get(&key).copied(),
                truth,
            );
            problems.usd(
                &format!("instance_costs {key:?}"),
                Some(exported.get(&key).copied().unwrap_or(0.0)),
                truth,
            );
        }
        let key = (hostile_group.id.clone(), day_text.clone());
        problems.usd(
            &format!("elastigroup_costs {key:?}"),
            group_costs.get(&key).copied(),
            organisation.group_day(&hostile_group.id, *day).actual.usd(),
        );
    }

    // The marts: built (their data tests pass, unique keys included) and holding the same strings.
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    if let Err(error) = models::build(&data_dir, &queries, &ModelSettings::default()) {
        panic!(
            "the models do not build: {error}\nand before that: {:#?}",
            problems.0
        );
    }
    {
        let warehouse = read_only_warehouse(&data_dir);
        problems.same(
            "chargeback_account accounts",
            &rows(
                &warehouse,
                "select distinct account_id, account_name from chargeback_account",
                2,
            ),
            &expected.accounts,
        );
        let by_account: HashMap<String, f64> = keyed_numbers(
            &warehouse,
            "select account_id, sum(actual_cost_usd) from chargeback_account where product <> 'Ocean storage and network' group by all",
        )
        .into_iter()
        .collect();
        for account in &organisation.accounts {
            let truth: f64 = days
                .iter()
                .map(|d| organisation.account_day(&account.id, *d).actual.usd())
                .sum();
            problems.usd(
                &format!("chargeback_account {:?}", account.id),
                by_account.get(&account.id).copied(),
                truth,
            );
        }
        let unassigned_labels: BTreeSet<Vec<String>> = expected
            .labels
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(position, value)| match (position, value.as_str()) {
                        (2 | 3, "") => "unassigned".to_owned(),
                        _ => value.clone(),
                    })
                    .collect()
            })
            .collect();
        problems.same(
            "chargeback_namespace labels",
            &rows(
                &warehouse,
                "select distinct cluster_id, namespace, team, cost_center from chargeback_namespace where namespace <> '__shared__'",
                4,
            ),
            &unassigned_labels,
        );
        problems.same(
            "chargeback_namespace clusters",
            &rows(
                &warehouse,
                "select distinct cluster_id, cluster_name from chargeback_namespace",
                2,
            ),
            &expected.clusters,
        );
        let by_cluster: HashMap<String, f64> = keyed_numbers(
            &warehouse,
            "select cluster_id, sum(total_cost_usd) from chargeback_namespace group by all",
        )
        .into_iter()
        .collect();
        for account in &organisation.accounts {
            for cluster in &account.clusters {
                let truth: f64 = days
                    .iter()
                    .map(|d| organisation.cluster_day(&cluster.id, *d).total.usd())
                    .sum();
                problems.usd(
                    &format!("chargeback_namespace {:?}", cluster.id),
                    by_cluster.get(&cluster.id).copied(),
                    truth,
                );
            }
        }
        problems.includes(
            "savings_realized resources",
            &rows(
                &warehouse,
                "select distinct resource_id, resource_name from savings_realized",
                2,
            ),
            &expected.groups,
        );
        problems.same(
            "audit_activity users",
            &strings(&warehouse, "select distinct user_name from audit_activity"),
            &expected.audit_users,
        );
        let rightsized = rows(
            &warehouse,
            "select distinct cluster_id, namespace, workload_name from rightsizing",
            3,
        );
        problems.check(!rightsized.is_empty(), || "rightsizing is empty".into());
        problems.within("rightsizing workloads", &rightsized, &expected.workloads);
    }

    // The reports.
    let folder = publish(
        &data_dir,
        chrono::Utc.with_ymd_and_hms(2026, 11, 4, 6, 0, 0).unwrap(),
    );
    assert_eq!(folder, data_dir.join("reports").join(SNAPSHOT_DAY));
    assert_csv_reports(&folder, &organisation, &expected, &mut problems);
    let pages = assert_html_reports(&folder, &mut problems);
    browse(&pages, sandbox.path(), &mut problems);

    // Nothing was written outside the data dir, and everything inside it is where the layout says.
    // (The browser's scratch folder is removed first: it is the test's, not the pipeline's.)
    std::fs::remove_dir_all(sandbox.path().join("browser")).ok();
    for path in tree(sandbox.path()) {
        assert!(
            path.starts_with("a/b/c/d/data"),
            "{path:?} was written outside the data dir"
        );
    }
    assert_layout(&data_dir, &organisation, &days);
    assert!(problems.0.is_empty(), "{:#?}", problems.0);
}

fn read_only_warehouse(data_dir: &Path) -> duckdb::Connection {
    duckdb::Connection::open_with_flags(
        models::warehouse_path(data_dir),
        duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap(),
    )
    .unwrap()
}

/// Writes the shipped reports as of `now`; returns their folder.
fn publish(data_dir: &Path, now: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let index = pipeline::publish_reports(
        data_dir,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("reports"),
        now,
    )
    .unwrap();
    index.parent().unwrap().to_owned()
}

/// No cell of a CSV row is one a spreadsheet would run as a formula (numbers aside).
fn check_no_formula(path: &Path, record: &csv::StringRecord, problems: &mut Problems) {
    for cell in record.iter() {
        if cell.starts_with(FORMULA_STARTS) {
            problems.check(cell.parse::<f64>().is_ok(), || {
                format!("{path:?}: the cell {cell:?} would run as a formula")
            });
        }
    }
}

/// Every CSV: no cell a spreadsheet would run (numbers aside), every hostile string otherwise
/// intact, bidi characters included (a spreadsheet lays out each cell on its own).
fn assert_csv_reports(
    folder: &Path,
    organisation: &Organisation,
    expected: &Expected,
    problems: &mut Problems,
) {
    let mut all_cells = BTreeSet::new();
    let mut reports = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("csv") {
            continue;
        }
        reports += 1;
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let width = reader.headers().unwrap().len();
        let mut cells = BTreeSet::new();
        for record in reader.records() {
            let record = record.unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert_eq!(record.len(), width, "{path:?}: a row changed shape");
            check_no_formula(&path, &record, problems);
            cells.extend(record.iter().map(str::to_owned));
        }
        let name = path.file_stem().unwrap().to_str().unwrap();
        let must_hold: Vec<String> = match name {
            "chargeback_account" => expected
                .accounts
                .iter()
                .flat_map(|row| row.iter().cloned())
                .collect(),
            "chargeback_namespace" => expected
                .labels
                .iter()
                .flat_map(|row| row.iter().cloned())
                .chain(expected.clusters.iter().map(|row| row[1].clone()))
                .filter(|text| !text.is_empty())
                .collect(),
            "audit_activity" => expected.audit_users.iter().cloned().collect(),
            "savings_realized" => organisation
                .accounts
                .iter()
                .flat_map(|account| &account.groups)
                .flat_map(|group| [group.id.clone(), group.name.clone()])
                .collect(),
            _ => Vec::new(),
        };
        for text in must_hold {
            problems.check(cells.contains(&neutralised(&text)), || {
                format!("{name}.csv lacks {:?}", neutralised(&text))
            });
        }
        all_cells.extend(cells);
    }
    assert_eq!(reports, 10);
    for payload in HOSTILE_PAYLOADS
        .iter()
        .chain(HOSTILE_AUDIT_USERS)
        .chain(HOSTILE_ACCOUNT_NAMES)
    {
        problems.check(all_cells.iter().any(|cell| cell.contains(payload)), || {
            format!("no CSV cell holds {payload:?}")
        });
    }
    for control in ['\u{202E}', '\u{200F}'] {
        problems.check(all_cells.iter().any(|cell| cell.contains(control)), || {
            format!("the CSV dropped {control:?}")
        });
    }
}

/// The tags the report pages are made of: anything else came from the data.
const PAGE_TAGS: &[&str] = &[
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "main",
    "footer",
    "p",
    "h1",
    "h2",
    "dl",
    "dt",
    "dd",
    "div",
    "a",
    "section",
    "figure",
    "figcaption",
    "svg",
    "g",
    "line",
    "rect",
    "text",
    "ul",
    "li",
    "span",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
];

/// Every page's markup is the renderer's own: known tags, no event-handler attribute, no bidi
/// control character (they are shown as `[U+202E]`), and the attacks are there as text.
fn assert_html_reports(folder: &Path, problems: &mut Problems) -> Vec<PathBuf> {
    let mut pages = Vec::new();
    let mut all_html = String::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("html") {
            continue;
        }
        let html = std::fs::read_to_string(&path).unwrap();
        let mut rest = html.as_str();
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let end = after
                .find('>')
                .unwrap_or_else(|| panic!("{path:?}: an unclosed tag"));
            let tag = &after[..end];
            rest = &after[end + 1..];
            if tag.starts_with("!DOCTYPE") {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            problems.check(PAGE_TAGS.contains(&name.as_str()), || {
                format!("{path:?}: the tag <{tag}> is not the renderer's")
            });
            // Attribute names, with the quoted values left out.
            let mut unquoted = String::new();
            let mut quote = None;
            for character in tag.chars() {
                match (quote, character) {
                    (None, '"' | '\'') => quote = Some(character),
                    (Some(open), _) if character == open => quote = None,
                    (None, _) => unquoted.push(character.to_ascii_lowercase()),
                    (Some(_), _) => {}
                }
            }
            problems.check(
                !unquoted
                    .split_whitespace()
                    .skip(1)
                    .any(|attribute| attribute.starts_with("on")),
                || format!("{path:?}: <{tag}> carries an event handler"),
            );
            if name == "style" && !tag.starts_with('/') {
                let close = rest.find("</style>").unwrap();
                assert!(!rest[..close].contains('<'));
                rest = &rest[close..];
            }
        }
        problems.check(!html.contains(BIDI_CONTROLS), || {
            format!("{path:?} holds a raw bidi control character")
        });
        all_html.push_str(&html);
        pages.push(path);
    }
    assert_eq!(pages.len(), 11, "ten reports and the index");
    for shown in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        "=cmd|&#39; /C calc&#39;!A0",
        "invoice[U+202E]fdp.exe",
        "[U+200F]rtl-mark",
        "O&#39;Brien &quot;the quote&quot;, comma",
    ] {
        problems.check(all_html.contains(shown), || {
            format!("no page shows {shown:?} as text")
        });
    }
    pages
}

/// Each page in headless chromium: no request, no console message (a script blocked by the
/// Content-Security-Policy would log one), no element from the data, bidi controls shown.
fn browse(pages: &[PathBuf], sandbox: &Path, problems: &mut Problems) {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing in CI: .ci/run must install it"
        );
        eprintln!("SKIPPED the browser part: chromium is not installed");
        return;
    };
    let mut all_dom = String::new();
    for page in pages {
        let name = page.file_name().unwrap().to_str().unwrap();
        let scratch = sandbox.join("browser").join(name);
        std::fs::create_dir_all(&scratch).unwrap();
        let visit = visit(&chromium, page, &scratch);
        problems.check(visit.page_requests.is_empty(), || {
            format!("{name} made requests: {:?}", visit.page_requests)
        });
        let console: Vec<&str> = visit
            .log
            .lines()
            .filter(|line| line.contains("CONSOLE"))
            .collect();
        problems.check(console.is_empty(), || {
            format!("{name} console messages: {console:#?}")
        });
        // Three days hold no cost anomaly (its baseline needs two weeks) and no complete month
        // for forecast_accuracy to score: those pages say so.
        let empty = (name.contains("cost_anomalies") || name == "forecast_accuracy.html")
            && visit.dom.contains("No data for this period");
        problems.check(visit.dom.contains("<table") || empty, || {
            format!("{name}: no table")
        });
        let lowered = visit.dom.to_ascii_lowercase();
        for element in [
            "<script", "<img", "<iframe", "<object", "<embed", "<b>", "<i>",
        ] {
            problems.check(!lowered.contains(element), || {
                format!("{name}: {element} in the DOM")
            });
        }
        problems.check(!visit.dom.contains(BIDI_CONTROLS), || {
            format!("{name}: a raw bidi control in the DOM")
        });
        all_dom.push_str(&visit.dom);
    }
    for shown in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        "invoice[U+202E]fdp.exe",
    ] {
        problems.check(all_dom.contains(shown), || {
            format!("the browser shows no {shown:?} as text")
        });
    }
}

/// The cause of an anomaly is text assembled from the audit log (who changed which resource): in
/// hostile-names mode the simulator's capacity raise is made by a user whose name is a spreadsheet
/// formula, on a group of an account whose id holds a path traversal. The cause keeps them as
/// data in the warehouse, the CSV neutralises them, and the HTML renders only its own markup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_change_stays_data_in_the_anomaly_cause() {
    let server = simulator(SimConfig {
        hostile_names: true,
        today: Some(day("2026-11-14")),
        ..SimConfig::default()
    })
    .await;
    let organisation = server.organisation().clone();
    let raise = organisation
        .capacity_changes(day("2026-11-11"))
        .into_iter()
        .next()
        .expect("a capacity raise on 2026-11-11");
    assert!(HOSTILE_AUDIT_USERS.contains(&raise.user.as_str()));
    assert!(raise.user.starts_with('+'), "{}", raise.user);
    assert!(raise.account_id.contains("/../"), "{}", raise.account_id);

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let extracted = pipeline::extract(
        client(&server.url(), 4),
        &plan(&data_dir, "2026-10-27", "2026-11-13", &Dataset::ALL),
    )
    .await
    .unwrap();
    assert!(extracted.is_success());
    server.shutdown().await;
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    models::build(&data_dir, &queries, &ModelSettings::default()).unwrap();

    let warehouse = read_only_warehouse(&data_dir);
    let causes = rows(
        &warehouse,
        &format!(
            "select cause, cause_user_name, cause_resource_id from cost_anomalies \
             where scope = 'account' and day = '2026-11-12' and account_id = '{}'",
            raise.account_id.replace('\'', "''")
        ),
        3,
    );
    let cause = format!(
        "the day before, {} changed Elastigroup {} capacity target to {}, capacity maximum to {}",
        raise.user, raise.group_id, raise.to_target, raise.to_target
    );
    assert_eq!(
        causes,
        BTreeSet::from([vec![
            cause.clone(),
            raise.user.clone(),
            raise.group_id.clone()
        ]])
    );

    let folder = publish(
        &data_dir,
        chrono::Utc.with_ymd_and_hms(2026, 11, 14, 6, 0, 0).unwrap(),
    );
    let mut reader = csv::Reader::from_path(folder.join("cost_anomalies.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let row = records
        .iter()
        .find(|record| record[column("cause_user_name")] == neutralised(&raise.user))
        .unwrap_or_else(|| panic!("no CSV row names {:?}: {records:?}", raise.user));
    assert_eq!(&row[column("cause")], cause.as_str());
    let mut problems = Problems::default();
    for record in &records {
        check_no_formula(&folder.join("cost_anomalies.csv"), record, &mut problems);
    }
    let pages = assert_html_reports(&folder, &mut problems);
    assert!(pages
        .iter()
        .any(|page| page.ends_with("cost_anomalies.html")));
    let html = std::fs::read_to_string(folder.join("cost_anomalies.html")).unwrap();
    assert!(html.contains("+SUM(1)@example.com"), "the user is shown");
    assert!(problems.0.is_empty(), "{:#?}", problems.0);
}

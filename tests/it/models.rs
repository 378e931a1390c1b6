//! The models over a lake extracted from the simulator: marts reconcile to its ground truth to the
//! cent under every shared-cost policy, every mart and column is commented, a failing data test
//! fails the build while the previous warehouse stays usable, and an incremental build gives the
//! same warehouse as a full one.

use crate::support::*;
use spotcost::extract::Dataset;
use spotcost::models::{self, BuildKind, ModelError, ModelSettings, Rebuild, SharedCostPolicy};
use spotcost::pipeline;
use spotcost::sim::SimConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const FROM: &str = "2026-10-30";
const TO: &str = "2026-11-02";

fn queries() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("queries")
}

fn settings(policy: SharedCostPolicy) -> ModelSettings {
    ModelSettings {
        shared_cost_policy: policy,
        ..ModelSettings::default()
    }
}

fn warehouse(dir: &Path) -> duckdb::Connection {
    duckdb::Connection::open(models::warehouse_path(dir)).expect("the warehouse opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marts_reconcile_to_the_simulator_under_every_policy() {
    let server = simulator(SimConfig::default()).await;
    let organisation = server.organisation().clone();
    let dir = tempfile::tempdir().unwrap();
    let report = pipeline::extract(
        client(&server.url(), 4),
        &plan(dir.path(), FROM, TO, &Dataset::ALL),
    )
    .await
    .unwrap();
    assert!(report.is_success());
    server.shutdown().await;
    let days: Vec<_> = day(FROM)
        .iter_days()
        .take_while(|d| *d <= day(TO))
        .collect();

    for policy in [
        SharedCostPolicy::Proportional,
        SharedCostPolicy::Even,
        SharedCostPolicy::None,
    ] {
        let built = models::build(dir.path(), &queries(), &settings(policy))
            .unwrap_or_else(|e| panic!("{policy:?}: {e}"));
        assert_eq!(built.marts.len(), 10);
        let db = warehouse(dir.path());

        // Namespaces (and the shared row) of every cluster-day add up to the simulator's cluster total.
        let by_cluster: HashMap<String, f64> = keyed_numbers(
            &db,
            "select cluster_id || '/' || day::varchar, sum(total_cost_usd) from chargeback_namespace group by all",
        )
        .into_iter()
        .collect();
        for account in &organisation.accounts {
            for cluster in &account.clusters {
                for &day in &days {
                    let key = format!("{}/{day}", cluster.id);
                    assert_usd(
                        &format!("{policy:?} {key}"),
                        by_cluster[&key],
                        organisation.cluster_day(&cluster.id, day).total.usd(),
                    );
                }
            }
        }
        let shared_rows = count(
            &db,
            "select count(*) from chargeback_namespace where namespace = '__shared__'",
        );
        assert_eq!(
            shared_rows > 0,
            policy == SharedCostPolicy::None,
            "{policy:?}"
        );
        if policy == SharedCostPolicy::Even {
            let uneven = count(
                &db,
                "select count(*) from (select cluster_id, day from chargeback_namespace group by all having max(shared_cost_usd) - min(shared_cost_usd) > 1e-9)",
            );
            assert_eq!(uneven, 0);
        }
        if policy == SharedCostPolicy::Proportional {
            // The share follows the namespace's own cost.
            let off = count(
                &db,
                "with c as (select cluster_id, day, sum(direct_cost_usd) d, sum(shared_cost_usd) s from chargeback_namespace group by all)
                 select count(*) from chargeback_namespace n join c using (cluster_id, day)
                 where c.d > 0 and abs(n.shared_cost_usd - c.s * n.direct_cost_usd / c.d) > 1e-6",
            );
            assert_eq!(off, 0);
        }
    }

    let db = warehouse(dir.path());
    // The reconciliation ledger: every residual within a cent, and what it says Spot reported is
    // the simulator's ground truth to the cent, row by row and in total per level.
    let beyond = keyed_numbers(
        &db,
        "select concat_ws(' ', day, level, item_id, allocated_usd, reported_usd), residual_usd
         from reconciliation where abs_residual_usd > 0.01 or not within_tolerance",
    );
    assert!(beyond.is_empty(), "residuals beyond a cent: {beyond:?}");
    let reported: HashMap<String, f64> = keyed_numbers(
        &db,
        "select level || ' ' || item_id || ' ' || day::varchar, reported_usd from reconciliation",
    )
    .into_iter()
    .collect();
    let mut truth_by_level: HashMap<&str, f64> = HashMap::new();
    let mut rows_checked = 0;
    let mut check = |level: &'static str, item: &str, day: chrono::NaiveDate, truth: f64| {
        let key = format!("{level} {item} {day}");
        // A resource the instance-cost export does not price that day has no row at that level.
        let Some(&got) = reported.get(&key) else {
            assert_ne!(level, "namespaces_to_cluster", "{key} is missing");
            assert_ne!(level, "resources_to_account", "{key} is missing");
            return;
        };
        assert_usd(&format!("ledger {key}"), got, truth);
        *truth_by_level.entry(level).or_default() += truth;
        rows_checked += 1;
    };
    for account in &organisation.accounts {
        for &day in &days {
            let account_truth = organisation.account_day(&account.id, day).actual.usd();
            check("resources_to_account", &account.id, day, account_truth);
            for cluster in &account.clusters {
                let truth = organisation.cluster_day(&cluster.id, day).total.usd();
                check("namespaces_to_cluster", &cluster.id, day, truth);
            }
            for group in &account.groups {
                let truth = organisation.group_day(&group.id, day).actual.usd();
                check("instance_export_to_resource", &group.id, day, truth);
            }
            for scaler in &account.emr_scalers {
                let truth = organisation.emr_scaler_day(&scaler.id, day).actual.usd();
                check("instance_export_to_resource", &scaler.id, day, truth);
            }
            for managed in &account.managed_instances {
                let truth = organisation
                    .managed_instance_day(&managed.id, day)
                    .actual
                    .usd();
                check("instance_export_to_resource", &managed.id, day, truth);
            }
        }
    }
    // Every ledger row is one the simulator knows, and every level is there.
    assert_eq!(rows_checked, reported.len());
    for (level, total) in keyed_numbers(
        &db,
        "select level, sum(reported_usd) from reconciliation group by all",
    ) {
        assert_usd(
            &format!("ledger total {level}"),
            total,
            truth_by_level[level.as_str()],
        );
    }
    assert_eq!(truth_by_level.len(), 3, "{truth_by_level:?}");
    // Account chargeback (compute products) equals the simulator's account totals.
    let by_account: HashMap<String, f64> = keyed_numbers(
        &db,
        "select account_id, sum(actual_cost_usd) from chargeback_account where product <> 'Ocean storage and network' group by all",
    )
    .into_iter()
    .collect();
    for account in &organisation.accounts {
        let truth: f64 = days
            .iter()
            .map(|d| organisation.account_day(&account.id, *d).actual.usd())
            .sum();
        assert_usd(&account.id, by_account[&account.id], truth);
    }
    // Realized savings per Elastigroup equal its on-demand equivalent minus its cost.
    let savings: HashMap<String, f64> = keyed_numbers(
        &db,
        "select resource_id, sum(savings_usd) from savings_realized group by all",
    )
    .into_iter()
    .collect();
    for account in &organisation.accounts {
        for group in &account.groups {
            let truth: f64 = days
                .iter()
                .map(|d| {
                    let totals = organisation.group_day(&group.id, *d);
                    totals.potential.usd() - totals.actual.usd()
                })
                .sum();
            assert_usd(&group.id, savings[&group.id], truth);
        }
    }
    // Audit activity counts every event.
    let events = count(&db, "select sum(event_count)::bigint from audit_activity");
    let truth: usize = days
        .iter()
        .map(|d| organisation.audit_events(*d).len())
        .sum();
    assert_eq!(events as usize, truth);
    // Rankings start at 1 and follow the savings.
    let misordered = count(
        &db,
        "select count(*) from (select monthly_savings_usd < lead(monthly_savings_usd) over (order by savings_rank) as bad from savings_potential) where bad",
    );
    assert_eq!(misordered, 0);
    // Every mart and every column carries a comment.
    let uncommented = count(
        &db,
        "select count(*) from duckdb_columns() where table_name in (select table_name from duckdb_tables() where table_name not in ('spotcost_settings', 'spotcost_budgets')) and (comment is null or comment = '')",
    );
    assert_eq!(uncommented, 0);
    let tables_uncommented = count(
        &db,
        "select count(*) from duckdb_tables() where comment is null or comment = ''",
    );
    assert_eq!(tables_uncommented, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_data_test_fails_the_build_and_keeps_the_previous_warehouse() {
    let server = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    pipeline::extract(
        client(&server.url(), 4),
        &plan(dir.path(), FROM, FROM, &Dataset::ALL),
    )
    .await
    .unwrap();
    server.shutdown().await;
    models::build(dir.path(), &queries(), &ModelSettings::default()).unwrap();
    let before = count(
        &warehouse(dir.path()),
        "select count(*) from chargeback_namespace",
    );

    // The shipped models plus one test that always finds an offending row.
    let broken = tempfile::tempdir().unwrap();
    copy_queries(broken.path());
    std::fs::write(
        broken.path().join("tests/chargeback_namespace__always_fails.sql"),
        "-- A test that cannot pass.\nselect namespace, total_cost_usd from chargeback_namespace order by all limit 3",
    )
    .unwrap();
    let error = models::build(dir.path(), broken.path(), &ModelSettings::default()).unwrap_err();
    match &error {
        ModelError::DataTests(failures) => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].name, "chargeback_namespace__always_fails");
            assert_eq!(failures[0].first_rows.len(), 3);
        }
        other => panic!("expected failed data tests, got {other}"),
    }
    assert!(error
        .to_string()
        .contains("chargeback_namespace__always_fails"));
    assert_eq!(
        count(
            &warehouse(dir.path()),
            "select count(*) from chargeback_namespace"
        ),
        before
    );
    assert!(dir.path().join("warehouse.failed.duckdb").exists());

    // A broken model names its file and leaves the warehouse alone too.
    std::fs::write(
        broken.path().join("marts/zz_broken.sql"),
        "-- Broken.\nselect no_such_column from chargeback_account",
    )
    .unwrap();
    std::fs::remove_file(
        broken
            .path()
            .join("tests/chargeback_namespace__always_fails.sql"),
    )
    .unwrap();
    let error = models::build(dir.path(), broken.path(), &ModelSettings::default()).unwrap_err();
    assert!(error.to_string().contains("zz_broken"), "{error}");
    assert_eq!(
        count(
            &warehouse(dir.path()),
            "select count(*) from chargeback_namespace"
        ),
        before
    );
}

/// The shipped models, copied into `to` (to be edited by a test).
fn copy_queries(to: &Path) {
    for folder in ["staging", "intermediate", "marts", "tests"] {
        std::fs::create_dir_all(to.join(folder)).unwrap();
        for entry in std::fs::read_dir(queries().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join(folder).join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Extracts `from..=to` (every dataset; snapshots on the day after `to`) from a simulator whose
/// "today" is `today`, with the last two days before it provisional.
async fn extract_as_of(dir: &Path, today: &str, from: &str, to: &str) {
    let server = simulator(SimConfig {
        today: Some(day(today)),
        restatement_days: 2,
        ..SimConfig::default()
    })
    .await;
    let report = pipeline::extract(
        client(&server.url(), 4),
        &plan(dir, from, to, &Dataset::ALL),
    )
    .await
    .unwrap();
    assert!(report.is_success());
    server.shutdown().await;
}

/// Every table of the warehouse at `path` (marts, intermediate tables, settings), each as its
/// sorted rows, doubles rounded to 1e-9 USD (DuckDB may add a sum's parts in another order).
fn tables_of(path: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let db = duckdb::Connection::open(path).unwrap();
    let strings = |sql: &str| -> Vec<String> {
        let mut statement = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let rows = statement
            .query_map([], |row| row.get::<_, Option<String>>(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.map(|r| r.unwrap().unwrap_or_else(|| "NULL".into()))
            .collect()
    };
    let mut tables = std::collections::BTreeMap::new();
    for table in strings("select table_name from duckdb_tables() where not temporary order by all")
    {
        let columns = strings(&format!(
            "select case when data_type = 'DOUBLE' then 'round(\"' || column_name || '\", 9)::varchar' \
             else '\"' || column_name || '\"::varchar' end \
             from duckdb_columns() where table_name = '{table}' order by column_index"
        ));
        let rows = strings(&format!(
            "select [{}]::varchar as r from \"{table}\" order by r",
            columns.join(", ")
        ));
        tables.insert(table, rows);
    }
    tables
}

fn assert_same_tables(label: &str, got: &Path, want: &Path) {
    let (got, want) = (tables_of(got), tables_of(want));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{label}: the tables differ"
    );
    for (table, rows) in &want {
        assert!(
            // forecast_accuracy scores complete months only (these lakes hold a few days), and
            // no budgets are configured here.
            !rows.is_empty()
                || ["audit_activity", "forecast_accuracy", "spotcost_budgets"]
                    .contains(&table.as_str()),
            "{label}: {table} is empty"
        );
        let other = &got[table];
        let first = other
            .iter()
            .zip(rows)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("{a} vs {b}"));
        assert!(
            other == rows,
            "{label}: {table} has {} rows against {}; first difference: {first:?}",
            other.len(),
            rows.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_build_equals_a_full_build_of_the_same_lake() {
    let dir = tempfile::tempdir().unwrap();
    // A two-day anomaly baseline and thresholds low enough that the simulator's daily variation
    // makes anomalies, so the days after each changed day matter.
    let low_thresholds = ModelSettings {
        anomaly_baseline_days: 2,
        anomaly_min_relative: 0.01,
        anomaly_min_usd: 0.01,
        ..ModelSettings::default()
    };
    let everything = ModelSettings {
        rebuild: Rebuild::Full,
        ..low_thresholds.clone()
    };
    // The first night: four days, the last two of them provisional.
    extract_as_of(dir.path(), "2026-11-03", FROM, TO).await;
    let first = models::build(dir.path(), &queries(), &low_thresholds).unwrap();
    assert_eq!(first.kind, BuildKind::Full);
    assert_eq!(first.days_recomputed, 4);
    assert_eq!(models::last_build(dir.path()), Some((BuildKind::Full, 4)));

    // Nothing changed: nothing to recompute, and the same warehouse.
    let before = dir.path().join("before.duckdb");
    std::fs::copy(models::warehouse_path(dir.path()), &before).unwrap();
    let unchanged = models::build(dir.path(), &queries(), &low_thresholds).unwrap();
    assert_eq!(
        (unchanged.kind, unchanged.days_recomputed),
        (BuildKind::Incremental, 0)
    );
    assert_same_tables("unchanged", &models::warehouse_path(dir.path()), &before);

    // The next nights: the provisional days are restated, a new day lands, and one day's
    // instance-cost export is gone.
    extract_as_of(dir.path(), "2026-11-05", "2026-11-01", "2026-11-03").await;
    std::fs::remove_dir_all(dir.path().join("lake/instance_costs/day=2026-10-31")).unwrap();
    let nightly = models::build(dir.path(), &queries(), &low_thresholds).unwrap();
    assert_eq!(
        nightly.kind,
        BuildKind::Incremental,
        "{:?}",
        nightly.full_reason
    );
    assert_eq!(nightly.days_recomputed, 4);
    assert_eq!(nightly.marts.len(), 10);
    assert_eq!(
        nightly.intermediate,
        [
            "int_account_cost_days",
            "int_audit_changes",
            "int_instance_cost_days",
            "int_ocean_cluster_days",
            "int_cost_forecasts"
        ]
    );
    let incremental = dir.path().join("incremental.duckdb");
    std::fs::copy(models::warehouse_path(dir.path()), &incremental).unwrap();
    // The restated days really changed the marts.
    let changed = count(
        &duckdb::Connection::open(&before).unwrap(),
        "select count(*) from chargeback_namespace where day = '2026-11-01'",
    );
    assert!(changed > 0);
    assert!(
        tables_of(&before)["chargeback_namespace"]
            != tables_of(&incremental)["chargeback_namespace"]
    );

    let full = models::build(dir.path(), &queries(), &everything).unwrap();
    assert_eq!(full.kind, BuildKind::Full);
    assert_eq!(full.days_recomputed, 5);
    assert_same_tables(
        "incremental against full",
        &incremental,
        &models::warehouse_path(dir.path()),
    );

    // Only an old day changes: 2026-10-31 is gone from the lake (every dataset, so the accounts
    // still reconcile). The next two days' anomalies lose their baseline, and an incremental
    // build recomputes them too.
    let before_old_day = tables_of(&models::warehouse_path(dir.path()));
    let mut removed = 0;
    for dataset in std::fs::read_dir(dir.path().join("lake")).unwrap() {
        let folder = dataset.unwrap().path().join("day=2026-10-31");
        if folder.exists() {
            std::fs::remove_dir_all(folder).unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 5, "{removed}");
    let old_day_night = models::build(dir.path(), &queries(), &low_thresholds).unwrap();
    assert_eq!(
        (old_day_night.kind, old_day_night.days_recomputed),
        (BuildKind::Incremental, 1)
    );
    let incremental = dir.path().join("incremental-old-day.duckdb");
    std::fs::copy(models::warehouse_path(dir.path()), &incremental).unwrap();
    assert!(before_old_day["cost_anomalies"] != tables_of(&incremental)["cost_anomalies"]);
    models::build(dir.path(), &queries(), &everything).unwrap();
    assert_same_tables(
        "incremental against full, after an old day changed",
        &incremental,
        &models::warehouse_path(dir.path()),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_model_or_setting_forces_a_full_build() {
    let dir = tempfile::tempdir().unwrap();
    extract_as_of(dir.path(), "2026-11-03", FROM, FROM).await;
    let kind = |queries: &Path, settings: &ModelSettings| {
        let built = models::build(dir.path(), queries, settings).unwrap();
        (built.kind, built.full_reason.unwrap_or_default())
    };
    let defaults = ModelSettings::default();
    assert_eq!(kind(&queries(), &defaults).0, BuildKind::Full);
    assert_eq!(kind(&queries(), &defaults).0, BuildKind::Incremental);

    // Another shared-cost policy: a full build, then incremental again under it.
    let even = settings(SharedCostPolicy::Even);
    let (built, reason) = kind(&queries(), &even);
    assert_eq!(built, BuildKind::Full);
    assert!(reason.contains("settings"), "{reason}");
    assert_eq!(kind(&queries(), &even).0, BuildKind::Incremental);

    // A mart's SQL changes (a comment is enough): full.
    let edited = tempfile::tempdir().unwrap();
    copy_queries(edited.path());
    let mart = edited.path().join("marts/savings_realized.sql");
    let sql = std::fs::read_to_string(&mart).unwrap();
    std::fs::write(&mart, format!("{sql}\n-- edited\n")).unwrap();
    assert_eq!(kind(edited.path(), &even).0, BuildKind::Full);
    assert_eq!(kind(edited.path(), &even).0, BuildKind::Incremental);

    // Asked for, or a warehouse changed behind spotcost's back, or no record of the last build.
    assert_eq!(
        kind(
            edited.path(),
            &ModelSettings {
                rebuild: Rebuild::Full,
                ..even.clone()
            }
        )
        .0,
        BuildKind::Full
    );
    duckdb::Connection::open(models::warehouse_path(dir.path()))
        .unwrap()
        .execute_batch("delete from savings_realized")
        .unwrap();
    let (built, reason) = kind(edited.path(), &even);
    assert_eq!(built, BuildKind::Full);
    assert!(reason.contains("changed since"), "{reason}");
    std::fs::remove_file(models::manifest_path(dir.path())).unwrap();
    assert_eq!(kind(edited.path(), &even).0, BuildKind::Full);
    assert!(
        count(
            &warehouse(dir.path()),
            "select count(*) from savings_realized"
        ) > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_capacity_raise_is_found_and_attributed() {
    // The demo's 30 days as of 2026-11-14; the simulator raises a group on 2026-11-11.
    let server = simulator(SimConfig {
        today: Some(day("2026-11-14")),
        ..SimConfig::default()
    })
    .await;
    let organisation = server.organisation().clone();
    let dir = tempfile::tempdir().unwrap();
    let report = pipeline::extract(
        client(&server.url(), 4),
        &plan(dir.path(), "2026-10-15", "2026-11-13", &Dataset::ALL),
    )
    .await
    .unwrap();
    assert!(report.is_success());
    server.shutdown().await;
    let raise_day = day("2026-11-11");
    let raise = organisation
        .capacity_changes(raise_day)
        .into_iter()
        .next()
        .expect("a capacity raise on 2026-11-11");
    assert!(raise.to_target > raise.from_target);

    models::build(dir.path(), &queries(), &ModelSettings::default()).unwrap();
    let db = warehouse(dir.path());
    let mut statement = db
        .prepare(
            "select day::varchar, cause, cause_user_name, cause_resource_id, \
             strftime(cause_event_at::timestamp, '%Y-%m-%dT%H:%M:%S'), actual_usd, delta_usd \
             from cost_anomalies where scope = 'account' and account_id = ? \
             and day between '2026-11-11' and '2026-11-12' order by day",
        )
        .unwrap();
    let rows: Vec<(String, String, String, String, String, f64, f64)> = statement
        .query_map([&raise.account_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    // The first full day at the raised capacity is an anomaly (the raise day itself, with 15
    // hours of it, may be one too), attributed to the raise, by the user who made it.
    assert!(rows.iter().any(|row| row.0 == "2026-11-12"), "{rows:?}");
    for (anomaly_day, cause, user, resource, at, actual, delta) in &rows {
        let when = if day(anomaly_day) == raise_day {
            "that day"
        } else {
            "the day before"
        };
        // The raise sets the maximum too, the group's being lower.
        assert_eq!(
            cause,
            &format!(
                "{when}, {} changed Elastigroup {} capacity target to {}, capacity maximum to {}",
                raise.user, raise.group_id, raise.to_target, raise.to_target
            )
        );
        assert_eq!(user, &raise.user);
        assert_eq!(resource, &raise.group_id);
        assert_eq!(at, &raise.at.format("%Y-%m-%dT%H:%M:%S").to_string());
        let truth = organisation
            .account_day(&raise.account_id, day(anomaly_day))
            .actual
            .usd();
        assert_usd(&format!("{anomaly_day} actual"), *actual, truth);
        assert!(*delta > 10.0, "{anomaly_day}: {delta}");
    }
}

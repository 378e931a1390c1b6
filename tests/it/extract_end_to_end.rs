//! End to end: the real client extracts every dataset for a week from the simulator; the lake is
//! complete, agrees with the simulator's ground truth to the cent, and a re-run changes nothing.

use crate::support::*;
use spotcost::extract::Dataset;
use spotcost::pipeline;
use spotcost::sim::SimConfig;
use std::collections::HashMap;

const FROM: &str = "2026-11-01";
const TO: &str = "2026-11-07";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_every_dataset_lands_reconciles_and_rewrites_identically() {
    let server = simulator(SimConfig::default()).await;
    let organisation = server.organisation().clone();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), FROM, TO, &Dataset::ALL);

    let report = pipeline::extract(client(&server.url(), 4), &plan)
        .await
        .unwrap();
    let failures: Vec<_> = report.failures().map(|f| f.error.clone()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(report.accounts.len(), organisation.accounts.len());

    let db = duckdb();
    for dataset in Dataset::ALL {
        let rows = count(
            &db,
            &format!(
                "select count(*) from {}",
                dataset_sql(dir.path(), dataset.name())
            ),
        );
        assert!(rows > 0, "{dataset} is empty");
    }
    let days: Vec<_> = day(FROM)
        .iter_days()
        .take_while(|d| *d <= day(TO))
        .collect();

    // Elastigroups and EMR scalers, per group and day: every lifecycle, and the spot lifecycle alone.
    let sql = |columns: &str, dataset: &str, rest: &str| {
        format!(
            "select {columns} from {} {rest}",
            dataset_sql(dir.path(), dataset)
        )
    };
    let lake_groups: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "group_id || '/' || usage_date::varchar, actual_cost_usd",
            "elastigroup_costs",
            "",
        ),
    )
    .into_iter()
    .collect();
    let lake_spot: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "group_id || '/' || usage_date::varchar, spot_actual_cost_usd",
            "elastigroup_costs",
            "where spot_actual_cost_usd is not null",
        ),
    )
    .into_iter()
    .collect();
    let mut checked_groups = 0;
    for account in &organisation.accounts {
        for &day in &days {
            for group in &account.groups {
                let key = format!("{}/{day}", group.id);
                assert_usd(
                    &key,
                    lake_groups[&key],
                    organisation.group_day(&group.id, day).actual.usd(),
                );
                if let Some(spot) = lake_spot.get(&key) {
                    assert_usd(
                        &format!("{key} spot"),
                        *spot,
                        organisation.group_spot_day(&group.id, day).actual.usd(),
                    );
                }
                checked_groups += 1;
            }
            for scaler in &account.emr_scalers {
                let key = format!("{}/{day}", scaler.id);
                assert_usd(
                    &key,
                    lake_groups[&key],
                    organisation.emr_scaler_day(&scaler.id, day).actual.usd(),
                );
            }
        }
    }
    assert_eq!(
        lake_groups.len(),
        checked_groups
            + organisation
                .accounts
                .iter()
                .map(|a| a.emr_scalers.len() * days.len())
                .sum::<usize>()
    );
    assert!(
        !lake_spot.is_empty(),
        "no spot breakdown landed for AWS Elastigroups"
    );

    // Managed instances.
    let lake_mi: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "managed_instance_id || '/' || usage_date::varchar, actual_cost_usd",
            "managed_instance_costs",
            "",
        ),
    )
    .into_iter()
    .collect();
    for account in &organisation.accounts {
        for instance in &account.managed_instances {
            for &day in &days {
                let key = format!("{}/{day}", instance.id);
                assert_usd(
                    &key,
                    lake_mi[&key],
                    organisation
                        .managed_instance_day(&instance.id, day)
                        .actual
                        .usd(),
                );
            }
        }
    }

    // Ocean: each cluster-day's rows add up to the cluster total, each namespace to its workloads
    // plus unused storage, and the headroom row to the headroom.
    let by_cluster: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "cluster_id || '/' || usage_date::varchar, sum(total_cost_usd)",
            "ocean_costs",
            "group by all",
        ),
    )
    .into_iter()
    .collect();
    let reported_total: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "cluster_id || '/' || usage_date::varchar, max(cluster_total_cost_usd)",
            "ocean_costs",
            "group by all",
        ),
    )
    .into_iter()
    .collect();
    let by_namespace: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "cluster_id || '/' || usage_date::varchar || '/' || namespace, sum(total_cost_usd)",
            "ocean_costs",
            "where namespace is not null group by all",
        ),
    )
    .into_iter()
    .collect();
    let headroom: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "cluster_id || '/' || usage_date::varchar, compute_cost_usd",
            "ocean_costs",
            "where row_kind = 'headroom'",
        ),
    )
    .into_iter()
    .collect();
    let team_labels: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql("cluster_id || '/' || namespace || '/' || coalesce(namespace_labels['team'], '-'), count(*)", "ocean_costs", "where namespace is not null group by all"),
    )
    .into_iter()
    .collect();
    let mut clusters_seen = 0;
    for account in &organisation.accounts {
        for cluster in &account.clusters {
            clusters_seen += 1;
            for &day in &days {
                let truth = organisation.cluster_day(&cluster.id, day);
                let key = format!("{}/{day}", cluster.id);
                assert_usd(&key, by_cluster[&key], truth.total.usd());
                assert_usd(
                    &format!("{key} reported"),
                    reported_total[&key],
                    truth.total.usd(),
                );
                assert_usd(
                    &format!("{key} headroom"),
                    headroom[&key],
                    truth.headroom.usd(),
                );
                for namespace in &truth.namespaces {
                    let want: i64 = namespace.unused_storage.micros()
                        + namespace
                            .workloads
                            .iter()
                            .map(|w| (w.compute + w.storage + w.networking).micros())
                            .sum::<i64>();
                    let ns_key = format!("{key}/{}", namespace.name);
                    assert_usd(&ns_key, by_namespace[&ns_key], want as f64 / 1e6);
                    let team = namespace.labels.get("team").map_or("-", String::as_str);
                    assert!(
                        team_labels
                            .contains_key(&format!("{}/{}/{team}", cluster.id, namespace.name)),
                        "{ns_key}: team label {team} not carried"
                    );
                }
            }
        }
    }
    assert!(clusters_seen >= 2);

    // Account costs add up from their resources, and so do the instance rows of the CSV export.
    let accounts: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "account_id || '/' || usage_date::varchar, actual_cost_usd",
            "account_costs",
            "",
        ),
    )
    .into_iter()
    .collect();
    let exported: HashMap<String, f64> = keyed_numbers(
        &db,
        &sql(
            "account_id || '/' || usage_date::varchar, sum(actual_cost_usd)",
            "instance_costs",
            "group by all",
        ),
    )
    .into_iter()
    .collect();
    for account in &organisation.accounts {
        for &day in &days {
            let key = format!("{}/{day}", account.id);
            let truth = organisation.account_day(&account.id, day).actual.usd();
            assert_usd(&key, accounts[&key], truth);
            assert_usd(
                &format!("{key} export"),
                exported.get(&key).copied().unwrap_or(0.0),
                truth,
            );
        }
    }

    // Audit events: every event of every day, failed calls included.
    for &day in &days {
        let landed = count(
            &db,
            &format!(
                "select count(*) from {} where event_date = '{day}'",
                dataset_sql(dir.path(), "audit_events")
            ),
        );
        assert_eq!(
            landed as usize,
            organisation.audit_events(day).len(),
            "audit events of {day}"
        );
    }

    // Snapshots: one row per listed resource.
    let groups_listed = count(
        &db,
        &format!(
            "select count(*) from {}",
            dataset_sql(dir.path(), "elastigroups")
        ),
    );
    let groups_known: usize = organisation
        .accounts
        .iter()
        .map(|a| a.groups.len() + a.emr_scalers.len())
        .sum();
    assert_eq!(groups_listed as usize, groups_known);
    let clusters_listed = count(
        &db,
        &format!(
            "select count(*) from {}",
            dataset_sql(dir.path(), "ocean_clusters")
        ),
    );
    assert_eq!(clusters_listed as usize, clusters_seen);
    let clouds = count(
        &db,
        &format!(
            "select count(distinct cloud) from {}",
            dataset_sql(dir.path(), "ocean_clusters")
        ),
    );
    assert!(clouds >= 2, "Ocean clusters of more than one cloud");
    // Every virtual node group, tied to its own cluster.
    let mut node_groups_known: Vec<String> = organisation
        .accounts
        .iter()
        .flat_map(|a| &a.clusters)
        .flat_map(|c| {
            c.virtual_node_groups
                .iter()
                .map(move |g| format!("{} {} {}", c.id, g.id, g.name))
        })
        .collect();
    node_groups_known.sort();
    let node_groups_listed: Vec<String> = keyed_numbers(
        &db,
        &format!(
            "select cluster_id || ' ' || node_group_id || ' ' || node_group_name, 1.0 from {} order by 1",
            dataset_sql(dir.path(), "ocean_virtual_node_groups")
        ),
    )
    .into_iter()
    .map(|(key, _)| key)
    .collect();
    assert_eq!(node_groups_listed, node_groups_known);

    // A second run of the same range leaves the lake byte-for-byte (so row-for-row) the same.
    let before = snapshot_tree(dir.path());
    let again = pipeline::extract(client(&server.url(), 4), &plan)
        .await
        .unwrap();
    assert!(again.is_success());
    assert_eq!(again.rows(), report.rows());
    let after = snapshot_tree(dir.path());
    assert_eq!(
        before.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        after.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(before == after, "a re-run changed the lake");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_can_be_re_extracted_without_touching_the_others() {
    let server = simulator(SimConfig::default()).await;
    let organisation = server.organisation().clone();
    let dir = tempfile::tempdir().unwrap();
    let all = plan(dir.path(), FROM, FROM, &[Dataset::AccountCosts]);
    pipeline::extract(client(&server.url(), 4), &all)
        .await
        .unwrap();
    let first = organisation.accounts[0].id.clone();
    let mut only_first = all.clone();
    only_first.accounts = Some(vec![first.clone()]);
    let report = pipeline::extract(client(&server.url(), 4), &only_first)
        .await
        .unwrap();
    assert_eq!(report.items.len(), 1);
    let db = duckdb();
    let landed = count(
        &db,
        &format!(
            "select count(*) from {}",
            dataset_sql(dir.path(), "account_costs")
        ),
    );
    assert_eq!(landed as usize, organisation.accounts.len());

    only_first.accounts = Some(vec!["act-nothere".into()]);
    let error = pipeline::extract(client(&server.url(), 4), &only_first)
        .await
        .unwrap_err();
    assert!(error.is_usage());
    assert!(error.to_string().contains("act-nothere"), "{error}");
    server.shutdown().await;
}

/// The lake is readable as is by Hive-style engines (Spark, Trino, Athena): `<dataset>/day=<date>/`
/// folders, no column named like the partition key, and only plain Parquet types (no unsigned
/// integers, nanosecond timestamps, dictionaries or large strings, which some of them reject).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_is_plain_hive_partitioned_parquet() {
    use arrow::datatypes::{DataType, TimeUnit};
    let server = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), FROM, "2026-11-02", &Dataset::ALL);
    let report = pipeline::extract(client(&server.url(), 4), &plan)
        .await
        .unwrap();
    assert!(report.failures().next().is_none());
    let lake = dir.path().join("lake");
    let files = snapshot_tree(&lake);
    assert!(files.len() > Dataset::ALL.len());
    for (path, bytes) in &files {
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts.len(), 3, "{path}: <dataset>/day=<date>/<file>");
        assert!(Dataset::from_name(parts[0]).is_some(), "{path}");
        let date = parts[1]
            .strip_prefix("day=")
            .unwrap_or_else(|| panic!("{path}"));
        assert!(
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
            "{path}"
        );
        assert!(
            parts[2].starts_with("part-") && parts[2].ends_with(".parquet"),
            "{path}: a visible data file (engines skip names starting with . or _)"
        );
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes.clone()),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        for field in reader.schema().fields() {
            assert_ne!(
                field.name(),
                "day",
                "{path}: a column named like the partition key"
            );
            let plain = match field.data_type() {
                DataType::Utf8 | DataType::Float64 | DataType::Int64 | DataType::Date32 => true,
                DataType::Timestamp(TimeUnit::Microsecond, Some(zone)) => zone.as_ref() == "UTC",
                DataType::Map(entries, _) => match entries.data_type() {
                    DataType::Struct(kv) => kv.iter().all(|f| f.data_type() == &DataType::Utf8),
                    _ => false,
                },
                _ => false,
            };
            assert!(
                plain,
                "{path}: column {} is {:?}",
                field.name(),
                field.data_type()
            );
        }
    }
}

//! The client against faults: throttling, server errors, refused tokens, dropped connections and
//! malformed bodies, each scripted on the simulator and counted there.

use crate::support::*;
use spotcost::extract::Dataset;
use spotcost::pipeline;
use spotcost::sim::{FaultResponse, ScriptedFault, SimConfig};
use spotcost::spot::SpotError;
use std::time::{Duration, Instant};

fn scripted(path_contains: &str, times: u32, response: FaultResponse) -> SimConfig {
    SimConfig {
        scripted_faults: vec![ScriptedFault {
            method: None,
            path_contains: path_contains.into(),
            times,
            response,
        }],
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_its_reset_then_succeeds() {
    let server = simulator(scripted(
        "/setup/account",
        1,
        FaultResponse::RateLimited { reset_secs: 1 },
    ))
    .await;
    let started = Instant::now();
    let accounts = client(&server.url(), 4).accounts().await.unwrap();
    assert_eq!(accounts.len(), server.organisation().accounts.len());
    assert_eq!(server.request_count("/setup/account"), 2);
    // The retry honoured X-RateLimit-Reset rather than the 10 ms backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_given_up_with_a_clear_error() {
    let body = r#"{"request":{"id":"req-500"},"response":{"status":{"code":500,"message":"Internal Server Error"},"errors":[{"code":"INTERNAL","message":"boom"}]}}"#;
    let server = simulator(scripted(
        "/setup/account",
        100,
        FaultResponse::Status {
            status: 503,
            body: body.into(),
        },
    ))
    .await;
    let error = client(&server.url(), 3).accounts().await.unwrap_err();
    assert_eq!(server.request_count("/setup/account"), 3);
    match &error {
        SpotError::GaveUp { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("expected GaveUp, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("GET /setup/account")
            && message.contains("503")
            && message.contains("boom"),
        "{message}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_that_clear_are_absorbed() {
    let server = simulator(scripted(
        "/setup/account",
        2,
        FaultResponse::Status {
            status: 502,
            body: "Bad Gateway".into(),
        },
    ))
    .await;
    assert!(client(&server.url(), 4).accounts().await.is_ok());
    assert_eq!(server.request_count("/setup/account"), 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_is_not_retried_and_names_endpoint_and_account() {
    let body = r#"{"response":{"status":{"code":401,"message":"Unauthorized"}}}"#;
    let server = simulator(scripted(
        "/aws/potentialSavings",
        100,
        FaultResponse::Status {
            status: 401,
            body: body.into(),
        },
    ))
    .await;
    let account = server.organisation().accounts[0].id.clone();
    let error = client(&server.url(), 5)
        .potential_savings(&account, spotcost::spot::types::Cloud::Aws)
        .await
        .unwrap_err();
    assert_eq!(server.request_count("/aws/potentialSavings"), 1);
    assert!(
        matches!(error, SpotError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("/aws/potentialSavings") && message.contains(&account),
        "{message}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_by_the_simulator_without_retries() {
    let server = simulator(SimConfig::default()).await;
    let mut config = spotcost::spot::ClientConfig::new(
        server.url(),
        spotcost::spot::Token::new("not-the-token"),
    );
    config.backoff_base = Duration::from_millis(10);
    let client = spotcost::spot::SpotClient::new(config).unwrap();
    let error = client.accounts().await.unwrap_err();
    assert!(
        matches!(error, SpotError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(server.request_count("/setup/account"), 1);
    assert!(!error.to_string().contains("not-the-token"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_cut_off_bodies_are_retried() {
    let mut config = scripted("/setup/account", 1, FaultResponse::Drop);
    config.scripted_faults.push(ScriptedFault {
        method: None,
        path_contains: "/setup/account".into(),
        times: 1,
        response: FaultResponse::Body(r#"{"response":{"items":[{"accountId":"act-"#.into()),
    });
    let server = simulator(config).await;
    let accounts = client(&server.url(), 4).accounts().await.unwrap();
    assert!(!accounts.is_empty());
    assert_eq!(server.request_count("/setup/account"), 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_names_dataset_account_and_json_path_while_the_rest_lands() {
    let body = r#"{"request":{"id":"req-bad"},"response":{"status":{"code":200},"items":[{"resourceType":"EC2Instance","potentialSavings":{"monthly":12}}]}}"#;
    let server = simulator(scripted(
        "/aws/potentialSavings",
        1000,
        FaultResponse::Body(body.into()),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), "2026-11-01", "2026-11-01", &Dataset::ALL);
    let report = pipeline::extract(client(&server.url(), 3), &plan)
        .await
        .unwrap();

    let failures: Vec<_> = report.failures().collect();
    let aws_accounts = server
        .organisation()
        .accounts
        .iter()
        .filter(|a| a.cloud == spotcost::sim::org::Cloud::Aws)
        .count();
    assert_eq!(failures.len(), aws_accounts, "{failures:#?}");
    for failure in &failures {
        assert_eq!(failure.dataset, Dataset::PotentialSavings);
        let message = failure.error.as_deref().unwrap();
        let account = failure.account.as_deref().unwrap();
        assert!(message.contains("potential_savings"), "{message}");
        assert!(message.contains(account), "{message}");
        assert!(
            message.contains("response.items[0].potentialSavings"),
            "{message}"
        );
        assert!(message.contains("req-bad"), "{message}");
    }
    // A shape error is final: one request per AWS account, no retries.
    assert_eq!(server.request_count("/aws/potentialSavings"), aws_accounts);
    for item in report
        .items
        .iter()
        .filter(|i| i.dataset != Dataset::PotentialSavings)
    {
        assert!(item.error.is_none(), "{item:?}");
    }
    let db = duckdb();
    assert!(
        count(
            &db,
            &format!(
                "select count(*) from {}",
                dataset_sql(dir.path(), "ocean_costs")
            )
        ) > 0
    );
    // Nothing landed for the failed items, and no temporary file was left anywhere.
    for failure in &failures {
        let path = dir.path().join(format!(
            "lake/potential_savings/day={}/part-{}.parquet",
            plan.snapshot_day,
            failure.account.as_deref().unwrap()
        ));
        assert!(!path.exists(), "{}", path.display());
    }
    assert!(snapshot_tree(dir.path())
        .iter()
        .all(|(path, _)| !path.contains(".tmp")));
    server.shutdown().await;
}

//! The Spot API simulator: a deterministic synthetic Spot organisation served over HTTP on a local port, speaking the wire format of ../shared/spot-api.md (envelope, errors, rate limits, parsing hazards) so the real client runs against it unmocked; same seed, same numbers.
//!
//! Code map:
//! - [`org`]: the organisation's structure and its ground truth (costs as a pure function of
//!   seed, resource id and day, in integer micro-USD);
//! - `routes`: the HTTP pipeline (scripted faults → auth → rate limit → random faults → route) and
//!   the JSON shapes of the non-Ocean routes; `ocean`: Ocean cluster and virtual node group
//!   listings, aggregatedCosts and right-sizing; `export`: the streamed instance-costs CSV;
//! - `limits`: the rate limiter, scripted faults and random fault choice; [`rng`]: SplitMix64 and FNV-1a;
//! - `hostile`: the hostile-names mode ([`SimConfig::hostile_names`]).
//!
//! "Today" is the wall clock's UTC day unless set ([`SimConfig::today`], [`SimServer::set_today`]).
//! The "snapshot" routes (right-sizing, potential savings) report it, and restatement counts
//! from it; the envelope's `request.timestamp` is the only other use of the wall clock.
//!
//! Restatement ([`SimConfig::restatement_days`] = N, default 0 = off): like Spot, whose late
//! usage records keep arriving for a few days, a usage day D with 1 ≤ today − D ≤ N is
//! provisional: each instance's running time that day is reported at 90 % (rounded down to a
//! multiple of 5 milli-hours) and every cost follows from it, so a provisional day costs less
//! than the same day once final. Older days, today and later days are final. It is applied
//! where instance-days are generated, so every route and ground-truth figure agrees; storage,
//! networking, snapshots and audit events are not restated.
//!
//! A scheduled configuration change ([`Organisation::capacity_changes`]): every 16 days one
//! Elastigroup's capacity target is raised eightfold at 09:00 UTC and lowered back two days later;
//! both are audit events, and the added instances (in the group's spot percentage) run between them, so group, account and
//! instance-cost figures and the group's snapshot capacity follow the change.
//!
//! Invariant: nothing here makes an outbound call, and no figure depends on the wall clock
//! except through "today" when it is not set.

mod catalog;
mod export;
mod generate;
mod hostile;
mod limits;
mod ocean;
pub mod org;
pub mod rng;
mod routes;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use export::INSTANCE_COSTS_EXPORT_HEADER;
pub use hostile::{HOSTILE_ACCOUNT_NAMES, HOSTILE_AUDIT_USERS, HOSTILE_PAYLOADS};
pub use limits::{RANDOM_FAULT_KINDS, UNLIMITED_REPORTED_LIMIT};
pub use org::{
    storage_split, Account, AuditEvent, CapacityChange, Cloud, Cluster, ClusterDay, Container,
    CostTotals, EmrScaler, Group, InstanceDay, Lifecycle, ManagedInstance, Money, Namespace,
    NamespaceDay, Organisation, PotentialSaving, ResourceKind, ResourceLocation,
    RightsizingContainer, RightsizingWorkload, SlotPlan, StorageSplit, Tag, UnmanagedResource,
    VirtualNodeGroup, Workload, WorkloadDay,
};

/// The bearer token the simulator accepts unless configured otherwise.
pub const DEFAULT_TOKEN: &str = "spotcost-demo-token";

/// How big the synthetic organisation is. Small: 4 accounts (2 AWS, 1 GCP, 1 Azure), about
/// 10 Elastigroups and 5 clusters. Medium: 10 accounts, about 10× the resources. Large:
/// 20 accounts, about 1000 Elastigroups and 50 clusters of up to 40 namespaces × 10 workloads.
/// Xlarge (the extraction benchmark's organisation): 20 accounts, about 2000 Elastigroups and
/// 100 clusters of 40 namespaces each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scale {
    Small,
    Medium,
    Large,
    Xlarge,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scale {0:?}: expected small, medium, large or xlarge")]
pub struct UnknownScaleError(pub String);

impl FromStr for Scale {
    type Err = UnknownScaleError;

    fn from_str(text: &str) -> Result<Scale, UnknownScaleError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "small" => Ok(Scale::Small),
            "medium" => Ok(Scale::Medium),
            "large" => Ok(Scale::Large),
            "xlarge" => Ok(Scale::Xlarge),
            _ => Err(UnknownScaleError(text.to_string())),
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Scale::Small => "small",
            Scale::Medium => "medium",
            Scale::Large => "large",
            Scale::Xlarge => "xlarge",
        })
    }
}

/// A canned response for the first `times` requests matching `method` (None = any) and
/// `path_contains` (a substring of the path, without the query). Scripted faults are checked
/// first, in order, before auth and rate limits, and do not consume the rate-limit budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedFault {
    pub method: Option<String>,
    pub path_contains: String,
    pub times: u32,
    pub response: FaultResponse,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultResponse {
    /// Any status with this raw body (served as `application/json`).
    Status { status: u16, body: String },
    /// A real-shaped 429: the `data: "Rate limit exceeded"` body and `X-RateLimit-Reset: reset_secs`.
    RateLimited { reset_secs: u64 },
    /// HTTP 200 with this body (for malformed or unexpected shapes).
    Body(String),
    /// Headers, then the connection is aborted without a body.
    Drop,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub scale: Scale,
    /// The bearer token the simulator accepts.
    pub token: String,
    /// Added to every response.
    pub latency_ms: u64,
    /// 0.0..=1.0: the probability that a request gets a random transient fault.
    pub fault_rate: f64,
    /// Requests per 60 s per (HTTP method × route template); 0 = unlimited.
    pub rate_limit: u32,
    pub scripted_faults: Vec<ScriptedFault>,
    /// The simulator's "today"; None = the wall clock's UTC day.
    pub today: Option<NaiveDate>,
    /// Days before today whose costs are provisional (reported at 90 %); 0 = no restatement.
    pub restatement_days: u32,
    /// Names (accounts, Elastigroups, clusters, namespaces, workloads, labels, audit users…) and
    /// a few account, Elastigroup and cluster ids carry hostile payloads ([`HOSTILE_PAYLOADS`]):
    /// path traversal, markup, spreadsheet formulas, quotes, newlines, NUL, bidi overrides.
    pub hostile_names: bool,
    /// Serve this file as the body of every instance-cost export (once the request is validated)
    /// instead of the generated rows: an export recorded from Spot replayed as is, or the
    /// benchmark's large one. None = the generated organisation's rows.
    pub instance_costs_export_file: Option<std::path::PathBuf>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 42,
            scale: Scale::Small,
            token: DEFAULT_TOKEN.to_string(),
            latency_ms: 0,
            fault_rate: 0.0,
            rate_limit: 600,
            scripted_faults: Vec::new(),
            today: None,
            restatement_days: 0,
            hostile_names: false,
            instance_costs_export_file: None,
        }
    }
}

/// A running simulator. Dropping it asks the server to stop; [`SimServer::shutdown`] also waits.
/// `spotcost simulate` serves until SIGINT or SIGTERM with [`SimServer::run_until`].
pub struct SimServer {
    local_address: SocketAddr,
    organisation: Arc<Organisation>,
    state: Arc<routes::SimState>,
    shutdown_sender: Option<oneshot::Sender<()>>,
    server_task: Option<JoinHandle<std::io::Result<()>>>,
}

/// How long a shutdown waits for in-flight responses before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl SimServer {
    /// Generates the organisation, binds `listen` (port 0 picks a free port) and spawns the
    /// server on the current Tokio runtime.
    pub async fn start(listen: SocketAddr, config: SimConfig) -> std::io::Result<SimServer> {
        if !(0.0..=1.0).contains(&config.fault_rate) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "fault_rate must be within 0.0..=1.0, got {}",
                    config.fault_rate
                ),
            ));
        }
        let organisation = Arc::new(Organisation::generate_with(
            config.seed,
            config.scale,
            config.hostile_names,
        ));
        if let Some(today) = config.today {
            organisation.set_today(today);
        }
        organisation.set_restatement_days(config.restatement_days);
        let listener = TcpListener::bind(listen).await?;
        let local_address = listener.local_addr()?;
        let state = Arc::new(routes::SimState::new(Arc::clone(&organisation), &config));
        let app = routes::router(Arc::clone(&state));
        let (shutdown_sender, shutdown_receiver) = oneshot::channel::<()>();
        let server_task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means the SimServer is gone: stop as well.
                    let _ = shutdown_receiver.await;
                })
                .await
        });
        tracing::info!(address = %local_address, seed = config.seed, scale = %config.scale, today = %organisation.today(), restatement_days = config.restatement_days, "Spot API simulator listening");
        Ok(SimServer {
            local_address,
            organisation,
            state,
            shutdown_sender: Some(shutdown_sender),
            server_task: Some(server_task),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (a wildcard bind is reported as loopback).
    pub fn url(&self) -> String {
        let address = match self.local_address.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.local_address.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.local_address.port())
            }
            _ => self.local_address,
        };
        format!("http://{address}")
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_address
    }

    /// The ground truth the simulator serves.
    pub fn organisation(&self) -> &Organisation {
        &self.organisation
    }

    /// The ground truth, shareable beyond the server's lifetime.
    pub fn shared_organisation(&self) -> Arc<Organisation> {
        Arc::clone(&self.organisation)
    }

    /// The simulator's "today": as set, else the wall clock's UTC day.
    pub fn today(&self) -> NaiveDate {
        self.organisation.today()
    }

    /// Fixes the simulator's "today" for every later request and ground-truth call.
    pub fn set_today(&self, today: NaiveDate) {
        self.organisation.set_today(today);
    }

    /// How many requests whose path contains `path_contains` the simulator has received,
    /// including rejected and faulted ones. `""` counts every request.
    pub fn request_count(&self, path_contains: &str) -> usize {
        self.state.request_count(path_contains)
    }

    /// Requests answered (not rate-limited) per route, keyed `METHOD /route/{template}` as the
    /// rate limit counts them: what the extraction benchmark's bound is computed from.
    pub fn accepted_requests_per_route(&self) -> std::collections::BTreeMap<String, u64> {
        self.state.accepted_per_route()
    }

    /// The time spent answering requests, summed over them (latency included): divided by a wall
    /// time, the mean number of requests the simulator had in flight.
    pub fn answering_time(&self) -> std::time::Duration {
        self.state.answering_time()
    }

    /// The random transient faults injected so far ([`SimConfig::fault_rate`]), by kind:
    /// `rate_limited`, `server_error_envelope`, `server_error_plain_text`, `slow`,
    /// `truncated_body`, `malformed_body`, `dropped_connection`; a 5xx kind is also counted per
    /// status (`server_error_envelope 503`). Scripted faults are not counted here.
    pub fn random_faults_injected(&self) -> std::collections::BTreeMap<String, u64> {
        self.state.random_faults()
    }

    /// How many rate-limit blocks the simulator has started: 429s answered by the sliding-window
    /// limit to a route that was not blocked yet (random-fault 429s are not blocks).
    pub fn rate_limit_blocks(&self) -> u64 {
        self.state.rate_limit_counts().0
    }

    /// How many requests arrived at a route while the rate limit blocked it, after the 429 that
    /// started the block and before its reset: 0 for a client that honours `X-RateLimit-Reset`
    /// and never has more requests in flight on a route than its budget has left.
    pub fn requests_while_blocked(&self) -> u64 {
        self.state.rate_limit_counts().1
    }

    /// Stops accepting connections, lets in-flight responses finish (at most 5 s), and waits.
    pub async fn shutdown(mut self) {
        if let Some(sender) = self.shutdown_sender.take() {
            let _ = sender.send(());
        }
        if let Some(mut task) = self.server_task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Serves until the server fails (it does not stop on its own otherwise).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.server_task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Serves until `stop` completes (`spotcost simulate`: SIGINT or SIGTERM) or the server
    /// fails, then shuts down gracefully.
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Some(mut task) = self.server_task.take() else {
            return Ok(());
        };
        tokio::select! {
            () = stop => {
                if let Some(sender) = self.shutdown_sender.take() {
                    let _ = sender.send(());
                }
                if tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err() {
                    task.abort();
                }
                Ok(())
            }
            finished = &mut task => finished.map_err(std::io::Error::other)?,
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(sender) = self.shutdown_sender.take() {
            let _ = sender.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    async fn start_simulator(config: SimConfig) -> SimServer {
        SimServer::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap()
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    async fn json_of(response: reqwest::Response) -> Value {
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
        http.post(url)
            .bearer_auth(DEFAULT_TOKEN)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
    }

    fn header_number(response: &reqwest::Response, name: &str) -> u64 {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn scale_parses_and_displays() {
        assert_eq!("Medium".parse::<Scale>(), Ok(Scale::Medium));
        assert_eq!(Scale::Large.to_string(), "large");
        assert!("huge".parse::<Scale>().is_err());
    }

    #[tokio::test]
    async fn requests_without_the_token_get_a_bare_401_envelope() {
        let simulator = start_simulator(SimConfig::default()).await;
        let response = client()
            .get(format!("{}/setup/account", simulator.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert!(response.headers().contains_key("x-ratelimit-limit"));
        let body: Value = json_of(response).await;
        assert_eq!(
            body["response"]["status"],
            json!({ "code": 401, "message": "Unauthorized" })
        );
        assert!(body["response"].get("errors").is_none());
        let wrong = client()
            .get(format!("{}/setup/account", simulator.url()))
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
        assert_eq!(simulator.request_count("/setup/account"), 2);
        simulator.shutdown().await;
    }

    #[tokio::test]
    async fn accounts_come_in_the_spot_envelope() {
        let simulator = start_simulator(SimConfig::default()).await;
        let response = client()
            .get(format!("{}/setup/account", simulator.url()))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(header_number(&response, "x-ratelimit-limit"), 600);
        assert_eq!(header_number(&response, "x-ratelimit-remaining"), 599);
        assert_eq!(header_number(&response, "x-ratelimit-reset"), 0);
        let body: Value = json_of(response).await;
        assert_eq!(body["request"]["url"], "/setup/account");
        assert_eq!(body["request"]["method"], "GET");
        assert_eq!(body["request"]["id"].as_str().unwrap().len(), 36);
        assert_eq!(
            body["response"]["status"],
            json!({ "code": 200, "message": "OK" })
        );
        assert_eq!(body["response"]["kind"], "spotinst:setup:account");
        let items = body["response"]["items"].as_array().unwrap();
        assert_eq!(body["response"]["count"], json!(items.len()));
        assert_eq!(items.len(), simulator.organisation().accounts.len());
        assert!(items.iter().any(|item| item["organizationId"].is_number()));
        assert!(items.iter().any(|item| item["organizationId"].is_string()));
        let providers: Vec<&str> = items
            .iter()
            .map(|item| item["cloudProvider"].as_str().unwrap())
            .collect();
        assert_eq!(providers, vec!["AWS", "AWS", "GCP", "AZURE"]);
        simulator.shutdown().await;
    }

    #[tokio::test]
    async fn the_rate_limit_answers_429_with_headers_per_route_template() {
        let simulator = start_simulator(SimConfig {
            rate_limit: 3,
            ..SimConfig::default()
        })
        .await;
        let organisation = simulator.shared_organisation();
        let account = &organisation.accounts[0];
        let groups = &account.groups;
        let http = client();
        let mut statuses = Vec::new();
        for group in groups.iter().cycle().take(5) {
            let url = format!(
                "{}/aws/ec2/group/{}/costs?accountId={}&fromDate=2024-07-01&toDate=2024-07-02",
                simulator.url(),
                group.id,
                account.id
            );
            let response = http
                .get(url)
                .bearer_auth(DEFAULT_TOKEN)
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
            if response.status().as_u16() == 429 {
                assert_eq!(header_number(&response, "x-ratelimit-limit"), 3);
                assert_eq!(header_number(&response, "x-ratelimit-remaining"), 0);
                assert!(header_number(&response, "x-ratelimit-reset") >= 1);
                let body: Value = json_of(response).await;
                assert_eq!(
                    body["response"]["status"],
                    json!({ "code": 429, "message": "Too Many Requests" })
                );
                assert_eq!(body["response"]["data"], "Rate limit exceeded");
            }
        }
        // Different group ids share the route template's budget.
        assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
        // Another route still has its own budget.
        let other = http
            .get(format!(
                "{}/aws/ec2/group?accountId={}",
                simulator.url(),
                account.id
            ))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(other.status().as_u16(), 200);
        simulator.shutdown().await;
    }

    #[tokio::test]
    async fn scripted_faults_apply_then_the_route_recovers_and_requests_are_counted() {
        let config = SimConfig {
            scripted_faults: vec![
                ScriptedFault {
                    method: Some("GET".to_string()),
                    path_contains: "/aws/costs".to_string(),
                    times: 2,
                    response: FaultResponse::Status {
                        status: 503,
                        body: "upstream unavailable".to_string(),
                    },
                },
                ScriptedFault {
                    method: None,
                    path_contains: "/aws/ec2/group".to_string(),
                    times: 1,
                    response: FaultResponse::Drop,
                },
                ScriptedFault {
                    method: None,
                    path_contains: "/setup/account".to_string(),
                    times: 1,
                    response: FaultResponse::RateLimited { reset_secs: 7 },
                },
            ],
            ..SimConfig::default()
        };
        let simulator = start_simulator(config).await;
        let http = client();
        let account_costs = format!(
            "{}/aws/costs?fromDate=2024-07-01&toDate=2024-07-03&aggregationPeriod=daily",
            simulator.url()
        );
        for _ in 0..2 {
            let response = http
                .get(&account_costs)
                .bearer_auth(DEFAULT_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(response.text().await.unwrap(), "upstream unavailable");
        }
        let response = http
            .get(&account_costs)
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = json_of(response).await;
        let items = body["response"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["timestamp"], "2024-07-01T00:00:00.000Z");
        let organisation = simulator.organisation();
        let default_account = organisation.default_account().unwrap();
        let expected = organisation.account_day(
            &default_account.id,
            NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
        );
        assert_eq!(
            items[0]["spot"]["actualCosts"].as_f64().unwrap(),
            expected.actual.usd()
        );
        assert_eq!(simulator.request_count("/aws/costs"), 3);

        let dropped = http
            .get(format!("{}/aws/ec2/group", simulator.url()))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await;
        if let Ok(response) = dropped {
            assert!(
                response.bytes().await.is_err(),
                "the body of a dropped connection must fail"
            );
        }
        let limited = http
            .get(format!("{}/setup/account", simulator.url()))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status().as_u16(), 429);
        assert_eq!(header_number(&limited, "x-ratelimit-reset"), 7);
        assert_eq!(simulator.request_count("/aws/ec2/group"), 1);
        assert_eq!(simulator.request_count(""), 5);
        simulator.shutdown().await;
    }

    #[tokio::test]
    async fn cost_routes_reconcile_with_the_ground_truth_and_exercise_the_hazards() {
        let simulator = start_simulator(SimConfig::default()).await;
        let organisation = simulator.shared_organisation();
        let http = client();
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{}{path}", simulator.url());
            async move {
                let response = http
                    .get(url)
                    .bearer_auth(DEFAULT_TOKEN)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, json_of(response).await)
            }
        };
        let july = |day| NaiveDate::from_ymd_opt(2024, 7, day).unwrap();
        let first_aws = &organisation.accounts[0];
        let second_aws = &organisation.accounts[1];
        let group = &second_aws.groups[0];

        // Spot-only costs, as strings for the second AWS account, summed over [from, to).
        let (status, body) = get(format!(
            "/aws/ec2/group/{}/costs?accountId={}&fromDate=2024-07-01&toDate=2024-07-03",
            group.id, second_aws.id
        ))
        .await;
        assert_eq!(status, 200);
        let expected = organisation.group_spot_day(&group.id, july(1))
            + organisation.group_spot_day(&group.id, july(2));
        let actual_text = body["response"]["items"][0]["costs"]["actual"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(actual_text.parse::<f64>().unwrap(), expected.actual.usd());

        // The same group under another account does not exist.
        let (status, body) = get(format!(
            "/aws/ec2/group/{}/costs?accountId={}&fromDate=2024-07-01&toDate=2024-07-02",
            group.id, first_aws.id
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["response"]["errors"][0]["code"], "GROUP_DOESNT_EXIST");

        // Detailed costs: one item per instance per day, all lifecycles.
        let (_, body) = get(format!(
            "/aws/ec2/group/{}/costs/detailed?accountId={}&fromDate=1719792000000&toDate=1719878400000&aggregationPeriod=daily",
            group.id, second_aws.id
        ))
        .await;
        let items = body["response"]["items"].as_array().unwrap();
        let instances = organisation.group_instances(&group.id, july(1));
        assert_eq!(items.len(), instances.len());
        let total: f64 = items
            .iter()
            .map(|item| item["costs"]["actual"].as_f64().unwrap())
            .sum();
        assert!((total - organisation.group_day(&group.id, july(1)).actual.usd()).abs() < 1e-9);
        assert!(items
            .iter()
            .all(|item| item["spotInstanceRequestId"].is_null()
                || item["spotInstanceRequestId"].is_string()));

        // EMR: four-decimal strings and +0000 timestamps.
        let scaler = &first_aws.emr_scalers[0];
        let (_, body) = get(format!("/aws/emr/mrScaler?accountId={}", first_aws.id)).await;
        assert!(body["response"]["items"][0]["createdAt"]
            .as_str()
            .unwrap()
            .ends_with("+0000"));
        let (_, body) = get(format!(
            "/aws/emr/mrScaler/{}/costs?fromDate=2024-07-01&toDate=2024-07-02",
            scaler.id
        ))
        .await;
        let actual = body["response"]["items"][0]["costs"]["actual"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(actual.split('.').nth(1).map(str::len), Some(4));
        assert_eq!(
            actual.parse::<f64>().unwrap(),
            organisation
                .emr_scaler_day(&scaler.id, july(1))
                .actual
                .usd()
        );

        // Validation errors name the parameter.
        let (status, body) = get(format!(
            "/aws/ec2/group/{}/costs?accountId={}&fromDate=2024-07-02&toDate=2024-07-02",
            group.id, second_aws.id
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["response"]["errors"][0]["field"], "toDate");
        let (status, body) = get("/aws/ec2/group?accountId=act-00000000".to_string()).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["response"]["errors"][0]["code"],
            "Account_DOESNT_EXIST"
        );
        let (status, _) = get("/no/such/route".to_string()).await;
        assert_eq!(status, 404);

        // Wrong-cloud listings are empty; GKE listings are wrapped.
        let gcp = &organisation.accounts[2];
        let (_, body) = get(format!("/aws/ec2/group?accountId={}", gcp.id)).await;
        assert_eq!(body["response"]["items"], json!([]));
        let (_, body) = get(format!("/ocean/gcp/k8s/cluster?accountId={}", gcp.id)).await;
        assert_eq!(
            body["response"]["items"][0]["cluster"]["id"],
            json!(gcp.clusters[0].id)
        );

        // Potential savings: no request, no count.
        let (_, body) = get("/aws/potentialSavings".to_string()).await;
        assert!(body.get("request").is_none());
        assert!(body["response"].get("count").is_none());
        assert!(!body["response"]["items"].as_array().unwrap().is_empty());

        // Audit: epoch milliseconds only; success by default.
        let (status, _) =
            get("/audit/events?fromDate=2024-07-01&toDate=2024-07-02".to_string()).await;
        assert_eq!(status, 400);
        let (_, all) = get(
            "/audit/events?fromDate=1719792000000&toDate=1720396800000&responseStatus=all"
                .to_string(),
        )
        .await;
        let (_, successes) =
            get("/audit/events?fromDate=1719792000000&toDate=1720396800000".to_string()).await;
        let all_items = all["response"]["items"].as_array().unwrap();
        let success_items = successes["response"]["items"].as_array().unwrap();
        assert!(success_items.len() < all_items.len());
        assert!(success_items
            .iter()
            .all(|item| item["responseStatus"] == 200 && item["context"].is_string()));
        simulator.shutdown().await;
    }

    #[tokio::test]
    async fn aggregated_costs_and_the_export_over_http() {
        let simulator = start_simulator(SimConfig::default()).await;
        let organisation = simulator.shared_organisation();
        let http = client();
        let azure = organisation
            .accounts
            .iter()
            .find(|account| account.cloud == Cloud::Azure)
            .unwrap();
        let cluster = &azure.clusters[0];
        let url = format!(
            "{}/ocean/azure/k8s/cluster/{}/aggregatedCosts?accountId={}",
            simulator.url(),
            cluster.id,
            azure.id
        );
        let response = post_json(&http, &url, &json!({ "startTime": "2024-07-01T00:00:00Z", "endTime": "2024-07-02T00:00:00Z", "groupBy": "namespace" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = json_of(response).await;
        assert_eq!(
            body["response"]["kind"],
            "ocean:k8s:cluster:aggregatedCosts:detailed"
        );
        let summary = &body["response"]["items"][0]["result"]["totalForDuration"]["summary"];
        let expected =
            organisation.cluster_day(&cluster.id, NaiveDate::from_ymd_opt(2024, 7, 1).unwrap());
        assert_eq!(summary["total"].as_f64().unwrap(), expected.total.usd());
        assert!(summary["storage"]["block"].get("azureDisk").is_some());

        let export_url = format!("{}/insights/instanceCosts/export", simulator.url());
        let export = post_json(
            &http,
            &export_url,
            &json!({ "fromDate": "1719792000", "toDate": "1719878400" }),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(export.status().as_u16(), 200);
        assert_eq!(export.headers()["content-type"], "application/csv");
        let text = export.text().await.unwrap();
        let rows = text.lines().count() - 1;
        let expected_rows: usize = organisation
            .accounts
            .iter()
            .map(|account| {
                organisation
                    .instances(&account.id, NaiveDate::from_ymd_opt(2024, 7, 1).unwrap())
                    .len()
            })
            .sum();
        assert_eq!(rows, expected_rows);
        simulator.shutdown().await;
    }

    /// Parses the export's fixed-point text (e.g. `12.5`, `3`) into integer units of 10^-`digits`.
    fn fixed_point_units(text: &str, digits: usize) -> i64 {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        assert!(fraction.len() <= digits, "{text}");
        format!("{whole}{fraction:0<digits$}").parse().unwrap()
    }

    #[tokio::test]
    async fn the_export_serves_a_provisional_day_as_the_ground_truth_does() {
        let march = |day| NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
        let simulator = start_simulator(SimConfig {
            today: Some(march(10)),
            restatement_days: 2,
            ..SimConfig::default()
        })
        .await;
        assert_eq!(simulator.today(), march(10));
        let organisation = simulator.shared_organisation();
        let account = &organisation.accounts[0];
        let day = march(9);
        let day_start_seconds = org::day_number(day) * 86_400;
        let export = post_json(
            &client(),
            &format!("{}/insights/instanceCosts/export", simulator.url()),
            &json!({
                "accountIds": [account.id],
                "fromDate": day_start_seconds.to_string(),
                "toDate": (day_start_seconds + 86_400).to_string(),
            }),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(export.status().as_u16(), 200);
        let text = export.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let column = |name: &str| headers.iter().position(|header| header == name).unwrap();
        let (actual_column, hours_column) = (column("actualCost"), column("runningHours"));
        let mut actual_micros = 0;
        let mut running_hours_milli = 0;
        for record in reader.records() {
            let record = record.unwrap();
            actual_micros += fixed_point_units(&record[actual_column], 6);
            running_hours_milli += fixed_point_units(&record[hours_column], 3);
        }
        let provisional = organisation.account_day(&account.id, day);
        assert_eq!(Money(actual_micros), provisional.actual);
        assert_eq!(running_hours_milli, provisional.running_hours_milli);

        simulator.set_today(march(20));
        let final_day = simulator.organisation().account_day(&account.id, day);
        assert!(provisional.actual < final_day.actual);
        simulator.shutdown().await;
    }

    #[tokio::test]
    async fn set_today_moves_the_day_the_snapshot_routes_report() {
        let simulator = start_simulator(SimConfig::default()).await;
        let wall_clock_before = chrono::Utc::now().date_naive();
        let unset_today = simulator.today();
        let wall_clock_after = chrono::Utc::now().date_naive();
        assert!(unset_today == wall_clock_before || unset_today == wall_clock_after);
        let organisation = simulator.shared_organisation();
        let (account, cluster) = organisation
            .accounts
            .iter()
            .find_map(|account| account.clusters.first().map(|cluster| (account, cluster)))
            .unwrap();
        let url = format!(
            "{}/ocean/{}/rightSizing/recommendations?accountId={}",
            simulator.url(),
            cluster.id,
            account.id
        );
        let http = client();
        let applied_at_of_first = |body: Value| {
            body["response"]["items"][0]["appliedAt"]
                .as_str()
                .unwrap()
                .to_string()
        };
        for today in ["2024-07-01", "2025-01-15"] {
            simulator.set_today(today.parse().unwrap());
            let response = post_json(&http, &url, &json!({})).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let applied_at = applied_at_of_first(json_of(response).await);
            assert!(
                applied_at.starts_with(&format!("{today}T")),
                "{applied_at} is not on {today}"
            );
            let aws = &organisation.accounts[0];
            let response = http
                .get(format!(
                    "{}/aws/potentialSavings?accountId={}",
                    simulator.url(),
                    aws.id
                ))
                .bearer_auth(DEFAULT_TOKEN)
                .send()
                .await
                .unwrap();
            let body = json_of(response).await;
            let served: Vec<f64> = body["response"]["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["potentialSavings"].as_f64().unwrap())
                .collect();
            let expected: Vec<f64> = organisation
                .potential_savings(&aws.id, today.parse().unwrap())
                .iter()
                .map(|saving| saving.monthly_savings.usd())
                .collect();
            assert_eq!(served, expected);
        }
        simulator.shutdown().await;
    }

    #[tokio::test]
    async fn random_faults_are_all_retryable() {
        let simulator = start_simulator(SimConfig {
            fault_rate: 1.0,
            rate_limit: 0,
            ..SimConfig::default()
        })
        .await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut outcomes = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let result = http
                .get(format!("{}/setup/account", simulator.url()))
                .bearer_auth(DEFAULT_TOKEN)
                .send()
                .await;
            let outcome = match result {
                Err(_) => "transport error".to_string(),
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Err(_) => format!("{status} broken body"),
                        Ok(bytes) if status == 200 => match serde_json::from_slice::<Value>(&bytes)
                        {
                            Ok(_) => "200 slow".to_string(),
                            Err(_) => "200 malformed".to_string(),
                        },
                        Ok(_) => {
                            assert!(
                                status == 429 || status >= 500,
                                "status {status} is not retryable"
                            );
                            format!("{status}")
                        }
                    }
                }
            };
            outcomes.insert(outcome);
        }
        println!("random fault outcomes: {outcomes:?}");
        assert!(outcomes.len() >= 4, "{outcomes:?}");
        simulator.shutdown().await;
    }

    /// Not a test of behaviour: prints how long a Large organisation takes to build and to serve
    /// one aggregatedCosts day. Run with `cargo test --release --lib sim -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "benchmark-style timing, run on demand"]
    async fn large_scale_timings() {
        let started = std::time::Instant::now();
        let organisation = Organisation::generate(42, Scale::Large);
        let generated = started.elapsed();
        let groups: usize = organisation
            .accounts
            .iter()
            .map(|account| account.groups.len())
            .sum();
        let clusters: Vec<&Cluster> = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .collect();
        let biggest = clusters
            .iter()
            .max_by_key(|cluster| {
                cluster
                    .namespaces
                    .iter()
                    .map(|namespace| namespace.workloads.len())
                    .sum::<usize>()
            })
            .unwrap();
        let workloads: usize = biggest
            .namespaces
            .iter()
            .map(|namespace| namespace.workloads.len())
            .sum();
        println!(
            "large: {} accounts, {groups} groups, {} clusters; generated in {generated:?}",
            organisation.accounts.len(),
            clusters.len()
        );
        let day = NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
        let started = std::time::Instant::now();
        let instance_count: usize = organisation
            .accounts
            .iter()
            .map(|account| organisation.instances(&account.id, day).len())
            .sum();
        println!(
            "large: {instance_count} instances on one day computed in {:?}",
            started.elapsed()
        );

        let started = std::time::Instant::now();
        for _ in 0..20 {
            std::hint::black_box(organisation.cluster_day(&biggest.id, day));
        }
        println!(
            "large: cluster_day of the biggest cluster in {:?}",
            started.elapsed() / 20
        );
        let request_body =
            json!({ "startTime": "2024-07-01", "endTime": "2024-07-02", "groupBy": "namespace" });
        let started = std::time::Instant::now();
        for _ in 0..20 {
            if let Ok(routes::Payload::Items { items, .. }) =
                ocean::aggregated_costs(&organisation, biggest, &request_body, false)
            {
                std::hint::black_box(serde_json::to_vec(&items).unwrap());
            }
        }
        println!(
            "large: aggregatedCosts JSON built and serialised in {:?}",
            started.elapsed() / 20
        );
        let started = std::time::Instant::now();
        for _ in 0..20 {
            std::hint::black_box(
                ocean::aggregated_costs(&organisation, biggest, &request_body, false).is_ok(),
            );
        }
        println!(
            "large: aggregatedCosts JSON built in {:?}",
            started.elapsed() / 20
        );

        let simulator = start_simulator(SimConfig {
            scale: Scale::Large,
            rate_limit: 0,
            ..SimConfig::default()
        })
        .await;
        let owner = simulator
            .organisation()
            .find_cluster(&biggest.id)
            .unwrap()
            .0
            .id
            .clone();
        let cloud_segment = match biggest.cloud {
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
            Cloud::Azure => "azure",
        };
        let url = format!(
            "{}/ocean/{cloud_segment}/k8s/cluster/{}/aggregatedCosts?accountId={owner}",
            simulator.url(),
            biggest.id
        );
        let http = client();
        let body =
            json!({ "startTime": "2024-07-01", "endTime": "2024-07-02", "groupBy": "namespace" });
        let _warm_up = post_json(&http, &url, &body)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let rounds = 20;
        let mut size = 0;
        for _ in 0..rounds {
            size = post_json(&http, &url, &body)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .len();
        }
        println!(
            "large: aggregatedCosts for one day of the biggest cluster ({} namespaces, {workloads} workloads, {size} bytes) served in {:?} per request",
            biggest.namespaces.len(),
            started.elapsed() / rounds
        );
        simulator.shutdown().await;
    }
}

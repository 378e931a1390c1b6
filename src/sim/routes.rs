//! The simulator's HTTP layer: one fallback handler routes every request by method and path, then applies scripted faults, bearer auth, the rate limit and random faults before rendering Spot's response envelope; bad input always becomes a 400 envelope, never a panic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::stream;
use serde_json::{json, Map, Value};

use super::export::{parse_export_request, recorded_export, InstanceCostsExport};
use super::limits::{
    choose_random_fault, FaultTally, RandomFault, RateDecision, RateLimiter, ScriptedFaultBook,
    SLOW_RESPONSE_DELAY,
};
use super::ocean;
use super::org::{
    day_from_number, day_number, Account, Cloud, CostTotals, EmrScaler, Group, InstanceDay,
    Lifecycle, ManagedInstance, Money, Organisation,
};
use super::rng::{mix_u64, SplitMix64};
use super::{FaultResponse, SimConfig};

/// Largest request body the simulator reads.
const MAXIMUM_REQUEST_BODY_BYTES: usize = 1 << 20;
/// Longest window a cost GET may ask for.
const MAXIMUM_COST_WINDOW_DAYS: i64 = 366;

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------

pub(crate) struct SimState {
    pub(crate) organisation: Arc<Organisation>,
    token: String,
    latency: Duration,
    fault_rate: f64,
    limiter: Mutex<RateLimiter>,
    scripted_faults: Mutex<ScriptedFaultBook>,
    request_counts: Mutex<HashMap<String, usize>>,
    /// Requests the rate limit let through, per `METHOD /route/{template}`.
    accepted_per_route: Mutex<HashMap<String, u64>>,
    request_sequence: AtomicU64,
    /// Nanoseconds spent answering requests, summed over requests (so over the wall time, the
    /// mean number of requests in flight).
    answering_ns: AtomicU64,
    random_faults: FaultTally,
    /// [`SimConfig::instance_costs_export_file`].
    instance_costs_export_file: Option<std::path::PathBuf>,
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SimState {
    pub(crate) fn new(organisation: Arc<Organisation>, config: &SimConfig) -> SimState {
        SimState {
            organisation,
            token: config.token.clone(),
            latency: Duration::from_millis(config.latency_ms),
            fault_rate: config.fault_rate,
            limiter: Mutex::new(RateLimiter::new(config.rate_limit)),
            scripted_faults: Mutex::new(ScriptedFaultBook::new(config.scripted_faults.clone())),
            request_counts: Mutex::new(HashMap::new()),
            accepted_per_route: Mutex::new(HashMap::new()),
            request_sequence: AtomicU64::new(0),
            answering_ns: AtomicU64::new(0),
            random_faults: FaultTally::default(),
            instance_costs_export_file: config.instance_costs_export_file.clone(),
        }
    }

    /// The random faults injected so far, by kind (and 5xx status).
    pub(crate) fn random_faults(&self) -> std::collections::BTreeMap<String, u64> {
        self.random_faults.counts()
    }

    /// Requests the rate limit let through, per route.
    pub(crate) fn accepted_per_route(&self) -> std::collections::BTreeMap<String, u64> {
        lock_ignoring_poison(&self.accepted_per_route)
            .iter()
            .map(|(route, count)| (route.clone(), *count))
            .collect()
    }

    /// Rate-limit blocks started, and requests that arrived at a route while it was blocked.
    pub(crate) fn rate_limit_counts(&self) -> (u64, u64) {
        let limiter = lock_ignoring_poison(&self.limiter);
        (limiter.blocks_started(), limiter.requests_while_blocked())
    }

    /// How many requests whose path contains `path_contains` have arrived.
    pub(crate) fn request_count(&self, path_contains: &str) -> usize {
        lock_ignoring_poison(&self.request_counts)
            .iter()
            .filter(|(path, _)| path.contains(path_contains))
            .map(|(_, count)| *count)
            .sum()
    }

    pub(crate) fn answering_time(&self) -> Duration {
        Duration::from_nanos(self.answering_ns.load(Ordering::Relaxed))
    }

    fn record_request(&self, path: &str) {
        *lock_ignoring_poison(&self.request_counts)
            .entry(path.to_string())
            .or_insert(0) += 1;
    }
}

pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new().fallback(handle_request).with_state(state)
}

// ---------------------------------------------------------------------------------------------
// The request pipeline
// ---------------------------------------------------------------------------------------------

/// The `request` block of the envelope.
pub(crate) struct RequestMeta {
    id: String,
    url: String,
    method: String,
    timestamp: String,
}

impl RequestMeta {
    fn new(seed: u64, sequence: u64, method: &str, uri: &Uri) -> RequestMeta {
        let mut random = SplitMix64::new(mix_u64(mix_u64(seed, 0x0072_6571_7565_7374), sequence));
        let hex = random.hex_string(32);
        RequestMeta {
            id: format!(
                "{}-{}-4{}-a{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[13..16],
                &hex[17..20],
                &hex[20..32]
            ),
            url: uri.path_and_query().map_or_else(
                || uri.path().to_string(),
                |path_and_query| path_and_query.as_str().to_string(),
            ),
            method: method.to_string(),
            timestamp: iso_timestamp_millis(Utc::now()),
        }
    }

    fn to_json(&self) -> Value {
        json!({ "id": self.id, "url": self.url, "method": self.method, "timestamp": self.timestamp })
    }
}

async fn handle_request(State(state): State<Arc<SimState>>, request: Request) -> Response {
    let arrived = Instant::now();
    let sequence = state.request_sequence.fetch_add(1, Ordering::Relaxed);
    let method = request.method().as_str().to_ascii_uppercase();
    let path = request.uri().path().to_string();
    state.record_request(&path);
    let meta = RequestMeta::new(state.organisation.seed, sequence, &method, request.uri());
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let response = respond(&state, request, &meta, sequence).await;
    state.answering_ns.fetch_add(
        u64::try_from(arrived.elapsed().as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    tracing::debug!(method = %method, path = %path, status = response.status().as_u16(), "simulated Spot API request");
    response
}

async fn respond(
    state: &SimState,
    request: Request,
    meta: &RequestMeta,
    sequence: u64,
) -> Response {
    let now = Instant::now();
    let path = request.uri().path().to_string();
    let matched_route = match_route(&meta.method, &path);
    let route_key = match &matched_route {
        Some((_, template)) => format!("{} {template}", meta.method),
        None => format!("{} *", meta.method),
    };

    let scripted_fault =
        lock_ignoring_poison(&state.scripted_faults).take_match(&meta.method, &path);
    if let Some(fault) = scripted_fault {
        let decision = lock_ignoring_poison(&state.limiter).peek(&route_key, now);
        return scripted_fault_response(fault, meta, decision);
    }

    if !is_authorised(request.headers(), &state.token) {
        let decision = lock_ignoring_poison(&state.limiter).peek(&route_key, now);
        let body = json!({ "request": meta.to_json(), "response": { "status": status_json(401) } });
        return with_rate_headers(json_response(StatusCode::UNAUTHORIZED, &body), decision);
    }

    let decision = lock_ignoring_poison(&state.limiter).check(&route_key, now);
    if !decision.allowed {
        return with_rate_headers(rate_limited_response(meta), decision);
    }
    *lock_ignoring_poison(&state.accepted_per_route)
        .entry(route_key.clone())
        .or_insert(0) += 1;

    let random_fault = choose_random_fault(state.organisation.seed, sequence, state.fault_rate);
    if let Some(fault) = random_fault {
        state.random_faults.record(fault);
    }
    match random_fault {
        Some(RandomFault::RateLimited) => {
            let fault_decision = RateDecision {
                allowed: false,
                limit: decision.limit,
                remaining: 0,
                reset_secs: 1,
            };
            return with_rate_headers(rate_limited_response(meta), fault_decision);
        }
        Some(RandomFault::ServerErrorEnvelope(status)) => {
            let error = ApiError::new(
                status,
                "InternalServerError",
                "simulated transient failure, please retry",
            );
            return with_rate_headers(error_response(meta, &error), decision);
        }
        Some(RandomFault::ServerErrorPlainText(status)) => {
            let status_code =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let response = text_response(status_code, status_reason(status));
            return with_rate_headers(response, decision);
        }
        Some(RandomFault::DroppedConnection) => {
            return with_rate_headers(dropped_connection_response(), decision)
        }
        Some(RandomFault::Slow) => tokio::time::sleep(SLOW_RESPONSE_DELAY).await,
        Some(RandomFault::TruncatedBody | RandomFault::MalformedBody) | None => {}
    }

    let Some((route, _)) = matched_route else {
        let error = ApiError::new(
            404,
            "NOT_FOUND",
            format!("no route for {} {path}", meta.method),
        );
        return with_rate_headers(error_response(meta, &error), decision);
    };
    let is_csv_route = route == Route::InstanceCostsExport;
    let outcome = dispatch(state, route, request).await;
    let response = match outcome {
        Ok(payload) => payload_response(payload, meta),
        Err(error) => error_response(meta, &error),
    };
    let response = match random_fault {
        Some(RandomFault::TruncatedBody) => truncated_response(response).await,
        // A CSV cut short with correct framing is undetectable, so the export gets a truncation instead.
        Some(RandomFault::MalformedBody) if is_csv_route => truncated_response(response).await,
        Some(RandomFault::MalformedBody) => malformed_response(response).await,
        _ => response,
    };
    with_rate_headers(response, decision)
}

fn is_authorised(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let presented = parts.next().unwrap_or_default().trim();
    scheme.eq_ignore_ascii_case("bearer") && !presented.is_empty() && presented == token
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    SetupAccounts,
    AwsGroups,
    GcpGroups,
    AwsGroupCosts(String),
    AwsGroupDetailedCosts(String),
    GcpGroupCosts(String),
    EmrScalers,
    EmrScalerCosts(String),
    ManagedInstances,
    ManagedInstanceCosts(String),
    OceanClusters(Cloud),
    VirtualNodeGroups(Cloud),
    AggregatedCosts {
        cloud: Cloud,
        cluster_id: String,
        summary_only: bool,
    },
    RightsizingRecommendations(String),
    RightsizingSuggestion {
        cloud: Cloud,
        cluster_id: String,
    },
    PotentialSavings,
    AccountCosts(Cloud),
    InstanceCostsExport,
    AuditEvents,
}

/// The route and its template (the rate-limit key) for a method and path. Empty segments are
/// ignored, so a trailing slash (as the Python SDK sends for `/gcp/gce/costs/`) is accepted.
/// Segments are percent-decoded after the split, so an id sent as `sig-1%2F..` is `sig-1/..`.
pub(crate) fn match_route(method: &str, path: &str) -> Option<(Route, &'static str)> {
    let decoded_segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(decode_segment)
        .collect::<Option<_>>()?;
    let segments: Vec<&str> = decoded_segments.iter().map(String::as_str).collect();
    let matched = match (method, segments.as_slice()) {
        ("GET", ["setup", "account"]) => (Route::SetupAccounts, "/setup/account"),
        ("GET", ["aws", "ec2", "group"]) => (Route::AwsGroups, "/aws/ec2/group"),
        ("GET", ["gcp", "gce", "group"]) => (Route::GcpGroups, "/gcp/gce/group"),
        ("GET", ["aws", "ec2", "group", id, "costs"]) => (
            Route::AwsGroupCosts(id.to_string()),
            "/aws/ec2/group/{id}/costs",
        ),
        ("GET", ["aws", "ec2", "group", id, "costs", "detailed"]) => (
            Route::AwsGroupDetailedCosts(id.to_string()),
            "/aws/ec2/group/{id}/costs/detailed",
        ),
        ("GET", ["gcp", "gce", "group", id, "costs"]) => (
            Route::GcpGroupCosts(id.to_string()),
            "/gcp/gce/group/{id}/costs",
        ),
        ("GET", ["aws", "emr", "mrScaler"]) => (Route::EmrScalers, "/aws/emr/mrScaler"),
        ("GET", ["aws", "emr", "mrScaler", id, "costs"]) => (
            Route::EmrScalerCosts(id.to_string()),
            "/aws/emr/mrScaler/{id}/costs",
        ),
        ("GET", ["aws", "ec2", "managedInstance"]) => {
            (Route::ManagedInstances, "/aws/ec2/managedInstance")
        }
        ("GET", ["aws", "ec2", "managedInstance", id, "costs"]) => (
            Route::ManagedInstanceCosts(id.to_string()),
            "/aws/ec2/managedInstance/{id}/costs",
        ),
        ("GET", ["ocean", "aws", "k8s", "cluster"]) => {
            (Route::OceanClusters(Cloud::Aws), "/ocean/aws/k8s/cluster")
        }
        ("GET", ["ocean", "gcp", "k8s", "cluster"]) => {
            (Route::OceanClusters(Cloud::Gcp), "/ocean/gcp/k8s/cluster")
        }
        ("GET", ["ocean", "azure", "np", "cluster"]) => (
            Route::OceanClusters(Cloud::Azure),
            "/ocean/azure/np/cluster",
        ),
        ("GET", ["ocean", "aws", "k8s", "launchSpec"]) => (
            Route::VirtualNodeGroups(Cloud::Aws),
            "/ocean/aws/k8s/launchSpec",
        ),
        ("GET", ["ocean", "gcp", "k8s", "launchSpec"]) => (
            Route::VirtualNodeGroups(Cloud::Gcp),
            "/ocean/gcp/k8s/launchSpec",
        ),
        ("GET", ["ocean", "azure", "np", "virtualNodeGroup"]) => (
            Route::VirtualNodeGroups(Cloud::Azure),
            "/ocean/azure/np/virtualNodeGroup",
        ),
        ("POST", ["ocean", cloud_segment, "k8s", "cluster", id, "aggregatedCosts", rest @ ..]) => {
            let cloud = cloud_of_segment(cloud_segment)?;
            let (summary_only, template) = match (cloud, rest) {
                (Cloud::Aws, []) => (false, "/ocean/aws/k8s/cluster/{id}/aggregatedCosts"),
                (Cloud::Gcp, []) => (false, "/ocean/gcp/k8s/cluster/{id}/aggregatedCosts"),
                (Cloud::Azure, []) => (false, "/ocean/azure/k8s/cluster/{id}/aggregatedCosts"),
                (Cloud::Aws, ["summary"]) => {
                    (true, "/ocean/aws/k8s/cluster/{id}/aggregatedCosts/summary")
                }
                (Cloud::Gcp, ["summary"]) => {
                    (true, "/ocean/gcp/k8s/cluster/{id}/aggregatedCosts/summary")
                }
                (Cloud::Azure, ["summary"]) => (
                    true,
                    "/ocean/azure/k8s/cluster/{id}/aggregatedCosts/summary",
                ),
                _ => return None,
            };
            (
                Route::AggregatedCosts {
                    cloud,
                    cluster_id: id.to_string(),
                    summary_only,
                },
                template,
            )
        }
        ("POST", ["ocean", id, "rightSizing", "recommendations"]) => (
            Route::RightsizingRecommendations(id.to_string()),
            "/ocean/{id}/rightSizing/recommendations",
        ),
        ("POST", ["ocean", "aws", "k8s", "cluster", id, "rightSizing", "suggestion"]) => (
            Route::RightsizingSuggestion {
                cloud: Cloud::Aws,
                cluster_id: id.to_string(),
            },
            "/ocean/aws/k8s/cluster/{id}/rightSizing/suggestion",
        ),
        ("POST", ["ocean", "gcp", "k8s", "cluster", id, "rightSizing", "suggestion"]) => (
            Route::RightsizingSuggestion {
                cloud: Cloud::Gcp,
                cluster_id: id.to_string(),
            },
            "/ocean/gcp/k8s/cluster/{id}/rightSizing/suggestion",
        ),
        ("POST", ["ocean", "azure", "np", "cluster", id, "rightSizing", "suggestion"]) => (
            Route::RightsizingSuggestion {
                cloud: Cloud::Azure,
                cluster_id: id.to_string(),
            },
            "/ocean/azure/np/cluster/{id}/rightSizing/suggestion",
        ),
        ("GET", ["aws", "potentialSavings"]) => (Route::PotentialSavings, "/aws/potentialSavings"),
        ("GET", ["aws", "costs"]) => (Route::AccountCosts(Cloud::Aws), "/aws/costs"),
        ("GET", ["gcp", "gce", "costs"]) => (Route::AccountCosts(Cloud::Gcp), "/gcp/gce/costs"),
        ("GET", ["azure", "costs"]) => (Route::AccountCosts(Cloud::Azure), "/azure/costs"),
        ("POST", ["insights", "instanceCosts", "export"]) => {
            (Route::InstanceCostsExport, "/insights/instanceCosts/export")
        }
        ("GET", ["audit", "events"]) => (Route::AuditEvents, "/audit/events"),
        _ => return None,
    };
    Some(matched)
}

/// A path segment with its `%XX` escapes decoded; None when an escape is malformed or the
/// bytes are not UTF-8 (the request then matches no route).
fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%' {
            let hex = bytes.get(position + 1..position + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            decoded.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            position += 3;
        } else {
            decoded.push(bytes[position]);
            position += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn cloud_of_segment(segment: &str) -> Option<Cloud> {
    match segment {
        "aws" => Some(Cloud::Aws),
        "gcp" => Some(Cloud::Gcp),
        "azure" => Some(Cloud::Azure),
        _ => None,
    }
}

async fn dispatch(state: &SimState, route: Route, request: Request) -> Result<Payload, ApiError> {
    let organisation = state.organisation.as_ref();
    let parameters = QueryParameters::parse(request.uri())?;
    let today = organisation.today();
    match route {
        Route::SetupAccounts => Ok(list_accounts(organisation, &parameters)),
        Route::AwsGroups => {
            let account = resolve_account(organisation, &parameters)?;
            Ok(list_groups(organisation, account, Cloud::Aws))
        }
        Route::GcpGroups => {
            let account = resolve_account(organisation, &parameters)?;
            Ok(list_groups(organisation, account, Cloud::Gcp))
        }
        Route::AwsGroupCosts(group_id) => {
            let account = resolve_account(organisation, &parameters)?;
            let group = scoped_group(organisation, account, &group_id, Cloud::Aws)?;
            let style = if is_second_aws_account(organisation, account) {
                NumberStyle::ExactStrings
            } else {
                NumberStyle::Numbers
            };
            let query = CostQuery::parse(&parameters)?;
            let items = cost_items(&query, style, |day| {
                organisation.group_spot_day(&group.id, day)
            });
            Ok(Payload::items("spotinst:aws:ec2:group:stats", items))
        }
        Route::AwsGroupDetailedCosts(group_id) => {
            let account = resolve_account(organisation, &parameters)?;
            let group = scoped_group(organisation, account, &group_id, Cloud::Aws)?;
            let query = CostQuery::parse(&parameters)?;
            Ok(Payload::items(
                "spotinst:aws:ec2:group",
                detailed_cost_items(organisation, group, &query),
            ))
        }
        Route::GcpGroupCosts(group_id) => {
            let account = resolve_account(organisation, &parameters)?;
            let group = scoped_group(organisation, account, &group_id, Cloud::Gcp)?;
            let query = CostQuery::parse(&parameters)?;
            let items = cost_items(&query, NumberStyle::Numbers, |day| {
                organisation.group_day(&group.id, day)
            });
            Ok(Payload::items("spotinst:gcp:gce:group:costs", items))
        }
        Route::EmrScalers => {
            let account = resolve_account(organisation, &parameters)?;
            Ok(Payload::items(
                "spotinst:aws:emr:mrScaler",
                account.emr_scalers.iter().map(emr_scaler_json).collect(),
            ))
        }
        Route::EmrScalerCosts(scaler_id) => {
            let account = resolve_account(organisation, &parameters)?;
            let scaler = scoped_emr_scaler(organisation, account, &scaler_id)?;
            let query = CostQuery::parse(&parameters)?;
            let items = cost_items(&query, NumberStyle::FourDecimalStrings, |day| {
                organisation.emr_scaler_day(&scaler.id, day)
            });
            Ok(Payload::items("spotinst:aws:emr:mrScaler:costs", items))
        }
        Route::ManagedInstances => {
            let account = resolve_account(organisation, &parameters)?;
            let items = account
                .managed_instances
                .iter()
                .map(managed_instance_json)
                .collect();
            Ok(Payload::items("spotinst:aws:ec2:managedInstance", items))
        }
        Route::ManagedInstanceCosts(managed_instance_id) => {
            let account = resolve_account(organisation, &parameters)?;
            let managed = scoped_managed_instance(organisation, account, &managed_instance_id)?;
            let query = CostQuery::parse(&parameters)?;
            let items = cost_items(&query, NumberStyle::Numbers, |day| {
                organisation.managed_instance_day(&managed.id, day)
            });
            Ok(Payload::items(
                "spotinst:aws:ec2:managedInstance:costs",
                items,
            ))
        }
        Route::OceanClusters(cloud) => {
            let account = resolve_account(organisation, &parameters)?;
            Ok(ocean::list_clusters(account, cloud))
        }
        Route::VirtualNodeGroups(cloud) => {
            let account = resolve_account(organisation, &parameters)?;
            let Some(cluster_id) = parameters.get("oceanId") else {
                return Err(ApiError {
                    status: 400,
                    code: "ValidationError".to_string(),
                    message: "oceanId is required".to_string(),
                    field: Some("oceanId".to_string()),
                });
            };
            let cluster = ocean::scoped_cluster(organisation, account, cluster_id, Some(cloud))?;
            Ok(ocean::list_virtual_node_groups(cluster, cloud))
        }
        Route::AggregatedCosts {
            cloud,
            cluster_id,
            summary_only,
        } => {
            let account = resolve_account(organisation, &parameters)?;
            let cluster = ocean::scoped_cluster(organisation, account, &cluster_id, Some(cloud))?;
            let body = read_json_body(request).await?;
            ocean::aggregated_costs(organisation, cluster, &body, summary_only)
        }
        Route::RightsizingRecommendations(cluster_id) => {
            let account = resolve_account(organisation, &parameters)?;
            let cluster = ocean::scoped_cluster(organisation, account, &cluster_id, None)?;
            let body = read_json_body(request).await?;
            ocean::rightsizing_recommendations(organisation, cluster, &body, today)
        }
        Route::RightsizingSuggestion { cloud, cluster_id } => {
            let account = resolve_account(organisation, &parameters)?;
            let cluster = ocean::scoped_cluster(organisation, account, &cluster_id, Some(cloud))?;
            let body = read_json_body(request).await?;
            ocean::rightsizing_suggestions(organisation, cluster, &body, today)
        }
        Route::PotentialSavings => {
            let account = resolve_account(organisation, &parameters)?;
            Ok(potential_savings(organisation, account, today))
        }
        Route::AccountCosts(cloud) => {
            let account = resolve_account(organisation, &parameters)?;
            let query = CostQuery::parse(&parameters)?;
            Ok(account_costs(organisation, account, cloud, &query))
        }
        Route::InstanceCostsExport => {
            let body = read_json_body(request).await?;
            let export_request = parse_export_request(organisation, &body)?;
            if let Some(path) = &state.instance_costs_export_file {
                return Ok(Payload::Csv(recorded_export(path).await?));
            }
            let chunks = InstanceCostsExport::new(Arc::clone(&state.organisation), export_request);
            Ok(Payload::Csv(Body::from_stream(stream::iter(chunks))))
        }
        Route::AuditEvents => audit_events(organisation, &parameters),
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads, errors and the envelope
// ---------------------------------------------------------------------------------------------

pub(crate) enum Payload {
    /// The usual envelope: `request`, `response.status`, `kind`, `items`, `count`.
    Items {
        kind: &'static str,
        items: Vec<Value>,
    },
    /// An envelope with neither `request` nor `count` (the potential-savings report).
    ItemsWithoutRequestOrCount {
        kind: &'static str,
        items: Vec<Value>,
    },
    /// `application/csv`, streamed.
    Csv(Body),
}

impl Payload {
    pub(crate) fn items(kind: &'static str, items: Vec<Value>) -> Payload {
        Payload::Items { kind, items }
    }
}

/// A Spot error: an HTTP status and one entry of `response.errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            field: None,
        }
    }

    /// 400 `ValidationError` naming the offending parameter.
    pub(crate) fn validation(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            code: "ValidationError".to_string(),
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub(crate) fn missing(field: &str) -> ApiError {
        ApiError::validation(field, format!("\"{field}\" is required"))
    }
}

pub(crate) fn status_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// A JSON object from owned values. Unlike `json!`, which re-serialises every interpolated
/// `Value` (a deep copy per nesting level), this moves them: it keeps large responses cheap.
pub(crate) fn json_object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}

fn status_json(status: u16) -> Value {
    json!({ "code": status, "message": status_reason(status) })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn text_response(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn error_response(meta: &RequestMeta, error: &ApiError) -> Response {
    let mut entry = Map::new();
    entry.insert("code".to_string(), json!(error.code));
    entry.insert("message".to_string(), json!(error.message));
    if let Some(field) = &error.field {
        entry.insert("field".to_string(), json!(field));
    }
    let body = json!({
        "request": meta.to_json(),
        "response": { "status": status_json(error.status), "errors": [Value::Object(entry)] },
    });
    json_response(
        StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
        &body,
    )
}

fn payload_response(payload: Payload, meta: &RequestMeta) -> Response {
    match payload {
        Payload::Items { kind, items } => {
            let count = items.len();
            let response = json_object([
                ("status", status_json(200)),
                ("kind", json!(kind)),
                ("items", Value::Array(items)),
                ("count", json!(count)),
            ]);
            json_response(
                StatusCode::OK,
                &json_object([("request", meta.to_json()), ("response", response)]),
            )
        }
        Payload::ItemsWithoutRequestOrCount { kind, items } => {
            let response = json_object([
                ("status", status_json(200)),
                ("kind", json!(kind)),
                ("items", Value::Array(items)),
            ]);
            json_response(StatusCode::OK, &json_object([("response", response)]))
        }
        Payload::Csv(body) => {
            let mut response = Response::new(body);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/csv"),
            );
            response
        }
    }
}

fn rate_limited_response(meta: &RequestMeta) -> Response {
    let body = json!({
        "request": meta.to_json(),
        "response": { "status": status_json(429), "data": "Rate limit exceeded" },
    });
    json_response(StatusCode::TOO_MANY_REQUESTS, &body)
}

fn with_rate_headers(mut response: Response, decision: RateDecision) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset_secs));
    response
}

/// A body that sends `prefix` (if any), waits a moment so the headers and prefix reach the
/// client, then fails, which makes hyper abort the connection.
fn aborting_body(prefix: Option<Bytes>) -> Body {
    let prefix_chunk = prefix.map(Ok::<Bytes, std::io::Error>);
    let failure = stream::once(async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated connection drop",
        ))
    });
    Body::from_stream(futures_util::StreamExt::chain(
        stream::iter(prefix_chunk),
        failure,
    ))
}

fn dropped_connection_response() -> Response {
    let mut response = Response::new(aborting_body(None));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Keeps the status and headers, sends the first half of the first body chunk, then aborts.
async fn truncated_response(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut data = body.into_data_stream();
    let first_chunk = futures_util::StreamExt::next(&mut data)
        .await
        .and_then(Result::ok)
        .unwrap_or_default();
    let kept = first_chunk.slice(..first_chunk.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, aborting_body(Some(kept)))
}

/// HTTP 200 with the first half of the real JSON body and a matching Content-Length.
async fn malformed_response(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let kept = bytes.slice(..bytes.len() / 2);
    parts.status = StatusCode::OK;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(kept))
}

fn scripted_fault_response(
    fault: FaultResponse,
    meta: &RequestMeta,
    decision: RateDecision,
) -> Response {
    match fault {
        FaultResponse::Status { status, body } => {
            let status_code =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status_code;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            with_rate_headers(response, decision)
        }
        FaultResponse::RateLimited { reset_secs } => {
            let blocked = RateDecision {
                allowed: false,
                limit: decision.limit,
                remaining: 0,
                reset_secs,
            };
            with_rate_headers(rate_limited_response(meta), blocked)
        }
        FaultResponse::Body(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            with_rate_headers(response, decision)
        }
        FaultResponse::Drop => with_rate_headers(dropped_connection_response(), decision),
    }
}

async fn read_json_body(request: Request) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(request.into_body(), MAXIMUM_REQUEST_BODY_BYTES)
        .await
        .map_err(|error| {
            ApiError::validation("body", format!("could not read the request body: {error}"))
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let body: Value = serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::validation(
            "body",
            format!("the request body is not valid JSON: {error}"),
        )
    })?;
    if !body.is_object() {
        return Err(ApiError::validation(
            "body",
            "the request body must be a JSON object",
        ));
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

pub(crate) struct QueryParameters {
    pairs: Vec<(String, String)>,
}

impl QueryParameters {
    fn parse(uri: &Uri) -> Result<QueryParameters, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|error| {
            ApiError::validation("query", format!("malformed query string: {error}"))
        })?;
        Ok(QueryParameters { pairs })
    }

    /// The first value of a parameter; an empty value counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

/// The account named by `accountId`, or the oldest account when the parameter is absent.
fn resolve_account<'a>(
    organisation: &'a Organisation,
    parameters: &QueryParameters,
) -> Result<&'a Account, ApiError> {
    match parameters.get("accountId") {
        Some(account_id) => organisation.account(account_id).ok_or_else(|| ApiError {
            status: 400,
            code: "Account_DOESNT_EXIST".to_string(),
            message: format!("Account {account_id} does not exist"),
            field: Some("accountId".to_string()),
        }),
        None => organisation.default_account().ok_or_else(|| {
            ApiError::new(
                400,
                "Account_DOESNT_EXIST",
                "the organisation has no accounts",
            )
        }),
    }
}

fn is_second_aws_account(organisation: &Organisation, account: &Account) -> bool {
    organisation
        .accounts
        .iter()
        .filter(|candidate| candidate.cloud == Cloud::Aws)
        .nth(1)
        .is_some_and(|second| second.id == account.id)
}

fn scoped_group<'a>(
    organisation: &'a Organisation,
    account: &Account,
    group_id: &str,
    cloud: Cloud,
) -> Result<&'a Group, ApiError> {
    match organisation.find_group(group_id) {
        Some((owner, group)) if owner.id == account.id && group.cloud == cloud => Ok(group),
        _ => Err(ApiError::new(
            400,
            "GROUP_DOESNT_EXIST",
            format!("Group {group_id} does not exist"),
        )),
    }
}

fn scoped_emr_scaler<'a>(
    organisation: &'a Organisation,
    account: &Account,
    scaler_id: &str,
) -> Result<&'a EmrScaler, ApiError> {
    match organisation.find_emr_scaler(scaler_id) {
        Some((owner, scaler)) if owner.id == account.id => Ok(scaler),
        _ => Err(ApiError::new(
            400,
            "MRSCALER_DOESNT_EXIST",
            format!("MrScaler {scaler_id} does not exist"),
        )),
    }
}

fn scoped_managed_instance<'a>(
    organisation: &'a Organisation,
    account: &Account,
    managed_instance_id: &str,
) -> Result<&'a ManagedInstance, ApiError> {
    match organisation.find_managed_instance(managed_instance_id) {
        Some((owner, managed)) if owner.id == account.id => Ok(managed),
        _ => Err(ApiError::new(
            400,
            "MANAGED_INSTANCE_DOESNT_EXIST",
            format!("Managed instance {managed_instance_id} does not exist"),
        )),
    }
}

/// A whole-day window `[first_day, end_day)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DayWindow {
    pub(crate) first_day: NaiveDate,
    pub(crate) end_day: NaiveDate,
}

impl DayWindow {
    pub(crate) fn days(self) -> impl Iterator<Item = NaiveDate> {
        (day_number(self.first_day)..day_number(self.end_day)).map(day_from_number)
    }

    pub(crate) fn length_days(self) -> i64 {
        day_number(self.end_day) - day_number(self.first_day)
    }
}

/// A request day: `yyyy-mm-dd`, epoch milliseconds, or an ISO-8601 timestamp; times are truncated to their UTC day.
pub(crate) fn parse_request_day(field: &str, text: &str) -> Result<NaiveDate, ApiError> {
    let text = text.trim();
    let day = if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        let milliseconds: i64 = text.parse().map_err(|_| {
            ApiError::validation(
                field,
                format!("\"{field}\" is not a valid epoch-milliseconds value"),
            )
        })?;
        DateTime::<Utc>::from_timestamp_millis(milliseconds).map(|timestamp| timestamp.date_naive())
    } else if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Some(day)
    } else {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|timestamp| timestamp.with_timezone(&Utc).date_naive())
    };
    let day = day.ok_or_else(|| {
        ApiError::validation(
            field,
            format!("\"{field}\" must be a date (yyyy-mm-dd) or epoch milliseconds, got {text:?}"),
        )
    })?;
    check_plausible_year(field, day)?;
    Ok(day)
}

/// Rejects dates before 2000 or after 2100, which are almost always unit mistakes (seconds sent as milliseconds).
pub(crate) fn check_plausible_year(field: &str, day: NaiveDate) -> Result<(), ApiError> {
    use chrono::Datelike;
    if (2000..=2100).contains(&day.year()) {
        Ok(())
    } else {
        Err(ApiError::validation(
            field,
            format!("\"{field}\" resolves to {day}, outside 2000..2100; check the units"),
        ))
    }
}

fn parse_day_window(parameters: &QueryParameters) -> Result<DayWindow, ApiError> {
    let first_day = parse_request_day(
        "fromDate",
        parameters
            .get("fromDate")
            .ok_or_else(|| ApiError::missing("fromDate"))?,
    )?;
    let end_day = parse_request_day(
        "toDate",
        parameters
            .get("toDate")
            .ok_or_else(|| ApiError::missing("toDate"))?,
    )?;
    let window = DayWindow { first_day, end_day };
    if window.length_days() <= 0 {
        return Err(ApiError::validation(
            "toDate",
            "\"toDate\" must be after \"fromDate\" (the window is [fromDate, toDate), whole days)",
        ));
    }
    if window.length_days() > MAXIMUM_COST_WINDOW_DAYS {
        return Err(ApiError::validation(
            "toDate",
            format!("the window may span at most {MAXIMUM_COST_WINDOW_DAYS} days"),
        ));
    }
    Ok(window)
}

struct CostQuery {
    window: DayWindow,
    daily: bool,
}

impl CostQuery {
    fn parse(parameters: &QueryParameters) -> Result<CostQuery, ApiError> {
        let window = parse_day_window(parameters)?;
        let daily = match parameters.get("aggregationPeriod") {
            None => false,
            Some("daily") => true,
            Some(other) => {
                return Err(ApiError::validation(
                    "aggregationPeriod",
                    format!("\"aggregationPeriod\" must be daily, got {other:?}"),
                ))
            }
        };
        Ok(CostQuery { window, daily })
    }
}

// ---------------------------------------------------------------------------------------------
// Wire formats
// ---------------------------------------------------------------------------------------------

/// `2018-06-20T11:35:01.745Z`
pub(crate) fn iso_timestamp_millis(timestamp: DateTime<Utc>) -> String {
    timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `2018-10-10T10:50:29.000+0000` (EMR and managed instances).
fn offset_timestamp_millis(timestamp: DateTime<Utc>) -> String {
    timestamp.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// `2024-07-01T00:00:00.000Z`
pub(crate) fn day_timestamp(day: NaiveDate) -> String {
    format!("{}T00:00:00.000Z", day.format("%Y-%m-%d"))
}

/// An amount as a JSON number of USD.
pub(crate) fn usd_number(money: Money) -> Value {
    json!(money.usd())
}

/// `value / 10^scale_digits` written exactly, with trailing zeros trimmed down to `minimum_decimals`.
pub(crate) fn fixed_point_text(value: i64, scale_digits: u32, minimum_decimals: usize) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let absolute = value.unsigned_abs();
    let divisor = 10u64.pow(scale_digits);
    let mut fraction = format!(
        "{:0width$}",
        absolute % divisor,
        width = scale_digits as usize
    );
    while fraction.len() > minimum_decimals && fraction.ends_with('0') {
        fraction.pop();
    }
    if fraction.is_empty() {
        format!("{sign}{}", absolute / divisor)
    } else {
        format!("{sign}{}.{fraction}", absolute / divisor)
    }
}

/// Savings as hundredths of a percent: (potential − actual) / potential.
fn savings_hundredths_of_percent(totals: &CostTotals) -> i64 {
    let potential = totals.potential.micros();
    if potential <= 0 {
        return 0;
    }
    let saved = (potential - totals.actual.micros()) * 10_000;
    (saved + potential / 2).div_euclid(potential)
}

/// How cost figures are written: JSON numbers, exact numeric strings (`"6.00"`, `"0.268105"`),
/// or four-decimal strings (`"0.4729"`, EMR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumberStyle {
    Numbers,
    ExactStrings,
    FourDecimalStrings,
}

impl NumberStyle {
    fn money(self, money: Money) -> Value {
        match self {
            NumberStyle::Numbers => usd_number(money),
            NumberStyle::ExactStrings => json!(fixed_point_text(money.micros(), 6, 2)),
            NumberStyle::FourDecimalStrings => json!(fixed_point_text(
                (money.micros() + 50).div_euclid(100),
                4,
                4
            )),
        }
    }

    fn hours(self, running_hours_milli: i64) -> Value {
        match self {
            NumberStyle::Numbers => json!(running_hours_milli as f64 / 1000.0),
            NumberStyle::ExactStrings => json!(fixed_point_text(running_hours_milli, 3, 2)),
            NumberStyle::FourDecimalStrings => {
                json!(fixed_point_text(running_hours_milli * 10, 4, 4))
            }
        }
    }

    fn percentage(self, hundredths: i64) -> Value {
        match self {
            NumberStyle::Numbers => json!(hundredths as f64 / 100.0),
            NumberStyle::ExactStrings => json!(fixed_point_text(hundredths, 2, 2)),
            NumberStyle::FourDecimalStrings => json!(fixed_point_text(hundredths * 100, 4, 4)),
        }
    }
}

/// `running`, `savings` and `costs` of one cost item.
fn cost_fields(totals: &CostTotals, style: NumberStyle) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "running".to_string(),
        json!({ "value": style.hours(totals.running_hours_milli), "unit": "hours" }),
    );
    fields.insert(
        "savings".to_string(),
        json!({ "value": style.percentage(savings_hundredths_of_percent(totals)), "unit": "percentage" }),
    );
    fields.insert(
        "costs".to_string(),
        json!({ "actual": style.money(totals.actual), "potential": style.money(totals.potential) }),
    );
    fields
}

/// One item for the window, or one per day (with `timestamp`) when aggregated daily.
fn cost_items(
    query: &CostQuery,
    style: NumberStyle,
    per_day: impl Fn(NaiveDate) -> CostTotals,
) -> Vec<Value> {
    if query.daily {
        query
            .window
            .days()
            .map(|day| {
                let mut fields = cost_fields(&per_day(day), style);
                fields.insert("timestamp".to_string(), json!(day_timestamp(day)));
                Value::Object(fields)
            })
            .collect()
    } else {
        let mut totals = CostTotals::default();
        for day in query.window.days() {
            totals += per_day(day);
        }
        vec![Value::Object(cost_fields(&totals, style))]
    }
}

fn detailed_cost_item(
    group: &Group,
    instance: &InstanceDay,
    totals: &CostTotals,
    day: Option<NaiveDate>,
) -> Value {
    let mut fields = cost_fields(totals, NumberStyle::Numbers);
    fields.insert("groupId".to_string(), json!(group.id));
    fields.insert("instanceId".to_string(), json!(instance.instance_id));
    fields.insert(
        "spotInstanceRequestId".to_string(),
        json!(instance.spot_instance_request_id),
    );
    fields.insert("instanceType".to_string(), json!(instance.instance_type));
    fields.insert(
        "availabilityZone".to_string(),
        json!(instance.availability_zone),
    );
    if let Some(day) = day {
        fields.insert("timestamp".to_string(), json!(day_timestamp(day)));
    }
    Value::Object(fields)
}

/// One item per instance (per instance and day when aggregated daily), all lifecycles.
fn detailed_cost_items(
    organisation: &Organisation,
    group: &Group,
    query: &CostQuery,
) -> Vec<Value> {
    if query.daily {
        let mut items = Vec::new();
        for day in query.window.days() {
            for instance in organisation.group_instances(&group.id, day) {
                let totals = CostTotals::from_instances([&instance]);
                items.push(detailed_cost_item(group, &instance, &totals, Some(day)));
            }
        }
        return items;
    }
    let mut order: Vec<(InstanceDay, CostTotals)> = Vec::new();
    let mut position_of: HashMap<String, usize> = HashMap::new();
    for day in query.window.days() {
        for instance in organisation.group_instances(&group.id, day) {
            match position_of.get(&instance.instance_id) {
                Some(position) => order[*position].1.add_instance(&instance),
                None => {
                    position_of.insert(instance.instance_id.clone(), order.len());
                    let totals = CostTotals::from_instances([&instance]);
                    order.push((instance, totals));
                }
            }
        }
    }
    order
        .iter()
        .map(|(instance, totals)| detailed_cost_item(group, instance, totals, None))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Listings and account-level routes
// ---------------------------------------------------------------------------------------------

fn list_accounts(organisation: &Organisation, parameters: &QueryParameters) -> Payload {
    let cloud_account_filter = parameters.get("cloudAccountId");
    let numeric_organization_id: Value = organisation.organization_id.parse::<u64>().map_or_else(
        |_| json!(organisation.organization_id),
        |number| json!(number),
    );
    let items = organisation
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, account)| {
            cloud_account_filter.is_none_or(|wanted| account.provider_external_id == wanted)
        })
        .map(|(index, account)| {
            // The SPEC shows a number, the SDKs a string: serve both.
            let organization_id = if index == 1 {
                numeric_organization_id.clone()
            } else {
                json!(organisation.organization_id)
            };
            json!({
                "accountId": account.id,
                "name": account.name,
                "organizationId": organization_id,
                "cloudProvider": account.cloud.account_provider_name(),
                "providerExternalId": account.provider_external_id,
                "createdAt": iso_timestamp_millis(account.created_at),
            })
        })
        .collect();
    Payload::items("spotinst:setup:account", items)
}

fn tags_json(tags: &[super::org::Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|tag| json!({ "tagKey": tag.key, "tagValue": tag.value }))
            .collect(),
    )
}

fn zones_json(zones: &[String]) -> Value {
    Value::Array(zones.iter().map(|zone| json!({ "name": zone })).collect())
}

/// The groups as of the start of the simulator's today (a capacity changed before then shows).
fn list_groups(organisation: &Organisation, account: &Account, cloud: Cloud) -> Payload {
    let as_of = organisation
        .today()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let kind = match cloud {
        Cloud::Gcp => "spotinst:gcp:gce:group",
        _ => "spotinst:aws:ec2:group",
    };
    if account.cloud != cloud {
        return Payload::items(kind, Vec::new());
    }
    let items = account
        .groups
        .iter()
        .map(|group| match cloud {
            Cloud::Gcp => json!({
                "id": group.id,
                "name": group.name,
                "description": group.description,
                "region": group.region,
                "capacity": { "minimum": group.capacity_minimum, "maximum": organisation.group_capacity(group, as_of).1, "target": organisation.group_capacity(group, as_of).0 },
                "strategy": { "preemptiblePercentage": group.risk_percent, "onDemandCount": group.on_demand_count, "fallbackToOd": group.fallback_to_od },
                "compute": {
                    "instanceTypes": { "ondemand": group.on_demand_type, "preemptible": group.spot_types },
                    "availabilityZones": group.availability_zones,
                    // GCP's `tags` are network tags (bare strings); its labels carry the key-value pairs.
                    "launchSpecification": {
                        "labels": group.tags.iter().map(|tag| json!({ "key": tag.key, "value": tag.value })).collect::<Vec<_>>(),
                        "tags": ["allow-health-checks", "http-server"],
                    },
                },
                "createdAt": iso_timestamp_millis(group.created_at),
                "updatedAt": iso_timestamp_millis(group.updated_at),
            }),
            _ => json!({
                "id": group.id,
                "name": group.name,
                "description": group.description,
                "region": group.region,
                "capacity": {
                    "minimum": group.capacity_minimum,
                    "maximum": organisation.group_capacity(group, as_of).1,
                    "target": organisation.group_capacity(group, as_of).0,
                    "unit": "instance",
                },
                "strategy": {
                    "risk": group.risk_percent,
                    "onDemandCount": group.on_demand_count,
                    "availabilityVsCost": group.availability_vs_cost,
                    "fallbackToOd": group.fallback_to_od,
                    "utilizeReservedInstances": group.utilize_reserved_instances,
                },
                "compute": {
                    "product": group.product,
                    "instanceTypes": {
                        "ondemand": group.on_demand_type,
                        "spot": group.spot_types,
                        "preferredSpot": group.preferred_spot_types,
                    },
                    "availabilityZones": zones_json(&group.availability_zones),
                    "launchSpecification": { "tags": tags_json(&group.tags) },
                },
                "createdAt": iso_timestamp_millis(group.created_at),
                "updatedAt": iso_timestamp_millis(group.updated_at),
            }),
        })
        .collect();
    Payload::items(kind, items)
}

fn emr_scaler_json(scaler: &EmrScaler) -> Value {
    json!({
        "id": scaler.id,
        "name": scaler.name,
        "description": scaler.description,
        "region": scaler.region,
        "strategy": { "new": { "releaseLabel": "emr-6.15.0", "numberOfRetries": 1 } },
        "compute": {
            "availabilityZones": zones_json(&scaler.availability_zones),
            "instanceGroups": {
                "masterGroup": { "instanceTypes": [scaler.master_type], "target": 1, "lifeCycle": "ON_DEMAND" },
                "coreGroup": { "instanceTypes": [scaler.core_type], "target": scaler.core_count, "lifeCycle": "ON_DEMAND" },
                "taskGroup": {
                    "instanceTypes": scaler.task_types,
                    "capacity": { "minimum": scaler.task_minimum, "maximum": scaler.task_maximum, "target": scaler.task_minimum },
                    "lifeCycle": "SPOT",
                },
            },
        },
        "createdAt": offset_timestamp_millis(scaler.created_at),
        "updatedAt": offset_timestamp_millis(scaler.updated_at),
    })
}

fn managed_instance_json(managed: &ManagedInstance) -> Value {
    let life_cycle = match managed.lifecycle {
        Lifecycle::Spot => "spot",
        Lifecycle::OnDemand => "on_demand",
    };
    json!({
        "id": managed.id,
        "createdAt": offset_timestamp_millis(managed.created_at),
        "updatedAt": offset_timestamp_millis(managed.updated_at),
        "config": {
            "name": managed.name,
            "region": managed.region,
            "strategy": {
                "lifeCycle": life_cycle,
                "orientation": managed.orientation,
                "fallbackToOd": managed.fallback_to_od,
                "utilizeReservedInstances": false,
            },
            "compute": {
                "product": managed.product,
                "launchSpecification": {
                    "instanceTypes": { "types": managed.instance_types, "preferredType": managed.preferred_type },
                    "tags": tags_json(&managed.tags),
                },
            },
        },
    })
}

fn potential_savings(organisation: &Organisation, account: &Account, today: NaiveDate) -> Payload {
    let items = organisation
        .potential_savings(&account.id, today)
        .into_iter()
        .map(|saving| {
            json!({
                "resourceType": saving.resource_type,
                "name": saving.name,
                "region": saving.region,
                "instances": saving.instances,
                "instanceTypes": saving.instance_types,
                "potentialSavings": usd_number(saving.monthly_savings),
            })
        })
        .collect();
    Payload::ItemsWithoutRequestOrCount {
        kind: "spotinst:cs:aws:potentialSavings",
        items,
    }
}

fn account_cost_block(totals: &CostTotals) -> Value {
    json!({
        "runningHours": totals.running_hours_milli as f64 / 1000.0,
        "actualCosts": usd_number(totals.actual),
        "potentialCosts": usd_number(totals.potential),
        "savingsPercentage": savings_hundredths_of_percent(totals) as f64 / 100.0,
    })
}

/// `/aws/costs` (daily or one item), `/gcp/gce/costs` and `/azure/costs` (one item): the sum of
/// `account_day` over the window. A route of another cloud than the account's answers `[]`.
fn account_costs(
    organisation: &Organisation,
    account: &Account,
    cloud: Cloud,
    query: &CostQuery,
) -> Payload {
    let (kind, block_name) = match cloud {
        Cloud::Aws => ("spotinst:aws:costs", "spot"),
        Cloud::Gcp => ("spotinst:gcp:costs", "preemptible"),
        Cloud::Azure => ("spotinst:azure:costs", "lowPriority"),
    };
    if account.cloud != cloud {
        return Payload::items(kind, Vec::new());
    }
    if cloud == Cloud::Aws && query.daily {
        let items = query
            .window
            .days()
            .map(|day| {
                let totals = organisation.account_day(&account.id, day);
                json!({ "timestamp": day_timestamp(day), block_name: account_cost_block(&totals) })
            })
            .collect();
        return Payload::items(kind, items);
    }
    let mut totals = CostTotals::default();
    for day in query.window.days() {
        totals += organisation.account_day(&account.id, day);
    }
    Payload::items(
        kind,
        vec![json!({ block_name: account_cost_block(&totals) })],
    )
}

fn audit_events(
    organisation: &Organisation,
    parameters: &QueryParameters,
) -> Result<Payload, ApiError> {
    let parse_milliseconds = |field: &str| -> Result<i64, ApiError> {
        let text = parameters
            .get(field)
            .ok_or_else(|| ApiError::missing(field))?;
        if !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ApiError::validation(
                field,
                format!("\"{field}\" must be epoch milliseconds, got {text:?}"),
            ));
        }
        let milliseconds: i64 = text
            .parse()
            .map_err(|_| ApiError::validation(field, format!("\"{field}\" is out of range")))?;
        let day = DateTime::<Utc>::from_timestamp_millis(milliseconds)
            .ok_or_else(|| ApiError::validation(field, format!("\"{field}\" is out of range")))?
            .date_naive();
        check_plausible_year(field, day)?;
        Ok(milliseconds)
    };
    let from_milliseconds = parse_milliseconds("fromDate")?;
    let to_milliseconds = parse_milliseconds("toDate")?;
    if to_milliseconds <= from_milliseconds {
        return Err(ApiError::validation(
            "toDate",
            "\"toDate\" must be after \"fromDate\"",
        ));
    }
    if to_milliseconds - from_milliseconds > MAXIMUM_COST_WINDOW_DAYS * 86_400_000 {
        return Err(ApiError::validation(
            "toDate",
            format!("the window may span at most {MAXIMUM_COST_WINDOW_DAYS} days"),
        ));
    }
    let only_successes = match parameters.get("responseStatus") {
        None | Some("success") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::validation(
                "responseStatus",
                format!("\"responseStatus\" must be all or success, got {other:?}"),
            ))
        }
    };
    let account_filter = match parameters.get("accountId") {
        Some(_) => Some(resolve_account(organisation, parameters)?.id.clone()),
        None => None,
    };
    let first_day = from_milliseconds.div_euclid(86_400_000);
    let last_day = (to_milliseconds - 1).div_euclid(86_400_000);
    let mut items = Vec::new();
    for day in (first_day..=last_day).map(day_from_number) {
        for event in organisation.audit_events(day) {
            let at = event.created_at.timestamp_millis();
            if at < from_milliseconds || at >= to_milliseconds {
                continue;
            }
            if only_successes && event.response_status != 200 {
                continue;
            }
            if account_filter.is_some() && event.account_id != account_filter {
                continue;
            }
            let resource_id: Value = if !event.resource_id.is_empty()
                && event.resource_id.bytes().all(|byte| byte.is_ascii_digit())
            {
                event
                    .resource_id
                    .parse::<u64>()
                    .map_or_else(|_| json!(event.resource_id), |number| json!(number))
            } else {
                json!(event.resource_id)
            };
            let mut item = json!({
                "user": event.user,
                "namespace": event.namespace,
                "actionType": event.action_type,
                "resourceType": event.resource_type,
                "resourceId": resource_id,
                "createdAt": iso_timestamp_millis(event.created_at),
                "context": event.context_json,
                "source": event.source,
                "agent": event.agent,
                "responseStatus": event.response_status,
            });
            if let (Some(account_id), Some(object)) = (&event.account_id, item.as_object_mut()) {
                object.insert("accountId".to_string(), json!(account_id));
            }
            items.push(item);
        }
    }
    Ok(Payload::items("spotinst:audit", items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_templates_and_ids() {
        assert_eq!(
            match_route("GET", "/aws/ec2/group/sig-1/costs"),
            Some((
                Route::AwsGroupCosts("sig-1".to_string()),
                "/aws/ec2/group/{id}/costs"
            ))
        );
        assert_eq!(
            match_route("GET", "/gcp/gce/costs/").map(|(route, _)| route),
            Some(Route::AccountCosts(Cloud::Gcp))
        );
        assert_eq!(
            match_route("POST", "/ocean/azure/k8s/cluster/o-1/aggregatedCosts")
                .map(|(route, _)| route),
            Some(Route::AggregatedCosts {
                cloud: Cloud::Azure,
                cluster_id: "o-1".to_string(),
                summary_only: false
            })
        );
        assert_eq!(
            match_route("POST", "/ocean/azure/np/cluster/o-1/aggregatedCosts"),
            None
        );
        assert_eq!(match_route("GET", "/aws/costs/extra"), None);
        assert_eq!(match_route("POST", "/aws/ec2/group"), None);
        assert_eq!(
            match_route("POST", "/ocean/o-1/rightSizing/recommendations")
                .map(|(_, template)| template),
            Some("/ocean/{id}/rightSizing/recommendations")
        );
    }

    #[test]
    fn encoded_ids_are_decoded_after_the_path_is_split() {
        assert_eq!(
            match_route("GET", "/aws/ec2/group/sig-1%2F..%2F%00%22%27%3Cb%3E/costs"),
            Some((
                Route::AwsGroupCosts("sig-1/../\0\"'<b>".to_string()),
                "/aws/ec2/group/{id}/costs"
            ))
        );
        assert_eq!(
            match_route(
                "POST",
                "/ocean/o-1%27%22%3Ci%3E%2F../rightSizing/recommendations"
            )
            .map(|(route, _)| route),
            Some(Route::RightsizingRecommendations(
                "o-1'\"<i>/..".to_string()
            ))
        );
        assert_eq!(match_route("GET", "/aws%2Fcosts"), None);
        assert_eq!(match_route("GET", "/aws/ec2/group/sig-1%2/costs"), None);
        assert_eq!(match_route("GET", "/aws/ec2/group/sig-1%+1/costs"), None);
        assert_eq!(match_route("GET", "/aws/ec2/group/%FF/costs"), None);
    }

    #[test]
    fn request_days_accept_dates_milliseconds_and_iso_and_reject_nonsense() {
        let july_first = NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
        assert_eq!(parse_request_day("fromDate", "2024-07-01"), Ok(july_first));
        assert_eq!(
            parse_request_day("fromDate", "1719792000000"),
            Ok(july_first)
        );
        assert_eq!(
            parse_request_day("fromDate", "1719835200000"),
            Ok(july_first)
        );
        assert_eq!(
            parse_request_day("fromDate", "2024-07-01T10:00:00Z"),
            Ok(july_first)
        );
        // Epoch seconds by mistake: 1970.
        let error = parse_request_day("fromDate", "1719792000").unwrap_err();
        assert_eq!(
            (error.status, error.code.as_str(), error.field.as_deref()),
            (400, "ValidationError", Some("fromDate"))
        );
        assert!(parse_request_day("toDate", "July 1st").is_err());
        assert!(parse_request_day("toDate", "99999999999999999999999").is_err());
    }

    #[test]
    fn fixed_point_text_is_exact() {
        assert_eq!(fixed_point_text(268_100, 6, 2), "0.2681");
        assert_eq!(fixed_point_text(6_000_000, 6, 2), "6.00");
        assert_eq!(fixed_point_text(4729, 4, 4), "0.4729");
        assert_eq!(fixed_point_text(130_000, 4, 4), "13.0000");
        assert_eq!(fixed_point_text(-1_500_000, 6, 0), "-1.5");
        assert_eq!(fixed_point_text(7_000_000, 6, 0), "7");
        assert_eq!(fixed_point_text(1, 6, 0), "0.000001");
    }

    #[test]
    fn savings_percentage_is_rounded_to_hundredths() {
        let totals = CostTotals {
            running_hours_milli: 1000,
            actual: Money(268_100),
            potential: Money(1_533_000),
        };
        assert_eq!(savings_hundredths_of_percent(&totals), 8251);
        assert_eq!(savings_hundredths_of_percent(&CostTotals::default()), 0);
    }
}

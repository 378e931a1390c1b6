//! Hostile and malformed API responses: every decoder the extractors use, fed real-shaped
//! responses (taken from the simulator) with one value at a time replaced by something hostile,
//! through the real client against a local server; plus ids that try to leave their path
//! segment, repeated resources and cost keys, non-JSON 200s, and unknown clouds.
//!
//! The property: no panic; a result is either decoded with finite, sane figures or an error that
//! names the JSON path of the bad value (or of an enclosing value).

use crate::support::*;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use chrono::NaiveDate;
use serde_json::{json, Value};
use spotcost::extract::{extract_unit, AccountRef, Dataset, ExtractContext, Unit};
use spotcost::lake::Lake;
use spotcost::sim::{SimConfig, DEFAULT_TOKEN};
use spotcost::spot::types::Cloud;
use spotcost::spot::{DayWindow, SpotClient, SpotError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "act-1";

fn usage_day() -> NaiveDate {
    day("2026-11-01")
}

// ---------------------------------------------------------------------------------------------
// A local server that answers whatever the test says, and records the raw request targets
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Canned {
    /// The first canned answer whose `contains` is in the raw path answers the request.
    contains: String,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    canned: Vec<Canned>,
    /// Raw request targets (path and query, exactly as sent), in order.
    seen: Vec<String>,
}

struct Local {
    url: String,
    script: Arc<Mutex<Script>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Local {
    async fn start() -> Local {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Local {
            url,
            script,
            _server: server,
        }
    }

    /// Replaces every canned answer with `answers` (first match wins) and forgets the requests seen.
    fn answer(&self, answers: Vec<Canned>) {
        let mut script = self.script.lock().unwrap();
        script.canned = answers;
        script.seen.clear();
    }

    fn seen(&self) -> Vec<String> {
        self.script.lock().unwrap().seen.clone()
    }

    fn client(&self) -> Arc<SpotClient> {
        client(&self.url, 1)
    }
}

fn json_200(contains: &str, body: impl Into<Vec<u8>>) -> Canned {
    Canned {
        contains: contains.into(),
        status: 200,
        content_type: "application/json".into(),
        body: body.into(),
    }
}

fn with(contains: &str, status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Canned {
    Canned {
        contains: contains.into(),
        status,
        content_type: content_type.into(),
        body: body.into(),
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let path = request.uri().path().to_owned();
    let canned = {
        let mut script = script.lock().unwrap();
        script.seen.push(target);
        script
            .canned
            .iter()
            .find(|c| path.contains(&c.contains))
            .cloned()
    };
    let canned = canned.unwrap_or_else(|| {
        with(
            "",
            404,
            "application/json",
            r#"{"response":{"status":{"code":404,"message":"Not Found"}}}"#,
        )
    });
    Response::builder()
        .status(StatusCode::from_u16(canned.status).unwrap())
        .header(header::CONTENT_TYPE, canned.content_type)
        .body(Body::from(canned.body))
        .unwrap()
}

fn envelope(items: Value) -> Value {
    json!({
        "request": {"id": "req-1", "url": "/", "method": "GET", "timestamp": "2026-11-02T00:00:00.000Z"},
        "response": {"status": {"code": 200, "message": "OK"}, "kind": "spotinst:test", "items": items, "count": 1}
    })
}

// ---------------------------------------------------------------------------------------------
// Real-shaped samples, from the simulator
// ---------------------------------------------------------------------------------------------

/// Every decoder the extractors use, with what the local server must answer 404 to reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decoder {
    Accounts,
    AwsGroups,
    GcpGroups,
    EmrScalers,
    EmrScalersWrapped,
    GroupSpotCosts,
    GroupDetailedCosts,
    GcpGroupCosts,
    EmrScalerCosts,
    ManagedInstances,
    ManagedInstanceCosts,
    AwsClusters,
    GkeClusters,
    GkeClustersFlat,
    AksClusters,
    AwsNodeGroups,
    GkeNodeGroupsWrapped,
    AksNodeGroups,
    AggregatedCosts,
    RightsizingV2,
    RightsizingV1,
    PotentialSavings,
    AwsAccountCosts,
    GcpAccountCosts,
    AzureAccountCosts,
    AuditEvents,
}

impl Decoder {
    /// Calls the client method the extractors use and shows what it decoded.
    async fn decode(self, client: &SpotClient) -> Result<String, SpotError> {
        let window = DayWindow::new(usage_day());
        let shown = match self {
            Decoder::Accounts => format!("{:?}", client.accounts().await?),
            Decoder::AwsGroups => format!("{:?}", client.groups(ACCOUNT, Cloud::Aws).await?),
            Decoder::GcpGroups => format!("{:?}", client.groups(ACCOUNT, Cloud::Gcp).await?),
            Decoder::EmrScalers | Decoder::EmrScalersWrapped => {
                format!("{:?}", client.emr_scalers(ACCOUNT, Cloud::Aws).await?)
            }
            Decoder::GroupSpotCosts => format!(
                "{:?}",
                client.group_spot_costs(ACCOUNT, "sig-1", window).await?
            ),
            Decoder::GroupDetailedCosts => format!(
                "{:?}",
                client
                    .group_detailed_costs(ACCOUNT, "sig-1", window)
                    .await?
            ),
            Decoder::GcpGroupCosts => format!(
                "{:?}",
                client.gcp_group_costs(ACCOUNT, "sig-1", window).await?
            ),
            Decoder::EmrScalerCosts => format!(
                "{:?}",
                client.emr_scaler_costs(ACCOUNT, "simrs-1", window).await?
            ),
            Decoder::ManagedInstances => {
                format!("{:?}", client.managed_instances(ACCOUNT, Cloud::Aws).await?)
            }
            Decoder::ManagedInstanceCosts => format!(
                "{:?}",
                client
                    .managed_instance_costs(ACCOUNT, "smi-1", window)
                    .await?
            ),
            Decoder::AwsClusters => {
                format!("{:?}", client.ocean_clusters(ACCOUNT, Cloud::Aws).await?)
            }
            Decoder::GkeClusters | Decoder::GkeClustersFlat => {
                format!("{:?}", client.ocean_clusters(ACCOUNT, Cloud::Gcp).await?)
            }
            Decoder::AksClusters => {
                format!("{:?}", client.ocean_clusters(ACCOUNT, Cloud::Azure).await?)
            }
            Decoder::AwsNodeGroups => format!(
                "{:?}",
                client
                    .virtual_node_groups(ACCOUNT, Cloud::Aws, "o-1")
                    .await?
            ),
            Decoder::GkeNodeGroupsWrapped => format!(
                "{:?}",
                client
                    .virtual_node_groups(ACCOUNT, Cloud::Gcp, "o-1")
                    .await?
            ),
            Decoder::AksNodeGroups => format!(
                "{:?}",
                client
                    .virtual_node_groups(ACCOUNT, Cloud::Azure, "o-1")
                    .await?
            ),
            Decoder::AggregatedCosts => format!(
                "{:?}",
                client
                    .aggregated_costs(ACCOUNT, Cloud::Aws, "o-1", window, "namespace")
                    .await?
            ),
            Decoder::RightsizingV2 | Decoder::RightsizingV1 => format!(
                "{:?}",
                client.rightsizing(ACCOUNT, Cloud::Aws, "o-1").await?
            ),
            Decoder::PotentialSavings => {
                format!("{:?}", client.potential_savings(ACCOUNT, Cloud::Aws).await?)
            }
            Decoder::AwsAccountCosts => format!(
                "{:?}",
                client.account_costs(ACCOUNT, Cloud::Aws, window).await?
            ),
            Decoder::GcpAccountCosts => format!(
                "{:?}",
                client.account_costs(ACCOUNT, Cloud::Gcp, window).await?
            ),
            Decoder::AzureAccountCosts => format!(
                "{:?}",
                client.account_costs(ACCOUNT, Cloud::Azure, window).await?
            ),
            Decoder::AuditEvents => format!("{:?}", client.audit_events(window).await?),
        };
        Ok(shown)
    }

    /// How the local server answers: the sample for every path, except a 404 where the client
    /// must fall back (right-sizing v1).
    fn answers(self, body: Vec<u8>) -> Vec<Canned> {
        let mut answers = Vec::new();
        if self == Decoder::RightsizingV1 {
            answers.push(with(
                "/rightSizing/recommendations",
                404,
                "application/json",
                r#"{"response":{"status":{"code":404,"message":"Not Found"}}}"#,
            ));
        }
        answers.push(json_200("/", body));
        answers
    }
}

/// Arrays cut to two elements and `aggregations` to two groups: every shape is still there, and
/// the number of mutated inputs stays small.
fn trim(value: &mut Value, key: Option<&str>) {
    match value {
        Value::Array(items) => {
            items.truncate(2);
            items.iter_mut().for_each(|item| trim(item, None));
        }
        Value::Object(fields) => {
            if key == Some("aggregations") {
                let keep: Vec<String> = fields.keys().take(2).cloned().collect();
                fields.retain(|name, _| keep.contains(name));
            }
            for (name, field) in fields.iter_mut() {
                trim(field, Some(name));
            }
        }
        _ => {}
    }
}

/// The items of a response must be there, or the mutations test nothing.
fn nonempty(decoder: Decoder, mut body: Value) -> (Decoder, Value) {
    let items = body
        .pointer("/response/items")
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        items.as_array().is_some_and(|items| !items.is_empty()),
        "{decoder:?}: the simulator's sample has no items: {body}"
    );
    trim(&mut body, None);
    (decoder, body)
}

async fn samples() -> Vec<(Decoder, Value)> {
    let mut config = SimConfig {
        scale: spotcost::sim::Scale::Medium,
        ..SimConfig::default()
    };
    config.today = Some(usage_day() + chrono::Duration::days(1));
    let server = simulator(config).await;
    let http = reqwest::Client::new();
    let base = server.url();
    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).bearer_auth(DEFAULT_TOKEN);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap()
        }
    };
    let post = |path: String, body: Value| {
        let request = http
            .post(format!("{base}{path}"))
            .bearer_auth(DEFAULT_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap()
        }
    };
    let dates = "fromDate=2026-11-01&toDate=2026-11-02";
    let accounts = get("/setup/account".into()).await;
    let account_of = |provider: &str| -> String {
        accounts["response"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["cloudProvider"].as_str() == Some(provider))
            .and_then(|a| a["accountId"].as_str())
            .unwrap_or_else(|| panic!("no {provider} account"))
            .to_owned()
    };
    let (aws, gcp, azure) = (account_of("AWS"), account_of("GCP"), account_of("AZURE"));
    let first_id = |list: &Value, wrapper: &str| -> String {
        let item = &list["response"]["items"][0];
        item["id"]
            .as_str()
            .or_else(|| item[wrapper]["id"].as_str())
            .unwrap_or_else(|| panic!("no id in {list}"))
            .to_owned()
    };

    let mut samples = vec![nonempty(Decoder::Accounts, accounts.clone())];
    let aws_groups = get(format!("/aws/ec2/group?accountId={aws}")).await;
    let group = first_id(&aws_groups, "group");
    samples.push(nonempty(Decoder::AwsGroups, aws_groups));
    samples.push(nonempty(
        Decoder::GroupSpotCosts,
        get(format!(
            "/aws/ec2/group/{group}/costs?{dates}&aggregationPeriod=daily&accountId={aws}"
        ))
        .await,
    ));
    samples.push(nonempty(
        Decoder::GroupDetailedCosts,
        get(format!(
            "/aws/ec2/group/{group}/costs/detailed?{dates}&aggregationPeriod=daily&accountId={aws}"
        ))
        .await,
    ));
    let gcp_groups = get(format!("/gcp/gce/group?accountId={gcp}")).await;
    let gcp_group = first_id(&gcp_groups, "group");
    samples.push(nonempty(Decoder::GcpGroups, gcp_groups));
    samples.push(nonempty(
        Decoder::GcpGroupCosts,
        get(format!(
            "/gcp/gce/group/{gcp_group}/costs?{dates}&aggregationPeriod=daily&accountId={gcp}"
        ))
        .await,
    ));
    // The first AWS account with EMR scalers and with Managed Instances.
    let aws_ids: Vec<String> = accounts["response"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["cloudProvider"] == "AWS")
        .map(|a| a["accountId"].as_str().unwrap().to_owned())
        .collect();
    let mut scalers = Value::Null;
    let mut scaler_account = String::new();
    for id in &aws_ids {
        let list = get(format!("/aws/emr/mrScaler?accountId={id}")).await;
        if list["response"]["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            scalers = list;
            scaler_account = id.clone();
            break;
        }
    }
    let scaler = first_id(&scalers, "mrScaler");
    let mut wrapped = scalers.clone();
    for item in wrapped["response"]["items"].as_array_mut().unwrap() {
        if item.get("mrScaler").is_none() {
            *item = json!({ "mrScaler": item.clone() });
        }
    }
    samples.push(nonempty(Decoder::EmrScalers, scalers));
    samples.push(nonempty(Decoder::EmrScalersWrapped, wrapped));
    samples.push(nonempty(
        Decoder::EmrScalerCosts,
        get(format!(
            "/aws/emr/mrScaler/{scaler}/costs?{dates}&aggregationPeriod=daily&accountId={scaler_account}"
        ))
        .await,
    ));
    let instances = get(format!("/aws/ec2/managedInstance?accountId={aws}")).await;
    let instance = first_id(&instances, "config");
    samples.push(nonempty(Decoder::ManagedInstances, instances));
    samples.push(nonempty(
        Decoder::ManagedInstanceCosts,
        get(format!(
            "/aws/ec2/managedInstance/{instance}/costs?{dates}&aggregationPeriod=daily&accountId={aws}"
        ))
        .await,
    ));
    let aws_clusters = get(format!("/ocean/aws/k8s/cluster?accountId={aws}")).await;
    let cluster = first_id(&aws_clusters, "cluster");
    samples.push(nonempty(Decoder::AwsClusters, aws_clusters));
    let gke = get(format!("/ocean/gcp/k8s/cluster?accountId={gcp}")).await;
    let mut flat = gke.clone();
    for item in flat["response"]["items"].as_array_mut().unwrap() {
        if let Some(inner) = item.get("cluster").cloned() {
            *item = inner;
        }
    }
    samples.push(nonempty(Decoder::GkeClusters, gke));
    let flat_gke_ids = flat.clone();
    samples.push(nonempty(Decoder::GkeClustersFlat, flat));
    let aks = get(format!("/ocean/azure/np/cluster?accountId={azure}")).await;
    let aks_cluster = first_id(&aks, "cluster");
    samples.push(nonempty(Decoder::AksClusters, aks));
    samples.push(nonempty(
        Decoder::AwsNodeGroups,
        get(format!(
            "/ocean/aws/k8s/launchSpec?oceanId={cluster}&accountId={aws}"
        ))
        .await,
    ));
    let gke_cluster = first_id(&flat_gke_ids, "cluster");
    let mut gke_groups = get(format!(
        "/ocean/gcp/k8s/launchSpec?oceanId={gke_cluster}&accountId={gcp}"
    ))
    .await;
    for item in gke_groups["response"]["items"].as_array_mut().unwrap() {
        *item = json!({ "launchSpec": item.clone() });
    }
    samples.push(nonempty(Decoder::GkeNodeGroupsWrapped, gke_groups));
    samples.push(nonempty(
        Decoder::AksNodeGroups,
        get(format!(
            "/ocean/azure/np/virtualNodeGroup?oceanId={aks_cluster}&accountId={azure}"
        ))
        .await,
    ));
    samples.push(nonempty(
        Decoder::AggregatedCosts,
        post(
            format!("/ocean/aws/k8s/cluster/{cluster}/aggregatedCosts?accountId={aws}"),
            json!({"startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-02T00:00:00Z", "groupBy": "namespace"}),
        )
        .await,
    ));
    samples.push(nonempty(
        Decoder::RightsizingV2,
        post(
            format!("/ocean/{cluster}/rightSizing/recommendations?accountId={aws}"),
            json!({}),
        )
        .await,
    ));
    samples.push(nonempty(
        Decoder::RightsizingV1,
        post(
            format!("/ocean/aws/k8s/cluster/{cluster}/rightSizing/suggestion?accountId={aws}"),
            json!({}),
        )
        .await,
    ));
    samples.push(nonempty(
        Decoder::PotentialSavings,
        get(format!("/aws/potentialSavings?accountId={aws}")).await,
    ));
    samples.push(nonempty(
        Decoder::AwsAccountCosts,
        get(format!(
            "/aws/costs?{dates}&aggregationPeriod=daily&accountId={aws}"
        ))
        .await,
    ));
    samples.push(nonempty(
        Decoder::GcpAccountCosts,
        get(format!("/gcp/gce/costs?{dates}&accountId={gcp}")).await,
    ));
    samples.push(nonempty(
        Decoder::AzureAccountCosts,
        get(format!("/azure/costs?{dates}&accountId={azure}")).await,
    ));
    let from = usage_day()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    samples.push(nonempty(
        Decoder::AuditEvents,
        get(format!(
            "/audit/events?fromDate={from}&toDate={}&responseStatus=all",
            from + 86_399_999
        ))
        .await,
    ));
    server.shutdown().await;
    samples
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

/// A raw JSON token spliced in where this marker string is serialised (`1e999` is valid JSON
/// that no `serde_json::Value` can hold).
const RAW: &str = "\u{1}raw:";

fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1e308),
        json!(-1e308),
        json!("NaN"),
        json!("inf"),
        json!("-0"),
        json!("1e999"),
        json!(""),
        json!("not a number"),
        json!([]),
        json!({}),
        Value::String("x".repeat(100_000)),
        json!("nul\u{0}byte"),
        json!("say \"hi\" 'there'"),
        json!("line one\nline two\r\n"),
        json!("<script>alert(1)</script>"),
        json!("=cmd|' /C calc'!A0"),
        json!("\u{202E}gnp.exe"),
        json!("Infinity"),
        Value::String(format!("{RAW}1e999")),
        Value::String(format!("{RAW}-1e999")),
    ]
}

fn serialise(value: &Value) -> Vec<u8> {
    let text = value.to_string();
    if !text.contains("\\u0001raw:") {
        return text.into_bytes();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("\"\\u0001raw:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "\"\\u0001raw:".len()..];
        let end = after.find('"').unwrap();
        out.push_str(&after[..end]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Every value below the root: (JSON pointer, path as the client names it).
fn paths(value: &Value, pointer: &str, shown: &str, out: &mut Vec<(String, String)>) {
    let children: Vec<(String, String, &Value)> = match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(name, child)| {
                let escaped = name.replace('~', "~0").replace('/', "~1");
                let shown = if shown.is_empty() {
                    name.clone()
                } else {
                    format!("{shown}.{name}")
                };
                (format!("{pointer}/{escaped}"), shown, child)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| {
                (
                    format!("{pointer}/{index}"),
                    format!("{shown}[{index}]"),
                    child,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    for (pointer, shown, child) in children {
        out.push((pointer.clone(), shown.clone()));
        paths(child, &pointer, &shown, out);
    }
}

/// Whether `ancestor` is `path` or encloses it.
fn encloses(ancestor: &str, path: &str) -> bool {
    path == ancestor
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Every finite-looking figure in a decoded value's `Debug` (`Some(12.5)`, `Some(inf)`) that is
/// not finite or beyond ±1e15.
fn insane_numbers(shown: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for (start, _) in shown.match_indices("Some(") {
        let inner = &shown[start + 5..];
        let end = inner.find(')').unwrap_or(inner.len());
        let token = &inner[..end];
        if token.starts_with('"') {
            continue;
        }
        if let Ok(value) = token.parse::<f64>() {
            if !value.is_finite() || value.abs() > 1e15 {
                bad.push(token.to_owned());
            }
        }
    }
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_decoder_survives_every_hostile_value_at_every_path() {
    let started = Instant::now();
    let samples = samples().await;
    let local = Local::start().await;
    let client = local.client();
    let replacements = replacements();
    let mut failures: Vec<String> = Vec::new();
    let (mut inputs, mut decoded, mut refused) = (0usize, 0usize, 0usize);
    for (decoder, sample) in &samples {
        // The unmutated sample decodes, with something in it.
        local.answer(decoder.answers(serialise(sample)));
        let shown = decoder
            .decode(&client)
            .await
            .unwrap_or_else(|e| panic!("{decoder:?}: the simulator's own sample fails: {e}"));
        assert!(shown.len() > 10, "{decoder:?} decoded to {shown}");
        let mut all = Vec::new();
        paths(sample, "", "", &mut all);
        for (pointer, path) in all {
            for (index, replacement) in replacements.iter().enumerate() {
                let mut mutated = sample.clone();
                *mutated.pointer_mut(&pointer).unwrap() = replacement.clone();
                local.answer(decoder.answers(serialise(&mutated)));
                inputs += 1;
                let task_client = Arc::clone(&client);
                let decoder = *decoder;
                let outcome = tokio::spawn(async move { decoder.decode(&task_client).await }).await;
                let what = format!("{decoder:?} with {path} = replacement #{index}");
                match outcome {
                    Err(join_error) => failures.push(format!("{what}: PANIC {join_error}")),
                    Ok(Ok(shown)) => {
                        decoded += 1;
                        let bad = insane_numbers(&shown);
                        if !bad.is_empty() {
                            failures.push(format!("{what}: decoded insane figures {bad:?}"));
                        }
                    }
                    Ok(Err(error)) => {
                        refused += 1;
                        let message = error.to_string();
                        match &error {
                            SpotError::Decode { json_path, .. } => {
                                let at = json_path.split(" (line ").next().unwrap_or(json_path);
                                if !encloses(at, &path) || !message.contains(at) {
                                    failures.push(format!(
                                        "{what}: the error names {at:?}, not the mutated path: {message}"
                                    ));
                                }
                            }
                            _ => failures.push(format!("{what}: not a decode error: {message}")),
                        }
                        if message.len() > 2_000 {
                            failures
                                .push(format!("{what}: a {} byte error message", message.len()));
                        }
                        if message.contains(DEFAULT_TOKEN) {
                            failures.push(format!("{what}: the token is in the error"));
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "hostile decoding: {} decoders, {inputs} mutated inputs ({decoded} decoded, {refused} refused) in {:?}",
        samples.len(),
        started.elapsed()
    );
    assert!(inputs > 5_000, "only {inputs} mutated inputs");
    assert!(
        failures.is_empty(),
        "{} of {inputs} mutated inputs misbehaved; the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Ids that try to leave their path segment
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_never_change_the_request_path() {
    let local = Local::start().await;
    let client = local.client();
    let window = DayWindow::new(usage_day());
    local.answer(vec![json_200("/", envelope(json!([])).to_string())]);

    client
        .group_spot_costs(ACCOUNT, "sig-1/../../setup/account?x=1", window)
        .await
        .unwrap();
    assert_eq!(
        local.seen(),
        vec!["/aws/ec2/group/sig-1%2F..%2F..%2Fsetup%2Faccount%3Fx%3D1/costs?fromDate=2026-11-01&toDate=2026-11-02&aggregationPeriod=daily&accountId=act-1"]
    );

    let hostile = "a b#c%2e%2e?d=1&accountId=act-evil\0\u{202E}/..";
    let encoded = "a%20b%23c%252e%252e%3Fd%3D1%26accountId%3Dact-evil%00%E2%80%AE%2F..";
    local.answer(vec![json_200("/", envelope(json!([])).to_string())]);
    client
        .group_detailed_costs(ACCOUNT, hostile, window)
        .await
        .unwrap();
    client
        .gcp_group_costs(ACCOUNT, hostile, window)
        .await
        .unwrap();
    client
        .emr_scaler_costs(ACCOUNT, hostile, window)
        .await
        .unwrap();
    client
        .managed_instance_costs(ACCOUNT, hostile, window)
        .await
        .unwrap();
    client
        .aggregated_costs(ACCOUNT, Cloud::Gcp, hostile, window, "namespace")
        .await
        .unwrap();
    client
        .rightsizing(ACCOUNT, Cloud::Azure, hostile)
        .await
        .unwrap();
    let paths: Vec<String> = local
        .seen()
        .iter()
        .map(|target| target.split('?').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        vec![
            format!("/aws/ec2/group/{encoded}/costs/detailed"),
            format!("/gcp/gce/group/{encoded}/costs"),
            format!("/aws/emr/mrScaler/{encoded}/costs"),
            format!("/aws/ec2/managedInstance/{encoded}/costs"),
            format!("/ocean/gcp/k8s/cluster/{encoded}/aggregatedCosts"),
            format!("/ocean/{encoded}/rightSizing/recommendations"),
        ]
    );
    // The query is only ever the client's own.
    for target in local.seen() {
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        assert!(!query.contains("act-evil"), "{target}");
        assert_eq!(query.matches("accountId=").count(), 1, "{target}");
    }

    // Ids a URL would normalise away are refused before any request.
    local.answer(vec![json_200("/", envelope(json!([])).to_string())]);
    for id in ["", ".", ".."] {
        let error = client
            .group_spot_costs(ACCOUNT, id, window)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                SpotError::UnsafeId {
                    route: "/aws/ec2/group/{id}/costs",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("/aws/ec2/group/{id}/costs"),
            "{error}"
        );
    }
    assert!(local.seen().is_empty(), "{:?}", local.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_sees_a_hostile_id_as_one_unknown_group() {
    let server = simulator(SimConfig::default()).await;
    let account = server.organisation().accounts[0].id.clone();
    let error = client(&server.url(), 1)
        .group_spot_costs(
            &account,
            "sig-1/../../setup/account?x=1",
            DayWindow::new(usage_day()),
        )
        .await
        .unwrap_err();
    assert!(
        error.status().is_some_and(|s| (400..500).contains(&s)),
        "{error}"
    );
    assert_eq!(server.request_count("/setup/account"), 0);
    assert_eq!(
        server.request_count("sig-1%2F..%2F..%2Fsetup%2Faccount%3Fx%3D1"),
        1
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Non-JSON 200s, tokens in bodies, pagination loops
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_empty_200s_name_the_endpoint_and_what_came_back() {
    let local = Local::start().await;
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body>{}<p>Authorization: Bearer {DEFAULT_TOKEN}</p></body></html>",
        "<div>please wait</div>".repeat(40)
    );
    local.answer(vec![with(
        "/",
        200,
        "text/html; charset=utf-8",
        page.clone(),
    )]);
    let client = client(&local.url, 2);
    let error = client.groups(ACCOUNT, Cloud::Aws).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, SpotError::GaveUp { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(
        message.contains("GET /aws/ec2/group?accountId=act-1")
            && message.contains("200 with a non-JSON body (text/html, ")
            && message.contains(" kB: \"<!DOCTYPE html> <html><head><title>Maintenance"),
        "{message}"
    );
    assert_eq!(local.seen().len(), 2);

    // A body echoing the request's headers never puts the token into an error.
    let echo = format!("Authorization: Bearer {DEFAULT_TOKEN}\nAccept: application/json");
    local.answer(vec![with("/", 200, "text/plain", echo.clone())]);
    let message = client.accounts().await.unwrap_err().to_string();
    assert!(!message.contains(DEFAULT_TOKEN), "{message}");
    assert!(message.contains("Bearer <redacted>"), "{message}");
    local.answer(vec![with("/", 500, "text/plain", echo)]);
    let message = client.accounts().await.unwrap_err().to_string();
    assert!(
        !message.contains(DEFAULT_TOKEN) && message.contains("500"),
        "{message}"
    );
    let json_echo = format!(
        r#"{{"response":{{"items":[{{"accountId":"act-1","createdAt":"Bearer {DEFAULT_TOKEN}"}}]}}}}"#
    );
    local.answer(vec![json_200("/", json_echo)]);
    let message = client.accounts().await.unwrap_err().to_string();
    assert!(!message.contains(DEFAULT_TOKEN), "{message}");
    assert!(
        message.contains("response.items[0].createdAt") && message.contains("<redacted>"),
        "{message}"
    );

    for (body, expect) in [
        ("", "200 with an empty body"),
        ("  \n", "200 with a blank body (3 B)"),
        (
            "Bad Gateway",
            "200 with a non-JSON body (application/json, 11 B: \"Bad Gateway\")",
        ),
    ] {
        local.answer(vec![json_200("/", body)]);
        let message = client
            .potential_savings(ACCOUNT, Cloud::Aws)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("GET /aws/potentialSavings?accountId=act-1 gave up after 2 attempts")
                && message.contains(expect),
            "{body:?}: {message}"
        );
    }

    // The CSV export says the same of an HTML page.
    local.answer(vec![with("/", 200, "text/html", page)]);
    let error = client
        .export_instance_costs(ACCOUNT, DayWindow::new(usage_day()), NoRows)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("POST /insights/instanceCosts/export")
            && error.contains("expected CSV with header id,accountId,")
            && error.contains("but got text/html, ")
            && error.contains(" kB: \"<!DOCTYPE html> <html><head><title>Maintenance")
            && !error.contains(DEFAULT_TOKEN),
        "{error}"
    );
}

#[derive(Debug)]
struct NoRows;

impl spotcost::spot::InstanceCostSink for NoRows {
    fn restart(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn write(&mut self, _rows: Vec<spotcost::spot::types::InstanceCostRow>) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pagination_loop_is_an_error_not_an_endless_walk() {
    let local = Local::start().await;
    let mut body = envelope(json!([{"accountId": "act-1"}]));
    body["response"]["paginationInfo"] = json!({"nextKey": "page-2"});
    local.answer(vec![json_200("/", body.to_string())]);
    let error = tokio::time::timeout(Duration::from_secs(20), local.client().accounts())
        .await
        .expect("the client stops")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("response.paginationInfo.nextKey") && error.contains("page-2"),
        "{error}"
    );
    assert_eq!(local.seen().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Repeats never add up
// ---------------------------------------------------------------------------------------------

fn cost_item(actual: f64) -> Value {
    json!({"timestamp": "2026-11-01T00:00:00.000Z", "running": {"value": 24, "unit": "hours"},
           "savings": {"value": 50, "unit": "percentage"}, "costs": {"actual": actual, "potential": actual * 2.0}})
}

fn detailed_item(instance: &str, spot: bool, actual: f64) -> Value {
    let mut item = cost_item(actual);
    item["instanceId"] = json!(instance);
    item["groupId"] = json!("sig-1");
    item["spotInstanceRequestId"] = if spot { json!("sir-1") } else { json!("") };
    item
}

/// Extracts one dataset's unit for the AWS account on the usage day; the rows it wrote.
async fn extract_aws_unit(
    local: &Local,
    dir: &std::path::Path,
    dataset: Dataset,
) -> Result<u64, String> {
    let context = ExtractContext::new(local.client(), Lake::new(dir), Vec::new());
    let unit = Unit {
        dataset,
        account: Some(AccountRef {
            id: ACCOUNT.into(),
            name: None,
            cloud: Cloud::Aws,
        }),
        day: usage_day(),
    };
    extract_unit(&context, &unit, &[])
        .await
        .map(|written| written.rows)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_listed_twice_and_an_item_repeated_are_counted_once() {
    let local = Local::start().await;
    let group = json!({"id": "sig-1", "name": "web", "region": "us-east-1"});
    let answers = |spot: Value, detailed: Value| {
        vec![
            json_200("/costs/detailed", envelope(detailed).to_string()),
            json_200("/costs", envelope(spot).to_string()),
            json_200(
                "/aws/ec2/group",
                envelope(json!([group, group, {"group": group}])).to_string(),
            ),
            json_200("/aws/emr/mrScaler", envelope(json!([])).to_string()),
        ]
    };
    local.answer(answers(
        json!([cost_item(1.5), cost_item(1.5)]),
        json!([
            detailed_item("i-1", true, 1.5),
            detailed_item("i-2", false, 4.0),
            detailed_item("i-2", false, 4.0),
        ]),
    ));
    let dir = tempfile::tempdir().unwrap();
    extract_aws_unit(&local, dir.path(), Dataset::ElastigroupCosts)
        .await
        .unwrap();
    // One group, so one cost call: the detailed route, whose spot instances give the spot share.
    assert_eq!(
        local.seen().iter().filter(|t| t.contains("/costs")).count(),
        1
    );
    let rows = keyed_numbers(
        &duckdb(),
        &format!(
            "select group_id || '/' || instance_count || '/' || spot_actual_cost_usd || '/' || on_demand_actual_cost_usd, actual_cost_usd from {}",
            dataset_sql(dir.path(), "elastigroup_costs")
        ),
    );
    // The blank spotInstanceRequestId is on-demand, not spot.
    assert_eq!(rows, vec![("sig-1/2/1.5/4.0".to_owned(), 5.5)]);

    // The same instance twice with other figures: refused, naming the instance and both items.
    local.answer(answers(
        json!([cost_item(1.5)]),
        json!([
            detailed_item("i-2", false, 4.0),
            detailed_item("i-2", false, 4.5)
        ]),
    ));
    let error = extract_aws_unit(&local, dir.path(), Dataset::ElastigroupCosts)
        .await
        .unwrap_err();
    assert!(
        error.contains("/aws/ec2/group/sig-1/costs/detailed")
            && error.contains("response.items[1]")
            && error.contains("i-2 at 2026-11-01T00:00:00+00:00")
            && error.contains("response.items[0] and [1]"),
        "{error}"
    );
    // Two different day totals for one group-day on the spot-only route (which extraction no
    // longer needs, but the client still serves): refused too.
    local.answer(answers(
        json!([cost_item(1.5), cost_item(2.5)]),
        json!([detailed_item("i-1", true, 1.5)]),
    ));
    let error = local
        .client()
        .group_spot_costs(ACCOUNT, "sig-1", DayWindow::new(usage_day()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/aws/ec2/group/sig-1/costs?") && error.contains("listed twice"),
        "{error}"
    );
}

fn aggregated(namespaces_json: &str) -> String {
    format!(
        r#"{{"response":{{"items":[{{"result":{{"totalForDuration":{{"startTime":"2026-11-01T00:00:00Z","endTime":"2026-11-02T00:00:00Z",
            "summary":{{"total":3.0,"compute":{{"total":3.0,"headroom":{{"total":0}}}}}},
            "detailedCosts":{{"groupedBy":"namespace","aggregations":{{{namespaces_json}}}}}}}}}}}]}}}}"#
    )
}

fn namespace(name: &str, total: f64) -> String {
    format!(
        r#""{name}":{{"summary":{{"total":{total}}},"resources":[{{"metadata":{{"name":"api","type":"Deployment","namespace":"{name}"}},"total":{total},"compute":{{"total":{total}}}}}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_listed_twice_is_merged_only_when_identical() {
    let local = Local::start().await;
    let client = local.client();
    let window = DayWindow::new(usage_day());
    let call = || client.aggregated_costs(ACCOUNT, Cloud::Aws, "o-1", window, "namespace");

    let same = aggregated(
        &[
            namespace("shop", 1.0),
            namespace("blog", 2.0),
            namespace("shop", 1.0),
        ]
        .join(","),
    );
    local.answer(vec![json_200("/", same)]);
    let total = call().await.unwrap();
    let aggregations = total.detailed_costs.unwrap().aggregations;
    assert_eq!(aggregations.len(), 2);
    assert_eq!(aggregations["shop"].resources.len(), 1);

    let different = aggregated(
        &[
            namespace("shop", 1.0),
            namespace("blog", 2.0),
            namespace("shop", 7.0),
        ]
        .join(","),
    );
    local.answer(vec![json_200("/", different)]);
    let error = call().await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, SpotError::Decode { .. }), "{error:?}");
    assert!(
        message.contains("response.items[0].result.totalForDuration.detailedCosts.aggregations")
            && message.contains("\"shop\" appears twice with different values"),
        "{message}"
    );

    // A workload listed twice within a namespace: once if identical, refused otherwise.
    let resource = r#"{"metadata":{"name":"api","type":"Deployment","namespace":"shop"},"total":1.0,"compute":{"total":1.0}}"#;
    let twice = aggregated(&format!(
        r#""shop":{{"summary":{{"total":1.0}},"resources":[{resource},{resource}]}}"#
    ));
    local.answer(vec![json_200("/", twice)]);
    let total = call().await.unwrap();
    assert_eq!(
        total.detailed_costs.unwrap().aggregations["shop"]
            .resources
            .len(),
        1
    );
    let other = resource.replace("1.0", "2.0");
    let conflicting = aggregated(&format!(
        r#""shop":{{"summary":{{"total":3.0}},"resources":[{resource},{other}]}}"#
    ));
    local.answer(vec![json_200("/", conflicting)]);
    let message = call().await.unwrap_err().to_string();
    assert!(
        message.contains("aggregations.shop.resources[1]")
            && message.contains("shop/Deployment/api"),
        "{message}"
    );

    // A namespace under two values of one label is refused, not a coin toss.
    let by_label = aggregated(&[namespace("payments", 1.0), namespace("search", 2.0)].join(",")).replace(
        r#""search":{"summary":{"total":2},"resources":[{"metadata":{"name":"api","type":"Deployment","namespace":"search"}"#,
        r#""search":{"summary":{"total":2},"resources":[{"metadata":{"name":"api","type":"Deployment","namespace":"payments"}"#,
    );
    local.answer(vec![json_200("/", by_label)]);
    let message = client
        .namespace_labels(ACCOUNT, Cloud::Aws, "o-1", window, "team")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"payments\" is filed under both \"payments\" and \"search\""),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Unknown clouds
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cloud_is_never_read_as_aws() {
    assert_eq!(Cloud::of(Some("ALIBABA")), Cloud::Unknown);
    assert_eq!(Cloud::of(Some("<script>")), Cloud::Unknown);
    assert_eq!(Cloud::of(Some("  ")), Cloud::Aws);
    assert_eq!(Cloud::of(None), Cloud::Aws);
    assert_eq!(Cloud::of(Some("azure")), Cloud::Azure);
    assert_eq!(Cloud::Unknown.as_str(), "unknown");
    for dataset in Dataset::ALL {
        assert!(dataset.applies_to(Cloud::Unknown), "{dataset}");
    }
    let local = Local::start().await;
    local.answer(vec![json_200("/", envelope(json!([])).to_string())]);
    let client = local.client();
    let window = DayWindow::new(usage_day());
    let errors = [
        client.groups(ACCOUNT, Cloud::Unknown).await.map(drop),
        client.emr_scalers(ACCOUNT, Cloud::Unknown).await.map(drop),
        client
            .managed_instances(ACCOUNT, Cloud::Unknown)
            .await
            .map(drop),
        client
            .ocean_clusters(ACCOUNT, Cloud::Unknown)
            .await
            .map(drop),
        client
            .aggregated_costs(ACCOUNT, Cloud::Unknown, "o-1", window, "namespace")
            .await
            .map(drop),
        client
            .rightsizing(ACCOUNT, Cloud::Unknown, "o-1")
            .await
            .map(drop),
        client
            .potential_savings(ACCOUNT, Cloud::Unknown)
            .await
            .map(drop),
        client
            .account_costs(ACCOUNT, Cloud::Unknown, window)
            .await
            .map(drop),
    ];
    for error in errors {
        let error = error.unwrap_err();
        assert!(matches!(error, SpotError::UnknownCloud { .. }), "{error:?}");
        assert!(error.to_string().contains("act-1"), "{error}");
    }
    assert!(local.seen().is_empty(), "{:?}", local.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_groups_are_tied_to_the_cluster_they_name_and_a_missing_listing_holds_nothing_up() {
    let local = Local::start().await;
    let clusters = json_200(
        "/ocean/aws/k8s/cluster",
        envelope(json!([{"id": "o-1", "name": "prod"}, {"id": "o-2", "name": "dev"}])).to_string(),
    );
    // An answer that ignores `oceanId` and lists the account's groups for every cluster.
    local.answer(vec![
        clusters.clone(),
        json_200(
            "/ocean/aws/k8s/launchSpec",
            envelope(json!([
                {"id": "ols-1", "oceanId": "o-1", "name": "general"},
                {"launchSpec": {"id": "ols-2", "oceanId": "o-2", "name": "gpu"}},
            ]))
            .to_string(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        extract_aws_unit(&local, dir.path(), Dataset::OceanVirtualNodeGroups).await,
        Ok(2)
    );
    let rows = keyed_numbers(
        &duckdb(),
        &format!(
            "select cluster_id || '/' || node_group_id || '/' || node_group_name, 1.0 from {} order by all",
            dataset_sql(dir.path(), "ocean_virtual_node_groups")
        ),
    );
    assert_eq!(
        rows,
        vec![
            ("o-1/ols-1/general".to_owned(), 1.0),
            ("o-2/ols-2/gpu".to_owned(), 1.0)
        ]
    );
    assert!(
        local
            .seen()
            .iter()
            .any(|t| t.contains("/ocean/aws/k8s/launchSpec?oceanId=o-2&accountId=")),
        "{:?}",
        local.seen()
    );

    // An API without the listing (404): no rows, and no error.
    local.answer(vec![clusters.clone()]);
    assert_eq!(
        extract_aws_unit(&local, dir.path(), Dataset::OceanVirtualNodeGroups).await,
        Ok(0)
    );

    // A group listed twice with different names is refused, naming the endpoint.
    local.answer(vec![
        clusters,
        json_200(
            "/ocean/aws/k8s/launchSpec",
            envelope(json!([
                {"id": "ols-1", "oceanId": "o-1", "name": "general"},
                {"id": "ols-1", "oceanId": "o-1", "name": "renamed"},
            ]))
            .to_string(),
        ),
    ]);
    let error = extract_aws_unit(&local, dir.path(), Dataset::OceanVirtualNodeGroups)
        .await
        .unwrap_err();
    assert!(
        error.contains("/ocean/aws/k8s/launchSpec") && error.contains("ols-1"),
        "{error}"
    );
}

//! The Spot API client: the only code in spotcost that makes outbound HTTP calls. It owns auth,
//! retries with backoff and jitter, the per-route rate budgets, bounded concurrency, the response
//! envelope and typed errors; callers (extract/) see decoded items or a `SpotError`, never a status code.

mod endpoints;
mod envelope;
mod error;
pub mod lenient;
mod ratelimit;
pub mod types;

pub use endpoints::{DayWindow, InstanceCostBatch, InstanceCostSink};
pub use error::{Endpoint, SpotError};

use bytes::Bytes;
use envelope::{decode_error, decode_items, DecodeFailure, Page};
use ratelimit::{RateBudgets, RateHeaders};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub const DEFAULT_BASE_URL: &str = "https://api.spotinst.io";

/// The API traffic of one piece of work (a dataset for an account), for the run history. Counted
/// through a task-local set by [`with_call_stats`], so endpoints and extractors stay unaware of it.
#[derive(Debug, Default)]
pub struct CallStats {
    /// HTTP requests sent, retries included.
    pub requests: AtomicU64,
    /// Requests that were repeats of a failed one.
    pub retries: AtomicU64,
    /// 429 answers.
    pub rate_limited: AtomicU64,
    /// Calls that finally failed.
    pub errors: AtomicU64,
}

/// A plain copy of [`CallStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CallCounts {
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub errors: u64,
}

impl CallStats {
    pub fn counts(&self) -> CallCounts {
        CallCounts {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

tokio::task_local! {
    static CALL_STATS: Arc<CallStats>;
}

/// Runs `future`, counting the client calls it makes into `stats`.
pub async fn with_call_stats<F: Future>(stats: Arc<CallStats>, future: F) -> F::Output {
    CALL_STATS.scope(stats, future).await
}

fn count_call(counter: impl FnOnce(&CallStats) -> &AtomicU64) {
    let _ = CALL_STATS.try_with(|stats| counter(stats).fetch_add(1, Ordering::Relaxed));
}

/// A bearer token. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Token {
        Token(secret.into().trim().to_owned())
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// How the client reaches Spot and how hard it tries.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub token: Token,
    /// Requests in flight at once, across all routes.
    pub concurrency: usize,
    /// Per attempt, from connect to the last byte.
    pub timeout: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first retry waits about this long; each further retry doubles it, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, token: Token) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            token,
            concurrency: 8,
            timeout: Duration::from_secs(60),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// One call: which route template it belongs to (for rate budgets and logs), its concrete path,
/// its query and its JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: &'static str,
    pub route: &'static str,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<serde_json::Value>,
    /// The account the call is scoped to, for error messages.
    pub account: Option<String>,
}

impl Call {
    pub(crate) fn get(route: &'static str, path: String) -> Call {
        Call {
            method: "GET",
            route,
            path,
            query: Vec::new(),
            body: None,
            account: None,
        }
    }

    pub(crate) fn post(route: &'static str, path: String, body: serde_json::Value) -> Call {
        Call {
            body: Some(body),
            ..Call::get(route, path)
        }
        .with_method("POST")
    }

    fn with_method(mut self, method: &'static str) -> Call {
        self.method = method;
        self
    }

    pub(crate) fn account(mut self, account_id: &str) -> Call {
        self.query.push(("accountId", account_id.to_owned()));
        self.account = Some(account_id.to_owned());
        self
    }

    pub(crate) fn param(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.query.push((name, value.into()));
        self
    }

    fn endpoint(&self) -> Endpoint {
        let mut path = self.path.clone();
        for (index, (name, value)) in self.query.iter().enumerate() {
            path.push(if index == 0 { '?' } else { '&' });
            path.push_str(name);
            path.push('=');
            path.push_str(&percent_encode(value));
        }
        Endpoint {
            method: self.method,
            route: self.route,
            path,
        }
    }
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Why one attempt did not produce a value.
pub(crate) enum Failure {
    /// Worth another attempt: a dropped connection, a cut-off body, a throttle, a server error.
    Transient {
        reason: String,
        wait: Option<Duration>,
    },
    /// Final: nothing a retry can fix.
    Fatal(SpotError),
}

type Consumed<T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send>>;

/// A concurrency permit handed to a response's consumer, which releases it once the body is read
/// (decoding it needs no connection), or keeps it while it streams.
pub(crate) type Permit = Option<OwnedSemaphorePermit>;

pub struct SpotClient {
    http: reqwest::Client,
    base_url: Url,
    config: ClientConfig,
    permits: Arc<Semaphore>,
    budgets: RateBudgets,
    jitter_state: AtomicU64,
}

impl fmt::Debug for SpotClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpotClient")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Checks a base URL: http(s) only, no credentials in it, and plain http only to a loopback host.
pub fn validate_base_url(raw: &str) -> Result<Url, SpotError> {
    let invalid = |reason: &str| SpotError::InvalidBaseUrl {
        url: redact_url(raw),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials do not belong in the URL; set SPOTINST_TOKEN",
        ));
    }
    if url.query().is_some() {
        return Err(invalid("the base URL must not carry a query string"));
    }
    let host = url.host_str().ok_or_else(|| invalid("no host"))?.to_owned();
    match url.scheme() {
        "https" => {}
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false);
            if !loopback {
                return Err(SpotError::InsecureUrl { host });
            }
        }
        other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
    }
    Ok(url)
}

/// A URL with any userinfo and query removed, fit for an error message.
fn redact_url(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        Err(_) => "<unparseable>".to_owned(),
    }
}

impl SpotClient {
    pub fn new(config: ClientConfig) -> Result<SpotClient, SpotError> {
        let base_url = validate_base_url(&config.base_url)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("spotcost/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| SpotError::Client(e.without_url().to_string()))?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Ok(SpotClient {
            http,
            base_url,
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            budgets: RateBudgets::default(),
            jitter_state: AtomicU64::new(seed | 1),
        })
    }

    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// Every item of a JSON route, following `paginationInfo.nextKey` if the route paginates. A
    /// `nextKey` seen before (a server that loops) is an error, not an endless walk.
    pub(crate) async fn items<T: DeserializeOwned + Send + 'static>(
        &self,
        call: Call,
        wrapper: Option<&'static str>,
    ) -> Result<Vec<T>, SpotError> {
        let mut all = Vec::new();
        let mut call = call;
        let mut seen_keys = std::collections::HashSet::new();
        loop {
            if seen_keys.len() >= MAX_PAGES {
                return Err(SpotError::Decode {
                    endpoint: call.endpoint(),
                    json_path: "response.paginationInfo.nextKey".into(),
                    request_id: None,
                    message: format!(
                        "still another page after {MAX_PAGES}; stopping rather than paging forever"
                    ),
                });
            }
            let endpoint = call.endpoint();
            let page: Page<T> = self
                .execute(&call, move |response, permit| {
                    let endpoint = endpoint.clone();
                    Box::pin(async move {
                        let content_type = content_type(&response);
                        let body = read_body(response).await?;
                        drop(permit);
                        decode_items::<T>(&body, wrapper).map_err(|failure| {
                            decode_failure(endpoint, failure, content_type.as_deref(), &body)
                        })
                    })
                })
                .await?;
            tracing::debug!(
                route = call.route,
                request_id = page.request_id.as_deref().unwrap_or("-"),
                items = page.items.len(),
                "decoded"
            );
            all.extend(page.items);
            match page.next_key {
                Some(next_key) if !seen_keys.insert(next_key.clone()) => {
                    return Err(SpotError::Decode {
                        endpoint: call.endpoint(),
                        json_path: "response.paginationInfo.nextKey".into(),
                        request_id: page.request_id,
                        message: format!(
                            "the page key {:?} came back a second time; stopping rather than paging forever",
                            lenient::shorten(&next_key, 80)
                        ),
                    });
                }
                Some(next_key) => {
                    call.query.retain(|(name, _)| *name != "nextKey");
                    call.query.push(("nextKey", next_key));
                }
                None => return Ok(all),
            }
        }
    }

    /// The retry loop: one rate-budget turn and one concurrency permit per attempt; connect errors,
    /// timeouts, 408, 429 and 5xx are retried with exponential backoff and jitter (at least as long
    /// as the route's reset); 401/403 and other 4xx are final.
    pub(crate) async fn execute<T>(
        &self,
        call: &Call,
        mut consume: impl FnMut(reqwest::Response, Permit) -> Consumed<T>,
    ) -> Result<T, SpotError> {
        let endpoint = call.endpoint();
        let mut url = self.base_url.clone();
        url.set_path(&format!(
            "{}{}",
            self.base_url.path().trim_end_matches('/'),
            call.path
        ));
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let method = Method::from_bytes(call.method.as_bytes()).unwrap_or(Method::GET);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            count_call(|s| &s.requests);
            if attempt > 1 {
                count_call(|s| &s.retries);
            }
            // Held until the request is answered or has failed (a probe's turn holds the route).
            let turn = self.budgets.wait_turn(call.method, call.route).await;
            let mut permit = Arc::clone(&self.permits).acquire_owned().await.ok();
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::AUTHORIZATION, self.config.token.bearer())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = &call.body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            let started = std::time::Instant::now();
            let failure = match request.send().await {
                Err(error) => Failure::Transient {
                    reason: describe_transport_error(&error),
                    wait: None,
                },
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status == 429 {
                        count_call(|s| &s.rate_limited);
                    }
                    let rate = RateHeaders::read(response.headers());
                    self.budgets.observe(call.method, call.route, status, rate);
                    if status == 200 {
                        match consume(response, permit.take()).await {
                            Ok(value) => {
                                tracing::debug!(endpoint = %endpoint, attempt, elapsed_ms = started.elapsed().as_millis() as u64, "ok");
                                return Ok(value);
                            }
                            Err(failure) => failure,
                        }
                    } else {
                        let body = read_capped(response, MAX_ERROR_BODY_BYTES)
                            .await
                            .unwrap_or_default();
                        classify_status(&endpoint, call, status, &body, rate)
                    }
                }
            };
            drop(permit);
            drop(turn);
            let (reason, wait) = match failure {
                Failure::Fatal(error) => {
                    count_call(|s| &s.errors);
                    return Err(error.map_response_text(|text| self.redact(text)));
                }
                Failure::Transient { reason, wait } => (self.redact(reason), wait),
            };
            if attempt >= self.config.max_attempts.max(1) {
                count_call(|s| &s.errors);
                return Err(SpotError::GaveUp {
                    endpoint,
                    attempts: attempt,
                    last_error: reason,
                });
            }
            let delay = self.backoff(attempt).max(wait.unwrap_or_default());
            tracing::warn!(
                endpoint = %endpoint,
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                "{reason}; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Removes the token, and anything shaped like a bearer credential, from text that came back
    /// from a server (a misbehaving proxy may echo the request's headers into its body).
    fn redact(&self, text: String) -> String {
        redact_credentials(text, &self.config.token.0)
    }

    /// Exponential backoff with jitter: a random wait between half and all of base × 2^(attempt-1).
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.config.backoff_max);
        let random = self.next_random();
        let fraction = 0.5 + (random >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        ceiling.mul_f64(fraction)
    }

    fn next_random(&self) -> u64 {
        // splitmix64 over an atomic counter: enough to spread retries, no crate needed.
        let mut z = self
            .jitter_state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn classify_status(
    endpoint: &Endpoint,
    call: &Call,
    status: u16,
    body: &[u8],
    rate: RateHeaders,
) -> Failure {
    let info = decode_error(body, status);
    match status {
        401 | 403 => Failure::Fatal(SpotError::Unauthorized {
            endpoint: endpoint.clone(),
            status,
            account: call.account.clone(),
            request_id: info.request_id,
            message: info.message,
        }),
        408 | 429 | 500..=599 => Failure::Transient {
            reason: format!("HTTP {status}: {}", info.message),
            wait: if status == 429 {
                rate.wait()
            } else {
                rate.retry_after
            },
        },
        _ => Failure::Fatal(SpotError::Api {
            endpoint: endpoint.clone(),
            status,
            request_id: info.request_id,
            code: info.code,
            message: info.message,
        }),
    }
}

fn describe_transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the response body was cut off"
    } else {
        "the request failed"
    };
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        detail = format!("{detail}: {inner}");
        source = inner.source();
    }
    // reqwest's Display includes the URL; it carries no token, but keep messages short anyway.
    format!(
        "{kind} ({})",
        detail.replace(
            &error.url().map(|u| u.to_string()).unwrap_or_default(),
            "<url>"
        )
    )
}

/// The most pages one listing may have: none of Spot's cost routes paginates today (§12.5).
const MAX_PAGES: usize = 10_000;

/// The most a JSON response may hold: far above any real Spot answer (a large organisation's
/// detailed costs for a day are tens of MB), far below what would exhaust memory.
const MAX_JSON_BODY_BYTES: usize = 512 << 20;

/// The most of an error body that is read (it is only quoted, shortened, in the message).
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// Replaces `token` (when it is long enough to be one) and every `Bearer <credential>` in `text`.
fn redact_credentials(text: String, token: &str) -> String {
    const MARK: &str = "bearer ";
    let text = if token.len() >= 4 && text.contains(token) {
        text.replace(token, "<redacted>")
    } else {
        text
    };
    let lower = text.to_ascii_lowercase();
    if !lower.contains(MARK) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut position = 0;
    while let Some(found) = lower[position..].find(MARK) {
        let start = position + found + MARK.len();
        let end = lower[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '\\'))
            .map_or(text.len(), |offset| start + offset);
        out.push_str(&text[position..start]);
        if end > start {
            out.push_str("<redacted>");
        }
        position = end;
    }
    out.push_str(&text[position..]);
    out
}

fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Reads a body of at most `limit` bytes; a longer one is an error, not an allocation.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Bytes, Failure> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(Failure::Transient {
            reason: format!(
                "the body announced {} bytes, more than the {limit} spotcost reads",
                response.content_length().unwrap_or_default()
            ),
            wait: None,
        });
    }
    let mut body = bytes::BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(Failure::Transient {
                        reason: format!("the body exceeded the {limit} bytes spotcost reads"),
                        wait: None,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(error) => {
                return Err(Failure::Transient {
                    reason: describe_transport_error(&error),
                    wait: None,
                })
            }
        }
    }
}

async fn read_body(response: reqwest::Response) -> Result<Bytes, Failure> {
    read_capped(response, MAX_JSON_BODY_BYTES).await
}

/// A 200 whose body did not decode. Broken JSON (a cut-off body) and a body that is not JSON at
/// all (an empty body, a proxy's HTML page) are worth a retry, and the message says what came
/// back; a body of the wrong shape is final and names the JSON path.
fn decode_failure(
    endpoint: Endpoint,
    failure: DecodeFailure,
    content_type: Option<&str>,
    body: &[u8],
) -> Failure {
    if failure.is_syntax && body.iter().all(u8::is_ascii_whitespace) {
        Failure::Transient {
            reason: format!("200 with {}", envelope::describe_body(content_type, body)),
            wait: None,
        }
    } else if failure.is_syntax && !envelope::looks_like_json(body) {
        Failure::Transient {
            reason: format!(
                "200 with a non-JSON body ({})",
                envelope::describe_body(content_type, body)
            ),
            wait: None,
        }
    } else if failure.is_syntax {
        Failure::Transient {
            reason: format!(
                "malformed JSON at {}: {}",
                failure.json_path, failure.message
            ),
            wait: None,
        }
    } else {
        Failure::Fatal(SpotError::Decode {
            endpoint,
            json_path: failure.json_path,
            request_id: failure.request_id,
            message: failure.message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(validate_base_url("https://api.spotinst.io").is_ok());
        assert!(validate_base_url("http://127.0.0.1:8080").is_ok());
        assert!(validate_base_url("http://localhost:8080").is_ok());
        assert!(validate_base_url("http://[::1]:8080").is_ok());
        assert!(matches!(
            validate_base_url("http://api.spotinst.io"),
            Err(SpotError::InsecureUrl { .. })
        ));
        assert!(matches!(
            validate_base_url("http://10.0.0.5:80"),
            Err(SpotError::InsecureUrl { .. })
        ));
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_not_echoed() {
        let error = validate_base_url("https://user:s3cret@api.spotinst.io").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        let error = validate_base_url("https://api.spotinst.io/?token=s3cret").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn the_token_is_never_printed() {
        let token = Token::new("s3cret");
        let config = ClientConfig::new("https://api.spotinst.io", token);
        assert!(!format!("{config:?}").contains("s3cret"));
        let client = SpotClient::new(config).unwrap();
        assert!(!format!("{client:?}").contains("s3cret"));
    }

    #[test]
    fn credentials_in_response_text_are_redacted() {
        let redact = |text: &str| redact_credentials(text.to_owned(), "s3cret-token");
        assert_eq!(
            redact("echo: Authorization: Bearer s3cret-token, and s3cret-token again"),
            "echo: Authorization: Bearer <redacted>, and <redacted> again"
        );
        assert_eq!(
            redact("bearer abc\"x\" BEARER def"),
            "bearer <redacted>\"x\" BEARER <redacted>"
        );
        assert_eq!(redact("Bearer "), "Bearer ");
        assert_eq!(redact("nothing here ünïcode"), "nothing here ünïcode");
        assert_eq!(redact_credentials("a b".into(), ""), "a b");
    }

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let mut config = ClientConfig::new("https://api.spotinst.io", Token::new("t"));
        config.backoff_base = Duration::from_millis(100);
        config.backoff_max = Duration::from_millis(1000);
        let client = SpotClient::new(config).unwrap();
        for attempt in 1..10 {
            let ceiling = Duration::from_millis((100u64 << (attempt - 1)).min(1000));
            let delay = client.backoff(attempt);
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "{attempt}: {delay:?}"
            );
        }
    }

    #[test]
    fn endpoints_show_path_and_query_but_no_host() {
        let call = Call::get("/aws/costs", "/aws/costs".into())
            .account("act-1")
            .param("fromDate", "2024-01-01");
        assert_eq!(
            call.endpoint().to_string(),
            "GET /aws/costs?accountId=act-1&fromDate=2024-01-01"
        );
    }
}

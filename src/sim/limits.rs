//! The simulator's misbehaviour: Spot's sliding-window rate limit per (HTTP method × route template), scripted faults that tests queue up, and deterministic random transient faults; nothing here touches HTTP bodies, the routes module turns these decisions into responses.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rng::{mix_u64, SplitMix64};
use super::{FaultResponse, ScriptedFault};

const RATE_WINDOW: Duration = Duration::from_secs(60);
/// What the headers report when the limit is switched off (`rate_limit = 0`).
pub const UNLIMITED_REPORTED_LIMIT: u32 = 1_000_000;

/// The outcome of one request against the rate limit, and the values of the
/// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until a request will be allowed: 0 when not blocked, at least 1 when blocked.
    pub reset_secs: u64,
}

#[derive(Default)]
struct RouteWindow {
    accepted: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// Sliding 60-second windows, one per route key (e.g. `GET /aws/ec2/group/{id}/costs`).
/// Over the limit, requests get 429 until the oldest accepted request leaves the window;
/// every request made while blocked pushes the end of the block to at least one second later.
/// It counts the blocks it starts (each one's first 429) and, apart from those, the requests that
/// arrive while their route is blocked: a client that honours `X-RateLimit-Reset` sends none.
pub struct RateLimiter {
    limit_per_window: u32,
    windows: HashMap<String, RouteWindow>,
    blocks_started: u64,
    requests_while_blocked: u64,
}

fn seconds_until(later: Instant, now: Instant) -> u64 {
    let remaining = later.saturating_duration_since(now);
    let whole_seconds = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
    whole_seconds.max(1)
}

impl RateLimiter {
    pub fn new(limit_per_window: u32) -> RateLimiter {
        RateLimiter {
            limit_per_window,
            windows: HashMap::new(),
            blocks_started: 0,
            requests_while_blocked: 0,
        }
    }

    /// How many blocks (429s answered to a route that was not blocked yet) the limit has started.
    pub fn blocks_started(&self) -> u64 {
        self.blocks_started
    }

    /// How many requests arrived at a route while it was blocked, after the 429 that started the
    /// block and before the reset that 429 announced (or a later one, since each extends it).
    pub fn requests_while_blocked(&self) -> u64 {
        self.requests_while_blocked
    }

    /// Counts a request made at `now` and decides whether it may proceed.
    pub fn check(&mut self, route_key: &str, now: Instant) -> RateDecision {
        let limit = self.limit_per_window;
        if limit == 0 {
            return RateDecision {
                allowed: true,
                limit: UNLIMITED_REPORTED_LIMIT,
                remaining: UNLIMITED_REPORTED_LIMIT,
                reset_secs: 0,
            };
        }
        let window = self.windows.entry(route_key.to_string()).or_default();
        while window
            .accepted
            .front()
            .is_some_and(|accepted_at| now.duration_since(*accepted_at) >= RATE_WINDOW)
        {
            window.accepted.pop_front();
        }
        if let Some(blocked_until) = window.blocked_until {
            if blocked_until > now {
                self.requests_while_blocked += 1;
                let extended = blocked_until.max(now + Duration::from_secs(1));
                window.blocked_until = Some(extended);
                return RateDecision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    reset_secs: seconds_until(extended, now),
                };
            }
            window.blocked_until = None;
        }
        if window.accepted.len() >= limit as usize {
            let oldest = window.accepted.front().copied().unwrap_or(now);
            let frees_at = (oldest + RATE_WINDOW).max(now + Duration::from_secs(1));
            window.blocked_until = Some(frees_at);
            self.blocks_started += 1;
            return RateDecision {
                allowed: false,
                limit,
                remaining: 0,
                reset_secs: seconds_until(frees_at, now),
            };
        }
        window.accepted.push_back(now);
        RateDecision {
            allowed: true,
            limit,
            remaining: limit - window.accepted.len() as u32,
            reset_secs: 0,
        }
    }

    /// The header values for a route without counting a request (for 401s and scripted faults).
    pub fn peek(&self, route_key: &str, now: Instant) -> RateDecision {
        let limit = self.limit_per_window;
        if limit == 0 {
            return RateDecision {
                allowed: true,
                limit: UNLIMITED_REPORTED_LIMIT,
                remaining: UNLIMITED_REPORTED_LIMIT,
                reset_secs: 0,
            };
        }
        let Some(window) = self.windows.get(route_key) else {
            return RateDecision {
                allowed: true,
                limit,
                remaining: limit,
                reset_secs: 0,
            };
        };
        if let Some(blocked_until) = window
            .blocked_until
            .filter(|blocked_until| *blocked_until > now)
        {
            return RateDecision {
                allowed: false,
                limit,
                remaining: 0,
                reset_secs: seconds_until(blocked_until, now),
            };
        }
        let in_window = window
            .accepted
            .iter()
            .filter(|accepted_at| now.duration_since(**accepted_at) < RATE_WINDOW)
            .count() as u32;
        RateDecision {
            allowed: true,
            limit,
            remaining: limit.saturating_sub(in_window),
            reset_secs: 0,
        }
    }
}

/// The scripted faults of a run, each with the number of matching requests it still applies to.
pub struct ScriptedFaultBook {
    entries: Vec<(ScriptedFault, u32)>,
}

impl ScriptedFaultBook {
    pub fn new(scripted_faults: Vec<ScriptedFault>) -> ScriptedFaultBook {
        ScriptedFaultBook {
            entries: scripted_faults
                .into_iter()
                .map(|fault| {
                    let times = fault.times;
                    (fault, times)
                })
                .collect(),
        }
    }

    /// The first fault (in configuration order) that matches this request and still has uses
    /// left; consumes one use.
    pub fn take_match(&mut self, method: &str, path: &str) -> Option<FaultResponse> {
        for (fault, uses_left) in &mut self.entries {
            let method_matches = fault
                .method
                .as_deref()
                .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method));
            if *uses_left > 0 && method_matches && path.contains(&fault.path_contains) {
                *uses_left -= 1;
                return Some(fault.response.clone());
            }
        }
        None
    }
}

/// A transient fault a well-behaved client should retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomFault {
    /// 429 with `X-RateLimit-Reset: 1` (the route is not blocked: the next request may succeed).
    RateLimited,
    /// 500/502/503 with the error envelope.
    ServerErrorEnvelope(u16),
    /// 500/502/503 with a plain-text body.
    ServerErrorPlainText(u16),
    /// The real response, [`SLOW_RESPONSE_DELAY`] late: a timeout for a client whose timeout is
    /// shorter (`timeout_secs = 1`), a slow success for one whose timeout is longer.
    Slow,
    /// Part of the real body, then the connection is aborted.
    TruncatedBody,
    /// HTTP 200 whose JSON stops half-way, with correct framing.
    MalformedBody,
    /// Headers, then the connection is aborted without a body.
    DroppedConnection,
}

/// How late a [`RandomFault::Slow`] response is.
pub const SLOW_RESPONSE_DELAY: Duration = Duration::from_millis(1500);

impl RandomFault {
    /// The kind, for counting: `rate_limited`, `server_error_envelope`, `server_error_plain_text`,
    /// `slow`, `truncated_body`, `malformed_body` or `dropped_connection`.
    pub fn kind(self) -> &'static str {
        match self {
            RandomFault::RateLimited => "rate_limited",
            RandomFault::ServerErrorEnvelope(_) => "server_error_envelope",
            RandomFault::ServerErrorPlainText(_) => "server_error_plain_text",
            RandomFault::Slow => "slow",
            RandomFault::TruncatedBody => "truncated_body",
            RandomFault::MalformedBody => "malformed_body",
            RandomFault::DroppedConnection => "dropped_connection",
        }
    }
}

/// Every [`RandomFault::kind`].
pub const RANDOM_FAULT_KINDS: [&str; 7] = [
    "rate_limited",
    "server_error_envelope",
    "server_error_plain_text",
    "slow",
    "truncated_body",
    "malformed_body",
    "dropped_connection",
];

/// The random faults a simulator has injected, by kind (a 5xx also by status, e.g. `server_error_envelope 503`).
#[derive(Default)]
pub struct FaultTally {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl FaultTally {
    pub fn record(&self, fault: RandomFault) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(fault.kind().to_string()).or_insert(0) += 1;
        if let RandomFault::ServerErrorEnvelope(status)
        | RandomFault::ServerErrorPlainText(status) = fault
        {
            *counts
                .entry(format!("{} {status}", fault.kind()))
                .or_insert(0) += 1;
        }
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Whether request number `sequence` gets a random fault, and which: a pure function of the
/// seed, the sequence number and the rate.
pub fn choose_random_fault(seed: u64, sequence: u64, fault_rate: f64) -> Option<RandomFault> {
    if fault_rate <= 0.0 {
        return None;
    }
    let mut random = SplitMix64::new(mix_u64(mix_u64(seed, 0x6661_756c_7473), sequence));
    if !random.chance(fault_rate) {
        return None;
    }
    let status = *random.pick(&[500u16, 502, 503]);
    Some(match random.next_below(100) {
        0..=19 => RandomFault::RateLimited,
        20..=34 => RandomFault::ServerErrorEnvelope(status),
        35..=49 => RandomFault::ServerErrorPlainText(status),
        50..=64 => RandomFault::Slow,
        65..=79 => RandomFault::TruncatedBody,
        80..=89 => RandomFault::MalformedBody,
        _ => RandomFault::DroppedConnection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_the_limit_then_blocks_until_the_window_frees() {
        let mut limiter = RateLimiter::new(3);
        let start = Instant::now();
        let route = "GET /aws/ec2/group/{id}/costs";
        let remaining: Vec<u32> = (0..3)
            .map(|second| {
                limiter
                    .check(route, start + Duration::from_secs(second))
                    .remaining
            })
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let blocked = limiter.check(route, start + Duration::from_secs(10));
        assert!(!blocked.allowed);
        assert_eq!(blocked.reset_secs, 50);
        // Another route has its own budget.
        assert!(limiter.check("GET /aws/ec2/group", start).allowed);
        // Waiting out the reset lets one request through (one slot has left the window).
        let after_reset = start + Duration::from_secs(60);
        assert!(limiter.check(route, after_reset).allowed);
        assert!(!limiter.check(route, after_reset).allowed);
    }

    #[test]
    fn requests_while_blocked_extend_the_block() {
        let mut limiter = RateLimiter::new(1);
        let start = Instant::now();
        let route = "POST /x";
        assert!(limiter.check(route, start).allowed);
        let first_block = limiter.check(route, start + Duration::from_millis(59_500));
        assert_eq!(first_block.reset_secs, 1);
        // Hammering keeps it blocked past the point where the window alone would have freed.
        let still_blocked = limiter.check(route, start + Duration::from_millis(60_200));
        assert!(!still_blocked.allowed);
        assert!(still_blocked.reset_secs >= 1);
        assert!(
            limiter
                .check(route, start + Duration::from_millis(61_300))
                .allowed
        );
        assert_eq!(
            limiter
                .peek(route, start + Duration::from_millis(61_300))
                .remaining,
            0
        );
    }

    #[test]
    fn blocks_and_requests_while_blocked_are_counted() {
        let mut limiter = RateLimiter::new(2);
        let start = Instant::now();
        let route = "GET /aws/costs";
        assert!(limiter.check(route, start).allowed);
        assert!(limiter.check(route, start).allowed);
        // The first 429 starts a block: counted as a block, not as a request while blocked.
        assert!(!limiter.check(route, start + Duration::from_secs(1)).allowed);
        assert_eq!(
            (limiter.blocks_started(), limiter.requests_while_blocked()),
            (1, 0)
        );
        // Another route is not blocked; this one is, until the window frees at 60 s.
        assert!(limiter.check("GET /azure/costs", start).allowed);
        assert!(
            !limiter
                .check(route, start + Duration::from_secs(30))
                .allowed
        );
        assert_eq!(limiter.requests_while_blocked(), 1);
        // After the reset both slots are free; the third request starts a new block.
        let after_reset = start + Duration::from_secs(61);
        assert!(limiter.check(route, after_reset).allowed);
        assert!(limiter.check(route, after_reset).allowed);
        assert!(!limiter.check(route, after_reset).allowed);
        assert_eq!(
            (limiter.blocks_started(), limiter.requests_while_blocked()),
            (2, 1)
        );
    }

    #[test]
    fn the_fault_tally_counts_every_kind_and_status() {
        let tally = FaultTally::default();
        let mut kinds = std::collections::BTreeSet::new();
        for sequence in 0..2000 {
            if let Some(fault) = choose_random_fault(7, sequence, 0.5) {
                tally.record(fault);
                kinds.insert(fault.kind());
            }
        }
        let counts = tally.counts();
        assert_eq!(kinds.len(), RANDOM_FAULT_KINDS.len(), "{counts:?}");
        assert!(RANDOM_FAULT_KINDS.iter().all(|kind| counts[*kind] > 0));
        let statuses: u64 = [500, 502, 503]
            .iter()
            .map(|status| counts[&format!("server_error_envelope {status}")])
            .sum();
        assert_eq!(statuses, counts["server_error_envelope"]);
    }

    #[test]
    fn unlimited_never_blocks() {
        let mut limiter = RateLimiter::new(0);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(limiter.check("GET /a", now).allowed);
        }
    }

    #[test]
    fn scripted_faults_apply_in_order_for_their_count() {
        let mut book = ScriptedFaultBook::new(vec![
            ScriptedFault {
                method: Some("GET".to_string()),
                path_contains: "/costs".to_string(),
                times: 2,
                response: FaultResponse::Drop,
            },
            ScriptedFault {
                method: None,
                path_contains: "/aws".to_string(),
                times: 1,
                response: FaultResponse::RateLimited { reset_secs: 3 },
            },
        ]);
        assert_eq!(
            book.take_match("POST", "/aws/ec2/group/sig-1/costs"),
            Some(FaultResponse::RateLimited { reset_secs: 3 })
        );
        assert_eq!(
            book.take_match("GET", "/aws/ec2/group/sig-1/costs"),
            Some(FaultResponse::Drop)
        );
        assert_eq!(
            book.take_match("get", "/aws/ec2/group/sig-1/costs"),
            Some(FaultResponse::Drop)
        );
        assert_eq!(book.take_match("GET", "/aws/ec2/group/sig-1/costs"), None);
    }

    #[test]
    fn random_faults_are_deterministic_and_follow_the_rate() {
        let first: Vec<_> = (0..1000)
            .map(|sequence| choose_random_fault(42, sequence, 0.2))
            .collect();
        let second: Vec<_> = (0..1000)
            .map(|sequence| choose_random_fault(42, sequence, 0.2))
            .collect();
        assert_eq!(first, second);
        let faulted = first.iter().filter(|fault| fault.is_some()).count();
        assert!(
            (120..=280).contains(&faulted),
            "{faulted} faults out of 1000"
        );
        assert!((0..1000).all(|sequence| choose_random_fault(42, sequence, 0.0).is_none()));
        assert!((0..1000).all(|sequence| choose_random_fault(42, sequence, 1.0).is_some()));
    }
}

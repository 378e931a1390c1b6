//! One rate budget per (method × route template), shared by every concurrent call, fed by the
//! `X-RateLimit-Remaining` / `X-RateLimit-Reset` headers Spot sends on every response (§12.4).

use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct RouteBudget {
    /// Requests left in the current window, as last reported minus those sent since.
    remaining: Option<u64>,
    /// No request on this route before this instant.
    resume_at: Option<Instant>,
}

/// What a response said about the budget of its route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RateHeaders {
    pub remaining: Option<u64>,
    pub reset: Option<Duration>,
    pub retry_after: Option<Duration>,
}

impl RateHeaders {
    pub(crate) fn read(headers: &HeaderMap) -> RateHeaders {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.trim().parse::<f64>().ok())
                .filter(|value| value.is_finite() && *value >= 0.0)
        };
        RateHeaders {
            remaining: number("x-ratelimit-remaining").map(|v| v as u64),
            reset: number("x-ratelimit-reset").map(Duration::from_secs_f64),
            retry_after: number("retry-after").map(Duration::from_secs_f64),
        }
    }

    /// How long a throttled caller must wait before the route accepts requests again.
    pub(crate) fn wait(&self) -> Option<Duration> {
        match (self.reset, self.retry_after) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// While the budget of a route is exhausted and nobody has said when it resets, callers poll at this pace.
const UNKNOWN_RESET_POLL: Duration = Duration::from_secs(1);
/// A 429 that names no reset time still holds the route back this long.
const MINIMUM_THROTTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct RateBudgets {
    routes: Mutex<HashMap<(&'static str, &'static str), RouteBudget>>,
}

impl RateBudgets {
    /// Waits until the route may take one more request, and counts that request against it.
    pub(crate) async fn wait_turn(&self, method: &'static str, route: &'static str) {
        loop {
            let wait = {
                let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
                let budget = routes.entry((method, route)).or_default();
                let now = Instant::now();
                match budget.resume_at {
                    Some(at) if at > now => at - now,
                    Some(_) => {
                        // The window has reset: the next response tells the new budget.
                        budget.resume_at = None;
                        budget.remaining = None;
                        return;
                    }
                    None => match budget.remaining {
                        Some(0) => {
                            // Spent by calls still in flight: give their responses a moment to
                            // report the reset, then go on without the stale count.
                            budget.resume_at = Some(now + UNKNOWN_RESET_POLL);
                            UNKNOWN_RESET_POLL
                        }
                        Some(left) => {
                            budget.remaining = Some(left - 1);
                            return;
                        }
                        None => return,
                    },
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Records what a response said; a 429 or an exhausted budget holds the route until its reset.
    pub(crate) fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        headers: RateHeaders,
    ) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let budget = routes.entry((method, route)).or_default();
        if let Some(remaining) = headers.remaining {
            budget.remaining = Some(remaining);
        }
        let exhausted = status == 429 || headers.remaining == Some(0);
        if exhausted {
            let mut wait = headers.wait().unwrap_or(MINIMUM_THROTTLE);
            if status == 429 {
                wait = wait.max(MINIMUM_THROTTLE);
            }
            let until = Instant::now() + wait.max(Duration::from_millis(1));
            budget.resume_at = Some(budget.resume_at.map_or(until, |at| at.max(until)));
            // Spot extends a block when a throttled route keeps being called: nothing goes out
            // until the reset.
            budget.remaining = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn headers_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("7"));
        headers.insert("X-RateLimit-Reset", HeaderValue::from_static("3"));
        let read = RateHeaders::read(&headers);
        assert_eq!(read.remaining, Some(7));
        assert_eq!(read.wait(), Some(Duration::from_secs(3)));
        headers.insert("Retry-After", HeaderValue::from_static("5"));
        assert_eq!(
            RateHeaders::read(&headers).wait(),
            Some(Duration::from_secs(5))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_route_waits_for_its_reset_and_others_do_not() {
        let budgets = RateBudgets::default();
        let headers = RateHeaders {
            remaining: Some(0),
            reset: Some(Duration::from_secs(4)),
            retry_after: None,
        };
        budgets.observe("GET", "/a", 200, headers);
        let start = tokio::time::Instant::now();
        budgets.wait_turn("GET", "/b").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        budgets.wait_turn("POST", "/a").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        budgets.wait_turn("GET", "/a").await;
        assert!(
            start.elapsed() >= Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }
}

//! One rate budget per (method × route template), shared by every concurrent call, fed by the
//! `X-RateLimit-Remaining` / `X-RateLimit-Reset` headers Spot sends on every response (§12.4).

use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct RouteBudget {
    /// Requests left in the current window: the lowest count reported since the budget was last
    /// learnt, minus the requests sent since. A response counts only the requests that reached the
    /// server before it, not those still in flight, so a higher count than ours is stale.
    remaining: Option<u64>,
    /// No request on this route before this instant.
    resume_at: Option<Instant>,
    /// While the budget is unknown (a route's first request, or the first after a reset) one
    /// request, this numbered probe, goes alone to learn it; the others wait until a response
    /// answers, or until the probe ends without one (a timeout, a dropped connection).
    probe: Option<u64>,
    /// The server reports no `X-RateLimit-Remaining` on this route: there is no budget to keep.
    unmetered: bool,
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
        // `Duration::from_secs_f64` panics past ~1.8e19 s: clamp first (a hostile `1e308`).
        let seconds =
            |value: f64| Duration::from_secs_f64(value.min(MAX_HEADER_WAIT.as_secs_f64()));
        RateHeaders {
            remaining: number("x-ratelimit-remaining").map(|v| v as u64),
            reset: number("x-ratelimit-reset").map(seconds),
            retry_after: number("retry-after").map(seconds),
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

/// The longest wait a response header can impose. Spot's window is 60 s; a reset beyond this is
/// taken as this, so a garbled header cannot park a run for days (or overflow a `Duration`).
const MAX_HEADER_WAIT: Duration = Duration::from_secs(300);

/// While the budget of a route is exhausted and nobody has said when it resets, callers poll at this pace.
const UNKNOWN_RESET_POLL: Duration = Duration::from_secs(1);
/// A 429 that names no reset time still holds the route back this long.
const MINIMUM_THROTTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct RateBudgets {
    routes: Mutex<HashMap<(&'static str, &'static str), RouteBudget>>,
    /// Woken by every response and every probe that ends, so callers waiting for a probe's
    /// answer go on at once.
    observed: Notify,
    /// The number of the last probe sent.
    probes: AtomicU64,
}

/// A caller's turn on a route, held until its request is answered or has failed. The turn of a
/// probe keeps the route's other callers waiting: a probe that ends without a response (a
/// timeout, a dropped connection) lets the next one learn the budget.
#[must_use = "hold the turn until the request has been answered"]
pub(crate) struct Turn<'a> {
    budgets: &'a RateBudgets,
    route: (&'static str, &'static str),
    probe: Option<u64>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let Some(probe) = self.probe else {
            return;
        };
        let mut routes = self
            .budgets
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(budget) = routes.get_mut(&self.route) {
            if budget.probe == Some(probe) {
                budget.probe = None;
            }
        }
        drop(routes);
        self.budgets.observed.notify_waiters();
    }
}

impl RateBudgets {
    /// Waits until the route may take one more request, and counts that request against it.
    /// Never more requests in flight on a route than its budget has left: while the budget is
    /// unknown, one request learns it and the others wait for its answer.
    pub(crate) async fn wait_turn(&self, method: &'static str, route: &'static str) -> Turn<'_> {
        let key = (method, route);
        let turn = |probe: Option<u64>| Turn {
            budgets: self,
            route: key,
            probe,
        };
        let next_probe = || Some(self.probes.fetch_add(1, Ordering::Relaxed) + 1);
        loop {
            // Registered before the budget is read, so an answer that comes in between still wakes us.
            let observed = self.observed.notified();
            tokio::pin!(observed);
            observed.as_mut().enable();
            let wait = {
                let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
                let budget = routes.entry(key).or_default();
                let now = Instant::now();
                match budget.resume_at {
                    Some(at) if at > now => Some(at - now),
                    Some(_) => {
                        // The window has reset: this request learns the new budget.
                        budget.resume_at = None;
                        budget.remaining = None;
                        budget.probe = next_probe();
                        return turn(budget.probe);
                    }
                    None => match budget.remaining {
                        Some(0) => {
                            // Spent by calls still in flight: give their responses a moment to
                            // report the reset, then go on without the stale count.
                            budget.resume_at = Some(now + UNKNOWN_RESET_POLL);
                            Some(UNKNOWN_RESET_POLL)
                        }
                        Some(left) => {
                            budget.remaining = Some(left - 1);
                            return turn(None);
                        }
                        None if budget.unmetered => return turn(None),
                        // A probe is out: wait for an answer, or for it to end without one.
                        None if budget.probe.is_some() => None,
                        None => {
                            budget.probe = next_probe();
                            return turn(budget.probe);
                        }
                    },
                }
            };
            match wait {
                Some(wait) => tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut observed => {}
                },
                None => (&mut observed).await,
            }
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
        budget.probe = None;
        match headers.remaining {
            Some(reported) => {
                budget.unmetered = false;
                budget.remaining =
                    Some(budget.remaining.map_or(reported, |ours| ours.min(reported)));
            }
            None => budget.unmetered = status != 429,
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
        drop(routes);
        self.observed.notify_waiters();
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

    #[test]
    fn absurd_headers_are_clamped_or_ignored_never_a_panic() {
        for (reset, remaining) in [
            ("1e308", "1e308"),
            ("1e999", "-1"),
            ("NaN", "NaN"),
            ("inf", "18446744073709551616"),
            ("-5", "x"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("X-RateLimit-Reset", HeaderValue::from_static(reset));
            headers.insert("X-RateLimit-Remaining", HeaderValue::from_static(remaining));
            headers.insert("Retry-After", HeaderValue::from_static(reset));
            let read = RateHeaders::read(&headers);
            assert!(
                read.wait().unwrap_or_default() <= MAX_HEADER_WAIT,
                "{reset}"
            );
            RateBudgets::default().observe("GET", "/a", 429, read);
        }
    }

    fn reported(remaining: Option<u64>) -> RateHeaders {
        RateHeaders {
            remaining,
            reset: remaining.map(|_| Duration::ZERO),
            retry_after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_budget_is_learnt_by_one_request_while_the_others_wait() {
        let budgets = std::sync::Arc::new(RateBudgets::default());
        let start = Instant::now();
        let _probe = budgets.wait_turn("GET", "/a").await;
        let second = tokio::spawn({
            let budgets = std::sync::Arc::clone(&budgets);
            async move {
                drop(budgets.wait_turn("GET", "/a").await);
                Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !second.is_finished(),
            "a second request went out before the budget was known"
        );
        budgets.observe("GET", "/a", 200, reported(Some(5)));
        assert_eq!(second.await.unwrap() - start, Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_probe_keeps_the_others_waiting_until_it_is_answered() {
        // The probe's answer takes longer than any timer in here: nothing else may go out on
        // the route before it, or a throttled route would take a request while blocked.
        let budgets = std::sync::Arc::new(RateBudgets::default());
        let probe = budgets.wait_turn("GET", "/a").await;
        let second = tokio::spawn({
            let budgets = std::sync::Arc::clone(&budgets);
            async move { drop(budgets.wait_turn("GET", "/a").await) }
        });
        tokio::time::sleep(UNKNOWN_RESET_POLL * 30).await;
        assert!(
            !second.is_finished(),
            "a second request went out beside the probe"
        );
        budgets.observe("GET", "/a", 200, reported(Some(5)));
        drop(probe);
        second.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_ends_without_an_answer_lets_the_next_one_learn_the_budget() {
        let budgets = std::sync::Arc::new(RateBudgets::default());
        let probe = budgets.wait_turn("GET", "/a").await;
        let second = tokio::spawn({
            let budgets = std::sync::Arc::clone(&budgets);
            async move { budgets.wait_turn("GET", "/a").await.probe.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!second.is_finished());
        // A timeout or a dropped connection: no response, the turn ends.
        drop(probe);
        assert!(
            second.await.unwrap(),
            "the next request goes out as the new probe"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_higher_count_does_not_reopen_a_spent_budget() {
        let budgets = RateBudgets::default();
        drop(budgets.wait_turn("GET", "/a").await);
        budgets.observe("GET", "/a", 200, reported(Some(2)));
        let start = Instant::now();
        drop(budgets.wait_turn("GET", "/a").await);
        drop(budgets.wait_turn("GET", "/a").await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        // Answered before those two reached the server: one left then, none now.
        budgets.observe("GET", "/a", 200, reported(Some(1)));
        drop(budgets.wait_turn("GET", "/a").await);
        assert!(
            start.elapsed() >= UNKNOWN_RESET_POLL,
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_without_rate_headers_is_not_held_back() {
        let budgets = RateBudgets::default();
        drop(budgets.wait_turn("GET", "/a").await);
        budgets.observe("GET", "/a", 200, reported(None));
        let start = Instant::now();
        for _ in 0..10 {
            drop(budgets.wait_turn("GET", "/a").await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
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
        drop(budgets.wait_turn("GET", "/b").await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop(budgets.wait_turn("POST", "/a").await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop(budgets.wait_turn("GET", "/a").await);
        assert!(
            start.elapsed() >= Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }
}

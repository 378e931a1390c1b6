//! Anomaly alerts of `spotcost run`: after the models, the anomalies of the `cost_anomalies` mart
//! that depart by at least `anomaly_alert_usd` and were not alerted before make the run exit with
//! code 3, and are posted as JSON to `anomaly_webhook_url` when one is set.
//!
//! Each anomaly is alerted once: `DIR/state/anomaly_alerts.json` records the ones alerted (and is
//! only written once the webhook took them), so a failed post is retried the next night and a
//! re-run does not alert again. Only the recent days are looked at (the lookback that every run
//! re-reads, plus the newest day), so a first run on years of history does not alert on all of it.
//! The webhook URL usually carries a secret in its path: only its host is ever logged.

use crate::models::{ModelError, Warehouse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a key stays in the record of alerted anomalies, in days before the newest one.
const REMEMBERED_DAYS: i64 = 120;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("reading the anomalies: {0}")]
    Warehouse(#[from] ModelError),
    #[error("posting {count} anomaly alert(s) to the webhook at {host}: {message}")]
    Post {
        count: usize,
        host: String,
        message: String,
    },
    #[error("cannot record the alerted anomalies in {path}: {message}")]
    State { path: PathBuf, message: String },
}

/// When and where `spotcost run` alerts.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// The smallest departure (either way) that alerts, USD.
    pub min_usd: f64,
    pub webhook: Option<reqwest::Url>,
    /// Days before the newest one whose anomalies may still be new (the run's lookback).
    pub recent_days: u32,
}

/// Checks a webhook URL: https, or plain http to a loopback host (a local receiver). Errors name
/// only the scheme and host, never the path that holds the secret.
pub fn webhook_url(raw: &str) -> Result<reqwest::Url, String> {
    let invalid = |reason: String| reason;
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| invalid(format!("not a URL ({e})")))?;
    let host = url
        .host_str()
        .ok_or_else(|| invalid("no host".into()))?
        .to_owned();
    match url.scheme() {
        "https" => Ok(url),
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(url)
            } else {
                Err(invalid(format!(
                    "plain http to {host} would expose the alerts; use https"
                )))
            }
        }
        other => Err(invalid(format!("unsupported scheme {other:?}"))),
    }
}

/// One anomaly as alerted (and posted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    #[serde(serialize_with = "day_text")]
    pub day: NaiveDate,
    pub scope: String,
    pub account_id: String,
    pub cluster_id: Option<String>,
    pub namespace: Option<String>,
    pub expected_usd: f64,
    pub actual_usd: f64,
    pub delta_usd: f64,
    pub cause: Option<String>,
}

fn day_text<S: serde::Serializer>(day: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(day)
}

impl Alert {
    /// What identifies the anomaly across runs.
    fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.day,
            self.scope,
            self.account_id,
            self.cluster_id.as_deref().unwrap_or(""),
            self.namespace.as_deref().unwrap_or("")
        )
    }

    /// One line for the log and the webhook's text.
    pub fn describe(&self) -> String {
        let place = match (&self.cluster_id, &self.namespace) {
            (Some(cluster), Some(namespace)) => {
                format!(
                    "namespace {namespace} in cluster {cluster} ({})",
                    self.account_id
                )
            }
            _ => format!("account {}", self.account_id),
        };
        let mut line = format!(
            "{}: {place} cost {:.2} USD against {:.2} expected ({:+.2})",
            self.day, self.actual_usd, self.expected_usd, self.delta_usd
        );
        if let Some(cause) = &self.cause {
            line.push_str("; ");
            line.push_str(cause);
        }
        line
    }
}

/// `DIR/state/anomaly_alerts.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Alerted {
    keys: BTreeSet<String>,
}

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("anomaly_alerts.json")
}

/// The anomalies of the warehouse in `data_dir` that should alert and have not yet.
pub fn pending(data_dir: &Path, settings: &AlertSettings) -> Result<Vec<Alert>, AlertError> {
    let warehouse = Warehouse::open_read_only(data_dir)?;
    let sql = format!(
        "select day::varchar, scope, account_id, cluster_id, namespace, expected_usd, actual_usd, delta_usd, cause \
         from cost_anomalies \
         where abs(delta_usd) >= {min} \
         and day >= (select max(day) from cost_anomalies) - interval {days} day \
         order by abs(delta_usd) desc, day, scope, account_id, cluster_id, namespace",
        min = settings.min_usd,
        days = settings.recent_days,
    );
    let alerted = read_state(data_dir);
    let mut alerts = Vec::new();
    for batch in warehouse.query_arrow(&sql)? {
        let text = |column: usize, row: usize| -> Option<String> {
            let array = batch.column(column);
            (!arrow::array::Array::is_null(array, row)).then(|| {
                arrow::util::display::array_value_to_string(array, row).unwrap_or_default()
            })
        };
        let number = |column: usize, row: usize| -> f64 {
            text(column, row)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0.0)
        };
        for row in 0..batch.num_rows() {
            let Some(day) =
                text(0, row).and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok())
            else {
                continue;
            };
            let alert = Alert {
                day,
                scope: text(1, row).unwrap_or_default(),
                account_id: text(2, row).unwrap_or_default(),
                cluster_id: text(3, row),
                namespace: text(4, row),
                expected_usd: number(5, row),
                actual_usd: number(6, row),
                delta_usd: number(7, row),
                cause: text(8, row),
            };
            if !alerted.keys.contains(&alert.key()) {
                alerts.push(alert);
            }
        }
    }
    Ok(alerts)
}

fn read_state(data_dir: &Path) -> Alerted {
    std::fs::read(state_path(data_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Records `alerts` as alerted, forgetting keys older than anyone will alert on again.
pub fn mark_alerted(data_dir: &Path, alerts: &[Alert]) -> Result<(), AlertError> {
    let path = state_path(data_dir);
    let mut state = read_state(data_dir);
    state.keys.extend(alerts.iter().map(Alert::key));
    if let Some(newest) = alerts.iter().map(|a| a.day).max() {
        let oldest = (newest - chrono::Duration::days(REMEMBERED_DAYS)).to_string();
        state.keys.retain(|key| key.as_str() >= oldest.as_str());
    }
    let error = |message: String| AlertError::State {
        path: path.clone(),
        message,
    };
    let bytes = serde_json::to_vec_pretty(&state).map_err(|e| error(e.to_string()))?;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(|e| error(e.to_string()))?;
    }
    crate::lake::state::write_atomically(&path, &bytes).map_err(|e| error(e.to_string()))
}

/// Posts the alerts as `{"text": …, "anomalies": […]}` (the `text` field reads in Slack and
/// Teams-style incoming webhooks; the list is for anything else).
pub async fn post(url: &reqwest::Url, alerts: &[Alert], min_usd: f64) -> Result<(), AlertError> {
    let host = url.host_str().unwrap_or("?").to_owned();
    let failed = |message: String| AlertError::Post {
        count: alerts.len(),
        host: host.clone(),
        message,
    };
    let mut text = format!(
        "spotcost: {} new cost anomal{} of at least {min_usd:.2} USD",
        alerts.len(),
        if alerts.len() == 1 { "y" } else { "ies" }
    );
    for alert in alerts {
        text.push_str("\n- ");
        text.push_str(&alert.describe());
    }
    let body = serde_json::to_vec(&serde_json::json!({ "text": text, "anomalies": alerts }))
        .map_err(|e| failed(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        // reqwest's errors print the URL; only its kind is kept.
        .map_err(|e| failed(describe_request_error(&e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(failed(format!("HTTP {status}")))
    }
}

fn describe_request_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_https_or_loopback_and_errors_hide_the_path() {
        assert!(webhook_url("https://hooks.example.com/services/T1/B2/secret").is_ok());
        assert!(webhook_url("http://127.0.0.1:9000/hook").is_ok());
        let error = webhook_url("http://hooks.example.com/services/T1/B2/secret")
            .unwrap_err()
            .to_string();
        assert!(error.contains("hooks.example.com"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(webhook_url("ftp://example.com/x").is_err());
    }

    #[test]
    fn an_alerted_anomaly_is_remembered_and_old_keys_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let alert = |day: &str| Alert {
            day: NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
            scope: "account".into(),
            account_id: "act-1".into(),
            cluster_id: None,
            namespace: None,
            expected_usd: 10.0,
            actual_usd: 30.0,
            delta_usd: 20.0,
            cause: None,
        };
        mark_alerted(dir.path(), &[alert("2026-01-01")]).unwrap();
        assert!(read_state(dir.path())
            .keys
            .contains(&alert("2026-01-01").key()));
        mark_alerted(dir.path(), &[alert("2026-11-01")]).unwrap();
        let keys = read_state(dir.path()).keys;
        assert!(!keys.contains(&alert("2026-01-01").key()));
        assert!(keys.contains(&alert("2026-11-01").key()));
    }
}

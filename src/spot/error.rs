//! `SpotError`: every way a call to the Spot API can fail, with the endpoint, status, Spot request id
//! and the API's own error code and message. No variant ever carries a token or an Authorization header.

use std::fmt;

/// The route template and concrete path of one call, e.g. `GET /aws/ec2/group/{id}/costs` and
/// `/aws/ec2/group/sig-1/costs?fromDate=…`. The base URL and the token are never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: &'static str,
    pub route: &'static str,
    pub path: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpotError {
    #[error("the Spot API refused the token ({status}) for {endpoint}{}: {message}; check SPOTINST_TOKEN and that the token may read this account", account_note(.account))]
    Unauthorized {
        endpoint: Endpoint,
        status: u16,
        account: Option<String>,
        request_id: Option<String>,
        message: String,
    },

    #[error("{endpoint} failed with HTTP {status}{}: {code}: {message}", request_note(.request_id))]
    Api {
        endpoint: Endpoint,
        status: u16,
        request_id: Option<String>,
        code: String,
        message: String,
    },

    #[error("{endpoint} gave up after {attempts} attempts: {last_error}")]
    GaveUp {
        endpoint: Endpoint,
        attempts: u32,
        last_error: String,
    },

    #[error("{endpoint} returned a body that could not be decoded at `{json_path}`{}: {message}", request_note(.request_id))]
    Decode {
        endpoint: Endpoint,
        json_path: String,
        request_id: Option<String>,
        message: String,
    },

    #[error("refusing to send the Spot token over plain http to {host}: use https, or a loopback address for a local simulator")]
    InsecureUrl { host: String },

    #[error("invalid Spot API base URL {url:?}: {reason}")]
    InvalidBaseUrl { url: String, reason: String },

    #[error("could not build the HTTP client: {0}")]
    Client(String),

    #[error("{endpoint}: writing the streamed response failed: {message}")]
    Sink { endpoint: Endpoint, message: String },
}

fn account_note(account: &Option<String>) -> String {
    match account {
        Some(account) => format!(" (account {account})"),
        None => String::new(),
    }
}

fn request_note(request_id: &Option<String>) -> String {
    match request_id {
        Some(id) => format!(" (Spot request id {id})"),
        None => String::new(),
    }
}

impl SpotError {
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            SpotError::Unauthorized { endpoint, .. }
            | SpotError::Api { endpoint, .. }
            | SpotError::GaveUp { endpoint, .. }
            | SpotError::Decode { endpoint, .. }
            | SpotError::Sink { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }

    /// The HTTP status the API answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            SpotError::Unauthorized { status, .. } | SpotError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

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

    /// An id from the API that cannot be one URL path segment (empty, `.` or `..`): sending it
    /// would call another route. Every other id is percent-encoded as a single segment.
    #[error("refusing to call {route} for the id {id:?}: an empty, `.` or `..` id cannot name one resource in a URL path")]
    UnsafeId { route: &'static str, id: String },

    /// The account's `cloudProvider` is none of AWS, GCP and Azure, so spotcost does not know its routes.
    #[error("account {account} has a cloud provider spotcost does not know (its raw value is the accounts dataset's `cloud_provider`), so its {what} cannot be read; exclude the account (exclude_accounts) until spotcost supports that cloud")]
    UnknownCloud { account: String, what: &'static str },
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
    /// Applies `edit` to every text that came from a response (messages, codes, paths), e.g. to
    /// redact a token a misbehaving server echoed back.
    pub(crate) fn map_response_text(self, edit: impl Fn(String) -> String) -> SpotError {
        match self {
            SpotError::Unauthorized {
                endpoint,
                status,
                account,
                request_id,
                message,
            } => SpotError::Unauthorized {
                endpoint,
                status,
                account,
                request_id: request_id.map(&edit),
                message: edit(message),
            },
            SpotError::Api {
                endpoint,
                status,
                request_id,
                code,
                message,
            } => SpotError::Api {
                endpoint,
                status,
                request_id: request_id.map(&edit),
                code: edit(code),
                message: edit(message),
            },
            SpotError::GaveUp {
                endpoint,
                attempts,
                last_error,
            } => SpotError::GaveUp {
                endpoint,
                attempts,
                last_error: edit(last_error),
            },
            SpotError::Decode {
                endpoint,
                json_path,
                request_id,
                message,
            } => SpotError::Decode {
                endpoint,
                json_path: edit(json_path),
                request_id: request_id.map(&edit),
                message: edit(message),
            },
            SpotError::Sink { endpoint, message } => SpotError::Sink {
                endpoint,
                message: edit(message),
            },
            other => other,
        }
    }

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

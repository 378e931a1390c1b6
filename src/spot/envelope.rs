//! The Spot response envelope: `{request, response: {status, kind, items, count}}` on success and
//! `{request, response: {status, errors}}` on failure, decoded leniently (§0, §12.1, §12.2).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// One decoded page of `response.items`.
#[derive(Debug)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub request_id: Option<String>,
    /// `response.paginationInfo.nextKey`, when a route paginates.
    pub next_key: Option<String>,
}

/// Why a 200 body could not be decoded. A syntax error (a cut-off or garbled body) is worth a retry;
/// a shape error is not, and names the JSON path that failed.
#[derive(Debug)]
pub(crate) struct DecodeFailure {
    pub is_syntax: bool,
    pub json_path: String,
    pub message: String,
    pub request_id: Option<String>,
}

/// The parts of an error envelope worth reporting. Missing parts fall back to the HTTP status
/// (a real 401 carries only `response.status`), and a non-JSON body is kept as text.
#[derive(Debug, Default)]
pub(crate) struct ErrorInfo {
    pub request_id: Option<String>,
    pub code: String,
    pub message: String,
}

fn request_id(root: &Value) -> Option<String> {
    root.pointer("/request/id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Decodes `response.items` into `T`. `items` may be an array or a single object; each item may be
/// wrapped in `{ "<wrapper>": { … } }` (the GKE cluster list, EMR scalers, the Managed Instance
/// `config`), in which case the wrapped fields are lifted next to the item's own.
pub(crate) fn decode_items<T: DeserializeOwned>(
    body: &[u8],
    wrapper: Option<&str>,
) -> Result<Page<T>, DecodeFailure> {
    let root: Value = serde_json::from_slice(body).map_err(|error| DecodeFailure {
        is_syntax: true,
        json_path: format!("line {} column {}", error.line(), error.column()),
        message: error.to_string(),
        request_id: None,
    })?;
    let request_id = request_id(&root);
    let shape_error = |json_path: &str, message: &str| DecodeFailure {
        is_syntax: false,
        json_path: json_path.to_owned(),
        message: message.to_owned(),
        request_id: request_id.clone(),
    };
    let response = root
        .get("response")
        .ok_or_else(|| shape_error("response", "the body has no `response` object"))?;
    let next_key = response
        .pointer("/paginationInfo/nextKey")
        .and_then(Value::as_str)
        .filter(|key| !key.is_empty())
        .map(str::to_owned);
    let items = match response.get("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(object @ Value::Object(_)) => vec![object.clone()],
        Some(_) => {
            return Err(shape_error(
                "response.items",
                "expected an array or an object",
            ))
        }
    };
    let items: Vec<Value> = match wrapper {
        Some(key) => items
            .into_iter()
            .map(|item| lift_wrapper(item, key))
            .collect(),
        None => items,
    };
    let decoded: Vec<T> =
        serde_path_to_error::deserialize(Value::Array(items)).map_err(|error| {
            let inner = error.path().to_string();
            let json_path = if inner == "." || inner.is_empty() {
                "response.items".to_owned()
            } else if inner.starts_with('[') {
                format!("response.items{inner}")
            } else {
                format!("response.items.{inner}")
            };
            shape_error(&json_path, &error.into_inner().to_string())
        })?;
    Ok(Page {
        items: decoded,
        request_id,
        next_key,
    })
}

/// `{"cluster": {...}, "x": 1}` becomes `{..., "x": 1}`; fields already on the item win.
fn lift_wrapper(item: Value, key: &str) -> Value {
    match item {
        Value::Object(mut fields) => {
            if let Some(Value::Object(inner)) = fields.remove(key) {
                for (name, value) in inner {
                    fields.entry(name).or_insert(value);
                }
            }
            Value::Object(fields)
        }
        other => other,
    }
}

/// Reads an error body: the envelope's `errors[0]` when present, else `response.status.message`,
/// else the raw text (trimmed and shortened).
pub(crate) fn decode_error(body: &[u8], status: u16) -> ErrorInfo {
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            text.chars().take(300).collect()
        };
        return ErrorInfo {
            request_id: None,
            code: format!("HTTP_{status}"),
            message,
        };
    };
    let response = root.get("response");
    let first_error = response
        .and_then(|r| r.get("errors"))
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    let text_of = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let code = text_of(first_error.and_then(|e| e.get("code")))
        .unwrap_or_else(|| format!("HTTP_{status}"));
    let mut message = text_of(first_error.and_then(|e| e.get("message")))
        .or_else(|| text_of(response.and_then(|r| r.get("data"))))
        .or_else(|| text_of(response.and_then(|r| r.pointer("/status/message"))))
        .unwrap_or_else(|| format!("HTTP {status}"));
    if let Some(field) = text_of(first_error.and_then(|e| e.get("field"))) {
        message = format!("{message} (field {field})");
    }
    ErrorInfo {
        request_id: request_id(&root),
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Item {
        id: String,
        #[serde(default)]
        name: Option<String>,
    }

    #[test]
    fn items_may_be_an_object_and_wrapped() {
        let body = br#"{"response":{"items":{"cluster":{"id":"o-1","name":"gke"}}}}"#;
        let page: Page<Item> = decode_items(body, Some("cluster")).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, "o-1");
        assert_eq!(page.items[0].name.as_deref(), Some("gke"));
        assert_eq!(page.request_id, None);
    }

    #[test]
    fn a_shape_error_names_the_json_path() {
        let body = br#"{"request":{"id":"req-9"},"response":{"items":[{"id":"a"},{"id":7}]}}"#;
        let failure = decode_items::<Item>(body, None).unwrap_err();
        assert!(!failure.is_syntax);
        assert_eq!(failure.json_path, "response.items[1].id");
        assert_eq!(failure.request_id.as_deref(), Some("req-9"));
    }

    #[test]
    fn a_cut_off_body_is_a_syntax_error() {
        let failure = decode_items::<Item>(br#"{"response":{"items":[{"id":"a"#, None).unwrap_err();
        assert!(failure.is_syntax);
    }

    #[test]
    fn error_envelopes_with_and_without_errors() {
        let info = decode_error(
            br#"{"request":{"id":"r1"},"response":{"status":{"code":400},"errors":[{"code":"GROUP_DOESNT_EXIST","message":"no such group","field":"groupId"}]}}"#,
            400,
        );
        assert_eq!(info.code, "GROUP_DOESNT_EXIST");
        assert_eq!(info.message, "no such group (field groupId)");
        assert_eq!(info.request_id.as_deref(), Some("r1"));
        let info = decode_error(
            br#"{"response":{"status":{"code":401,"message":"Unauthorized"}}}"#,
            401,
        );
        assert_eq!(
            (info.code.as_str(), info.message.as_str()),
            ("HTTP_401", "Unauthorized")
        );
        let info = decode_error(b"Bad Request", 400);
        assert_eq!(info.message, "Bad Request");
    }
}

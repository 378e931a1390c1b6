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

/// `request.id`, for messages: shortened, and escaped if it holds control characters.
fn request_id(root: &Value) -> Option<String> {
    let id = root.pointer("/request/id").and_then(Value::as_str)?;
    let id = super::lenient::shorten(id.trim(), 100);
    if id.is_empty() {
        None
    } else if id.chars().any(char::is_control) {
        Some(id.escape_debug().to_string())
    } else {
        Some(id)
    }
}

/// Parses a 200 body into a JSON tree, strictly: a key repeated within one object is accepted only
/// when every repeat carries the same value (kept once); repeats that differ are a shape error
/// naming the object's path and the key, since taking either would silently drop or double a
/// figure. A number beyond `f64` (`1e999`) is a shape error naming its path too: syntactically valid
/// JSON that no retry will change. A leading UTF-8 byte-order mark is skipped.
pub(crate) fn parse_root(body: &[u8]) -> Result<Value, DecodeFailure> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize::<_, StrictValue>(&mut deserializer)
        .map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            json_failure(&path, &inner)
        })
        .and_then(|value| {
            deserializer
                .end()
                .map(|()| value.0)
                .map_err(|error| json_failure(".", &error))
        })?;
    Ok(parsed)
}

fn json_failure(path: &str, error: &serde_json::Error) -> DecodeFailure {
    use serde_json::error::Category;
    let out_of_range = error.to_string().starts_with("number out of range");
    let is_syntax = match error.classify() {
        Category::Io | Category::Eof => true,
        Category::Syntax => !out_of_range,
        Category::Data => false,
    };
    let at = format!("line {} column {}", error.line(), error.column());
    let json_path = if path == "." || path.is_empty() {
        at
    } else {
        format!("{path} ({at})")
    };
    let message = if out_of_range {
        "a number too large for a 64-bit float".to_owned()
    } else {
        let text = error.to_string();
        // serde_json appends the position, which the path already shows.
        let text = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(head, _)| head);
        shorten_message(text)
    };
    DecodeFailure {
        is_syntax,
        json_path,
        message,
        request_id: None,
    }
}

/// Error messages may quote a value from the body (a 100 kB string): keep them readable.
fn shorten_message(message: &str) -> String {
    super::lenient::shorten(message, 300)
}

/// A `serde_json::Value` built by a visitor that refuses conflicting repeated keys.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a non-finite number"))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(StrictValue(value)) = seq.next_element()? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            match fields.get(&key) {
                Some(earlier) if *earlier != value => {
                    return Err(serde::de::Error::custom(format!(
                        "the key {:?} appears twice with different values; refusing to pick one",
                        super::lenient::shorten(&key, 80)
                    )));
                }
                Some(_) => {}
                None => {
                    fields.insert(key, value);
                }
            }
        }
        Ok(Value::Object(fields))
    }
}

/// Decodes `response.items` into `T`. `items` may be an array or a single object; each item may be
/// wrapped in `{ "<wrapper>": { … } }` (the GKE cluster list, EMR scalers, the Managed Instance
/// `config`), in which case the wrapped fields are lifted next to the item's own (and an error in
/// one of them names its path inside the wrapper).
pub(crate) fn decode_items<T: DeserializeOwned>(
    body: &[u8],
    wrapper: Option<&str>,
) -> Result<Page<T>, DecodeFailure> {
    let mut root = parse_root(body)?;
    let request_id = request_id(&root);
    let shape_error = |json_path: &str, message: &str| DecodeFailure {
        is_syntax: false,
        json_path: json_path.to_owned(),
        message: shorten_message(message),
        request_id: request_id.clone(),
    };
    let response = match root.get("response") {
        Some(response @ Value::Object(_)) => response,
        Some(_) => return Err(shape_error("response", "expected an object")),
        None => return Err(shape_error("response", "the body has no `response` object")),
    };
    let next_key = match response.pointer("/paginationInfo/nextKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()).filter(|key| !key.trim().is_empty()),
        Some(_) => {
            return Err(shape_error(
                "response.paginationInfo.nextKey",
                "expected a string",
            ))
        }
    };
    // Taken out of the parsed body rather than cloned: a cluster's cost tree is a large value.
    let items = root
        .get_mut("response")
        .and_then(|response| response.get_mut("items"))
        .map(Value::take);
    let (items, single) = match items {
        None | Some(Value::Null) => (Vec::new(), false),
        Some(Value::Array(items)) => (items, false),
        Some(object @ Value::Object(_)) => (vec![object], true),
        Some(_) => {
            return Err(shape_error(
                "response.items",
                "expected an array or an object",
            ))
        }
    };
    let mut lifted: Vec<Vec<String>> = Vec::new();
    let items: Vec<Value> = match wrapper {
        Some(key) => items
            .into_iter()
            .map(|item| {
                let (item, names) = lift_wrapper(item, key);
                lifted.push(names);
                item
            })
            .collect(),
        None => items,
    };
    let decoded: Vec<T> =
        serde_path_to_error::deserialize(Value::Array(items)).map_err(|error| {
            let inner = error.path().to_string();
            let inner = match wrapper {
                Some(key) => with_wrapper(&inner, key, &lifted),
                None => inner,
            };
            let json_path = if inner == "." || inner.is_empty() {
                "response.items".to_owned()
            } else if let Some(rest) = inner.strip_prefix('[') {
                if single {
                    // `items` was one object, not an array: drop the `[0]`.
                    let rest = rest.split_once(']').map_or("", |(_, rest)| rest);
                    format!("response.items{rest}")
                } else {
                    format!("response.items{inner}")
                }
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

/// `{"cluster": {...}, "x": 1}` becomes `{..., "x": 1}`; fields already on the item win. Returns the
/// names lifted out of the wrapper.
fn lift_wrapper(item: Value, key: &str) -> (Value, Vec<String>) {
    match item {
        Value::Object(mut fields) => {
            let mut names = Vec::new();
            if matches!(fields.get(key), Some(Value::Object(_))) {
                if let Some(Value::Object(inner)) = fields.remove(key) {
                    for (name, value) in inner {
                        if !fields.contains_key(&name) {
                            names.push(name.clone());
                            fields.insert(name, value);
                        }
                    }
                }
            }
            (Value::Object(fields), names)
        }
        other => (other, Vec::new()),
    }
}

/// Rewrites a decode path `[i].field…` to `[i].<wrapper>.field…` when `field` was lifted out of
/// the wrapper of item `i`.
fn with_wrapper(path: &str, wrapper: &str, lifted: &[Vec<String>]) -> String {
    let Some(rest) = path.strip_prefix('[') else {
        return path.to_owned();
    };
    let Some((index, rest)) = rest.split_once(']') else {
        return path.to_owned();
    };
    let Ok(position) = index.parse::<usize>() else {
        return path.to_owned();
    };
    let Some(field_path) = rest.strip_prefix('.') else {
        return path.to_owned();
    };
    let field = field_path.split(['.', '[']).next().unwrap_or(field_path);
    if lifted
        .get(position)
        .is_some_and(|names| names.iter().any(|name| name == field))
    {
        format!("[{position}].{wrapper}.{field_path}")
    } else {
        path.to_owned()
    }
}

/// Whether a body is meant to be JSON: its first byte past whitespace (and a byte-order mark) opens
/// an object or an array. A cut-off JSON body is still JSON; an HTML page or plain text is not.
pub(crate) fn looks_like_json(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    matches!(
        body.iter().find(|byte| !byte.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// What came back, for an error about a body a route does not send: content type, size and the
/// first characters, escaped (`text/html, 1.2 kB: "<html><head>…"`), or `an empty body`.
pub(crate) fn describe_body(content_type: Option<&str>, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return if body.is_empty() {
            "an empty body".to_owned()
        } else {
            format!("a blank body ({})", human_size(body.len()))
        };
    }
    let content_type = content_type
        .map(|t| t.split(';').next().unwrap_or(t).trim())
        .filter(|t| !t.is_empty())
        .unwrap_or("no content type");
    format!(
        "{content_type}, {}: {:?}",
        human_size(body.len()),
        super::lenient::shorten(&collapsed, 80)
    )
}

fn human_size(bytes: usize) -> String {
    match bytes {
        0..=999 => format!("{bytes} B"),
        1_000..=999_999 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

/// Text from a response, fit for one line of a message or a log: whitespace runs (newlines
/// included) become one space, other control characters are escaped, and at most `max_chars`.
fn one_line(text: &str, max_chars: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut escaped = String::with_capacity(collapsed.len());
    for c in collapsed.chars() {
        if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    super::lenient::shorten(&escaped, max_chars)
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
            one_line(text, 300)
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
    let text_of = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map(|text| one_line(text, 300))
            .filter(|text| !text.is_empty())
    };
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
    fn a_wrapped_field_that_fails_names_its_path_inside_the_wrapper() {
        let body = br#"{"response":{"items":[{"id":"o-1"},{"cluster":{"id":"o-2","name":7}}]}}"#;
        let failure = decode_items::<Item>(body, Some("cluster")).unwrap_err();
        assert_eq!(failure.json_path, "response.items[1].cluster.name");
        // A field of the item itself keeps its own path; so does an `items` object.
        let body = br#"{"response":{"items":[{"cluster":{"id":"o-2"},"name":7}]}}"#;
        let failure = decode_items::<Item>(body, Some("cluster")).unwrap_err();
        assert_eq!(failure.json_path, "response.items[0].name");
        let body = br#"{"response":{"items":{"id":"o-2","name":7}}}"#;
        let failure = decode_items::<Item>(body, None).unwrap_err();
        assert_eq!(failure.json_path, "response.items.name");
    }

    #[test]
    fn repeated_keys_merge_only_when_identical() {
        let body = br#"{"response":{"items":[{"id":"a","name":"x","name":"x"}]}}"#;
        let page: Page<Item> = decode_items(body, None).unwrap();
        assert_eq!(page.items[0].name.as_deref(), Some("x"));
        let body =
            br#"{"request":{"id":"r"},"response":{"items":[{"id":"a","name":"x","name":"y"}]}}"#;
        let failure = decode_items::<Item>(body, None).unwrap_err();
        assert!(!failure.is_syntax);
        assert!(
            failure
                .json_path
                .starts_with("response.items[0] (line 1 column"),
            "{failure:?}"
        );
        assert!(
            failure
                .message
                .contains("\"name\" appears twice with different values"),
            "{failure:?}"
        );
    }

    #[test]
    fn a_number_beyond_f64_is_final_and_names_its_path() {
        let body = br#"{"response":{"items":[{"id":"a","cost":1e999}]}}"#;
        let failure = decode_items::<Item>(body, None).unwrap_err();
        assert!(!failure.is_syntax, "{failure:?}");
        assert!(
            failure.json_path.starts_with("response.items[0].cost"),
            "{failure:?}"
        );
        // A cut-off body is worth a retry, and says where it stopped.
        let failure = decode_items::<Item>(br#"{"response":{"items":[{"id":"a"#, None).unwrap_err();
        assert!(failure.is_syntax);
        assert!(
            failure.json_path.starts_with("response.items[0].id"),
            "{failure:?}"
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_bodies_are_described() {
        let page: Page<Item> = decode_items(
            b"\xEF\xBB\xBF{\"response\":{\"items\":[{\"id\":\"a\"}]}}",
            None,
        )
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(looks_like_json(b" \n[1"));
        assert!(!looks_like_json(b"<html>"));
        assert_eq!(describe_body(Some("text/html"), b""), "an empty body");
        assert_eq!(
            describe_body(Some("text/html; charset=utf-8"), b"<html>\n  <b>x\0</b>"),
            "text/html, 18 B: \"<html> <b>x\\0</b>\""
        );
        let long = format!("<p>{}</p>", "y".repeat(5000));
        let described = describe_body(None, long.as_bytes());
        assert!(
            described.starts_with("no content type, 5.0 kB: \"<p>yyy"),
            "{described}"
        );
        assert!(described.len() < 120, "{described}");
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
        let info = decode_error(b"line one\r\nline\ttwo \x1b[31m", 502);
        assert_eq!(info.message, "line one line two \\u{1b}[31m");
        let long = format!(
            r#"{{"response":{{"errors":[{{"code":"X","message":"{}"}}]}}}}"#,
            "z".repeat(10_000)
        );
        assert!(decode_error(long.as_bytes(), 400).message.len() < 400);
    }
}

//! Lenient decoding of Spot's JSON: numbers that arrive as strings, ids that arrive as numbers,
//! and every timestamp format the API is known to send (../shared/spot-api.md §0, §12.6).
//!
//! Lenient about *form*, strict about *value*: a number must be finite and within
//! ±[`MAX_MAGNITUDE`] (Rust's `"NaN".parse::<f64>()`, `"inf"` and `"1e999"` all succeed, so every
//! numeric text goes through [`parse_number`]). A value outside that is an error naming its JSON
//! path, never a NaN or an infinity in the lake. Negative values are kept as sent (a negative cost
//! is a refund or a correction; the model's `marts__no_negative_costs` test flags it).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// The largest magnitude a Spot number may have: no cost (USD), hour count, percentage, CPU or
/// memory figure comes near 10^15, so anything beyond is a corrupt value, not a quantity. It also
/// keeps sums finite: adding up even millions of such values cannot overflow an `f64`.
pub const MAX_MAGNITUDE: f64 = 1e15;

/// Checks a decoded number: finite and within ±[`MAX_MAGNITUDE`]. `-0` becomes `0`.
pub fn check_number(value: f64) -> Result<f64, String> {
    if !value.is_finite() {
        return Err(format!("{value} is not a finite number"));
    }
    if value.abs() > MAX_MAGNITUDE {
        return Err(format!(
            "{value:e} is out of range (a Spot number is within ±1e15)"
        ));
    }
    Ok(value + 0.0)
}

/// A numeric text (`"1470.80"`, `" 6 "`): blank is absent; anything that is not a finite number
/// within ±[`MAX_MAGNITUDE`] is an error (`"NaN"`, `"inf"`, `"1e999"`, `"1,5"`, `"six"`).
pub fn parse_number(raw: &str) -> Result<Option<f64>, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let shown = shorten(raw, 40);
    let value = trimmed
        .parse::<f64>()
        .map_err(|_| format!("expected a number, found the string {shown:?}"))?;
    check_number(value)
        .map(Some)
        .map_err(|reason| format!("expected a number, found the string {shown:?}: {reason}"))
}

/// At most `max_chars` characters of `text`, with `…` when cut: for error messages.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A number that may arrive as a JSON number or as a numeric string (`"1470.80"`). `null` and `""`
/// are absent; a non-finite or out-of-range value ([`check_number`]) is an error.
/// Use with `#[serde(default, deserialize_with = "lenient::num")]`.
pub fn num<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct NumVisitor;
    impl<'de> Visitor<'de> for NumVisitor {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number or a numeric string")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            check_number(v).map(Some).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_f64(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse_number(v).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    deserializer.deserialize_any(NumVisitor)
}

/// Text that may arrive as a string, a number or a boolean (`organizationId`, `resourceId`).
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct TextVisitor;
    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a number")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    deserializer.deserialize_any(TextVisitor)
}

/// A string whose presence means something (`spotInstanceRequestId`): `null`, `""` and blanks
/// are absent; anything but a string or null is an error.
pub fn nonblank<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = <Option<String> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(value.filter(|text| !text.trim().is_empty()))
}

/// A timestamp in any format of §12.6, or epoch milliseconds as a number or string. Stored as UTC.
pub fn time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct TimeVisitor;
    impl<'de> Visitor<'de> for TimeVisitor {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a timestamp string or epoch milliseconds")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            parse_timestamp(v)
                .map(Some)
                .ok_or_else(|| E::custom(format!("unrecognised timestamp {:?}", shorten(v, 40))))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            from_epoch_millis(v)
                .map(Some)
                .ok_or_else(|| E::custom(format!("epoch milliseconds out of range: {v}")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // Out of range (or not finite) becomes i64::MIN/MAX/0 here, which is out of range
            // below unless it is a real epoch-ms value.
            if !v.is_finite() || v.abs() > 9.0e15 {
                return Err(E::custom(format!("epoch milliseconds out of range: {v:e}")));
            }
            self.visit_i64(v as i64)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    deserializer.deserialize_any(TimeVisitor)
}

fn from_epoch_millis(millis: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis).single()
}

/// Parses every timestamp format Spot is known to send:
/// `2018-06-20T11:35:01.745Z`, `2018-10-10T10:50:29.000+0000`, `2026-04-24T04:55:22.043813` (naive, taken as UTC),
/// `Mon Jul 01 00:00:00 UTC 2024` (Java `Date.toString()`), `2024-07-01 00:00:00`, `2024-07-01`,
/// and epoch milliseconds or seconds as digits.
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let text = raw.trim();
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(parsed) = DateTime::parse_from_str(text, format) {
            return Some(parsed.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|naive| naive.and_utc());
    }
    // Java's Date.toString(): "Mon Jul 01 00:00:00 UTC 2024". Only UTC/GMT zones are accepted,
    // since an abbreviation like "EST" is ambiguous.
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() == 6 && matches!(parts[4], "UTC" | "GMT" | "Z") {
        let rebuilt = format!(
            "{} {} {} {} {}",
            parts[0], parts[1], parts[2], parts[3], parts[5]
        );
        if let Ok(naive) = NaiveDateTime::parse_from_str(&rebuilt, "%a %b %d %H:%M:%S %Y") {
            return Some(naive.and_utc());
        }
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let value: i64 = text.parse().ok()?;
        // Ten digits or fewer is epoch seconds (good until 2286); more is milliseconds.
        return if text.len() <= 10 {
            Utc.timestamp_opt(value, 0).single()
        } else {
            from_epoch_millis(value)
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "num")]
        value: Option<f64>,
        #[serde(default, deserialize_with = "text")]
        id: Option<String>,
        #[serde(default, deserialize_with = "time")]
        at: Option<DateTime<Utc>>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).expect(json)
    }

    #[test]
    fn numbers_arrive_as_numbers_or_strings() {
        assert_eq!(probe(r#"{"value": 6.5}"#).value, Some(6.5));
        assert_eq!(probe(r#"{"value": "1470.80"}"#).value, Some(1470.8));
        assert_eq!(probe(r#"{"value": 3}"#).value, Some(3.0));
        assert_eq!(probe(r#"{"value": null}"#).value, None);
        assert_eq!(probe(r#"{"value": ""}"#).value, None);
        assert_eq!(probe(r#"{}"#).value, None);
        assert!(serde_json::from_str::<Probe>(r#"{"value": "six"}"#).is_err());
    }

    #[test]
    fn non_finite_and_absurd_numbers_are_errors_naming_the_value() {
        // Rust's f64 parser accepts all of these; the lake must never see a NaN or an infinity.
        for raw in [
            "NaN",
            "nan",
            "inf",
            "-inf",
            "+Infinity",
            "1e999",
            "-1e999",
            "1e16",
            "-2e15",
        ] {
            let error = serde_json::from_str::<Probe>(&format!(r#"{{"value": "{raw}"}}"#))
                .err()
                .unwrap_or_else(|| panic!("{raw} was accepted"));
            assert!(error.to_string().contains(raw), "{raw}: {error}");
        }
        for json in [
            r#"{"value": 1e308}"#,
            r#"{"value": -1e308}"#,
            r#"{"value": 18446744073709551615}"#,
        ] {
            assert!(serde_json::from_str::<Probe>(json).is_err(), "{json}");
        }
        // Negative numbers and the bounds themselves are kept; -0 is 0.
        assert_eq!(probe(r#"{"value": -12.5}"#).value, Some(-12.5));
        assert_eq!(probe(r#"{"value": "-1e15"}"#).value, Some(-1e15));
        let zero = probe(r#"{"value": "-0"}"#).value.unwrap();
        assert!(zero == 0.0 && zero.is_sign_positive());
        assert_eq!(parse_number(" 6.00 "), Ok(Some(6.0)));
        assert_eq!(parse_number(""), Ok(None));
        assert!(parse_number("1,5").is_err());
        let long = "9".repeat(100_000);
        let message = parse_number(&format!("x{long}")).unwrap_err();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn timestamps_out_of_range_are_errors() {
        for json in [
            r#"{"at": 1e308}"#,
            r#"{"at": -1e308}"#,
            r#"{"at": 9223372036854775807}"#,
            r#"{"at": "99999999999999999999"}"#,
        ] {
            assert!(serde_json::from_str::<Probe>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn ids_arrive_as_strings_or_numbers() {
        assert_eq!(
            probe(r#"{"id": 606079861123}"#).id.as_deref(),
            Some("606079861123")
        );
        assert_eq!(probe(r#"{"id": "act-1"}"#).id.as_deref(), Some("act-1"));
    }

    #[test]
    fn every_listed_timestamp_format_decodes_to_utc() {
        let expect = |raw: &str, want: &str| {
            let got = parse_timestamp(raw).unwrap_or_else(|| panic!("{raw} did not parse"));
            assert_eq!(
                got.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                want,
                "{raw}"
            );
        };
        expect("2018-06-20T11:35:01.745Z", "2018-06-20T11:35:01.745000Z");
        expect(
            "2018-10-10T10:50:29.000+0000",
            "2018-10-10T10:50:29.000000Z",
        );
        expect(
            "2018-10-10T12:50:29.000+0200",
            "2018-10-10T10:50:29.000000Z",
        );
        expect("2026-04-24T04:55:22.043813", "2026-04-24T04:55:22.043813Z");
        expect(
            "Mon Jul 01 00:00:00 UTC 2024",
            "2024-07-01T00:00:00.000000Z",
        );
        expect("2024-07-01", "2024-07-01T00:00:00.000000Z");
        expect("1598918400000", "2020-09-01T00:00:00.000000Z");
        expect("1569950296", "2019-10-01T17:18:16.000000Z");
        assert_eq!(parse_timestamp("Mon Jul 01 00:00:00 EST 2024"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(
            probe(r#"{"at": 1598918400000}"#).at,
            parse_timestamp("2020-09-01T00:00:00Z")
        );
        assert!(serde_json::from_str::<Probe>(r#"{"at": "soon"}"#).is_err());
    }
}

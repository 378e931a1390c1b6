//! Lenient decoding of Spot's JSON: numbers that arrive as strings, ids that arrive as numbers,
//! and every timestamp format the API is known to send (../shared/spot-api.md §0, §12.6).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// A number that may arrive as a JSON number or as a numeric string (`"1470.80"`). `null` and `""`
/// are absent. Use with `#[serde(default, deserialize_with = "lenient::num")]`.
pub fn num<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct NumVisitor;
    impl<'de> Visitor<'de> for NumVisitor {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number or a numeric string")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let trimmed = v.trim();
            if trimmed.is_empty() {
                return Ok(None);
            }
            trimmed
                .parse::<f64>()
                .map(Some)
                .map_err(|_| E::custom(format!("expected a number, found the string {v:?}")))
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
                .ok_or_else(|| E::custom(format!("unrecognised timestamp {v:?}")))
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

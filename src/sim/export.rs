//! The organisation instance-costs CSV export (`POST /insights/instanceCosts/export`): validates the body and streams one row per instance per day, one chunk per (day, account), so a large window never sits in memory; rows add up to `Organisation::instances` exactly. A recorded export file ([`super::SimConfig::instance_costs_export_file`]) is served instead when one is configured.

use std::sync::Arc;

use axum::body::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::org::{day_from_number, day_number, Lifecycle, Organisation};
use super::routes::{check_plausible_year, fixed_point_text, ApiError};

/// The export's exact header row.
pub const INSTANCE_COSTS_EXPORT_HEADER: &str = "id,accountId,accountName,resourceId,cloudProvider,instanceId,instanceType,region,useCase,lifeCycle,product,launchTime,terminationTime,runningHours,odHourlyPrice,odCost,actualCost,savings,reservationId";

/// The export window may span at most this many days.
const MAXIMUM_EXPORT_DAYS: i64 = 180;

/// A validated export request: which accounts (by index) and which days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExportRequest {
    pub(crate) account_indices: Vec<usize>,
    pub(crate) first_day: NaiveDate,
    /// Exclusive.
    pub(crate) end_day: NaiveDate,
}

fn parse_epoch_seconds(field: &str, value: Option<&Value>) -> Result<i64, ApiError> {
    let value = value.ok_or_else(|| ApiError::missing(field))?;
    let seconds = match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text)
            if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::validation(
            field,
            format!("\"{field}\" must be epoch seconds (a number or a string of digits)"),
        )
    })?;
    let day = DateTime::<Utc>::from_timestamp(seconds, 0)
        .ok_or_else(|| ApiError::validation(field, format!("\"{field}\" is out of range")))?
        .date_naive();
    check_plausible_year(field, day)?;
    Ok(seconds)
}

/// Validates `{"accountIds":[…],"fromDate":"<epoch s>","toDate":"<epoch s>"}`. Every day that
/// overlaps `[fromDate, toDate)` is exported in full; `accountIds` omitted means all accounts.
pub(crate) fn parse_export_request(
    organisation: &Organisation,
    body: &Value,
) -> Result<ExportRequest, ApiError> {
    let from_seconds = parse_epoch_seconds("fromDate", body.get("fromDate"))?;
    let to_seconds = parse_epoch_seconds("toDate", body.get("toDate"))?;
    if to_seconds <= from_seconds {
        return Err(ApiError::validation(
            "toDate",
            "\"toDate\" must be after \"fromDate\"",
        ));
    }
    if to_seconds - from_seconds > MAXIMUM_EXPORT_DAYS * 86_400 {
        return Err(ApiError::validation(
            "toDate",
            format!("the export window may span at most {MAXIMUM_EXPORT_DAYS} days"),
        ));
    }
    let account_indices = match body.get("accountIds") {
        None | Some(Value::Null) => (0..organisation.accounts.len()).collect(),
        Some(Value::Array(values)) => {
            let mut indices = Vec::with_capacity(values.len());
            for value in values {
                let account_id = value.as_str().ok_or_else(|| {
                    ApiError::validation("accountIds", "\"accountIds\" must be an array of strings")
                })?;
                let index = organisation
                    .accounts
                    .iter()
                    .position(|account| account.id == account_id)
                    .ok_or_else(|| ApiError {
                        status: 400,
                        code: "Account_DOESNT_EXIST".to_string(),
                        message: format!("Account {account_id} does not exist"),
                        field: Some("accountIds".to_string()),
                    })?;
                if !indices.contains(&index) {
                    indices.push(index);
                }
            }
            indices
        }
        Some(_) => {
            return Err(ApiError::validation(
                "accountIds",
                "\"accountIds\" must be an array of strings",
            ))
        }
    };
    Ok(ExportRequest {
        account_indices,
        first_day: day_from_number(from_seconds.div_euclid(86_400)),
        end_day: day_from_number((to_seconds + 86_399).div_euclid(86_400)),
    })
}

/// A recorded export file as the response body, streamed from disk in large chunks (the
/// benchmark's export is a gigabyte). A file that cannot be opened is a 500 naming it.
pub(crate) async fn recorded_export(path: &std::path::Path) -> Result<axum::body::Body, ApiError> {
    const CHUNK_BYTES: usize = 256 * 1024;
    let file = tokio::fs::File::open(path).await.map_err(|error| {
        ApiError::new(
            500,
            "InternalServerError",
            format!(
                "the recorded export {} cannot be read: {error}",
                path.display()
            ),
        )
    })?;
    Ok(axum::body::Body::from_stream(
        tokio_util::io::ReaderStream::with_capacity(file, CHUNK_BYTES),
    ))
}

/// The CSV as an iterator of chunks: the header, then one chunk per (day, account).
pub(crate) struct InstanceCostsExport {
    organisation: Arc<Organisation>,
    request: ExportRequest,
    header_sent: bool,
    day_offset: i64,
    account_position: usize,
    next_row_id: u64,
}

impl InstanceCostsExport {
    pub(crate) fn new(
        organisation: Arc<Organisation>,
        request: ExportRequest,
    ) -> InstanceCostsExport {
        InstanceCostsExport {
            organisation,
            request,
            header_sent: false,
            day_offset: 0,
            account_position: 0,
            next_row_id: 1,
        }
    }

    fn rows_for(&mut self, day: NaiveDate, account_index: usize) -> Result<Bytes, std::io::Error> {
        let account = &self.organisation.accounts[account_index];
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for instance in self.organisation.instances(&account.id, day) {
            let life_cycle = match instance.lifecycle {
                Lifecycle::Spot => "EXCESS",
                Lifecycle::OnDemand => "ON_DEMAND",
            };
            let row = [
                self.next_row_id.to_string(),
                account.id.clone(),
                account.name.clone(),
                instance.resource_id.clone(),
                account.cloud.export_provider_name().to_string(),
                instance.instance_id.clone(),
                instance.instance_type.clone(),
                instance.region.clone(),
                instance.use_case.clone(),
                life_cycle.to_string(),
                instance.product.clone(),
                export_timestamp(instance.launch_time),
                instance
                    .termination_time
                    .map(export_timestamp)
                    .unwrap_or_default(),
                fixed_point_text(instance.running_hours_milli, 3, 0),
                fixed_point_text(instance.od_hourly_price.micros(), 6, 0),
                fixed_point_text(instance.potential.micros(), 6, 0),
                fixed_point_text(instance.actual.micros(), 6, 0),
                fixed_point_text(instance.potential.micros() - instance.actual.micros(), 6, 0),
                String::new(),
            ];
            writer.write_record(&row).map_err(std::io::Error::other)?;
            self.next_row_id += 1;
        }
        let bytes = writer
            .into_inner()
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        Ok(Bytes::from(bytes))
    }
}

fn export_timestamp(timestamp: DateTime<Utc>) -> String {
    timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Iterator for InstanceCostsExport {
    type Item = Result<Bytes, std::io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.header_sent {
            self.header_sent = true;
            return Some(Ok(Bytes::from(format!("{INSTANCE_COSTS_EXPORT_HEADER}\n"))));
        }
        let day_count = day_number(self.request.end_day) - day_number(self.request.first_day);
        loop {
            if self.day_offset >= day_count {
                return None;
            }
            if self.account_position >= self.request.account_indices.len() {
                self.account_position = 0;
                self.day_offset += 1;
                continue;
            }
            let day = day_from_number(day_number(self.request.first_day) + self.day_offset);
            let account_index = self.request.account_indices[self.account_position];
            self.account_position += 1;
            let chunk = self.rows_for(day, account_index);
            if chunk.as_ref().is_ok_and(|bytes| bytes.is_empty()) {
                continue;
            }
            return Some(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::org::{CostTotals, Money};
    use crate::sim::Scale;
    use serde_json::json;

    fn decimal_micros(text: &str, scale_digits: u32) -> i64 {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let mut padded = fraction.to_string();
        while padded.len() < scale_digits as usize {
            padded.push('0');
        }
        whole.parse::<i64>().unwrap() * 10i64.pow(scale_digits) + padded.parse::<i64>().unwrap_or(0)
    }

    #[test]
    fn export_rows_add_up_to_the_instances_of_each_day() {
        let organisation = Arc::new(Organisation::generate(42, Scale::Small));
        // 2024-07-01T00:00:00Z .. 2024-07-03T00:00:00Z
        let body = json!({ "fromDate": "1719792000", "toDate": 1719964800 });
        let request = parse_export_request(&organisation, &body).unwrap();
        assert_eq!(request.account_indices.len(), organisation.accounts.len());
        let mut text = String::new();
        for chunk in InstanceCostsExport::new(Arc::clone(&organisation), request) {
            text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
        assert!(text.starts_with(INSTANCE_COSTS_EXPORT_HEADER));
        assert!(text.lines().skip(1).all(|line| line.ends_with(',')));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(headers.len(), 19);
        let mut exported_rows = 0;
        let mut exported = CostTotals::default();
        let mut last_id = 0;
        for record in reader.records() {
            let record = record.unwrap();
            let id: u64 = record[0].parse().unwrap();
            assert_eq!(id, last_id + 1);
            last_id = id;
            assert!(record[9] == *"EXCESS" || record[9] == *"ON_DEMAND");
            exported.running_hours_milli += decimal_micros(&record[13], 3);
            exported.potential += Money(decimal_micros(&record[15], 6));
            exported.actual += Money(decimal_micros(&record[16], 6));
            assert_eq!(
                decimal_micros(&record[17], 6),
                decimal_micros(&record[15], 6) - decimal_micros(&record[16], 6)
            );
            exported_rows += 1;
        }
        let mut instance_rows = 0;
        let mut expected = CostTotals::default();
        for day in [
            NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            NaiveDate::from_ymd_opt(2024, 7, 2).unwrap(),
        ] {
            for account in &organisation.accounts {
                let instances = organisation.instances(&account.id, day);
                instance_rows += instances.len();
                expected += CostTotals::from_instances(&instances);
            }
        }
        assert_eq!(exported_rows, instance_rows);
        assert_eq!(exported, expected);
        // The quoted account name survives the round trip.
        assert!(text.contains("\"Acme Retail, \"\"Prod\"\"\""));
    }

    #[test]
    fn one_day_of_one_account_matches_instances_row_by_row() {
        let organisation = Arc::new(Organisation::generate(9, Scale::Small));
        let account = &organisation.accounts[2];
        let body =
            json!({ "accountIds": [account.id], "fromDate": "1719792000", "toDate": "1719878400" });
        let request = parse_export_request(&organisation, &body).unwrap();
        let chunks: Vec<Bytes> = InstanceCostsExport::new(Arc::clone(&organisation), request)
            .map(Result::unwrap)
            .collect();
        let text: String = chunks
            .iter()
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        let instances =
            organisation.instances(&account.id, NaiveDate::from_ymd_opt(2024, 7, 1).unwrap());
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), instances.len());
        for (record, instance) in records.iter().zip(&instances) {
            assert_eq!(&record[5], instance.instance_id);
            assert_eq!(decimal_micros(&record[16], 6), instance.actual.micros());
            assert_eq!(record[12].is_empty(), instance.termination_time.is_none());
            assert_eq!(&record[18], "");
        }
    }

    #[test]
    fn export_requests_are_validated() {
        let organisation = Organisation::generate(42, Scale::Small);
        let cases = [
            (json!({ "fromDate": "1719792000" }), "toDate"),
            (
                json!({ "fromDate": "1719792000", "toDate": "1719792000" }),
                "toDate",
            ),
            (
                json!({ "fromDate": "1700000000", "toDate": "1719792000" }),
                "toDate",
            ),
            (
                json!({ "fromDate": "2024-07-01", "toDate": "1719792000" }),
                "fromDate",
            ),
            (
                json!({ "fromDate": "1719792000000", "toDate": "1719878400000" }),
                "fromDate",
            ),
            (
                json!({ "accountIds": ["act-nope"], "fromDate": "1719792000", "toDate": "1719878400" }),
                "accountIds",
            ),
        ];
        for (body, field) in cases {
            let error = parse_export_request(&organisation, &body).unwrap_err();
            assert_eq!(
                (error.status, error.field.as_deref()),
                (400, Some(field)),
                "{body}"
            );
        }
    }
}

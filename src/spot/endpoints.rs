//! The Spot routes spotcost reads, grouped by resource, each a method on `SpotClient`. This is where
//! the API's quirks live: which route serves which cloud, date formats per route, one-day windows,
//! the right-sizing v2 → v1 fallback and the streamed instance-cost CSV.

use super::types::*;
use super::{Call, Failure, SpotClient, SpotError};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The UTC day `[day 00:00, day+1 00:00)` that a cost call covers. Every dated call spotcost makes is
/// one such day, so rows are keyed on the window asked for, never on times the API echoes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    pub day: NaiveDate,
}

impl DayWindow {
    pub fn new(day: NaiveDate) -> DayWindow {
        DayWindow { day }
    }
    fn start(&self) -> DateTime<Utc> {
        self.day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }
    fn end(&self) -> DateTime<Utc> {
        self.start() + chrono::Duration::days(1)
    }
    fn from_date(&self) -> String {
        self.day.format("%Y-%m-%d").to_string()
    }
    fn to_date(&self) -> String {
        self.end().date_naive().format("%Y-%m-%d").to_string()
    }
    /// Keeps the items of this day: items stamped with another day (a route that treats `toDate`
    /// as inclusive) are dropped; unstamped items belong to the window.
    fn keep<T>(&self, items: Vec<T>, stamp: impl Fn(&T) -> Option<DateTime<Utc>>) -> Vec<T> {
        items
            .into_iter()
            .filter(|item| stamp(item).is_none_or(|at| at.date_naive() == self.day))
            .collect()
    }
}

/// Where the streamed instance-cost CSV goes. `restart` is called before every attempt, so a
/// retried download never appends to rows of a failed one.
pub trait InstanceCostSink: Send + 'static {
    fn restart(&mut self) -> Result<(), String>;
    fn write(&mut self, rows: Vec<InstanceCostRow>) -> Result<(), String>;
}

/// Rows handed to an `InstanceCostSink` at a time.
const CSV_BATCH_ROWS: usize = 8192;

impl SpotClient {
    /// `GET /setup/account`: every account of the organisation (§1). Org level: no `accountId`.
    pub async fn accounts(&self) -> Result<Vec<Account>, SpotError> {
        self.items(Call::get("/setup/account", "/setup/account".into()), None)
            .await
    }

    /// The account's Elastigroups: `/aws/ec2/group` or `/gcp/gce/group` (§2). Azure has none here.
    pub async fn groups(&self, account_id: &str, cloud: Cloud) -> Result<Vec<Group>, SpotError> {
        let route = match cloud {
            Cloud::Aws => "/aws/ec2/group",
            Cloud::Gcp => "/gcp/gce/group",
            Cloud::Azure => return Ok(Vec::new()),
        };
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("group"),
        )
        .await
    }

    /// `GET /aws/emr/mrScaler` (§4.3); items flat or wrapped in `mrScaler`.
    pub async fn emr_scalers(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<EmrScaler>, SpotError> {
        if cloud != Cloud::Aws {
            return Ok(Vec::new());
        }
        let route = "/aws/emr/mrScaler";
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("mrScaler"),
        )
        .await
    }

    /// A dated cost GET over one day, daily-aggregated where the route allows it.
    async fn day_costs(
        &self,
        route: &'static str,
        path: String,
        account_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        let call = Call::get(route, path)
            .param("fromDate", window.from_date())
            .param("toDate", window.to_date())
            .param("aggregationPeriod", "daily")
            .account(account_id);
        let items: Vec<CostItem> = self.items(call, None).await?;
        Ok(window.keep(items, |item| item.timestamp))
    }

    /// `GET /aws/ec2/group/{id}/costs`: spot lifecycle only (§3.1).
    pub async fn group_spot_costs(
        &self,
        account_id: &str,
        group_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        self.day_costs(
            "/aws/ec2/group/{id}/costs",
            format!("/aws/ec2/group/{}/costs", segment(group_id)),
            account_id,
            window,
        )
        .await
    }

    /// `GET /aws/ec2/group/{id}/costs/detailed`: every lifecycle, one item per instance (§3.2).
    pub async fn group_detailed_costs(
        &self,
        account_id: &str,
        group_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        self.day_costs(
            "/aws/ec2/group/{id}/costs/detailed",
            format!("/aws/ec2/group/{}/costs/detailed", segment(group_id)),
            account_id,
            window,
        )
        .await
    }

    /// `GET /gcp/gce/group/{id}/costs` (§4.1).
    pub async fn gcp_group_costs(
        &self,
        account_id: &str,
        group_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        self.day_costs(
            "/gcp/gce/group/{id}/costs",
            format!("/gcp/gce/group/{}/costs", segment(group_id)),
            account_id,
            window,
        )
        .await
    }

    /// `GET /aws/emr/mrScaler/{id}/costs` (§4.3).
    pub async fn emr_scaler_costs(
        &self,
        account_id: &str,
        scaler_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        self.day_costs(
            "/aws/emr/mrScaler/{id}/costs",
            format!("/aws/emr/mrScaler/{}/costs", segment(scaler_id)),
            account_id,
            window,
        )
        .await
    }

    /// `GET /aws/ec2/managedInstance` (§6.1); list items wrap their settings in `config`.
    pub async fn managed_instances(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<ManagedInstance>, SpotError> {
        if cloud != Cloud::Aws {
            return Ok(Vec::new());
        }
        let route = "/aws/ec2/managedInstance";
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("config"),
        )
        .await
    }

    /// `GET /aws/ec2/managedInstance/{id}/costs` (§6.2).
    pub async fn managed_instance_costs(
        &self,
        account_id: &str,
        instance_id: &str,
        window: DayWindow,
    ) -> Result<Vec<CostItem>, SpotError> {
        self.day_costs(
            "/aws/ec2/managedInstance/{id}/costs",
            format!("/aws/ec2/managedInstance/{}/costs", segment(instance_id)),
            account_id,
            window,
        )
        .await
    }

    /// The account's Ocean Kubernetes clusters (§7.1): AWS, GKE (items maybe wrapped in `cluster`) or AKS.
    pub async fn ocean_clusters(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<OceanCluster>, SpotError> {
        let route = ocean_list_route(cloud);
        self.items(
            Call::get(route, route.into()).account(account_id),
            Some("cluster"),
        )
        .await
    }

    /// `POST /ocean/{cloud}/k8s/cluster/{id}/aggregatedCosts` for one day (§7.3), with exclusive
    /// midnight boundaries. `group_by` is `namespace` or `namespace.label.<key>`.
    pub async fn aggregated_costs(
        &self,
        account_id: &str,
        cloud: Cloud,
        cluster_id: &str,
        window: DayWindow,
        group_by: &str,
    ) -> Result<TotalForDuration, SpotError> {
        let (route, prefix) = match cloud {
            Cloud::Aws => (
                "/ocean/aws/k8s/cluster/{id}/aggregatedCosts",
                "/ocean/aws/k8s",
            ),
            Cloud::Gcp => (
                "/ocean/gcp/k8s/cluster/{id}/aggregatedCosts",
                "/ocean/gcp/k8s",
            ),
            Cloud::Azure => (
                "/ocean/azure/k8s/cluster/{id}/aggregatedCosts",
                "/ocean/azure/k8s",
            ),
        };
        let body = json!({
            "startTime": window.start().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "endTime": window.end().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "groupBy": group_by,
        });
        let call = Call::post(
            route,
            format!("{prefix}/cluster/{}/aggregatedCosts", segment(cluster_id)),
            body,
        )
        .account(account_id);
        let items: Vec<AggregatedCostsItem> = self.items(call, None).await?;
        Ok(items
            .into_iter()
            .find_map(AggregatedCostsItem::into_total)
            .unwrap_or_default())
    }

    /// Right-sizing for a cluster: the current `POST /ocean/{id}/rightSizing/recommendations` (§8.2),
    /// falling back to the v1 `…/rightSizing/suggestion` (§8.1) where the cluster's API lacks it (404).
    pub async fn rightsizing(
        &self,
        account_id: &str,
        cloud: Cloud,
        cluster_id: &str,
    ) -> Result<Rightsizing, SpotError> {
        let v2 = Call::post(
            "/ocean/{id}/rightSizing/recommendations",
            format!("/ocean/{}/rightSizing/recommendations", segment(cluster_id)),
            json!({}),
        )
        .account(account_id);
        match self.items::<RightsizingItem>(v2, None).await {
            Ok(items) => {
                return Ok(Rightsizing {
                    api_version: "v2",
                    items,
                })
            }
            Err(error) if error.status() == Some(404) => {
                tracing::debug!(
                    cluster = cluster_id,
                    "right-sizing v2 answered 404; using v1"
                );
            }
            Err(error) => return Err(error),
        }
        let (route, prefix) = match cloud {
            Cloud::Aws => (
                "/ocean/aws/k8s/cluster/{id}/rightSizing/suggestion",
                "/ocean/aws/k8s",
            ),
            Cloud::Gcp => (
                "/ocean/gcp/k8s/cluster/{id}/rightSizing/suggestion",
                "/ocean/gcp/k8s",
            ),
            Cloud::Azure => (
                "/ocean/azure/np/cluster/{id}/rightSizing/suggestion",
                "/ocean/azure/np",
            ),
        };
        let v1 = Call::post(
            route,
            format!(
                "{prefix}/cluster/{}/rightSizing/suggestion",
                segment(cluster_id)
            ),
            json!({}),
        )
        .account(account_id);
        let items = self.items::<RightsizingItem>(v1, None).await?;
        Ok(Rightsizing {
            api_version: "v1",
            items,
        })
    }

    /// `GET /aws/potentialSavings` (§9.1): monthly USD per resource. AWS accounts only.
    pub async fn potential_savings(
        &self,
        account_id: &str,
        cloud: Cloud,
    ) -> Result<Vec<PotentialSaving>, SpotError> {
        if cloud != Cloud::Aws {
            return Ok(Vec::new());
        }
        let route = "/aws/potentialSavings";
        self.items(Call::get(route, route.into()).account(account_id), None)
            .await
    }

    /// Account costs for one day (§4, §5): `/aws/costs` (`spot`), `/gcp/gce/costs` (`preemptible`) or
    /// `/azure/costs` (`lowPriority`). AWS falls back to `/aws/ec2/costs` where `/aws/costs` is 404.
    pub async fn account_costs(
        &self,
        account_id: &str,
        cloud: Cloud,
        window: DayWindow,
    ) -> Result<Vec<LifecycleCosts>, SpotError> {
        let call = |route: &'static str, daily: bool| {
            let call = Call::get(route, route.into())
                .param("fromDate", window.from_date())
                .param("toDate", window.to_date());
            let call = if daily {
                call.param("aggregationPeriod", "daily")
            } else {
                call
            };
            call.account(account_id)
        };
        let items: Vec<AccountCostItem> = match cloud {
            Cloud::Aws => match self.items(call("/aws/costs", true), None).await {
                Err(error) if error.status() == Some(404) => {
                    self.items(call("/aws/ec2/costs", true), None).await?
                }
                other => other?,
            },
            Cloud::Gcp => self.items(call("/gcp/gce/costs", false), None).await?,
            Cloud::Azure => self.items(call("/azure/costs", false), None).await?,
        };
        Ok(window
            .keep(items, |item| item.timestamp)
            .into_iter()
            .filter_map(|item| match cloud {
                Cloud::Aws => item.spot,
                Cloud::Gcp => item.preemptible,
                Cloud::Azure => item.low_priority,
            })
            .collect())
    }

    /// `GET /audit/events` for one day (§11), successful and failed calls alike. Dates are epoch ms.
    pub async fn audit_events(&self, window: DayWindow) -> Result<Vec<AuditEvent>, SpotError> {
        let route = "/audit/events";
        let call = Call::get(route, route.into())
            .param("fromDate", window.start().timestamp_millis().to_string())
            .param("toDate", (window.end().timestamp_millis() - 1).to_string())
            .param("responseStatus", "all");
        let events: Vec<AuditEvent> = self.items(call, None).await?;
        Ok(window.keep(events, |event| event.created_at))
    }

    /// `POST /insights/instanceCosts/export` for one account and day (§10), streamed: the CSV is parsed
    /// as it arrives and handed to `sink` in batches, so memory stays bounded by one batch.
    pub async fn export_instance_costs<S: InstanceCostSink>(
        &self,
        account_id: &str,
        window: DayWindow,
        sink: S,
    ) -> Result<S, SpotError> {
        let route = "/insights/instanceCosts/export";
        let body = json!({
            "accountIds": [account_id],
            "fromDate": window.start().timestamp().to_string(),
            "toDate": window.end().timestamp().to_string(),
        });
        let mut call = Call::post(route, route.into(), body);
        call.account = Some(account_id.to_owned());
        let endpoint = call.endpoint();
        let shared = Arc::new(Mutex::new(sink));
        let sink_for_attempts = Arc::clone(&shared);
        self.execute(&call, move |response| {
            let sink = Arc::clone(&sink_for_attempts);
            let endpoint = endpoint.clone();
            Box::pin(async move { consume_csv(response, sink, endpoint).await })
        })
        .await?;
        let sink = Arc::try_unwrap(shared)
            .map_err(|_| SpotError::Client("instance-cost sink still shared".into()))?;
        Ok(sink.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

fn ocean_list_route(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Aws => "/ocean/aws/k8s/cluster",
        Cloud::Gcp => "/ocean/gcp/k8s/cluster",
        Cloud::Azure => "/ocean/azure/np/cluster",
    }
}

/// An id placed in a path segment: ids are `sig-…`, `o-…`; anything else is percent-encoded.
fn segment(id: &str) -> String {
    super::percent_encode(id)
}

async fn consume_csv<S: InstanceCostSink>(
    response: reqwest::Response,
    sink: Arc<Mutex<S>>,
    endpoint: super::Endpoint,
) -> Result<(), Failure> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("json") {
        let body = response.bytes().await.unwrap_or_default();
        let info = super::envelope::decode_error(&body, 200);
        return Err(Failure::Fatal(SpotError::Decode {
            endpoint,
            json_path: "(body)".into(),
            request_id: info.request_id,
            message: format!("expected CSV, got JSON: {}", info.message),
        }));
    }
    let stream = response
        .bytes_stream()
        .map_err(|error| std::io::Error::other(super::describe_transport_error(&error)));
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let outcome = tokio::task::spawn_blocking(move || {
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        parse_csv(reader, &mut *sink, &endpoint)
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(join_error) => Err(Failure::Transient {
            reason: format!("CSV reader stopped: {join_error}"),
            wait: None,
        }),
    }
}

fn parse_csv<S: InstanceCostSink>(
    reader: impl std::io::Read,
    sink: &mut S,
    endpoint: &super::Endpoint,
) -> Result<(), Failure> {
    let sink_error = |message: String| {
        Failure::Fatal(SpotError::Sink {
            endpoint: endpoint.clone(),
            message,
        })
    };
    sink.restart().map_err(sink_error)?;
    let mut csv_reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header: HashMap<String, usize> = match csv_reader.headers() {
        Ok(header) => header
            .iter()
            .enumerate()
            .map(|(index, name)| {
                (
                    name.trim()
                        .trim_start_matches('\u{feff}')
                        .to_ascii_lowercase(),
                    index,
                )
            })
            .collect(),
        Err(error) => return Err(csv_failure(error, endpoint)),
    };
    let mut batch = Vec::with_capacity(CSV_BATCH_ROWS);
    let mut record = csv::StringRecord::new();
    let mut line = 1u64;
    loop {
        match csv_reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => return Err(csv_failure(error, endpoint)),
        }
        line += 1;
        batch.push(
            instance_cost_row(&header, &record).map_err(|(column, message)| {
                Failure::Fatal(SpotError::Decode {
                    endpoint: endpoint.clone(),
                    json_path: format!("CSV line {line}, column {column}"),
                    request_id: None,
                    message,
                })
            })?,
        );
        if batch.len() >= CSV_BATCH_ROWS {
            sink.write(std::mem::replace(
                &mut batch,
                Vec::with_capacity(CSV_BATCH_ROWS),
            ))
            .map_err(sink_error)?;
        }
    }
    if !batch.is_empty() {
        sink.write(batch).map_err(sink_error)?;
    }
    Ok(())
}

fn csv_failure(error: csv::Error, endpoint: &super::Endpoint) -> Failure {
    if error.is_io_error() {
        Failure::Transient {
            reason: format!("the CSV body was cut off: {error}"),
            wait: None,
        }
    } else {
        Failure::Fatal(SpotError::Decode {
            endpoint: endpoint.clone(),
            json_path: "CSV".into(),
            request_id: None,
            message: error.to_string(),
        })
    }
}

/// Builds one row by header name, so column order and extra columns do not matter.
fn instance_cost_row(
    header: &HashMap<String, usize>,
    record: &csv::StringRecord,
) -> Result<InstanceCostRow, (&'static str, String)> {
    let text = |column: &'static str| -> Option<String> {
        header
            .get(&column.to_ascii_lowercase())
            .and_then(|&index| record.get(index))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let number = |column: &'static str| -> Result<Option<f64>, (&'static str, String)> {
        match text(column) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<f64>()
                .map(Some)
                .map_err(|_| (column, format!("expected a number, found {raw:?}"))),
        }
    };
    let time = |column: &'static str| -> Result<Option<DateTime<Utc>>, (&'static str, String)> {
        match text(column) {
            None => Ok(None),
            Some(raw) => super::lenient::parse_timestamp(&raw)
                .map(Some)
                .ok_or_else(|| (column, format!("unrecognised timestamp {raw:?}"))),
        }
    };
    Ok(InstanceCostRow {
        id: text("id"),
        account_id: text("accountId"),
        account_name: text("accountName"),
        resource_id: text("resourceId"),
        cloud_provider: text("cloudProvider"),
        instance_id: text("instanceId"),
        instance_type: text("instanceType"),
        region: text("region"),
        use_case: text("useCase"),
        life_cycle: text("lifeCycle"),
        product: text("product"),
        launch_time: time("launchTime")?,
        termination_time: time("terminationTime")?,
        running_hours: number("runningHours")?,
        od_hourly_price: number("odHourlyPrice")?,
        od_cost: number("odCost")?,
        actual_cost: number("actualCost")?,
        savings: number("savings")?,
        reservation_id: text("reservationId"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        rows: Vec<InstanceCostRow>,
        restarts: usize,
    }

    impl InstanceCostSink for Collect {
        fn restart(&mut self) -> Result<(), String> {
            self.rows.clear();
            self.restarts += 1;
            Ok(())
        }
        fn write(&mut self, rows: Vec<InstanceCostRow>) -> Result<(), String> {
            self.rows.extend(rows);
            Ok(())
        }
    }

    fn endpoint() -> super::super::Endpoint {
        super::super::Endpoint {
            method: "POST",
            route: "/insights/instanceCosts/export",
            path: "/insights/instanceCosts/export".into(),
        }
    }

    #[test]
    fn csv_rows_with_trailing_commas_and_empty_times() {
        let csv = "id,accountId,accountName,resourceId,cloudProvider,instanceId,instanceType,region,useCase,lifeCycle,product,launchTime,terminationTime,runningHours,odHourlyPrice,odCost,actualCost,savings,reservationId\n\
2439,act-abc12345,\"Demo, Inc\",oesg-cc4740e1,AWS,i-00d6,r4.large,us-west-2,K8S,EXCESS,LINUX,2019-10-05T02:59:40.000Z,2019-10-05T03:15:12.000Z,1,0.133,0.133,0.0337,0.0993,\n\
2440,act-abc12345,Demo,sig-1,AWS,i-00d7,m5.large,us-west-2,Load Balancing,ON_DEMAND,LINUX,2019-10-05T00:00:00.000Z,,24,0.096,2.304,2.304,0,\n";
        let mut sink = Collect::default();
        parse_csv(csv.as_bytes(), &mut sink, &endpoint())
            .ok()
            .unwrap();
        assert_eq!(sink.restarts, 1);
        assert_eq!(sink.rows.len(), 2);
        assert_eq!(sink.rows[0].account_name.as_deref(), Some("Demo, Inc"));
        assert_eq!(sink.rows[0].actual_cost, Some(0.0337));
        assert_eq!(sink.rows[1].termination_time, None);
        assert_eq!(sink.rows[1].reservation_id, None);
    }

    #[test]
    fn an_empty_export_is_no_rows() {
        let mut sink = Collect::default();
        assert!(parse_csv("".as_bytes(), &mut sink, &endpoint()).is_ok());
        assert!(parse_csv("id,actualCost\n".as_bytes(), &mut sink, &endpoint()).is_ok());
        assert_eq!((sink.restarts, sink.rows.len()), (2, 0));
    }

    #[test]
    fn a_bad_number_names_line_and_column() {
        let csv = "id,actualCost\n1,0.5\n2,lots\n";
        let mut sink = Collect::default();
        match parse_csv(csv.as_bytes(), &mut sink, &endpoint()) {
            Err(Failure::Fatal(SpotError::Decode { json_path, .. })) => {
                assert_eq!(json_path, "CSV line 3, column actualCost")
            }
            _ => panic!("expected a decode error"),
        }
    }

    #[test]
    fn day_windows_drop_items_of_other_days() {
        let window = DayWindow::new(NaiveDate::from_ymd_opt(2024, 3, 6).unwrap());
        assert_eq!(
            (window.from_date(), window.to_date()),
            ("2024-03-06".into(), "2024-03-07".into())
        );
        let stamps = vec![
            Some(super::super::lenient::parse_timestamp("2024-03-06T00:00:00.000Z").unwrap()),
            Some(super::super::lenient::parse_timestamp("2024-03-07T00:00:00.000Z").unwrap()),
            None,
        ];
        let kept = window.keep(stamps, |s| *s);
        assert_eq!(kept.len(), 2);
    }
}

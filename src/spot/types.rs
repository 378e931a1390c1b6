//! Spot response items as they arrive on the wire (../shared/spot-api.md), decoded leniently: every
//! field optional, unknown fields ignored, numbers from numbers or strings, casing variants aliased.

use super::lenient;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

type Time = Option<DateTime<Utc>>;

/// `GET /setup/account` (§1). List items use `accountId`, create responses `id`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(alias = "id")]
    pub account_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub cloud_provider: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub provider_external_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Time,
}

/// Which cloud an account (and so its endpoints) belongs to. Accounts without a provider (absent
/// or blank) are AWS, as Spot's oldest accounts are; a provider spotcost does not know is
/// `Unknown`, never guessed into one of the others: every per-account call for it fails with
/// [`super::SpotError::UnknownCloud`], so the run says so instead of reading the wrong routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cloud {
    Aws,
    Gcp,
    Azure,
    Unknown,
}

impl Cloud {
    pub fn of(cloud_provider: Option<&str>) -> Cloud {
        let Some(provider) = cloud_provider.map(str::trim).filter(|p| !p.is_empty()) else {
            return Cloud::Aws;
        };
        match provider.to_ascii_uppercase().as_str() {
            "AWS" | "AMAZON" => Cloud::Aws,
            "GCP" | "GCE" | "GOOGLE" => Cloud::Gcp,
            "AZURE" | "AZ" => Cloud::Azure,
            _ => Cloud::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
            Cloud::Azure => "azure",
            Cloud::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    #[serde(default, deserialize_with = "lenient::num")]
    pub minimum: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub maximum: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub target: Option<f64>,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    #[serde(default, alias = "key")]
    pub tag_key: Option<String>,
    #[serde(default, alias = "value", deserialize_with = "lenient::text")]
    pub tag_value: Option<String>,
}

/// A list of `{key, value}` tags, keeping only its objects: GCP's `tags` are bare strings.
fn key_value_tags<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Tag>>, D::Error> {
    let Some(items) = <Option<Vec<serde_json::Value>> as Deserialize>::deserialize(deserializer)?
    else {
        return Ok(None);
    };
    items
        .into_iter()
        .filter(serde_json::Value::is_object)
        .map(|item| serde_json::from_value(item).map_err(serde::de::Error::custom))
        .collect::<Result<Vec<Tag>, _>>()
        .map(Some)
}

/// `GET /aws/ec2/group`, `GET /gcp/gce/group` (§2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub capacity: Option<Capacity>,
    #[serde(default)]
    pub strategy: Option<GroupStrategy>,
    #[serde(default)]
    pub compute: Option<GroupCompute>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Time,
    #[serde(default, deserialize_with = "lenient::time")]
    pub updated_at: Time,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStrategy {
    #[serde(default, deserialize_with = "lenient::num")]
    pub risk: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub on_demand_count: Option<f64>,
    #[serde(default)]
    pub availability_vs_cost: Option<String>,
    #[serde(default, alias = "fallbackToOnDemand")]
    pub fallback_to_od: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCompute {
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub instance_types: Option<GroupInstanceTypes>,
    #[serde(default)]
    pub launch_specification: Option<LaunchSpecification>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInstanceTypes {
    #[serde(default)]
    pub ondemand: Option<String>,
    #[serde(default)]
    pub spot: Option<Vec<String>>,
    /// Managed Instances: `launchSpecification.instanceTypes.types`.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    #[serde(default)]
    pub preferred_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchSpecification {
    /// AWS: the instances' tags. GCP sends its network tags here, as bare strings, which say
    /// nothing about cost and are skipped.
    #[serde(default, deserialize_with = "key_value_tags")]
    pub tags: Option<Vec<Tag>>,
    /// GCP: the instances' labels, `{key, value}` pairs as AWS sends its tags.
    #[serde(default, deserialize_with = "key_value_tags")]
    pub labels: Option<Vec<Tag>>,
    #[serde(default)]
    pub instance_types: Option<GroupInstanceTypes>,
}

/// `GET /aws/emr/mrScaler`: flat or wrapped in `mrScaler` (§4.3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmrScaler {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Time,
    #[serde(default, deserialize_with = "lenient::time")]
    pub updated_at: Time,
}

/// `GET /aws/ec2/managedInstance`: list items wrap their settings in `config` (§6.1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedInstance {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub strategy: Option<ManagedInstanceStrategy>,
    #[serde(default)]
    pub compute: Option<GroupCompute>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Time,
    #[serde(default, deserialize_with = "lenient::time")]
    pub updated_at: Time,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedInstanceStrategy {
    #[serde(default)]
    pub life_cycle: Option<String>,
    #[serde(default)]
    pub orientation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ValueUnit {
    #[serde(default, deserialize_with = "lenient::num")]
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CostPair {
    #[serde(default, deserialize_with = "lenient::num")]
    pub actual: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub potential: Option<f64>,
}

/// The `{running, savings, costs}` item of group, scaler and managed-instance cost routes (§3, §4, §6.2),
/// and one instance of `/costs/detailed` (§3.2).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostItem {
    #[serde(default, deserialize_with = "lenient::time")]
    pub timestamp: Time,
    #[serde(default)]
    pub running: Option<ValueUnit>,
    #[serde(default)]
    pub savings: Option<ValueUnit>,
    #[serde(default)]
    pub costs: Option<CostPair>,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Present (and not null or blank) for spot instances only.
    #[serde(default, deserialize_with = "lenient::nonblank")]
    pub spot_instance_request_id: Option<String>,
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
}

impl CostItem {
    pub fn running_hours(&self) -> f64 {
        self.running.as_ref().and_then(|r| r.value).unwrap_or(0.0)
    }
    pub fn actual(&self) -> f64 {
        self.costs.as_ref().and_then(|c| c.actual).unwrap_or(0.0)
    }
    pub fn potential(&self) -> f64 {
        self.costs.as_ref().and_then(|c| c.potential).unwrap_or(0.0)
    }
}

/// The per-lifecycle block of account costs: `spot` (AWS), `preemptible` (GCP), `lowPriority` (Azure).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleCosts {
    #[serde(default, deserialize_with = "lenient::num")]
    pub running_hours: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub actual_costs: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub potential_costs: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub savings_percentage: Option<f64>,
}

/// `GET /aws/costs`, `/gcp/gce/costs`, `/azure/costs` (§4, §5).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountCostItem {
    #[serde(default, deserialize_with = "lenient::time")]
    pub timestamp: Time,
    #[serde(default)]
    pub spot: Option<LifecycleCosts>,
    #[serde(default)]
    pub preemptible: Option<LifecycleCosts>,
    #[serde(default)]
    pub low_priority: Option<LifecycleCosts>,
}

/// Ocean cluster lists (§7.1); GKE items may be wrapped in `cluster`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OceanCluster {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub controller_cluster_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub gke: Option<GkeInfo>,
    #[serde(default)]
    pub aks: Option<AksInfo>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Time,
    #[serde(default, deserialize_with = "lenient::time")]
    pub updated_at: Time,
}

/// An Ocean cluster's virtual node groups (launch specifications): `GET /ocean/aws/k8s/launchSpec`,
/// `/ocean/gcp/k8s/launchSpec` or `/ocean/azure/np/virtualNodeGroup`, each `?oceanId=`. Items may
/// be wrapped in `launchSpec` (`virtualNodeGroup` on Azure), as the single-item answers are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OceanVirtualNodeGroup {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub ocean_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Time,
    #[serde(default, deserialize_with = "lenient::time")]
    pub updated_at: Time,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GkeInfo {
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub master_location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AksInfo {
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub resource_group_name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// `{total}` leaves of the aggregated-cost tree.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Total {
    #[serde(default, deserialize_with = "lenient::num")]
    pub total: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ComputeSummary {
    #[serde(default, deserialize_with = "lenient::num")]
    pub total: Option<f64>,
    #[serde(default)]
    pub workloads: Option<Total>,
    #[serde(default)]
    pub headroom: Option<Total>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Networking {
    #[serde(default, deserialize_with = "lenient::num")]
    pub total_cost: Option<f64>,
}

/// CostSummary of §7.3.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CostSummary {
    #[serde(default, deserialize_with = "lenient::num")]
    pub total: Option<f64>,
    #[serde(default)]
    pub compute: Option<ComputeSummary>,
    #[serde(default)]
    pub storage: Option<Total>,
    #[serde(default)]
    pub networking: Option<Networking>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ResourceMetadata {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One resource of an aggregation: a workload, or the `UnusedStorage` pseudo-resource.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CostResource {
    #[serde(default, alias = "metaData", alias = "MetaData")]
    pub metadata: Option<ResourceMetadata>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub total: Option<f64>,
    #[serde(default)]
    pub compute: Option<Total>,
    #[serde(default)]
    pub storage: Option<Total>,
    #[serde(default)]
    pub networking: Option<Networking>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Aggregation {
    #[serde(default)]
    pub summary: Option<CostSummary>,
    #[serde(default)]
    pub resources: Vec<CostResource>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedCosts {
    #[serde(default)]
    pub grouped_by: Option<String>,
    #[serde(default)]
    pub aggregations: BTreeMap<String, Aggregation>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotalForDuration {
    #[serde(default, deserialize_with = "lenient::time")]
    pub start_time: Time,
    #[serde(default, deserialize_with = "lenient::time")]
    pub end_time: Time,
    #[serde(default)]
    pub summary: Option<CostSummary>,
    #[serde(default)]
    pub detailed_costs: Option<DetailedCosts>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregatedResult {
    #[serde(default)]
    pub total_for_duration: Option<TotalForDuration>,
}

/// `POST …/aggregatedCosts` (§7.3): one item `{result: {totalForDuration}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregatedCostsItem {
    #[serde(default)]
    pub result: Option<AggregatedResult>,
    /// ECS answers without the `result` wrapper.
    #[serde(default)]
    pub total_for_duration: Option<TotalForDuration>,
}

impl AggregatedCostsItem {
    pub fn into_total(self) -> Option<TotalForDuration> {
        self.result
            .and_then(|r| r.total_for_duration)
            .or(self.total_for_duration)
    }
}

/// A container of a right-sizing item, v1 or v2 (§8), casing variants aliased.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RightsizingContainer {
    #[serde(default, alias = "containerName")]
    pub name: Option<String>,
    #[serde(
        default,
        rename = "requestedCPU",
        alias = "requestedCpu",
        deserialize_with = "lenient::num"
    )]
    pub requested_cpu: Option<f64>,
    #[serde(
        default,
        rename = "suggestedCPU",
        alias = "suggestedCpu",
        deserialize_with = "lenient::num"
    )]
    pub suggested_cpu: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub requested_memory: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub suggested_memory: Option<f64>,
}

/// A right-sizing item: v2 `recommendations` (§8.2) or v1 `suggestion` (§8.1), which name the
/// workload differently (`workloadName` / `resourceName`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RightsizingItem {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "resourceName", alias = "deploymentName")]
    pub workload_name: Option<String>,
    #[serde(default, alias = "resourceType")]
    pub workload_type: Option<String>,
    #[serde(
        default,
        rename = "requestedCPU",
        alias = "requestedCpu",
        deserialize_with = "lenient::num"
    )]
    pub requested_cpu: Option<f64>,
    #[serde(
        default,
        rename = "suggestedCPU",
        alias = "suggestedCpu",
        deserialize_with = "lenient::num"
    )]
    pub suggested_cpu: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub requested_memory: Option<f64>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub suggested_memory: Option<f64>,
    #[serde(
        default,
        alias = "monthlyMaxSavings\"",
        deserialize_with = "lenient::num"
    )]
    pub monthly_max_savings: Option<f64>,
    #[serde(default)]
    pub optimization_status: Option<String>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub applied_at: Time,
    #[serde(default)]
    pub containers: Vec<RightsizingContainer>,
}

/// Right-sizing items and the route version that produced them.
#[derive(Debug, Clone)]
pub struct Rightsizing {
    pub api_version: &'static str,
    pub items: Vec<RightsizingItem>,
}

/// `GET /aws/potentialSavings` (§9.1); `potentialSavings` is monthly USD.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PotentialSaving {
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub instances: Option<f64>,
    #[serde(default)]
    pub instance_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub potential_savings: Option<f64>,
}

/// `GET /audit/events` (§11). `context` is a string holding JSON.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub action_type: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub resource_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Time,
    #[serde(default, deserialize_with = "context_text")]
    pub context: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default, deserialize_with = "lenient::num")]
    pub response_status: Option<f64>,
}

/// `context` is documented as a string of JSON; an object is kept as its JSON text too.
fn context_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(text),
        Some(other) => Some(other.to_string()),
    })
}

/// One row of the organisation instance-cost CSV (§10), one instance over the requested window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceCostRow {
    pub id: Option<String>,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub resource_id: Option<String>,
    pub cloud_provider: Option<String>,
    pub instance_id: Option<String>,
    pub instance_type: Option<String>,
    pub region: Option<String>,
    pub use_case: Option<String>,
    pub life_cycle: Option<String>,
    pub product: Option<String>,
    pub launch_time: Time,
    pub termination_time: Time,
    pub running_hours: Option<f64>,
    pub od_hourly_price: Option<f64>,
    pub od_cost: Option<f64>,
    pub actual_cost: Option<f64>,
    pub savings: Option<f64>,
    pub reservation_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcp_labels_are_read_and_its_network_tags_skipped() {
        let gcp: LaunchSpecification = serde_json::from_str(
            r#"{"tags":["http-server","allow-ssh"],"labels":[{"key":"team","value":"ml"},{"key":"env","value":"dev"}]}"#,
        )
        .unwrap();
        assert_eq!(gcp.tags, Some(Vec::new()));
        let labels: Vec<_> = gcp
            .labels
            .unwrap()
            .into_iter()
            .map(|t| (t.tag_key.unwrap(), t.tag_value.unwrap()))
            .collect();
        assert_eq!(
            labels,
            [("team".into(), "ml".into()), ("env".into(), "dev".into())]
        );
        let aws: LaunchSpecification =
            serde_json::from_str(r#"{"tags":[{"tagKey":"team","tagValue":"web"}],"labels":null}"#)
                .unwrap();
        assert_eq!(aws.tags.unwrap()[0].tag_value.as_deref(), Some("web"));
        assert_eq!(aws.labels, None);
    }

    #[test]
    fn rightsizing_casing_variants_decode_alike() {
        let upper: RightsizingItem = serde_json::from_str(
            r#"{"workloadName":"api","requestedCPU":"50","suggestedCPU":4,"containers":[{"name":"c","requestedCPU":40,"suggestedCPU":2}]}"#,
        )
        .unwrap();
        let lower: RightsizingItem = serde_json::from_str(
            r#"{"resourceName":"api","requestedCpu":50,"suggestedCpu":4,"containers":[{"name":"c","requestedCpu":40,"suggestedCpu":2}]}"#,
        )
        .unwrap();
        for item in [upper, lower] {
            assert_eq!(item.workload_name.as_deref(), Some("api"));
            assert_eq!(
                (item.requested_cpu, item.suggested_cpu),
                (Some(50.0), Some(4.0))
            );
            assert_eq!(item.containers[0].suggested_cpu, Some(2.0));
        }
    }

    #[test]
    fn aggregated_costs_real_capture_shape() {
        let item: AggregatedCostsItem = serde_json::from_str(
            r#"{"result":{"totalForDuration":{"startTime":"Mon Jul 01 00:00:00 UTC 2024","endTime":"Tue Jul 30 00:00:00 UTC 2024",
              "summary":{"total":101.95,"compute":{"total":101.31,"workloads":{"total":101.31},"headroom":{"total":0}},
                 "storage":{"total":0.63},"networking":{"totalCost":0.015,"total":{"out":{"cost":0.015,"usage":0.167}}}},
              "detailedCosts":{"groupedBy":"n.l.app","aggregations":{"seo-cms":{"summary":{"total":0.104,"networking":{}},
                "resources":[{"metaData":{"name":"seo-cms","type":"Deployment","namespace":"preprod"},"total":0.104,"compute":{"total":0.088},"storage":{"total":0.016},"networking":{}},
                             {"metadata":{"name":"UnusedStorage","type":"UnusedStorage"},"total":0,"compute":{},"storage":{"total":0},"networking":{}}]}}}}}}"#,
        )
        .unwrap();
        let total = item.into_total().unwrap();
        assert_eq!(total.summary.unwrap().total, Some(101.95));
        let aggregation = &total.detailed_costs.unwrap().aggregations["seo-cms"];
        let first = aggregation.resources[0].metadata.as_ref().unwrap();
        assert_eq!(first.namespace.as_deref(), Some("preprod"));
        assert_eq!(
            aggregation.resources[1].compute.as_ref().unwrap().total,
            None
        );
    }
}

//! The synthetic Spot organisation and its ground truth: `generate` builds only the structure (accounts, Elastigroups, EMR scalers, managed instances, Ocean clusters); every cost is computed on demand as a pure function of (seed, resource id, day) in integer micro-USD, so that every total adds up exactly. With restatement on, the few days just before "today" are provisional (90 % of the running time), so those days also depend on today.
//!
//! The atom is [`InstanceDay`]: one compute instance on one UTC day. Every per-resource,
//! per-account and per-cluster figure is a sum of atoms, and the Ocean workload, headroom and
//! unused-storage figures are an exact integer split of the cluster's node costs plus storage
//! and networking. Instances come from "slots": each resource has a few slots, each slot runs a
//! sequence of instances whose lifetimes (1 to 60 days) are fixed by the seed, so an instance
//! keeps its id, type and zone across the days it runs, and counts vary from day to day.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use chrono::{DateTime, NaiveDate, Utc};

use super::catalog::{on_demand_hourly_price, spot_hourly_price};
use super::generate::generate_accounts;
use super::hostile::{make_hostile, HOSTILE_AUDIT_USERS};
use super::rng::{mix_u64, stable_hash, SplitMix64};
use super::Scale;

// ---------------------------------------------------------------------------------------------
// Money and small value types
// ---------------------------------------------------------------------------------------------

/// An amount of US dollars in integer micro-USD (1e-6 USD), so sums are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_micros(micros: i64) -> Money {
        Money(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// The amount in USD as a float (for display and the wire; never for sums).
    pub fn usd(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.0 += other.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|money| money.0).sum())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let absolute = self.0.unsigned_abs();
        write!(
            formatter,
            "{sign}{}.{:06} USD",
            absolute / 1_000_000,
            absolute % 1_000_000
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cloud {
    Aws,
    Gcp,
    Azure,
}

impl Cloud {
    /// The `cloudProvider` value of `GET /setup/account`.
    pub fn account_provider_name(self) -> &'static str {
        match self {
            Cloud::Aws => "AWS",
            Cloud::Gcp => "GCP",
            Cloud::Azure => "AZURE",
        }
    }

    /// The `cloudProvider` value of the instance-costs CSV export.
    pub fn export_provider_name(self) -> &'static str {
        match self {
            Cloud::Aws => "AWS",
            Cloud::Gcp => "GCP",
            Cloud::Azure => "Azure",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    Spot,
    OnDemand,
}

/// What kind of Spot resource an instance belongs to. For Ocean the instance's `resource_id`
/// is its virtual node group (`ols-…`) and the variant carries the cluster id (`o-…`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Elastigroup,
    EmrScaler,
    ManagedInstance,
    OceanCluster(String),
}

/// Running hours (× 1000) and costs of a set of instance-days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CostTotals {
    pub running_hours_milli: i64,
    pub actual: Money,
    pub potential: Money,
}

impl CostTotals {
    pub fn add_instance(&mut self, instance: &InstanceDay) {
        self.running_hours_milli += instance.running_hours_milli;
        self.actual += instance.actual;
        self.potential += instance.potential;
    }

    pub fn from_instances<'a>(instances: impl IntoIterator<Item = &'a InstanceDay>) -> CostTotals {
        let mut totals = CostTotals::default();
        for instance in instances {
            totals.add_instance(instance);
        }
        totals
    }
}

impl Add for CostTotals {
    type Output = CostTotals;
    fn add(self, other: CostTotals) -> CostTotals {
        CostTotals {
            running_hours_milli: self.running_hours_milli + other.running_hours_milli,
            actual: self.actual + other.actual,
            potential: self.potential + other.potential,
        }
    }
}

impl AddAssign for CostTotals {
    fn add_assign(&mut self, other: CostTotals) {
        *self = *self + other;
    }
}

/// One compute instance on one UTC day: the atom every other figure sums from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceDay {
    pub day: NaiveDate,
    pub instance_id: String,
    /// Elastigroup, EMR scaler or managed instance id, or the Ocean virtual node group id (`ols-…`).
    pub resource_id: String,
    pub resource_kind: ResourceKind,
    pub instance_type: String,
    pub region: String,
    pub availability_zone: String,
    pub lifecycle: Lifecycle,
    /// `Some("sir-…")` for AWS spot instances, `None` for on-demand and for GCP/Azure.
    pub spot_instance_request_id: Option<String>,
    /// Hours run within this day, × 1000.
    pub running_hours_milli: i64,
    pub od_hourly_price: Money,
    pub actual: Money,
    /// On-demand equivalent cost.
    pub potential: Money,
    pub launch_time: DateTime<Utc>,
    /// `Some` when the instance terminated during this day, `None` when it was still running at its end.
    pub termination_time: Option<DateTime<Utc>>,
    pub use_case: String,
    /// The export's `product` column: `LINUX` or `WINDOWS`.
    pub product: String,
}

// ---------------------------------------------------------------------------------------------
// Structure
// ---------------------------------------------------------------------------------------------

/// How a resource's instance slots behave; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotPlan {
    /// Slots that always hold an instance.
    pub base_slots: u32,
    /// Slots that hold an instance during some lifetimes only (so counts vary by day).
    pub extra_slots: u32,
    /// The first `on_demand_slots` slots run on-demand, the others spot.
    pub on_demand_slots: u32,
    pub min_lifetime_days: u32,
    pub max_lifetime_days: u32,
    /// Probability that a spot slot falls back to on-demand for one lifetime.
    pub fallback_per_mille: u32,
    /// Costs of each instance-day are rounded to this many micro-USD (100 for EMR, whose
    /// costs are served as 4-decimal strings, so the wire stays exact).
    pub cost_granularity_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Organisation {
    pub organization_id: String,
    pub accounts: Vec<Account>,
    pub seed: u64,
    resource_index: HashMap<String, ResourceLocation>,
    account_index: HashMap<String, usize>,
    reporting_clock: ReportingClock,
    /// Hostile-names mode (see `hostile`): names and some ids carry attacks.
    hostile_names: bool,
    /// The Elastigroup whose capacity a user raises every [`CAPACITY_CHANGE_CYCLE_DAYS`] days
    /// (see [`Organisation::capacity_changes`]), if the organisation has one.
    capacity_change_group: Option<String>,
}

/// Every this many days (counted from 1970-01-01), a user raises one Elastigroup's capacity
/// target eightfold at [`CAPACITY_CHANGE_SECOND_OF_DAY`] and lowers it back two days later at the
/// same time. Any 30 consecutive days hold a raise with at least 14 days of data before it.
pub const CAPACITY_CHANGE_CYCLE_DAYS: i64 = 16;
/// How long a raise lasts, in days.
pub const CAPACITY_CHANGE_DURATION_DAYS: i64 = 2;
/// 09:00:00 UTC: a multiple of 18 s, as every launch and termination time is.
pub const CAPACITY_CHANGE_SECOND_OF_DAY: i64 = 9 * 3600;

/// A user's change of an Elastigroup's capacity target, with a cost effect: from `at`, the
/// group runs `to_target - from_target` more instances (a raise; spot and on-demand in the
/// group's spot percentage), or stops them (a lowering). It appears in the audit log as an `Update group` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityChange {
    pub account_id: String,
    pub group_id: String,
    pub user: String,
    pub at: DateTime<Utc>,
    pub from_target: u32,
    pub to_target: u32,
}

/// Day number meaning "today is not set: use the wall clock".
const TODAY_UNSET: i64 = i64::MIN;

/// The organisation's "today" and restatement window, settable through a shared reference
/// (the server holds the organisation in an `Arc`) and read by every cost computation.
#[derive(Debug)]
struct ReportingClock {
    /// Days since 1970-01-01, or [`TODAY_UNSET`] for the wall clock's UTC day.
    today_day_number: AtomicI64,
    /// Days before today whose costs are still provisional; 0 = no restatement.
    restatement_days: AtomicU32,
}

impl ReportingClock {
    fn new() -> ReportingClock {
        ReportingClock {
            today_day_number: AtomicI64::new(TODAY_UNSET),
            restatement_days: AtomicU32::new(0),
        }
    }

    fn today_day_number(&self) -> i64 {
        self.today_day_number.load(Ordering::Relaxed)
    }

    fn restatement_days(&self) -> u32 {
        self.restatement_days.load(Ordering::Relaxed)
    }
}

impl Clone for ReportingClock {
    fn clone(&self) -> ReportingClock {
        ReportingClock {
            today_day_number: AtomicI64::new(self.today_day_number()),
            restatement_days: AtomicU32::new(self.restatement_days()),
        }
    }
}

impl PartialEq for ReportingClock {
    fn eq(&self, other: &ReportingClock) -> bool {
        self.today_day_number() == other.today_day_number()
            && self.restatement_days() == other.restatement_days()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub cloud: Cloud,
    pub provider_external_id: String,
    pub created_at: DateTime<Utc>,
    pub groups: Vec<Group>,
    pub emr_scalers: Vec<EmrScaler>,
    pub managed_instances: Vec<ManagedInstance>,
    pub clusters: Vec<Cluster>,
    /// AWS resources that Spot does not manage yet (the potential-savings report); empty for GCP and Azure.
    pub unmanaged_resources: Vec<UnmanagedResource>,
}

/// An Elastigroup (AWS or GCP).
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: String,
    pub cloud: Cloud,
    pub region: String,
    pub availability_zones: Vec<String>,
    pub on_demand_type: String,
    pub spot_types: Vec<String>,
    pub preferred_spot_types: Vec<String>,
    pub capacity_minimum: u32,
    pub capacity_maximum: u32,
    pub capacity_target: u32,
    /// Spot percentage (`strategy.risk`).
    pub risk_percent: u32,
    pub on_demand_count: Option<u32>,
    pub availability_vs_cost: String,
    pub fallback_to_od: bool,
    pub utilize_reserved_instances: bool,
    /// `compute.product`, e.g. `Linux/UNIX`.
    pub product: String,
    pub use_case: String,
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub slot_plan: SlotPlan,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmrScaler {
    pub id: String,
    pub name: String,
    pub description: String,
    pub region: String,
    pub availability_zones: Vec<String>,
    pub master_type: String,
    pub core_type: String,
    pub task_types: Vec<String>,
    pub core_count: u32,
    pub task_minimum: u32,
    pub task_maximum: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub slot_plan: SlotPlan,
    /// On-demand slot k runs `on_demand_slot_types[k]` (master first, then core nodes).
    pub on_demand_slot_types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ManagedInstance {
    pub id: String,
    pub name: String,
    pub region: String,
    pub availability_zones: Vec<String>,
    pub lifecycle: Lifecycle,
    pub orientation: String,
    pub fallback_to_od: bool,
    pub instance_types: Vec<String>,
    pub preferred_type: String,
    pub product: String,
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub slot_plan: SlotPlan,
}

/// An Ocean Kubernetes cluster (EKS/kOps on AWS, GKE, AKS).
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub cloud: Cloud,
    pub controller_cluster_id: String,
    pub region: String,
    pub availability_zones: Vec<String>,
    pub capacity_minimum: u32,
    pub capacity_maximum: u32,
    pub capacity_target: u32,
    pub spot_percentage: u32,
    pub fallback_to_od: bool,
    pub utilize_reserved_instances: bool,
    /// AKS: resource group of the managed cluster; empty elsewhere.
    pub resource_group_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub virtual_node_groups: Vec<VirtualNodeGroup>,
    pub namespaces: Vec<Namespace>,
}

/// An Ocean virtual node group (launch spec / node pool), id `ols-…`. Its instances are the cluster's nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualNodeGroup {
    pub id: String,
    pub name: String,
    pub instance_types: Vec<String>,
    pub slot_plan: SlotPlan,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Namespace {
    pub name: String,
    /// Labels from the keys `team`, `cost-center` and `env`; some namespaces lack some keys.
    pub labels: BTreeMap<String, String>,
    pub workloads: Vec<Workload>,
    pub has_unused_storage: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub name: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet` or `Job`.
    pub kind: String,
    pub base_replicas: u32,
    pub containers: Vec<Container>,
    /// Typical storage cost per day (micro-USD) before the daily variation.
    pub base_storage_micros_per_day: i64,
    /// Typical egress cost per day (micro-USD); 0 on GKE.
    pub base_networking_micros_per_day: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub name: String,
    pub cpu_request_millicores: i64,
    pub memory_request_mib: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UnmanagedResource {
    /// `Auto Scaling Group`, `Elastic Load Balancer` or `EC2Instance`.
    pub resource_type: String,
    pub name: String,
    pub region: String,
    pub base_instances: u32,
    pub instance_types: Vec<String>,
}

/// Where an id lives in the organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceLocation {
    Group {
        account_index: usize,
        group_index: usize,
    },
    EmrScaler {
        account_index: usize,
        scaler_index: usize,
    },
    ManagedInstance {
        account_index: usize,
        instance_index: usize,
    },
    Cluster {
        account_index: usize,
        cluster_index: usize,
    },
}

impl ResourceLocation {
    pub fn account_index(self) -> usize {
        match self {
            ResourceLocation::Group { account_index, .. }
            | ResourceLocation::EmrScaler { account_index, .. }
            | ResourceLocation::ManagedInstance { account_index, .. }
            | ResourceLocation::Cluster { account_index, .. } => account_index,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ground-truth outputs beyond instances
// ---------------------------------------------------------------------------------------------

/// One Ocean cluster on one day. `compute` = node costs = Σ workload compute + headroom;
/// `storage` = Σ workload storage + Σ namespace unused storage; `total` = compute + storage + networking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterDay {
    pub compute: Money,
    pub storage: Money,
    pub networking: Money,
    pub headroom: Money,
    pub unused_storage: Money,
    pub total: Money,
    pub namespaces: Vec<NamespaceDay>,
}

impl ClusterDay {
    /// Adds another day of the same cluster (same namespace and workload order) to this one.
    pub fn accumulate(&mut self, other: &ClusterDay) {
        if self.namespaces.is_empty() && self.total == Money::ZERO {
            *self = other.clone();
            return;
        }
        self.compute += other.compute;
        self.storage += other.storage;
        self.networking += other.networking;
        self.headroom += other.headroom;
        self.unused_storage += other.unused_storage;
        self.total += other.total;
        for (namespace, other_namespace) in self.namespaces.iter_mut().zip(&other.namespaces) {
            namespace.unused_storage += other_namespace.unused_storage;
            for (workload, other_workload) in namespace
                .workloads
                .iter_mut()
                .zip(&other_namespace.workloads)
            {
                workload.compute += other_workload.compute;
                workload.storage += other_workload.storage;
                workload.networking += other_workload.networking;
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceDay {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub unused_storage: Money,
    pub workloads: Vec<WorkloadDay>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadDay {
    pub name: String,
    pub kind: String,
    pub compute: Money,
    pub storage: Money,
    pub networking: Money,
}

/// How a storage amount divides into persistent-volume block storage, non-PV block storage
/// (root volumes) and file storage (EFS). `persistent + non_persistent + file` = the amount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageSplit {
    pub persistent_block: Money,
    pub non_persistent_block: Money,
    pub file: Money,
}

/// The storage split the simulator reports for a workload of `kind` on `cloud`. Only AWS has
/// file storage; StatefulSets are mostly persistent volumes, everything else root volumes.
pub fn storage_split(cloud: Cloud, kind: &str, storage: Money) -> StorageSplit {
    let amount = storage.micros();
    if kind == "StatefulSet" {
        let persistent = amount * 8 / 10;
        let file = if cloud == Cloud::Aws { amount / 10 } else { 0 };
        StorageSplit {
            persistent_block: Money(persistent),
            file: Money(file),
            non_persistent_block: Money(amount - persistent - file),
        }
    } else {
        StorageSplit {
            persistent_block: Money::ZERO,
            non_persistent_block: storage,
            file: Money::ZERO,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RightsizingWorkload {
    pub namespace: String,
    pub workload_name: String,
    pub workload_type: String,
    pub requested_cpu_millicores: i64,
    pub suggested_cpu_millicores: i64,
    pub requested_memory_mib: i64,
    pub suggested_memory_mib: i64,
    pub monthly_savings: Money,
    pub containers: Vec<RightsizingContainer>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RightsizingContainer {
    pub name: String,
    pub requested_cpu_millicores: i64,
    pub suggested_cpu_millicores: i64,
    pub requested_memory_mib: i64,
    pub suggested_memory_mib: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PotentialSaving {
    pub resource_type: String,
    pub name: String,
    pub region: String,
    pub instances: u32,
    pub instance_types: Vec<String>,
    pub monthly_savings: Money,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub user: String,
    pub namespace: String,
    pub action_type: String,
    pub resource_type: String,
    /// Served as a bare JSON number when it is all digits (a user id), else as a string.
    pub resource_id: String,
    pub account_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// A JSON document, served as a string (the real API's `context`).
    pub context_json: String,
    pub source: String,
    pub agent: String,
    pub response_status: u16,
}

fn rounded_division(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator / 2).div_euclid(denominator)
}

fn round_to_granularity(micros: i64, granularity: i64) -> i64 {
    if granularity <= 1 {
        micros
    } else {
        rounded_division(micros, granularity) * granularity
    }
}

pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

fn epoch_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Days since 1970-01-01 (negative before).
pub fn day_number(day: NaiveDate) -> i64 {
    day.signed_duration_since(epoch_day()).num_days()
}

/// The UTC day with the given number of days since 1970-01-01.
pub fn day_from_number(number: i64) -> NaiveDate {
    epoch_day() + chrono::Duration::days(number)
}

pub(crate) fn timestamp_from_seconds(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The slot engine: instances of one resource on one day
// ---------------------------------------------------------------------------------------------

struct SlotSource<'a> {
    resource_id: &'a str,
    resource_kind: ResourceKind,
    cloud: Cloud,
    region: &'a str,
    availability_zones: &'a [String],
    plan: &'a SlotPlan,
    /// On-demand slot k runs `on_demand_types[k % len]`.
    on_demand_types: &'a [String],
    spot_types: &'a [String],
    use_case: &'a str,
    export_product: &'a str,
    /// Prefix of GCP/Azure instance names.
    instance_name_prefix: &'a str,
}

impl Organisation {
    fn instances_of_source(
        &self,
        source: &SlotSource<'_>,
        day: NaiveDate,
        output: &mut Vec<InstanceDay>,
    ) {
        let plan = source.plan;
        let is_provisional = self.is_provisional(day);
        let today_number = day_number(day);
        let day_start_seconds = today_number * SECONDS_PER_DAY;
        let day_end_seconds = day_start_seconds + SECONDS_PER_DAY;
        let lifetime_span = u64::from(
            plan.max_lifetime_days
                .saturating_sub(plan.min_lifetime_days),
        ) + 1;
        let resource_hash = stable_hash(self.seed, &[source.resource_id, "slot"]);
        let planned_slots = plan.base_slots + plan.extra_slots;
        // A raised capacity adds always-on slots, running from the raise to the lowering.
        let raise = self.capacity_raise(source.resource_id, day);
        let added_slots = raise.map_or(0, |raise| raise.added_slots);
        for slot_number in 0..planned_slots + added_slots {
            let slot_hash = mix_u64(resource_hash, u64::from(slot_number));
            let lifetime_days =
                i64::from(plan.min_lifetime_days.max(1)) + (slot_hash % lifetime_span) as i64;
            let phase = ((slot_hash >> 20) % lifetime_days as u64) as i64;
            let period = (today_number + phase).div_euclid(lifetime_days);
            let first_day_number = period * lifetime_days - phase;
            let last_day_number = first_day_number + lifetime_days - 1;
            let mut period_random = SplitMix64::new(mix_u64(slot_hash, period as u64));

            // Draw everything in a fixed order so an instance looks the same on every day it runs.
            let is_active_this_period = period_random.chance(0.6);
            let launch_offset_seconds = 18 * period_random.next_below(2400) as i64;
            let termination_offset_seconds = 43_200 + 18 * period_random.next_below(2400) as i64;
            let spot_type_pick =
                period_random.next_below(source.spot_types.len().max(1) as u64) as usize;
            let zone_pick =
                period_random.next_below(source.availability_zones.len().max(1) as u64) as usize;
            let falls_back_to_on_demand =
                period_random.next_below(1000) < u64::from(plan.fallback_per_mille);
            let instance_token = period_random.hex_string(16);
            let request_token = period_random.alphanumeric_string(8);

            let is_added = slot_number >= planned_slots;
            if slot_number >= plan.base_slots && !is_added && !is_active_this_period {
                continue;
            }
            let mut launch_seconds = first_day_number * SECONDS_PER_DAY + launch_offset_seconds;
            let mut termination_seconds =
                last_day_number * SECONDS_PER_DAY + termination_offset_seconds;
            if let Some(raise) = raise.filter(|_| is_added) {
                launch_seconds = launch_seconds.max(raise.from_seconds);
                termination_seconds = termination_seconds.min(raise.until_seconds);
            }
            let overlap_seconds =
                termination_seconds.min(day_end_seconds) - launch_seconds.max(day_start_seconds);
            if overlap_seconds <= 0 {
                continue;
            }
            // Launch and termination are multiples of 18 s from midnight, and 18 s = 5 milli-hours.
            let mut running_hours_milli = overlap_seconds * 5 / 18;
            if is_provisional {
                running_hours_milli = provisional_running_hours_milli(running_hours_milli);
            }

            let added_on_demand = raise.is_some_and(|raise| {
                is_added && slot_number - planned_slots < raise.on_demand_slots
            });
            let lifecycle = if slot_number < plan.on_demand_slots
                || added_on_demand
                || (falls_back_to_on_demand && !is_added)
                || source.spot_types.is_empty()
            {
                Lifecycle::OnDemand
            } else {
                Lifecycle::Spot
            };
            let instance_type = match lifecycle {
                Lifecycle::OnDemand if !source.on_demand_types.is_empty() => source.on_demand_types
                    [slot_number as usize % source.on_demand_types.len()]
                .clone(),
                _ => source
                    .spot_types
                    .get(spot_type_pick)
                    .cloned()
                    .unwrap_or_else(|| "m5.large".to_string()),
            };
            let availability_zone = source
                .availability_zones
                .get(zone_pick)
                .cloned()
                .unwrap_or_else(|| source.region.to_string());
            let on_demand_price =
                on_demand_hourly_price(&instance_type, source.region, source.export_product);
            let hourly_price = match lifecycle {
                Lifecycle::OnDemand => on_demand_price,
                Lifecycle::Spot => spot_hourly_price(
                    self.seed,
                    source.cloud,
                    &instance_type,
                    &availability_zone,
                    today_number,
                    on_demand_price,
                ),
            };
            let granularity = plan.cost_granularity_micros;
            let potential_micros = round_to_granularity(
                rounded_division(on_demand_price.micros() * running_hours_milli, 1000),
                granularity,
            );
            let actual_micros = round_to_granularity(
                rounded_division(hourly_price.micros() * running_hours_milli, 1000),
                granularity,
            )
            .min(potential_micros);
            let instance_id = match source.cloud {
                Cloud::Aws => format!("i-0{}", &instance_token[..16]),
                Cloud::Gcp => format!("{}-{}", source.instance_name_prefix, &instance_token[..8]),
                Cloud::Azure => format!(
                    "{}-vmss{}",
                    source.instance_name_prefix,
                    &instance_token[..8]
                ),
            };
            let spot_instance_request_id = match (source.cloud, lifecycle) {
                (Cloud::Aws, Lifecycle::Spot) => Some(format!("sir-{request_token}")),
                _ => None,
            };
            output.push(InstanceDay {
                day,
                instance_id,
                resource_id: source.resource_id.to_string(),
                resource_kind: source.resource_kind.clone(),
                instance_type,
                region: source.region.to_string(),
                availability_zone,
                lifecycle,
                spot_instance_request_id,
                running_hours_milli,
                od_hourly_price: on_demand_price,
                actual: Money(actual_micros),
                potential: Money(potential_micros),
                launch_time: timestamp_from_seconds(launch_seconds),
                termination_time: (termination_seconds <= day_end_seconds)
                    .then(|| timestamp_from_seconds(termination_seconds)),
                use_case: source.use_case.to_string(),
                product: source.export_product.to_string(),
            });
        }
    }
}

/// What a provisional day reports of an instance's running time: 90 %, rounded down to a
/// multiple of 5 milli-hours (18 s) like every running time.
fn provisional_running_hours_milli(running_hours_milli: i64) -> i64 {
    running_hours_milli * 9 / 10 / 5 * 5
}

fn export_product_of(product: &str) -> &'static str {
    if product.to_ascii_lowercase().contains("windows") {
        "WINDOWS"
    } else {
        "LINUX"
    }
}

// ---------------------------------------------------------------------------------------------
// Ground truth
// ---------------------------------------------------------------------------------------------

impl Organisation {
    /// Builds the organisation's structure for a seed and scale. Cheap: no costs are computed here.
    pub fn generate(seed: u64, scale: Scale) -> Organisation {
        Organisation::generate_with(seed, scale, false)
    }

    /// [`Organisation::generate`], with hostile names and ids when `hostile_names` is set (see
    /// [`super::SimConfig::hostile_names`]); the ground truth holds the same hostile strings.
    pub fn generate_with(seed: u64, scale: Scale, hostile_names: bool) -> Organisation {
        let (organization_id, mut accounts) = generate_accounts(seed, scale);
        if hostile_names {
            make_hostile(&mut accounts);
        }
        let mut resource_index = HashMap::new();
        let mut account_index = HashMap::new();
        for (index, account) in accounts.iter().enumerate() {
            account_index.insert(account.id.clone(), index);
            for (group_index, group) in account.groups.iter().enumerate() {
                resource_index.insert(
                    group.id.clone(),
                    ResourceLocation::Group {
                        account_index: index,
                        group_index,
                    },
                );
            }
            for (scaler_index, scaler) in account.emr_scalers.iter().enumerate() {
                resource_index.insert(
                    scaler.id.clone(),
                    ResourceLocation::EmrScaler {
                        account_index: index,
                        scaler_index,
                    },
                );
            }
            for (instance_index, managed) in account.managed_instances.iter().enumerate() {
                resource_index.insert(
                    managed.id.clone(),
                    ResourceLocation::ManagedInstance {
                        account_index: index,
                        instance_index,
                    },
                );
            }
            for (cluster_index, cluster) in account.clusters.iter().enumerate() {
                resource_index.insert(
                    cluster.id.clone(),
                    ResourceLocation::Cluster {
                        account_index: index,
                        cluster_index,
                    },
                );
            }
        }
        // The second account's first Elastigroup (the first account's when there is one account):
        // in the default organisation a group whose raise more than doubles its account's cost.
        let capacity_change_group = accounts
            .get(1)
            .filter(|account| !account.groups.is_empty())
            .or(accounts.first())
            .and_then(|account| account.groups.first())
            .map(|group| group.id.clone());
        Organisation {
            organization_id,
            accounts,
            seed,
            resource_index,
            account_index,
            reporting_clock: ReportingClock::new(),
            hostile_names,
            capacity_change_group,
        }
    }

    /// Whether names and some ids carry hostile payloads.
    pub fn hostile_names(&self) -> bool {
        self.hostile_names
    }

    /// The simulator's "today": the day set with [`Organisation::set_today`], else the wall
    /// clock's UTC day. The snapshot routes report it and restatement counts ages from it.
    pub fn today(&self) -> NaiveDate {
        match self.reporting_clock.today_day_number() {
            TODAY_UNSET => Utc::now().date_naive(),
            number => day_from_number(number),
        }
    }

    /// Fixes "today" (it no longer follows the wall clock). Takes effect for every later
    /// request and ground-truth call.
    pub fn set_today(&self, today: NaiveDate) {
        self.reporting_clock
            .today_day_number
            .store(day_number(today), Ordering::Relaxed);
    }

    /// How many days before today are provisional (0 = no restatement).
    pub fn restatement_days(&self) -> u32 {
        self.reporting_clock.restatement_days()
    }

    /// Sets how many days before today are provisional: a day whose age (today − day) is
    /// within 1..=`days` reports 90 % of each instance's running time, and every cost derived
    /// from it; older days, today and later days are final. 0 turns restatement off.
    pub fn set_restatement_days(&self, days: u32) {
        self.reporting_clock
            .restatement_days
            .store(days, Ordering::Relaxed);
    }

    /// Whether `day`'s usage is still provisional (see [`Organisation::set_restatement_days`]).
    pub fn is_provisional(&self, day: NaiveDate) -> bool {
        let restatement_days = self.restatement_days();
        if restatement_days == 0 {
            return false;
        }
        let age_days = day_number(self.today()) - day_number(day);
        (1..=i64::from(restatement_days)).contains(&age_days)
    }

    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.account_index
            .get(account_id)
            .map(|index| &self.accounts[*index])
    }

    /// The oldest account: what the API uses when a request has no `accountId`.
    pub fn default_account(&self) -> Option<&Account> {
        self.accounts
            .iter()
            .min_by_key(|account| (account.created_at, account.id.clone()))
    }

    /// Where a group, EMR scaler, managed instance or cluster id lives.
    pub fn locate(&self, resource_id: &str) -> Option<ResourceLocation> {
        self.resource_index.get(resource_id).copied()
    }

    pub fn find_group(&self, group_id: &str) -> Option<(&Account, &Group)> {
        match self.locate(group_id)? {
            ResourceLocation::Group {
                account_index,
                group_index,
            } => {
                let account = &self.accounts[account_index];
                Some((account, &account.groups[group_index]))
            }
            _ => None,
        }
    }

    pub fn find_emr_scaler(&self, scaler_id: &str) -> Option<(&Account, &EmrScaler)> {
        match self.locate(scaler_id)? {
            ResourceLocation::EmrScaler {
                account_index,
                scaler_index,
            } => {
                let account = &self.accounts[account_index];
                Some((account, &account.emr_scalers[scaler_index]))
            }
            _ => None,
        }
    }

    pub fn find_managed_instance(
        &self,
        managed_instance_id: &str,
    ) -> Option<(&Account, &ManagedInstance)> {
        match self.locate(managed_instance_id)? {
            ResourceLocation::ManagedInstance {
                account_index,
                instance_index,
            } => {
                let account = &self.accounts[account_index];
                Some((account, &account.managed_instances[instance_index]))
            }
            _ => None,
        }
    }

    pub fn find_cluster(&self, cluster_id: &str) -> Option<(&Account, &Cluster)> {
        match self.locate(cluster_id)? {
            ResourceLocation::Cluster {
                account_index,
                cluster_index,
            } => {
                let account = &self.accounts[account_index];
                Some((account, &account.clusters[cluster_index]))
            }
            _ => None,
        }
    }

    fn push_group_instances(&self, group: &Group, day: NaiveDate, output: &mut Vec<InstanceDay>) {
        let on_demand_types = std::slice::from_ref(&group.on_demand_type);
        self.instances_of_source(
            &SlotSource {
                resource_id: &group.id,
                resource_kind: ResourceKind::Elastigroup,
                cloud: group.cloud,
                region: &group.region,
                availability_zones: &group.availability_zones,
                plan: &group.slot_plan,
                on_demand_types,
                spot_types: &group.spot_types,
                use_case: &group.use_case,
                export_product: export_product_of(&group.product),
                instance_name_prefix: &group.name,
            },
            day,
            output,
        );
    }

    fn push_emr_scaler_instances(
        &self,
        scaler: &EmrScaler,
        day: NaiveDate,
        output: &mut Vec<InstanceDay>,
    ) {
        self.instances_of_source(
            &SlotSource {
                resource_id: &scaler.id,
                resource_kind: ResourceKind::EmrScaler,
                cloud: Cloud::Aws,
                region: &scaler.region,
                availability_zones: &scaler.availability_zones,
                plan: &scaler.slot_plan,
                on_demand_types: &scaler.on_demand_slot_types,
                spot_types: &scaler.task_types,
                use_case: "EMR",
                export_product: "LINUX",
                instance_name_prefix: &scaler.name,
            },
            day,
            output,
        );
    }

    fn push_managed_instance_instances(
        &self,
        managed: &ManagedInstance,
        day: NaiveDate,
        output: &mut Vec<InstanceDay>,
    ) {
        let on_demand_types = std::slice::from_ref(&managed.preferred_type);
        self.instances_of_source(
            &SlotSource {
                resource_id: &managed.id,
                resource_kind: ResourceKind::ManagedInstance,
                cloud: Cloud::Aws,
                region: &managed.region,
                availability_zones: &managed.availability_zones,
                plan: &managed.slot_plan,
                on_demand_types,
                spot_types: &managed.instance_types,
                use_case: "Stateful",
                export_product: export_product_of(&managed.product),
                instance_name_prefix: &managed.name,
            },
            day,
            output,
        );
    }

    fn push_cluster_node_instances(
        &self,
        cluster: &Cluster,
        day: NaiveDate,
        output: &mut Vec<InstanceDay>,
    ) {
        for node_group in &cluster.virtual_node_groups {
            let on_demand_types =
                &node_group.instance_types[..node_group.instance_types.len().min(1)];
            let prefix = match cluster.cloud {
                Cloud::Gcp => format!("gke-{}-{}", cluster.name, node_group.name),
                Cloud::Azure => format!("aks-{}", node_group.name),
                Cloud::Aws => String::new(),
            };
            self.instances_of_source(
                &SlotSource {
                    resource_id: &node_group.id,
                    resource_kind: ResourceKind::OceanCluster(cluster.id.clone()),
                    cloud: cluster.cloud,
                    region: &cluster.region,
                    availability_zones: &cluster.availability_zones,
                    plan: &node_group.slot_plan,
                    on_demand_types,
                    spot_types: &node_group.instance_types,
                    use_case: "K8S",
                    export_product: "LINUX",
                    instance_name_prefix: &prefix,
                },
                day,
                output,
            );
        }
    }

    /// Every compute instance that ran on `day` in the account: Elastigroups (all lifecycles),
    /// EMR scalers, managed instances and Ocean nodes. Empty for an unknown account.
    pub fn instances(&self, account_id: &str, day: NaiveDate) -> Vec<InstanceDay> {
        let mut output = Vec::new();
        if let Some(account) = self.account(account_id) {
            for group in &account.groups {
                self.push_group_instances(group, day, &mut output);
            }
            for scaler in &account.emr_scalers {
                self.push_emr_scaler_instances(scaler, day, &mut output);
            }
            for managed in &account.managed_instances {
                self.push_managed_instance_instances(managed, day, &mut output);
            }
            for cluster in &account.clusters {
                self.push_cluster_node_instances(cluster, day, &mut output);
            }
        }
        output
    }

    pub fn group_instances(&self, group_id: &str, day: NaiveDate) -> Vec<InstanceDay> {
        let mut output = Vec::new();
        if let Some((_, group)) = self.find_group(group_id) {
            self.push_group_instances(group, day, &mut output);
        }
        output
    }

    pub fn emr_scaler_instances(&self, scaler_id: &str, day: NaiveDate) -> Vec<InstanceDay> {
        let mut output = Vec::new();
        if let Some((_, scaler)) = self.find_emr_scaler(scaler_id) {
            self.push_emr_scaler_instances(scaler, day, &mut output);
        }
        output
    }

    pub fn managed_instance_instances(
        &self,
        managed_instance_id: &str,
        day: NaiveDate,
    ) -> Vec<InstanceDay> {
        let mut output = Vec::new();
        if let Some((_, managed)) = self.find_managed_instance(managed_instance_id) {
            self.push_managed_instance_instances(managed, day, &mut output);
        }
        output
    }

    /// The Ocean nodes of a cluster on a day.
    pub fn cluster_node_instances(&self, cluster_id: &str, day: NaiveDate) -> Vec<InstanceDay> {
        let mut output = Vec::new();
        if let Some((_, cluster)) = self.find_cluster(cluster_id) {
            self.push_cluster_node_instances(cluster, day, &mut output);
        }
        output
    }

    /// An Elastigroup's day, all lifecycles (zero for an unknown id).
    pub fn group_day(&self, group_id: &str, day: NaiveDate) -> CostTotals {
        CostTotals::from_instances(&self.group_instances(group_id, day))
    }

    /// An Elastigroup's day, spot instances only: what `GET /aws/ec2/group/{id}/costs` reports.
    pub fn group_spot_day(&self, group_id: &str, day: NaiveDate) -> CostTotals {
        let instances = self.group_instances(group_id, day);
        CostTotals::from_instances(
            instances
                .iter()
                .filter(|instance| instance.lifecycle == Lifecycle::Spot),
        )
    }

    pub fn emr_scaler_day(&self, scaler_id: &str, day: NaiveDate) -> CostTotals {
        CostTotals::from_instances(&self.emr_scaler_instances(scaler_id, day))
    }

    pub fn managed_instance_day(&self, managed_instance_id: &str, day: NaiveDate) -> CostTotals {
        CostTotals::from_instances(&self.managed_instance_instances(managed_instance_id, day))
    }

    /// All of an account's instances on a day (= Σ `instances(account, day)`).
    pub fn account_day(&self, account_id: &str, day: NaiveDate) -> CostTotals {
        CostTotals::from_instances(&self.instances(account_id, day))
    }

    /// An Ocean cluster's day: node compute split into workloads and headroom, plus storage and
    /// networking. Default (all zero, no namespaces) for an unknown id.
    pub fn cluster_day(&self, cluster_id: &str, day: NaiveDate) -> ClusterDay {
        let Some((_, cluster)) = self.find_cluster(cluster_id) else {
            return ClusterDay::default();
        };
        let mut nodes = Vec::new();
        self.push_cluster_node_instances(cluster, day, &mut nodes);
        let compute_micros: i64 = nodes.iter().map(|node| node.actual.micros()).sum();
        let node_count = nodes.len() as i64;

        let mut day_random = SplitMix64::new(mix_u64(
            stable_hash(self.seed, &[&cluster.id, "cluster-day"]),
            day_number(day) as u64,
        ));
        let headroom_per_mille = day_random.next_in_range(30, 150);
        let headroom_micros = rounded_division(compute_micros * headroom_per_mille, 1000);
        let workload_compute_micros = compute_micros - headroom_micros;

        // Weights: requested CPU + memory/4 per replica, replicas varying by day; DaemonSets run on every node.
        let mut weights = Vec::new();
        let mut namespaces = Vec::with_capacity(cluster.namespaces.len());
        for namespace in &cluster.namespaces {
            let mut workloads = Vec::with_capacity(namespace.workloads.len());
            for workload in &namespace.workloads {
                let per_replica: i64 = workload
                    .containers
                    .iter()
                    .map(|container| {
                        container.cpu_request_millicores + container.memory_request_mib / 4
                    })
                    .sum::<i64>()
                    .max(1);
                let replica_variation =
                    day_random.next_in_range(0, i64::from(workload.base_replicas / 2 + 1));
                let replicas = match workload.kind.as_str() {
                    "DaemonSet" => node_count.max(1),
                    "Job" => 1,
                    _ => i64::from(workload.base_replicas) + replica_variation,
                };
                let activity_per_mille = if workload.kind == "Job" {
                    day_random.next_in_range(100, 1000)
                } else {
                    1000
                };
                weights.push(per_replica * replicas * activity_per_mille);
                let storage_per_mille = day_random.next_in_range(900, 1100);
                let storage = rounded_division(
                    workload.base_storage_micros_per_day * storage_per_mille,
                    1000,
                );
                let networking_is_quiet = day_random.chance(0.15);
                let networking_per_mille = day_random.next_in_range(500, 1500);
                let networking = if networking_is_quiet {
                    0
                } else {
                    rounded_division(
                        workload.base_networking_micros_per_day * networking_per_mille,
                        1000,
                    )
                };
                workloads.push(WorkloadDay {
                    name: workload.name.clone(),
                    kind: workload.kind.clone(),
                    compute: Money::ZERO,
                    storage: Money(storage),
                    networking: Money(networking),
                });
            }
            let unused_storage = if namespace.has_unused_storage {
                day_random.next_in_range(20_000, 400_000)
            } else {
                0
            };
            namespaces.push(NamespaceDay {
                name: namespace.name.clone(),
                labels: namespace.labels.clone(),
                unused_storage: Money(unused_storage),
                workloads,
            });
        }

        let shares = split_by_largest_remainder(workload_compute_micros, &weights);
        let mut share_index = 0;
        for namespace in &mut namespaces {
            for workload in &mut namespace.workloads {
                workload.compute = Money(shares[share_index]);
                share_index += 1;
            }
        }
        let unused_storage: Money = namespaces
            .iter()
            .map(|namespace| namespace.unused_storage)
            .sum();
        let workload_storage: Money = namespaces
            .iter()
            .flat_map(|namespace| &namespace.workloads)
            .map(|workload| workload.storage)
            .sum();
        let networking: Money = namespaces
            .iter()
            .flat_map(|namespace| &namespace.workloads)
            .map(|workload| workload.networking)
            .sum();
        let compute = Money(compute_micros);
        let storage = workload_storage + unused_storage;
        ClusterDay {
            compute,
            storage,
            networking,
            headroom: Money(headroom_micros),
            unused_storage,
            total: compute + storage + networking,
            namespaces,
        }
    }

    /// Right-sizing suggestions for a cluster's long-running workloads (not Jobs) as of `day`.
    /// CPU in millicores, memory in MiB; workload values are the sums of their containers.
    pub fn rightsizing(&self, cluster_id: &str, day: NaiveDate) -> Vec<RightsizingWorkload> {
        const MICROS_PER_MILLICORE_MONTH: i64 = 23_070;
        const MICROS_PER_MIB_MONTH: i64 = 3_020;
        let Some((_, cluster)) = self.find_cluster(cluster_id) else {
            return Vec::new();
        };
        let mut day_random = SplitMix64::new(mix_u64(
            stable_hash(self.seed, &[&cluster.id, "rightsizing"]),
            day_number(day) as u64,
        ));
        let mut suggestions = Vec::new();
        for namespace in &cluster.namespaces {
            for workload in namespace
                .workloads
                .iter()
                .filter(|workload| workload.kind != "Job")
            {
                let mut containers = Vec::with_capacity(workload.containers.len());
                let mut monthly_savings_micros = 0;
                for container in &workload.containers {
                    let cpu_per_mille = day_random.next_in_range(150, 1300);
                    let memory_per_mille = day_random.next_in_range(200, 1250);
                    let suggested_cpu =
                        (rounded_division(container.cpu_request_millicores * cpu_per_mille, 5000)
                            * 5)
                        .max(5);
                    let suggested_memory =
                        rounded_division(container.memory_request_mib * memory_per_mille, 1000)
                            .max(16);
                    monthly_savings_micros += (container.cpu_request_millicores - suggested_cpu)
                        .max(0)
                        * MICROS_PER_MILLICORE_MONTH
                        + (container.memory_request_mib - suggested_memory).max(0)
                            * MICROS_PER_MIB_MONTH;
                    containers.push(RightsizingContainer {
                        name: container.name.clone(),
                        requested_cpu_millicores: container.cpu_request_millicores,
                        suggested_cpu_millicores: suggested_cpu,
                        requested_memory_mib: container.memory_request_mib,
                        suggested_memory_mib: suggested_memory,
                    });
                }
                suggestions.push(RightsizingWorkload {
                    namespace: namespace.name.clone(),
                    workload_name: workload.name.clone(),
                    workload_type: workload.kind.clone(),
                    requested_cpu_millicores: containers
                        .iter()
                        .map(|c| c.requested_cpu_millicores)
                        .sum(),
                    suggested_cpu_millicores: containers
                        .iter()
                        .map(|c| c.suggested_cpu_millicores)
                        .sum(),
                    requested_memory_mib: containers.iter().map(|c| c.requested_memory_mib).sum(),
                    suggested_memory_mib: containers.iter().map(|c| c.suggested_memory_mib).sum(),
                    monthly_savings: Money(
                        monthly_savings_micros * i64::from(workload.base_replicas.max(1)),
                    ),
                    containers,
                });
            }
        }
        suggestions
    }

    /// Monthly savings Spot estimates for the account's unmanaged AWS resources (AWS only).
    pub fn potential_savings(&self, account_id: &str, day: NaiveDate) -> Vec<PotentialSaving> {
        let Some(account) = self.account(account_id) else {
            return Vec::new();
        };
        if account.cloud != Cloud::Aws {
            return Vec::new();
        }
        let mut day_random = SplitMix64::new(mix_u64(
            stable_hash(self.seed, &[&account.id, "potential-savings"]),
            day_number(day) as u64,
        ));
        account
            .unmanaged_resources
            .iter()
            .map(|resource| {
                let variation = day_random.next_in_range(-1, 2);
                let instances = if resource.resource_type == "EC2Instance" {
                    1
                } else {
                    (i64::from(resource.base_instances) + variation).max(1) as u32
                };
                let hourly: i64 = resource
                    .instance_types
                    .iter()
                    .map(|instance_type| {
                        on_demand_hourly_price(instance_type, &resource.region, "LINUX").micros()
                    })
                    .sum::<i64>()
                    / resource.instance_types.len().max(1) as i64;
                // 730 hours a month at a 65–75 % spot discount.
                let discount_per_mille = day_random.next_in_range(650, 750);
                let monthly_savings =
                    hourly * 730 * i64::from(instances) * discount_per_mille / 1000;
                PotentialSaving {
                    resource_type: resource.resource_type.clone(),
                    name: resource.name.clone(),
                    region: resource.region.clone(),
                    instances,
                    instance_types: resource.instance_types.clone(),
                    // Whole dollars, as the real report shows them.
                    monthly_savings: Money(
                        rounded_division(monthly_savings, 1_000_000) * 1_000_000,
                    ),
                }
            })
            .collect()
    }

    /// The capacity changes made on `day` (a raise on the first day of each cycle, its lowering
    /// [`CAPACITY_CHANGE_DURATION_DAYS`] later), in time order. Each is in the audit log of its
    /// day, and the group's instances, costs and the account's costs follow it.
    pub fn capacity_changes(&self, day: NaiveDate) -> Vec<CapacityChange> {
        let Some((account, group)) = self
            .capacity_change_group
            .as_deref()
            .and_then(|id| self.find_group(id))
        else {
            return Vec::new();
        };
        let users: &[&str] = if self.hostile_names {
            HOSTILE_AUDIT_USERS
        } else {
            AUDIT_USERS
        };
        let user = users[2 % users.len()].to_string();
        let from_target = group.capacity_target;
        let to_target = raised_target(from_target);
        let at = timestamp_from_seconds(
            day_number(day) * SECONDS_PER_DAY + CAPACITY_CHANGE_SECOND_OF_DAY,
        );
        let (from_target, to_target) = match day_number(day).rem_euclid(CAPACITY_CHANGE_CYCLE_DAYS)
        {
            0 => (from_target, to_target),
            CAPACITY_CHANGE_DURATION_DAYS => (to_target, from_target),
            _ => return Vec::new(),
        };
        vec![CapacityChange {
            account_id: account.id.clone(),
            group_id: group.id.clone(),
            user,
            at,
            from_target,
            to_target,
        }]
    }

    /// The raise in effect for `resource_id` during some of `day`, if any.
    fn capacity_raise(&self, resource_id: &str, day: NaiveDate) -> Option<CapacityRaise> {
        if self.capacity_change_group.as_deref() != Some(resource_id) {
            return None;
        }
        let (_, group) = self.find_group(resource_id)?;
        let number = day_number(day);
        let raise_day = number - number.rem_euclid(CAPACITY_CHANGE_CYCLE_DAYS);
        let from_seconds = raise_day * SECONDS_PER_DAY + CAPACITY_CHANGE_SECOND_OF_DAY;
        let until_seconds = from_seconds + CAPACITY_CHANGE_DURATION_DAYS * SECONDS_PER_DAY;
        let overlaps = from_seconds < (number + 1) * SECONDS_PER_DAY
            && until_seconds > number * SECONDS_PER_DAY;
        let added_slots = raised_target(group.capacity_target) - group.capacity_target;
        overlaps.then(|| CapacityRaise {
            added_slots,
            // The group's spot percentage holds for the added instances too.
            on_demand_slots: added_slots * (100 - group.risk_percent.min(100)) / 100,
            from_seconds,
            until_seconds,
        })
    }

    /// An Elastigroup's capacity target and maximum as of `at` (as configured but while raised).
    pub fn group_capacity(&self, group: &Group, at: DateTime<Utc>) -> (u32, u32) {
        let seconds = at.timestamp();
        let raised = self
            .capacity_raise(&group.id, at.date_naive())
            .is_some_and(|raise| (raise.from_seconds..raise.until_seconds).contains(&seconds));
        if raised {
            let target = raised_target(group.capacity_target);
            (target, group.capacity_maximum.max(target))
        } else {
            (group.capacity_target, group.capacity_maximum)
        }
    }

    /// The organisation's audit log for a day, sorted by time. Some events failed (400/403).
    pub fn audit_events(&self, day: NaiveDate) -> Vec<AuditEvent> {
        const USERS: &[&str] = AUDIT_USERS;
        const AGENTS: &[(&str, &str)] = &[
            ("UI", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
            ("API", "spotinst-sdk-go/1.390.0"),
            ("TERRAFORM", "terraform-provider-spotinst/1.181.0"),
            ("API", "python-requests/2.32.3"),
        ];
        let mut day_random = SplitMix64::new(mix_u64(
            stable_hash(self.seed, &["audit"]),
            day_number(day) as u64,
        ));
        let day_start_seconds = day_number(day) * SECONDS_PER_DAY;
        let event_count = day_random.next_in_range(3, 8);
        let mut events = Vec::with_capacity(event_count as usize);
        let users = if self.hostile_names {
            HOSTILE_AUDIT_USERS
        } else {
            USERS
        };
        for _ in 0..event_count {
            let user = (*day_random.pick(users)).to_string();
            let (source, agent) = *day_random.pick(AGENTS);
            // Never in the first or last second of the day, so inclusive and exclusive day bounds agree.
            let second_of_day = 1 + day_random.next_below(SECONDS_PER_DAY as u64 - 2) as i64;
            let millisecond = day_random.next_below(1000) as u32;
            let created_at = DateTime::<Utc>::from_timestamp(
                day_start_seconds + second_of_day,
                millisecond * 1_000_000,
            )
            .unwrap_or_default();
            let status_roll = day_random.next_below(100);
            let response_status = match status_roll {
                0..=14 => 400,
                15..=24 => 403,
                _ => 200,
            };
            let account_pick = day_random.next_below(self.accounts.len().max(1) as u64) as usize;
            let action_pick = day_random.next_below(5);
            let resource_pick = day_random.next_below(1 << 20) as usize;
            let numeric_user_id = 20_000 + day_random.next_below(9000);
            let Some(account) = self.accounts.get(account_pick) else {
                break;
            };
            let (namespace, action_type, resource_type, resource_id, account_id, url, body) =
                match action_pick {
                    0 => (
                        "GENERAL",
                        "Sign in with SSO",
                        "User",
                        numeric_user_id.to_string(),
                        None,
                        "/signIn/sso".to_string(),
                        serde_json::json!({ "email": user }),
                    ),
                    1 if !account.groups.is_empty() => {
                        let group = &account.groups[resource_pick % account.groups.len()];
                        (
                            "ELASTIGROUP",
                            "Update group",
                            "Elastigroup",
                            group.id.clone(),
                            Some(account.id.clone()),
                            format!("/aws/ec2/group/{}", group.id),
                            // Re-applies the group's target, as a Terraform apply does: audited,
                            // no effect on its instances or costs.
                            serde_json::json!({ "group": { "capacity": { "target": self.group_capacity(group, created_at).0 } } }),
                        )
                    }
                    2 if !account.clusters.is_empty() => {
                        let cluster = &account.clusters[resource_pick % account.clusters.len()];
                        (
                            "OCEAN",
                            "Update cluster",
                            "OceanCluster",
                            cluster.id.clone(),
                            Some(account.id.clone()),
                            format!("/ocean/k8s/cluster/{}", cluster.id),
                            serde_json::json!({ "cluster": { "strategy": { "spotPercentage": cluster.spot_percentage } } }),
                        )
                    }
                    3 => (
                        "SETTINGS",
                        "Create programmatic token",
                        "Token",
                        numeric_user_id.to_string(),
                        Some(account.id.clone()),
                        "/setup/user/programmatic/token".to_string(),
                        serde_json::json!({ "name": "spotcost-readonly" }),
                    ),
                    _ => (
                        "GENERAL",
                        "Describe account",
                        "Account",
                        account.id.clone(),
                        Some(account.id.clone()),
                        "/setup/account".to_string(),
                        serde_json::json!({}),
                    ),
                };
            let query = match &account_id {
                Some(id) => serde_json::json!({ "accountId": id }),
                None => serde_json::json!({}),
            };
            let context_json =
                serde_json::json!({ "body": body, "url": url, "query": query }).to_string();
            events.push(AuditEvent {
                user,
                namespace: namespace.to_string(),
                action_type: action_type.to_string(),
                resource_type: resource_type.to_string(),
                resource_id,
                account_id,
                created_at,
                context_json,
                source: source.to_string(),
                agent: agent.to_string(),
                response_status,
            });
        }
        for change in self.capacity_changes(day) {
            let Some((account, _)) = self.find_group(&change.group_id) else {
                continue;
            };
            let url = match account.cloud {
                Cloud::Gcp => format!("/gcp/gce/group/{}", change.group_id),
                _ => format!("/aws/ec2/group/{}", change.group_id),
            };
            // A raise beyond the maximum sets the maximum too, and its lowering sets it back, as
            // the group's listing shows.
            let capacity = match self.find_group(&change.group_id) {
                Some((_, group)) if change.to_target > group.capacity_maximum => {
                    serde_json::json!({ "target": change.to_target, "maximum": change.to_target })
                }
                Some((_, group)) if change.from_target > group.capacity_maximum => {
                    serde_json::json!({
                        "target": change.to_target,
                        "maximum": group.capacity_maximum,
                    })
                }
                _ => serde_json::json!({ "target": change.to_target }),
            };
            let body = serde_json::json!({ "group": { "capacity": capacity } });
            let query = serde_json::json!({ "accountId": change.account_id });
            let (source, agent) = AGENTS[0];
            events.push(AuditEvent {
                user: change.user,
                namespace: "ELASTIGROUP".to_string(),
                action_type: "Update group".to_string(),
                resource_type: "Elastigroup".to_string(),
                resource_id: change.group_id,
                account_id: Some(change.account_id),
                created_at: change.at,
                context_json: serde_json::json!({ "body": body, "url": url, "query": query })
                    .to_string(),
                source: source.to_string(),
                agent: agent.to_string(),
                response_status: 200,
            });
        }
        events.sort_by_key(|event| event.created_at);
        events
    }
}

/// The audit log's users (outside hostile-names mode).
const AUDIT_USERS: &[&str] = &[
    "alice.martin@example.com",
    "bob.nguyen@example.com",
    "carla.diaz@example.com",
    "ci-bot@example.com",
    "dev.ops@example.com",
];

/// A raised capacity target: eight times the configured one (beyond the configured maximum,
/// which the same change raises to it).
fn raised_target(target: u32) -> u32 {
    target.max(1) * 8
}

/// A capacity raise overlapping a day: how many slots it adds and when they run (seconds since
/// the epoch, from inclusive, until exclusive).
#[derive(Clone, Copy, Debug)]
struct CapacityRaise {
    added_slots: u32,
    /// The first this many added slots run on-demand, the others spot.
    on_demand_slots: u32,
    from_seconds: i64,
    until_seconds: i64,
}

/// Splits `total` into integer parts proportional to `weights` that add up to `total` exactly
/// (largest-remainder method; ties go to the earlier entry).
pub fn split_by_largest_remainder(total: i64, weights: &[i64]) -> Vec<i64> {
    let weight_sum: i128 = weights
        .iter()
        .map(|weight| i128::from((*weight).max(0)))
        .sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if weight_sum == 0 {
        let mut shares = vec![0; weights.len()];
        shares[0] = total;
        return shares;
    }
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut assigned: i64 = 0;
    for (index, weight) in weights.iter().enumerate() {
        let product = i128::from(total) * i128::from((*weight).max(0));
        let share = product.div_euclid(weight_sum) as i64;
        remainders.push((product.rem_euclid(weight_sum), index));
        shares.push(share);
        assigned += share;
    }
    let mut left_over = total - assigned;
    remainders.sort_by(|left, right| right.0.cmp(&left.0).then(left.1.cmp(&right.1)));
    for (_, index) in remainders {
        if left_over <= 0 {
            break;
        }
        shares[index] += 1;
        left_over -= 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn test_days() -> Vec<NaiveDate> {
        [
            "2023-12-31",
            "2024-02-29",
            "2024-07-01",
            "2024-07-02",
            "2025-03-15",
        ]
        .iter()
        .map(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
        .collect()
    }

    #[test]
    fn same_seed_gives_the_same_organisation_and_costs_and_another_seed_does_not() {
        let first = Organisation::generate(42, Scale::Small);
        let second = Organisation::generate(42, Scale::Small);
        let other = Organisation::generate(43, Scale::Small);
        assert_eq!(first, second);
        assert_ne!(first.accounts[0].id, other.accounts[0].id);
        let day = test_days()[2];
        for account in &first.accounts {
            assert_eq!(
                first.instances(&account.id, day),
                second.instances(&account.id, day)
            );
        }
        let first_total: i64 = first
            .accounts
            .iter()
            .map(|account| first.account_day(&account.id, day).actual.micros())
            .sum();
        let other_total: i64 = other
            .accounts
            .iter()
            .map(|account| other.account_day(&account.id, day).actual.micros())
            .sum();
        assert_ne!(first_total, other_total);
    }

    #[test]
    fn small_organisation_has_the_promised_shape() {
        let organisation = Organisation::generate(42, Scale::Small);
        assert_eq!(organisation.accounts.len(), 4);
        let clouds: Vec<Cloud> = organisation
            .accounts
            .iter()
            .map(|account| account.cloud)
            .collect();
        assert_eq!(
            clouds,
            vec![Cloud::Aws, Cloud::Aws, Cloud::Gcp, Cloud::Azure]
        );
        assert!(organisation
            .accounts
            .iter()
            .any(|account| account.cloud != Cloud::Aws && !account.clusters.is_empty()));
        assert!(organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .any(|cluster| cluster.cloud == Cloud::Gcp || cluster.cloud == Cloud::Azure));
        let emr_count: usize = organisation
            .accounts
            .iter()
            .map(|account| account.emr_scalers.len())
            .sum();
        assert_eq!(emr_count, 1);
        assert_eq!(
            organisation.default_account().map(|account| account.cloud),
            Some(Cloud::Aws)
        );
        for cluster in organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
        {
            assert!(
                (4..=8).contains(&cluster.namespaces.len()),
                "{} namespaces",
                cluster.namespaces.len()
            );
            assert!(cluster
                .namespaces
                .iter()
                .any(|namespace| namespace.labels.len() < 3));
            assert!(cluster
                .namespaces
                .iter()
                .any(|namespace| namespace.has_unused_storage));
        }
        let mut all_ids = HashSet::new();
        for account in &organisation.accounts {
            assert!(all_ids.insert(account.id.clone()));
            for group in &account.groups {
                assert!(all_ids.insert(group.id.clone()));
                assert_eq!(
                    organisation
                        .find_group(&group.id)
                        .map(|(owner, _)| owner.id.clone()),
                    Some(account.id.clone())
                );
            }
        }
    }

    #[test]
    fn cluster_costs_reconcile_with_nodes_workloads_headroom_and_unused_storage() {
        for scale in [Scale::Small, Scale::Medium] {
            let organisation = Organisation::generate(7, scale);
            for day in test_days() {
                for cluster in organisation
                    .accounts
                    .iter()
                    .flat_map(|account| &account.clusters)
                {
                    let cluster_day = organisation.cluster_day(&cluster.id, day);
                    let nodes: Money = organisation
                        .cluster_node_instances(&cluster.id, day)
                        .iter()
                        .map(|node| node.actual)
                        .sum();
                    assert_eq!(
                        cluster_day.compute, nodes,
                        "compute of {} on {day}",
                        cluster.id
                    );
                    let workloads = cluster_day
                        .namespaces
                        .iter()
                        .flat_map(|namespace| &namespace.workloads);
                    let workload_compute: Money =
                        workloads.clone().map(|workload| workload.compute).sum();
                    let workload_storage: Money =
                        workloads.clone().map(|workload| workload.storage).sum();
                    let workload_networking: Money =
                        workloads.map(|workload| workload.networking).sum();
                    let unused: Money = cluster_day
                        .namespaces
                        .iter()
                        .map(|namespace| namespace.unused_storage)
                        .sum();
                    assert_eq!(workload_compute + cluster_day.headroom, cluster_day.compute);
                    assert_eq!(workload_storage + unused, cluster_day.storage);
                    assert_eq!(unused, cluster_day.unused_storage);
                    assert_eq!(workload_networking, cluster_day.networking);
                    assert_eq!(
                        workload_compute
                            + cluster_day.headroom
                            + workload_storage
                            + unused
                            + workload_networking,
                        cluster_day.total
                    );
                    assert!(cluster_day.headroom > Money::ZERO);
                    assert!(cluster_day.unused_storage > Money::ZERO);
                    if cluster.cloud == Cloud::Gcp {
                        assert_eq!(cluster_day.networking, Money::ZERO);
                    }
                }
            }
        }
    }

    #[test]
    fn account_day_is_the_sum_of_its_instances_and_of_its_resources() {
        let organisation = Organisation::generate(11, Scale::Small);
        for day in test_days() {
            for account in &organisation.accounts {
                let instances = organisation.instances(&account.id, day);
                let from_instances = CostTotals::from_instances(&instances);
                assert_eq!(organisation.account_day(&account.id, day), from_instances);
                let mut from_resources = CostTotals::default();
                for group in &account.groups {
                    from_resources += organisation.group_day(&group.id, day);
                }
                for scaler in &account.emr_scalers {
                    from_resources += organisation.emr_scaler_day(&scaler.id, day);
                }
                for managed in &account.managed_instances {
                    from_resources += organisation.managed_instance_day(&managed.id, day);
                }
                let mut cluster_compute = Money::ZERO;
                for cluster in &account.clusters {
                    let nodes = CostTotals::from_instances(
                        &organisation.cluster_node_instances(&cluster.id, day),
                    );
                    from_resources += nodes;
                    cluster_compute += organisation.cluster_day(&cluster.id, day).compute;
                }
                assert_eq!(from_resources, from_instances);
                let non_ocean: Money = instances
                    .iter()
                    .filter(|instance| {
                        !matches!(instance.resource_kind, ResourceKind::OceanCluster(_))
                    })
                    .map(|instance| instance.actual)
                    .sum();
                assert_eq!(non_ocean + cluster_compute, from_instances.actual);
                assert!(from_instances.actual > Money::ZERO);
                assert!(from_instances.actual <= from_instances.potential);
            }
        }
    }

    #[test]
    fn group_days_sum_their_instances_and_spot_is_a_part_of_the_whole() {
        let organisation = Organisation::generate(42, Scale::Small);
        let mut some_group_has_on_demand = false;
        for day in test_days() {
            for group in organisation
                .accounts
                .iter()
                .flat_map(|account| &account.groups)
            {
                let instances = organisation.group_instances(&group.id, day);
                assert!(!instances.is_empty());
                assert_eq!(
                    organisation.group_day(&group.id, day),
                    CostTotals::from_instances(&instances)
                );
                let all = organisation.group_day(&group.id, day);
                let spot = organisation.group_spot_day(&group.id, day);
                assert!(spot.actual <= all.actual && spot.potential <= all.potential);
                assert!(spot.running_hours_milli <= all.running_hours_milli);
                if spot.actual < all.actual {
                    some_group_has_on_demand = true;
                }
                for instance in &instances {
                    assert!(
                        instance.running_hours_milli > 0 && instance.running_hours_milli <= 24_000
                    );
                    assert_eq!(
                        instance.spot_instance_request_id.is_some(),
                        group.cloud == Cloud::Aws && instance.lifecycle == Lifecycle::Spot
                    );
                }
            }
        }
        assert!(some_group_has_on_demand);
    }

    #[test]
    fn an_instance_keeps_its_identity_across_the_days_it_runs() {
        let organisation = Organisation::generate(5, Scale::Small);
        let group = &organisation.accounts[0].groups[0];
        let day = test_days()[2];
        let next_day = day.succ_opt().unwrap();
        let today = organisation.group_instances(&group.id, day);
        let tomorrow = organisation.group_instances(&group.id, next_day);
        let mut continued = 0;
        for instance in today
            .iter()
            .filter(|instance| instance.termination_time.is_none())
        {
            let next = tomorrow
                .iter()
                .find(|other| other.instance_id == instance.instance_id);
            let next = next
                .unwrap_or_else(|| panic!("{} vanished without terminating", instance.instance_id));
            assert_eq!(next.instance_type, instance.instance_type);
            assert_eq!(next.launch_time, instance.launch_time);
            continued += 1;
        }
        for instance in &tomorrow {
            if instance.launch_time.date_naive() < next_day {
                assert!(today
                    .iter()
                    .any(|other| other.instance_id == instance.instance_id));
            }
        }
        assert!(continued > 0);
    }

    #[test]
    fn emr_costs_are_whole_hundredths_of_a_cent() {
        let organisation = Organisation::generate(42, Scale::Small);
        let scaler = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.emr_scalers)
            .next()
            .unwrap();
        for day in test_days() {
            for instance in organisation.emr_scaler_instances(&scaler.id, day) {
                assert_eq!(instance.actual.micros() % 100, 0);
                assert_eq!(instance.potential.micros() % 100, 0);
            }
        }
    }

    #[test]
    fn rightsizing_workloads_sum_their_containers() {
        let organisation = Organisation::generate(42, Scale::Small);
        let cluster = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .next()
            .unwrap();
        let suggestions = organisation.rightsizing(&cluster.id, test_days()[0]);
        assert!(!suggestions.is_empty());
        for suggestion in &suggestions {
            assert_eq!(
                suggestion.requested_cpu_millicores,
                suggestion
                    .containers
                    .iter()
                    .map(|c| c.requested_cpu_millicores)
                    .sum::<i64>()
            );
            assert_eq!(
                suggestion.suggested_memory_mib,
                suggestion
                    .containers
                    .iter()
                    .map(|c| c.suggested_memory_mib)
                    .sum::<i64>()
            );
            assert!(suggestion.monthly_savings >= Money::ZERO);
        }
        assert!(suggestions
            .iter()
            .any(|suggestion| suggestion.monthly_savings > Money::ZERO));
    }

    #[test]
    fn potential_savings_and_audit_events_exist_where_promised() {
        let organisation = Organisation::generate(42, Scale::Small);
        let day = test_days()[1];
        for account in &organisation.accounts {
            let savings = organisation.potential_savings(&account.id, day);
            assert_eq!(savings.is_empty(), account.cloud != Cloud::Aws);
        }
        let mut statuses = HashSet::new();
        for offset in 0..10 {
            let events = organisation.audit_events(day + chrono::Duration::days(offset));
            // 3 to 8 generated events, and a capacity change on some days.
            assert!((3..=9).contains(&events.len()));
            for event in &events {
                assert_eq!(
                    event.created_at.date_naive(),
                    day + chrono::Duration::days(offset)
                );
                assert!(serde_json::from_str::<serde_json::Value>(&event.context_json).is_ok());
                statuses.insert(event.response_status);
            }
        }
        assert!(statuses.contains(&200) && statuses.len() > 1);
    }

    #[test]
    fn a_capacity_raise_is_audited_and_raises_the_group_and_account_costs() {
        let organisation = Organisation::generate(42, Scale::Small);
        // 2026-11-11 is day 20768 = 16 × 1298 since 1970-01-01: a raise day.
        let raise_day = NaiveDate::from_ymd_opt(2026, 11, 11).unwrap();
        let changes: Vec<_> = (0..16)
            .flat_map(|offset| {
                organisation.capacity_changes(raise_day + chrono::Duration::days(offset - 2))
            })
            .collect();
        assert_eq!(changes.len(), 2, "{changes:?}");
        let (raise, lowering) = (&changes[0], &changes[1]);
        assert_eq!(raise.at.to_rfc3339(), "2026-11-11T09:00:00+00:00");
        assert_eq!(lowering.at.to_rfc3339(), "2026-11-13T09:00:00+00:00");
        assert_eq!(raise.user, "carla.diaz@example.com");
        assert_eq!((raise.from_target, raise.to_target), (5, 40));
        assert_eq!((lowering.from_target, lowering.to_target), (40, 5));
        assert_eq!(raise.group_id, organisation.accounts[1].groups[0].id);
        assert_eq!(raise.account_id, organisation.accounts[1].id);

        // The raise is in the audit log of its day, as a successful group update.
        let audited: Vec<_> = organisation
            .audit_events(raise_day)
            .into_iter()
            .filter(|event| event.created_at == raise.at)
            .collect();
        assert_eq!(audited.len(), 1);
        assert_eq!(audited[0].resource_id, raise.group_id);
        assert_eq!(audited[0].user, raise.user);
        assert_eq!(audited[0].response_status, 200);
        assert!(audited[0]
            .context_json
            .contains(r#""capacity":{"maximum":40,"target":40}"#));

        // The group runs 35 more instances from 09:00 on the raise day until 09:00 two days
        // later; the account's cost follows (it is the sum of its instances).
        let group_cost = |offset: i64| {
            organisation
                .group_day(&raise.group_id, raise_day + chrono::Duration::days(offset))
                .actual
        };
        let account_cost = |offset: i64| {
            organisation
                .account_day(
                    &raise.account_id,
                    raise_day + chrono::Duration::days(offset),
                )
                .actual
        };
        let before = group_cost(-1);
        assert!(
            group_cost(1).usd() > 3.0 * before.usd(),
            "{before} then {}",
            group_cost(1)
        );
        assert!(group_cost(0) > before && group_cost(0) < group_cost(1));
        assert!(group_cost(3).usd() < 2.0 * before.usd());
        // Enough for an anomaly at the default thresholds (half as much again, and 10 USD).
        assert!(
            account_cost(1).usd() > 1.5 * account_cost(-1).usd() + 10.0,
            "{} then {}",
            account_cost(-1),
            account_cost(1)
        );
        let added: Vec<_> = organisation
            .group_instances(&raise.group_id, raise_day)
            .into_iter()
            .filter(|instance| instance.launch_time == raise.at)
            .collect();
        // Most added instances start with the raise (the others' lifetimes begin later that day),
        // and run at most until midnight.
        assert!((20..=35).contains(&added.len()), "{}", added.len());
        assert!(added
            .iter()
            .all(|instance| (1..=15_000).contains(&instance.running_hours_milli)));
        let (_, group) = organisation.find_group(&raise.group_id).unwrap();
        assert_eq!(organisation.group_capacity(group, raise.at), (40, 40));
        assert_eq!(
            organisation.group_capacity(group, lowering.at),
            (5, group.capacity_maximum)
        );
    }

    #[test]
    fn largest_remainder_split_is_exact_and_proportional() {
        assert_eq!(split_by_largest_remainder(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_by_largest_remainder(0, &[5, 7]), vec![0, 0]);
        assert_eq!(split_by_largest_remainder(9, &[0, 0]), vec![9, 0]);
        let shares = split_by_largest_remainder(1_000_003, &[3, 5, 11, 13]);
        assert_eq!(shares.iter().sum::<i64>(), 1_000_003);
        assert_eq!(
            storage_split(Cloud::Aws, "StatefulSet", Money(1001)),
            StorageSplit {
                persistent_block: Money(800),
                non_persistent_block: Money(101),
                file: Money(100),
            }
        );
    }

    fn march_2026(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
    }

    #[test]
    fn restatement_reports_recent_days_at_ninety_percent_until_they_are_final() {
        let organisation = Organisation::generate(42, Scale::Small);
        organisation.set_restatement_days(2);
        let account = &organisation.accounts[0];
        let group = &account.groups[0];
        let cluster = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .next()
            .unwrap();
        let days = [march_2026(7), march_2026(8), march_2026(9)];
        let figures = |organisation: &Organisation| {
            days.map(|day| {
                (
                    organisation.group_day(&group.id, day),
                    organisation.cluster_day(&cluster.id, day),
                    organisation.account_day(&account.id, day),
                    organisation.instances(&account.id, day),
                )
            })
        };
        organisation.set_today(march_2026(10));
        assert_eq!(organisation.today(), march_2026(10));
        assert!(!organisation.is_provisional(march_2026(7)));
        assert!(organisation.is_provisional(march_2026(8)));
        assert!(organisation.is_provisional(march_2026(9)));
        assert!(!organisation.is_provisional(march_2026(10)));
        assert!(!organisation.is_provisional(march_2026(11)));
        let provisional = figures(&organisation);
        organisation.set_today(march_2026(20));
        let restated = figures(&organisation);

        // 03-07 is three days old on 03-10: already final.
        assert_eq!(provisional[0], restated[0]);
        for index in [1, 2] {
            let (group_before, cluster_before, account_before, instances_before) =
                &provisional[index];
            let (group_after, cluster_after, account_after, instances_after) = &restated[index];
            assert!(group_before.actual < group_after.actual);
            assert!(group_before.potential < group_after.potential);
            assert!(group_before.running_hours_milli < group_after.running_hours_milli);
            assert!(cluster_before.compute < cluster_after.compute);
            assert!(cluster_before.total < cluster_after.total);
            assert_eq!(cluster_before.storage, cluster_after.storage);
            assert_eq!(cluster_before.networking, cluster_after.networking);
            assert!(account_before.actual < account_after.actual);
            assert!(account_before.potential < account_after.potential);
            // Same instances, 90 % of their running time in whole 18-second steps.
            assert_eq!(instances_before.len(), instances_after.len());
            for (before, after) in instances_before.iter().zip(instances_after) {
                assert_eq!(before.instance_id, after.instance_id);
                assert_eq!(before.running_hours_milli % 5, 0);
                assert_eq!(
                    before.running_hours_milli,
                    after.running_hours_milli * 9 / 10 / 5 * 5
                );
                assert!(before.actual < after.actual);
                assert!(before.actual <= before.potential);
            }
            // The provisional day still reconciles with itself.
            assert_eq!(
                *account_before,
                CostTotals::from_instances(instances_before)
            );
        }
        // Audit events are not restated.
        organisation.set_today(march_2026(10));
        let audit_provisional = organisation.audit_events(march_2026(9));
        organisation.set_today(march_2026(20));
        assert_eq!(audit_provisional, organisation.audit_events(march_2026(9)));
    }

    #[test]
    fn without_restatement_today_changes_no_figure() {
        let reference = Organisation::generate(42, Scale::Small);
        let organisation = Organisation::generate(42, Scale::Small);
        assert_eq!(organisation.restatement_days(), 0);
        let wall_clock_before = Utc::now().date_naive();
        let unset_today = organisation.today();
        assert!(unset_today == wall_clock_before || unset_today == Utc::now().date_naive());
        let account = &organisation.accounts[0];
        let cluster = organisation
            .accounts
            .iter()
            .flat_map(|account| &account.clusters)
            .next()
            .unwrap();
        for today in [march_2026(8), march_2026(10), march_2026(20)] {
            organisation.set_today(today);
            assert_eq!(organisation.today(), today);
            for day in [march_2026(7), march_2026(8), march_2026(9), march_2026(10)] {
                assert!(!organisation.is_provisional(day));
                assert_eq!(
                    organisation.instances(&account.id, day),
                    reference.instances(&account.id, day)
                );
                assert_eq!(
                    organisation.account_day(&account.id, day),
                    reference.account_day(&account.id, day)
                );
                assert_eq!(
                    organisation.cluster_day(&cluster.id, day),
                    reference.cluster_day(&cluster.id, day)
                );
            }
        }
    }

    #[test]
    fn medium_and_large_are_bigger() {
        let small = Organisation::generate(42, Scale::Small);
        let large = Organisation::generate(42, Scale::Large);
        let count_groups = |organisation: &Organisation| {
            organisation
                .accounts
                .iter()
                .map(|account| account.groups.len())
                .sum::<usize>()
        };
        assert!(count_groups(&large) >= 50 * count_groups(&small));
        assert_eq!(large.accounts.len(), 20);
    }
}

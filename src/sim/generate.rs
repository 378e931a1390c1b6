//! Builds the synthetic organisation's structure for a seed and a scale: accounts, Elastigroups, EMR scalers, managed instances, Ocean clusters with namespaces, labels, workloads and containers, and the slot plans that drive instance counts; fast even at Large scale, since no cost is computed here.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use super::catalog::{regions_of, type_families_of, RegionInfo, AWS_TYPE_FAMILIES};
use super::org::{
    day_number, timestamp_from_seconds, Account, Cloud, Cluster, Container, EmrScaler, Group,
    Lifecycle, ManagedInstance, Namespace, SlotPlan, Tag, UnmanagedResource, VirtualNodeGroup,
    Workload, SECONDS_PER_DAY,
};
use super::rng::SplitMix64;
use super::Scale;

struct ScaleShape {
    aws_accounts: usize,
    gcp_accounts: usize,
    azure_accounts: usize,
    aws_groups: (i64, i64),
    emr_scalers_per_aws_account: (i64, i64),
    managed_instances_per_aws_account: (i64, i64),
    clusters_per_aws_account: (i64, i64),
    gcp_groups: (i64, i64),
    gke_clusters_per_gcp_account: (i64, i64),
    aks_clusters_per_azure_account: (i64, i64),
    namespaces_per_cluster: (i64, i64),
    workloads_per_namespace: (i64, i64),
    virtual_node_groups_per_cluster: (i64, i64),
    unmanaged_resources_per_aws_account: (i64, i64),
}

fn scale_shape(scale: Scale) -> ScaleShape {
    match scale {
        Scale::Small => ScaleShape {
            aws_accounts: 2,
            gcp_accounts: 1,
            azure_accounts: 1,
            aws_groups: (3, 5),
            emr_scalers_per_aws_account: (0, 0),
            managed_instances_per_aws_account: (2, 3),
            clusters_per_aws_account: (1, 2),
            gcp_groups: (2, 2),
            gke_clusters_per_gcp_account: (1, 1),
            aks_clusters_per_azure_account: (1, 1),
            namespaces_per_cluster: (4, 8),
            workloads_per_namespace: (2, 6),
            virtual_node_groups_per_cluster: (2, 3),
            unmanaged_resources_per_aws_account: (2, 4),
        },
        Scale::Medium => ScaleShape {
            aws_accounts: 6,
            gcp_accounts: 2,
            azure_accounts: 2,
            aws_groups: (8, 16),
            emr_scalers_per_aws_account: (1, 2),
            managed_instances_per_aws_account: (4, 8),
            clusters_per_aws_account: (1, 3),
            gcp_groups: (5, 10),
            gke_clusters_per_gcp_account: (1, 2),
            aks_clusters_per_azure_account: (1, 2),
            namespaces_per_cluster: (6, 16),
            workloads_per_namespace: (2, 8),
            virtual_node_groups_per_cluster: (2, 4),
            unmanaged_resources_per_aws_account: (3, 8),
        },
        Scale::Large => ScaleShape {
            aws_accounts: 14,
            gcp_accounts: 3,
            azure_accounts: 3,
            aws_groups: (60, 80),
            emr_scalers_per_aws_account: (2, 4),
            managed_instances_per_aws_account: (20, 40),
            clusters_per_aws_account: (2, 3),
            gcp_groups: (20, 40),
            gke_clusters_per_gcp_account: (2, 3),
            aks_clusters_per_azure_account: (2, 3),
            namespaces_per_cluster: (10, 40),
            workloads_per_namespace: (2, 10),
            virtual_node_groups_per_cluster: (3, 6),
            unmanaged_resources_per_aws_account: (5, 15),
        },
        Scale::Xlarge => ScaleShape {
            aws_accounts: 14,
            gcp_accounts: 3,
            azure_accounts: 3,
            aws_groups: (130, 150),
            emr_scalers_per_aws_account: (2, 4),
            managed_instances_per_aws_account: (20, 40),
            clusters_per_aws_account: (5, 5),
            gcp_groups: (10, 14),
            gke_clusters_per_gcp_account: (5, 5),
            aks_clusters_per_azure_account: (5, 5),
            namespaces_per_cluster: (40, 40),
            workloads_per_namespace: (2, 10),
            virtual_node_groups_per_cluster: (3, 6),
            unmanaged_resources_per_aws_account: (5, 15),
        },
    }
}

const TEAM_NAMES: &[&str] = &[
    "payments", "checkout", "platform", "data", "growth", "search", "identity", "core-web", "ml",
    "mobile",
];
const ROLE_NAMES: &[&str] = &[
    "api",
    "web",
    "worker",
    "batch",
    "ingest",
    "gateway",
    "cache",
    "render",
    "scheduler",
    "etl",
];
const ENVIRONMENT_NAMES: &[&str] = &["prod", "staging", "dev"];
const USE_CASES: &[&str] = &[
    "Load Balancing",
    "Stateless",
    "Batch",
    "CI/CD",
    "Web Servers",
    "Queue Workers",
];
const NAMESPACE_NAMES: &[&str] = &[
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "notifications",
    "analytics",
    "data-pipeline",
    "frontend",
    "backend",
    "monitoring",
    "logging",
    "ingress-nginx",
    "cert-manager",
    "ml-training",
    "reporting",
    "billing",
    "orders",
    "inventory",
    "shipping",
    "recommendations",
    "pricing",
    "fraud",
    "auth",
    "media",
];
const LABEL_TEAMS: &[&str] = &[
    "platform", "payments", "growth", "data", "core", "web", "ml",
];
const DEPLOYMENT_NAMES: &[&str] = &[
    "api",
    "web",
    "worker",
    "gateway",
    "scheduler",
    "consumer",
    "frontend",
    "graphql",
    "auth",
    "cache-warmer",
    "indexer",
    "notifier",
];
const STATEFUL_SET_NAMES: &[&str] = &[
    "postgres",
    "redis",
    "kafka",
    "elasticsearch",
    "zookeeper",
    "rabbitmq",
];
const DAEMON_SET_NAMES: &[&str] = &["fluent-bit", "node-exporter", "datadog-agent", "falco"];
const JOB_NAMES: &[&str] = &[
    "nightly-report",
    "db-migrate",
    "backfill",
    "cleanup",
    "export",
];
const SIDECAR_NAMES: &[&str] = &["istio-proxy", "log-shipper", "envoy", "cloudsql-proxy"];

/// Hands out ids that are unique within the organisation.
struct IdFactory {
    random: SplitMix64,
    used: HashSet<String>,
}

impl IdFactory {
    fn make(&mut self, prefix: &str, hex_length: usize) -> String {
        loop {
            let candidate = format!("{prefix}{}", self.random.hex_string(hex_length));
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
    }
}

/// Hands out names that are unique within a scope, adding `-2`, `-3`… on repeats.
#[derive(Default)]
struct NameFactory {
    used: HashSet<String>,
}

impl NameFactory {
    fn unique(&mut self, base: String) -> String {
        if self.used.insert(base.clone()) {
            return base;
        }
        let mut suffix = 2;
        loop {
            let candidate = format!("{base}-{suffix}");
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
            suffix += 1;
        }
    }
}

/// kube-system workloads of a managed Kubernetes flavour.
fn system_workload_names(cloud: Cloud, kind: &str) -> &'static [&'static str] {
    match (cloud, kind) {
        (_, "Deployment") => &[
            "coredns",
            "metrics-server",
            "spotinst-kubernetes-cluster-controller",
            "konnectivity-agent",
        ],
        (Cloud::Aws, _) => &["kube-proxy", "aws-node", "ebs-csi-node", "node-local-dns"],
        (Cloud::Gcp, _) => &[
            "kube-proxy",
            "fluentbit-gke",
            "pdcsi-node",
            "gke-metadata-server",
        ],
        (Cloud::Azure, _) => &[
            "kube-proxy",
            "azure-ip-masq-agent",
            "csi-azuredisk-node",
            "cloud-node-manager",
        ],
    }
}

fn random_range(random: &mut SplitMix64, range: (i64, i64)) -> i64 {
    random.next_in_range(range.0, range.1)
}

fn zones_of(region: &RegionInfo, count: usize) -> Vec<String> {
    region
        .zone_suffixes
        .iter()
        .take(count.max(1))
        .map(|suffix| format!("{}{}", region.name, suffix))
        .collect()
}

fn family_types(family: &[&str]) -> Vec<String> {
    family.iter().map(|name| (*name).to_string()).collect()
}

/// A timestamp between `from_year`-01-01 and about `span_days` later, whole seconds.
fn random_timestamp(random: &mut SplitMix64, from_year: i32, span_days: i64) -> DateTime<Utc> {
    let start = NaiveDate::from_ymd_opt(from_year, 1, 1).unwrap_or_default();
    let seconds =
        day_number(start) * SECONDS_PER_DAY + random.next_in_range(0, span_days * SECONDS_PER_DAY);
    timestamp_from_seconds(seconds)
}

fn random_timestamp_after(
    random: &mut SplitMix64,
    after: DateTime<Utc>,
    span_days: i64,
) -> DateTime<Utc> {
    timestamp_from_seconds(
        after.timestamp() + random.next_in_range(3600, span_days * SECONDS_PER_DAY),
    )
}

/// The organisation id and the accounts, with all their resources, for a seed and scale.
pub(crate) fn generate_accounts(seed: u64, scale: Scale) -> (String, Vec<Account>) {
    let shape = scale_shape(scale);
    let mut random = SplitMix64::keyed(seed, &["organisation"]);
    let mut ids = IdFactory {
        random: SplitMix64::keyed(seed, &["ids"]),
        used: HashSet::new(),
    };
    let organization_id = format!(
        "{}",
        600_000_000_000u64 + random.next_below(399_999_999_999)
    );

    let clouds: Vec<Cloud> = std::iter::repeat_n(Cloud::Aws, shape.aws_accounts)
        .chain(std::iter::repeat_n(Cloud::Gcp, shape.gcp_accounts))
        .chain(std::iter::repeat_n(Cloud::Azure, shape.azure_accounts))
        .collect();
    let mut account_names = NameFactory::default();
    let mut account_created_at = random_timestamp(&mut random, 2017, 300);
    let mut accounts = Vec::with_capacity(clouds.len());
    for (account_number, cloud) in clouds.iter().copied().enumerate() {
        let mut account_random = SplitMix64::keyed(seed, &["account", &account_number.to_string()]);
        let id = ids.make("act-", 8);
        let environment = *account_random.pick(ENVIRONMENT_NAMES);
        let base_name = match (cloud, account_number) {
            // The default (oldest) account's name needs quoting in CSV.
            (Cloud::Aws, 0) => "Acme Retail, \"Prod\"".to_string(),
            (Cloud::Aws, _) => format!("acme-{}-{environment}", account_random.pick(TEAM_NAMES)),
            (Cloud::Gcp, _) => format!("acme-gcp-{}", account_random.pick(TEAM_NAMES)),
            (Cloud::Azure, _) => format!("acme-azure-{}", account_random.pick(TEAM_NAMES)),
        };
        let name = account_names.unique(base_name);
        let provider_external_id = match cloud {
            Cloud::Aws => format!(
                "{:012}",
                100_000_000_000u64 + account_random.next_below(899_999_999_999)
            ),
            Cloud::Gcp => format!(
                "acme-{}-{}",
                environment,
                100_000 + account_random.next_below(899_999)
            ),
            Cloud::Azure => {
                let hex = account_random.hex_string(32);
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                )
            }
        };
        let created_at = account_created_at;
        account_created_at = random_timestamp_after(&mut random, account_created_at, 120);
        let mut account = Account {
            id,
            name,
            cloud,
            provider_external_id,
            created_at,
            groups: Vec::new(),
            emr_scalers: Vec::new(),
            managed_instances: Vec::new(),
            clusters: Vec::new(),
            unmanaged_resources: Vec::new(),
        };
        generate_account_resources(
            seed,
            &shape,
            account_number,
            &mut account,
            &mut account_random,
            &mut ids,
        );
        accounts.push(account);
    }

    (organization_id, accounts)
}

fn generate_account_resources(
    seed: u64,
    shape: &ScaleShape,
    account_number: usize,
    account: &mut Account,
    random: &mut SplitMix64,
    ids: &mut IdFactory,
) {
    let mut names = NameFactory::default();
    let regions = regions_of(account.cloud);
    let home_region = &regions[account_number % regions.len()];
    match account.cloud {
        Cloud::Aws => {
            let group_count = random_range(random, shape.aws_groups);
            for group_number in 0..group_count {
                let region = if random.chance(0.7) {
                    home_region
                } else {
                    random.pick(regions)
                };
                let group =
                    generate_group(account, region, group_number == 0, random, ids, &mut names);
                account.groups.push(group);
            }
            let scaler_count = if shape.emr_scalers_per_aws_account == (0, 0) {
                usize::from(account_number == 0)
            } else {
                random_range(random, shape.emr_scalers_per_aws_account) as usize
            };
            for _ in 0..scaler_count {
                let scaler = generate_emr_scaler(account, home_region, random, ids, &mut names);
                account.emr_scalers.push(scaler);
            }
            let managed_count = random_range(random, shape.managed_instances_per_aws_account);
            for managed_number in 0..managed_count {
                let managed = generate_managed_instance(
                    account,
                    home_region,
                    managed_number,
                    random,
                    ids,
                    &mut names,
                );
                account.managed_instances.push(managed);
            }
            let cluster_count = random_range(random, shape.clusters_per_aws_account);
            for _ in 0..cluster_count {
                let cluster =
                    generate_cluster(seed, shape, account, home_region, random, ids, &mut names);
                account.clusters.push(cluster);
            }
            let unmanaged_count = random_range(random, shape.unmanaged_resources_per_aws_account);
            for unmanaged_number in 0..unmanaged_count {
                let resource_type = match unmanaged_number % 3 {
                    0 => "Auto Scaling Group",
                    1 => "Elastic Load Balancer",
                    _ => "EC2Instance",
                };
                let family = random.pick(AWS_TYPE_FAMILIES);
                let name = match resource_type {
                    "EC2Instance" => format!("i-0{}", random.hex_string(16)),
                    "Elastic Load Balancer" => names.unique(format!(
                        "{}-{}-elb",
                        random.pick(TEAM_NAMES),
                        random.pick(ROLE_NAMES)
                    )),
                    _ => names.unique(format!(
                        "{}-{}-asg",
                        random.pick(TEAM_NAMES),
                        random.pick(ROLE_NAMES)
                    )),
                };
                let type_count = if resource_type == "EC2Instance" {
                    1
                } else {
                    family.len().min(2)
                };
                account.unmanaged_resources.push(UnmanagedResource {
                    resource_type: resource_type.to_string(),
                    name,
                    region: random.pick(regions).name.to_string(),
                    base_instances: random.next_in_range(2, 12) as u32,
                    instance_types: family
                        .iter()
                        .take(type_count)
                        .map(|name| (*name).to_string())
                        .collect(),
                });
            }
        }
        Cloud::Gcp => {
            let group_count = random_range(random, shape.gcp_groups);
            for group_number in 0..group_count {
                let group = generate_group(
                    account,
                    home_region,
                    group_number == 0,
                    random,
                    ids,
                    &mut names,
                );
                account.groups.push(group);
            }
            let cluster_count = random_range(random, shape.gke_clusters_per_gcp_account);
            for _ in 0..cluster_count {
                let cluster =
                    generate_cluster(seed, shape, account, home_region, random, ids, &mut names);
                account.clusters.push(cluster);
            }
        }
        Cloud::Azure => {
            let cluster_count = random_range(random, shape.aks_clusters_per_azure_account);
            for _ in 0..cluster_count {
                let cluster =
                    generate_cluster(seed, shape, account, home_region, random, ids, &mut names);
                account.clusters.push(cluster);
            }
        }
    }
}

fn generate_group(
    account: &Account,
    region: &RegionInfo,
    force_on_demand: bool,
    random: &mut SplitMix64,
    ids: &mut IdFactory,
    names: &mut NameFactory,
) -> Group {
    let team = *random.pick(TEAM_NAMES);
    let role = *random.pick(ROLE_NAMES);
    let environment = *random.pick(ENVIRONMENT_NAMES);
    let name = names.unique(format!("{team}-{role}-{environment}"));
    let family = *random.pick(type_families_of(account.cloud));
    let spot_types = family_types(family);
    let capacity_minimum = random.next_in_range(1, 3) as u32;
    let capacity_target = capacity_minimum + random.next_in_range(0, 3) as u32;
    let capacity_maximum = capacity_target + random.next_in_range(2, 10) as u32;
    let on_demand_count = if force_on_demand {
        Some(1)
    } else if random.chance(0.5) {
        Some(random.next_in_range(0, i64::from(capacity_minimum.min(2))) as u32)
    } else {
        None
    };
    let risk_percent = if on_demand_count.is_some() {
        100
    } else {
        *random.pick(&[100, 100, 90, 80, 70, 50])
    };
    let on_demand_slots = match on_demand_count {
        Some(count) => count,
        None => capacity_minimum * (100 - risk_percent) / 100,
    };
    let windows = account.cloud == Cloud::Aws && random.chance(0.08);
    let product = match (account.cloud, windows) {
        (Cloud::Aws, true) => "Windows",
        (Cloud::Aws, false) => "Linux/UNIX",
        _ => "LINUX",
    };
    let created_at = random_timestamp_after(random, account.created_at, 900);
    let updated_at = random_timestamp_after(random, created_at, 300);
    let zone_count = random.next_in_range(2, 3) as usize;
    let cost_center = format!("cc-{}", 1000 + random.next_below(20));
    Group {
        id: ids.make("sig-", 8),
        description: format!("{role} fleet for {team} ({environment})"),
        name,
        cloud: account.cloud,
        region: region.name.to_string(),
        availability_zones: zones_of(region, zone_count),
        on_demand_type: spot_types[0].clone(),
        preferred_spot_types: spot_types.iter().take(1).cloned().collect(),
        spot_types,
        capacity_minimum,
        capacity_maximum,
        capacity_target,
        risk_percent,
        on_demand_count,
        availability_vs_cost: (*random.pick(&["balanced", "costOriented", "availabilityOriented"]))
            .to_string(),
        fallback_to_od: true,
        utilize_reserved_instances: random.chance(0.3),
        product: product.to_string(),
        use_case: (*random.pick(USE_CASES)).to_string(),
        tags: vec![
            Tag {
                key: "team".to_string(),
                value: team.to_string(),
            },
            Tag {
                key: "env".to_string(),
                value: environment.to_string(),
            },
            Tag {
                key: "cost-center".to_string(),
                value: cost_center,
            },
        ],
        created_at,
        updated_at,
        slot_plan: SlotPlan {
            base_slots: capacity_minimum,
            extra_slots: capacity_target - capacity_minimum + 2,
            on_demand_slots,
            min_lifetime_days: 1,
            max_lifetime_days: 14,
            fallback_per_mille: 40,
            cost_granularity_micros: 1,
        },
    }
}

fn generate_emr_scaler(
    account: &Account,
    region: &RegionInfo,
    random: &mut SplitMix64,
    ids: &mut IdFactory,
    names: &mut NameFactory,
) -> EmrScaler {
    let team = *random.pick(TEAM_NAMES);
    let name = names.unique(format!(
        "{team}-emr-{}",
        random.pick(&["etl", "spark", "hive", "presto"])
    ));
    let core_count = random.next_in_range(2, 3) as u32;
    let task_minimum = random.next_in_range(1, 3) as u32;
    let task_maximum = task_minimum + random.next_in_range(2, 5) as u32;
    let master_type = "m5.xlarge".to_string();
    let core_type = (*random.pick(&["r5.xlarge", "m5.2xlarge"])).to_string();
    let task_families: &[&[&str]] = &[&["c5.xlarge", "c6i.xlarge"], &["r5.xlarge", "r5.2xlarge"]];
    let task_family = *random.pick(task_families);
    let task_types = family_types(task_family);
    let created_at = random_timestamp_after(random, account.created_at, 900);
    let updated_at = random_timestamp_after(random, created_at, 200);
    let on_demand_slot_types = std::iter::once(master_type.clone())
        .chain(std::iter::repeat_n(core_type.clone(), core_count as usize))
        .collect();
    EmrScaler {
        id: ids.make("simrs-", 8),
        name,
        description: format!("EMR scaler for {team}"),
        region: region.name.to_string(),
        availability_zones: zones_of(region, 2),
        master_type,
        core_type,
        task_types,
        core_count,
        task_minimum,
        task_maximum,
        created_at,
        updated_at,
        slot_plan: SlotPlan {
            base_slots: 1 + core_count + task_minimum,
            extra_slots: task_maximum - task_minimum,
            on_demand_slots: 1 + core_count,
            min_lifetime_days: 1,
            max_lifetime_days: 5,
            fallback_per_mille: 0,
            cost_granularity_micros: 100,
        },
        on_demand_slot_types,
    }
}

fn generate_managed_instance(
    account: &Account,
    region: &RegionInfo,
    managed_number: i64,
    random: &mut SplitMix64,
    ids: &mut IdFactory,
    names: &mut NameFactory,
) -> ManagedInstance {
    let team = *random.pick(TEAM_NAMES);
    let name = names.unique(format!(
        "{team}-{}",
        random.pick(&["jenkins", "bastion", "sftp", "license-server", "db-primary"])
    ));
    // The first managed instance of an account is on-demand, so both lifecycles exist.
    let lifecycle = if managed_number == 0 || random.chance(0.2) {
        Lifecycle::OnDemand
    } else {
        Lifecycle::Spot
    };
    let instance_family = *random.pick(AWS_TYPE_FAMILIES);
    let instance_types = family_types(instance_family);
    let created_at = random_timestamp_after(random, account.created_at, 900);
    let updated_at = random_timestamp_after(random, created_at, 200);
    ManagedInstance {
        id: ids.make("smi-", 8),
        name,
        region: region.name.to_string(),
        availability_zones: zones_of(region, 3),
        lifecycle,
        orientation: (*random.pick(&["balanced", "cost", "availability"])).to_string(),
        fallback_to_od: true,
        preferred_type: instance_types[0].clone(),
        instance_types,
        product: "Linux/UNIX".to_string(),
        tags: vec![Tag {
            key: "team".to_string(),
            value: team.to_string(),
        }],
        created_at,
        updated_at,
        slot_plan: SlotPlan {
            base_slots: 1,
            extra_slots: 0,
            on_demand_slots: u32::from(lifecycle == Lifecycle::OnDemand),
            min_lifetime_days: 20,
            max_lifetime_days: 60,
            fallback_per_mille: 0,
            cost_granularity_micros: 1,
        },
    }
}

fn generate_cluster(
    seed: u64,
    shape: &ScaleShape,
    account: &Account,
    region: &RegionInfo,
    random: &mut SplitMix64,
    ids: &mut IdFactory,
    names: &mut NameFactory,
) -> Cluster {
    let id = ids.make("o-", 8);
    let environment = *random.pick(ENVIRONMENT_NAMES);
    let flavour = match account.cloud {
        Cloud::Aws => "eks",
        Cloud::Gcp => "gke",
        Cloud::Azure => "aks",
    };
    let name = names.unique(format!(
        "{}-{environment}-{flavour}",
        random.pick(TEAM_NAMES)
    ));
    let mut cluster_random = SplitMix64::keyed(seed, &["cluster", &id]);

    let namespace_count = random_range(&mut cluster_random, shape.namespaces_per_cluster) as usize;
    let mut namespace_names = NameFactory::default();
    let mut namespaces = Vec::with_capacity(namespace_count);
    let mut first_application_namespace = true;
    for namespace_number in 0..namespace_count {
        let namespace_name = if namespace_number == 0 {
            namespace_names.unique("kube-system".to_string())
        } else {
            namespace_names.unique((*cluster_random.pick(NAMESPACE_NAMES)).to_string())
        };
        let is_system = namespace_number == 0;
        let mut labels = BTreeMap::new();
        if !is_system {
            if cluster_random.chance(0.85) {
                labels.insert(
                    "team".to_string(),
                    (*cluster_random.pick(LABEL_TEAMS)).to_string(),
                );
            }
            if cluster_random.chance(0.7) {
                labels.insert(
                    "cost-center".to_string(),
                    format!("cc-{}", 1000 + cluster_random.next_below(10)),
                );
            }
            if cluster_random.chance(0.9) {
                labels.insert("env".to_string(), environment.to_string());
            }
        }
        let workload_count =
            random_range(&mut cluster_random, shape.workloads_per_namespace) as usize;
        let system_name_offset = cluster_random.next_below(4) as usize;
        let mut workload_names = NameFactory::default();
        let mut workloads = Vec::with_capacity(workload_count);
        for workload_number in 0..workload_count {
            let kind_roll = cluster_random.next_below(100);
            let kind = if is_system {
                if workload_number % 2 == 0 {
                    "Deployment"
                } else {
                    "DaemonSet"
                }
            } else {
                match kind_roll {
                    0..=59 => "Deployment",
                    60..=74 => "StatefulSet",
                    75..=84 => "DaemonSet",
                    _ => "Job",
                }
            };
            let base_name = if is_system {
                // Walk the cloud's system pool from a random start, so names repeat only when it runs out.
                let system_names = system_workload_names(account.cloud, kind);
                system_names[(system_name_offset + workload_number / 2) % system_names.len()]
                    .to_string()
            } else {
                let pool = match kind {
                    "Deployment" => DEPLOYMENT_NAMES,
                    "StatefulSet" => STATEFUL_SET_NAMES,
                    "DaemonSet" => DAEMON_SET_NAMES,
                    _ => JOB_NAMES,
                };
                format!("{namespace_name}-{}", cluster_random.pick(pool))
            };
            let workload_name = workload_names.unique(base_name);
            let container_count = cluster_random.next_in_range(1, 3) as usize;
            let mut containers = Vec::with_capacity(container_count);
            let mut container_names = NameFactory::default();
            for container_number in 0..container_count {
                let container_name = if container_number == 0 {
                    container_names.unique("app".to_string())
                } else {
                    container_names.unique((*cluster_random.pick(SIDECAR_NAMES)).to_string())
                };
                let cpu_steps = if container_number == 0 {
                    cluster_random.next_in_range(2, 40)
                } else {
                    cluster_random.next_in_range(1, 6)
                };
                let memory_steps = if container_number == 0 {
                    cluster_random.next_in_range(2, 64)
                } else {
                    cluster_random.next_in_range(1, 8)
                };
                containers.push(Container {
                    name: container_name,
                    cpu_request_millicores: cpu_steps * 50,
                    memory_request_mib: memory_steps * 64,
                });
            }
            let base_replicas = match kind {
                "StatefulSet" => cluster_random.next_in_range(1, 3),
                "Deployment" => cluster_random.next_in_range(1, 6),
                _ => 1,
            } as u32;
            // A 100 GiB gp3 volume costs about 0.27 USD a day; root-volume shares are cents.
            let base_storage_micros_per_day = match kind {
                "StatefulSet" => cluster_random.next_in_range(100_000, 900_000),
                "Deployment" => cluster_random.next_in_range(5_000, 40_000),
                "DaemonSet" => cluster_random.next_in_range(2_000, 15_000),
                _ => cluster_random.next_in_range(0, 10_000),
            };
            // Egress at 0.09 USD/GiB: a few GiB a day per workload.
            let networking_roll = cluster_random.next_in_range(500, 60_000);
            let base_networking_micros_per_day = if account.cloud == Cloud::Gcp {
                0
            } else {
                networking_roll
            };
            workloads.push(Workload {
                name: workload_name,
                kind: kind.to_string(),
                base_replicas,
                containers,
                base_storage_micros_per_day,
                base_networking_micros_per_day,
            });
        }
        let unused_roll = cluster_random.chance(0.4);
        let has_unused_storage = !is_system && (first_application_namespace || unused_roll);
        if !is_system {
            first_application_namespace = false;
        }
        namespaces.push(Namespace {
            name: namespace_name,
            labels,
            workloads,
            has_unused_storage,
        });
    }

    let workload_total: usize = namespaces
        .iter()
        .map(|namespace| namespace.workloads.len())
        .sum();
    let node_group_count =
        random_range(&mut cluster_random, shape.virtual_node_groups_per_cluster) as usize;
    let total_base_nodes = (workload_total / 5).max(2 * node_group_count);
    let spot_percentage = *cluster_random.pick(&[100, 100, 90, 80]);
    let mut node_group_names = NameFactory::default();
    let mut virtual_node_groups = Vec::with_capacity(node_group_count);
    for node_group_number in 0..node_group_count {
        let family = *cluster_random.pick(type_families_of(account.cloud));
        let base_slots = (total_base_nodes / node_group_count).max(1) as u32;
        let node_group_name = node_group_names.unique(match (account.cloud, node_group_number) {
            (_, 0) => "default".to_string(),
            (Cloud::Azure, _) => format!("pool{node_group_number}"),
            _ => (*cluster_random.pick(&["general", "compute", "memory", "batch", "gpu-less"]))
                .to_string(),
        });
        virtual_node_groups.push(VirtualNodeGroup {
            id: ids.make("ols-", 8),
            name: node_group_name,
            instance_types: family_types(family),
            slot_plan: SlotPlan {
                base_slots,
                extra_slots: base_slots / 2 + 1,
                on_demand_slots: (base_slots * (100 - spot_percentage)).div_ceil(100),
                min_lifetime_days: 1,
                max_lifetime_days: 10,
                fallback_per_mille: 20,
                cost_granularity_micros: 1,
            },
        });
    }
    let capacity_target: u32 = virtual_node_groups
        .iter()
        .map(|group| group.slot_plan.base_slots)
        .sum();
    let created_at = random_timestamp_after(random, account.created_at, 900);
    let updated_at = random_timestamp_after(random, created_at, 200);
    let zone_count = cluster_random.next_in_range(2, 3) as usize;
    Cluster {
        controller_cluster_id: format!("{name}-{}", cluster_random.hex_string(4)),
        resource_group_name: if account.cloud == Cloud::Azure {
            format!("rg-{name}")
        } else {
            String::new()
        },
        id,
        name,
        cloud: account.cloud,
        region: region.name.to_string(),
        availability_zones: zones_of(region, zone_count),
        capacity_minimum: 0,
        capacity_maximum: capacity_target * 4,
        capacity_target,
        spot_percentage,
        fallback_to_od: true,
        utilize_reserved_instances: cluster_random.chance(0.5),
        created_at,
        updated_at,
        virtual_node_groups,
        namespaces,
    }
}

//! The simulator's price list: instance types with their on-demand prices, families of interchangeable types, regions with their zones and price levels for AWS, GCP and Azure, and the day-by-day spot price; the one place to edit when prices move.

use super::org::{Cloud, Money};
use super::rng::{mix_u64, stable_hash, SplitMix64};

struct InstanceTypePrice {
    name: &'static str,
    on_demand_hourly_micros: i64,
    vcpus: i64,
}

/// Linux on-demand prices per hour in the cheapest region of each cloud (us-east-1,
/// us-central1, eastus), rounded to the micro-dollar.
const INSTANCE_TYPE_PRICES: &[InstanceTypePrice] = &[
    InstanceTypePrice {
        name: "t3.medium",
        on_demand_hourly_micros: 41_600,
        vcpus: 2,
    },
    InstanceTypePrice {
        name: "m5.large",
        on_demand_hourly_micros: 96_000,
        vcpus: 2,
    },
    InstanceTypePrice {
        name: "m5a.large",
        on_demand_hourly_micros: 86_000,
        vcpus: 2,
    },
    InstanceTypePrice {
        name: "m6i.large",
        on_demand_hourly_micros: 96_000,
        vcpus: 2,
    },
    InstanceTypePrice {
        name: "m5.xlarge",
        on_demand_hourly_micros: 192_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "m6i.xlarge",
        on_demand_hourly_micros: 192_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "m5.2xlarge",
        on_demand_hourly_micros: 384_000,
        vcpus: 8,
    },
    InstanceTypePrice {
        name: "m5.4xlarge",
        on_demand_hourly_micros: 768_000,
        vcpus: 16,
    },
    InstanceTypePrice {
        name: "c5.large",
        on_demand_hourly_micros: 85_000,
        vcpus: 2,
    },
    InstanceTypePrice {
        name: "c5.xlarge",
        on_demand_hourly_micros: 170_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "c6i.xlarge",
        on_demand_hourly_micros: 170_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "c5.2xlarge",
        on_demand_hourly_micros: 340_000,
        vcpus: 8,
    },
    InstanceTypePrice {
        name: "r5.large",
        on_demand_hourly_micros: 126_000,
        vcpus: 2,
    },
    InstanceTypePrice {
        name: "r5.xlarge",
        on_demand_hourly_micros: 252_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "r5.2xlarge",
        on_demand_hourly_micros: 504_000,
        vcpus: 8,
    },
    InstanceTypePrice {
        name: "r6i.2xlarge",
        on_demand_hourly_micros: 504_000,
        vcpus: 8,
    },
    InstanceTypePrice {
        name: "e2-standard-2",
        on_demand_hourly_micros: 67_006,
        vcpus: 2,
    },
    InstanceTypePrice {
        name: "e2-standard-4",
        on_demand_hourly_micros: 134_012,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "e2-standard-8",
        on_demand_hourly_micros: 268_024,
        vcpus: 8,
    },
    InstanceTypePrice {
        name: "n1-standard-4",
        on_demand_hourly_micros: 189_999,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "n2-standard-4",
        on_demand_hourly_micros: 194_236,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "n2-standard-8",
        on_demand_hourly_micros: 388_472,
        vcpus: 8,
    },
    InstanceTypePrice {
        name: "Standard_D4s_v3",
        on_demand_hourly_micros: 192_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "Standard_D4as_v4",
        on_demand_hourly_micros: 172_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "Standard_D8s_v3",
        on_demand_hourly_micros: 384_000,
        vcpus: 8,
    },
    InstanceTypePrice {
        name: "Standard_E4s_v3",
        on_demand_hourly_micros: 252_000,
        vcpus: 4,
    },
    InstanceTypePrice {
        name: "Standard_F8s_v2",
        on_demand_hourly_micros: 338_000,
        vcpus: 8,
    },
];

pub(crate) const AWS_TYPE_FAMILIES: &[&[&str]] = &[
    &["m5.large", "m5a.large", "m6i.large"],
    &["m5.xlarge", "m6i.xlarge"],
    &["c5.xlarge", "c6i.xlarge"],
    &["c5.large", "m5.large", "t3.medium"],
    &["r5.xlarge", "r5.large"],
    &["r5.2xlarge", "r6i.2xlarge"],
    &["m5.2xlarge", "c5.2xlarge"],
    &["m5.4xlarge", "m5.2xlarge"],
];
const GCP_TYPE_FAMILIES: &[&[&str]] = &[
    &["n2-standard-4", "e2-standard-4", "n1-standard-4"],
    &["n2-standard-8", "e2-standard-8"],
    &["e2-standard-2", "e2-standard-4"],
];
const AZURE_TYPE_FAMILIES: &[&[&str]] = &[
    &["Standard_D4s_v3", "Standard_D4as_v4"],
    &["Standard_D8s_v3", "Standard_F8s_v2"],
    &["Standard_E4s_v3", "Standard_D4s_v3"],
];

pub(crate) struct RegionInfo {
    pub(crate) name: &'static str,
    pub(crate) zone_suffixes: &'static [&'static str],
    /// Price multiplier in per-mille of the cheapest region.
    pub(crate) price_per_mille: i64,
}

const AWS_REGIONS: &[RegionInfo] = &[
    RegionInfo {
        name: "us-east-1",
        zone_suffixes: &["a", "b", "c", "d"],
        price_per_mille: 1000,
    },
    RegionInfo {
        name: "us-west-2",
        zone_suffixes: &["a", "b", "c"],
        price_per_mille: 1000,
    },
    RegionInfo {
        name: "eu-west-1",
        zone_suffixes: &["a", "b", "c"],
        price_per_mille: 1114,
    },
    RegionInfo {
        name: "eu-central-1",
        zone_suffixes: &["a", "b", "c"],
        price_per_mille: 1156,
    },
];
const GCP_REGIONS: &[RegionInfo] = &[
    RegionInfo {
        name: "us-central1",
        zone_suffixes: &["-a", "-b", "-c", "-f"],
        price_per_mille: 1000,
    },
    RegionInfo {
        name: "europe-west1",
        zone_suffixes: &["-b", "-c", "-d"],
        price_per_mille: 1100,
    },
];
const AZURE_REGIONS: &[RegionInfo] = &[
    RegionInfo {
        name: "eastus",
        zone_suffixes: &["-1", "-2", "-3"],
        price_per_mille: 1000,
    },
    RegionInfo {
        name: "westeurope",
        zone_suffixes: &["-1", "-2", "-3"],
        price_per_mille: 1100,
    },
];

pub(crate) fn regions_of(cloud: Cloud) -> &'static [RegionInfo] {
    match cloud {
        Cloud::Aws => AWS_REGIONS,
        Cloud::Gcp => GCP_REGIONS,
        Cloud::Azure => AZURE_REGIONS,
    }
}

pub(crate) fn type_families_of(cloud: Cloud) -> &'static [&'static [&'static str]] {
    match cloud {
        Cloud::Aws => AWS_TYPE_FAMILIES,
        Cloud::Gcp => GCP_TYPE_FAMILIES,
        Cloud::Azure => AZURE_TYPE_FAMILIES,
    }
}

fn region_price_per_mille(region: &str) -> i64 {
    AWS_REGIONS
        .iter()
        .chain(GCP_REGIONS)
        .chain(AZURE_REGIONS)
        .find(|info| info.name == region)
        .map_or(1000, |info| info.price_per_mille)
}

/// On-demand hourly price of `instance_type` in `region` (Windows adds a licence fee per vCPU).
pub(crate) fn on_demand_hourly_price(instance_type: &str, region: &str, product: &str) -> Money {
    let (base_micros, vcpus) = INSTANCE_TYPE_PRICES
        .iter()
        .find(|price| price.name == instance_type)
        .map_or((100_000, 2), |price| {
            (price.on_demand_hourly_micros, price.vcpus)
        });
    let licence_micros = if product == "WINDOWS" {
        vcpus * 46_000
    } else {
        0
    };
    Money(base_micros * region_price_per_mille(region) / 1000 + licence_micros)
}

/// Spot/preemptible hourly price of an instance type in a zone on a day: 15–40 % of on-demand
/// depending on the cloud, moving day by day.
pub(crate) fn spot_hourly_price(
    seed: u64,
    cloud: Cloud,
    instance_type: &str,
    zone: &str,
    day_number: i64,
    on_demand: Money,
) -> Money {
    let (lowest_per_mille, span_per_mille) = match cloud {
        Cloud::Aws => (200, 201),
        Cloud::Gcp => (180, 121),
        Cloud::Azure => (150, 251),
    };
    let day_key = mix_u64(
        stable_hash(seed, &["spot-price", instance_type, zone]),
        day_number as u64,
    );
    let per_mille = lowest_per_mille + (SplitMix64::new(day_key).next_below(span_per_mille) as i64);
    Money(on_demand.micros() * per_mille / 1000)
}

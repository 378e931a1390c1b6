-- Ocean cost rows, renamed for the marts. grain: one row per cluster × day × namespace × workload (plus headroom, unused-storage and unattributed rows).
select
    day,
    account_id,
    cluster_id,
    cluster_name,
    cloud,
    row_kind,
    namespace,
    workload_name,
    workload_type,
    compute_cost_usd,
    storage_cost_usd,
    network_cost_usd,
    total_cost_usd,
    cluster_total_cost_usd,
    namespace_labels,
from raw_spot__ocean_costs

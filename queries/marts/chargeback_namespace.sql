-- Ocean cost per namespace with its share of the cluster's shared cost, under the configured policy. grain: one row per day × account × cluster × namespace.
-- column day: The UTC day the cost was incurred.
-- column account_id: Spot account id.
-- column cluster_id: Ocean cluster id (o-…).
-- column cluster_name: Ocean cluster name.
-- column namespace: Kubernetes namespace; `__shared__` holds the cluster-day's shared cost when the policy is `none`.
-- column team: The namespace's value of the configured team label key, or `unassigned`.
-- column cost_center: The namespace's value of the configured cost-centre label key, or `unassigned`.
-- column compute_cost_usd: The namespace's own compute cost, USD.
-- column storage_cost_usd: The namespace's own storage cost, USD.
-- column network_cost_usd: The namespace's own networking cost, USD.
-- column direct_cost_usd: The namespace's own cost (its workloads), USD.
-- column shared_cost_usd: The namespace's share of headroom, unused storage and unattributed cost, USD.
-- column total_cost_usd: direct plus shared cost, USD; the namespaces of a cluster-day add up to the cluster's total.
-- column shared_cost_policy: How shared cost was spread: none, proportional or even.
-- incremental: day
with

settings as (
    select * from spotcost_settings
),

workloads as (
    -- The label values are read before aggregating: any_value over a text is much cheaper than
    -- over a map, and a namespace's labels are the same on all its rows.
    select
        ocean.day,
        ocean.account_id,
        ocean.cluster_id,
        ocean.namespace,
        map_extract_value(ocean.namespace_labels, settings.team_label_key) as team_label,
        map_extract_value(ocean.namespace_labels, settings.cost_center_label_key) as cost_center_label,
        ocean.compute_cost_usd,
        ocean.storage_cost_usd,
        ocean.network_cost_usd,
        ocean.total_cost_usd,
    from stg_spot__ocean_costs as ocean
    cross join settings
    where ocean.row_kind = 'workload'
),

cluster_days as (
    select * from int_ocean_cluster_days
),

namespace_costs as (
    select
        day,
        account_id,
        cluster_id,
        namespace,
        any_value(team_label) as team_label,
        any_value(cost_center_label) as cost_center_label,
        sum(compute_cost_usd) as compute_cost_usd,
        sum(storage_cost_usd) as storage_cost_usd,
        sum(network_cost_usd) as network_cost_usd,
        sum(total_cost_usd) as direct_cost_usd,
    from workloads
    group by all
),

direct_totals as (
    select
        day,
        account_id,
        cluster_id,
        sum(direct_cost_usd) as direct_total_usd,
        count(*) as namespace_count,
    from namespace_costs
    group by all
),

shared_costs as (
    select
        cluster_days.day,
        cluster_days.account_id,
        cluster_days.cluster_id,
        cluster_days.cluster_name,
        cluster_days.cluster_total_cost_usd - coalesce(direct_totals.direct_total_usd, 0) as shared_cost_usd,
        coalesce(direct_totals.direct_total_usd, 0) as direct_total_usd,
        coalesce(direct_totals.namespace_count, 0) as namespace_count,
    from cluster_days
    left join direct_totals using (day, account_id, cluster_id)
),

allocated as (
    select
        namespace_costs.day,
        namespace_costs.account_id,
        namespace_costs.cluster_id,
        shared_costs.cluster_name,
        namespace_costs.namespace,
        coalesce(namespace_costs.team_label, 'unassigned') as team,
        coalesce(namespace_costs.cost_center_label, 'unassigned') as cost_center,
        namespace_costs.compute_cost_usd,
        namespace_costs.storage_cost_usd,
        namespace_costs.network_cost_usd,
        namespace_costs.direct_cost_usd,
        case
            when settings.shared_cost_policy = 'none' then 0
            when settings.shared_cost_policy = 'proportional' and shared_costs.direct_total_usd > 0
                then shared_costs.shared_cost_usd * namespace_costs.direct_cost_usd / shared_costs.direct_total_usd
            else shared_costs.shared_cost_usd / shared_costs.namespace_count
        end as shared_cost_usd,
        settings.shared_cost_policy,
    from namespace_costs
    inner join shared_costs using (day, account_id, cluster_id)
    cross join settings
),

unallocated as (
    -- The shared cost itself, as a row of its own, when the policy keeps it apart (or when a
    -- cluster-day has no namespace to carry it).
    select
        shared_costs.day,
        shared_costs.account_id,
        shared_costs.cluster_id,
        shared_costs.cluster_name,
        '__shared__' as namespace,
        'shared' as team,
        'shared' as cost_center,
        0::double as compute_cost_usd,
        0::double as storage_cost_usd,
        0::double as network_cost_usd,
        0::double as direct_cost_usd,
        shared_costs.shared_cost_usd,
        settings.shared_cost_policy,
    from shared_costs
    cross join settings
    where settings.shared_cost_policy = 'none' or shared_costs.namespace_count = 0
),

final as (
    select
        *,
        direct_cost_usd + shared_cost_usd as total_cost_usd,
    from (
        select * from allocated
        union all
        select * from unallocated
    )
)

select
    day,
    account_id,
    cluster_id,
    cluster_name,
    namespace,
    team,
    cost_center,
    compute_cost_usd,
    storage_cost_usd,
    network_cost_usd,
    direct_cost_usd,
    shared_cost_usd,
    total_cost_usd,
    shared_cost_policy,
from final

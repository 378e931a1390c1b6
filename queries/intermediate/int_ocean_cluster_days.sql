-- Ocean cost per cluster and day, compute apart from storage and networking, with the total Spot reports. grain: one row per day × account × cluster.
-- incremental: day
-- column day: The UTC day the cost was incurred.
-- column account_id: Spot account id.
-- column cluster_id: Ocean cluster id (o-…).
-- column cluster_name: Ocean cluster name.
-- column compute_cost_usd: Compute cost of all the cluster-day's rows (workloads, headroom, unused storage, unattributed), USD.
-- column storage_network_cost_usd: Storage and networking cost of all the cluster-day's rows, USD.
-- column cluster_total_cost_usd: The cluster-day total Spot reports (else the sum of its rows), USD.
with

ocean as (
    select * from stg_spot__ocean_costs
),

final as (
    select
        day,
        account_id,
        cluster_id,
        any_value(cluster_name) as cluster_name,
        sum(compute_cost_usd) as compute_cost_usd,
        sum(storage_cost_usd + network_cost_usd) as storage_network_cost_usd,
        coalesce(max(cluster_total_cost_usd), sum(total_cost_usd)) as cluster_total_cost_usd,
    from ocean
    group by all
)

select * from final

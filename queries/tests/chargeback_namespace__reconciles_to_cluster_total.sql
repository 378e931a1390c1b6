-- The namespaces of every cluster-day (shared row included) add up to the cluster's total, to the cent. Returns cluster-days that do not.
-- incremental: day
with

allocated as (
    select day, account_id, cluster_id, sum(total_cost_usd) as allocated_usd,
    from chargeback_namespace
    where day in (select day from spotcost_changed_days)
    group by all
),

reported as (
    -- Spot's total of every cluster-day of the lake (else the sum of its rows).
    select day, account_id, cluster_id, cluster_total_cost_usd as cluster_total_usd,
    from int_ocean_cluster_days
    where day in (select day from spotcost_changed_days)
)

select
    reported.*,
    coalesce(allocated.allocated_usd, 0) as allocated_usd,
from reported
left join allocated using (day, account_id, cluster_id)
where abs(reported.cluster_total_usd - coalesce(allocated.allocated_usd, 0)) >= 0.005

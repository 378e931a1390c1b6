-- What could still be saved per month: Spot's potential-savings estimates and the right-sizing opportunities, ranked. grain: one row per opportunity (resource or container).
-- column savings_rank: 1 for the largest monthly saving.
-- column account_id: Spot account id.
-- column source: `potential_savings` (moving a resource to Spot) or `rightsizing` (a container's requests).
-- column resource_type: Spot's resource type, or `Container` for right-sizing.
-- column resource_name: Resource name, or cluster/namespace/workload/container for right-sizing.
-- column region: Cloud region where Spot gives one.
-- column monthly_savings_usd: Estimated savings per month, USD.
with

spot_estimates as (
    select
        account_id,
        'potential_savings' as source,
        coalesce(resource_type, 'unknown') as resource_type,
        coalesce(resource_name, '(unnamed)') as resource_name,
        region,
        coalesce(monthly_savings_usd, 0) as monthly_savings_usd,
    from stg_spot__potential_savings
    qualify snapshot_day = max(snapshot_day) over (partition by account_id)
),

rightsizing_estimates as (
    select
        account_id,
        'rightsizing' as source,
        'Container' as resource_type,
        cluster_id || '/' || namespace || '/' || workload_name || '/' || container_name as resource_name,
        null::varchar as region,
        monthly_savings_usd,
    from rightsizing
    where monthly_savings_usd > 0
),

final as (
    select
        row_number() over (order by monthly_savings_usd desc, source, resource_name) as savings_rank,
        *,
    from (
        select * from spot_estimates
        union all
        select * from rightsizing_estimates
    )
)

select * from final

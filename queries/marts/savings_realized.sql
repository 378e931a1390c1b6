-- Realized savings (on-demand equivalent minus what was paid) per resource and day. grain: one row per day × account × resource.
-- column day: The UTC day.
-- column account_id: Spot account id.
-- column product: Elastigroup, EMR, Managed Instance or Ocean.
-- column resource_id: Group, scaler or managed-instance id; for Ocean the virtual node group of the instance-cost export.
-- column resource_name: Resource name where Spot gives one, else its id.
-- column actual_cost_usd: What was paid, USD.
-- column on_demand_cost_usd: The on-demand equivalent, USD.
-- column savings_usd: on_demand_cost_usd minus actual_cost_usd.
-- incremental: day
with

resources as (
    select day, account_id, product, resource_id, resource_name, actual_cost_usd, on_demand_cost_usd from stg_spot__elastigroup_costs
    union all
    select day, account_id, product, resource_id, resource_name, actual_cost_usd, on_demand_cost_usd from stg_spot__managed_instance_costs
),

ocean_node_groups as (
    select
        day,
        account_id,
        'Ocean' as product,
        coalesce(resource_id, '(unknown node group)') as resource_id,
        coalesce(resource_id, '(unknown node group)') as resource_name,
        sum(actual_cost_usd) as actual_cost_usd,
        sum(on_demand_cost_usd) as on_demand_cost_usd,
    from int_instance_cost_days
    where is_ocean
    group by all
),

final as (
    select
        day,
        account_id,
        product,
        resource_id,
        coalesce(resource_name, resource_id) as resource_name,
        actual_cost_usd,
        on_demand_cost_usd,
        on_demand_cost_usd - actual_cost_usd as savings_usd,
    from (
        select * from resources
        union all
        select * from ocean_node_groups
    )
)

select * from final

-- Monthly cost per account and product, with its on-demand equivalent and the savings. grain: one row per month × account × product.
-- column month: First day of the calendar month (UTC).
-- column account_id: Spot account id.
-- column account_name: Account name as last listed.
-- column product: Elastigroup, EMR, Managed Instance, Ocean (compute) or Ocean storage and network.
-- column actual_cost_usd: What was paid, USD.
-- column on_demand_cost_usd: What the same usage would have cost on demand, USD (Ocean compute from the instance-cost export; storage and network have no discount, so equal to actual).
-- column savings_usd: on_demand_cost_usd minus actual_cost_usd.
with

resource_days as (
    -- Elastigroups, EMR scalers and Managed Instances, per resource and day.
    select day, account_id, product, actual_cost_usd, on_demand_cost_usd
    from savings_realized
    where product <> 'Ocean'
),

ocean_days as (
    select
        day,
        account_id,
        sum(compute_cost_usd) as compute_cost_usd,
        sum(storage_network_cost_usd) as storage_network_cost_usd,
    from int_ocean_cluster_days
    group by all
),

ocean_instance_days as (
    -- The Ocean nodes of the instance-cost export, per virtual node group and day.
    select
        day,
        account_id,
        sum(actual_cost_usd) as actual_cost_usd,
        sum(on_demand_cost_usd) as on_demand_cost_usd,
    from savings_realized
    where product = 'Ocean'
    group by all
),

ocean_products as (
    select
        ocean_days.day,
        ocean_days.account_id,
        'Ocean' as product,
        ocean_days.compute_cost_usd as actual_cost_usd,
        -- The export prices the same nodes on demand; scale it to the compute cost Ocean reports.
        case
            when ocean_instance_days.actual_cost_usd > 0
                then ocean_days.compute_cost_usd * ocean_instance_days.on_demand_cost_usd / ocean_instance_days.actual_cost_usd
            else ocean_days.compute_cost_usd
        end as on_demand_cost_usd,
    from ocean_days
    left join ocean_instance_days using (day, account_id)
    union all
    select
        day,
        account_id,
        'Ocean storage and network' as product,
        storage_network_cost_usd as actual_cost_usd,
        storage_network_cost_usd as on_demand_cost_usd,
    from ocean_days
),

account_names as (
    select
        account_id,
        arg_max(account_name, snapshot_day) as account_name,
    from stg_spot__accounts
    group by all
),

monthly as (
    select
        date_trunc('month', day)::date as month,
        account_id,
        product,
        sum(actual_cost_usd) as actual_cost_usd,
        sum(on_demand_cost_usd) as on_demand_cost_usd,
    from (
        select * from resource_days
        union all
        select * from ocean_products
    )
    group by all
),

final as (
    select
        monthly.month,
        monthly.account_id,
        coalesce(account_names.account_name, monthly.account_id) as account_name,
        monthly.product,
        monthly.actual_cost_usd,
        monthly.on_demand_cost_usd,
        monthly.on_demand_cost_usd - monthly.actual_cost_usd as savings_usd,
    from monthly
    left join account_names using (account_id)
)

select * from final

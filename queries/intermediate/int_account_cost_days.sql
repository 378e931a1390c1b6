-- Spot's own daily cost total per account, kept in the warehouse so that checks over whole months need not reread the lake. grain: one row per day × account.
-- incremental: day
-- column day: The UTC day.
-- column account_id: Spot account id.
-- column cloud: The account's cloud provider.
-- column actual_cost_usd: What Spot reports the account paid that day, USD.
-- column on_demand_cost_usd: Spot's on-demand equivalent of it, USD.
with

account_costs as (
    select * from stg_spot__account_costs
),

final as (
    select
        day,
        account_id,
        any_value(cloud) as cloud,
        sum(actual_cost_usd) as actual_cost_usd,
        sum(on_demand_cost_usd) as on_demand_cost_usd,
    from account_costs
    group by all
)

select * from final

-- Spot's own daily total per account. grain: one row per account × day.
select
    day,
    account_id,
    cloud,
    actual_cost_usd,
    potential_cost_usd as on_demand_cost_usd,
from raw_spot__account_costs

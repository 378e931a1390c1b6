-- Elastigroup and EMR scaler daily costs with a product name. grain: one row per group × day.
select
    day,
    account_id,
    cloud,
    case product when 'emr_scaler' then 'EMR' else 'Elastigroup' end as product,
    group_id as resource_id,
    group_name as resource_name,
    running_hours,
    actual_cost_usd,
    potential_cost_usd as on_demand_cost_usd,
from raw_spot__elastigroup_costs

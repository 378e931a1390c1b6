-- Managed Instance daily costs. grain: one row per managed instance × day.
select
    day,
    account_id,
    'Managed Instance' as product,
    managed_instance_id as resource_id,
    managed_instance_name as resource_name,
    running_hours,
    actual_cost_usd,
    potential_cost_usd as on_demand_cost_usd,
from raw_spot__managed_instance_costs

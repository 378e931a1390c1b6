-- Instance-cost export rows, with Ocean instances told apart by their use case. grain: one row per instance × day.
select
    day,
    account_id,
    resource_id,
    instance_id,
    instance_type,
    lifecycle,
    use_case,
    upper(coalesce(use_case, '')) = 'K8S' as is_ocean,
    running_hours,
    coalesce(actual_cost_usd, 0) as actual_cost_usd,
    coalesce(on_demand_cost_usd, 0) as on_demand_cost_usd,
from raw_spot__instance_costs

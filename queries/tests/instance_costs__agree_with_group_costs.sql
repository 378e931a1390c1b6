-- The instance-cost export agrees with each Elastigroup's, EMR scaler's and Managed Instance's own cost per day, within spotcost_settings.instance_cost_tolerance_usd. Returns resource-days that stray further.
-- incremental: day
with

exported as (
    select day, account_id, resource_id, sum(actual_cost_usd) as exported_usd,
    from stg_spot__instance_costs
    where not is_ocean
    group by all
),

resources as (
    select day, account_id, resource_id, actual_cost_usd from stg_spot__elastigroup_costs
    union all
    select day, account_id, resource_id, actual_cost_usd from stg_spot__managed_instance_costs
)

select
    resources.day,
    resources.account_id,
    resources.resource_id,
    resources.actual_cost_usd as resource_usd,
    coalesce(exported.exported_usd, 0) as exported_usd,
from resources
inner join exported using (day, account_id, resource_id)
cross join spotcost_settings
where abs(resources.actual_cost_usd - exported.exported_usd) > spotcost_settings.instance_cost_tolerance_usd

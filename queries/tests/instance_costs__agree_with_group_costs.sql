-- The instance-cost export agrees with each Elastigroup's, EMR scaler's and Managed Instance's own cost per day, within spotcost_settings.instance_cost_tolerance_usd. Returns resource-days that stray further.
-- incremental: day
with

exported as (
    select day, account_id, resource_id, sum(actual_cost_usd) as exported_usd,
    from int_instance_cost_days
    where not is_ocean and day in (select day from spotcost_changed_days)
    group by all
),

resources as (
    -- The resources' own daily costs, as savings_realized carries them.
    select day, account_id, resource_id, actual_cost_usd,
    from savings_realized
    where product <> 'Ocean' and day in (select day from spotcost_changed_days)
)

select
    resources.day,
    resources.account_id,
    resources.resource_id,
    resources.actual_cost_usd as resource_usd,
    exported.exported_usd,
from resources
inner join exported using (day, account_id, resource_id)
cross join spotcost_settings
where abs(resources.actual_cost_usd - exported.exported_usd) > spotcost_settings.instance_cost_tolerance_usd

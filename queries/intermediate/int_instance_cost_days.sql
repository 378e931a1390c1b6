-- The instance-cost export summed per resource and day, read once for the marts and tests that need it. grain: one row per day × account × resource × is_ocean.
-- incremental: day
-- column day: The UTC day.
-- column account_id: Spot account id.
-- column resource_id: The export's resource: an Elastigroup, EMR scaler or Managed Instance id, or for Ocean nodes the virtual node group (null when the export names none).
-- column is_ocean: Whether the rows are Ocean nodes (use case K8S).
-- column actual_cost_usd: What the resource's instances cost that day, USD.
-- column on_demand_cost_usd: Their on-demand equivalent, USD.
-- column instance_rows: How many export rows (instance × day) were summed.
with

instances as (
    select * from stg_spot__instance_costs
),

final as (
    select
        day,
        account_id,
        resource_id,
        is_ocean,
        sum(actual_cost_usd) as actual_cost_usd,
        sum(on_demand_cost_usd) as on_demand_cost_usd,
        count(*) as instance_rows,
    from instances
    group by all
)

select * from final

-- The reconciliation ledger: what was allocated against what Spot reported, at each level, with the residual and whether it is within tolerance. grain: one row per day × account × level × item (the cluster, the account or the resource reconciled).
-- column day: The UTC day.
-- column account_id: Spot account id.
-- column level: What is reconciled against what: `namespaces_to_cluster` (the namespaces of chargeback_namespace against the cluster's total that Spot reports), `resources_to_account` (the account's Elastigroups, EMR scalers, Managed Instances and Ocean compute against Spot's own account cost), `instance_export_to_resource` (the instance-cost export against each Elastigroup's, EMR scaler's and Managed Instance's own cost).
-- column item_id: The item reconciled: the Ocean cluster id (namespaces_to_cluster), the account id (resources_to_account), the resource id (instance_export_to_resource).
-- column item_name: The cluster's or resource's name where Spot gives one, else item_id.
-- column allocated_usd: What was allocated: the namespaces' total cost, the resources' cost, or the instance-cost export's cost, USD.
-- column reported_usd: What Spot reported for the same day and item: the cluster's total, the account's cost, or the resource's own cost (0 where Spot reported nothing), USD.
-- column residual_usd: allocated_usd minus reported_usd, rounded to a billionth of a dollar (float noise is no residual).
-- column abs_residual_usd: The residual's absolute value, USD (the ledger is read largest first).
-- column tolerance_usd: The largest residual that reconciles (reconciliation_tolerance_usd), USD.
-- column within_tolerance: Whether the residual's absolute value is at most tolerance_usd.
-- incremental: day
--
-- Every input is a day-grained table, so a day's rows come from that day's rows alone; each import
-- reads only the days this build computes (spotcost_changed_days: every day in a full build).
-- instance_export_to_resource covers the resource-days that both the export (with a cost) and the
-- resource's own costs hold: a day or a resource missing from the export is not a residual.
with

settings as (
    select * from spotcost_settings
),

namespaces as (
    select day, account_id, cluster_id, total_cost_usd,
    from chargeback_namespace
    where day in (select day from spotcost_changed_days)
),

cluster_days as (
    select day, account_id, cluster_id, cluster_name, compute_cost_usd, cluster_total_cost_usd,
    from int_ocean_cluster_days
    where day in (select day from spotcost_changed_days)
),

resource_days as (
    -- Elastigroups, EMR scalers and Managed Instances with their own daily cost.
    select day, account_id, resource_id, resource_name, actual_cost_usd,
    from savings_realized
    where product <> 'Ocean' and day in (select day from spotcost_changed_days)
),

account_days as (
    select day, account_id, actual_cost_usd,
    from int_account_cost_days
    where day in (select day from spotcost_changed_days)
),

exported_days as (
    select day, account_id, resource_id, sum(actual_cost_usd) as exported_usd,
    from int_instance_cost_days
    where not is_ocean
        and resource_id is not null
        and actual_cost_usd is not null
        and day in (select day from spotcost_changed_days)
    group by all
),

namespaces_to_cluster as (
    select
        day,
        account_id,
        'namespaces_to_cluster' as level,
        cluster_id as item_id,
        any_value(cluster_name) as item_name,
        sum(allocated_usd) as allocated_usd,
        sum(reported_usd) as reported_usd,
    from (
        select day, account_id, cluster_id, null as cluster_name, total_cost_usd as allocated_usd, 0 as reported_usd,
        from namespaces
        union all
        select day, account_id, cluster_id, cluster_name, 0, cluster_total_cost_usd,
        from cluster_days
    )
    group by day, account_id, cluster_id
),

resources_to_account as (
    select
        day,
        account_id,
        'resources_to_account' as level,
        account_id as item_id,
        account_id as item_name,
        sum(allocated_usd) as allocated_usd,
        sum(reported_usd) as reported_usd,
    from (
        select day, account_id, actual_cost_usd as allocated_usd, 0 as reported_usd,
        from resource_days
        union all
        select day, account_id, compute_cost_usd, 0,
        from cluster_days
        union all
        select day, account_id, 0, actual_cost_usd,
        from account_days
    )
    group by day, account_id
),

instance_export_to_resource as (
    select
        resource_days.day,
        resource_days.account_id,
        'instance_export_to_resource' as level,
        resource_days.resource_id as item_id,
        resource_days.resource_name as item_name,
        exported_days.exported_usd as allocated_usd,
        resource_days.actual_cost_usd as reported_usd,
    from resource_days
    inner join exported_days using (day, account_id, resource_id)
),

ledger as (
    select * from namespaces_to_cluster
    union all
    select * from resources_to_account
    union all
    select * from instance_export_to_resource
),

residuals as (
    select
        *,
        -- Rounded to a billionth of a dollar: float noise in a sum of cents is no residual, and a
        -- residual of exactly the tolerance stays within it. A zero reads 0, never -0.
        case
            when round(allocated_usd - reported_usd, 9) = 0 then 0.0
            else round(allocated_usd - reported_usd, 9)
        end as residual_usd,
    from ledger
),

final as (
    select
        residuals.day,
        residuals.account_id,
        residuals.level,
        residuals.item_id,
        coalesce(residuals.item_name, residuals.item_id) as item_name,
        residuals.allocated_usd,
        residuals.reported_usd,
        residuals.residual_usd,
        abs(residuals.residual_usd) as abs_residual_usd,
        settings.reconciliation_tolerance_usd as tolerance_usd,
        -- A residual that cannot be computed (a cost Spot left null) is not within tolerance.
        coalesce(abs(residuals.residual_usd) <= settings.reconciliation_tolerance_usd, false) as within_tolerance,
    from residuals
    cross join settings
)

select * from final

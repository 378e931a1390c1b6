-- A FOCUS 1.2 CostAndUsage dataset: every charge of the usage days from getvariable('spotcost_export_from') to getvariable('spotcost_export_to') (inclusive). grain: one row per resource × day; an Ocean cluster-day is split into one row per workload (its own cost) and one per namespace (its share of the cluster's shared cost), which add up to the cluster's charge.
-- `spotcost export focus` sets the two variables, defines the macros spotcost_json_string(text)
-- and spotcost_json_object(map) (JSON text without DuckDB's json extension), and copies the
-- result to Parquet or CSV. Column
-- names and values follow FOCUS 1.2; `x_` columns are spotcost's (split allocation under FOCUS
-- 1.3's names, and what FOCUS has no column for). README (`spotcost export focus`) documents
-- every column.
with

organisation as (
    select coalesce(any_value(organization_id), 'unknown') as organization_id,
    from raw_spot__accounts
),

account_names as (
    select account_id, arg_max(account_name, snapshot_day) as account_name,
    from stg_spot__accounts
    group by all
),

-- Resource facts from the snapshots (groups, managed instances, clusters): the latest snapshot on
-- or before the usage day, else the earliest one (costs backfilled before the first snapshot).
resource_snapshots as (
    select account_id, resource_id, snapshot_day, region, spotcost_json_object(tags) as tags, null::varchar as lifecycle,
    from stg_spot__elastigroups
    union all
    select account_id, resource_id, snapshot_day, region, spotcost_json_object(tags) as tags, lifecycle,
    from stg_spot__managed_instances
    union all
    select account_id, cluster_id as resource_id, snapshot_day, region, null::varchar as tags, null::varchar as lifecycle,
    from stg_spot__ocean_clusters
),

first_resource_snapshots as (
    select account_id, resource_id, arg_min(region, snapshot_day) as region, arg_min(tags, snapshot_day) as tags,
    from resource_snapshots
    group by all
),

export_rows as (
    select * from stg_spot__instance_costs
    where day between getvariable('spotcost_export_from') and getvariable('spotcost_export_to')
),

-- Lifecycle of a resource-day from the instance-cost export: spot (EXCESS), on_demand or mixed.
resource_lifecycles as (
    select
        day,
        account_id,
        resource_id,
        case
            when bool_and(upper(lifecycle) = 'EXCESS') then 'spot'
            when bool_and(upper(coalesce(lifecycle, '')) <> 'EXCESS') then 'on_demand'
            else 'mixed'
        end as lifecycle,
    from export_rows
    where not is_ocean and resource_id is not null
    group by all
),

-- What the export says Ocean's nodes would cost on demand, per account-day: it scales the
-- clusters' compute into a list cost (storage and network have no discount).
ocean_list_ratios as (
    select day, account_id, sum(on_demand_cost_usd) / nullif(sum(actual_cost_usd), 0) as ratio,
    from export_rows
    where is_ocean
    group by all
),

resource_charges as (
    select
        costs.day,
        costs.account_id,
        costs.product,
        costs.resource_id,
        costs.resource_name,
        case costs.product when 'Managed Instance' then 'Managed Instance' when 'EMR' then 'EMR Scaler' else 'Elastigroup' end as resource_type,
        'Virtual Machines' as service_subcategory,
        costs.actual_cost_usd as cost_usd,
        costs.on_demand_cost_usd as list_cost_usd,
        null::map(varchar, varchar) as labels,
        lifecycles.lifecycle as export_lifecycle,
        null::varchar as namespace,
        null::varchar as workload,
        null::varchar as allocation,
        null::double as allocated_ratio,
        costs.product || ' ' || costs.resource_id || ', ' || strftime(costs.day, '%Y-%m-%d') as description,
    from savings_realized as costs
    left join resource_lifecycles as lifecycles
        on costs.day = lifecycles.day and costs.account_id = lifecycles.account_id and costs.resource_id = lifecycles.resource_id
    where costs.product <> 'Ocean'
        and costs.day between getvariable('spotcost_export_from') and getvariable('spotcost_export_to')
),

cluster_days as (
    select
        cluster_days.*,
        -- The cluster-day's list cost over its actual cost, for its shared cost.
        (cluster_days.compute_cost_usd * coalesce(ratios.ratio, 1) + cluster_days.storage_network_cost_usd)
            / nullif(cluster_days.compute_cost_usd + cluster_days.storage_network_cost_usd, 0) as list_ratio,
        coalesce(ratios.ratio, 1) as compute_list_ratio,
    from int_ocean_cluster_days as cluster_days
    left join ocean_list_ratios as ratios using (day, account_id)
    where cluster_days.day between getvariable('spotcost_export_from') and getvariable('spotcost_export_to')
),

workload_charges as (
    select
        workloads.day,
        workloads.account_id,
        'Ocean' as product,
        workloads.cluster_id as resource_id,
        cluster_days.cluster_name as resource_name,
        'Ocean Cluster' as resource_type,
        'Containers' as service_subcategory,
        workloads.total_cost_usd as cost_usd,
        workloads.compute_cost_usd * cluster_days.compute_list_ratio
            + workloads.storage_cost_usd + workloads.network_cost_usd as list_cost_usd,
        workloads.namespace_labels as labels,
        workloads.namespace,
        workloads.workload_name as workload,
        'workload' as allocation,
        workloads.total_cost_usd / nullif(cluster_days.cluster_total_cost_usd, 0) as allocated_ratio,
        'Ocean cluster ' || workloads.cluster_id || ', namespace ' || coalesce(workloads.namespace, '')
            || ', workload ' || coalesce(workloads.workload_name, '') || ', ' || strftime(workloads.day, '%Y-%m-%d') as description,
    from stg_spot__ocean_costs as workloads
    inner join cluster_days using (day, account_id, cluster_id)
    where workloads.row_kind = 'workload'
        and workloads.day between getvariable('spotcost_export_from') and getvariable('spotcost_export_to')
),

namespace_labels as (
    select day, account_id, resource_id as cluster_id, namespace, any_value(labels) as labels,
    from workload_charges
    group by all
),

shared_charges as (
    select
        namespaces.day,
        namespaces.account_id,
        'Ocean' as product,
        namespaces.cluster_id as resource_id,
        namespaces.cluster_name as resource_name,
        'Ocean Cluster' as resource_type,
        'Containers' as service_subcategory,
        namespaces.shared_cost_usd as cost_usd,
        namespaces.shared_cost_usd * coalesce(cluster_days.list_ratio, 1) as list_cost_usd,
        labels.labels,
        namespaces.namespace,
        null::varchar as workload,
        'shared-' || namespaces.shared_cost_policy as allocation,
        namespaces.shared_cost_usd / nullif(cluster_days.cluster_total_cost_usd, 0) as allocated_ratio,
        'Ocean cluster ' || namespaces.cluster_id || ', namespace ' || namespaces.namespace
            || ', shared cost, ' || strftime(namespaces.day, '%Y-%m-%d') as description,
    from chargeback_namespace as namespaces
    inner join cluster_days using (day, account_id, cluster_id)
    left join namespace_labels as labels using (day, account_id, cluster_id, namespace)
    where namespaces.shared_cost_usd <> 0
        and namespaces.day between getvariable('spotcost_export_from') and getvariable('spotcost_export_to')
),

charges as (
    -- Region, tags and lifecycle from the resource's snapshots: Ocean rows are tagged with their
    -- namespace's labels, the others with their group's or instance's tags.
    select
        charges.* exclude (labels, export_lifecycle),
        coalesce(snapshot.region, first_snapshot.region) as region,
        case
            when charges.product = 'Ocean' then spotcost_json_object(charges.labels)
            else coalesce(snapshot.tags, first_snapshot.tags, '{}')
        end as tags,
        coalesce(charges.export_lifecycle, lower(snapshot.lifecycle)) as lifecycle,
    from (
        select * from resource_charges
        union all by name
        select * from workload_charges
        union all by name
        select * from shared_charges
    ) as charges
    asof left join resource_snapshots as snapshot
        on charges.account_id = snapshot.account_id
        and charges.resource_id = snapshot.resource_id
        and charges.day >= snapshot.snapshot_day
    left join first_resource_snapshots as first_snapshot
        on charges.account_id = first_snapshot.account_id and charges.resource_id = first_snapshot.resource_id
)

select
    'spot:org:' || organisation.organization_id as BillingAccountId,
    'Spot organization ' || organisation.organization_id as BillingAccountName,
    charges.account_id as SubAccountId,
    coalesce(account_names.account_name, charges.account_id) as SubAccountName,
    date_trunc('month', charges.day)::timestamp::timestamptz as BillingPeriodStart,
    (date_trunc('month', charges.day) + interval 1 month)::timestamp::timestamptz as BillingPeriodEnd,
    charges.day::timestamp::timestamptz as ChargePeriodStart,
    (charges.day + interval 1 day)::timestamp::timestamptz as ChargePeriodEnd,
    charges.cost_usd::decimal(38, 10) as BilledCost,
    charges.cost_usd::decimal(38, 10) as EffectiveCost,
    charges.list_cost_usd::decimal(38, 10) as ListCost,
    charges.cost_usd::decimal(38, 10) as ContractedCost,
    'USD' as BillingCurrency,
    'Usage' as ChargeCategory,
    null::varchar as ChargeClass,
    charges.description as ChargeDescription,
    'Usage-Based' as ChargeFrequency,
    1::decimal(38, 10) as PricingQuantity,
    'Days' as PricingUnit,
    'Spot by NetApp' as ProviderName,
    'Spot by NetApp' as PublisherName,
    'Spot by NetApp' as InvoiceIssuerName,
    null::varchar as InvoiceId,
    charges.region as RegionId,
    charges.region as RegionName,
    charges.resource_id as ResourceId,
    coalesce(charges.resource_name, charges.resource_id) as ResourceName,
    charges.resource_type as ResourceType,
    charges.product as ServiceName,
    'Compute' as ServiceCategory,
    charges.service_subcategory as ServiceSubcategory,
    charges.tags as Tags,
    charges.product as x_SpotProduct,
    charges.namespace as x_Namespace,
    charges.workload as x_Workload,
    charges.lifecycle as x_Lifecycle,
    charges.list_cost_usd::decimal(38, 10) - charges.cost_usd::decimal(38, 10) as x_Savings,
    case when charges.allocated_ratio is not null then 'spotcost-' || charges.allocation end as x_AllocatedMethodId,
    case when charges.allocated_ratio is not null
        then '{"Elements":[{"AllocatedRatio":' || charges.allocated_ratio::varchar || ',"UsageUnit":"USD"}]}'
    end as x_AllocatedMethodDetails,
    case when charges.allocated_ratio is not null
        then charges.resource_id || '/' || charges.namespace || coalesce('/' || charges.workload, '')
    end as x_AllocatedResourceId,
    case when charges.allocated_ratio is not null
        then coalesce(charges.workload, charges.namespace)
    end as x_AllocatedResourceName,
    case when charges.allocated_ratio is not null then charges.tags end as x_AllocatedTags,
from charges
cross join organisation
left join account_names using (account_id)
order by charges.day, charges.account_id, charges.resource_id, charges.namespace nulls first, charges.workload nulls first

-- Daily costs that depart from their trailing baseline, per account and per namespace, each with the configuration change most likely behind it. grain: one row per day × scope × account × cluster × namespace.
-- incremental: day
-- incremental_following_days: anomaly_baseline_days
-- column day: The UTC day of the anomalous cost.
-- column scope: `account` (Spot's daily total for the account) or `namespace` (a namespace's chargeback in one Ocean cluster, shared cost included).
-- column account_id: Spot account id.
-- column cluster_id: Ocean cluster id (o-…); null for the account scope.
-- column cluster_name: Ocean cluster name; null for the account scope.
-- column namespace: Kubernetes namespace (or `__shared__`); null for the account scope.
-- column expected_usd: The baseline: the median cost of the same kind of day (Monday to Friday, or weekend) among the anomaly_baseline_days days before, USD.
-- column actual_usd: The cost that day, USD.
-- column delta_usd: actual_usd minus expected_usd.
-- column delta_relative: delta_usd as a fraction of expected_usd (0.8 = 80 % more); null when nothing was expected.
-- column cause: In words, the successful configuration change most likely behind the anomaly, from its audit event; null when no change was made to the scope's resources in the 48 hours before the day ended.
-- column cause_user_name: Who made that change.
-- column cause_event_at: When the change was made (UTC).
-- column cause_resource_type: Type of the changed resource, as Spot names it.
-- column cause_resource_id: Id of the changed resource.
-- column related_changes: How many successful configuration changes were made to the scope's resources in those 48 hours (the cause is one of them).
with

settings as (
    select * from spotcost_settings
),

wanted_days as (
    -- The days this build computes (spotcost_model_days: every day in a full build; the changed
    -- days and the baseline days after each in an incremental one).
    select day from spotcost_model_days
),

input_days as (
    -- Each wanted day and the baseline days before it: all the costs the windows below read.
    select distinct cast(wanted_days.day - cast(days_back.days as integer) as date) as day
    from wanted_days
    cross join (select unnest(range(0, anomaly_baseline_days + 1)) as days from settings) as days_back
),

account_costs as (
    select
        'account' as scope,
        day,
        account_id,
        cast(null as varchar) as cluster_id,
        cast(null as varchar) as cluster_name,
        cast(null as varchar) as namespace,
        actual_cost_usd as cost_usd,
    from int_account_cost_days
    where day in (select day from input_days)
),

namespace_costs as (
    select
        'namespace' as scope,
        day,
        account_id,
        cluster_id,
        cluster_name,
        namespace,
        total_cost_usd as cost_usd,
    from chargeback_namespace
    where day in (select day from input_days)
),

baseline_lengths as (
    -- How many days of each day's kind (Monday to Friday, or weekend) its baseline spans.
    select input_days.day, count(*) as same_kind_days,
    from input_days
    cross join (select unnest(range(1, anomaly_baseline_days + 1)) as days from settings) as days_back
    where (dayofweek(input_days.day) in (0, 6))
        = (dayofweek(cast(input_days.day - cast(days_back.days as integer) as date)) in (0, 6))
    group by all
),

baselines as (
    -- The median over the same kind of day keeps a quiet weekend from being flagged against busy
    -- weekdays, and a single past spike from moving the baseline. One window gives both the
    -- baseline's costs and how many there are (a list and its median are cheaper than the median
    -- window aggregate over a year of namespaces).
    select
        costs.* exclude (history),
        len(costs.history) as history_days,
        list_median(costs.history) as expected_usd,
        coalesce(lengths.same_kind_days, 0) as baseline_days,
        settings.anomaly_min_relative,
        settings.anomaly_min_usd,
    from (
        select
            *,
            list(cost_usd) over (
                -- The key's hash first: DuckDB then sorts the partitions mostly on one integer
                -- instead of four texts (the texts after it keep keys whose hashes collide apart).
                partition by
                    hash(scope, account_id, cluster_id, namespace),
                    dayofweek(day) in (0, 6),
                    scope,
                    account_id,
                    cluster_id,
                    namespace
                order by day_number
                range between (select anomaly_baseline_days from spotcost_settings) preceding and 1 preceding
            ) as history,
        from (
            select *, day - date '1970-01-01' as day_number,
            from (select * from account_costs union all select * from namespace_costs)
        )
    ) as costs
    left join baseline_lengths as lengths using (day)
    cross join settings
),

anomalies as (
    -- Only with a cost on every baseline day of the same kind, and beyond both thresholds.
    select
        day,
        scope,
        account_id,
        cluster_id,
        cluster_name,
        namespace,
        expected_usd,
        cost_usd as actual_usd,
        cost_usd - expected_usd as delta_usd,
        (cost_usd - expected_usd) / nullif(expected_usd, 0) as delta_relative,
    from baselines
    where day in (select day from wanted_days)
        and baseline_days > 0
        and history_days = baseline_days
        and abs(cost_usd - expected_usd) > anomaly_min_relative * abs(expected_usd)
        and abs(cost_usd - expected_usd) > anomaly_min_usd
),

changes as (
    -- Each change with the days whose 48 hours before their end it falls in: its own and the next.
    select
        *,
        unnest([day, cast(day + 1 as date)]) as anomaly_day,
    from int_audit_changes
),

resource_costs as (
    -- Each changed resource's own cost per day (an Elastigroup, Managed Instance or Ocean virtual
    -- node group from the instance-cost export, an Ocean cluster from its total), to tell which
    -- change moved the cost.
    select day, resource_id, sum(actual_cost_usd) as cost_usd
    from int_instance_cost_days
    where resource_id in (select resource_id from changes)
    group by all
    union all
    select day, cluster_id as resource_id, cluster_total_cost_usd as cost_usd
    from int_ocean_cluster_days
    where cluster_id in (select resource_id from changes)
),

candidates as (
    -- A change to the scope's resources in the 48 hours before the anomalous day ended: for the
    -- account scope any resource of the account, for a namespace its cluster.
    select
        anomalies.day,
        anomalies.scope,
        anomalies.account_id,
        anomalies.cluster_id,
        anomalies.namespace,
        anomalies.delta_usd,
        changes.day as change_day,
        changes.event_at,
        changes.user_name,
        changes.resource_type,
        changes.resource_id,
        changes.action_type,
        changes.change,
        -- How far the changed resource's own cost moved, in the anomaly's direction, from the
        -- day before the 48 hours to the anomalous day.
        sign(anomalies.delta_usd) * (after.cost_usd - coalesce(before.cost_usd, 0)) as resource_move_usd,
    from anomalies
    inner join changes
        on changes.anomaly_day = anomalies.day
        and (
            (anomalies.scope = 'account' and changes.account_id = anomalies.account_id)
            or (anomalies.scope = 'namespace' and changes.resource_id = anomalies.cluster_id)
        )
    left join resource_costs as after
        on after.resource_id = changes.resource_id and after.day = anomalies.day
    left join resource_costs as before
        on before.resource_id = changes.resource_id and before.day = anomalies.day - 2
),

ranked as (
    -- The most relevant change: the one whose resource's cost moved most the anomaly's way, then
    -- the latest.
    select
        *,
        count(*) over anomaly as related_changes,
        row_number() over (
            anomaly
            order by resource_move_usd desc nulls last, event_at desc, resource_id, user_name
        ) as relevance_rank,
    from candidates
    window anomaly as (partition by day, scope, account_id, cluster_id, namespace)
),

causes as (
    select
        day,
        scope,
        account_id,
        cluster_id,
        namespace,
        case when change_day = day then 'that day' else 'the day before' end
            || ', ' || user_name || ' '
            || case
                when change is not null then 'changed '
                else 'did "' || action_type || '" on '
            end
            || case resource_type
                when 'OceanCluster' then 'Ocean cluster'
                when 'ManagedInstance' then 'Managed Instance'
                else resource_type
            end
            || ' ' || resource_id
            || coalesce(' ' || change, '') as cause,
        user_name as cause_user_name,
        event_at as cause_event_at,
        resource_type as cause_resource_type,
        resource_id as cause_resource_id,
        related_changes,
    from ranked
    where relevance_rank = 1
),

final as (
    select
        anomalies.day,
        anomalies.scope,
        anomalies.account_id,
        anomalies.cluster_id,
        anomalies.cluster_name,
        anomalies.namespace,
        anomalies.expected_usd,
        anomalies.actual_usd,
        anomalies.delta_usd,
        anomalies.delta_relative,
        causes.cause,
        causes.cause_user_name,
        causes.cause_event_at,
        causes.cause_resource_type,
        causes.cause_resource_id,
        coalesce(causes.related_changes, 0) as related_changes,
    from anomalies
    left join causes
        on causes.day = anomalies.day
        and causes.scope = anomalies.scope
        and causes.account_id = anomalies.account_id
        and causes.cluster_id is not distinct from anomalies.cluster_id
        and causes.namespace is not distinct from anomalies.namespace
)

select * from final

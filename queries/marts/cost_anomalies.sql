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
-- column cause: In words, the successful configuration change most likely behind the anomaly, from its audit event, with what each setting was before when the audit log or an Elastigroup snapshot of the anomaly_baseline_days that end on the change's day tells (`capacity target from 5 to 40`); null when no change was made to the scope's resources (for a namespace: its cluster and the cluster's virtual node groups) in the 48 hours before the day ended.
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

node_group_clusters as (
    -- Each virtual node group's cluster, as its latest snapshot lists it (a group never moves, so
    -- days computed before that snapshot stay right).
    select node_group_id, arg_max(cluster_id, snapshot_day) as cluster_id,
    from stg_spot__ocean_virtual_node_groups
    group by node_group_id
),

changes as (
    -- Each change with the days whose 48 hours before their end it falls in (its own and the
    -- next), and the Ocean cluster it changed: the cluster itself, or a virtual node group's.
    select
        int_audit_changes.*,
        node_group_clusters.cluster_id as node_group_cluster_id,
        coalesce(node_group_clusters.cluster_id, int_audit_changes.resource_id) as changed_cluster_id,
        -- Audit events carry no id; this tells changes apart (identical events are one change).
        hash(
            int_audit_changes.event_at,
            int_audit_changes.resource_id,
            int_audit_changes.user_name,
            int_audit_changes.action_type,
            int_audit_changes.settings
        ) as change_key,
        unnest([int_audit_changes.day, cast(int_audit_changes.day + 1 as date)]) as anomaly_day,
    from int_audit_changes
    left join node_group_clusters on node_group_clusters.node_group_id = int_audit_changes.resource_id
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
    -- account scope any resource of the account, for a namespace its cluster or one of the
    -- cluster's virtual node groups.
    select
        anomalies.day,
        anomalies.scope,
        anomalies.account_id,
        anomalies.cluster_id,
        anomalies.namespace,
        anomalies.delta_usd,
        changes.change_key,
        changes.day as change_day,
        changes.event_at,
        changes.user_name,
        changes.resource_type,
        changes.resource_id,
        changes.node_group_cluster_id,
        changes.action_type,
        changes.settings,
        -- How far the changed resource's own cost moved, in the anomaly's direction, from the
        -- day before the 48 hours to the anomalous day.
        sign(anomalies.delta_usd) * (after.cost_usd - coalesce(before.cost_usd, 0)) as resource_move_usd,
    from anomalies
    inner join changes
        on changes.anomaly_day = anomalies.day
        and (
            (anomalies.scope = 'account' and changes.account_id = anomalies.account_id)
            or (anomalies.scope = 'namespace' and changes.changed_cluster_id = anomalies.cluster_id)
        )
    left join resource_costs as after
        on after.resource_id = changes.resource_id and after.day = anomalies.day
    left join resource_costs as before
        on before.resource_id = changes.resource_id and before.day = anomalies.day - 2
),

candidate_settings as (
    -- Each setting a candidate change made, in the order it names them.
    select distinct
        change_key,
        change_day,
        event_at,
        resource_id,
        unnest(settings) as setting,
        generate_subscripts(settings, 1) as position,
    from candidates
),

known_settings as (
    -- What the candidates' resources were set to, and since when: by an audited change (from its
    -- time) or as an Elastigroup snapshot showed them (from the start of its day, the earliest it
    -- can have been taken).
    select resource_id, day as known_day, event_at as known_at, 1 as source_rank, setting,
    from (
        select resource_id, day, event_at, unnest(settings) as setting,
        from int_audit_changes
        where resource_id in (select resource_id from candidate_settings)
    )
    union all
    select resource_id, snapshot_day, cast(snapshot_day as timestamptz), 0, setting,
    from (
        select
            resource_id,
            snapshot_day,
            unnest([
                {'setting': 'capacity target', 'value': capacity_target},
                {'setting': 'capacity minimum', 'value': capacity_minimum},
                {'setting': 'capacity maximum', 'value': capacity_maximum},
                {'setting': 'spot percentage', 'value': case
                    when spot_percentage = round(spot_percentage) then cast(spot_percentage as bigint)
                end},
            ]) as setting,
        from stg_spot__elastigroups
        where resource_id in (select resource_id from candidate_settings)
    )
    where setting.value is not null
),

previous_settings as (
    -- The value each setting had before the change: the latest known from a change made earlier or
    -- from a snapshot of an earlier day (one of the same day may have been taken after it), within
    -- the anomaly_baseline_days that end on the change's day (so an incremental build, which
    -- recomputes that many days after a changed one, finds the same).
    select
        candidate_settings.change_key,
        candidate_settings.position,
        arg_max(known_settings.setting.value, {'at': known_settings.known_at, 'source': known_settings.source_rank}) as previous_value,
    from candidate_settings
    cross join settings
    inner join known_settings
        on known_settings.resource_id = candidate_settings.resource_id
        and known_settings.setting.setting = candidate_settings.setting.setting
        and known_settings.known_at < candidate_settings.event_at
        and (known_settings.source_rank = 1 or known_settings.known_day < candidate_settings.change_day)
        and known_settings.known_day > candidate_settings.change_day - settings.anomaly_baseline_days
    group by all
),

change_words as (
    -- "capacity target from 5 to 40, capacity maximum to 40" (an earlier value when known), and
    -- whether the change is known to have left every setting as it was.
    select
        candidate_settings.change_key,
        string_agg(
            candidate_settings.setting.setting
            || coalesce(' from ' || previous_settings.previous_value, '')
            || ' to ' || candidate_settings.setting.value,
            ', '
            order by candidate_settings.position
        ) as change,
        bool_and(coalesce(previous_settings.previous_value = candidate_settings.setting.value, false)) as changed_nothing,
    from candidate_settings
    left join previous_settings
        on previous_settings.change_key = candidate_settings.change_key
        and previous_settings.position = candidate_settings.position
    group by all
),

ranked as (
    -- The most relevant change: one known to have changed something (a change that set every
    -- setting to the value it had comes last), then the one whose resource's cost moved most the
    -- anomaly's way, then the latest.
    select
        candidates.*,
        change_words.change,
        count(*) over anomaly as related_changes,
        row_number() over (
            anomaly
            order by
                coalesce(change_words.changed_nothing, false),
                resource_move_usd desc nulls last,
                event_at desc,
                resource_id,
                user_name
        ) as relevance_rank,
    from candidates
    left join change_words on change_words.change_key = candidates.change_key
    window anomaly as (
        partition by candidates.day, candidates.scope, candidates.account_id, candidates.cluster_id, candidates.namespace
    )
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
            || case
                when node_group_cluster_id is not null then 'Ocean virtual node group'
                when resource_type = 'OceanCluster' then 'Ocean cluster'
                when resource_type = 'ManagedInstance' then 'Managed Instance'
                else resource_type
            end
            || ' ' || resource_id
            || coalesce(' (cluster ' || node_group_cluster_id || ')', '')
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

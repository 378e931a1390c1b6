-- Month-end cost forecasts per account, namespace and budgeted team, each made as of a chosen day with only the data up to it; the one forecasting method cost_forecast and forecast_accuracy share. grain: one row per as-of day × scope × key.
-- incremental: month
-- incremental_unit: month
-- incremental_following_days: 27
-- The method, for a key (an account, a namespace, a team) forecast as of day D of month M:
--   forecast = month-to-date actual (the days of M up to D) + run rate × weighted remaining days, where
--   run rate = the mean daily cost over the lake's days among the 7 days ending on D;
--   weekday factor of a weekday = the key's mean cost on that weekday over the lake's days among the
--     28 days ending on D, divided by the mean of those weekday means (1 when the weekday is not
--     among those days, or when every mean is zero);
--   weighted remaining days = the calendar days of M after D, each counted as its weekday's factor.
-- A day of the lake on which a key has no cost counts as zero for it; a day missing from the lake is
-- left out of the means (and, before D, adds nothing to the month-to-date actual). A namespace
-- without cost in the days a forecast reads (the 28 days to D and the whole month) has no row.
-- Forecasts are made as of each month's last day with data, and, in months with data on every day,
-- as of the 7th, 14th, 21st and 28th (to measure the error against the month's actual total).
-- A month's rows read only the days from 27 days before it to its end, so an incremental build
-- recomputes the whole months of the changed days and of the 27 days after each.
-- column as_of_day: The last day of data the forecast uses; the days after it are forecast.
-- column month: First day of the calendar month forecast.
-- column scope: account (Spot's daily account totals, every product), namespace (chargeback_namespace per cluster and namespace) or team (chargeback_namespace summed over a team that a budget names).
-- column key: What is forecast: the account id, `<cluster id>/<namespace>`, or the team name.
-- column account_id: Spot account id (account and namespace rows).
-- column cluster_id: Ocean cluster id (namespace rows).
-- column cluster_name: Ocean cluster name as last seen in the month, else in the month before (namespace rows).
-- column namespace: Kubernetes namespace (namespace rows).
-- column team: The team (team rows), or the namespace's team as last seen in the month, else in the month before (namespace rows).
-- column is_latest_as_of: Whether as_of_day is the month's last day with data (the forecast cost_forecast shows).
-- column is_accuracy_check: Whether the month has data on every day and as_of_day is its 7th, 14th, 21st or 28th (the forecasts forecast_accuracy scores).
-- column days_in_month: Calendar days in the month.
-- column days_observed: Days of the month up to as_of_day that the lake holds.
-- column month_to_date_usd: Actual cost from the first of the month to as_of_day, USD.
-- column run_rate_usd: Mean daily cost over the lake's days among the 7 days ending on as_of_day, USD.
-- column remaining_days: Calendar days of the month after as_of_day.
-- column weighted_remaining_days: The remaining days, each counted as its weekday's factor.
-- column forecast_usd: month_to_date_usd + run_rate_usd × weighted_remaining_days: the forecast month-end total, USD.
-- column month_actual_usd: Actual cost of the whole month as far as the lake holds it, USD (the month's total once it is complete).
with

wanted_months as (
    -- The months this build computes (every month in a full build).
    select distinct date_trunc('month', day)::date as month from spotcost_model_days
),

bounds as (
    -- The days their forecasts read: from 27 days before the first month to the end of the last.
    select (min(month) - 27)::date as first_day, last_day(max(month)) as last_day, from wanted_months
),

read_days as (
    -- As a list of days (filtering on the bounds' scalar subqueries leaves DuckDB without row
    -- estimates, and its plan for a year then spills for 20 s instead of taking 8).
    select unnest(generate_series(first_day, last_day, interval 1 day))::date as day from bounds
),

chargeback as (
    select day, account_id, cluster_id, cluster_name, namespace, team, total_cost_usd, from chargeback_namespace
    where day in (select day from read_days)
),

account_costs as (
    select day, account_id, actual_cost_usd as cost_usd from int_account_cost_days
    where day in (select day from read_days)
),

budgeted_teams as (
    select distinct name as team from spotcost_budgets where scope = 'team'
),

team_costs as (
    select
        chargeback.day,
        chargeback.team,
        sum(chargeback.total_cost_usd::decimal(38, 12)) as cost_usd,
    from chargeback
    inner join budgeted_teams using (team)
    group by all
),

source_days as (
    -- The days each source holds: account totals, and Ocean chargeback (namespaces and teams).
    select distinct 'account' as source, day from account_costs
    union all
    select distinct 'namespace' as source, day from chargeback
),

keys as (
    -- Every account with costs or a budget, every namespace, every team a budget names, numbered.
    select row_number() over () as key_id, *,
    from (
        select
            'account' as source,
            'account' as scope,
            account_id,
            null::varchar as cluster_id,
            null::varchar as namespace,
            null::varchar as team,
            null::date as first_day,
            null::date as last_day,
        from (
            select account_id from account_costs
            union
            select name from spotcost_budgets where scope = 'account'
        )
        union all
        select
            'namespace' as source,
            'namespace' as scope,
            account_id,
            cluster_id,
            namespace,
            null::varchar as team,
            min(day) as first_day,
            max(day) as last_day,
        from chargeback
        group by account_id, cluster_id, namespace
        union all
        select
            'namespace' as source,
            'team' as scope,
            null::varchar as account_id,
            null::varchar as cluster_id,
            null::varchar as namespace,
            team,
            null::date as first_day,
            null::date as last_day,
        from budgeted_teams
    )
),

months as (
    select
        source,
        date_trunc('month', day)::date as month,
        max(day) as last_day_seen,
        count(*) as days_seen,
    from source_days
    where date_trunc('month', day)::date in (select month from wanted_months)
    group by all
),

month_names as (
    -- A namespace's cluster name and team as last seen in each month (the names of a month's rows
    -- depend on its own days and the month before, which an incremental build recomputes with it).
    select
        date_trunc('month', day)::date as month,
        account_id,
        cluster_id,
        namespace,
        arg_max(cluster_name, day) as cluster_name,
        arg_max(team, day) as team,
    from chargeback
    group by all
),

as_of_days as (
    select
        as_of.source,
        as_of.month,
        as_of.as_of_day,
        as_of.as_of_day = months.last_day_seen as is_latest_as_of,
        months.days_seen = day(last_day(as_of.month)) and day(as_of.as_of_day) in (7, 14, 21, 28) as is_accuracy_check,
    from (
        select source, month, last_day_seen as as_of_day from months
        union
        select source, month, (month + check_day - 1)::date as as_of_day
        from months
        cross join (select unnest([7, 14, 21, 28]) as check_day)
        where days_seen = day(last_day(month))
    ) as as_of
    inner join months using (source, month)
),

key_costs as (
    -- Each key's cost per day, by key number (chargeback_namespace has one row per day × account ×
    -- cluster × namespace already).
    select keys.key_id, account_costs.day, account_costs.cost_usd,
    from account_costs
    inner join keys on keys.scope = 'account' and keys.account_id = account_costs.account_id
    union all
    select keys.key_id, chargeback.day, chargeback.total_cost_usd as cost_usd,
    from chargeback
    inner join keys
        on keys.scope = 'namespace'
        and keys.account_id is not distinct from chargeback.account_id
        and keys.cluster_id is not distinct from chargeback.cluster_id
        and keys.namespace is not distinct from chargeback.namespace
    union all
    select keys.key_id, team_costs.day, team_costs.cost_usd,
    from team_costs
    inner join keys on keys.scope = 'team' and keys.team = team_costs.team
),

window_days as (
    -- The days the forecasts read by day: the 28 calendar days ending on each as-of day.
    select distinct as_of_days.source, (as_of_days.as_of_day - days_back.days::integer)::date as day,
    from as_of_days
    cross join range(0, 28) as days_back(days)
),

daily as (
    -- Each key's window days, so that the row n rows before an as-of day (n < 28) is the day n days
    -- before it: `held` (1) where its source holds the day, and its cost (zero where it has none).
    -- A namespace's days stop 60 days before its first cost and after its last: no forecast reads a
    -- span longer than from 27 days before an as-of day to the end of its month (at most 58 days),
    -- so a namespace long gone adds no rows, and every span read for one of its forecasts is whole.
    select
        keys.key_id,
        keys.source,
        window_days.day,
        (source_days.day is not null)::integer as held,
        -- Exact decimals from here on, so that sums do not depend on the order DuckDB's threads add
        -- them in: the same lake gives the same forecasts to the last digit.
        coalesce(key_costs.cost_usd, 0)::decimal(38, 12) as cost_usd,
    from keys
    inner join window_days
        on window_days.source = keys.source
        and (keys.first_day is null or window_days.day between keys.first_day - 60 and keys.last_day + 60)
    left join source_days
        on source_days.source = window_days.source
        and source_days.day = window_days.day
    left join key_costs
        on key_costs.key_id = keys.key_id
        and key_costs.day = window_days.day
),

day_sums as (
    -- Per key and day: the cost and days held over the 7 days ending on it, the days with cost
    -- over the 28 ending on it, and the cost and days held on its weekday over those 28 (the day
    -- and the days 7, 14 and 21 before it).
    select
        key_id,
        source,
        day,
        sum(cost_usd) over last_7 as last_7_cost_usd,
        sum(held) over last_7 as last_7_days,
        sum((cost_usd <> 0)::integer) over last_28 as last_28_days_with_cost,
        cost_usd
            + coalesce(lag(cost_usd, 7) over by_day, 0)
            + coalesce(lag(cost_usd, 14) over by_day, 0)
            + coalesce(lag(cost_usd, 21) over by_day, 0) as weekday_cost_usd,
        held
            + coalesce(lag(held, 7) over by_day, 0)
            + coalesce(lag(held, 14) over by_day, 0)
            + coalesce(lag(held, 21) over by_day, 0) as weekday_days_held,
    from daily
    window
        by_day as (partition by key_id order by day),
        last_7 as (partition by key_id order by day rows between 6 preceding and current row),
        last_28 as (partition by key_id order by day rows between 27 preceding and current row)
),

as_of_sums as (
    -- Per key and day D, the rest of what a forecast as of D reads, from the rows of the days
    -- before D: the month to date on the 7th, 14th, 21st and 28th (the 7-day sums of the month's
    -- weeks so far), and the cost and days held of each weekday over the 28 days ending on D (those
    -- of D and of the 6 days before it).
    select
        key_id,
        source,
        day,
        last_7_cost_usd,
        last_7_days,
        last_28_days_with_cost,
        case when day(day) % 7 = 0 then
            last_7_cost_usd
            + case when day(day) >= 14 then lag(last_7_cost_usd, 7) over by_day else 0 end
            + case when day(day) >= 21 then lag(last_7_cost_usd, 14) over by_day else 0 end
            + case when day(day) >= 28 then lag(last_7_cost_usd, 21) over by_day else 0 end
        end as weeks_to_date_usd,
        case when day(day) % 7 = 0 then
            last_7_days
            + case when day(day) >= 14 then lag(last_7_days, 7) over by_day else 0 end
            + case when day(day) >= 21 then lag(last_7_days, 14) over by_day else 0 end
            + case when day(day) >= 28 then lag(last_7_days, 21) over by_day else 0 end
        end as weeks_to_date_days,
        [
            [weekday_cost_usd, weekday_days_held],
            [lag(weekday_cost_usd, 1) over by_day, lag(weekday_days_held, 1) over by_day],
            [lag(weekday_cost_usd, 2) over by_day, lag(weekday_days_held, 2) over by_day],
            [lag(weekday_cost_usd, 3) over by_day, lag(weekday_days_held, 3) over by_day],
            [lag(weekday_cost_usd, 4) over by_day, lag(weekday_days_held, 4) over by_day],
            [lag(weekday_cost_usd, 5) over by_day, lag(weekday_days_held, 5) over by_day],
            [lag(weekday_cost_usd, 6) over by_day, lag(weekday_days_held, 6) over by_day],
        ] as weekday_sums,
    from day_sums
    window by_day as (partition by key_id order by day)
),

month_totals as (
    -- Each key's actual cost per month, and whether it has any.
    select
        key_id,
        date_trunc('month', day)::date as month,
        sum(cost_usd::decimal(38, 12)) as month_actual_usd,
        bool_or(cost_usd <> 0) as has_cost,
    from key_costs
    group by all
),

per_key as (
    -- Each key's forecast inputs on each as-of day. On the month's last day with data, the month to
    -- date is the month so far.
    select
        as_of_days.as_of_day,
        as_of_days.month,
        as_of_days.is_latest_as_of,
        as_of_days.is_accuracy_check,
        keys.scope,
        keys.account_id,
        keys.cluster_id,
        keys.namespace,
        keys.team,
        case
            when as_of_days.is_latest_as_of then coalesce(month_totals.month_actual_usd, 0)
            else sums.weeks_to_date_usd
        end as month_to_date_usd,
        case
            when as_of_days.is_latest_as_of then months.days_seen
            else sums.weeks_to_date_days
        end::integer as days_observed,
        coalesce(sums.last_7_cost_usd / nullif(sums.last_7_days, 0), 0) as run_rate_usd,
        coalesce(month_totals.month_actual_usd, 0) as month_actual_usd,
        -- Each weekday's mean (null where none of its days is held), for the weekdays of D, D - 1, …, D - 6.
        list_transform(sums.weekday_sums, lambda s: (s[1] / nullif(s[2], 0))::decimal(38, 12)) as weekday_means_usd,
        -- The calendar days of the month after D on those weekdays: D + 7 - j, D + 14 - j, … for D - j.
        list_transform(range(7), lambda j: (last_day(as_of_days.month) - as_of_days.as_of_day + j) // 7) as remaining_by_weekday,
    from as_of_sums as sums
    inner join as_of_days
        on as_of_days.source = sums.source
        and as_of_days.as_of_day = sums.day
    inner join months
        on months.source = as_of_days.source
        and months.month = as_of_days.month
    inner join keys using (key_id)
    left join month_totals
        on month_totals.key_id = sums.key_id
        and month_totals.month = as_of_days.month
    -- A namespace without cost in the days a forecast reads has no row (it is forecast at zero).
    where keys.scope <> 'namespace' or sums.last_28_days_with_cost > 0 or month_totals.has_cost
),

weighted as (
    select
        *,
        day(last_day(month))::integer as days_in_month,
        (last_day(month) - as_of_day)::integer as remaining_days,
        -- The mean of the weekday means, and the remaining days of the weekdays that have one.
        list_avg(weekday_means_usd) as weekday_level_usd,
        coalesce(list_sum(list_transform(list_zip(weekday_means_usd, remaining_by_weekday), lambda p: p[1] * p[2])), 0) as remaining_weekday_cost_usd,
        coalesce(list_sum(list_transform(list_zip(weekday_means_usd, remaining_by_weekday), lambda p: case when p[1] is not null then p[2] end)), 0) as remaining_days_with_factor,
    from per_key
),

final as (
    select
        weighted.as_of_day,
        weighted.month,
        weighted.scope,
        case weighted.scope
            when 'account' then weighted.account_id
            when 'namespace' then coalesce(weighted.cluster_id, '') || '/' || coalesce(weighted.namespace, '')
            else weighted.team
        end as key,
        weighted.account_id,
        weighted.cluster_id,
        coalesce(names.cluster_name, earlier.cluster_name) as cluster_name,
        weighted.namespace,
        case when weighted.scope = 'namespace' then coalesce(names.team, earlier.team) else weighted.team end as team,
        weighted.is_latest_as_of,
        weighted.is_accuracy_check,
        weighted.days_in_month,
        weighted.days_observed,
        weighted.month_to_date_usd,
        weighted.run_rate_usd,
        weighted.remaining_days,
        case
            when weighted.weekday_level_usd > 0
                then weighted.remaining_weekday_cost_usd / weighted.weekday_level_usd
                    + (weighted.remaining_days - weighted.remaining_days_with_factor)
            else weighted.remaining_days
        end as weighted_remaining_days,
        weighted.month_actual_usd,
    from weighted
    left join month_names as names
        on weighted.scope = 'namespace'
        and names.month = weighted.month
        and names.account_id = weighted.account_id
        and names.cluster_id = weighted.cluster_id
        and names.namespace = weighted.namespace
    left join month_names as earlier
        on weighted.scope = 'namespace'
        and earlier.month = (weighted.month - interval 1 month)::date
        and earlier.account_id = weighted.account_id
        and earlier.cluster_id = weighted.cluster_id
        and earlier.namespace = weighted.namespace
)

select
    as_of_day,
    month,
    scope,
    key,
    account_id,
    cluster_id,
    cluster_name,
    namespace,
    team,
    is_latest_as_of,
    is_accuracy_check,
    days_in_month,
    days_observed,
    month_to_date_usd::double as month_to_date_usd,
    run_rate_usd::double as run_rate_usd,
    remaining_days,
    weighted_remaining_days::double as weighted_remaining_days,
    month_to_date_usd::double + run_rate_usd::double * weighted_remaining_days::double as forecast_usd,
    month_actual_usd::double as month_actual_usd,
from final

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
    select * from chargeback_namespace
    where day in (select day from read_days)
),

account_costs as (
    select day, account_id, actual_cost_usd as cost_usd from int_account_cost_days
    where day in (select day from read_days)
),

namespace_costs as (
    select
        day,
        account_id,
        cluster_id,
        namespace,
        sum(total_cost_usd) as cost_usd,
    from chargeback
    group by all
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
    -- Every account with costs or a budget, every namespace, every team a budget names.
    select
        'account' as source,
        'account' as scope,
        account_id,
        null::varchar as cluster_id,
        null::varchar as cluster_name,
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
        null::varchar as cluster_name,
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
        null::varchar as cluster_name,
        null::varchar as namespace,
        team,
        null::date as first_day,
        null::date as last_day,
    from budgeted_teams
),

daily as (
    -- Each key's cost on every day its source holds; zero where it has none. A namespace's days
    -- stop 60 days before its first cost and after its last: no forecast reads a span longer than
    -- from 27 days before an as-of day to the end of its month (at most 58 days), so a namespace
    -- long gone adds no rows, and every forecast window that touches one of its costs is whole.
    select
        keys.source,
        keys.scope,
        keys.account_id,
        keys.cluster_id,
        keys.cluster_name,
        keys.namespace,
        keys.team,
        source_days.day,
        -- Exact decimals from here on, so that sums do not depend on the order DuckDB's threads add
        -- them in: the same lake gives the same forecasts to the last digit.
        coalesce(account_costs.cost_usd, namespace_costs.cost_usd, team_costs.cost_usd, 0)::decimal(38, 12) as cost_usd,
    from keys
    inner join source_days
        on source_days.source = keys.source
        and (keys.first_day is null or source_days.day between keys.first_day - 60 and keys.last_day + 60)
    left join account_costs
        on keys.scope = 'account'
        and account_costs.day = source_days.day
        and account_costs.account_id = keys.account_id
    left join namespace_costs
        on keys.scope = 'namespace'
        and namespace_costs.day = source_days.day
        and namespace_costs.account_id is not distinct from keys.account_id
        and namespace_costs.cluster_id is not distinct from keys.cluster_id
        and namespace_costs.namespace is not distinct from keys.namespace
    left join team_costs
        on keys.scope = 'team'
        and team_costs.day = source_days.day
        and team_costs.team = keys.team
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

window_days as (
    -- The days each forecast reads: the 28 days ending on the as-of day, the month to date, and
    -- (for the month's actual total) the rest of the month.
    select
        source,
        month,
        as_of_day,
        unnest(generate_series(least(as_of_day - 27, month), last_day(month), interval 1 day))::date as day,
    from as_of_days
),

remaining_weekdays as (
    -- Calendar days of the month after each as-of day, per weekday (1 Monday … 7 Sunday).
    select
        as_of_day,
        isodow(day) as weekday,
        count(*) as remaining_days,
    from (
        select
            as_of_day,
            unnest(generate_series(as_of_day + 1, last_day(as_of_day), interval 1 day))::date as day,
        from (select distinct as_of_day from as_of_days)
    )
    group by all
),

by_weekday as (
    select
        window_days.as_of_day,
        window_days.month,
        daily.scope,
        daily.account_id,
        daily.cluster_id,
        daily.cluster_name,
        daily.namespace,
        daily.team,
        isodow(daily.day) as weekday,
        (avg(daily.cost_usd) filter (where daily.day > window_days.as_of_day - 28 and daily.day <= window_days.as_of_day))::decimal(38, 12) as weekday_mean_usd,
        sum(daily.cost_usd) filter (where daily.day > window_days.as_of_day - 7 and daily.day <= window_days.as_of_day) as last_7_cost_usd,
        count(*) filter (where daily.day > window_days.as_of_day - 7 and daily.day <= window_days.as_of_day) as last_7_days,
        sum(daily.cost_usd) filter (where daily.day >= window_days.month and daily.day <= window_days.as_of_day) as month_to_date_usd,
        count(*) filter (where daily.day >= window_days.month and daily.day <= window_days.as_of_day) as days_observed,
        sum(daily.cost_usd) filter (where daily.day >= window_days.month) as month_actual_usd,
        bool_or(daily.cost_usd <> 0) as has_cost,
    from window_days
    inner join daily
        on daily.source = window_days.source
        and daily.day = window_days.day
    group by all
),

per_key as (
    select
        by_weekday.as_of_day,
        by_weekday.month,
        by_weekday.scope,
        by_weekday.account_id,
        by_weekday.cluster_id,
        by_weekday.cluster_name,
        by_weekday.namespace,
        by_weekday.team,
        coalesce(sum(by_weekday.month_to_date_usd), 0) as month_to_date_usd,
        sum(by_weekday.days_observed)::integer as days_observed,
        coalesce(sum(by_weekday.last_7_cost_usd) / nullif(sum(by_weekday.last_7_days), 0), 0) as run_rate_usd,
        -- The mean of the weekday means, and the remaining days of the weekdays that have one.
        avg(by_weekday.weekday_mean_usd) as weekday_level_usd,
        coalesce(sum(remaining_weekdays.remaining_days * by_weekday.weekday_mean_usd), 0) as remaining_weekday_cost_usd,
        coalesce(sum(remaining_weekdays.remaining_days) filter (where by_weekday.weekday_mean_usd is not null), 0) as remaining_days_with_factor,
        coalesce(sum(by_weekday.month_actual_usd), 0) as month_actual_usd,
    from by_weekday
    left join remaining_weekdays using (as_of_day, weekday)
    group by all
    -- A namespace without cost in the days a forecast reads has no row (it is forecast at zero).
    having by_weekday.scope <> 'namespace' or bool_or(by_weekday.has_cost)
),

weighted as (
    select
        *,
        day(last_day(month))::integer as days_in_month,
        (last_day(month) - as_of_day)::integer as remaining_days,
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
        as_of_days.is_latest_as_of,
        as_of_days.is_accuracy_check,
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
    inner join as_of_days
        on as_of_days.as_of_day = weighted.as_of_day
        and as_of_days.source = case when weighted.scope = 'account' then 'account' else 'namespace' end
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

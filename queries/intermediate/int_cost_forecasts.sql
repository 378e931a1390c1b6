-- Month-end cost forecasts per account, namespace and budgeted team, made as of every day the lake holds with only the data up to it; the one forecasting method cost_forecast and forecast_accuracy share. grain: one row per as-of day × scope × key.
-- incremental: as_of_day
-- incremental_following_days: 30
-- The method, for a key (an account, a namespace, a team) forecast as of day D of month M:
--   forecast = month-to-date actual (the days of M up to D) + run rate × weighted remaining days, where
--   run rate = the mean daily cost over the lake's days among the 7 days ending on D;
--   weekday factor of a weekday = the key's mean cost on that weekday over the lake's days among the
--     28 days ending on D, divided by the mean of those weekday means (1 when the weekday is not
--     among those days, or when every mean is zero);
--   weighted remaining days = the calendar days of M after D, each counted as its weekday's factor.
-- A day of the lake on which a key has no cost counts as zero for it; a day missing from the lake is
-- left out of the means (and adds nothing to the month-to-date actual). A forecast reads the 28 days
-- to D and the month to D (at most 31 days back), so a changed day changes the forecasts of the 30
-- days after it, which an incremental build recomputes. A key whose month-to-date actual and
-- forecast are both zero has no row, unless a budget names it.
-- column as_of_day: The last day of data the forecast uses; the days after it are forecast.
-- column month: First day of the calendar month forecast.
-- column scope: account (Spot's daily account totals, every product), namespace (chargeback_namespace per cluster and namespace) or team (chargeback_namespace summed over a team that a budget names).
-- column key: What is forecast: the account id, `<cluster id>/<namespace>`, or the team name.
-- column account_id: Spot account id (account and namespace rows).
-- column cluster_id: Ocean cluster id (namespace rows).
-- column cluster_name: Ocean cluster name as last seen up to as_of_day (namespace rows).
-- column namespace: Kubernetes namespace (namespace rows).
-- column team: The team (team rows), or the namespace's team as last seen up to as_of_day (namespace rows).
-- column days_in_month: Calendar days in the month.
-- column days_observed: Days of the month up to as_of_day that the lake holds.
-- column month_to_date_usd: Actual cost from the first of the month to as_of_day, USD.
-- column run_rate_usd: Mean daily cost over the lake's days among the 7 days ending on as_of_day, USD.
-- column remaining_days: Calendar days of the month after as_of_day.
-- column weighted_remaining_days: The remaining days, each counted as its weekday's factor.
-- column forecast_usd: month_to_date_usd + run_rate_usd × weighted_remaining_days: the forecast month-end total, USD.
with

wanted_days as (
    -- The as-of days this build computes (every day in a full build).
    select day from spotcost_model_days
),

bounds as (
    -- The days the wanted forecasts read: back to 30 days before the first (the first of its
    -- month at the latest; its 28-day windows start 27 days before).
    select cast(min(day) - 30 as date) as first_day, max(day) as last_day, from wanted_days
),

account_costs as (
    select
        'account' as scope,
        account_id,
        account_id as key,
        null::varchar as cluster_id,
        null::varchar as namespace,
        day,
        null::varchar as cluster_name,
        null::varchar as team,
        actual_cost_usd as cost_usd,
    from int_account_cost_days
    where day between (select first_day from bounds) and (select last_day from bounds)
),

chargeback as (
    select * from chargeback_namespace
    where day between (select first_day from bounds) and (select last_day from bounds)
),

namespace_costs as (
    -- One row per day × account × cluster × namespace (chargeback_namespace's data test checks it).
    select
        'namespace' as scope,
        account_id,
        coalesce(cluster_id, '') || '/' || coalesce(namespace, '') as key,
        cluster_id,
        namespace,
        day,
        cluster_name,
        team,
        total_cost_usd as cost_usd,
    from chargeback
),

budgeted_teams as (
    select distinct name as team from spotcost_budgets where scope = 'team'
),

team_costs as (
    select
        'team' as scope,
        null::varchar as account_id,
        chargeback.team as key,
        null::varchar as cluster_id,
        null::varchar as namespace,
        chargeback.day,
        null::varchar as cluster_name,
        chargeback.team,
        sum(chargeback.total_cost_usd::decimal(38, 12)) as cost_usd,
    from chargeback
    inner join budgeted_teams using (team)
    group by all
),

costs as (
    select * from account_costs
    union all by name
    select * from namespace_costs
    union all by name
    select * from team_costs
),

source_days as (
    -- The days each source holds (account totals, and Ocean chargeback for namespaces and teams),
    -- with how many of them each forecast's windows hold: the 7 days and the month to the day, and
    -- the 28 days to it per weekday (day_number % 7: 0 is a Thursday).
    select
        *,
        count(*) over last_7 as last_7_days,
        count(*) over month_to_date as days_observed,
        count(*) filter (where day_number % 7 = 0) over last_28 as days_0,
        count(*) filter (where day_number % 7 = 1) over last_28 as days_1,
        count(*) filter (where day_number % 7 = 2) over last_28 as days_2,
        count(*) filter (where day_number % 7 = 3) over last_28 as days_3,
        count(*) filter (where day_number % 7 = 4) over last_28 as days_4,
        count(*) filter (where day_number % 7 = 5) over last_28 as days_5,
        count(*) filter (where day_number % 7 = 6) over last_28 as days_6,
    from (
        select distinct 'account' as source, day, day - date '1970-01-01' as day_number,
        from int_account_cost_days
        where day between (select first_day from bounds) and (select last_day from bounds)
        union all
        select distinct 'namespace' as source, day, day - date '1970-01-01' as day_number,
        from chargeback
    )
    window
        days as (partition by source order by day_number),
        last_7 as (days range between 6 preceding and current row),
        month_to_date as (days range between day(day) - 1 preceding and current row),
        last_28 as (days range between 27 preceding and current row)
),

keys as (
    -- Every account with costs or a budget, every namespace with costs in the days read, every
    -- team a budget names.
    select distinct
        case scope when 'account' then 'account' else 'namespace' end as source,
        scope,
        account_id,
        key,
        cluster_id,
        namespace,
    from costs
    union
    select 'account', 'account', name, name, null, null,
    from spotcost_budgets where scope = 'account'
    union
    select 'namespace', 'team', null, team, null, null,
    from budgeted_teams
),

spine as (
    -- Each key on every day its source holds, zero where it has no cost. Exact decimals from here
    -- on, so that sums do not depend on the order DuckDB's threads add them in: the same lake gives
    -- the same forecasts to the last digit.
    select
        keys.scope,
        keys.account_id,
        keys.key,
        keys.cluster_id,
        keys.namespace,
        source_days.*,
        costs.cluster_name,
        costs.team,
        coalesce(costs.cost_usd, 0)::decimal(38, 12) as cost_usd,
    from keys
    inner join source_days using (source)
    left join costs
        on costs.scope = keys.scope
        and costs.account_id is not distinct from keys.account_id
        and costs.key = keys.key
        and costs.day = source_days.day
),

windowed as (
    -- One ordering of each key's days serves every window.
    select
        * exclude (cluster_name, team),
        last_value(cluster_name ignore nulls) over history as cluster_name,
        case when scope = 'team' then key else last_value(team ignore nulls) over history end as team,
        sum(cost_usd) over last_7 as last_7_cost_usd,
        sum(cost_usd) over month_to_date as month_to_date_usd,
        -- The 28 days' cost per weekday.
        [
            coalesce(sum(cost_usd) filter (where day_number % 7 = 0) over last_28, 0),
            coalesce(sum(cost_usd) filter (where day_number % 7 = 1) over last_28, 0),
            coalesce(sum(cost_usd) filter (where day_number % 7 = 2) over last_28, 0),
            coalesce(sum(cost_usd) filter (where day_number % 7 = 3) over last_28, 0),
            coalesce(sum(cost_usd) filter (where day_number % 7 = 4) over last_28, 0),
            coalesce(sum(cost_usd) filter (where day_number % 7 = 5) over last_28, 0),
            coalesce(sum(cost_usd) filter (where day_number % 7 = 6) over last_28, 0),
        ] as weekday_costs,
    from spine
    window
        days as (partition by scope, account_id, key order by day_number),
        history as (days rows between unbounded preceding and current row),
        last_7 as (days range between 6 preceding and current row),
        month_to_date as (days range between day(day) - 1 preceding and current row),
        last_28 as (days range between 27 preceding and current row)
    qualify day in (select day from wanted_days)
),

weekdays as (
    -- Each weekday's mean cost over the 28 days (null when none of them is a lake day).
    select
        *,
        (last_day(month) - day)::integer as remaining_days,
        weekday_costs[1] / nullif(days_0, 0) as mean_0,
        weekday_costs[2] / nullif(days_1, 0) as mean_1,
        weekday_costs[3] / nullif(days_2, 0) as mean_2,
        weekday_costs[4] / nullif(days_3, 0) as mean_3,
        weekday_costs[5] / nullif(days_4, 0) as mean_4,
        weekday_costs[6] / nullif(days_5, 0) as mean_5,
        weekday_costs[7] / nullif(days_6, 0) as mean_6,
    from (select *, date_trunc('month', day)::date as month, from windowed)
),

weighted as (
    -- The mean of the weekday means, and over the weekdays that have one their remaining days (the
    -- month's days after this one that fall on the weekday: whole weeks, plus one for the weekdays
    -- of the first remaining_days % 7 days) and those days' cost at the weekday's mean. Spelt out
    -- per weekday: list lambdas over every row cost several times the whole build.
    select
        *,
        coalesce(last_7_cost_usd / nullif(last_7_days, 0), 0) as run_rate_usd,
        (coalesce(mean_0, 0) + coalesce(mean_1, 0) + coalesce(mean_2, 0) + coalesce(mean_3, 0) + coalesce(mean_4, 0) + coalesce(mean_5, 0) + coalesce(mean_6, 0))
            / nullif((mean_0 is not null)::integer + (mean_1 is not null)::integer + (mean_2 is not null)::integer + (mean_3 is not null)::integer + (mean_4 is not null)::integer + (mean_5 is not null)::integer + (mean_6 is not null)::integer, 0) as weekday_level_usd,
        coalesce(mean_0 * (remaining_days // 7 + case when (0 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end), 0)
        + coalesce(mean_1 * (remaining_days // 7 + case when (1 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end), 0)
        + coalesce(mean_2 * (remaining_days // 7 + case when (2 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end), 0)
        + coalesce(mean_3 * (remaining_days // 7 + case when (3 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end), 0)
        + coalesce(mean_4 * (remaining_days // 7 + case when (4 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end), 0)
        + coalesce(mean_5 * (remaining_days // 7 + case when (5 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end), 0)
        + coalesce(mean_6 * (remaining_days // 7 + case when (6 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end), 0)
            as remaining_weekday_cost_usd,
        case when mean_0 is not null then (remaining_days // 7 + case when (0 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end) else 0 end
        + case when mean_1 is not null then (remaining_days // 7 + case when (1 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end) else 0 end
        + case when mean_2 is not null then (remaining_days // 7 + case when (2 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end) else 0 end
        + case when mean_3 is not null then (remaining_days // 7 + case when (3 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end) else 0 end
        + case when mean_4 is not null then (remaining_days // 7 + case when (4 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end) else 0 end
        + case when mean_5 is not null then (remaining_days // 7 + case when (5 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end) else 0 end
        + case when mean_6 is not null then (remaining_days // 7 + case when (6 - day_number % 7 + 7) % 7 between 1 and remaining_days % 7 then 1 else 0 end) else 0 end
            as remaining_days_with_factor,
    from weekdays
),

final as (
    select
        day as as_of_day,
        month,
        scope,
        key,
        account_id,
        cluster_id,
        cluster_name,
        namespace,
        team,
        day(last_day(month))::integer as days_in_month,
        days_observed::integer as days_observed,
        month_to_date_usd::double as month_to_date_usd,
        run_rate_usd::double as run_rate_usd,
        remaining_days,
        case
            when weekday_level_usd > 0
                then remaining_weekday_cost_usd / weekday_level_usd
                    + (remaining_days - remaining_days_with_factor)
            else remaining_days
        end::double as weighted_remaining_days,
    from weighted
)

select
    *,
    month_to_date_usd + run_rate_usd * weighted_remaining_days as forecast_usd,
from final
-- A key that cost nothing this month and is forecast at nothing has no row, unless a budget names it.
where month_to_date_usd <> 0
    or run_rate_usd * weighted_remaining_days <> 0
    or exists (select 1 from spotcost_budgets as budgets where budgets.scope = final.scope and budgets.name = final.key)

-- The month-end forecast's error measured on past months: each complete month forecast as of its 7th, 14th, 21st and 28th with only the data up to that day, against the month's actual total. grain: one row per month × as-of day × scope × key.
-- The forecast is cost_forecast's (from int_cost_forecasts): month-to-date actual plus, for each
-- remaining calendar day, the trailing-7-day mean daily cost scaled by that day's weekday factor from
-- the trailing 28 days. Only months with data on every day are scored. Keys that cost nothing in the
-- month and were forecast at zero are left out. share_of_mape sums, over the rows of one scope and
-- as-of day of the month, to their mean absolute percentage error, so a chart of it by
-- forecast_made shows the error by how early in the month the forecast was made.
-- column month: First day of the calendar month scored.
-- column as_of_day: The last day of data the forecast used.
-- column as_of_day_of_month: as_of_day's day of the month: 7, 14, 21 or 28.
-- column forecast_made: The scope and the as-of day of the month, e.g. `account, as of day 7`: the forecasts whose errors are averaged together.
-- column scope: account, namespace or team (a team that a budget names).
-- column key: The account id, `<cluster id>/<namespace>`, or the team name.
-- column account_id: Spot account id (account and namespace rows).
-- column cluster_id: Ocean cluster id (namespace rows).
-- column cluster_name: Ocean cluster name as last seen (namespace rows).
-- column namespace: Kubernetes namespace (namespace rows).
-- column team: The team (team rows), or the namespace's team as last seen (namespace rows).
-- column month_to_date_usd: Actual cost from the first of the month to as_of_day, USD.
-- column forecast_usd: The month-end total forecast as of as_of_day, USD.
-- column actual_usd: The month's actual total, USD.
-- column error_usd: forecast_usd minus actual_usd: above zero, the forecast was too high, USD.
-- column absolute_error_usd: The size of error_usd, USD.
-- column absolute_percentage_error: absolute_error_usd as a fraction of actual_usd; null when the actual is zero.
-- column share_of_mape: absolute_percentage_error divided by the number of forecasts with the same forecast_made and a non-zero actual, over every month scored: summed over those forecasts, the mean absolute percentage error (MAPE) of the forecasts made on that day of the month. Null when the actual is zero.
with

forecasts as (
    -- The checks' days and month ends only.
    select * from int_cost_forecasts
    where day(as_of_day) in (7, 14, 21, 28) or as_of_day = last_day(month)
),

complete_months as (
    -- Months with data on every day, per scope: the forecast as of the last day saw them all.
    select distinct month, scope from forecasts
    where as_of_day = last_day(month) and days_observed = days_in_month
),

checks as (
    select month, scope, (month + check_day - 1)::date as as_of_day,
    from complete_months
    cross join (select unnest([7, 14, 21, 28]) as check_day)
),

actuals as (
    -- Each key's month total: its month-to-date as of the month's last day, scored against each
    -- check of the month.
    select checks.as_of_day, forecasts.* exclude (as_of_day), forecasts.month_to_date_usd as month_actual_usd,
    from forecasts
    inner join checks using (month, scope)
    where forecasts.as_of_day = last_day(forecasts.month)
),

checked as (
    select forecasts.* from forecasts semi join checks using (month, scope, as_of_day)
),

scored as (
    -- A key without a forecast (no cost in the days it reads) was forecast at zero; one without
    -- a month-end row cost nothing in the month.
    select
        coalesce(checked.month, actuals.month) as month,
        coalesce(checked.as_of_day, actuals.as_of_day) as as_of_day,
        coalesce(checked.scope, actuals.scope) as scope,
        coalesce(checked.key, actuals.key) as key,
        coalesce(checked.account_id, actuals.account_id) as account_id,
        coalesce(checked.cluster_id, actuals.cluster_id) as cluster_id,
        coalesce(actuals.cluster_name, checked.cluster_name) as cluster_name,
        coalesce(checked.namespace, actuals.namespace) as namespace,
        coalesce(actuals.team, checked.team) as team,
        coalesce(checked.month_to_date_usd, 0) as month_to_date_usd,
        coalesce(checked.forecast_usd, 0) as forecast_usd,
        coalesce(actuals.month_actual_usd, 0) as month_actual_usd,
    from checked
    full outer join actuals
        on actuals.as_of_day = checked.as_of_day
        and actuals.scope = checked.scope
        and actuals.key = checked.key
        and actuals.account_id is not distinct from checked.account_id
),

final as (
    select
        month,
        as_of_day,
        day(as_of_day)::integer as as_of_day_of_month,
        scope || ', as of day ' || day(as_of_day) as forecast_made,
        scope,
        key,
        account_id,
        cluster_id,
        cluster_name,
        namespace,
        team,
        month_to_date_usd,
        forecast_usd,
        month_actual_usd as actual_usd,
        forecast_usd - month_actual_usd as error_usd,
        abs(forecast_usd - month_actual_usd) as absolute_error_usd,
        abs(forecast_usd - month_actual_usd) / nullif(month_actual_usd, 0) as absolute_percentage_error,
    from scored
    where month_actual_usd <> 0 or forecast_usd <> 0
)

select
    *,
    absolute_percentage_error / count(absolute_percentage_error) over (partition by forecast_made) as share_of_mape,
from final

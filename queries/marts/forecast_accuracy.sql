-- The month-end forecast's error measured on past months: each complete month forecast as of its 7th, 14th, 21st and 28th with only the data up to that day, against the month's actual total. grain: one row per month × as-of day × scope × key.
-- incremental: month
-- incremental_unit: month
-- incremental_following_days: 27
-- The forecast is cost_forecast's (from int_cost_forecasts): month-to-date actual plus, for each
-- remaining calendar day, the trailing-7-day mean daily cost scaled by that day's weekday factor from
-- the trailing 28 days. Only months with data on every day are scored. Keys that cost nothing in the
-- month and were forecast at zero are left out. The mean of absolute_percentage_error over the rows
-- of one forecast_made is the error (MAPE) by how early in the month the forecast was made, as the
-- report charts it. A month's rows come from int_cost_forecasts' rows of that month alone, so the
-- table is replaced a month at a time: the months int_cost_forecasts recomputes.
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
with

forecasts as (
    select * from int_cost_forecasts
    where is_accuracy_check
        and month in (select distinct date_trunc('month', day)::date from spotcost_model_days)
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
    from forecasts
    where month_actual_usd <> 0 or forecast_usd <> 0
)

select * from final

-- How far the month-end forecast was off, by how far into the month it was made, over every complete month of the lake. grain: one row per scope × as-of day of the month.
-- Summarises forecast_accuracy: its rows of one scope and as-of day (7, 14, 21 or 28), over all the
-- months it scored.
-- column scope: account, namespace or team (a team that a budget names).
-- column as_of_day_of_month: The day of the month the forecasts were made on: 7, 14, 21 or 28.
-- column forecast_made: A label for the chart: the scope and the as-of day.
-- column months_scored: Complete months scored.
-- column forecasts_scored: Forecasts scored (keys × months).
-- column mean_absolute_percentage_error: The mean of absolute_percentage_error over the forecasts whose actual is not zero (MAPE).
-- column weighted_absolute_percentage_error: The sum of absolute errors as a fraction of the sum of actuals (WAPE: large keys weigh more).
-- column mean_error_share: The sum of errors as a fraction of the sum of actuals: above zero, the forecasts ran high on the whole (bias).
-- column actual_usd: The actual totals of the forecasts scored, summed, USD.
-- column absolute_error_usd: Their absolute errors, summed, USD.
with

accuracy as (
    select * from forecast_accuracy
),

final as (
    select
        scope,
        as_of_day_of_month,
        scope || ', as of day ' || as_of_day_of_month as forecast_made,
        count(distinct month)::integer as months_scored,
        count(*)::integer as forecasts_scored,
        avg(absolute_percentage_error) as mean_absolute_percentage_error,
        sum(absolute_error_usd) / nullif(sum(actual_usd), 0) as weighted_absolute_percentage_error,
        sum(error_usd) / nullif(sum(actual_usd), 0) as mean_error_share,
        sum(actual_usd) as actual_usd,
        sum(absolute_error_usd) as absolute_error_usd,
    from accuracy
    group by scope, as_of_day_of_month
)

select * from final

-- cost_forecast's month-to-date actuals add up to the daily costs they come from: each account's to Spot's account totals, the namespaces of a month to the Ocean chargeback. Returns the rows that differ by a cent or more.
with

forecasts as (
    -- The months of the days this build computed (every month in a full build): the others were
    -- checked when they were built.
    select * from cost_forecast
    where as_of_day is not null
        and month >= (select date_trunc('month', min(day)) from spotcost_changed_days)
),

account_actuals as (
    select
        forecasts.month,
        forecasts.key,
        forecasts.month_to_date_usd,
        coalesce(sum(days.actual_cost_usd), 0) as actual_usd,
    from forecasts
    left join int_account_cost_days as days
        on days.account_id = forecasts.account_id
        and days.day between forecasts.month and forecasts.as_of_day
    where forecasts.scope = 'account'
    group by all
),

namespace_forecasts as (
    select month, max(as_of_day) as as_of_day, sum(month_to_date_usd) as month_to_date_usd,
    from forecasts
    where scope = 'namespace'
    group by all
),

namespace_actuals as (
    select
        namespace_forecasts.month,
        'all namespaces' as key,
        namespace_forecasts.month_to_date_usd,
        coalesce(sum(chargeback.total_cost_usd), 0) as actual_usd,
    from namespace_forecasts
    left join chargeback_namespace as chargeback
        on chargeback.day between namespace_forecasts.month and namespace_forecasts.as_of_day
    group by all
)

select * from (
    select * from account_actuals
    union all
    select * from namespace_actuals
)
where abs(month_to_date_usd - actual_usd) >= 0.01

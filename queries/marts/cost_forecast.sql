-- Month-end forecast per account, namespace and budgeted team, against the configured budgets. grain: one row per month × scope × key.
-- Each month is forecast as of its last day with data (a past month with data on every day: its actual
-- total). The forecast is the month-to-date actual plus, for each calendar day left in the month, the
-- trailing-7-day mean daily cost scaled by that day's weekday factor (the key's mean cost on that
-- weekday over the trailing 28 days, divided by the mean of its seven weekday means); see
-- queries/intermediate/int_cost_forecasts.sql for the exact rules. Budgets (spotcost_budgets) apply
-- to account rows (by account id) and team rows (by team name); a budget whose account or team has no
-- cost in a month still gets a row in it, with zero actual, so a misspelt name is visible.
-- A month's rows come from int_cost_forecasts' rows of that month alone, so the table is replaced a
-- month at a time: the months int_cost_forecasts recomputes.
-- incremental: month
-- incremental_unit: month
-- incremental_following_days: 27
-- column month: First day of the calendar month.
-- column as_of_day: The last day of data in the month; the days after it are forecast. Null for a budget whose source has no data in the month.
-- column scope: account (Spot's daily account totals, every product), namespace (Ocean chargeback per cluster and namespace) or team (Ocean chargeback summed over the namespaces of a team that a budget names).
-- column key: The account id, `<cluster id>/<namespace>`, or the team name.
-- column account_id: Spot account id (account and namespace rows).
-- column cluster_id: Ocean cluster id (namespace rows).
-- column cluster_name: Ocean cluster name as last seen (namespace rows).
-- column namespace: Kubernetes namespace (namespace rows).
-- column team: The team (team rows), or the namespace's team as last seen (namespace rows).
-- column days_in_month: Calendar days in the month.
-- column days_observed: Days of the month up to as_of_day that the lake holds.
-- column month_to_date_usd: Actual cost from the first of the month to as_of_day, USD.
-- column run_rate_usd: Mean daily cost over the 7 days ending on as_of_day (the days the lake holds), USD.
-- column remaining_days: Calendar days of the month after as_of_day.
-- column weighted_remaining_days: The remaining days, each counted as its weekday's factor (its mean cost over the trailing 28 days relative to the mean of the seven weekday means; 1 for a weekday without data).
-- column forecast_usd: month_to_date_usd + run_rate_usd × weighted_remaining_days: the forecast month-end total, USD.
-- column budget_usd: The configured monthly budget of the account or team, USD; null without one.
-- column forecast_minus_budget_usd: forecast_usd minus budget_usd: above zero, the month is forecast to overspend, USD.
-- column actual_budget_share: month_to_date_usd as a fraction of budget_usd.
-- column forecast_budget_share: forecast_usd as a fraction of budget_usd.
with

forecasts as (
    -- The months this build computes (every month in a full build).
    select * from int_cost_forecasts
    where is_latest_as_of
        and month in (select distinct date_trunc('month', day)::date from spotcost_model_days)
),

budgets as (
    select * from spotcost_budgets
),

budgeted as (
    select
        forecasts.month,
        forecasts.as_of_day,
        forecasts.scope,
        forecasts.key,
        forecasts.account_id,
        forecasts.cluster_id,
        forecasts.cluster_name,
        forecasts.namespace,
        forecasts.team,
        forecasts.days_in_month,
        forecasts.days_observed,
        forecasts.month_to_date_usd,
        forecasts.run_rate_usd,
        forecasts.remaining_days,
        forecasts.weighted_remaining_days,
        forecasts.forecast_usd,
        budgets.monthly_usd as budget_usd,
    from forecasts
    left join budgets
        on budgets.scope = forecasts.scope
        and budgets.name = forecasts.key
    -- A namespace or account that cost nothing this month and is not forecast to is left out.
    where budgets.monthly_usd is not null
        or forecasts.month_to_date_usd <> 0
        or forecasts.forecast_usd <> 0
),

unmatched_budgets as (
    -- A budget for which a month holds no day of its source (no Ocean data for a team): a row of
    -- zeros in that month, so it is not silently dropped.
    select
        forecast_months.month,
        null::date as as_of_day,
        budgets.scope,
        budgets.name as key,
        case when budgets.scope = 'account' then budgets.name end as account_id,
        null::varchar as cluster_id,
        null::varchar as cluster_name,
        null::varchar as namespace,
        case when budgets.scope = 'team' then budgets.name end as team,
        day(last_day(forecast_months.month))::integer as days_in_month,
        0::integer as days_observed,
        0::double as month_to_date_usd,
        0::double as run_rate_usd,
        null::integer as remaining_days,
        null::double as weighted_remaining_days,
        0::double as forecast_usd,
        budgets.monthly_usd as budget_usd,
    from budgets
    cross join (select distinct month from forecasts) as forecast_months
    where not exists (
        select 1 from budgeted
        where budgeted.scope = budgets.scope and budgeted.key = budgets.name and budgeted.month = forecast_months.month
    )
),

final as (
    select
        *,
        forecast_usd - budget_usd as forecast_minus_budget_usd,
        month_to_date_usd / budget_usd as actual_budget_share,
        forecast_usd / budget_usd as forecast_budget_share,
    from (
        select * from budgeted
        union all by name
        select * from unmatched_budgets
    )
)

select
    month,
    as_of_day,
    scope,
    key,
    account_id,
    cluster_id,
    cluster_name,
    namespace,
    team,
    days_in_month,
    days_observed,
    month_to_date_usd,
    run_rate_usd,
    remaining_days,
    weighted_remaining_days,
    forecast_usd,
    budget_usd,
    forecast_minus_budget_usd,
    actual_budget_share,
    forecast_budget_share,
from final

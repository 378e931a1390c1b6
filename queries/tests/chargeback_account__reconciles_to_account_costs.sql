-- Each account's compute chargeback (Elastigroup, EMR, Managed Instance, Ocean compute) adds up to Spot's own account total, to the cent, for every month. Returns account-months that do not.
with

charged as (
    select month, account_id, sum(actual_cost_usd) as charged_usd,
    from chargeback_account
    where product <> 'Ocean storage and network'
    group by all
),

reported as (
    select date_trunc('month', day)::date as month, account_id, sum(actual_cost_usd) as reported_usd,
    from int_account_cost_days
    group by all
)

select
    coalesce(charged.month, reported.month) as month,
    coalesce(charged.account_id, reported.account_id) as account_id,
    coalesce(charged.charged_usd, 0) as charged_usd,
    coalesce(reported.reported_usd, 0) as reported_usd,
from charged
full outer join reported using (month, account_id)
where abs(coalesce(charged.charged_usd, 0) - coalesce(reported.reported_usd, 0)) >= 0.01

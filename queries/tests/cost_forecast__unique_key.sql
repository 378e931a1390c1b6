-- Every cost_forecast key (month, scope and the key's columns) is present and unique. Returns duplicated or incomplete keys.
select
    month, scope, account_id, cluster_id, namespace, case when scope = 'team' then team end as team,
    count(*) as rows_with_key,
from cost_forecast
-- The months of the days this build computed and after (every month in a full build): the table's
-- other rows were checked when they were built.
where month >= (select date_trunc('month', min(day)) from spotcost_changed_days)
group by all
having count(*) > 1
    or bool_or(month is null or scope is null or key is null)
    or bool_or(scope not in ('account', 'namespace', 'team'))

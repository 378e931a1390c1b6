-- Every cost_anomalies key (day, scope, account_id, cluster_id, namespace) is present and unique: cluster and namespace set exactly for the namespace scope. Returns duplicated or incomplete keys.
select
    day, scope, account_id, cluster_id, namespace,
    count(*) as rows_with_key,
from cost_anomalies
-- The days this build computed and the baseline days after them (every day in a full build): the
-- table's other rows were checked when they were built.
where day >= (select min(day) from spotcost_changed_days)
group by all
having count(*) > 1
    or bool_or(day is null or account_id is null or scope not in ('account', 'namespace'))
    or bool_or((scope = 'namespace') <> (cluster_id is not null and namespace is not null))
    or bool_or(scope = 'account' and (cluster_id is not null or namespace is not null))

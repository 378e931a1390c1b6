-- Every int_ocean_cluster_days key (day, account_id, cluster_id) is present and unique. Returns duplicated or incomplete keys.
-- incremental: day
select
    day, account_id, cluster_id,
    count(*) as rows_with_key,
from int_ocean_cluster_days
where day in (select day from spotcost_changed_days)
group by all
having count(*) > 1 or bool_or(day is null or account_id is null or cluster_id is null)

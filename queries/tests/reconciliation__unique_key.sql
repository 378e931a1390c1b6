-- Every reconciliation key (day, account_id, level, item_id) is present and unique. Returns duplicated or incomplete keys.
-- incremental: day
select
    day, account_id, level, item_id,
    count(*) as rows_with_key,
from reconciliation
where day in (select day from spotcost_changed_days)
group by all
having count(*) > 1 or bool_or(day is null or account_id is null or level is null or item_id is null)

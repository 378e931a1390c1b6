-- Every int_account_cost_days key (day, account_id) is present and unique. Returns duplicated or incomplete keys.
-- incremental: day
select
    day, account_id,
    count(*) as rows_with_key,
from int_account_cost_days
where day in (select day from spotcost_changed_days)
group by all
having count(*) > 1 or bool_or(day is null or account_id is null)

-- Every savings_realized key (day, account_id, product, resource_id) is present and unique. Returns duplicated or incomplete keys.
-- incremental: day
select
    day, account_id, product, resource_id,
    count(*) as rows_with_key,
from savings_realized
where day in (select day from spotcost_changed_days)
group by all
having count(*) > 1 or bool_or(day is null or account_id is null or product is null or resource_id is null)

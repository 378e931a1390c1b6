-- Every audit_activity key (day, user_name, resource_type, action_type) is present and unique. Returns duplicated or incomplete keys.
-- incremental: day
select
    day, user_name, resource_type, action_type,
    count(*) as rows_with_key,
from audit_activity
where day in (select day from spotcost_changed_days)
group by all
having count(*) > 1 or bool_or(day is null or user_name is null or resource_type is null or action_type is null)

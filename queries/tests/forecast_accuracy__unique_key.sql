-- Every forecast_accuracy key (month, as-of day, scope and the key's columns) is present and unique. Returns duplicated or incomplete keys.
select
    month, as_of_day, scope, account_id, cluster_id, namespace, case when scope = 'team' then team end as team,
    count(*) as rows_with_key,
from forecast_accuracy
group by all
having count(*) > 1 or bool_or(month is null or as_of_day is null or scope is null or key is null)

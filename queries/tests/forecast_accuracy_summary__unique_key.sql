-- Every forecast_accuracy_summary key (scope, as-of day of the month) is present and unique. Returns duplicated or incomplete keys.
select
    scope, as_of_day_of_month,
    count(*) as rows_with_key,
from forecast_accuracy_summary
group by all
having count(*) > 1 or bool_or(scope is null or as_of_day_of_month is null)

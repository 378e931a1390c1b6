-- Spot's potential-savings estimates. grain: one row per resource × snapshot day.
select
    day as snapshot_day,
    account_id,
    resource_type,
    resource_name,
    region,
    monthly_savings_usd,
from raw_spot__potential_savings

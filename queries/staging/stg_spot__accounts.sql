-- Accounts as listed on each snapshot day. grain: one row per account × snapshot day.
select
    day as snapshot_day,
    account_id,
    account_name,
    cloud,
from raw_spot__accounts

-- Elastigroup and EMR scaler snapshots: where each group runs and its tags. grain: one row per group × snapshot day.
select
    day as snapshot_day,
    account_id,
    group_id as resource_id,
    group_name as resource_name,
    region,
    tags,
from raw_spot__elastigroups

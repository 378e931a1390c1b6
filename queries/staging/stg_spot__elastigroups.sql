-- Elastigroup and EMR scaler snapshots: where each group runs, its tags and its capacity settings. grain: one row per group × snapshot day.
select
    day as snapshot_day,
    account_id,
    group_id as resource_id,
    group_name as resource_name,
    region,
    tags,
    capacity_target,
    capacity_minimum,
    capacity_maximum,
    spot_percentage,
from raw_spot__elastigroups

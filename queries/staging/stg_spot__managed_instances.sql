-- Managed Instance snapshots: where each instance runs, its lifecycle and its tags. grain: one row per managed instance × snapshot day.
select
    day as snapshot_day,
    account_id,
    managed_instance_id as resource_id,
    managed_instance_name as resource_name,
    region,
    lifecycle,
    tags,
from raw_spot__managed_instances

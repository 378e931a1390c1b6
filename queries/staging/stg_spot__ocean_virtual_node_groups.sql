-- Ocean virtual node group snapshots: which cluster each node group belongs to. grain: one row per node group × snapshot day.
select
    day as snapshot_day,
    account_id,
    cluster_id,
    node_group_id,
    node_group_name,
from raw_spot__ocean_virtual_node_groups

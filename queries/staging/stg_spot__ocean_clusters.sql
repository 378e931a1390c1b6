-- Ocean cluster snapshots: where each cluster runs. grain: one row per cluster × snapshot day.
select
    day as snapshot_day,
    account_id,
    cluster_id,
    cluster_name,
    region,
from raw_spot__ocean_clusters

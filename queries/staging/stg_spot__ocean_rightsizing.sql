-- Right-sizing recommendations per container. grain: one row per cluster × workload × container × snapshot day.
select
    day as snapshot_day,
    account_id,
    cluster_id,
    namespace,
    workload_name,
    workload_type,
    coalesce(container_name, workload_name) as container_name,
    coalesce(requested_cpu_millicores, workload_requested_cpu_millicores) as requested_cpu_millicores,
    coalesce(suggested_cpu_millicores, workload_suggested_cpu_millicores) as suggested_cpu_millicores,
    coalesce(requested_memory_mib, workload_requested_memory_mib) as requested_memory_mib,
    coalesce(suggested_memory_mib, workload_suggested_memory_mib) as suggested_memory_mib,
    workload_requested_cpu_millicores,
    workload_requested_memory_mib,
    workload_monthly_savings_usd,
from raw_spot__ocean_rightsizing

-- Requested against suggested CPU and memory per container, and what right-sizing would save, ranked. grain: one row per cluster × namespace × workload × container (latest snapshot).
-- column savings_rank: 1 for the container with the largest estimated monthly savings.
-- column account_id: Spot account id.
-- column cluster_id: Ocean cluster id.
-- column namespace: Kubernetes namespace.
-- column workload_name: Workload name.
-- column container_name: Container name (the workload's name when Spot lists no containers).
-- column requested_cpu_millicores: CPU requested, millicores.
-- column suggested_cpu_millicores: CPU Spot suggests, millicores.
-- column requested_memory_mib: Memory requested, MiB.
-- column suggested_memory_mib: Memory Spot suggests, MiB.
-- column cpu_overprovisioned_millicores: Requested minus suggested CPU (0 when under-provisioned), millicores.
-- column memory_overprovisioned_mib: Requested minus suggested memory (0 when under-provisioned), MiB.
-- column monthly_savings_usd: Estimated monthly savings, USD: Spot's workload figure split over its containers by requested CPU, or else priced from the cluster's observed compute cost per requested core and GiB (half each).
-- column savings_source: `spot` when Spot gave the figure, `priced` when spotcost estimated it.
with

latest as (
    select *
    from stg_spot__ocean_rightsizing
    qualify snapshot_day = max(snapshot_day) over (partition by cluster_id)
),

containers as (
    select
        *,
        greatest(requested_cpu_millicores - suggested_cpu_millicores, 0) as cpu_overprovisioned_millicores,
        greatest(requested_memory_mib - suggested_memory_mib, 0) as memory_overprovisioned_mib,
        requested_cpu_millicores / nullif(sum(requested_cpu_millicores) over (partition by cluster_id, namespace, workload_name), 0) as cpu_share,
    from latest
),

cluster_requests as (
    select
        cluster_id,
        sum(requested_cpu_millicores) / 1000 as requested_cores,
        sum(requested_memory_mib) / 1024 as requested_gib,
    from latest
    group by all
),

recent_ocean as (
    -- Each cluster's own last 30 days of cost data.
    select *
    from int_ocean_cluster_days
    qualify day > max(day) over (partition by cluster_id) - interval 30 day
),

cluster_compute as (
    select
        cluster_id,
        sum(compute_cost_usd) / count(distinct day) * 30.4375 as monthly_compute_usd,
    from recent_ocean
    group by all
),

priced as (
    select
        containers.*,
        coalesce(
            cpu_overprovisioned_millicores / 1000 * (cluster_compute.monthly_compute_usd / 2 / nullif(cluster_requests.requested_cores, 0)),
            0
        ) + coalesce(
            memory_overprovisioned_mib / 1024 * (cluster_compute.monthly_compute_usd / 2 / nullif(cluster_requests.requested_gib, 0)),
            0
        ) as priced_savings_usd,
    from containers
    left join cluster_requests using (cluster_id)
    left join cluster_compute using (cluster_id)
),

estimated as (
    select
        *,
        workload_monthly_savings_usd * cpu_share as spot_savings_usd,
    from priced
),

final as (
    select
        row_number() over (
            order by coalesce(spot_savings_usd, priced_savings_usd) desc,
                cluster_id, namespace, workload_name, container_name
        ) as savings_rank,
        account_id,
        cluster_id,
        namespace,
        workload_name,
        container_name,
        requested_cpu_millicores,
        suggested_cpu_millicores,
        requested_memory_mib,
        suggested_memory_mib,
        cpu_overprovisioned_millicores,
        memory_overprovisioned_mib,
        coalesce(spot_savings_usd, priced_savings_usd) as monthly_savings_usd,
        case when spot_savings_usd is not null then 'spot' else 'priced' end as savings_source,
    from estimated
)

select * from final

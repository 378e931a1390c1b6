-- Every rightsizing key (cluster_id, namespace, workload_name, container_name) is present and unique. Returns duplicated or incomplete keys.
select
    cluster_id, namespace, workload_name, container_name,
    count(*) as rows_with_key,
from rightsizing
group by all
having count(*) > 1 or bool_or(cluster_id is null or namespace is null or workload_name is null or container_name is null)

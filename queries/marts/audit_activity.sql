-- Who did what in Spot, per day. grain: one row per day × user × resource type × action.
-- column day: The UTC day of the events.
-- column user_name: Who acted.
-- column resource_type: Type of the affected resources.
-- column action_type: What was done.
-- column event_count: Events (successful and failed).
-- column failed_count: Events whose call failed (HTTP status 400 or more).
-- column resource_ids: The affected resource ids, comma-separated, sorted.
-- incremental: day
with

events as (
    select * from stg_spot__audit_events
),

final as (
    select
        day,
        user_name,
        resource_type,
        action_type,
        count(*) as event_count,
        count(*) filter (where is_failed) as failed_count,
        coalesce(string_agg(distinct resource_id, ', ' order by resource_id), '') as resource_ids,
    from events
    group by all
)

select * from final

-- Audit events with a success flag. grain: one row per event.
select
    day,
    event_at,
    account_id,
    coalesce(user_name, '(unknown)') as user_name,
    coalesce(resource_type, '(none)') as resource_type,
    coalesce(action_type, '(none)') as action_type,
    resource_id,
    coalesce(response_status, 200) >= 400 as is_failed,
    context_json,
from raw_spot__audit_events

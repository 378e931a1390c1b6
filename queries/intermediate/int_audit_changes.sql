-- Successful configuration changes from the audit log, each with what it set in words, kept so that anomaly causes need not reread the lake. grain: one row per audit event.
-- incremental: day
-- column day: The UTC day of the change.
-- column event_at: When the change was made (UTC).
-- column account_id: The account the event names; null when it names none.
-- column user_name: Who made the change.
-- column resource_type: Type of the changed resource, as Spot names it (Elastigroup, OceanCluster, …).
-- column resource_id: Id of the changed resource.
-- column action_type: Spot's name for the action, e.g. `Update group`.
-- column change: What the request body set, in words (e.g. `capacity target to 20`); null when it sets none of the capacity and spot-share settings spotcost reads.
with

events as (
    select * from stg_spot__audit_events
),

changes as (
    -- Reads (describe, get, list), sign-ins, tokens and failed calls change no cost.
    select
        day,
        event_at,
        account_id,
        user_name,
        resource_type,
        resource_id,
        action_type,
        -- The request body: the context's text after `"body":` (DuckDB's JSON extension is not
        -- part of the build, so the settings are read with patterns; only digits are taken).
        coalesce(regexp_extract(context_json, '"body"\s*:\s*(.*)$', 1), '') as body,
    from events
    where not is_failed
        and resource_id is not null
        and resource_type not in ('User', 'Token', 'Account', '(none)')
        and not regexp_matches(lower(action_type), '^(describe|get|list|sign in|view|read)')
),

settings as (
    select
        *,
        nullif(regexp_extract(body, '"capacity"\s*:\s*\{[^{}]*"target"\s*:\s*"?([0-9]+)', 1), '') as capacity_target,
        nullif(regexp_extract(body, '"capacity"\s*:\s*\{[^{}]*"minimum"\s*:\s*"?([0-9]+)', 1), '') as capacity_minimum,
        nullif(regexp_extract(body, '"capacity"\s*:\s*\{[^{}]*"maximum"\s*:\s*"?([0-9]+)', 1), '') as capacity_maximum,
        nullif(regexp_extract(body, '"(spotPercentage|risk)"\s*:\s*"?([0-9]+)', 2), '') as spot_percentage,
    from changes
),

final as (
    select
        day,
        event_at,
        account_id,
        user_name,
        resource_type,
        resource_id,
        action_type,
        nullif(concat_ws(
            ', ',
            'capacity target to ' || capacity_target,
            'capacity minimum to ' || capacity_minimum,
            'capacity maximum to ' || capacity_maximum,
            'spot percentage to ' || spot_percentage
        ), '') as change,
    from settings
)

select * from final

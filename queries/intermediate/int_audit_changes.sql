-- Successful configuration changes from the audit log, each with the settings it set, kept so that anomaly causes need not reread the lake. grain: one row per audit event.
-- incremental: day
-- column day: The UTC day of the change.
-- column event_at: When the change was made (UTC).
-- column account_id: The account the event names; null when it names none.
-- column user_name: Who made the change.
-- column resource_type: Type of the changed resource, as Spot names it (Elastigroup, OceanCluster, …).
-- column resource_id: Id of the changed resource.
-- column action_type: Spot's name for the action, e.g. `Update group`.
-- column settings: What the request body set, as a list of `{setting, value}` in a fixed order (e.g. `[{'setting': 'capacity target', 'value': 20}]`); empty when it sets none of the settings spotcost reads (capacity target, minimum and maximum, spot percentage, a virtual node group's minimum and maximum instances).
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
    -- Only digits are taken; a number too large for a bigint is left out.
    select
        *,
        list_filter([
            {'setting': 'capacity target', 'value': try_cast(nullif(regexp_extract(body, '"capacity"\s*:\s*\{[^{}]*"target"\s*:\s*"?([0-9]+)', 1), '') as bigint)},
            {'setting': 'capacity minimum', 'value': try_cast(nullif(regexp_extract(body, '"capacity"\s*:\s*\{[^{}]*"minimum"\s*:\s*"?([0-9]+)', 1), '') as bigint)},
            {'setting': 'capacity maximum', 'value': try_cast(nullif(regexp_extract(body, '"capacity"\s*:\s*\{[^{}]*"maximum"\s*:\s*"?([0-9]+)', 1), '') as bigint)},
            {'setting': 'spot percentage', 'value': try_cast(nullif(regexp_extract(body, '"(spotPercentage|risk)"\s*:\s*"?([0-9]+)', 2), '') as bigint)},
            -- A virtual node group's instance limits (`launchSpec.resourceLimits`).
            {'setting': 'minimum instances', 'value': try_cast(nullif(regexp_extract(body, '"minInstanceCount"\s*:\s*"?([0-9]+)', 1), '') as bigint)},
            {'setting': 'maximum instances', 'value': try_cast(nullif(regexp_extract(body, '"maxInstanceCount"\s*:\s*"?([0-9]+)', 1), '') as bigint)},
        ], lambda setting: setting.value is not null) as settings,
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
        settings,
    from settings
)

select * from final

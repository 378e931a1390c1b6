-- Every level of the reconciliation ledger reconciles: namespaces to their cluster's total, resources to Spot's account cost, the instance-cost export to each resource's own cost, each within spotcost_settings.reconciliation_tolerance_usd per day. Returns the ledger rows beyond it, largest residual first.
-- incremental: day
-- warn_if: reconciliation_warn_only
select
    day, level, account_id, item_id, allocated_usd, reported_usd, residual_usd,
from reconciliation
where day in (select day from spotcost_changed_days) and not within_tolerance
order by abs_residual_usd desc, day, level, account_id, item_id

//! `audit_events`: the organisation's audit log (`GET /audit/events`), successful and failed calls.

use super::columns::*;
use super::{ExtractContext, ExtractError, ForUnit, Unit};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per audit event; partitioned by the event's UTC day.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        column(
            "event_date",
            DataType::Date32,
            false,
            "The UTC day of the event (also the `day=` partition).",
        ),
        column(
            "event_at",
            timestamp_type(),
            true,
            "When the event happened (UTC).",
        ),
        column(
            "account_id",
            DataType::Utf8,
            true,
            "The account the event concerns, when it names one.",
        ),
        column(
            "user_name",
            DataType::Utf8,
            true,
            "Who acted (user e-mail or programmatic user).",
        ),
        column(
            "namespace",
            DataType::Utf8,
            true,
            "Spot's event namespace, e.g. `GENERAL`, `ELASTIGROUP`.",
        ),
        column(
            "action_type",
            DataType::Utf8,
            true,
            "What was done, e.g. `Sign in with SSO`, `Update`.",
        ),
        column(
            "resource_type",
            DataType::Utf8,
            true,
            "Type of the affected resource.",
        ),
        column(
            "resource_id",
            DataType::Utf8,
            true,
            "Id of the affected resource.",
        ),
        column("source", DataType::Utf8, true, "`UI`, `API`, …"),
        column("agent", DataType::Utf8, true, "User agent of the call."),
        column(
            "response_status",
            DataType::Int64,
            true,
            "HTTP status of the audited call (200 = succeeded).",
        ),
        column(
            "context_json",
            DataType::Utf8,
            true,
            "Spot's request context (body, url, query) as JSON text.",
        ),
    ]))
}

pub(super) async fn batch(
    context: &ExtractContext,
    unit: &Unit,
) -> Result<RecordBatch, ExtractError> {
    let events = context
        .client
        .audit_events(unit.window())
        .await
        .for_unit(unit)?;
    RecordBatch::try_new(
        schema(),
        vec![
            date(events.iter().map(|_| Some(unit.day))),
            timestamp(events.iter().map(|e| e.created_at)),
            text(events.iter().map(|e| e.account_id.as_deref())),
            text(events.iter().map(|e| e.user.as_deref())),
            text(events.iter().map(|e| e.namespace.as_deref())),
            text(events.iter().map(|e| e.action_type.as_deref())),
            text(events.iter().map(|e| e.resource_type.as_deref())),
            text(events.iter().map(|e| e.resource_id.as_deref())),
            text(events.iter().map(|e| e.source.as_deref())),
            text(events.iter().map(|e| e.agent.as_deref())),
            int(events.iter().map(|e| whole(e.response_status))),
            text(events.iter().map(|e| e.context.as_deref())),
        ],
    )
    .for_unit(unit)
}

//! `accounts`: the organisation's Spot accounts (`GET /setup/account`).

use super::columns::*;
use super::{ExtractError, ForUnit, Unit};
use crate::spot::types::{Account, Cloud};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use std::sync::Arc;

/// What one row is.
pub const GRAIN: &str = "One row per account per snapshot day.";

/// The declared Arrow schema; every column carries its description (see SCHEMA.md).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        snapshot_date_column(),
        account_id_column(),
        column(
            "account_name",
            DataType::Utf8,
            true,
            "Account name in Spot.",
        ),
        column(
            "organization_id",
            DataType::Utf8,
            true,
            "Spot organisation id (kept as text; Spot sends it as a number or a string).",
        ),
        column(
            "cloud",
            DataType::Utf8,
            false,
            "Cloud of the account: `aws`, `gcp` or `azure` (`aws` when Spot names none), or `unknown` for a provider spotcost does not know (see `cloud_provider`; such an account's other datasets fail rather than guess).",
        ),
        column(
            "cloud_provider",
            DataType::Utf8,
            true,
            "Cloud provider as Spot spells it (`AWS`, `GCP`, `AZURE`); null on old accounts.",
        ),
        column(
            "provider_external_id",
            DataType::Utf8,
            true,
            "The linked cloud account id (AWS account, Azure subscription, GCP project).",
        ),
        created_at_column(),
    ]))
}

pub(super) fn batch(unit: &Unit, accounts: &[Account]) -> Result<RecordBatch, ExtractError> {
    RecordBatch::try_new(
        schema(),
        vec![
            date(accounts.iter().map(|_| Some(unit.day))),
            text(accounts.iter().map(|a| Some(a.account_id.as_str()))),
            text(accounts.iter().map(|a| a.name.as_deref())),
            text(accounts.iter().map(|a| a.organization_id.as_deref())),
            text(
                accounts
                    .iter()
                    .map(|a| Some(Cloud::of(a.cloud_provider.as_deref()).as_str())),
            ),
            text(accounts.iter().map(|a| a.cloud_provider.as_deref())),
            text(accounts.iter().map(|a| a.provider_external_id.as_deref())),
            timestamp(accounts.iter().map(|a| a.created_at)),
        ],
    )
    .for_unit(unit)
}

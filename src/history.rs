//! The run history: one record per run of `run`, `extract`, `backfill`, `model`, `report` or `demo`,
//! as two small Parquet files, `DIR/state/runs/<run id>.parquet` (one row) and
//! `DIR/state/run_items/<run id>.parquet` (one row per dataset and account), each written whole and
//! atomically (never appended to, so a crash cannot leave half a record) and read by the warehouse's
//! views `runs` and `run_items`; and the one-line summary a person reads in cron mail.

use crate::extract::columns::{column, date, int, text, timestamp, timestamp_type};
use crate::lake::{self, LakeError};
use crate::pipeline::ExtractReport;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Written when a run starts; a record left so belongs to a run that was killed.
    Running,
    Succeeded,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// One dataset for one account (or the organisation) within a run.
#[derive(Debug, Clone)]
pub struct ItemRecord {
    pub dataset: String,
    /// An account id, or `org` for organisation-wide datasets.
    pub account_id: String,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub days_landed: u64,
    pub rows: u64,
    pub bytes: u64,
    pub api_requests: u64,
    pub api_retries: u64,
    pub api_rate_limited: u64,
    pub api_errors: u64,
    pub elapsed_ms: u64,
    pub error: Option<String>,
}

/// A stage of a run (`extract`, `model`, `report`) and how it ended.
#[derive(Debug, Clone)]
pub struct StageRecord {
    pub stage: String,
    pub status: RunStatus,
    pub elapsed_ms: u64,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub command: String,
    pub spotcost_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub exit_code: Option<u8>,
    /// The first usage day and the last one the run covered, if it extracted.
    pub from_day: Option<NaiveDate>,
    pub to_day: Option<NaiveDate>,
    /// What went wrong, in one line; empty for a run that succeeded.
    pub error: String,
    pub stages: Vec<StageRecord>,
    pub items: Vec<ItemRecord>,
}

impl RunRecord {
    pub fn start(command: &str, started_at: DateTime<Utc>) -> RunRecord {
        static RUNS_IN_THIS_PROCESS: AtomicU32 = AtomicU32::new(0);
        RunRecord {
            run_id: format!(
                "{}-{}-{}",
                started_at.format("%Y%m%dT%H%M%S%.3fZ"),
                std::process::id(),
                RUNS_IN_THIS_PROCESS.fetch_add(1, Ordering::Relaxed)
            ),
            command: command.to_owned(),
            spotcost_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            finished_at: None,
            status: RunStatus::Running,
            exit_code: None,
            from_day: None,
            to_day: None,
            error: String::new(),
            stages: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Adds the extract stage's items and marks the run failed or interrupted if they were.
    pub fn add_extract(&mut self, report: &ExtractReport, elapsed_ms: u64) {
        for item in &report.items {
            self.items.push(ItemRecord {
                dataset: item.dataset.name().to_owned(),
                account_id: item.account.clone().unwrap_or_else(|| "org".to_owned()),
                first_day: item.first_day,
                last_day: item.last_day,
                days_landed: item.days as u64,
                rows: item.rows,
                bytes: item.bytes,
                api_requests: item.calls.requests,
                api_retries: item.calls.retries,
                api_rate_limited: item.calls.rate_limited,
                api_errors: item.calls.errors,
                elapsed_ms: item.elapsed.as_millis() as u64,
                error: item.error.clone(),
            });
        }
        if let Some((from, to)) = report.day_span() {
            self.from_day = Some(from);
            self.to_day = Some(to);
        }
        let failed = report.failures().count();
        let (status, detail) = if report.interrupted {
            (
                RunStatus::Interrupted,
                format!("interrupted; {failed} item(s) unfinished"),
            )
        } else if failed > 0 {
            let first: Vec<String> = report
                .failures()
                .take(3)
                .map(|item| {
                    format!(
                        "{} ({})",
                        item.dataset,
                        item.account.as_deref().unwrap_or("org")
                    )
                })
                .collect();
            (
                RunStatus::Failed,
                format!(
                    "{failed} of {} item(s) failed: {}{}",
                    report.items.len(),
                    first.join(", "),
                    if failed > 3 { ", …" } else { "" }
                ),
            )
        } else {
            (
                RunStatus::Succeeded,
                format!("{} item(s), {} rows", report.items.len(), report.rows()),
            )
        };
        self.add_stage("extract", status, elapsed_ms, detail);
    }

    /// Records a stage; a failed or interrupted stage makes the run so, with its detail as the error.
    pub fn add_stage(&mut self, stage: &str, status: RunStatus, elapsed_ms: u64, detail: String) {
        if status != RunStatus::Succeeded && self.is_success() {
            self.status = status;
            self.error = format!("{stage}: {detail}");
        }
        self.stages.push(StageRecord {
            stage: stage.to_owned(),
            status,
            elapsed_ms,
            detail,
        });
    }

    /// Records an error that ended the run as a whole (no stage of its own).
    pub fn fail(&mut self, error: &str) {
        if self.is_success() {
            self.status = RunStatus::Failed;
            self.error = error.to_owned();
        }
    }

    /// Nothing has failed (so far, for a run still going).
    pub fn is_success(&self) -> bool {
        matches!(self.status, RunStatus::Running | RunStatus::Succeeded)
    }

    /// Writes the record as it stands (status `running`), so a run that is killed leaves a trace.
    pub fn save_started(&self, data_dir: &Path) -> Result<(), LakeError> {
        self.write(data_dir)
    }

    /// Stamps the end and writes the record.
    pub fn finish(
        &mut self,
        data_dir: &Path,
        finished_at: DateTime<Utc>,
        exit_code: u8,
    ) -> Result<(), LakeError> {
        self.finished_at = Some(finished_at);
        self.exit_code = Some(exit_code);
        if self.status == RunStatus::Running {
            self.status = RunStatus::Succeeded;
        }
        self.write(data_dir)
    }

    /// The run's row and its items' rows, replacing any earlier version of this run's files.
    fn write(&self, data_dir: &Path) -> Result<(), LakeError> {
        let (run, items) = self.batches().map_err(|source| LakeError::Io {
            dataset: "run history".into(),
            path: runs_path(data_dir, &self.run_id),
            source: std::io::Error::other(source),
        })?;
        lake::write_file(
            "run history",
            &run_items_path(data_dir, &self.run_id),
            &run_items_schema(),
            &items,
        )?;
        lake::write_file(
            "run history",
            &runs_path(data_dir, &self.run_id),
            &runs_schema(),
            &run,
        )?;
        Ok(())
    }

    fn batches(&self) -> Result<(RecordBatch, RecordBatch), arrow::error::ArrowError> {
        let sum = |value: fn(&ItemRecord) -> u64| -> Option<i64> {
            Some(self.items.iter().map(value).sum::<u64>() as i64)
        };
        let stages: Vec<String> = self
            .stages
            .iter()
            .map(|s| {
                format!(
                    "{} {} in {} ms: {}",
                    s.stage,
                    s.status.as_str(),
                    s.elapsed_ms,
                    s.detail
                )
            })
            .collect();
        let run = RecordBatch::try_new(
            runs_schema(),
            vec![
                text([Some(self.run_id.as_str())]),
                text([Some(self.command.as_str())]),
                text([Some(self.status.as_str())]),
                int([self.exit_code.map(i64::from)]),
                timestamp([Some(self.started_at)]),
                timestamp([self.finished_at]),
                date([self.from_day]),
                date([self.to_day]),
                int([sum(|i| i.rows)]),
                int([sum(|i| i.api_requests)]),
                int([sum(|i| i.api_retries)]),
                int([sum(|i| i.api_rate_limited)]),
                int([Some(
                    self.items.iter().filter(|i| i.error.is_some()).count() as i64,
                )]),
                text([(!self.error.is_empty()).then_some(self.error.as_str())]),
                text([Some(stages.join("; ").as_str())]),
                text([Some(self.spotcost_version.as_str())]),
            ],
        )?;
        let items = &self.items;
        let number =
            |value: fn(&ItemRecord) -> u64| int(items.iter().map(|i| Some(value(i) as i64)));
        let item_batch = RecordBatch::try_new(
            run_items_schema(),
            vec![
                text(items.iter().map(|_| Some(self.run_id.as_str()))),
                text(items.iter().map(|_| Some(self.command.as_str()))),
                timestamp(items.iter().map(|_| Some(self.started_at))),
                text(items.iter().map(|i| Some(i.dataset.as_str()))),
                text(items.iter().map(|i| Some(i.account_id.as_str()))),
                date(items.iter().map(|i| i.first_day)),
                date(items.iter().map(|i| i.last_day)),
                number(|i| i.days_landed),
                number(|i| i.rows),
                number(|i| i.bytes),
                number(|i| i.api_requests),
                number(|i| i.api_retries),
                number(|i| i.api_rate_limited),
                number(|i| i.api_errors),
                number(|i| i.elapsed_ms),
                text(items.iter().map(|i| i.error.as_deref())),
            ],
        )?;
        Ok((run, item_batch))
    }

    /// One line for cron mail: what ran, how it ended, what it did.
    pub fn summary_line(&self, elapsed: std::time::Duration) -> String {
        let mut parts = vec![format!(
            "spotcost {} {}: {} in {}",
            self.command,
            self.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            match self.status {
                RunStatus::Running | RunStatus::Succeeded => "ok",
                RunStatus::Failed => "FAILED",
                RunStatus::Interrupted => "INTERRUPTED",
            },
            human_duration(elapsed)
        )];
        if let (Some(from), Some(to)) = (&self.from_day, &self.to_day) {
            parts.push(if from == to {
                format!("usage day {from}")
            } else {
                format!("usage days {from}..{to}")
            });
        }
        if !self.items.is_empty() {
            let rows: u64 = self.items.iter().map(|i| i.rows).sum();
            let requests: u64 = self.items.iter().map(|i| i.api_requests).sum();
            let retries: u64 = self.items.iter().map(|i| i.api_retries).sum();
            let limited: u64 = self.items.iter().map(|i| i.api_rate_limited).sum();
            let accounts: std::collections::BTreeSet<&str> = self
                .items
                .iter()
                .map(|i| i.account_id.as_str())
                .filter(|a| *a != "org")
                .collect();
            parts.push(format!(
                "{rows} rows from {} account(s), {requests} API requests ({retries} retries, {limited} rate-limited)",
                accounts.len()
            ));
        }
        for stage in &self.stages {
            if stage.stage != "extract" && stage.status == RunStatus::Succeeded {
                parts.push(stage.detail.clone());
            }
        }
        if !self.error.is_empty() {
            parts.push(self.error.clone());
        }
        parts.join("; ")
    }
}

/// `DIR/state/runs/<run id>.parquet`.
pub fn runs_path(data_dir: &Path, run_id: &str) -> PathBuf {
    data_dir
        .join("state")
        .join("runs")
        .join(format!("{run_id}.parquet"))
}

/// `DIR/state/run_items/<run id>.parquet`.
pub fn run_items_path(data_dir: &Path, run_id: &str) -> PathBuf {
    data_dir
        .join("state")
        .join("run_items")
        .join(format!("{run_id}.parquet"))
}

/// The `runs` view: one row per run.
pub fn runs_schema() -> SchemaRef {
    let count = |name: &str, description: &str| column(name, DataType::Int64, true, description);
    Arc::new(Schema::new(vec![
        column(
            "run_id",
            DataType::Utf8,
            false,
            "Start time, process id and a count within the process, e.g. 20261127T021500.012Z-4242-0.",
        ),
        column(
            "command",
            DataType::Utf8,
            false,
            "The spotcost command: run, extract, backfill, model, report or demo.",
        ),
        column(
            "status",
            DataType::Utf8,
            false,
            "running (still going, or killed), succeeded, failed or interrupted.",
        ),
        column(
            "exit_code",
            DataType::Int64,
            true,
            "The process exit code; null while running.",
        ),
        column(
            "started_at",
            timestamp_type(),
            false,
            "When the run started (UTC).",
        ),
        column(
            "finished_at",
            timestamp_type(),
            true,
            "When it ended (UTC); null while running or if killed.",
        ),
        column(
            "from_day",
            DataType::Date32,
            true,
            "First usage day the run extracted.",
        ),
        column(
            "to_day",
            DataType::Date32,
            true,
            "Last usage day the run extracted.",
        ),
        count("rows_written", "Rows landed in the lake."),
        count(
            "api_requests",
            "HTTP requests to the Spot API, retries included.",
        ),
        count("api_retries", "Requests that repeated a failed one."),
        count("api_rate_limited", "429 answers."),
        count("failed_items", "Datasets × accounts that failed."),
        column(
            "error",
            DataType::Utf8,
            true,
            "What went wrong, in one line.",
        ),
        column(
            "stages",
            DataType::Utf8,
            false,
            "Each stage, its status, time and detail.",
        ),
        column(
            "spotcost_version",
            DataType::Utf8,
            false,
            "The spotcost version that ran.",
        ),
    ]))
}

/// The `run_items` view: one row per run, dataset and account.
pub fn run_items_schema() -> SchemaRef {
    let count = |name: &str, description: &str| column(name, DataType::Int64, true, description);
    Arc::new(Schema::new(vec![
        column("run_id", DataType::Utf8, false, "The run (see runs)."),
        column("command", DataType::Utf8, false, "The spotcost command."),
        column(
            "started_at",
            timestamp_type(),
            false,
            "When the run started (UTC).",
        ),
        column("dataset", DataType::Utf8, false, "The dataset."),
        column(
            "account_id",
            DataType::Utf8,
            false,
            "The account, or org for organisation-wide datasets.",
        ),
        column(
            "first_day",
            DataType::Date32,
            true,
            "First day planned; null when there was nothing to do.",
        ),
        column("last_day", DataType::Date32, true, "Last day planned."),
        count("days_landed", "Days landed, from first_day on."),
        count("rows", "Rows landed."),
        count("bytes", "Parquet bytes written."),
        count("api_requests", "HTTP requests, retries included."),
        count("api_retries", "Requests that repeated a failed one."),
        count("api_rate_limited", "429 answers."),
        count("api_errors", "Calls that finally failed."),
        count("elapsed_ms", "Wall time of the item."),
        column(
            "error",
            DataType::Utf8,
            true,
            "The failure that stopped the item, naming dataset, account and day.",
        ),
    ]))
}

fn human_duration(elapsed: std::time::Duration) -> String {
    let seconds = elapsed.as_secs();
    match seconds {
        0..=59 => format!("{:.1}s", elapsed.as_secs_f64()),
        60..=3599 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_record_is_written_whole_and_summarised_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let started = Utc.with_ymd_and_hms(2026, 3, 10, 2, 15, 0).unwrap();
        let mut record = RunRecord::start("model", started);
        record.save_started(dir.path()).unwrap();
        record.add_stage(
            "model",
            RunStatus::Failed,
            1200,
            "data test chargeback_account__reconciles failed".into(),
        );
        record
            .finish(dir.path(), started + chrono::Duration::seconds(2), 1)
            .unwrap();
        let file = std::fs::File::open(runs_path(dir.path(), &record.run_id)).unwrap();
        let batches: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        let status = batches[0]
            .column_by_name("status")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap()
            .value(0)
            .to_owned();
        assert_eq!(status, "failed");
        assert!(run_items_path(dir.path(), &record.run_id).exists());
        let line = record.summary_line(std::time::Duration::from_millis(2000));
        assert_eq!(
            line,
            "spotcost model 2026-03-10T02:15:00.000Z: FAILED in 2.0s; model: data test chargeback_account__reconciles failed"
        );
    }
}

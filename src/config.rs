//! Configuration: `spotcost.toml` (`--config`, else `SPOTCOST_CONFIG`, else `./spotcost.toml` if
//! present) plus the environment (`SPOTINST_TOKEN`, `SPOTINST_ACCOUNT`, `SPOTINST_API_URL`,
//! `SPOTCOST_DATA_DIR`), merged under the command line. Keeps the token out of every `Debug` and
//! error message, and refuses a token file that others may read.

use crate::extract::Dataset;
use crate::pipeline::Shard;
use crate::spot::{ClientConfig, Token, DEFAULT_BASE_URL};
use chrono::NaiveDate;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no Spot API token: set SPOTINST_TOKEN, or token_file in the config file")]
    MissingToken,
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {path} is empty")]
    EmptyTokenFile { path: PathBuf },
    #[error("the token file {path} may be read by others (mode {mode:o}); run `chmod 600 {path}`")]
    TokenFileReadable { path: PathBuf, mode: u32 },
    #[error("{0}")]
    Schedule(String),
    #[error("{key}: unknown dataset {value:?}; expected one of: {expected}")]
    UnknownDataset {
        key: &'static str,
        value: String,
        expected: String,
    },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("{key} must be {expected}, got {value}")]
    OutOfRange {
        key: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// `spotcost.toml`. Every key is optional; units are in the names. `EXAMPLE_CONFIG` shows them all.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub api_url: Option<String>,
    /// A file holding the token (e.g. a mounted Kubernetes secret). `SPOTINST_TOKEN` wins over it.
    pub token_file: Option<PathBuf>,
    /// Accounts to extract; default: every account of the organisation (or `SPOTINST_ACCOUNT`).
    pub accounts: Option<Vec<String>>,
    /// Accounts to leave out.
    pub exclude_accounts: Option<Vec<String>>,
    /// `"i/n"`: this machine extracts shard i of n (accounts split by a stable hash of their id;
    /// organisation-wide datasets in shard 1); default: everything.
    pub shard: Option<String>,
    /// Datasets the nightly job extracts; default: all.
    pub datasets: Option<Vec<String>>,
    /// The first usage day of a nightly job with no state yet; default: 30 days before the run.
    pub start_date: Option<DateText>,
    /// Days before the watermark that each nightly run re-reads, because Spot restates recent costs.
    pub lookback_days: Option<u32>,
    /// The built-in scheduler's cron expression (5-field crontab, or 6/7 fields with seconds).
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in; default `UTC`.
    pub time_zone: Option<String>,
    pub concurrency: Option<usize>,
    pub timeout_secs: Option<u64>,
    pub max_attempts: Option<u32>,
    pub backoff_base_ms: Option<u64>,
    /// Extra namespace label keys to extract (the team and cost-centre keys always are).
    pub namespace_label_keys: Option<Vec<String>>,
    /// Namespace label whose value is a namespace's team in chargeback; default `team`.
    pub team_label_key: Option<String>,
    /// Namespace label whose value is a namespace's cost centre; default `cost-center`.
    pub cost_center_label_key: Option<String>,
    /// How shared Ocean cost is spread over namespaces: `none`, `proportional` (default) or `even`.
    pub shared_cost_policy: Option<String>,
    /// Where the SQL models live; default `./queries`, else the ones spotcost was built with.
    pub queries_dir: Option<PathBuf>,
    /// DuckDB's memory cap while building the warehouse, e.g. `"2GB"`; beyond it DuckDB spills to
    /// disk inside the data dir. Default: DuckDB's own (80 % of the machine's memory).
    pub duckdb_memory_limit: Option<String>,
    /// DuckDB's worker threads while building the warehouse; default: one per core.
    pub duckdb_threads: Option<usize>,
    /// Where the report definitions live; default `./reports`, else the ones spotcost was built with.
    pub reports_dir: Option<PathBuf>,
    /// Anomalies: how many trailing days' median is a day's expected cost; default 14.
    pub anomaly_baseline_days: Option<u32>,
    /// Anomalies: the smallest departure from the expected cost, as a fraction of it; default 0.5.
    pub anomaly_min_relative: Option<f64>,
    /// Anomalies: the smallest departure from the expected cost, USD; default 10.
    pub anomaly_min_usd: Option<f64>,
    /// `spotcost run` alerts when an anomaly of the days it built departs by at least this many
    /// USD; default: no alerts.
    pub anomaly_alert_usd: Option<f64>,
    /// Where `spotcost run` posts its anomaly alerts (JSON); default: none, only the exit code.
    pub anomaly_webhook_url: Option<String>,
    /// Reconciliation: the largest residual per day, account, level and item that reconciles; default 0.01.
    pub reconciliation_tolerance_usd: Option<f64>,
    /// `fail` (default): a residual beyond the tolerance fails `spotcost model`; `warn`: it is logged.
    pub reconciliation_on_residual: Option<String>,
    /// Monthly budgets: `{ account = "act-…", monthly_usd = 1000 }` or `{ team = "…", monthly_usd = 500 }`.
    pub budgets: Option<Vec<BudgetEntry>>,
}

/// One budget in the config file: exactly one of `account` and `team`, and its USD per month.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetEntry {
    pub account: Option<String>,
    pub team: Option<String>,
    pub monthly_usd: f64,
}

/// A configured amount that must be finite and not negative; `default` when absent.
fn non_negative(key: &'static str, value: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(v) => Err(ConfigError::OutOfRange {
            key,
            expected: "a finite number, 0 or more",
            value: v.to_string(),
        }),
    }
}

/// A date in the config file, written as a TOML date (`2026-01-01`) or a string (`"2026-01-01"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DateText {
    Date(toml::value::Datetime),
    Text(String),
}

impl DateText {
    fn parse(&self, key: &'static str) -> Result<NaiveDate, ConfigError> {
        let text = match self {
            DateText::Date(date) => date.to_string(),
            DateText::Text(text) => text.clone(),
        };
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| ConfigError::OutOfRange {
            key,
            expected: "a date as YYYY-MM-DD",
            value: text,
        })
    }
}

/// The configured folder, else `./<name>` when it holds `marker`, else the copy built into spotcost.
fn shipped_folder(configured: Option<&PathBuf>, name: &str, marker: &str) -> PathBuf {
    if let Some(dir) = configured {
        return dir.clone();
    }
    let local = PathBuf::from(name);
    if local.join(marker).exists() {
        local
    } else {
        crate::shipped::built_in(name)
    }
}

impl FileConfig {
    /// The model settings this file asks for; `policy` (from the command line) wins.
    pub fn model_settings(
        &self,
        policy: Option<&str>,
    ) -> Result<crate::models::ModelSettings, ConfigError> {
        let defaults = crate::models::ModelSettings::default();
        let policy_text = policy
            .map(str::to_owned)
            .or_else(|| self.shared_cost_policy.clone());
        let shared_cost_policy = match policy_text {
            None => defaults.shared_cost_policy,
            Some(text) => text.parse().map_err(|_| ConfigError::OutOfRange {
                key: "shared_cost_policy",
                expected: "none, proportional or even",
                value: text,
            })?,
        };
        let duckdb_memory_limit = self
            .duckdb_memory_limit
            .as_deref()
            .map(memory_limit)
            .transpose()?;
        let duckdb_threads = match self.duckdb_threads {
            Some(threads) if !(1..=256).contains(&threads) => {
                return Err(ConfigError::OutOfRange {
                    key: "duckdb_threads",
                    expected: "between 1 and 256",
                    value: threads.to_string(),
                })
            }
            threads => threads,
        };
        Ok(crate::models::ModelSettings {
            shared_cost_policy,
            team_label_key: self
                .team_label_key
                .clone()
                .unwrap_or(defaults.team_label_key),
            cost_center_label_key: self
                .cost_center_label_key
                .clone()
                .unwrap_or(defaults.cost_center_label_key),
            duckdb_memory_limit,
            duckdb_threads,
            anomaly_baseline_days: match self.anomaly_baseline_days {
                Some(days) if !(3..=90).contains(&days) => {
                    return Err(ConfigError::OutOfRange {
                        key: "anomaly_baseline_days",
                        expected: "between 3 and 90",
                        value: days.to_string(),
                    })
                }
                days => days.unwrap_or(defaults.anomaly_baseline_days),
            },
            anomaly_min_relative: non_negative(
                "anomaly_min_relative",
                self.anomaly_min_relative,
                defaults.anomaly_min_relative,
            )?,
            anomaly_min_usd: non_negative(
                "anomaly_min_usd",
                self.anomaly_min_usd,
                defaults.anomaly_min_usd,
            )?,
            reconciliation_tolerance_usd: non_negative(
                "reconciliation_tolerance_usd",
                self.reconciliation_tolerance_usd,
                defaults.reconciliation_tolerance_usd,
            )?,
            reconciliation_warn_only: match self
                .reconciliation_on_residual
                .as_deref()
                .map(str::trim)
            {
                None | Some("fail") => false,
                Some("warn") => true,
                Some(other) => {
                    return Err(ConfigError::OutOfRange {
                        key: "reconciliation_on_residual",
                        expected: "fail or warn",
                        value: other.to_owned(),
                    })
                }
            },
            budgets: self.budgets()?,
            ..defaults
        })
    }

    /// When and where `spotcost run` alerts on new cost anomalies; `None` unless
    /// `anomaly_alert_usd` is set.
    pub fn anomaly_alerts(&self) -> Result<Option<crate::alerts::AlertSettings>, ConfigError> {
        let webhook = self
            .anomaly_webhook_url
            .as_deref()
            .map(crate::alerts::webhook_url)
            .transpose()
            .map_err(|message| ConfigError::Invalid {
                key: "anomaly_webhook_url".into(),
                message,
            })?;
        let Some(min_usd) = self.anomaly_alert_usd else {
            if webhook.is_some() {
                return Err(ConfigError::Invalid {
                    key: "anomaly_webhook_url".into(),
                    message: "set anomaly_alert_usd too: it decides which anomalies alert".into(),
                });
            }
            return Ok(None);
        };
        Ok(Some(crate::alerts::AlertSettings {
            min_usd: non_negative("anomaly_alert_usd", Some(min_usd), 0.0)?,
            webhook,
            recent_days: self.lookback_days()?,
        }))
    }

    /// The configured budgets, each checked: one scope, a name, a positive finite amount.
    fn budgets(&self) -> Result<Vec<crate::models::Budget>, ConfigError> {
        use crate::models::{Budget, BudgetScope};
        let mut budgets: Vec<Budget> = Vec::new();
        for (index, entry) in self.budgets.iter().flatten().enumerate() {
            let invalid = |message: String| ConfigError::Invalid {
                key: format!("budgets[{index}]"),
                message,
            };
            let (scope, name) = match (&entry.account, &entry.team) {
                (Some(account), None) => (BudgetScope::Account, account.trim()),
                (None, Some(team)) => (BudgetScope::Team, team.trim()),
                _ => return Err(invalid("give exactly one of account and team".into())),
            };
            if name.is_empty() {
                return Err(invalid(format!("the {} is empty", scope.as_str())));
            }
            if !(entry.monthly_usd.is_finite() && entry.monthly_usd > 0.0) {
                return Err(invalid(format!(
                    "monthly_usd must be a positive amount, got {}",
                    entry.monthly_usd
                )));
            }
            if budgets.iter().any(|b| b.scope == scope && b.name == name) {
                return Err(invalid(format!(
                    "a second budget for {} {name:?}",
                    scope.as_str()
                )));
            }
            budgets.push(Budget {
                scope,
                name: name.to_owned(),
                monthly_usd: entry.monthly_usd,
            });
        }
        Ok(budgets)
    }

    /// The label keys extraction resolves: the team and cost-centre keys, then any extra ones.
    pub fn label_keys(&self) -> Vec<String> {
        let mut keys = vec![
            self.team_label_key
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE_LABEL_KEYS[0].to_owned()),
            self.cost_center_label_key
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE_LABEL_KEYS[1].to_owned()),
        ];
        for key in self.namespace_label_keys.iter().flatten() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// The folder of SQL models.
    pub fn queries_dir(&self) -> PathBuf {
        shipped_folder(self.queries_dir.as_ref(), "queries", "marts")
    }

    /// The folder of report definitions.
    pub fn reports_dir(&self) -> PathBuf {
        shipped_folder(
            self.reports_dir.as_ref(),
            "reports",
            "chargeback_namespace.toml",
        )
    }

    /// The configured datasets, checked; default: all.
    pub fn datasets(&self) -> Result<Vec<Dataset>, ConfigError> {
        let Some(names) = &self.datasets else {
            return Ok(Dataset::ALL.to_vec());
        };
        names
            .iter()
            .map(|name| {
                Dataset::from_name(name).ok_or_else(|| ConfigError::UnknownDataset {
                    key: "datasets",
                    value: name.clone(),
                    expected: Dataset::ALL.map(Dataset::name).join(", "),
                })
            })
            .collect()
    }

    /// The nightly job's first day with no state: `start_date`, else 30 days before `today`.
    pub fn start_date(&self, today: NaiveDate) -> Result<NaiveDate, ConfigError> {
        match &self.start_date {
            Some(date) => date.parse("start_date"),
            None => Ok(today - chrono::Duration::days(DEFAULT_HISTORY_DAYS)),
        }
    }

    pub fn lookback_days(&self) -> Result<u32, ConfigError> {
        match self.lookback_days {
            None => Ok(DEFAULT_LOOKBACK_DAYS),
            Some(days) if days <= 90 => Ok(days),
            Some(days) => Err(ConfigError::OutOfRange {
                key: "lookback_days",
                expected: "between 0 and 90",
                value: days.to_string(),
            }),
        }
    }

    /// The time zone schedules are read in.
    pub fn time_zone(&self) -> &str {
        self.time_zone.as_deref().unwrap_or("UTC")
    }

    /// Reads `path`; a missing file is an error only when the user named it.
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let (path, explicit) = match path {
            Some(path) => (path.to_owned(), true),
            None => (PathBuf::from("spotcost.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if !explicit && error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileConfig::default())
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path,
            message: e.to_string(),
        })
    }
}

/// `duckdb_memory_limit` checked and written the way DuckDB reads it: a positive number and a
/// unit (`B`, `KB`, `MB`, `GB`, `TB` or `KiB`, `MiB`, `GiB`, `TiB`), e.g. `2GB` or `1.5 GiB`.
fn memory_limit(text: &str) -> Result<String, ConfigError> {
    let refuse = || ConfigError::OutOfRange {
        key: "duckdb_memory_limit",
        expected:
            "a size such as \"2GB\" or \"512MiB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)",
        value: format!("{text:?}"),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| refuse())?;
    if !(value.is_finite() && value > 0.0) {
        return Err(refuse());
    }
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => "B",
        "kb" => "KB",
        "mb" => "MB",
        "gb" => "GB",
        "tb" => "TB",
        "kib" => "KiB",
        "mib" => "MiB",
        "gib" => "GiB",
        "tib" => "TiB",
        _ => return Err(refuse()),
    };
    Ok(format!("{number}{unit}"))
}

/// The environment variables spotcost reads, captured once so tests can pass their own.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    pub token: Option<Token>,
    pub account: Option<String>,
    pub api_url: Option<String>,
    /// `SPOTCOST_CONFIG`: the config file when `--config` is not given.
    pub config_path: Option<PathBuf>,
    /// `SPOTCOST_DATA_DIR`: overrides `data_dir` from the file.
    pub data_dir: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Environment {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Environment {
            token: read("SPOTINST_TOKEN").map(Token::new),
            account: read("SPOTINST_ACCOUNT"),
            api_url: read("SPOTINST_API_URL"),
            config_path: read("SPOTCOST_CONFIG").map(PathBuf::from),
            data_dir: read("SPOTCOST_DATA_DIR").map(PathBuf::from),
        }
    }

    /// The config file: `--config`, else `SPOTCOST_CONFIG`, else `./spotcost.toml` if present.
    pub fn load_config(&self, cli_path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        FileConfig::load(cli_path.or(self.config_path.as_deref()))
    }

    /// The data dir: command line, else `SPOTCOST_DATA_DIR`, else the file's, else `./data`.
    pub fn data_dir(&self, cli: Option<PathBuf>, file: &FileConfig) -> PathBuf {
        cli.or_else(|| self.data_dir.clone())
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("data"))
    }
}

pub const DEFAULT_NAMESPACE_LABEL_KEYS: [&str; 2] = ["team", "cost-center"];
/// How far back a nightly job with no state starts.
pub const DEFAULT_HISTORY_DAYS: i64 = 30;
/// Days re-read before each watermark, because Spot restates recent costs.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 3;

/// What `spotcost config --example` prints: every key, commented. A test keeps it in step with
/// `FileConfig` and the README.
pub const EXAMPLE_CONFIG: &str = include_str!("../spotcost.example.toml");

/// Reads the token file, refusing one that group or others may read.
fn read_token_file(path: &Path) -> Result<Token, ConfigError> {
    let file_error = |source| ConfigError::TokenFile {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(file_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ConfigError::TokenFileReadable {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let secret = std::fs::read_to_string(path).map_err(file_error)?;
    let token = Token::new(secret);
    if token.is_empty() {
        return Err(ConfigError::EmptyTokenFile {
            path: path.to_owned(),
        });
    }
    Ok(token)
}

/// Everything an extraction needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub client: ClientConfig,
    pub accounts: Option<Vec<String>>,
    pub exclude_accounts: Vec<String>,
    /// `SPOTINST_ACCOUNT`: used when the token cannot list the organisation's accounts.
    pub default_account: Option<String>,
    pub namespace_label_keys: Vec<String>,
    /// The configured datasets (default all).
    pub datasets: Vec<Dataset>,
    /// The part of the organisation this machine extracts; `None`: all of it.
    pub shard: Option<Shard>,
}

/// What the command line said; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub api_url: Option<String>,
    pub accounts: Option<Vec<String>>,
    pub shard: Option<Shard>,
}

impl Settings {
    /// Command line over environment over file over defaults.
    pub fn resolve(
        file: FileConfig,
        env: Environment,
        cli: Overrides,
    ) -> Result<Settings, ConfigError> {
        let namespace_label_keys = file.label_keys();
        let datasets = file.datasets()?;
        let shard = match (cli.shard, &file.shard) {
            (Some(shard), _) => Some(shard),
            (None, Some(text)) => Some(text.parse().map_err(|message| ConfigError::Invalid {
                key: "shard".into(),
                message,
            })?),
            (None, None) => None,
        };
        let data_dir = env.data_dir(cli.data_dir, &file);
        let token = match (env.token, &file.token_file) {
            (Some(token), _) if !token.is_empty() => token,
            (_, Some(path)) => read_token_file(path)?,
            _ => return Err(ConfigError::MissingToken),
        };
        let base_url = cli
            .api_url
            .or(env.api_url)
            .or(file.api_url)
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let mut client = ClientConfig::new(base_url, token);
        if let Some(concurrency) = file.concurrency {
            if !(1..=64).contains(&concurrency) {
                return Err(ConfigError::OutOfRange {
                    key: "concurrency",
                    expected: "between 1 and 64",
                    value: concurrency.to_string(),
                });
            }
            client.concurrency = concurrency;
        }
        if let Some(timeout) = file.timeout_secs {
            if timeout == 0 {
                return Err(ConfigError::OutOfRange {
                    key: "timeout_secs",
                    expected: "at least 1",
                    value: timeout.to_string(),
                });
            }
            client.timeout = Duration::from_secs(timeout);
        }
        if let Some(attempts) = file.max_attempts {
            if !(1..=20).contains(&attempts) {
                return Err(ConfigError::OutOfRange {
                    key: "max_attempts",
                    expected: "between 1 and 20",
                    value: attempts.to_string(),
                });
            }
            client.max_attempts = attempts;
        }
        if let Some(base) = file.backoff_base_ms {
            client.backoff_base = Duration::from_millis(base);
        }
        let accounts = cli
            .accounts
            .or(file.accounts)
            .or_else(|| env.account.clone().map(|a| vec![a]));
        Ok(Settings {
            data_dir,
            client,
            accounts,
            exclude_accounts: file.exclude_accounts.unwrap_or_default(),
            default_account: env.account,
            namespace_label_keys,
            datasets,
            shard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_token() -> Environment {
        Environment {
            token: Some(Token::new("s3cret")),
            ..Environment::default()
        }
    }

    #[test]
    fn a_missing_token_says_what_to_set() {
        let error = Settings::resolve(
            FileConfig::default(),
            Environment::default(),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("SPOTINST_TOKEN"), "{error}");
    }

    #[test]
    fn the_command_line_wins_over_environment_and_file() {
        let file = FileConfig {
            api_url: Some("https://file.example".into()),
            accounts: Some(vec!["act-file".into()]),
            ..FileConfig::default()
        };
        let env = Environment {
            api_url: Some("https://env.example".into()),
            account: Some("act-env".into()),
            ..env_with_token()
        };
        let settings = Settings::resolve(
            file.clone(),
            env.clone(),
            Overrides {
                api_url: Some("http://127.0.0.1:9".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(settings.client.base_url, "http://127.0.0.1:9");
        assert_eq!(settings.accounts, Some(vec!["act-file".to_string()]));
        let settings = Settings::resolve(FileConfig::default(), env, Overrides::default()).unwrap();
        assert_eq!(settings.client.base_url, "https://env.example");
        assert_eq!(settings.accounts, Some(vec!["act-env".to_string()]));
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn a_token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "file-secret\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let file = FileConfig {
            token_file: Some(path.clone()),
            ..FileConfig::default()
        };
        assert!(Settings::resolve(file, Environment::default(), Overrides::default()).is_ok());
        std::fs::write(&path, "\n").unwrap();
        let file = FileConfig {
            token_file: Some(path),
            ..FileConfig::default()
        };
        assert!(matches!(
            Settings::resolve(file, Environment::default(), Overrides::default()),
            Err(ConfigError::EmptyTokenFile { .. })
        ));
    }

    #[test]
    fn the_chargeback_label_keys_are_always_extracted() {
        let file = FileConfig {
            team_label_key: Some("owner".into()),
            namespace_label_keys: Some(vec!["env".into(), "owner".into()]),
            ..FileConfig::default()
        };
        let settings = Settings::resolve(file, env_with_token(), Overrides::default()).unwrap();
        assert_eq!(
            settings.namespace_label_keys,
            ["owner", "cost-center", "env"]
        );
        let defaults = Settings::resolve(
            FileConfig::default(),
            env_with_token(),
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(defaults.namespace_label_keys, ["team", "cost-center"]);
    }

    #[test]
    fn the_shard_comes_from_the_command_line_else_the_file_and_must_be_i_of_n() {
        let file = |text: &str| FileConfig {
            shard: Some(text.into()),
            ..FileConfig::default()
        };
        let from_file = Settings::resolve(file("2/3"), env_with_token(), Overrides::default());
        assert_eq!(from_file.unwrap().shard, Shard::new(2, 3));
        let overridden = Settings::resolve(
            file("2/3"),
            env_with_token(),
            Overrides {
                shard: Shard::new(1, 2),
                ..Overrides::default()
            },
        );
        assert_eq!(overridden.unwrap().shard, Shard::new(1, 2));
        let error = Settings::resolve(file("4/3"), env_with_token(), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("shard") && error.contains("4/3"), "{error}");
    }

    /// Every key `FileConfig` accepts, read from serde's own "expected one of" message.
    fn accepted_keys() -> Vec<String> {
        let error = toml::from_str::<FileConfig>("no_such_key = 1")
            .unwrap_err()
            .to_string();
        let expected = error.split("expected one of").nth(1).unwrap_or_default();
        let keys: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        assert!(keys.len() > 10, "{error}");
        keys
    }

    #[test]
    fn the_example_config_parses_and_shows_every_key() {
        let example: FileConfig = toml::from_str(EXAMPLE_CONFIG).unwrap();
        assert_eq!(example.lookback_days().unwrap(), DEFAULT_LOOKBACK_DAYS);
        let uncommented: String = EXAMPLE_CONFIG
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") => rest,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let full: FileConfig = toml::from_str(&uncommented).unwrap();
        assert_eq!(full.datasets().unwrap(), Dataset::ALL);
        assert_eq!(
            full.start_date(NaiveDate::MIN).unwrap(),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
        for key in accepted_keys() {
            assert!(
                uncommented.contains(&format!("\n{key} = ")),
                "the example config lacks {key}"
            );
        }
    }

    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../README.md");
        for key in accepted_keys() {
            assert!(
                readme.contains(&format!("`{key}`")),
                "README.md does not document the config key {key}"
            );
        }
    }

    #[test]
    fn the_duckdb_memory_limit_is_checked() {
        let limit = |text: &str| {
            let file: FileConfig =
                toml::from_str(&format!("duckdb_memory_limit = {text:?}")).unwrap();
            file.model_settings(None).map(|s| s.duckdb_memory_limit)
        };
        assert_eq!(limit("2GB").unwrap().as_deref(), Some("2GB"));
        assert_eq!(limit(" 1.5 gib ").unwrap().as_deref(), Some("1.5GiB"));
        for bad in [
            "",
            "2",
            "lots",
            "0GB",
            "2 GBs",
            "-1GB",
            "1e3MB",
            "2GB; drop table x",
        ] {
            let error = limit(bad).unwrap_err().to_string();
            assert!(error.contains("duckdb_memory_limit"), "{bad}: {error}");
        }
        let file: FileConfig = toml::from_str("duckdb_threads = 0").unwrap();
        assert!(file
            .model_settings(None)
            .unwrap_err()
            .to_string()
            .contains("duckdb_threads"));
    }

    #[test]
    fn budgets_and_thresholds_are_checked() {
        let settings = |text: &str| {
            toml::from_str::<FileConfig>(text)
                .unwrap()
                .model_settings(None)
                .map_err(|e| e.to_string())
        };
        let good = settings(
            "budgets = [{ account = \"act-1\", monthly_usd = 10.5 }, { team = \"web\", monthly_usd = 3 }]\n\
             reconciliation_on_residual = \"warn\"",
        )
        .unwrap();
        assert_eq!(good.budgets.len(), 2);
        assert_eq!(good.budgets[1].scope, crate::models::BudgetScope::Team);
        assert!(good.reconciliation_warn_only);
        for (bad, key) in [
            (
                "budgets = [{ account = \"a\", team = \"b\", monthly_usd = 1 }]",
                "budgets[0]",
            ),
            ("budgets = [{ monthly_usd = 1 }]", "budgets[0]"),
            (
                "budgets = [{ team = \"w\", monthly_usd = 1 }, { team = \"w\", monthly_usd = 2 }]",
                "budgets[1]",
            ),
            (
                "budgets = [{ team = \"w\", monthly_usd = -1 }]",
                "budgets[0]",
            ),
            ("anomaly_min_usd = -1", "anomaly_min_usd"),
            ("anomaly_baseline_days = 1", "anomaly_baseline_days"),
            (
                "reconciliation_on_residual = \"ignore\"",
                "reconciliation_on_residual",
            ),
        ] {
            let error = settings(bad).unwrap_err();
            assert!(error.contains(key), "{bad}: {error}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let file: FileConfig =
            toml::from_str("datasets = [\"ocean_costs\", \"ocean_cost\"]\nlookback_days = 400\nstart_date = \"2026-13-01\"").unwrap();
        assert!(file
            .datasets()
            .unwrap_err()
            .to_string()
            .contains("\"ocean_cost\""));
        assert!(file
            .lookback_days()
            .unwrap_err()
            .to_string()
            .contains("lookback_days"));
        assert!(file
            .start_date(NaiveDate::MIN)
            .unwrap_err()
            .to_string()
            .contains("start_date"));
        let quoted: FileConfig = toml::from_str("start_date = \"2026-02-03\"").unwrap();
        assert_eq!(
            quoted.start_date(NaiveDate::MIN).unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 3).unwrap()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "file-secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = FileConfig {
            token_file: Some(path.clone()),
            ..FileConfig::default()
        };
        let error =
            Settings::resolve(file, Environment::default(), Overrides::default()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert!(!message.contains("file-secret"), "{message}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spotcost.toml");
        std::fs::write(&path, "concurency = 4\n").unwrap();
        let error = FileConfig::load(Some(&path)).unwrap_err();
        assert!(error.to_string().contains("concurency"), "{error}");
    }
}

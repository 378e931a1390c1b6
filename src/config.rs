//! Configuration: `spotcost.toml` (optional) plus the environment (`SPOTINST_TOKEN`,
//! `SPOTINST_ACCOUNT`, `SPOTINST_API_URL`), merged under the command line. Keeps the token out of
//! every `Debug` and error message.

use crate::spot::{ClientConfig, Token, DEFAULT_BASE_URL};
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
    #[error("{key} must be {expected}, got {value}")]
    OutOfRange {
        key: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// `spotcost.toml`. Every key is optional; units are in the names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub api_url: Option<String>,
    /// A file holding the token (e.g. a mounted Kubernetes secret). `SPOTINST_TOKEN` wins over it.
    pub token_file: Option<PathBuf>,
    /// Accounts to extract; default: every account of the organisation (or `SPOTINST_ACCOUNT`).
    pub accounts: Option<Vec<String>>,
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
    /// Where the report definitions live; default `./reports`, else the ones spotcost was built with.
    pub reports_dir: Option<PathBuf>,
}

/// The configured folder, else `./<name>` when it holds `marker`, else the one in spotcost's source tree.
fn shipped_folder(configured: Option<&PathBuf>, name: &str, marker: &str) -> PathBuf {
    if let Some(dir) = configured {
        return dir.clone();
    }
    let local = PathBuf::from(name);
    if local.join(marker).exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
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
            ..defaults
        })
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

/// The environment variables spotcost reads, captured once so tests can pass their own.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    pub token: Option<Token>,
    pub account: Option<String>,
    pub api_url: Option<String>,
}

impl Environment {
    pub fn from_process() -> Environment {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Environment {
            token: read("SPOTINST_TOKEN").map(Token::new),
            account: read("SPOTINST_ACCOUNT"),
            api_url: read("SPOTINST_API_URL"),
        }
    }
}

pub const DEFAULT_NAMESPACE_LABEL_KEYS: [&str; 2] = ["team", "cost-center"];

/// Everything an extraction needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub client: ClientConfig,
    pub accounts: Option<Vec<String>>,
    /// `SPOTINST_ACCOUNT`: used when the token cannot list the organisation's accounts.
    pub default_account: Option<String>,
    pub namespace_label_keys: Vec<String>,
}

/// What the command line said; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub api_url: Option<String>,
    pub accounts: Option<Vec<String>>,
}

impl Settings {
    /// Command line over environment over file over defaults.
    pub fn resolve(
        file: FileConfig,
        env: Environment,
        cli: Overrides,
    ) -> Result<Settings, ConfigError> {
        let namespace_label_keys = file.label_keys();
        let token = match (env.token, &file.token_file) {
            (Some(token), _) if !token.is_empty() => token,
            (_, Some(path)) => {
                let secret =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::TokenFile {
                        path: path.clone(),
                        source,
                    })?;
                let token = Token::new(secret);
                if token.is_empty() {
                    return Err(ConfigError::EmptyTokenFile { path: path.clone() });
                }
                token
            }
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
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            client,
            accounts,
            default_account: env.account,
            namespace_label_keys,
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
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spotcost.toml");
        std::fs::write(&path, "concurency = 4\n").unwrap();
        let error = FileConfig::load(Some(&path)).unwrap_err();
        assert!(error.to_string().contains("concurency"), "{error}");
    }
}

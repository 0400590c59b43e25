//! Layered service settings: built-in defaults, then the service's env file, then the process
//! environment (each layer overrides the one before), merged with the `config` crate.
//!
//! This module owns reading and validating raw values; it must not know what any service does
//! with them. Each service declares its variables once (name, default, doc) and builds its typed
//! settings struct through [`SettingsSource`]'s checked getters, so every bad value is reported
//! the same way: the variable, the value and what is accepted.

mod connection;
mod env_file;
mod fetch;
pub mod producer;

pub use connection::{
    ConnectionSettings, LogFormat, SaslCredentials, SaslMechanism, SecurityProtocol,
    SecuritySettings, TopicWaitSettings, common_variables, parse_bootstrap_servers,
};
pub use env_file::{EnvFile, EnvFileError};
pub use fetch::ConsumerFetchSettings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use config::{Config, Environment, Map, Source, Value};

/// The variable that points a service at another env file than its own.
pub const ENV_FILE_VARIABLE: &str = "ENV_FILE";

/// One variable a service reads: its name, its built-in default and a one-line description.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

impl Variable {
    pub const fn new(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self { name, default, doc }
    }

    /// Secrets are masked wherever settings are printed.
    pub fn is_secret(&self) -> bool {
        self.name.contains("PASSWORD")
            || self.name.contains("SECRET")
            || self.name.contains("TOKEN")
    }
}

/// Where an effective value came from, for `--check-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    EnvFile,
    Environment,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Default => "default",
            Origin::EnvFile => "env file",
            Origin::Environment => "environment",
        })
    }
}

/// Why settings could not be read. Every variant says which variable (or file) is at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("invalid value for {variable}: {value:?} (accepted: {accepted})")]
    Invalid {
        variable: &'static str,
        value: String,
        accepted: String,
    },
    #[error("{variable} is required {when}")]
    Required {
        variable: &'static str,
        when: String,
    },
    #[error("env file {path}: {source}")]
    EnvFile {
        path: PathBuf,
        #[source]
        source: EnvFileError,
    },
    #[error("could not merge settings: {0}")]
    Merge(String),
}

impl SettingsError {
    pub fn invalid(variable: &'static str, value: &str, accepted: impl Into<String>) -> Self {
        Self::Invalid {
            variable,
            value: value.to_owned(),
            accepted: accepted.into(),
        }
    }
}

/// Which env file was read, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFileStatus {
    Read(PathBuf),
    /// The service's default file is absent (as in a container configured by its environment).
    DefaultAbsent(PathBuf),
}

/// The merged raw settings of one service, with checked, typed getters.
#[derive(Debug)]
pub struct SettingsSource {
    merged: Config,
    variables: Vec<Variable>,
    env_file: EnvFileStatus,
    file_keys: Vec<String>,
    env_keys: Vec<String>,
}

impl SettingsSource {
    /// Reads the settings from the real process environment.
    pub fn from_process(
        variables: &[Variable],
        default_env_file: &Path,
    ) -> Result<Self, SettingsError> {
        Self::load(variables, default_env_file, std::env::vars().collect())
    }

    /// Reads the settings from the given environment (tests pass their own map).
    pub fn load(
        variables: &[Variable],
        default_env_file: &Path,
        environment: HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let (env_file, file_values) = read_env_file(default_env_file, &environment)?;
        let known = |name: &str| variables.iter().any(|v| v.name == name);
        let file_keys = file_values
            .keys()
            .filter(|k| known(k))
            .map(|k| k.to_lowercase())
            .collect();
        let env_keys = environment
            .keys()
            .filter(|k| known(k))
            .map(|k| k.to_lowercase())
            .collect();

        let mut builder = Config::builder();
        for variable in variables {
            builder = builder
                .set_default(variable.name.to_lowercase(), variable.default)
                .map_err(|e| SettingsError::Merge(e.to_string()))?;
        }
        let merged = builder
            .add_source(EnvFileLayer(file_values))
            .add_source(Environment::default().source(Some(environment)))
            .build()
            .map_err(|e| SettingsError::Merge(e.to_string()))?;
        Ok(Self {
            merged,
            variables: variables.to_vec(),
            env_file,
            file_keys,
            env_keys,
        })
    }

    pub fn env_file(&self) -> &EnvFileStatus {
        &self.env_file
    }

    /// The effective raw value of a declared variable.
    pub fn raw(&self, name: &'static str) -> String {
        self.merged
            .get_string(&name.to_lowercase())
            .unwrap_or_default()
    }

    pub fn origin(&self, name: &str) -> Origin {
        let key = name.to_lowercase();
        if self.env_keys.contains(&key) {
            Origin::Environment
        } else if self.file_keys.contains(&key) {
            Origin::EnvFile
        } else {
            Origin::Default
        }
    }

    /// Every declared variable with its effective value (secrets masked) and origin.
    pub fn effective(&self) -> Vec<(&'static str, String, Origin)> {
        self.variables
            .iter()
            .map(|v| {
                let value = self.raw(v.name);
                let shown = if v.is_secret() && !value.is_empty() {
                    "********".to_owned()
                } else {
                    value
                };
                (v.name, shown, self.origin(v.name))
            })
            .collect()
    }

    /// A non-empty string, trimmed.
    pub fn string(&self, name: &'static str) -> Result<String, SettingsError> {
        let value = self.raw(name).trim().to_owned();
        if value.is_empty() {
            return Err(SettingsError::invalid(name, &value, "a non-empty string"));
        }
        Ok(value)
    }

    /// A topic, group or instance name: Kafka's legal characters (ASCII letters, digits, `.`,
    /// `_`, `-`), 1 to 249 of them, and not `.` or `..`.
    pub fn kafka_name(&self, name: &'static str) -> Result<String, SettingsError> {
        let value = self.raw(name);
        if is_kafka_name(value.trim()) {
            Ok(value.trim().to_owned())
        } else {
            Err(SettingsError::invalid(name, &value, KAFKA_NAME_RULE))
        }
    }

    /// Like [`Self::kafka_name`], but empty means absent.
    pub fn optional_kafka_name(&self, name: &'static str) -> Result<Option<String>, SettingsError> {
        match self.optional_string(name) {
            None => Ok(None),
            Some(_) => self.kafka_name(name).map(Some),
        }
    }

    /// An optional string: empty means absent.
    pub fn optional_string(&self, name: &'static str) -> Option<String> {
        let value = self.raw(name).trim().to_owned();
        (!value.is_empty()).then_some(value)
    }

    /// A whole number within `min..=max`.
    pub fn integer<T>(&self, name: &'static str, min: T, max: T) -> Result<T, SettingsError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let value = self.raw(name);
        let accepted = || format!("a whole number from {min} to {max}");
        let parsed: T = value
            .trim()
            .parse()
            .map_err(|_| SettingsError::invalid(name, &value, accepted()))?;
        if parsed < min || parsed > max {
            return Err(SettingsError::invalid(name, &value, accepted()));
        }
        Ok(parsed)
    }

    /// A finite decimal number within `min..=max`.
    pub fn number(&self, name: &'static str, min: f64, max: f64) -> Result<f64, SettingsError> {
        let value = self.raw(name);
        let accepted = || format!("a number from {min} to {max}");
        let parsed: f64 = value
            .trim()
            .parse()
            .map_err(|_| SettingsError::invalid(name, &value, accepted()))?;
        if !parsed.is_finite() || parsed < min || parsed > max {
            return Err(SettingsError::invalid(name, &value, accepted()));
        }
        Ok(parsed)
    }

    /// A duration given in milliseconds, within `min_ms..=max_ms`.
    pub fn millis(
        &self,
        name: &'static str,
        min_ms: u64,
        max_ms: u64,
    ) -> Result<Duration, SettingsError> {
        self.integer(name, min_ms, max_ms)
            .map(Duration::from_millis)
    }

    /// A duration given in seconds, within `min_s..=max_s`.
    pub fn seconds(
        &self,
        name: &'static str,
        min_s: u64,
        max_s: u64,
    ) -> Result<Duration, SettingsError> {
        self.integer(name, min_s, max_s).map(Duration::from_secs)
    }

    /// A yes/no flag: 1/0, true/false, yes/no, on/off (any case).
    pub fn flag(&self, name: &'static str) -> Result<bool, SettingsError> {
        let value = self.raw(name);
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            _ => Err(SettingsError::invalid(
                name,
                &value,
                "1 or 0 (also true/false, yes/no, on/off)",
            )),
        }
    }

    /// One of a fixed set of words (case-insensitive), mapped to its typed value.
    pub fn choice<T: Copy>(
        &self,
        name: &'static str,
        choices: &[(&str, T)],
    ) -> Result<T, SettingsError> {
        let value = self.raw(name);
        let wanted = value.trim();
        choices
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(wanted))
            .map(|(_, typed)| *typed)
            .ok_or_else(|| {
                let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
                SettingsError::invalid(name, &value, format!("one of {}", words.join(", ")))
            })
    }
}

const KAFKA_NAME_RULE: &str =
    "1 to 249 characters from ASCII letters, digits, '.', '_' and '-' (not '.' or '..')";

/// Kafka's rule for topic names, which KIP-345 also applies to `group.instance.id`.
pub fn is_kafka_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 249
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Decides which env file applies and reads it: `ENV_FILE` if set (it must exist), else the
/// service's default file if present.
fn read_env_file(
    default_env_file: &Path,
    environment: &HashMap<String, String>,
) -> Result<(EnvFileStatus, HashMap<String, String>), SettingsError> {
    let (path, must_exist) = match environment.get(ENV_FILE_VARIABLE) {
        Some(path) if !path.trim().is_empty() => (PathBuf::from(path.trim()), true),
        _ => (default_env_file.to_path_buf(), false),
    };
    if !must_exist && !path.exists() {
        return Ok((EnvFileStatus::DefaultAbsent(path), HashMap::new()));
    }
    let file = EnvFile::read(&path).map_err(|source| SettingsError::EnvFile {
        path: path.clone(),
        source,
    })?;
    Ok((EnvFileStatus::Read(path), file.into_values()))
}

/// The env file as a `config` source, so the crate does the layering.
#[derive(Debug, Clone)]
struct EnvFileLayer(HashMap<String, String>);

impl Source for EnvFileLayer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        let origin = String::from("env file");
        Ok(self
            .0
            .iter()
            .map(|(k, v)| (k.to_lowercase(), Value::new(Some(&origin), v.as_str())))
            .collect())
    }
}

#[cfg(test)]
mod tests;

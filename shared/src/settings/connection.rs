//! The settings every service shares: where the brokers are, how to reach them securely, how
//! long to wait for topics, and how to log.
//!
//! Only parsing and validation live here; opening connections is `connect`'s job and TLS
//! material is loaded by `security`. Cross-field rules (SASL needs a user and a password, SSL
//! needs a readable CA file if one is named) are checked here so a bad setup exits at start-up.

use std::path::PathBuf;
use std::time::Duration;

use super::{SettingsError, SettingsSource, Variable};

/// The variables every service declares, with their defaults and docs.
pub fn common_variables() -> Vec<Variable> {
    vec![
        Variable::new(
            "BOOTSTRAP_SERVERS",
            "127.0.0.1:9092",
            "Comma-separated host:port list of brokers to bootstrap from.",
        ),
        Variable::new(
            "SECURITY_PROTOCOL",
            "PLAINTEXT",
            "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
        ),
        Variable::new(
            "SASL_MECHANISM",
            "PLAIN",
            "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with SASL_* protocols).",
        ),
        Variable::new("SASL_USERNAME", "", "SASL user name."),
        Variable::new("SASL_PASSWORD", "", "SASL password (masked when printed)."),
        Variable::new(
            "SSL_CA_LOCATION",
            "",
            "PEM file of CA certificates; empty = the system's roots.",
        ),
        Variable::new(
            "LOG_FORMAT",
            "text",
            "text or json (one JSON object per line).",
        ),
        Variable::new(
            "RUST_LOG",
            // rskafka logs every connection it opens at info: one line per partition.
            "info,rskafka=warn",
            "Log filter, e.g. info or shared=debug,info.",
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

/// SASL credentials; `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"********")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    pub protocol: SecurityProtocol,
    pub sasl: Option<SaslCredentials>,
    pub ca_location: Option<PathBuf>,
}

impl SecuritySettings {
    pub fn plaintext() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
            ca_location: None,
        }
    }

    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        let protocol = source.choice(
            "SECURITY_PROTOCOL",
            &[
                ("PLAINTEXT", SecurityProtocol::Plaintext),
                ("SSL", SecurityProtocol::Ssl),
                ("SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext),
                ("SASL_SSL", SecurityProtocol::SaslSsl),
            ],
        )?;
        let mechanism = source.choice(
            "SASL_MECHANISM",
            &[
                ("PLAIN", SaslMechanism::Plain),
                ("SCRAM-SHA-256", SaslMechanism::ScramSha256),
                ("SCRAM-SHA-512", SaslMechanism::ScramSha512),
            ],
        )?;
        let sasl =
            if protocol.uses_sasl() {
                let when = || format!("when SECURITY_PROTOCOL={}", source.raw("SECURITY_PROTOCOL"));
                let username = source.optional_string("SASL_USERNAME").ok_or_else(|| {
                    SettingsError::Required {
                        variable: "SASL_USERNAME",
                        when: when(),
                    }
                })?;
                let password = source.optional_string("SASL_PASSWORD").ok_or_else(|| {
                    SettingsError::Required {
                        variable: "SASL_PASSWORD",
                        when: when(),
                    }
                })?;
                Some(SaslCredentials {
                    mechanism,
                    username,
                    password,
                })
            } else {
                None
            };
        let ca_location = match source.optional_string("SSL_CA_LOCATION") {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(SettingsError::invalid(
                        "SSL_CA_LOCATION",
                        &path.display().to_string(),
                        "the path of a readable PEM file of CA certificates",
                    ));
                }
                Some(path)
            }
            None => None,
        };
        Ok(Self {
            protocol,
            sasl,
            ca_location,
        })
    }
}

/// Where the brokers are and how to talk to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub bootstrap_servers: Vec<String>,
    pub security: SecuritySettings,
    pub client_id: String,
}

impl ConnectionSettings {
    pub fn from_source(
        source: &SettingsSource,
        client_id: impl Into<String>,
    ) -> Result<Self, SettingsError> {
        Ok(Self {
            bootstrap_servers: parse_bootstrap_servers(&source.raw("BOOTSTRAP_SERVERS"))?,
            security: SecuritySettings::from_source(source)?,
            client_id: client_id.into(),
        })
    }

    /// Plaintext settings for the given brokers (tests and tools).
    pub fn plaintext(bootstrap_servers: Vec<String>, client_id: impl Into<String>) -> Self {
        Self {
            bootstrap_servers,
            security: SecuritySettings::plaintext(),
            client_id: client_id.into(),
        }
    }
}

/// Parses `host:port[,host:port…]`; hosts may be names, IPv4 or bracketed IPv6.
pub fn parse_bootstrap_servers(value: &str) -> Result<Vec<String>, SettingsError> {
    let invalid = || {
        SettingsError::invalid(
            "BOOTSTRAP_SERVERS",
            value,
            "a comma-separated list of host:port with ports from 1 to 65535",
        )
    };
    let servers: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if servers.is_empty() {
        return Err(invalid());
    }
    for server in &servers {
        let (host, port) = server.rsplit_once(':').ok_or_else(invalid)?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        let host_ok = !host.is_empty() && !host.contains(char::is_whitespace);
        if !port_ok || !host_ok {
            return Err(invalid());
        }
    }
    Ok(servers)
}

/// How long to wait for topics before consuming (`TOPIC_WAIT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicWaitSettings {
    pub timeout: Duration,
    pub interval: Duration,
    pub skip: bool,
}

impl TopicWaitSettings {
    pub fn variables() -> Vec<Variable> {
        vec![
            Variable::new(
                "TOPIC_WAIT_TIMEOUT_SEC",
                "60",
                "Seconds to wait for the topics to exist before giving up (1-3600).",
            ),
            Variable::new(
                "TOPIC_WAIT_INTERVAL_MS",
                "500",
                "Milliseconds between checks while waiting for topics (10-60000).",
            ),
            Variable::new(
                "TOPIC_WAIT_SKIP",
                "0",
                "1 to skip waiting for topics (they are assumed to exist).",
            ),
        ]
    }

    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        Ok(Self {
            timeout: source.seconds("TOPIC_WAIT_TIMEOUT_SEC", 1, 3600)?,
            interval: source.millis("TOPIC_WAIT_INTERVAL_MS", 10, 60_000)?,
            skip: source.flag("TOPIC_WAIT_SKIP")?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        source.choice("LOG_FORMAT", &[("text", Self::Text), ("json", Self::Json)])
    }
}

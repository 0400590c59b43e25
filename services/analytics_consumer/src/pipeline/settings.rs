//! The ripple view's and the control endpoint's settings: where the control plane lives,
//! which group to measure, and who may write.
//!
//! Parsed with the shared getters like every other setting. The token is a secret: `Debug`
//! never shows it and it never appears in `GET /control` or the status topic.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::control::{ControlTopics, EffectiveValue, ValueSource};
use shared::settings::{SettingsError, SettingsSource, Variable};

pub fn variables() -> Vec<Variable> {
    let mut variables = shared::control::variables();
    variables.extend([
        Variable::new(
            "INVENTORY_GROUP_ID",
            "inventory-service",
            "The inventory consumer's group, whose committed offsets give the pipeline's lag.",
        ),
        Variable::new(
            "CONTROL_TOKEN",
            "",
            "Bearer token every POST /control must carry; empty = none needed (masked when printed).",
        ),
        Variable::new(
            "HTTP_ALLOWED_HOSTS",
            "localhost,127.0.0.1,::1",
            "Comma-separated host names a write's Host header may name (DNS-rebinding guard).",
        ),
    ]);
    variables
}

#[derive(Clone)]
pub struct PipelineSettings {
    pub topics: ControlTopics,
    pub inventory_group: String,
    pub control_token: Option<String>,
    pub allowed_hosts: Vec<String>,
    /// How often lag is measured (`REPORT_INTERVAL_SEC`).
    pub report_interval: Duration,
    /// analytics' own effective settings (secrets masked), shown beside the others'.
    pub own_settings: BTreeMap<String, EffectiveValue>,
}

impl std::fmt::Debug for PipelineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineSettings")
            .field("topics", &self.topics)
            .field("inventory_group", &self.inventory_group)
            .field(
                "control_token",
                &self.control_token.as_ref().map(|_| "********"),
            )
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl PipelineSettings {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        let hosts = source.raw("HTTP_ALLOWED_HOSTS");
        let allowed_hosts: Vec<String> = hosts
            .split(',')
            .map(|h| {
                h.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase()
            })
            .filter(|h| !h.is_empty())
            .collect();
        if allowed_hosts.is_empty() {
            return Err(SettingsError::invalid(
                "HTTP_ALLOWED_HOSTS",
                &hosts,
                "a comma-separated list of host names or addresses",
            ));
        }
        Ok(Self {
            topics: ControlTopics::from_source(source)?,
            inventory_group: source.kafka_name("INVENTORY_GROUP_ID")?,
            control_token: source.optional_string("CONTROL_TOKEN"),
            allowed_hosts,
            report_interval: source.seconds("REPORT_INTERVAL_SEC", 1, 3600)?,
            own_settings: source
                .effective()
                .into_iter()
                .map(|(name, value, origin)| {
                    let value = if shared::control::is_secret(name) && !value.is_empty() {
                        "********".to_owned()
                    } else {
                        value
                    };
                    let source = ValueSource::from(origin);
                    (name.to_owned(), EffectiveValue { value, source })
                })
                .collect(),
        })
    }
}

//! The inventory consumer's live side: which settings may change while it runs (named
//! exactly as the env settings they override), the rules every worker reads before each
//! batch, and what the service says about its settings in the status topic.
//!
//! It never reads the control topic (`shared::control` does) and never touches stock. Each
//! knob's rule repeats the bounds `settings.rs` checks, so analytics can refuse a bad value
//! before writing it; a test below holds the two together. `MEMBERS` and the control-plane
//! topics are declared here rather than in `settings.rs`, as the live part of the settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use shared::control::{ControlTopics, LiveRule, LiveSettings};
use shared::settings::{SettingsError, SettingsSource, Variable};

use crate::rules::FailureModel;
use crate::settings::InventorySettings;

pub const SERVICE: &str = "inventory-consumer";

/// Most group members one process runs.
pub const MAX_MEMBERS: i64 = 16;

/// The variables this module adds to the service's own.
pub fn variables() -> Vec<Variable> {
    let mut variables = shared::control::variables();
    variables.push(Variable::new(
        "MEMBERS",
        "1",
        "Group members this process runs, each with its own member id, connections and workers (1-16); live.",
    ));
    variables
}

/// The live settings and the getter (with bounds) each is read with.
pub fn knobs() -> Vec<(&'static str, LiveRule)> {
    vec![
        ("FAIL_RATE", LiveRule::number(0.0, 1.0)),
        ("THROTTLE_MS", LiveRule::integer(0, 60_000)),
        ("MAX_RETRIES", LiveRule::integer(0, 20)),
        ("RESTOCK_INTERVAL_SEC", LiveRule::integer(0, 86_400)),
        ("RESTOCK_AMOUNT", LiveRule::integer(1, 1_000_000_000)),
        ("MEMBERS", LiveRule::integer(1, MAX_MEMBERS)),
    ]
}

/// Everything the service reads at start-up and on every live change.
#[derive(Debug, Clone)]
pub struct Configured {
    pub settings: InventorySettings,
    pub members: usize,
    pub control: ControlTopics,
}

impl Configured {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        Ok(Self {
            settings: InventorySettings::from_source(source)?,
            members: source.integer("MEMBERS", 1, MAX_MEMBERS as usize)?,
            control: ControlTopics::from_source(source)?,
        })
    }
}

/// What a worker reads before each batch: the part of the rules a live change can alter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveRules {
    pub failures: FailureModel,
    pub throttle: Duration,
    /// Every this often, add this much to each known item; `None` = never.
    pub restock: Option<(Duration, i64)>,
}

impl LiveRules {
    pub fn of(settings: &InventorySettings) -> Self {
        Self {
            failures: FailureModel {
                fail_rate: settings.fail_rate,
                max_retries: settings.max_retries,
                backoff: settings.retry_backoff,
                seed: settings.fail_seed,
            },
            throttle: settings.throttle,
            restock: settings.restock,
        }
    }
}

impl crate::worker::Outputs {
    /// Takes the latest live rules; a worker calls it when they changed.
    pub fn refresh_rules(&mut self) {
        let rules = *self.rules.borrow_and_update();
        self.failures = rules.failures;
        self.throttle = rules.throttle;
        self.restock = rules.restock;
    }
}

/// The `settings` part of the status.
pub fn settings_status(live: &LiveSettings<Configured>, unreadable: Option<&str>) -> Value {
    let knobs: BTreeMap<&str, &LiveRule> = live.knobs().iter().map(|(n, r)| (*n, r)).collect();
    json!({
        "settings": live.effective(),
        "knobs": knobs,
        "commands": [],
        "refused": live.refused(),
        "control_unreadable": unreadable,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    #[test]
    fn every_knob_rule_agrees_with_the_env_file_checks() {
        let variables = crate::settings::variables();
        for (knob, rule) in knobs() {
            let (min, max) = match &rule {
                LiveRule::Integer { min, max } => (*min as f64, *max as f64),
                LiveRule::Number { min, max } => (*min, *max),
                _ => continue,
            };
            let probes = [
                min.to_string(),
                max.to_string(),
                (min - 1.0).to_string(),
                (max + 1.0).to_string(),
                (min + 0.5).to_string(),
                "x".to_owned(),
                String::new(),
            ];
            for probe in probes {
                let mut environment = HashMap::from([
                    // Restocking on, so that RESTOCK_AMOUNT is read.
                    ("RESTOCK_INTERVAL_SEC".to_owned(), "5".to_owned()),
                ]);
                environment.insert(knob.to_owned(), probe.clone());
                let source =
                    SettingsSource::load(&variables, Path::new(""), environment).expect("loads");
                let by_settings = Configured::from_source(&source).map_err(|e| e.to_string());
                let by_rule = rule.check(knob, &probe).map_err(|e| e.to_string());
                assert_eq!(
                    by_rule.is_ok(),
                    by_settings.is_ok(),
                    "{knob}={probe:?}: {by_rule:?} vs {:?}",
                    by_settings.as_ref().err()
                );
                if let (Err(rule_says), Err(settings_say)) = (&by_rule, &by_settings) {
                    assert_eq!(rule_says, settings_say, "{knob}={probe:?}");
                }
            }
        }
    }
}

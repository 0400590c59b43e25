//! The producer's live side: which settings may change while it runs (named exactly as the
//! env settings they override), what one change means for the run loop, and what the producer
//! says about itself in the status topic.
//!
//! It decides nothing about pacing itself (that is `pacing`) and never reads the topic
//! (`shared::control` does). Each knob's rule repeats the bounds `settings.rs` checks, so
//! analytics can refuse a bad value before writing it; a test below holds the two together.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shared::control::{LiveRule, LiveSettings};

use crate::pacing::Pacing;
use crate::settings::ProducerSettings;

pub const SERVICE: &str = "producer-order";

/// Commands the producer understands.
pub const COMMANDS: &[&str] = &["burst", "pause", "resume"];

/// The live settings and the getter (with bounds) each is read with in `settings.rs`.
pub fn knobs() -> Vec<(&'static str, LiveRule)> {
    vec![
        (
            "MODE",
            LiveRule::choice(&["burst", "steady", "ramp", "spike"]),
        ),
        ("RATE_PER_SEC", LiveRule::number(0.1, 10_000_000.0)),
        ("RATE_START", LiveRule::number(0.0, 10_000_000.0)),
        ("RATE_END", LiveRule::number(0.0, 10_000_000.0)),
        ("RAMP_SEC", LiveRule::integer(1, 86_400)),
        ("SPIKE_EVERY_SEC", LiveRule::integer(1, 86_400)),
        ("SPIKE_DURATION_SEC", LiveRule::integer(1, 86_400)),
        ("SPIKE_FACTOR", LiveRule::number(1.0, 1000.0)),
        ("BURST_SIZE", LiveRule::integer(1, 10_000_000)),
        ("SLEEP_MS", LiveRule::integer(0, 3_600_000)),
        ("SKEW", LiveRule::number(0.0, 5.0)),
        ("ITEM_COUNT", LiveRule::integer(1, 1_000_000)),
    ]
}

/// What the run loop needs to know of the settings, and all that a live change can alter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub pacing: Pacing,
    pub item_count: u32,
    pub skew: f64,
}

impl Plan {
    pub fn of(settings: &ProducerSettings) -> Self {
        Self {
            pacing: settings.pacing,
            item_count: settings.item_count,
            skew: settings.skew,
        }
    }
}

/// The `settings` part of the status: effective values and sources, the live knobs with their
/// rules, the commands understood, refused values, and whether the control topic is readable.
pub fn settings_status(live: &LiveSettings<ProducerSettings>, unreadable: Option<&str>) -> Value {
    let knobs: BTreeMap<&str, &LiveRule> = live.knobs().iter().map(|(n, r)| (*n, r)).collect();
    json!({
        "settings": live.effective(),
        "knobs": knobs,
        "commands": COMMANDS,
        "refused": live.refused(),
        "control_unreadable": unreadable,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use shared::settings::SettingsSource;

    use super::*;

    /// The mode that makes `from_source` read a knob.
    fn mode_reading(knob: &str) -> &'static str {
        match knob {
            "RATE_START" | "RATE_END" | "RAMP_SEC" => "ramp",
            "SPIKE_EVERY_SEC" | "SPIKE_FACTOR" | "SPIKE_DURATION_SEC" => "spike",
            "BURST_SIZE" | "SLEEP_MS" => "burst",
            _ => "steady",
        }
    }

    #[test]
    fn every_knob_rule_agrees_with_the_env_file_checks() {
        let variables = crate::settings::variables();
        for (knob, rule) in knobs() {
            let (min, max) = match &rule {
                LiveRule::Integer { min, max } => (*min as f64, *max as f64),
                LiveRule::Number { min, max } => (*min, *max),
                _ => (0.0, 0.0),
            };
            let probes = [
                min.to_string(),
                max.to_string(),
                (min - 1.0).to_string(),
                (max + 1.0).to_string(),
                (min + 0.5).to_string(),
                "burst".to_owned(),
                "x".to_owned(),
                String::new(),
            ];
            for probe in probes {
                let mut environment = HashMap::from([
                    ("MODE".to_owned(), mode_reading(knob).to_owned()),
                    // Wide, short spikes so that each knob's own bound is what is probed,
                    // not the rule that a spike fits in its period.
                    ("SPIKE_EVERY_SEC".to_owned(), "86400".to_owned()),
                    ("SPIKE_DURATION_SEC".to_owned(), "1".to_owned()),
                ]);
                environment.insert(knob.to_owned(), probe.clone());
                let source =
                    SettingsSource::load(&variables, Path::new(""), environment).expect("loads");
                let by_settings = ProducerSettings::from_source(&source).map_err(|e| e.to_string());
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

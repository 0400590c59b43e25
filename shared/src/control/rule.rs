//! What a live setting accepts, as data: a [`LiveRule`] travels in a service's status so that
//! the analytics endpoint can refuse a bad value before anything is written to the control
//! topic, with the very message the env file would get.
//!
//! A rule never checks a value itself: it names one of [`SettingsSource`]'s getters and its
//! bounds, and [`LiveRule::check`] runs that getter on a one-variable source. That is the
//! design choice a reader may question (building a settings source to check one string); it is
//! what makes "same validator, same message" true by construction instead of by care.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::settings::{SettingsError, SettingsSource, Variable};

/// The getter (and its bounds) a live setting is read with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LiveRule {
    /// [`SettingsSource::integer`] (also `millis` and `seconds`, which are integers).
    Integer { min: i64, max: i64 },
    /// [`SettingsSource::number`].
    Number { min: f64, max: f64 },
    /// [`SettingsSource::choice`], case-insensitive.
    Choice { words: Vec<String> },
    /// [`SettingsSource::flag`].
    Flag,
}

impl LiveRule {
    pub fn integer(min: i64, max: i64) -> Self {
        Self::Integer { min, max }
    }

    pub fn number(min: f64, max: f64) -> Self {
        Self::Number { min, max }
    }

    pub fn choice(words: &[&str]) -> Self {
        Self::Choice {
            words: words.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    /// Checks `value` for the setting `name` with the getter the env file uses.
    pub fn check(&self, name: &str, value: &str) -> Result<(), SettingsError> {
        let name = intern(name)
            .ok_or_else(|| SettingsError::invalid("SETTING", name, "an upper-case setting name"))?;
        let environment = HashMap::from([(name.to_owned(), value.to_owned())]);
        // No env file: the path is empty, so only the value under test is read.
        let source =
            SettingsSource::load(&[Variable::new(name, "", "")], Path::new(""), environment)?;
        match self {
            Self::Integer { min, max } => source.integer(name, *min, *max).map(drop),
            Self::Number { min, max } => source.number(name, *min, *max).map(drop),
            Self::Choice { words } => {
                let choices: Vec<(&str, ())> = words.iter().map(|w| (w.as_str(), ())).collect();
                source.choice(name, &choices)
            }
            Self::Flag => source.flag(name).map(drop),
        }
    }
}

/// Whether `name` looks like an env setting: `A-Z`, `0-9`, `_`, 1 to 64 characters.
pub fn is_setting_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// [`SettingsError`] names its variable with a `&'static str`. Live setting names come from
/// the services' status records, a small fixed set, so each distinct name is leaked once and
/// reused; names that do not look like settings are refused rather than leaked.
fn intern(name: &str) -> Option<&'static str> {
    if !is_setting_name(name) {
        return None;
    }
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return Some(known);
    }
    // A bound on what can be leaked, whatever the status topic holds.
    if names.len() >= 4096 {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    Some(leaked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_refuses_with_the_env_file_message() {
        let rule = LiveRule::number(0.0, 1.0);
        assert_eq!(rule.check("FAIL_RATE", "0.25"), Ok(()));
        assert_eq!(
            rule.check("FAIL_RATE", "2").map_err(|e| e.to_string()),
            Err("invalid value for FAIL_RATE: \"2\" (accepted: a number from 0 to 1)".to_owned())
        );
        let integer = LiveRule::integer(0, 60_000);
        assert!(integer.check("THROTTLE_MS", "1.5").is_err());
        assert_eq!(integer.check("THROTTLE_MS", "5"), Ok(()));
        let choice = LiveRule::choice(&["burst", "steady"]);
        assert_eq!(choice.check("MODE", "STEADY"), Ok(()));
        assert_eq!(
            choice.check("MODE", "fast").map_err(|e| e.to_string()),
            Err("invalid value for MODE: \"fast\" (accepted: one of burst, steady)".to_owned())
        );
    }

    #[test]
    fn a_name_that_is_not_a_setting_is_refused_not_interned() {
        assert!(LiveRule::Flag.check("rate; drop", "1").is_err());
        assert!(!is_setting_name(""));
        assert!(is_setting_name("SPIKE_EVERY_SEC"));
    }

    #[test]
    fn rules_round_trip_as_json() {
        for rule in [
            LiveRule::integer(1, 5),
            LiveRule::number(0.1, 2.5),
            LiveRule::choice(&["a", "b"]),
            LiveRule::Flag,
        ] {
            let text = serde_json::to_string(&rule).expect("encodes");
            assert_eq!(serde_json::from_str::<LiveRule>(&text).ok(), Some(rule));
        }
    }
}

//! A service's settings as they are now: the start-up values (defaults, env file, environment)
//! with the live overrides from the control topic on top, and where each value came from.
//!
//! It owns the override set and rebuilds the service's typed settings through the service's own
//! `from_source`, so a live value passes exactly the checks (and cross-field rules) the env
//! file's would; it must not know what any setting means. Overrides are tried one at a time in
//! name order and a refused one is dropped alone, because one bad write must not undo the good
//! ones beside it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use super::rule::LiveRule;
use crate::settings::{Origin, SettingsError, SettingsSource, Variable};

/// Where an effective value came from, as the status topic and `GET /control` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    Default,
    EnvFile,
    Environment,
    Live,
}

impl From<Origin> for ValueSource {
    fn from(origin: Origin) -> Self {
        match origin {
            Origin::Default => Self::Default,
            Origin::EnvFile => Self::EnvFile,
            Origin::Environment => Self::Environment,
        }
    }
}

/// One effective setting, secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveValue {
    pub value: String,
    pub source: ValueSource,
}

/// A live value that was not applied, and why (the env file's message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub setting: String,
    pub value: String,
    pub error: String,
}

/// The start-up values of every variable a service declares, unmasked (they rebuild settings).
#[derive(Debug, Clone)]
pub struct Baseline {
    variables: Vec<Variable>,
    values: Vec<(String, Origin)>,
}

impl Baseline {
    pub fn capture(source: &SettingsSource, variables: &[Variable]) -> Self {
        Self {
            variables: variables.to_vec(),
            values: variables
                .iter()
                .map(|v| (source.raw(v.name), source.origin(v.name)))
                .collect(),
        }
    }

    /// A settings source with these start-up values and `overrides` above them.
    fn source_with(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<SettingsSource, SettingsError> {
        let mut environment: HashMap<String, String> = self
            .variables
            .iter()
            .zip(&self.values)
            .map(|(variable, (value, _))| (variable.name.to_owned(), value.clone()))
            .collect();
        environment.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The start-up values already include the env file; reading it again would pick up
        // edits made since, and the env file is the start-up configuration only.
        SettingsSource::load(&self.variables, Path::new(""), environment)
    }
}

/// Names that must never leave the process, whatever a service calls them.
pub fn is_secret(name: &str) -> bool {
    name.contains("PASSWORD") || name.contains("SECRET") || name.contains("TOKEN")
}

/// The live side of a service's settings `S`.
pub struct LiveSettings<S> {
    baseline: Baseline,
    knobs: Vec<(&'static str, LiveRule)>,
    build: fn(&SettingsSource) -> Result<S, SettingsError>,
    applied: BTreeMap<String, String>,
    refused: Vec<Refusal>,
}

impl<S> LiveSettings<S> {
    /// `knobs` are the settings that may change while running; `build` is the service's own
    /// `from_source`.
    pub fn new(
        baseline: Baseline,
        knobs: Vec<(&'static str, LiveRule)>,
        build: fn(&SettingsSource) -> Result<S, SettingsError>,
    ) -> Self {
        Self {
            baseline,
            knobs,
            build,
            applied: BTreeMap::new(),
            refused: Vec::new(),
        }
    }

    pub fn knobs(&self) -> &[(&'static str, LiveRule)] {
        &self.knobs
    }

    pub fn applied(&self) -> &BTreeMap<String, String> {
        &self.applied
    }

    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// Makes `desired` (setting → value, this service's part of the control topic) the live
    /// overrides, skipping any value its rule or the service's settings refuse. Returns the
    /// rebuilt settings when the applied set changed, `None` when nothing did.
    pub fn apply(&mut self, desired: &BTreeMap<String, String>) -> Option<S> {
        let mut accepted: BTreeMap<String, String> = BTreeMap::new();
        let mut refused = Vec::new();
        let mut last_good = None;
        for (name, value) in desired {
            let verdict = match self.knobs.iter().find(|(knob, _)| knob == name) {
                None => Err(format!("{name} is not a live setting of this service")),
                Some((_, rule)) => rule.check(name, value).map_err(|e| e.to_string()),
            }
            .and_then(|()| {
                let mut candidate = accepted.clone();
                candidate.insert(name.clone(), value.clone());
                let built = self
                    .baseline
                    .source_with(&candidate)
                    .and_then(|source| (self.build)(&source))
                    .map_err(|e| e.to_string())?;
                Ok((candidate, built))
            });
            match verdict {
                Ok((candidate, built)) => {
                    accepted = candidate;
                    last_good = Some(built);
                }
                Err(error) => refused.push(Refusal {
                    setting: name.clone(),
                    value: value.clone(),
                    error,
                }),
            }
        }
        for refusal in refused.iter().filter(|r| !self.refused.contains(r)) {
            tracing::warn!(setting = %refusal.setting, value = %refusal.value, error = %refusal.error, "live value refused; keeping the current one");
        }
        self.refused = refused;
        if accepted == self.applied {
            return None;
        }
        self.applied = accepted;
        match last_good {
            Some(built) => Some(built),
            // Every override was withdrawn: back to the start-up settings.
            None => self
                .baseline
                .source_with(&BTreeMap::new())
                .and_then(|source| (self.build)(&source))
                .ok(),
        }
    }

    /// Every setting with its effective value and source, secrets masked.
    pub fn effective(&self) -> BTreeMap<String, EffectiveValue> {
        self.baseline
            .variables
            .iter()
            .zip(&self.baseline.values)
            .map(|(variable, (start_value, origin))| {
                let (value, source) = match self.applied.get(variable.name) {
                    Some(live) => (live.clone(), ValueSource::Live),
                    None => (start_value.clone(), ValueSource::from(*origin)),
                };
                let value = if is_secret(variable.name) && !value.is_empty() {
                    "********".to_owned()
                } else {
                    value
                };
                (variable.name.to_owned(), EffectiveValue { value, source })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Toy {
        rate: f64,
        every: u64,
        lasting: u64,
    }

    fn build(source: &SettingsSource) -> Result<Toy, SettingsError> {
        let every = source.integer("EVERY", 1, 100)?;
        let lasting = source.integer("LASTING", 1, 100)?;
        if lasting > every {
            return Err(SettingsError::invalid(
                "LASTING",
                &source.raw("LASTING"),
                format!("at most EVERY ({every})"),
            ));
        }
        Ok(Toy {
            rate: source.number("RATE", 0.0, 10.0)?,
            every,
            lasting,
        })
    }

    fn toy() -> LiveSettings<Toy> {
        let variables = [
            Variable::new("RATE", "1", ""),
            Variable::new("EVERY", "10", ""),
            Variable::new("LASTING", "5", ""),
            Variable::new("SASL_PASSWORD", "", ""),
        ];
        let environment = HashMap::from([("SASL_PASSWORD".to_owned(), "hunter2".to_owned())]);
        let source = SettingsSource::load(&variables, Path::new(""), environment).expect("loads");
        LiveSettings::new(
            Baseline::capture(&source, &variables),
            vec![
                ("RATE", LiveRule::number(0.0, 10.0)),
                ("EVERY", LiveRule::integer(1, 100)),
                ("LASTING", LiveRule::integer(1, 100)),
            ],
            build,
        )
    }

    fn desired(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_good_value_applies_and_reports_live() {
        let mut live = toy();
        let built = live.apply(&desired(&[("RATE", "2.5")]));
        assert_eq!(built.map(|t| t.rate), Some(2.5));
        assert_eq!(live.effective()["RATE"].source, ValueSource::Live);
        assert_eq!(live.effective()["EVERY"].source, ValueSource::Default);
        assert_eq!(
            live.apply(&desired(&[("RATE", "2.5")])),
            None,
            "no change, no rebuild"
        );
    }

    #[test]
    fn a_bad_value_changes_nothing_and_keeps_its_neighbours() {
        let mut live = toy();
        let built = live.apply(&desired(&[
            ("EVERY", "3"),
            ("RATE", "11"),
            ("SASL_PASSWORD", "x"),
        ]));
        assert_eq!(built, None, "nothing was accepted, so nothing changed");
        // EVERY=3 is refused by the cross-field rule (LASTING 5 > 3), RATE by its range, the
        // password because it is not live.
        let errors: Vec<String> = live.refused().iter().map(|r| r.error.clone()).collect();
        assert_eq!(
            errors,
            vec![
                "invalid value for LASTING: \"5\" (accepted: at most EVERY (3))".to_owned(),
                "invalid value for RATE: \"11\" (accepted: a number from 0 to 10)".to_owned(),
                "SASL_PASSWORD is not a live setting of this service".to_owned(),
            ]
        );
        assert!(live.applied().is_empty());
    }

    #[test]
    fn withdrawing_every_override_returns_to_the_start_up_values() {
        let mut live = toy();
        assert!(live.apply(&desired(&[("RATE", "3")])).is_some());
        let back = live.apply(&BTreeMap::new());
        assert_eq!(back.map(|t| t.rate), Some(1.0));
        assert_eq!(live.effective()["RATE"].source, ValueSource::Default);
    }

    #[test]
    fn secrets_are_masked() {
        let live = toy();
        assert_eq!(live.effective()["SASL_PASSWORD"].value, "********");
    }
}

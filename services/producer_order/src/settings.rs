//! The producer's typed settings, read once at start-up from defaults, `producer.env` and the
//! environment.
//!
//! Only what the order generator needs lives here; connection and logging settings are the
//! shared ones. Validation names the variable, the value and what is accepted.

use shared::settings::{
    ConnectionSettings, SettingsError, SettingsSource, Variable, common_variables,
};

/// How orders are paced (`MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bursts as fast as possible, `SLEEP_MS` apart.
    Burst,
    /// A constant rate.
    Steady,
    /// A rate rising linearly from a start to an end rate.
    Ramp,
    /// A steady rate with periodic spikes.
    Spike,
}

#[derive(Debug, Clone)]
#[expect(
    dead_code,
    reason = "the order generator (next issue) reads every field"
)]
pub struct ProducerSettings {
    pub connection: ConnectionSettings,
    pub order_topic: String,
    pub mode: Mode,
    /// Orders to send in total; 0 sends until stopped.
    pub total_events: u64,
    pub sleep_ms: u64,
}

pub fn variables() -> Vec<Variable> {
    let mut variables = common_variables();
    variables.extend([
        Variable::new(
            "ORDER_TOPIC",
            "order-events",
            "Topic the orders are written to.",
        ),
        Variable::new("MODE", "burst", "Pacing: burst, steady, ramp or spike."),
        Variable::new(
            "TOTAL_EVENTS",
            "1000",
            "Orders to send in total; 0 sends until stopped.",
        ),
        Variable::new(
            "SLEEP_MS",
            "1000",
            "Pause between bursts in burst mode, in milliseconds (0-3600000).",
        ),
    ]);
    variables
}

impl ProducerSettings {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        Ok(Self {
            connection: ConnectionSettings::from_source(source, "producer-order")?,
            order_topic: source.kafka_name("ORDER_TOPIC")?,
            mode: source.choice(
                "MODE",
                &[
                    ("burst", Mode::Burst),
                    ("steady", Mode::Steady),
                    ("ramp", Mode::Ramp),
                    ("spike", Mode::Spike),
                ],
            )?,
            total_events: source.integer("TOTAL_EVENTS", 0, u64::MAX)?,
            sleep_ms: source.integer("SLEEP_MS", 0, 3_600_000)?,
        })
    }
}

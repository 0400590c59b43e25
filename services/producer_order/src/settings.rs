//! The producer's typed settings, read once at start-up from defaults, `producer.env` and the
//! environment.
//!
//! Only what the order generator, its pacing and its producer need lives here; connection and
//! logging settings are the shared ones. Validation names the variable, the value and what is
//! accepted.

use std::time::Duration;

use shared::control::ControlTopics;
use shared::producer::ProducerConfig;
use shared::settings::producer::{producer_config, producer_variables};
use shared::settings::{
    ConnectionSettings, SettingsError, SettingsSource, Variable, common_variables,
};

use crate::pacing::Pacing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Burst,
    Steady,
    Ramp,
    Spike,
}

#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub connection: ConnectionSettings,
    pub order_topic: String,
    pub pacing: Pacing,
    /// Orders to send in total; 0 sends until stopped.
    pub total_events: u64,
    pub item_count: u32,
    pub skew: f64,
    pub seed: u64,
    pub customer_count: u32,
    pub progress_interval: Duration,
    pub create_topics: bool,
    pub topic_partitions: i32,
    pub replication_factor: i16,
    pub producer: ProducerConfig,
    /// The live control plane (`shared::control`).
    pub control: ControlTopics,
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
            "BURST_SIZE",
            "1000",
            "burst: orders per burst (1-10000000).",
        ),
        Variable::new(
            "SLEEP_MS",
            "1000",
            "burst: pause after each burst in milliseconds (0-3600000).",
        ),
        Variable::new(
            "RATE_PER_SEC",
            "1000",
            "steady and spike: orders per second (0.1-10000000).",
        ),
        Variable::new(
            "RATE_START",
            "100",
            "ramp: orders per second at the start (0-10000000).",
        ),
        Variable::new(
            "RATE_END",
            "10000",
            "ramp: orders per second at the end (0-10000000).",
        ),
        Variable::new(
            "RAMP_SEC",
            "60",
            "ramp: seconds from RATE_START to RATE_END (1-86400).",
        ),
        Variable::new(
            "SPIKE_EVERY_SEC",
            "30",
            "spike: seconds between spike starts (1-86400).",
        ),
        Variable::new(
            "SPIKE_DURATION_SEC",
            "5",
            "spike: seconds each spike lasts (1-86400).",
        ),
        Variable::new(
            "SPIKE_FACTOR",
            "10",
            "spike: rate multiplier during a spike (1-1000).",
        ),
        Variable::new("ITEM_COUNT", "100", "Distinct items ordered (1-1000000)."),
        Variable::new(
            "SKEW",
            "0",
            "Item popularity: 0 uniform, >0 Zipf exponent (0-5).",
        ),
        Variable::new(
            "SEED",
            "42",
            "Seed of the order generator: same seed, same orders.",
        ),
        Variable::new(
            "CUSTOMER_COUNT",
            "10000",
            "Distinct customers (1-100000000).",
        ),
        Variable::new(
            "PROGRESS_INTERVAL_SEC",
            "5",
            "Seconds between progress lines (1-3600).",
        ),
        Variable::new(
            "CREATE_TOPICS",
            "0",
            "1 creates ORDER_TOPIC if it is missing.",
        ),
        Variable::new(
            "TOPIC_PARTITIONS",
            "6",
            "Partitions of a created topic (1-10000).",
        ),
        Variable::new(
            "REPLICATION_FACTOR",
            "1",
            "Replication factor of a created topic (1-32).",
        ),
    ]);
    variables.extend(producer_variables());
    // The live control plane: where desired settings are read and status is written.
    variables.extend(shared::control::variables());
    variables
}

impl ProducerSettings {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        let mode = source.choice(
            "MODE",
            &[
                ("burst", Mode::Burst),
                ("steady", Mode::Steady),
                ("ramp", Mode::Ramp),
                ("spike", Mode::Spike),
            ],
        )?;
        let pacing = match mode {
            Mode::Burst => Pacing::Burst {
                size: source.integer("BURST_SIZE", 1, 10_000_000)?,
                pause: source.millis("SLEEP_MS", 0, 3_600_000)?,
            },
            Mode::Steady => Pacing::Steady {
                rate: source.number("RATE_PER_SEC", 0.1, 10_000_000.0)?,
            },
            Mode::Ramp => Pacing::Ramp {
                start: source.number("RATE_START", 0.0, 10_000_000.0)?,
                end: source.number("RATE_END", 0.0, 10_000_000.0)?,
                over: source.seconds("RAMP_SEC", 1, 86_400)?,
            },
            Mode::Spike => {
                let every = source.seconds("SPIKE_EVERY_SEC", 1, 86_400)?;
                let lasting = source.seconds("SPIKE_DURATION_SEC", 1, 86_400)?;
                if lasting > every {
                    return Err(SettingsError::invalid(
                        "SPIKE_DURATION_SEC",
                        &source.raw("SPIKE_DURATION_SEC"),
                        format!("at most SPIKE_EVERY_SEC ({})", every.as_secs()),
                    ));
                }
                Pacing::Spike {
                    base: source.number("RATE_PER_SEC", 0.1, 10_000_000.0)?,
                    factor: source.number("SPIKE_FACTOR", 1.0, 1000.0)?,
                    every,
                    lasting,
                }
            }
        };
        Ok(Self {
            connection: ConnectionSettings::from_source(source, "producer-order")?,
            order_topic: source.kafka_name("ORDER_TOPIC")?,
            pacing,
            total_events: source.integer("TOTAL_EVENTS", 0, u64::MAX)?,
            item_count: source.integer("ITEM_COUNT", 1, 1_000_000)?,
            skew: source.number("SKEW", 0.0, 5.0)?,
            seed: source.integer("SEED", 0, u64::MAX)?,
            customer_count: source.integer("CUSTOMER_COUNT", 1, 100_000_000)?,
            progress_interval: source.seconds("PROGRESS_INTERVAL_SEC", 1, 3600)?,
            create_topics: source.flag("CREATE_TOPICS")?,
            topic_partitions: source.integer("TOPIC_PARTITIONS", 1, 10_000)?,
            replication_factor: source.integer("REPLICATION_FACTOR", 1, 32)?,
            producer: producer_config(source)?,
            control: ControlTopics::from_source(source)?,
        })
    }
}

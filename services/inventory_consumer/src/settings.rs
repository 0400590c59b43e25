//! The inventory consumer's typed settings, read once at start-up from defaults,
//! `inventory.env` and the environment.
//!
//! Only what the stock rules and their consumer group need lives here; connection and logging
//! settings are the shared ones.

use std::time::Duration;

use shared::settings::{
    ConnectionSettings, SettingsError, SettingsSource, TopicWaitSettings, Variable,
    common_variables,
};

/// Where a group member starts when its group has no committed offset (`AUTO_OFFSET_RESET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail, naming the partition.
    None,
}

pub const OFFSET_RESET_CHOICES: &[(&str, OffsetReset)] = &[
    ("earliest", OffsetReset::Earliest),
    ("latest", OffsetReset::Latest),
    ("none", OffsetReset::None),
];

#[derive(Debug, Clone)]
#[expect(
    dead_code,
    reason = "the stock rules (their own issue) read every field"
)]
pub struct InventorySettings {
    pub connection: ConnectionSettings,
    pub order_topic: String,
    pub inventory_topic: String,
    pub group_id: String,
    pub auto_offset_reset: OffsetReset,
    pub fail_rate: f64,
    pub throttle: Duration,
    pub report_interval: Duration,
    pub topic_wait: TopicWaitSettings,
}

pub fn variables() -> Vec<Variable> {
    let mut variables = common_variables();
    variables.extend([
        Variable::new(
            "ORDER_TOPIC",
            "order-events",
            "Topic the orders are read from.",
        ),
        Variable::new(
            "INVENTORY_TOPIC",
            "inventory-events",
            "Topic one outcome per order is written to.",
        ),
        Variable::new("GROUP_ID", "inventory-service", "Consumer group id."),
        Variable::new(
            "AUTO_OFFSET_RESET",
            "earliest",
            "Start without a committed offset: earliest, latest or none (fail).",
        ),
        Variable::new(
            "FAIL_RATE",
            "0.0",
            "Probability (0.0-1.0) that processing an order fails (simulated).",
        ),
        Variable::new(
            "THROTTLE_MS",
            "0",
            "Extra delay per order in milliseconds (0-60000), to simulate slowness.",
        ),
        Variable::new(
            "REPORT_INTERVAL_SEC",
            "10",
            "Seconds between summary lines (1-3600).",
        ),
    ]);
    variables.extend(TopicWaitSettings::variables());
    variables
}

impl InventorySettings {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        Ok(Self {
            connection: ConnectionSettings::from_source(source, "inventory-consumer")?,
            order_topic: source.kafka_name("ORDER_TOPIC")?,
            inventory_topic: source.kafka_name("INVENTORY_TOPIC")?,
            group_id: source.kafka_name("GROUP_ID")?,
            auto_offset_reset: source.choice("AUTO_OFFSET_RESET", OFFSET_RESET_CHOICES)?,
            fail_rate: source.number("FAIL_RATE", 0.0, 1.0)?,
            throttle: source.millis("THROTTLE_MS", 0, 60_000)?,
            report_interval: source.seconds("REPORT_INTERVAL_SEC", 1, 3600)?,
            topic_wait: TopicWaitSettings::from_source(source)?,
        })
    }
}

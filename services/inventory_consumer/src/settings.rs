//! The inventory consumer's typed settings, read once at start-up from defaults,
//! `inventory.env` and the environment.
//!
//! Only what the stock rules and their consumer group need lives here; connection and logging
//! settings are the shared ones.

use std::time::Duration;

use shared::producer::ProducerConfig;
use shared::settings::producer::{producer_config, producer_variables};
use shared::settings::{
    ConnectionSettings, ConsumerFetchSettings, SettingsError, SettingsSource, TopicWaitSettings,
    Variable, common_variables,
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
pub struct InventorySettings {
    pub connection: ConnectionSettings,
    pub order_topic: String,
    pub inventory_topic: String,
    pub group_id: String,
    pub auto_offset_reset: OffsetReset,
    pub session_timeout: Duration,
    /// `PARTITION_ASSIGNMENT_STRATEGY`, validated: one rebalance protocol.
    pub assignors: Vec<String>,
    pub fail_rate: f64,
    pub throttle: Duration,
    pub report_interval: Duration,
    pub topic_wait: TopicWaitSettings,
    pub fetch: ConsumerFetchSettings,
    pub dlq_topic: String,
    pub state_topic: String,
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub initial_stock: i64,
    /// Every this often, add `RESTOCK_AMOUNT` to each known item; `None` = never.
    pub restock: Option<(Duration, i64)>,
    pub fail_seed: u64,
    pub create_topics: bool,
    pub replication_factor: i16,
    /// Batching, codec, time-outs and idempotence of the three output producers.
    pub producer: ProducerConfig,
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
            "PARTITION_ASSIGNMENT_STRATEGY",
            "cooperative-sticky",
            "Assignors offered to the group, in order of preference (Java's partition.assignment.strategy): a comma list of range, roundrobin or cooperative-sticky, eager and cooperative not mixed; cooperative-sticky (the default) moves only the partitions that change owner when MEMBERS or the instances change, so the others keep processing.",
        ),
        Variable::new(
            "SESSION_TIMEOUT_MS",
            "45000",
            "Group session timeout in ms (6000-1800000): silence after which the coordinator removes the member.",
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
        Variable::new(
            "DLQ_TOPIC",
            "inventory-dlq",
            "Dead-letter topic for failed and malformed orders.",
        ),
        Variable::new(
            "STATE_TOPIC",
            "inventory-state",
            "Compacted stock changelog, co-partitioned with ORDER_TOPIC.",
        ),
        Variable::new(
            "MAX_RETRIES",
            "3",
            "Retries of a failed attempt before the order fails (0-20).",
        ),
        Variable::new(
            "RETRY_BACKOFF_MS",
            "20",
            "First retry pause in milliseconds, doubling each retry (0-60000).",
        ),
        Variable::new(
            "INITIAL_STOCK",
            "1000",
            "Stock of an item seen for the first time (0-1000000000).",
        ),
        Variable::new(
            "RESTOCK_INTERVAL_SEC",
            "0",
            "Seconds between restocks of every known item; 0 = never (0-86400).",
        ),
        Variable::new(
            "RESTOCK_AMOUNT",
            "100",
            "Units added per item at each restock (1-1000000000).",
        ),
        Variable::new(
            "FAIL_SEED",
            "7",
            "Seed of the simulated failures (deterministic per order and attempt).",
        ),
        Variable::new(
            "CREATE_TOPICS",
            "0",
            "1 creates the inventory, dead-letter and changelog topics if missing.",
        ),
        Variable::new(
            "REPLICATION_FACTOR",
            "1",
            "Replication factor of created topics (1-32).",
        ),
    ]);
    variables.extend(TopicWaitSettings::variables());
    variables.extend(ConsumerFetchSettings::variables());
    // Its three output producers (outcomes, dead letters, changelog) share these.
    variables.extend(producer_variables());
    variables.extend(crate::live::variables());
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
            session_timeout: source.millis("SESSION_TIMEOUT_MS", 6_000, 1_800_000)?,
            assignors: assignment_strategy(source)?,
            fail_rate: source.number("FAIL_RATE", 0.0, 1.0)?,
            throttle: source.millis("THROTTLE_MS", 0, 60_000)?,
            report_interval: source.seconds("REPORT_INTERVAL_SEC", 1, 3600)?,
            topic_wait: TopicWaitSettings::from_source(source)?,
            fetch: ConsumerFetchSettings::from_source(source)?,
            dlq_topic: source.kafka_name("DLQ_TOPIC")?,
            state_topic: source.kafka_name("STATE_TOPIC")?,
            max_retries: source.integer("MAX_RETRIES", 0, 20)?,
            retry_backoff: source.millis("RETRY_BACKOFF_MS", 0, 60_000)?,
            initial_stock: source.integer("INITIAL_STOCK", 0, 1_000_000_000)?,
            restock: match source.integer("RESTOCK_INTERVAL_SEC", 0u64, 86_400)? {
                0 => None,
                seconds => Some((
                    Duration::from_secs(seconds),
                    source.integer("RESTOCK_AMOUNT", 1, 1_000_000_000)?,
                )),
            },
            fail_seed: source.integer("FAIL_SEED", 0, u64::MAX)?,
            create_topics: source.flag("CREATE_TOPICS")?,
            replication_factor: source.integer("REPLICATION_FACTOR", 1, 32)?,
            producer: producer_config(source)?,
        })
    }
}

/// `PARTITION_ASSIGNMENT_STRATEGY`, checked as the group member checks it.
fn assignment_strategy(source: &SettingsSource) -> Result<Vec<String>, SettingsError> {
    let raw = source.raw("PARTITION_ASSIGNMENT_STRATEGY");
    shared::group::config::parse_assignment_strategy(&raw)
        .map_err(|accepted| SettingsError::invalid("PARTITION_ASSIGNMENT_STRATEGY", &raw, accepted))
}

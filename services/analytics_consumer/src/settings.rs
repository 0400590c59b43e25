//! The analytics consumer's typed settings, read once at start-up from defaults,
//! `analytics.env` and the environment.
//!
//! Only what the static group member, the rolling window and the HTTP endpoint need lives
//! here; connection and logging settings are the shared ones.

use std::net::IpAddr;
use std::time::Duration;

use shared::settings::{
    ConnectionSettings, ConsumerFetchSettings, SettingsError, SettingsSource, TopicWaitSettings,
    Variable, common_variables,
};

#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    pub connection: ConnectionSettings,
    pub order_topic: String,
    pub inventory_topic: String,
    pub group_id: String,
    /// KIP-345 static membership; `None` joins as a dynamic member.
    pub group_instance_id: Option<String>,
    pub auto_offset_reset_earliest: bool,
    pub session_timeout: Duration,
    /// `PARTITION_ASSIGNMENT_STRATEGY`, validated: one rebalance protocol.
    pub assignors: Vec<String>,
    pub window: Duration,
    pub report_interval: Duration,
    pub http_host: IpAddr,
    pub http_port: u16,
    pub topic_wait: TopicWaitSettings,
    pub fetch: ConsumerFetchSettings,
    /// The ripple view and the control endpoint (`pipeline`, `control_api`).
    pub pipeline: crate::pipeline::PipelineSettings,
    /// The longest `/metrics` trails the counting while records flow.
    pub metrics_refresh: Duration,
}

pub fn variables() -> Vec<Variable> {
    let mut variables = common_variables();
    variables.extend([
        Variable::new("ORDER_TOPIC", "order-events", "Order topic to analyse."),
        Variable::new(
            "INVENTORY_TOPIC",
            "inventory-events",
            "Inventory outcome topic to analyse.",
        ),
        Variable::new("GROUP_ID", "analytics-service", "Consumer group id."),
        Variable::new(
            "GROUP_INSTANCE_ID",
            "analytics-1",
            "Static member id (KIP-345); empty joins as a dynamic member.",
        ),
        Variable::new(
            "AUTO_OFFSET_RESET",
            "earliest",
            "Where reading starts on every start (totals are rebuilt from the log; the group never commits): earliest or latest.",
        ),
        Variable::new(
            "PARTITION_ASSIGNMENT_STRATEGY",
            "range",
            "Assignors offered to the group, in order of preference (Java's partition.assignment.strategy): a comma list of range, roundrobin or cooperative-sticky, eager and cooperative not mixed; range (the default) keeps order partition N and inventory partition N on one member; the single static member never rebalances on restart anyway.",
        ),
        Variable::new(
            "SESSION_TIMEOUT_MS",
            "45000",
            "Group session timeout in ms (6000-1800000): silence after which the coordinator removes the member.",
        ),
        Variable::new(
            "WINDOW_SEC",
            "60",
            "Length of the rolling metrics window in seconds (1-3600).",
        ),
        Variable::new(
            "REPORT_INTERVAL_SEC",
            "1",
            "Seconds between snapshot refreshes and summary lines (1-3600).",
        ),
        Variable::new(
            "HTTP_HOST",
            "0.0.0.0",
            "Address the HTTP endpoint listens on.",
        ),
        Variable::new(
            "HTTP_PORT",
            "8080",
            "Port the HTTP endpoint listens on (1-65535).",
        ),
    ]);
    variables.extend(TopicWaitSettings::variables());
    variables.extend(ConsumerFetchSettings::variables());
    variables.extend(crate::pipeline::variables());
    variables.push(Variable::new(
        "METRICS_REFRESH_MS",
        "100",
        "While records flow, the longest /metrics trails the counting, in ms (10-60000); an idle consumer refreshes only every REPORT_INTERVAL_SEC.",
    ));
    variables
}

impl AnalyticsSettings {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        let http_host = source.raw("HTTP_HOST");
        Ok(Self {
            connection: ConnectionSettings::from_source(source, "analytics-consumer")?,
            order_topic: source.kafka_name("ORDER_TOPIC")?,
            inventory_topic: source.kafka_name("INVENTORY_TOPIC")?,
            group_id: source.kafka_name("GROUP_ID")?,
            group_instance_id: source.optional_kafka_name("GROUP_INSTANCE_ID")?,
            auto_offset_reset_earliest: source.choice(
                "AUTO_OFFSET_RESET",
                &[("earliest", true), ("latest", false)],
            )?,
            session_timeout: source.millis("SESSION_TIMEOUT_MS", 6_000, 1_800_000)?,
            assignors: assignment_strategy(source)?,
            window: source.seconds("WINDOW_SEC", 1, 3600)?,
            report_interval: source.seconds("REPORT_INTERVAL_SEC", 1, 3600)?,
            http_host: http_host.trim().parse().map_err(|_| {
                SettingsError::invalid(
                    "HTTP_HOST",
                    &http_host,
                    "an IPv4 or IPv6 address such as 0.0.0.0",
                )
            })?,
            http_port: source.integer("HTTP_PORT", 1, 65535)?,
            topic_wait: TopicWaitSettings::from_source(source)?,
            fetch: ConsumerFetchSettings::from_source(source)?,
            pipeline: crate::pipeline::PipelineSettings::from_source(source)?,
            metrics_refresh: source.millis("METRICS_REFRESH_MS", 10, 60_000)?,
        })
    }
}

/// `PARTITION_ASSIGNMENT_STRATEGY`, checked as the group member checks it.
fn assignment_strategy(source: &SettingsSource) -> Result<Vec<String>, SettingsError> {
    let raw = source.raw("PARTITION_ASSIGNMENT_STRATEGY");
    shared::group::config::parse_assignment_strategy(&raw)
        .map_err(|accepted| SettingsError::invalid("PARTITION_ASSIGNMENT_STRATEGY", &raw, accepted))
}

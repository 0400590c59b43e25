//! The group member's settings, named as the Java consumer names them so operators can carry
//! their knowledge (and their values) over.
//!
//! Plain data with the Java defaults; services fill it from their own settings. Validation of
//! cross-field rules (heartbeat below session timeout) happens in [`GroupConfig::validate`] so
//! a bad combination fails before any request is sent.

use std::time::Duration;

use super::fetch::FetchSettings;

/// Where to start reading a partition the group has no committed offset for
/// (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail with an error naming the partition.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// `group.id`
    pub group_id: String,
    /// `group.instance.id`: set for a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// The topics to subscribe to.
    pub topics: Vec<String>,
    /// `session.timeout.ms` (45000)
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (3000)
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (300000); also the JoinGroup rebalance timeout.
    pub max_poll_interval: Duration,
    /// `auto.offset.reset` (Java's default is latest).
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit` (true)
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (5000)
    pub auto_commit_interval: Duration,
    /// `partition.assignment.strategy`, in preference order (range first by default).
    pub assignors: Vec<String>,
    /// The most bytes one fetch may return for one partition (`max.partition.fetch.bytes`).
    pub max_partition_fetch_bytes: i32,
    /// How long the broker may hold a fetch waiting for data (`fetch.max.wait.ms`).
    pub fetch_max_wait: Duration,
    /// How much data the broker should gather before it answers (`fetch.min.bytes`).
    pub fetch_min_bytes: i32,
    /// The most one fetch response may carry (`fetch.max.bytes`).
    pub fetch_max_bytes: i32,
    /// Bytes fetched and not yet handed to the application, across all partitions
    /// (librdkafka's `queued.max.messages.kbytes`, in bytes): bounds memory whatever the
    /// partition count or the lag.
    pub queued_max_bytes: usize,
    /// Fetched batches buffered per partition ahead of the application.
    pub prefetch_batches: usize,
    /// Time allowed for each request except JoinGroup.
    pub request_timeout: Duration,
}

impl GroupConfig {
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            group_id: group_id.into(),
            group_instance_id: None,
            topics,
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            assignors: vec!["range".into(), "roundrobin".into()],
            max_partition_fetch_bytes: 1024 * 1024,
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            queued_max_bytes: 8 * 1024 * 1024,
            prefetch_batches: 2,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Sets `session.timeout.ms` and keeps the heartbeat at Java's 3 s, or a third of the
    /// session when that is shorter, as Java's documentation asks, so two heartbeats can be
    /// lost before the coordinator gives up on the member.
    pub fn with_session_timeout(mut self, session_timeout: Duration) -> Self {
        self.session_timeout = session_timeout;
        self.heartbeat_interval = Duration::from_millis(3_000).min(session_timeout / 3);
        self
    }

    /// Takes the fetch settings a service read from its environment.
    pub fn with_fetch(mut self, fetch: &crate::settings::ConsumerFetchSettings) -> Self {
        self.fetch_max_wait = fetch.max_wait;
        self.fetch_min_bytes = fetch.min_bytes;
        self.queued_max_bytes = fetch.queued_max_bytes;
        self
    }

    /// Java sizes the JoinGroup timeout as the rebalance timeout plus 5 s, since the broker
    /// may hold a JoinGroup that long.
    pub fn join_timeout(&self) -> Duration {
        (self.max_poll_interval + Duration::from_secs(5)).max(self.request_timeout)
    }

    /// What the fetcher needs of these settings.
    pub fn fetch_settings(&self) -> FetchSettings {
        FetchSettings {
            max_wait: self.fetch_max_wait,
            min_bytes: self.fetch_min_bytes,
            max_bytes: self.fetch_max_bytes,
            partition_max_bytes: self.max_partition_fetch_bytes,
            queued_max_bytes: self.queued_max_bytes,
            prefetch_batches: self.prefetch_batches,
            reset: self.auto_offset_reset,
            request_timeout: self.request_timeout,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.group_id.is_empty() {
            return Err("group.id must not be empty".into());
        }
        if self.topics.is_empty() {
            return Err("subscribe to at least one topic".into());
        }
        if self.heartbeat_interval >= self.session_timeout {
            return Err(format!(
                "heartbeat.interval.ms ({:?}) must be below session.timeout.ms ({:?})",
                self.heartbeat_interval, self.session_timeout
            ));
        }
        if self.assignors.is_empty() {
            return Err("partition.assignment.strategy needs at least one assignor".into());
        }
        let mut protocols = Vec::new();
        for name in &self.assignors {
            let assignor = super::assignor::assignor_by_name(name).ok_or_else(|| {
                format!(
                    "unknown partition.assignment.strategy {name:?} (accepted: range, roundrobin, cooperative-sticky)"
                )
            })?;
            protocols.push(assignor.protocol());
        }
        // librdkafka's rule: one member must not offer eager and cooperative strategies at
        // once, since the group could then pick either rebalance protocol.
        if protocols.windows(2).any(|pair| pair[0] != pair[1]) {
            return Err("partition.assignment.strategy must not mix eager (range, roundrobin) and cooperative (cooperative-sticky) assignors".into());
        }
        if self.fetch_min_bytes < 1
            || self.fetch_max_bytes < 1
            || self.max_partition_fetch_bytes < 1
        {
            return Err(
                "fetch.min.bytes, fetch.max.bytes and max.partition.fetch.bytes must be positive"
                    .into(),
            );
        }
        if self.prefetch_batches == 0 {
            return Err("prefetch must hold at least one batch per partition".into());
        }
        Ok(())
    }
}

/// What `PARTITION_ASSIGNMENT_STRATEGY` accepts, for settings errors.
pub const ASSIGNMENT_STRATEGY_ACCEPTED: &str = "a comma list of range, roundrobin (eager) or \
    cooperative-sticky (cooperative), not mixing the two kinds, e.g. \"cooperative-sticky\" or \
    \"range,roundrobin\"";

/// Parses Java's `partition.assignment.strategy`: a comma list of assignor names in order of
/// preference, validated as [`GroupConfig::validate`] does (known names, no eager and
/// cooperative mix, as librdkafka refuses one). `Err` carries what is accepted.
pub fn parse_assignment_strategy(text: &str) -> Result<Vec<String>, &'static str> {
    let names: Vec<String> = text
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let mut config = GroupConfig::new("validate", vec!["validate".into()]);
    config.assignors = names.clone();
    match config.validate() {
        Ok(()) => Ok(names),
        Err(_) => Err(ASSIGNMENT_STRATEGY_ACCEPTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GroupConfig {
        GroupConfig::new("g", vec!["t".into()])
    }

    #[test]
    fn the_java_defaults_validate() {
        assert_eq!(config().validate(), Ok(()));
        assert_eq!(config().assignors, vec!["range", "roundrobin"]);
        assert_eq!(config().session_timeout, Duration::from_secs(45));
    }

    #[test]
    fn a_heartbeat_as_long_as_the_session_is_rejected() {
        let mut config = config();
        config.heartbeat_interval = config.session_timeout;
        assert!(config.validate().is_err());
    }

    #[test]
    fn eager_and_cooperative_assignors_must_not_be_mixed() {
        let mut config = config();
        config.assignors = vec!["range".into(), "cooperative-sticky".into()];
        assert!(config.validate().unwrap_err().contains("must not mix"));
        config.assignors = vec!["cooperative-sticky".into()];
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn the_strategy_setting_takes_a_comma_list_and_refuses_a_mix_or_an_unknown_name() {
        assert_eq!(
            parse_assignment_strategy(" Cooperative-Sticky "),
            Ok(vec!["cooperative-sticky".to_owned()])
        );
        assert_eq!(
            parse_assignment_strategy("range,roundrobin"),
            Ok(vec!["range".to_owned(), "roundrobin".to_owned()])
        );
        assert!(parse_assignment_strategy("range,cooperative-sticky").is_err());
        assert!(parse_assignment_strategy("sticky").is_err());
        assert!(parse_assignment_strategy("").is_err());
    }

    #[test]
    fn an_unknown_assignor_is_named() {
        let mut config = config();
        config.assignors = vec!["sticky".into()];
        assert!(config.validate().unwrap_err().contains("\"sticky\""));
    }

    #[test]
    fn a_short_session_brings_the_heartbeat_down_to_a_third_of_it() {
        let short = config().with_session_timeout(Duration::from_secs(6));
        assert_eq!(short.heartbeat_interval, Duration::from_secs(2));
        let long = config().with_session_timeout(Duration::from_secs(60));
        assert_eq!(long.heartbeat_interval, Duration::from_secs(3));
        assert!(short.validate().is_ok());
    }

    #[test]
    fn the_join_timeout_exceeds_the_rebalance_timeout_by_five_seconds() {
        assert_eq!(config().join_timeout(), Duration::from_secs(305));
    }
}

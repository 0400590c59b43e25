//! The fetch settings both consumers share, named as the Java consumer (`fetch.max.wait.ms`,
//! `fetch.min.bytes`) and librdkafka (`queued.max.messages.kbytes`) name them.
//!
//! Only reading and validating; the services put the values into their group settings. The
//! defaults are the embedded broker's (Nisshi), whose fetch long-poll never wakes when data is
//! produced: it re-reads after half the remaining wait, so the wait is the latency floor.
//! Against a real Kafka, which wakes parked fetches, Java's 500 ms costs no latency and fewer
//! requests; the compose stacks on Kafka set it.

use std::time::Duration;

use super::{SettingsError, SettingsSource, Variable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerFetchSettings {
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub queued_max_bytes: usize,
}

impl ConsumerFetchSettings {
    pub fn variables() -> Vec<Variable> {
        vec![
            Variable::new(
                "FETCH_MAX_WAIT_MS",
                "10",
                "Longest time in ms the broker may hold a fetch that found too little (0-30000; Java's fetch.max.wait.ms).",
            ),
            Variable::new(
                "FETCH_MIN_BYTES",
                "1",
                "Bytes the broker gathers before answering a fetch early (1-52428800; Java's fetch.min.bytes).",
            ),
            Variable::new(
                "QUEUED_MAX_MESSAGES_KBYTES",
                "8192",
                "KiB fetched ahead of processing across all partitions (64-2097151; librdkafka's queued.max.messages.kbytes).",
            ),
        ]
    }

    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        Ok(Self {
            max_wait: source.millis("FETCH_MAX_WAIT_MS", 0, 30_000)?,
            min_bytes: source.integer("FETCH_MIN_BYTES", 1, 52_428_800)?,
            queued_max_bytes: source.integer("QUEUED_MAX_MESSAGES_KBYTES", 64usize, 2_097_151)?
                * 1024,
        })
    }
}

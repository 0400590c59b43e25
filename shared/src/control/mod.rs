//! The live control plane over Kafka: a compacted control topic holds the desired live
//! settings (key `service/SETTING`, latest wins, a tombstone returns to the start-up value)
//! and one-off commands; a status topic carries what every running instance says about
//! itself. Services read the one and write the other; analytics reads the status and writes
//! the control records.
//!
//! Mechanism only: which settings are live, what a command does and what a status says are
//! the services' business. Both topics have one partition, because every reader needs every
//! record and ordering per key is all that matters.
//!
//! Footprint, on a broker whose memory storage never compacts: a figures record measured
//! 146 bytes of key and value, ~215 with its batch header and framing; one every 10 s per
//! instance is 8,640 a day, 1.9 MB. Settings (~2.4 KB), members and command acknowledgements
//! are written only when they change. So a playground of three services adds ~5.6 MB a day
//! (five instances with `--scale inventory=3`: ~9.3 MB) plus ~2.4 KB per live change per
//! instance; the control topic adds ~100 bytes per write. Figures once a second would be
//! 19 MB a day per instance, which is why the live rates are measured by analytics from the
//! data topics (end offsets, outcomes) instead.

pub mod live;
pub mod reader;
pub mod record;
pub mod rule;
pub mod status;
pub mod tail;

pub use live::{Baseline, EffectiveValue, LiveSettings, Refusal, ValueSource, is_secret};
pub use reader::{ControlReader, ControlState};
pub use record::{Command, ControlRecord, ControlRecordError};
pub use rule::LiveRule;
pub use status::{StatusBoard, StatusIdentity, StatusPart, StatusRecord, StuckPartition};

use crate::admin::TopicSpec;
use crate::settings::{SettingsError, SettingsSource, Variable};

pub const DEFAULT_CONTROL_TOPIC: &str = "pipeline-control";
pub const DEFAULT_STATUS_TOPIC: &str = "pipeline-status";

/// The variables every service that takes part declares.
pub fn variables() -> Vec<Variable> {
    vec![
        Variable::new(
            "CONTROL_TOPIC",
            DEFAULT_CONTROL_TOPIC,
            "Compacted topic of desired live settings and commands (key service/SETTING).",
        ),
        Variable::new(
            "STATUS_TOPIC",
            DEFAULT_STATUS_TOPIC,
            "Topic every service publishes its settings, counters and group members to.",
        ),
    ]
}

/// Where the control plane lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlTopics {
    pub control: String,
    pub status: String,
}

impl ControlTopics {
    pub fn from_source(source: &SettingsSource) -> Result<Self, SettingsError> {
        Ok(Self {
            control: source.kafka_name("CONTROL_TOPIC")?,
            status: source.kafka_name("STATUS_TOPIC")?,
        })
    }

    /// Both topics as whoever creates the pipeline's topics should create them: one
    /// partition, compacted (latest per key is all a reader needs).
    pub fn specs(&self, replication_factor: i16) -> Vec<TopicSpec> {
        [&self.control, &self.status]
            .into_iter()
            .map(|name| {
                TopicSpec::new(name, 1, replication_factor).with_config("cleanup.policy", "compact")
            })
            .collect()
    }
}

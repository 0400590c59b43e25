//! Writing control records: one produce request per accepted `POST /control`, so the values
//! of one request land together, in order, or not at all.
//!
//! It writes through rskafka's partition client because a reset must be a real tombstone
//! (a null value), which compaction understands; the shared producer always writes a value.
//! The partition client is made per write: writes are rare, and a control topic that was
//! deleted and recreated is then simply found again.

use std::time::Duration;

use rskafka::client::partition::{Compression, UnknownTopicHandling};
use shared::control::ControlRecord;
use shared::settings::ConnectionSettings;

const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ControlWriter {
    connection: ConnectionSettings,
    topic: String,
}

impl ControlWriter {
    pub fn new(connection: ConnectionSettings, topic: String) -> Self {
        Self { connection, topic }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes the records in one request; returns their offsets.
    pub async fn write(&self, records: &[ControlRecord]) -> Result<Vec<i64>, String> {
        let encoded = records
            .iter()
            .map(ControlRecord::to_record)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let attempt = async {
            let client = shared::connect::data_client(&self.connection, WRITE_TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            let partition = client
                .partition_client(self.topic.clone(), 0, UnknownTopicHandling::Error)
                .await
                .map_err(|e| format!("{}: {e}", self.topic))?;
            partition
                .produce(encoded, Compression::NoCompression)
                .await
                .map_err(|e| format!("{}: {e}", self.topic))
        };
        tokio::time::timeout(WRITE_TIMEOUT, attempt)
            .await
            .map_err(|_| format!("writing to {} timed out", self.topic))?
    }
}

//! One fetcher task per assigned partition: it reads through rskafka's partition client from a
//! start position and hands batches to the consumer through a small bounded channel.
//!
//! The bound is the back-pressure: a fetcher whose channel is full waits, so memory is at most
//! `prefetch_batches` fetch responses per partition however large the lag. It must not commit
//! or decide anything about the group; it only reads and reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rskafka::client::Client;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::GroupError;
use super::config::OffsetReset;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One record as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: BTreeMap<String, Vec<u8>>,
    pub timestamp: DateTime<Utc>,
}

/// Where a fetcher starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The group's committed offset.
    Committed(i64),
    /// No committed offset: apply `auto.offset.reset`.
    Reset(OffsetReset),
}

/// What a fetcher sends.
#[derive(Debug)]
pub enum FetchItem {
    Batch {
        records: Vec<ConsumerRecord>,
        high_watermark: i64,
    },
    Failed(GroupError),
}

#[derive(Debug, Clone, Copy)]
pub struct FetchSettings {
    pub max_bytes: i32,
    pub max_wait: Duration,
    pub prefetch_batches: usize,
    /// Applied when the position falls out of the log (retention or truncation).
    pub reset: OffsetReset,
}

const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Starts the fetcher of one partition at `position`; returns its channel and its task.
pub fn spawn(
    client: Arc<Client>,
    partition: TopicPartition,
    position: i64,
    settings: FetchSettings,
) -> (mpsc::Receiver<FetchItem>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(settings.prefetch_batches);
    let task = tokio::spawn(async move {
        let fetcher = Fetcher {
            client,
            topic: Arc::from(partition.topic.as_str()),
            partition,
            settings,
            sender,
        };
        fetcher.run(position).await;
    });
    (receiver, task)
}

struct Fetcher {
    client: Arc<Client>,
    topic: Arc<str>,
    partition: TopicPartition,
    settings: FetchSettings,
    sender: mpsc::Sender<FetchItem>,
}

impl Fetcher {
    async fn run(self, mut position: i64) {
        let Some(client) = partition_client(&self.client, &self.partition, &self.sender).await
        else {
            return;
        };
        let reset = self.settings.reset;
        let max_wait_ms = i32::try_from(self.settings.max_wait.as_millis()).unwrap_or(i32::MAX);
        loop {
            if self.sender.is_closed() {
                return;
            }
            match client
                .fetch_records(position, 1..self.settings.max_bytes.max(2), max_wait_ms)
                .await
            {
                Ok((fetched, high_watermark)) => {
                    // A compressed batch can start before the position asked for.
                    let records: Vec<ConsumerRecord> = fetched
                        .into_iter()
                        .filter(|r| r.offset >= position)
                        .map(|r| ConsumerRecord {
                            topic: Arc::clone(&self.topic),
                            partition: self.partition.partition,
                            offset: r.offset,
                            key: r.record.key,
                            value: r.record.value,
                            headers: r.record.headers,
                            timestamp: r.record.timestamp,
                        })
                        .collect();
                    let Some(last) = records.last() else {
                        continue;
                    };
                    position = last.offset + 1;
                    let batch = FetchItem::Batch {
                        records,
                        high_watermark,
                    };
                    if self.sender.send(batch).await.is_err() {
                        return;
                    }
                }
                Err(ClientError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                }) => {
                    let policy = if reset == OffsetReset::None {
                        OffsetReset::Earliest
                    } else {
                        reset
                    };
                    tracing::warn!(partition = %self.partition, position, ?policy, "offset out of range; resetting");
                    match reset_position(&client, &self.partition, policy).await {
                        Ok(reset_to) => position = reset_to,
                        Err(e) => {
                            let _ = self.sender.send(FetchItem::Failed(e)).await;
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(partition = %self.partition, error = %e, "fetch failed; retrying");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
            }
        }
    }
}

/// A partition client, retrying while the topic's metadata is not there yet; `None` if the
/// consumer stopped listening meanwhile.
async fn partition_client(
    client: &Client,
    partition: &TopicPartition,
    sender: &mpsc::Sender<FetchItem>,
) -> Option<PartitionClient> {
    loop {
        match client
            .partition_client(
                partition.topic.clone(),
                partition.partition,
                UnknownTopicHandling::Retry,
            )
            .await
        {
            Ok(client) => return Some(client),
            Err(e) => {
                tracing::warn!(%partition, error = %e, "no partition client yet; retrying");
                if sender.is_closed() {
                    return None;
                }
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// Resolves where a partition without a committed offset starts, as `auto.offset.reset`
/// says; `none` is an error naming the partition.
pub async fn resolve_start(
    client: &Client,
    partition: &TopicPartition,
    start: StartOffset,
) -> Result<i64, GroupError> {
    match start {
        StartOffset::Committed(offset) => Ok(offset),
        StartOffset::Reset(OffsetReset::None) => Err(GroupError::NoCommittedOffset {
            topic: partition.topic.clone(),
            partition: partition.partition,
        }),
        StartOffset::Reset(policy) => {
            let partition_client = client
                .partition_client(
                    partition.topic.clone(),
                    partition.partition,
                    UnknownTopicHandling::Retry,
                )
                .await
                .map_err(|e| GroupError::Data(e.to_string()))?;
            reset_position(&partition_client, partition, policy).await
        }
    }
}

async fn reset_position(
    client: &PartitionClient,
    partition: &TopicPartition,
    policy: OffsetReset,
) -> Result<i64, GroupError> {
    let at = match policy {
        OffsetReset::Latest => OffsetAt::Latest,
        OffsetReset::Earliest | OffsetReset::None => OffsetAt::Earliest,
    };
    let mut attempts = 0;
    loop {
        match client.get_offset(at).await {
            Ok(offset) => return Ok(offset),
            Err(e) if attempts < 20 => {
                attempts += 1;
                tracing::warn!(%partition, error = %e, "list offsets failed; retrying");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            Err(e) => return Err(GroupError::Data(e.to_string())),
        }
    }
}

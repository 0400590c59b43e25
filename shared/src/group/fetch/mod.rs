//! The consumer's read path: one fetcher task per consumer sends one multi-partition Fetch per
//! leader broker (as the Java client and librdkafka do), over one connection per broker however
//! many partitions it leads, and hands each partition's records to the consumer through a small
//! per-partition channel.
//!
//! Memory is bounded in bytes across all partitions (librdkafka's `queued.max.messages.kbytes`
//! is the model): a [`FetchBudget`] counts what has been fetched and not yet taken by the
//! application, each request asks for no more than what is left, and a batch gives its bytes
//! back when the consumer hands it over. So memory grows neither with partition count nor with
//! lag. The fetcher reads and reports; it must not commit or decide anything about the group.
//! A batch that does not decode pauses only its partition, says so once, and is retried
//! every minute — never a silent skip, never a hot loop.

mod batch;
mod brokers;
pub mod compression;

mod budget;
mod gaps;
mod positions;
mod session;

pub use batch::{
    AbortedTransactions, BatchError, BatchFault, ConsumerRecord, Decoded, OffsetGap, RecordHeader,
    decode, encode,
};

pub use budget::{BudgetShare, FetchBudget};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::GroupError;
use super::config::OffsetReset;
use crate::settings::ConnectionSettings;
use crate::wire::BrokerConnection;
use session::Session;

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

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The group's committed offset.
    Committed(i64),
    /// No committed offset: apply `auto.offset.reset`.
    Reset(OffsetReset),
}

/// What the fetcher sends for one partition.
#[derive(Debug)]
pub enum FetchItem {
    Batch {
        records: Vec<ConsumerRecord>,
        high_watermark: i64,
        /// Gives the batch's bytes back to the budget when dropped.
        share: BudgetShare,
    },
    /// The partition's next batch does not decode: the partition is paused there.
    Stuck(BatchError),
    Failed(GroupError),
}

#[derive(Debug, Clone, Copy)]
pub struct FetchSettings {
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch that found too little.
    pub max_wait: Duration,
    /// `fetch.min.bytes`: how much data the broker should gather before answering early.
    pub min_bytes: i32,
    /// `fetch.max.bytes`: the most one response may carry.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`: the most one partition may add to a response.
    pub partition_max_bytes: i32,
    /// `queued.max.messages.kbytes` (in bytes): fetched but not yet taken, across partitions.
    pub queued_max_bytes: usize,
    /// Batches buffered per partition ahead of the application.
    pub prefetch_batches: usize,
    /// Applied when the position falls out of the log (retention or truncation).
    pub reset: OffsetReset,
    /// Time allowed for each request beyond `max_wait`.
    pub request_timeout: Duration,
}

/// A partition the fetcher now reads, with the channel its records come through.
#[derive(Debug)]
pub struct AssignedPartition {
    pub partition: TopicPartition,
    pub position: i64,
    pub receiver: mpsc::Receiver<FetchItem>,
}

pub(super) enum Command {
    Assign {
        partitions: Vec<(TopicPartition, StartOffset)>,
        reply: oneshot::Sender<Result<Vec<AssignedPartition>, GroupError>>,
    },
    Remove(Vec<TopicPartition>),
    EndOffsets {
        partitions: Vec<TopicPartition>,
        reply: oneshot::Sender<Result<HashMap<TopicPartition, i64>, GroupError>>,
    },
}

/// The handle of a consumer's fetcher task; dropping it stops the task.
#[derive(Debug)]
pub struct Fetcher {
    commands: mpsc::UnboundedSender<Command>,
    budget: Arc<FetchBudget>,
    task: JoinHandle<()>,
}

impl Fetcher {
    /// Starts the fetcher; `bootstrap` is an open connection to any broker, used for metadata.
    pub fn start(
        connection: &ConnectionSettings,
        bootstrap: BrokerConnection,
        settings: FetchSettings,
    ) -> Self {
        let budget = FetchBudget::new(settings.queued_max_bytes);
        let (commands, receiver) = mpsc::unbounded_channel();
        let session = Session::new(connection.clone(), settings, Arc::clone(&budget), bootstrap);
        let task = tokio::spawn(session.run(receiver));
        Self {
            commands,
            budget,
            task,
        }
    }

    /// Starts reading `partitions` from their start offsets (resolving `auto.offset.reset`
    /// first), returning each one's position and channel.
    pub async fn assign(
        &self,
        partitions: Vec<(TopicPartition, StartOffset)>,
    ) -> Result<Vec<AssignedPartition>, GroupError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Assign { partitions, reply })
            .map_err(|_| GroupError::Closed)?;
        answer.await.map_err(|_| GroupError::Closed)?
    }

    /// Stops reading `partitions`; what was queued for them is dropped with their channels.
    pub fn remove(&self, partitions: Vec<TopicPartition>) {
        let _ = self.commands.send(Command::Remove(partitions));
    }

    /// Bytes fetched and not yet handed to the application.
    pub fn queued_bytes(&self) -> usize {
        self.budget.used()
    }

    /// Each partition's end (its last stable offset, as we read committed), asked of its
    /// leader: where a reader that wants "everything there is now" stops.
    pub async fn end_offsets(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Result<HashMap<TopicPartition, i64>, GroupError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::EndOffsets { partitions, reply })
            .map_err(|_| GroupError::Closed)?;
        answer.await.map_err(|_| GroupError::Closed)?
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! The shared producer: records are grouped per partition into batches (sent when full or
//! after `linger`), one Produce request per broker carries a ready batch of each partition it
//! leads, up to `max_in_flight_per_partition` requests are in flight per partition and per
//! broker connection, a retry never reorders a partition, and each record's delivery (its
//! offset, or why it failed) is reported. Idempotent by default (KIP-98): a producer id, epoch and
//! per-partition sequence on every batch, so a retried batch is never written twice.
//!
//! One accumulator task owns the pending batches; callers hand it records through a channel.
//! Memory is bounded by a byte semaphore taken at `send` — each record's encoded size plus what
//! it holds in memory (`budget`) — and given back as the batch is encoded and acknowledged, so a
//! slow broker pushes back on the caller instead of growing a queue. Counting happens per
//! batch, never with a task per record.

mod accumulator;
pub mod batch;
pub mod budget;
mod errors;
mod identity;
mod partition;
pub mod partitioner;
mod pipeline;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::admin;
use crate::backoff::{Backoff, BackoffPolicy};
use crate::connect;
use crate::settings::ConnectionSettings;
use accumulator::Accumulator;
use budget::RecordCost;
use identity::IdentityRequest;

/// Kafka's batch codecs (`compression.type`), all pure Rust (see `batch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    /// xerial-framed, as the Java client writes it.
    Snappy,
    /// The LZ4 frame format.
    Lz4,
    Zstd,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// How long a batch waits for more records (`linger.ms`).
    pub linger: Duration,
    /// A batch is sent once it holds about this many bytes.
    pub batch_max_bytes: usize,
    /// Bytes of records accepted but not yet acknowledged (`buffer.memory`).
    pub buffer_memory_bytes: usize,
    pub compression: Compression,
    /// A record not acknowledged within this time fails (`delivery.timeout.ms`).
    pub delivery_timeout: Duration,
    /// First pause before retrying a failed produce; doubles up to 1 s.
    pub retry_backoff: Duration,
    /// Time for one produce request's answer (`request.timeout.ms`), also sent as the broker's
    /// replication wait.
    pub request_timeout: Duration,
    /// Producer id, epoch and sequences on every batch (`enable.idempotence`; needs acks=all,
    /// the only mode).
    pub idempotence: bool,
    /// Produce requests in flight per partition, and per broker connection
    /// (`max.in.flight.requests.per.connection`, 1-5; above 1 only with idempotence, which
    /// keeps them in order on retry).
    pub max_in_flight_per_partition: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_max_bytes: 512 * 1024,
            buffer_memory_bytes: 32 * 1024 * 1024,
            compression: Compression::None,
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(30),
            idempotence: true,
            max_in_flight_per_partition: 5,
        }
    }
}

impl ProducerConfig {
    /// Requests in flight per partition and per broker connection as the producer applies it:
    /// 1 without idempotence (whatever is configured, so retries cannot reorder), else 1-5.
    pub fn in_flight_limit(&self) -> usize {
        if self.idempotence {
            self.max_in_flight_per_partition.clamp(1, 5)
        } else {
            1
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Header names are usually constants: `Cow` lets them cost no allocation.
    pub headers: Vec<(Cow<'static, str>, bytes::Bytes)>,
    pub timestamp: DateTime<Utc>,
    /// Overrides the partitioner.
    pub partition: Option<i32>,
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    /// The record's offset; `None` when the broker answered DUPLICATE_SEQUENCE_NUMBER (Nisshi's
    /// SQL engines do): the record *is* written, once, by an earlier attempt whose answer was
    /// lost, and the broker does not say at which offset. Kafka and Nisshi's memory engine
    /// answer such a retry with the original offset instead. Java reports the same case as
    /// offset -1 (`RecordMetadata.hasOffset() == false`).
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProduceError {
    #[error("topic {0} does not exist or has no partitions")]
    UnknownTopic(String),
    #[error("listing topics: {0}")]
    Metadata(String),
    #[error("record of {size} bytes exceeds the producer's {limit}-byte buffer")]
    RecordTooLarge { size: usize, limit: usize },
    #[error("partition {partition} does not exist (the topic has {partitions})")]
    BadPartition { partition: i32, partitions: i32 },
    #[error("not acknowledged by the broker within {timeout:?}: {reason}")]
    DeliveryFailed { timeout: Duration, reason: String },
    #[error("no producer id for the idempotent producer: {0}")]
    ProducerId(String),
    #[error("the producer has stopped")]
    Closed,
}

/// What the producer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducerStats {
    /// Records accepted by `send`.
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    /// Bytes of `BUFFER_MEMORY_BYTES` taken by records not yet acknowledged.
    pub buffered_bytes: u64,
    /// The idempotent producer's id and epoch (`None` without idempotence).
    pub identity: Option<(i64, i16)>,
    /// Epoch bumps and new producer ids since start (each after a sequence or epoch error, or
    /// a batch that failed after it may have been written).
    pub identity_changes: u64,
}

impl ProducerStats {
    pub fn in_flight(&self) -> u64 {
        self.sent - self.acknowledged - self.failed
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    /// New identities taken after the first (epoch bumps and new producer ids).
    identity_changes: AtomicU64,
    /// The current producer id and epoch; -1 without idempotence.
    producer_id: AtomicI64,
    producer_epoch: AtomicI64,
}

impl Counters {
    fn set_identity(&self, identity: Option<batch::ProducerIdentity>) {
        let (id, epoch) = identity.map_or((-1, -1), |i| (i.id, i64::from(i.epoch)));
        self.producer_id.store(id, Ordering::Relaxed);
        self.producer_epoch.store(epoch, Ordering::Relaxed);
    }
}

/// Resolves to a record's delivery once its batch completes.
#[derive(Debug)]
pub struct DeliveryTicket(oneshot::Receiver<Result<Delivery, ProduceError>>);

impl DeliveryTicket {
    pub async fn delivered(self) -> Result<Delivery, ProduceError> {
        self.0.await.unwrap_or(Err(ProduceError::Closed))
    }
}

type Reply = oneshot::Sender<Result<Delivery, ProduceError>>;

/// A record on its way to the accumulator, with the memory it holds.
struct Queued {
    partition: i32,
    record: OutgoingRecord,
    cost: RecordCost,
    permit: OwnedSemaphorePermit,
    reply: Option<Reply>,
}

enum Message {
    Records(Vec<Queued>),
    Flush(oneshot::Sender<()>),
}

/// A cloneable handle on one topic's producer.
#[derive(Debug, Clone)]
pub struct Producer {
    topic: Arc<str>,
    partitions: i32,
    sender: mpsc::Sender<Message>,
    memory: Arc<Semaphore>,
    buffer_limit: usize,
    counters: Arc<Counters>,
    next_unkeyed: Arc<AtomicU64>,
}

impl Producer {
    /// A producer for `topic`, whose partitions and their leaders are read once here.
    pub async fn new(
        settings: &ConnectionSettings,
        topic: &str,
        config: ProducerConfig,
        connect_deadline: Duration,
    ) -> Result<Self, ProduceError> {
        // A connection that breaks or answers garbage here is retried on a new one until the
        // deadline, as Java's producer retries metadata until max.block.ms.
        let mut backoff = Backoff::with_deadline(BackoffPolicy::REQUESTS, connect_deadline);
        let leaders = loop {
            let mut bootstrap = connect::broker_connection(settings, connect_deadline)
                .await
                .map_err(|e| ProduceError::Metadata(e.to_string()))?;
            match admin::partition_leaders(&mut bootstrap, topic).await {
                Err(admin::AdminError::Wire(e))
                    if e.is_transient() && backoff.wait().await.is_ok() =>
                {
                    tracing::warn!(error = %e, "reading the topic's partitions failed; retrying");
                }
                result => break result,
            }
        }
        .map_err(|e| match e {
            admin::AdminError::Metadata(_) => ProduceError::UnknownTopic(topic.to_owned()),
            other => ProduceError::Metadata(other.to_string()),
        })?;
        let partitions = leaders.len() as i32;
        let identity = match config.idempotence {
            true => Some(
                identity::obtain(
                    settings,
                    IdentityRequest::Fresh,
                    config.request_timeout,
                    connect_deadline,
                )
                .await
                .map_err(ProduceError::ProducerId)?,
            ),
            false => None,
        };
        let counters = Arc::new(Counters::default());
        counters.set_identity(identity);
        let (sender, receiver) = mpsc::channel(4096);
        let buffer_limit = config.buffer_memory_bytes.min(Semaphore::MAX_PERMITS);
        Accumulator::start(
            settings.clone(),
            Arc::from(topic),
            config,
            leaders,
            identity,
            Arc::clone(&counters),
            receiver,
        );
        Ok(Self {
            topic: Arc::from(topic),
            partitions,
            sender,
            memory: Arc::new(Semaphore::new(buffer_limit)),
            buffer_limit,
            counters,
            next_unkeyed: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// The partition a record will go to.
    pub fn partition_for(&self, record: &OutgoingRecord) -> Result<i32, ProduceError> {
        match (record.partition, &record.key) {
            (Some(partition), _) if (0..self.partitions).contains(&partition) => Ok(partition),
            (Some(partition), _) => Err(ProduceError::BadPartition {
                partition,
                partitions: self.partitions,
            }),
            (None, Some(key)) => Ok(partitioner::partition_for_key(key, self.partitions)),
            (None, None) => {
                let n = self.next_unkeyed.fetch_add(1, Ordering::Relaxed);
                Ok((n % self.partitions as u64) as i32)
            }
        }
    }

    /// Queues a record, waiting while the buffer is full; the ticket resolves on delivery.
    pub async fn send(&self, record: OutgoingRecord) -> Result<DeliveryTicket, ProduceError> {
        self.enqueue_all(vec![record], true)
            .await?
            .pop()
            .ok_or(ProduceError::Closed)
    }

    /// Queues a record whose delivery only shows in [`Producer::stats`].
    pub async fn send_counted(&self, record: OutgoingRecord) -> Result<(), ProduceError> {
        self.enqueue_all(vec![record], false).await.map(|_| ())
    }

    /// Queues several records at once (one hand-over to the accumulator instead of one per
    /// record); their deliveries only show in [`Producer::stats`].
    pub async fn send_all_counted(&self, records: Vec<OutgoingRecord>) -> Result<(), ProduceError> {
        self.enqueue_all(records, false).await.map(|_| ())
    }

    /// Queues several records at once; one ticket per record, in order.
    pub async fn send_all(
        &self,
        records: Vec<OutgoingRecord>,
    ) -> Result<Vec<DeliveryTicket>, ProduceError> {
        self.enqueue_all(records, true).await
    }

    async fn enqueue_all(
        &self,
        records: Vec<OutgoingRecord>,
        with_tickets: bool,
    ) -> Result<Vec<DeliveryTicket>, ProduceError> {
        let mut placed = Vec::with_capacity(records.len());
        let mut total = 0usize;
        for record in records {
            let partition = self.partition_for(&record)?;
            let cost = RecordCost::of(&record, with_tickets);
            let size = cost.total();
            if size > self.buffer_limit {
                return Err(ProduceError::RecordTooLarge {
                    size,
                    limit: self.buffer_limit,
                });
            }
            total += size;
            placed.push((partition, cost, record));
        }
        if placed.is_empty() {
            return Ok(Vec::new());
        }
        let mut tickets = Vec::new();
        // Take the memory in pieces no larger than the buffer, so a big group cannot wait
        // forever for more permits than exist.
        let mut queued = Vec::with_capacity(placed.len());
        let mut permit: Option<OwnedSemaphorePermit> = None;
        let mut remaining = total;
        for (partition, cost, record) in placed {
            let size = cost.total();
            let available = permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
            if available < size {
                let wanted = remaining.min(self.buffer_limit).max(size) - available;
                let more = Arc::clone(&self.memory)
                    .acquire_many_owned(wanted as u32)
                    .await
                    .map_err(|_| ProduceError::Closed)?;
                match &mut permit {
                    Some(held) => held.merge(more),
                    None => permit = Some(more),
                }
            }
            let own = permit
                .as_mut()
                .and_then(|held| held.split(size))
                .ok_or(ProduceError::Closed)?;
            remaining -= size;
            let reply = with_tickets.then(|| {
                let (reply, ticket) = oneshot::channel();
                tickets.push(DeliveryTicket(ticket));
                reply
            });
            queued.push(Queued {
                partition,
                record,
                cost,
                permit: own,
                reply,
            });
        }
        let count = queued.len() as u64;
        self.counters.sent.fetch_add(count, Ordering::Relaxed);
        self.sender
            .send(Message::Records(queued))
            .await
            .map_err(|_| {
                self.counters.sent.fetch_sub(count, Ordering::Relaxed);
                ProduceError::Closed
            })?;
        Ok(tickets)
    }

    /// Sends everything queued and waits until every record so far is acknowledged or failed.
    pub async fn flush(&self) -> Result<(), ProduceError> {
        let (done, flushed) = oneshot::channel();
        self.sender
            .send(Message::Flush(done))
            .await
            .map_err(|_| ProduceError::Closed)?;
        flushed.await.map_err(|_| ProduceError::Closed)
    }

    pub fn stats(&self) -> ProducerStats {
        ProducerStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            acknowledged: self.counters.acknowledged.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            buffered_bytes: (self.buffer_limit - self.memory.available_permits()) as u64,
            identity: match self.counters.producer_id.load(Ordering::Relaxed) {
                -1 => None,
                id => Some((
                    id,
                    self.counters.producer_epoch.load(Ordering::Relaxed) as i16,
                )),
            },
            identity_changes: self.counters.identity_changes.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_idempotence_one_request_is_in_flight_whatever_is_configured() {
        let config = ProducerConfig {
            idempotence: false,
            max_in_flight_per_partition: 5,
            ..ProducerConfig::default()
        };
        assert_eq!(config.in_flight_limit(), 1);
    }

    #[test]
    fn with_idempotence_the_limit_stays_within_what_the_broker_deduplicates() {
        for (configured, applied) in [(0, 1), (3, 3), (5, 5), (9, 5)] {
            let config = ProducerConfig {
                max_in_flight_per_partition: configured,
                ..ProducerConfig::default()
            };
            assert_eq!(config.in_flight_limit(), applied, "{configured}");
        }
    }
}

//! The shared producer: records are grouped per partition into batches (flushed when full or
//! after `linger`), one produce request per partition is in flight at a time so retries never
//! reorder a partition, and each record's delivery (its offset, or why it failed) is reported.
//!
//! One accumulator task owns the pending batches; callers hand it records through a channel.
//! Memory is bounded by a byte semaphore taken at `send` and given back when the record's batch
//! completes, so a slow broker pushes back on the caller instead of growing a queue. Counting
//! happens per batch, never with a task per record.

pub mod partitioner;
mod writer;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::admin;
use crate::connect;
use crate::settings::ConnectionSettings;
use writer::PartitionWriter;

/// Codecs that keep the static x86_64 and aarch64 musl builds pure Rust (no C toolchain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
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

impl OutgoingRecord {
    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + 32
    }
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
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
}

/// Resolves to a record's delivery once its batch completes.
#[derive(Debug)]
pub struct DeliveryTicket(oneshot::Receiver<Result<Delivery, ProduceError>>);

impl DeliveryTicket {
    pub async fn delivered(self) -> Result<Delivery, ProduceError> {
        self.0.await.unwrap_or(Err(ProduceError::Closed))
    }
}

/// A record on its way to the accumulator, with the memory it holds.
struct Queued {
    partition: i32,
    record: OutgoingRecord,
    permit: OwnedSemaphorePermit,
    reply: Option<oneshot::Sender<Result<Delivery, ProduceError>>>,
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
        let mut bootstrap = connect::broker_connection(settings, connect_deadline)
            .await
            .map_err(|e| ProduceError::Metadata(e.to_string()))?;
        let leaders = admin::partition_leaders(&mut bootstrap, topic)
            .await
            .map_err(|e| match e {
                admin::AdminError::Metadata(_) => ProduceError::UnknownTopic(topic.to_owned()),
                other => ProduceError::Metadata(other.to_string()),
            })?;
        let partitions = leaders.len() as i32;
        let writers = leaders
            .into_iter()
            .enumerate()
            .map(|(partition, leader)| {
                Some(PartitionWriter::new(
                    settings,
                    topic,
                    partition as i32,
                    leader,
                ))
            })
            .collect();
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = mpsc::channel(4096);
        let buffer_limit = config.buffer_memory_bytes.min(Semaphore::MAX_PERMITS);
        let accumulator = Accumulator {
            config,
            writers,
            counters: Arc::clone(&counters),
            open: (0..partitions).map(|_| None).collect(),
            ready: (0..partitions).map(|_| VecDeque::new()).collect(),
            in_flight: 0,
            flushes: Vec::new(),
        };
        tokio::spawn(accumulator.run(receiver));
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
            let size = record.size();
            if size > self.buffer_limit {
                return Err(ProduceError::RecordTooLarge {
                    size,
                    limit: self.buffer_limit,
                });
            }
            total += size;
            placed.push((partition, size, record));
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
        for (partition, size, record) in placed {
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
        }
    }
}

/// Records gathered for one partition.
struct Batch {
    records: Vec<OutgoingRecord>,
    replies: Vec<Option<oneshot::Sender<Result<Delivery, ProduceError>>>>,
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
    opened: Instant,
}

impl Batch {
    fn new() -> Self {
        Self {
            records: Vec::new(),
            replies: Vec::new(),
            permit: None,
            bytes: 0,
            opened: Instant::now(),
        }
    }
}

struct Accumulator {
    config: ProducerConfig,
    /// Each partition's writer; `None` while its batch is in flight.
    writers: Vec<Option<PartitionWriter>>,
    counters: Arc<Counters>,
    /// The batch each partition is filling, indexed by partition.
    open: Vec<Option<Batch>>,
    /// Full or lingered batches waiting for their partition's in-flight request.
    ready: Vec<VecDeque<Batch>>,
    in_flight: usize,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Accumulator {
    async fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(i32, PartitionWriter)>();
        let mut closed = false;
        loop {
            let next_linger = self
                .open
                .iter()
                .flatten()
                .map(|b| b.opened + self.config.linger)
                .min();
            tokio::select! {
                message = receiver.recv(), if !closed => match message {
                    Some(Message::Records(records)) => {
                        for queued in records {
                            self.add(queued);
                        }
                        self.dispatch(&done_tx);
                    }
                    Some(Message::Flush(done)) => {
                        self.flushes.push(done);
                        self.close_all_batches();
                        self.dispatch(&done_tx);
                    }
                    None => {
                        closed = true;
                        self.close_all_batches();
                        self.dispatch(&done_tx);
                    }
                },
                Some((partition, writer)) = done_rx.recv() => {
                    if let Some(slot) = self.writers.get_mut(partition as usize) {
                        *slot = Some(writer);
                    }
                    self.in_flight -= 1;
                    self.dispatch(&done_tx);
                }
                _ = sleep_until(next_linger) => {
                    let now = Instant::now();
                    for partition in 0..self.open.len() {
                        let expired = self.open[partition]
                            .as_ref()
                            .is_some_and(|b| b.opened + self.config.linger <= now);
                        if expired {
                            self.close_batch(partition as i32);
                        }
                    }
                    self.dispatch(&done_tx);
                }
            }
            if self.idle() {
                for done in self.flushes.drain(..) {
                    let _ = done.send(());
                }
                if closed {
                    return;
                }
            }
        }
    }

    fn idle(&self) -> bool {
        self.open.iter().all(Option::is_none)
            && self.in_flight == 0
            && self.ready.iter().all(VecDeque::is_empty)
    }

    fn add(&mut self, queued: Queued) {
        let Queued {
            partition,
            record,
            permit,
            reply,
        } = queued;
        let size = record.size();
        let Some(slot) = self.open.get_mut(partition as usize) else {
            return;
        };
        let batch = slot.get_or_insert_with(Batch::new);
        batch.bytes += size;
        batch.records.push(record);
        batch.replies.push(reply);
        match &mut batch.permit {
            Some(held) => held.merge(permit),
            None => batch.permit = Some(permit),
        }
        if batch.bytes >= self.config.batch_max_bytes {
            self.close_batch(partition);
        }
    }

    fn close_batch(&mut self, partition: i32) {
        let index = partition as usize;
        if let Some(batch) = self.open.get_mut(index).and_then(Option::take)
            && let Some(queue) = self.ready.get_mut(index)
        {
            queue.push_back(batch);
        }
    }

    fn close_all_batches(&mut self) {
        for partition in 0..self.open.len() {
            self.close_batch(partition as i32);
        }
    }

    /// Starts the next ready batch of every partition that has nothing in flight.
    fn dispatch(&mut self, done: &mpsc::UnboundedSender<(i32, PartitionWriter)>) {
        for (index, queue) in self.ready.iter_mut().enumerate() {
            let partition = index as i32;
            let Some(slot) = self.writers.get_mut(index) else {
                continue;
            };
            if slot.is_none() || queue.is_empty() {
                continue;
            }
            let (Some(mut writer), Some(batch)) = (slot.take(), queue.pop_front()) else {
                continue;
            };
            let config = self.config.clone();
            let counters = Arc::clone(&self.counters);
            let done = done.clone();
            self.in_flight += 1;
            tokio::spawn(async move {
                deliver(&mut writer, partition, batch, &config, &counters).await;
                let _ = done.send((partition, writer));
            });
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Produces one batch, retrying until it is acknowledged or its delivery time-out passes,
/// then reports every record's outcome and releases its memory.
async fn deliver(
    writer: &mut PartitionWriter,
    partition: i32,
    batch: Batch,
    config: &ProducerConfig,
    counters: &Counters,
) {
    let deadline = batch.opened + config.delivery_timeout;
    let count = batch.records.len() as u64;
    let mut backoff = config.retry_backoff;
    let outcome = match PartitionWriter::encode(batch.records, config.compression) {
        Err(reason) => Err(format!("encoding the batch: {reason}")),
        Ok(encoded) => loop {
            let attempt = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                writer.produce(encoded.clone()),
            )
            .await;
            match attempt {
                Ok(Ok(base_offset)) => break Ok(base_offset),
                Ok(Err(e)) if e.retriable && Instant::now() + backoff < deadline => {
                    tracing::warn!(partition, error = %e.reason, ?backoff, "produce failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Ok(Err(e)) => break Err(e.reason),
                Err(_) => break Err("timed out".to_owned()),
            }
        },
    };
    match outcome {
        Ok(base_offset) => {
            counters.acknowledged.fetch_add(count, Ordering::Relaxed);
            for (index, reply) in batch.replies.into_iter().enumerate() {
                if let Some(reply) = reply {
                    let offset = base_offset + index as i64;
                    let _ = reply.send(Ok(Delivery { partition, offset }));
                }
            }
        }
        Err(reason) => {
            tracing::error!(partition, records = count, %reason, "batch failed");
            counters.failed.fetch_add(count, Ordering::Relaxed);
            let error = ProduceError::DeliveryFailed {
                timeout: config.delivery_timeout,
                reason,
            };
            for reply in batch.replies.into_iter().flatten() {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
    drop(batch.permit);
}

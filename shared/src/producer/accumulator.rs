//! The producer's one owner of mutable state: per partition its batches, sequence and leader;
//! per broker its connection and requests in flight; the producer id. It must not wait on the
//! network: connecting, lookups, encoding and InitProducerId are spawned and report an [`Event`].
//! The choice a reader may question: a failed attempt closes its broker's connection and every
//! request on it, for every partition it leads, is resent in sequence order once all are back:
//! failures are rare and mostly broker-wide (leader moves), and idempotence dedupes the resends.

mod answers;
mod broker;
mod dispatch;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::settings::ConnectionSettings;

use super::batch::{self, ProducerIdentity};
use super::identity::IdentityRequest;
use super::partition::{Encoded, MAX_BACKOFF, OpenBatch, PartitionState, SealedBatch};
use super::pipeline::{Answer, Pipeline};
use super::{Counters, Message, ProducerConfig, Queued};
use broker::BrokerLink;

/// Messages, events or answers already waiting that are handled together before one dispatch.
const HANDLED_AT_ONCE: usize = 256;

/// Spawned work reporting back.
enum Event {
    Encoded {
        partition: usize,
        id: u64,
        result: Result<BytesMut, String>,
    },
    Connected {
        broker: usize,
        result: Result<Pipeline, String>,
    },
    Leaders(Result<Vec<String>, String>),
    Identity(Result<ProducerIdentity, String>),
}

/// One Produce request's outcome: which broker and connection it went on, and for each batch in
/// it (partition index, batch id) the partition's answer.
struct Answered {
    broker: usize,
    generation: u64,
    batches: Vec<(usize, u64, Answer)>,
}

type AnswerFuture = Pin<Box<dyn Future<Output = Answered> + Send>>;

/// The producer id this producer writes with.
enum IdentityState {
    Disabled,
    Ready(ProducerIdentity),
    /// Needed before anything more is sent; asked for once nothing is in flight.
    Wanted {
        request: IdentityRequest,
        not_before: Instant,
    },
    Asking,
}

pub(super) struct Accumulator {
    settings: ConnectionSettings,
    topic: Arc<str>,
    config: ProducerConfig,
    counters: Arc<Counters>,
    partitions: Vec<PartitionState>,
    brokers: Vec<BrokerLink>,
    looking_up_leaders: bool,
    identity: IdentityState,
    next_batch_id: u64,
    flushes: Vec<oneshot::Sender<()>>,
    events: mpsc::UnboundedSender<Event>,
    answers: FuturesUnordered<AnswerFuture>,
}

impl Accumulator {
    pub(super) fn start(
        settings: ConnectionSettings,
        topic: Arc<str>,
        config: ProducerConfig,
        leaders: Vec<String>,
        identity: Option<ProducerIdentity>,
        counters: Arc<Counters>,
        receiver: mpsc::Receiver<Message>,
    ) {
        let (events, event_receiver) = mpsc::unbounded_channel();
        let mut accumulator = Self {
            settings,
            topic,
            identity: match identity {
                Some(identity) => IdentityState::Ready(identity),
                None => IdentityState::Disabled,
            },
            config,
            counters,
            partitions: Vec::with_capacity(leaders.len()),
            brokers: Vec::new(),
            looking_up_leaders: false,
            next_batch_id: 0,
            flushes: Vec::new(),
            events,
            answers: FuturesUnordered::new(),
        };
        for address in &leaders {
            let broker = accumulator.broker_at(address);
            let partition = PartitionState::new(broker, accumulator.config.retry_backoff);
            accumulator.partitions.push(partition);
        }
        tokio::spawn(accumulator.run(receiver, event_receiver));
    }

    async fn run(
        mut self,
        mut receiver: mpsc::Receiver<Message>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        let mut closed = false;
        loop {
            let wake = self.next_wake();
            // Whatever else has already arrived is handled too before one dispatch: each
            // dispatch scans every partition, and batches ready together share a request.
            tokio::select! {
                message = receiver.recv(), if !closed => {
                    closed = self.on_message(message);
                    for _ in 0..HANDLED_AT_ONCE {
                        match receiver.try_recv() {
                            Ok(message) if !closed => closed = self.on_message(Some(message)),
                            Err(mpsc::error::TryRecvError::Disconnected) if !closed => {
                                closed = self.on_message(None);
                            }
                            _ => break,
                        }
                    }
                }
                Some(event) = events.recv() => {
                    self.on_event(event);
                    for _ in 0..HANDLED_AT_ONCE {
                        let Ok(event) = events.try_recv() else { break };
                        self.on_event(event);
                    }
                }
                Some(answered) = self.answers.next(), if !self.answers.is_empty() => {
                    self.on_answer(answered);
                    for _ in 0..HANDLED_AT_ONCE {
                        let Some(Some(answered)) = self.answers.next().now_or_never() else {
                            break;
                        };
                        self.on_answer(answered);
                    }
                }
                () = sleep_until(wake) => self.close_lingered_batches(),
            }
            self.dispatch();
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

    /// Takes in one hand-over from the producer; `true` once the producer is gone.
    fn on_message(&mut self, message: Option<Message>) -> bool {
        match message {
            Some(Message::Records(records)) => {
                for queued in records {
                    self.add(queued);
                }
                false
            }
            Some(Message::Flush(done)) => {
                self.flushes.push(done);
                self.close_all_batches();
                false
            }
            None => {
                self.close_all_batches();
                true
            }
        }
    }

    fn idle(&self) -> bool {
        self.partitions.iter().all(|p| {
            p.open.is_none()
                && p.ready.is_empty()
                && p.in_flight.is_empty()
                && p.returned.is_empty()
        })
    }

    fn nothing_in_flight(&self) -> bool {
        self.partitions
            .iter()
            .all(|p| p.in_flight.is_empty() && p.returned.is_empty())
    }

    /// The earliest of: a batch's linger ends, a partition's backoff ends, a waiting batch's
    /// delivery time-out passes, the next InitProducerId may be sent.
    fn next_wake(&self) -> Option<Instant> {
        let linger = self.config.linger;
        let timeout = self.config.delivery_timeout;
        let partitions = self.partitions.iter().flat_map(|p| {
            let lingered = p.open.as_ref().map(|b| b.opened + linger);
            let retry = p.retry_at.filter(|_| !p.ready.is_empty());
            let expiry = p
                .ready
                .front()
                .filter(|b| !matches!(b.data, Encoded::Pending))
                .map(|b| b.opened + timeout);
            [lingered, retry, expiry]
        });
        let identity = match &self.identity {
            // Asked for once nothing is in flight; until then answers wake us.
            IdentityState::Wanted { not_before, .. } if self.nothing_in_flight() => {
                Some(*not_before)
            }
            _ => None,
        };
        partitions.chain([identity]).flatten().min()
    }

    fn add(&mut self, queued: Queued) {
        let Queued {
            partition,
            record,
            cost,
            permit,
            reply,
        } = queued;
        let index = partition as usize;
        let Some(state) = self.partitions.get_mut(index) else {
            return;
        };
        let batch = state.open.get_or_insert_with(|| OpenBatch {
            records: Vec::new(),
            replies: Vec::new(),
            permit: None,
            encoded_bytes: 0,
            in_memory_bytes: 0,
            opened: Instant::now(),
        });
        batch.encoded_bytes += cost.encoded;
        batch.in_memory_bytes += cost.in_memory;
        batch.records.push(record);
        batch.replies.push(reply);
        match &mut batch.permit {
            Some(held) => held.merge(permit),
            None => batch.permit = Some(permit),
        }
        if batch.encoded_bytes >= self.config.batch_max_bytes {
            self.close_batch(index);
        }
    }

    fn close_lingered_batches(&mut self) {
        let now = Instant::now();
        for index in 0..self.partitions.len() {
            let expired = self.partitions[index]
                .open
                .as_ref()
                .is_some_and(|b| b.opened + self.config.linger <= now);
            if expired {
                self.close_batch(index);
            }
        }
    }

    fn close_all_batches(&mut self) {
        for index in 0..self.partitions.len() {
            self.close_batch(index);
        }
    }

    /// Seals a partition's open batch and encodes it off this task.
    fn close_batch(&mut self, index: usize) {
        let Some(state) = self.partitions.get_mut(index) else {
            return;
        };
        let Some(open) = state.open.take() else {
            return;
        };
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let count = open.records.len();
        state.ready.push_back(SealedBatch {
            id,
            data: Encoded::Pending,
            count,
            replies: open.replies,
            permit: open.permit,
            in_memory_bytes: open.in_memory_bytes,
            encoded_bytes: open.encoded_bytes,
            opened: open.opened,
            base_sequence: None,
            sent: false,
        });
        let records = open.records;
        let records_size = open.encoded_bytes;
        let compression = self.config.compression;
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = batch::encode_sized(records, compression, records_size);
            let _ = events.send(Event::Encoded {
                partition: index,
                id,
                result,
            });
        });
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Encoded {
                partition,
                id,
                result,
            } => {
                let Some(batch) = self
                    .partitions
                    .get_mut(partition)
                    .and_then(|p| p.ready.iter_mut().find(|b| b.id == id))
                else {
                    return;
                };
                // The records' in-memory form is gone; keep only what the encoded batch holds.
                let keep = match &result {
                    Ok(bytes) => bytes.len().min(batch.encoded_bytes),
                    Err(_) => 0,
                };
                if let Some(permit) = batch.permit.as_mut() {
                    let release = permit.num_permits().saturating_sub(keep);
                    drop(permit.split(release));
                }
                batch.in_memory_bytes = 0;
                batch.data = match result {
                    Ok(bytes) => Encoded::Fresh(bytes),
                    Err(reason) => Encoded::Failed(format!("encoding the batch: {reason}")),
                };
            }
            Event::Connected { broker, result } => self.on_connected(broker, result),
            Event::Leaders(result) => self.on_leaders(result),
            Event::Identity(result) => match result {
                Ok(identity) => {
                    tracing::info!(topic = %self.topic, producer_id = identity.id, epoch = identity.epoch, "producer identity; sequences restart at 0");
                    self.identity = IdentityState::Ready(identity);
                    self.counters.set_identity(Some(identity));
                    self.counters
                        .identity_changes
                        .fetch_add(1, Ordering::Relaxed);
                    for state in &mut self.partitions {
                        state.next_sequence = 0;
                        for batch in &mut state.ready {
                            batch.base_sequence = None;
                        }
                    }
                }
                Err(reason) => {
                    tracing::error!(topic = %self.topic, %reason, "no producer id; waiting batches fail");
                    let error = reason.clone();
                    for index in 0..self.partitions.len() {
                        while let Some(batch) = self.partitions[index].ready.pop_front() {
                            self.fail(index, batch, error.clone());
                        }
                    }
                    self.identity = IdentityState::Wanted {
                        request: IdentityRequest::Fresh,
                        not_before: Instant::now() + MAX_BACKOFF,
                    };
                }
            },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

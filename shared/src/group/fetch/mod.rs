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

pub use batch::{
    AbortedTransactions, BatchError, BatchFault, ConsumerRecord, Decoded, RecordHeader, decode,
    encode,
};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::GroupError;
use super::config::OffsetReset;
use crate::settings::ConnectionSettings;
use crate::wire::BrokerConnection;

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

/// Bytes fetched and not yet handed to the application, against the limit.
#[derive(Debug)]
pub struct FetchBudget {
    limit: usize,
    used: AtomicUsize,
    freed: Notify,
}

impl FetchBudget {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn available(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    fn take(self: &Arc<Self>, bytes: usize) -> BudgetShare {
        self.used.fetch_add(bytes, Ordering::Relaxed);
        BudgetShare {
            budget: Arc::clone(self),
            bytes,
        }
    }
}

/// One batch's part of the budget, returned on drop (also when a revoked partition's queued
/// batches are thrown away).
#[derive(Debug)]
pub struct BudgetShare {
    budget: Arc<FetchBudget>,
    bytes: usize,
}

impl BudgetShare {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
        self.budget.freed.notify_one();
    }
}

/// A partition the fetcher now reads, with the channel its records come through.
#[derive(Debug)]
pub struct AssignedPartition {
    pub partition: TopicPartition,
    pub position: i64,
    pub receiver: mpsc::Receiver<FetchItem>,
}

enum Command {
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
        let session = Session {
            connection: connection.clone(),
            settings,
            budget: Arc::clone(&budget),
            admin: HashMap::from([(BOOTSTRAP, bootstrap)]),
            brokers: HashMap::new(),
            idle: HashMap::new(),
            busy: HashSet::new(),
            broker_backoff: HashMap::new(),
            partitions: BTreeMap::new(),
            leaders: HashMap::new(),
            metadata_due: None,
            next_token: 0,
            rotation: 0,
        };
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

/// The admin connection opened before any metadata is known.
const BOOTSTRAP: i32 = i32::MIN;
/// Below this much room in the budget a fetch is not worth sending.
const MIN_FETCH_ROOM: usize = 16 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a partition stuck on an undecodable batch is tried (and logged) again.
const STUCK_RETRY: Duration = Duration::from_secs(60);

struct PartitionState {
    topic: Arc<str>,
    position: i64,
    leader: Option<i32>,
    sender: mpsc::Sender<FetchItem>,
    /// Tells a response for an earlier assignment of the same partition from a current one.
    token: u64,
    /// No fetch before this instant (a partition error's backoff, or a stuck batch's retry).
    not_before: Option<Instant>,
    stuck: bool,
}

/// What one Fetch asked for, to match the answer against the partitions' current state.
struct Sent {
    node: i32,
    partitions: HashMap<TopicPartition, (i64, u64)>,
}

type Outcome = (
    Sent,
    Option<BrokerConnection>,
    Result<kafka_protocol::messages::FetchResponse, GroupError>,
);

struct Session {
    connection: ConnectionSettings,
    settings: FetchSettings,
    budget: Arc<FetchBudget>,
    /// Connections for Metadata and ListOffsets, by node id (and the bootstrap one).
    admin: HashMap<i32, BrokerConnection>,
    brokers: HashMap<i32, String>,
    /// Fetch connections not carrying a request right now.
    idle: HashMap<i32, BrokerConnection>,
    /// Nodes with a Fetch in flight (one at a time per connection, as the protocol allows).
    busy: HashSet<i32>,
    broker_backoff: HashMap<i32, (Instant, Duration)>,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    leaders: HashMap<TopicPartition, i32>,
    /// Set when leaders must be asked again, with the earliest time to do so.
    metadata_due: Option<Instant>,
    next_token: u64,
    /// Turns which partitions go first when a request cannot carry them all.
    rotation: usize,
}

impl Session {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut in_flight = FuturesUnordered::new();
        loop {
            if self.metadata_due.is_some_and(|due| due <= Instant::now()) {
                self.refresh_leaders().await;
            }
            self.dispatch(&mut in_flight);
            let wake_at = self.next_wake();
            let budget = Arc::clone(&self.budget);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Assign { partitions, reply }) => {
                        let _ = reply.send(self.assign(partitions).await);
                    }
                    Some(Command::EndOffsets { partitions, reply }) => {
                        let _ = reply.send(self.end_offsets(partitions).await);
                    }
                    Some(Command::Remove(partitions)) => {
                        for partition in partitions {
                            self.partitions.remove(&partition);
                        }
                    }
                    None => return,
                },
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    self.on_response(outcome).await;
                }
                _ = budget.freed.notified() => {}
                _ = sleep_until_some(wake_at) => {}
            }
        }
    }

    /// The earliest moment a backoff ends, so the loop wakes for it.
    fn next_wake(&self) -> Option<Instant> {
        let partitions = self.partitions.values().filter_map(|p| p.not_before);
        let brokers = self.broker_backoff.values().map(|(until, _)| *until);
        partitions.chain(brokers).chain(self.metadata_due).min()
    }

    /// Sends a Fetch to every leader that has fetchable partitions and no request in flight,
    /// each asking for no more than its share of what the budget has left.
    fn dispatch(&mut self, in_flight: &mut FuturesUnordered<BoxFuture<'static, Outcome>>) {
        let room = self.budget.available();
        if room < MIN_FETCH_ROOM {
            return;
        }
        let now = Instant::now();
        let mut by_leader: BTreeMap<i32, Vec<(&TopicPartition, &PartitionState)>> = BTreeMap::new();
        for (partition, state) in &self.partitions {
            let Some(leader) = state.leader else { continue };
            let fetchable = state.not_before.is_none_or(|at| at <= now)
                && state.sender.capacity() > 0
                && !self.busy.contains(&leader)
                && self
                    .broker_backoff
                    .get(&leader)
                    .is_none_or(|(until, _)| *until <= now);
            if fetchable {
                by_leader
                    .entry(leader)
                    .or_default()
                    .push((partition, state));
            }
        }
        if by_leader.is_empty() {
            return;
        }
        let share = room / by_leader.len();
        let request_max = i32::try_from(share)
            .unwrap_or(i32::MAX)
            .min(self.settings.max_bytes);
        // The room is divided among the fetchable partitions (each asked for at least
        // MIN_FETCH_ROOM), so one request reads many partitions at once instead of a few at
        // `max.partition.fetch.bytes` each; and no more partitions are asked than the room holds
        // at that share, so one answer cannot overshoot the budget by more than the broker's
        // batch granularity. A turning start gives every partition its turn when room is short.
        let fetchable: usize = by_leader.values().map(Vec::len).sum();
        let partition_share =
            i32::try_from((room / fetchable.max(1)).max(MIN_FETCH_ROOM)).unwrap_or(i32::MAX);
        let partition_max = self
            .settings
            .partition_max_bytes
            .min(partition_share)
            .min(request_max);
        let per_request = (share / partition_max.max(1) as usize).max(1);
        self.rotation = self.rotation.wrapping_add(1);
        let mut started = Vec::new();
        for (node, mut partitions) in by_leader {
            if partitions.len() > per_request {
                let start = self.rotation % partitions.len();
                partitions.rotate_left(start);
                partitions.truncate(per_request);
            }
            let Some(address) = self.brokers.get(&node).cloned() else {
                continue;
            };
            let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
            let mut sent = Sent {
                node,
                partitions: HashMap::with_capacity(partitions.len()),
            };
            for (partition, state) in partitions {
                topics.entry(&state.topic).or_default().push(
                    FetchPartition::default()
                        .with_partition(partition.partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(state.position)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(partition_max),
                );
                sent.partitions
                    .insert(partition.clone(), (state.position, state.token));
            }
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(
                    i32::try_from(self.settings.max_wait.as_millis()).unwrap_or(i32::MAX),
                )
                .with_min_bytes(self.settings.min_bytes)
                .with_max_bytes(request_max)
                // read_committed, as librdkafka and rskafka read: a playground's records are
                // never transactional, and a transactional producer's aborts stay invisible.
                .with_isolation_level(1)
                // No fetch session (KIP-227): every request names its partitions in full.
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            FetchTopic::default()
                                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
            let connection = self.idle.remove(&node);
            let settings = self.connection.clone();
            let timeout = self.settings.request_timeout + self.settings.max_wait;
            started.push(node);
            in_flight.push(Box::pin(async move {
                let mut connection = match connection {
                    Some(connection) => connection,
                    None => match BrokerConnection::connect(
                        &address,
                        &settings.security,
                        &settings.client_id,
                        timeout,
                    )
                    .await
                    {
                        Ok(connection) => connection,
                        Err(e) => return (sent, None, Err(GroupError::Wire(e))),
                    },
                };
                let answer = match connection.negotiate::<FetchRequest>(4..=12) {
                    Ok(version) => connection.send(version, &request).await,
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(response) => (sent, Some(connection), Ok(response)),
                    Err(e) => (sent, None, Err(GroupError::Wire(e))),
                }
            }));
        }
        for node in started {
            self.busy.insert(node);
        }
    }

    /// Fixes each new partition's position — its committed offset, or `auto.offset.reset`
    /// asked of its leader — and starts reading it.
    async fn assign(
        &mut self,
        partitions: Vec<(TopicPartition, StartOffset)>,
    ) -> Result<Vec<AssignedPartition>, GroupError> {
        let mut topics: Vec<String> = partitions.iter().map(|(p, _)| p.topic.clone()).collect();
        topics.extend(self.partitions.keys().map(|p| p.topic.clone()));
        topics.sort();
        topics.dedup();
        self.ask_leaders(&topics).await?;
        let mut positions = HashMap::with_capacity(partitions.len());
        let mut resets: Vec<(OffsetReset, Vec<TopicPartition>)> = Vec::new();
        for (partition, start) in &partitions {
            match start {
                StartOffset::Committed(offset) => {
                    positions.insert(partition.clone(), *offset);
                }
                StartOffset::Reset(OffsetReset::None) => {
                    return Err(GroupError::NoCommittedOffset {
                        topic: partition.topic.clone(),
                        partition: partition.partition,
                    });
                }
                StartOffset::Reset(policy) => match resets.iter_mut().find(|(p, _)| p == policy) {
                    Some((_, list)) => list.push(partition.clone()),
                    None => resets.push((*policy, vec![partition.clone()])),
                },
            }
        }
        for (policy, partitions) in resets {
            positions.extend(self.reset_positions(&partitions, policy).await?);
        }
        let mut assigned = Vec::with_capacity(partitions.len());
        for (partition, _) in partitions {
            let Some(&position) = positions.get(&partition) else {
                continue;
            };
            let (sender, receiver) = mpsc::channel(self.settings.prefetch_batches);
            self.next_token += 1;
            self.partitions.insert(
                partition.clone(),
                PartitionState {
                    topic: Arc::from(partition.topic.as_str()),
                    position,
                    leader: self.leader_of(&partition),
                    sender,
                    token: self.next_token,
                    not_before: None,
                    stuck: false,
                },
            );
            assigned.push(AssignedPartition {
                partition,
                position,
                receiver,
            });
        }
        Ok(assigned)
    }

    async fn end_offsets(
        &mut self,
        partitions: Vec<TopicPartition>,
    ) -> Result<HashMap<TopicPartition, i64>, GroupError> {
        let mut topics: Vec<String> = partitions.iter().map(|p| p.topic.clone()).collect();
        topics.extend(self.partitions.keys().map(|p| p.topic.clone()));
        topics.sort();
        topics.dedup();
        self.ask_leaders(&topics).await?;
        self.reset_positions(&partitions, OffsetReset::Latest).await
    }

    fn leader_of(&self, partition: &TopicPartition) -> Option<i32> {
        self.leaders.get(partition).copied()
    }

    /// Asks any broker who leads the partitions of `topics`, trying for a while: an
    /// assignment cannot start without leaders.
    async fn ask_leaders(&mut self, topics: &[String]) -> Result<(), GroupError> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0.. {
            match self.metadata(topics).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 20 => {
                    tracing::warn!(error = %e, "metadata for the fetcher failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One Metadata round trip on an admin connection (reconnecting to the bootstrap servers
    /// if none is open); updates brokers and leaders.
    async fn metadata(&mut self, topics: &[String]) -> Result<(), GroupError> {
        let open = self.admin.keys().next().copied();
        let key = match open {
            Some(key) => key,
            None => {
                let connection = crate::connect::broker_connection(
                    &self.connection,
                    self.settings.request_timeout,
                )
                .await?;
                self.admin.insert(BOOTSTRAP, connection);
                BOOTSTRAP
            }
        };
        let Some(mut connection) = self.admin.remove(&key) else {
            return Err(GroupError::CoordinatorUnknown);
        };
        let answer = brokers::leaders(&mut connection, topics).await;
        match answer {
            Ok(found) => {
                self.admin.insert(key, connection);
                self.brokers = found.brokers;
                self.leaders = found.leaders;
                Ok(())
            }
            Err(e) => Err(GroupError::Wire(e)),
        }
    }

    /// The leaders of every partition we read, asked again after a leader error; the
    /// partitions without one wait for the next try.
    async fn refresh_leaders(&mut self) {
        let mut topics: Vec<String> = self.partitions.keys().map(|p| p.topic.clone()).collect();
        topics.dedup();
        match self.metadata(&topics).await {
            Ok(()) => {
                let mut missing = false;
                for (partition, state) in self.partitions.iter_mut() {
                    state.leader = self.leaders.get(partition).copied();
                    missing |= state.leader.is_none();
                }
                self.metadata_due = missing.then(|| Instant::now() + MAX_BACKOFF);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metadata for the fetcher failed; retrying");
                self.metadata_due = Some(Instant::now() + FIRST_BACKOFF * 5);
            }
        }
    }

    /// Positions for `partitions` by `policy`, asked of each partition's leader.
    async fn reset_positions(
        &mut self,
        partitions: &[TopicPartition],
        policy: OffsetReset,
    ) -> Result<HashMap<TopicPartition, i64>, GroupError> {
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for partition in partitions {
            let leader = self
                .leader_of(partition)
                .ok_or_else(|| GroupError::Data(format!("no leader known for {partition}")))?;
            by_leader.entry(leader).or_default().push(partition.clone());
        }
        let mut positions = HashMap::with_capacity(partitions.len());
        for (node, partitions) in by_leader {
            let mut backoff = FIRST_BACKOFF;
            let mut attempts = 0;
            loop {
                match self.list_offsets(node, &partitions, policy).await {
                    Ok(found) => {
                        positions.extend(found);
                        break;
                    }
                    Err(e) if attempts < 20 => {
                        attempts += 1;
                        tracing::warn!(error = %e, "list offsets failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(positions)
    }

    async fn list_offsets(
        &mut self,
        node: i32,
        partitions: &[TopicPartition],
        policy: OffsetReset,
    ) -> Result<HashMap<TopicPartition, i64>, GroupError> {
        let mut connection = match self.admin.remove(&node) {
            Some(connection) => connection,
            None => {
                let address = self.brokers.get(&node).cloned().ok_or_else(|| {
                    GroupError::Data(format!("broker {node} is not in the metadata"))
                })?;
                BrokerConnection::connect(
                    &address,
                    &self.connection.security,
                    &self.connection.client_id,
                    self.settings.request_timeout,
                )
                .await
                .map_err(GroupError::Wire)?
            }
        };
        let listed = brokers::list_offsets(&mut connection, partitions, policy)
            .await
            .map_err(GroupError::Wire)?;
        self.admin.insert(node, connection);
        let mut positions = HashMap::with_capacity(listed.len());
        for (partition, answer) in listed {
            match answer {
                Ok(offset) => {
                    positions.insert(partition, offset);
                }
                Err(code) => {
                    return Err(GroupError::Data(format!(
                        "ListOffsets for {partition} failed with error code {code}"
                    )));
                }
            }
        }
        if let Some(missing) = partitions.iter().find(|p| !positions.contains_key(*p)) {
            return Err(GroupError::Data(format!(
                "ListOffsets did not answer for {missing}"
            )));
        }
        Ok(positions)
    }

    async fn on_response(&mut self, (sent, connection, answer): Outcome) {
        self.busy.remove(&sent.node);
        let response = match answer {
            Ok(response) if response.error_code == 0 => response,
            Ok(response) => {
                self.broker_failed(
                    sent.node,
                    &format!("Fetch error code {}", response.error_code),
                );
                if let Some(connection) = connection {
                    self.idle.insert(sent.node, connection);
                }
                return;
            }
            Err(e) => {
                self.broker_failed(sent.node, &e.to_string());
                return;
            }
        };
        if let Some(connection) = connection {
            self.idle.insert(sent.node, connection);
        }
        self.broker_backoff.remove(&sent.node);
        let mut resets = Vec::new();
        for topic in response.responses {
            let topic_name = topic.topic.0.as_str();
            for data in topic.partitions {
                let partition = TopicPartition::new(topic_name, data.partition_index);
                let Some(&(asked_at, token)) = sent.partitions.get(&partition) else {
                    continue;
                };
                let Some(state) = self.partitions.get_mut(&partition) else {
                    continue; // removed while the request was out
                };
                if state.token != token || state.position != asked_at {
                    continue; // reassigned meanwhile: this answer is for an older position
                }
                match data.error_code {
                    0 => deliver(&self.budget, &partition, state, data),
                    OFFSET_OUT_OF_RANGE => resets.push(partition),
                    code if LEADER_ERRORS.contains(&code) => {
                        state.leader = None;
                        self.metadata_due.get_or_insert_with(Instant::now);
                    }
                    code => {
                        tracing::warn!(%partition, error_code = code, "fetch failed for the partition; retrying");
                        state.not_before = Some(Instant::now() + FIRST_BACKOFF * 10);
                    }
                }
            }
        }
        for partition in resets {
            self.reset_out_of_range(partition).await;
        }
    }

    /// OFFSET_OUT_OF_RANGE: the position left the log (retention, truncation). Java and
    /// librdkafka apply `auto.offset.reset`; with `none` we start over from the earliest
    /// offset rather than stop, since the committed position is gone either way.
    async fn reset_out_of_range(&mut self, partition: TopicPartition) {
        let policy = match self.settings.reset {
            OffsetReset::None => OffsetReset::Earliest,
            policy => policy,
        };
        let found = self
            .reset_positions(std::slice::from_ref(&partition), policy)
            .await;
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        match found {
            Ok(positions) => {
                if let Some(&position) = positions.get(&partition) {
                    tracing::warn!(%partition, from = state.position, to = position, ?policy, "offset out of range; reset");
                    state.position = position;
                }
            }
            Err(e) => {
                let _ = state.sender.try_send(FetchItem::Failed(e));
                self.partitions.remove(&partition);
            }
        }
    }

    /// A connection or broker-level failure: drop the connection, back off that broker
    /// (doubling, with jitter so many consumers do not retry in step) and ask for leaders
    /// again, since a failed broker may no longer lead.
    fn broker_failed(&mut self, node: i32, error: &str) {
        self.idle.remove(&node);
        let previous = self.broker_backoff.get(&node).map(|(_, d)| *d);
        let next = previous.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
        if previous.is_none() || next == MAX_BACKOFF {
            tracing::warn!(node, error, backoff = ?next, "fetching from the broker failed; retrying");
        }
        let jitter = next.mul_f64(0.8 + 0.4 * jitter_fraction());
        self.broker_backoff
            .insert(node, (Instant::now() + jitter, next));
        self.metadata_due
            .get_or_insert_with(|| Instant::now() + jitter);
    }
}

/// Decodes one partition's answer and hands its records over; an undecodable batch pauses
/// the partition at that batch.
fn deliver(
    budget: &Arc<FetchBudget>,
    partition: &TopicPartition,
    state: &mut PartitionState,
    data: kafka_protocol::messages::fetch_response::PartitionData,
) {
    let Some(records) = data.records.filter(|r| !r.is_empty()) else {
        return;
    };
    let wire_bytes = records.len();
    let aborted = data
        .aborted_transactions
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.first_offset, a.producer_id.0))
        .collect();
    let mut decoded = Decoded::default();
    let outcome = decode(
        &state.topic,
        partition.partition,
        records,
        state.position,
        &mut AbortedTransactions::new(aborted),
        &mut decoded,
    );
    if let Some(next) = decoded.next_offset {
        state.position = next;
    }
    if !decoded.records.is_empty() {
        let bytes = wire_bytes + decoded.records.len() * std::mem::size_of::<ConsumerRecord>();
        let item = FetchItem::Batch {
            records: decoded.records,
            high_watermark: data.high_watermark,
            share: budget.take(bytes),
        };
        // The partition was fetched only with room in its channel and nothing else sends
        // to it, so this fits; if the consumer has gone, the partition is being removed.
        let _ = state.sender.try_send(item);
    }
    match outcome {
        Ok(()) => {
            if std::mem::take(&mut state.stuck) {
                tracing::info!(%partition, offset = state.position, "the partition's batches decode again; reading on");
            }
            state.not_before = None;
        }
        Err(error) => {
            // Logged at most once a minute per partition: each retry logs once.
            tracing::error!(%partition, offset = error.offset, %error, "a record batch does not decode; the partition is paused there and retried every minute");
            if !std::mem::replace(&mut state.stuck, true) {
                let _ = state.sender.try_send(FetchItem::Stuck(error));
            }
            state.not_before = Some(Instant::now() + STUCK_RETRY);
        }
    }
}

/// A fraction in [0, 1) that differs between calls and processes, for backoff jitter; not
/// random enough for anything else.
fn jitter_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Errors after which the partition's leader must be looked up again (the Java fetcher's
/// handling): UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
/// KAFKA_STORAGE_ERROR, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_ID.
const LEADER_ERRORS: [i16; 7] = [3, 5, 6, 56, 74, 75, 100];

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

//! The fetcher's task: which partitions it reads and where, one multi-partition Fetch per
//! leader broker at a time, and what each answer hands to the partitions' channels.
//!
//! The session is the one owner of the fetch state (positions, leaders, connections,
//! backoffs); the handle talks to it through commands. It must not block on anything but its
//! own requests: a slow broker delays only its partitions. Positions and leaders are fixed in
//! `positions`; the budget that bounds what is read ahead is in `budget`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::budget::FetchBudget;
use super::gaps::{GapVerdict, GapWatch};
use super::positions::CONTROL_BACKOFF;
use super::{
    AbortedTransactions, Command, ConsumerRecord, Decoded, FetchItem, FetchSettings,
    TopicPartition, decode,
};
use crate::backoff::Backoff;
use crate::group::GroupError;
use crate::settings::ConnectionSettings;
use crate::wire::BrokerConnection;

/// The admin connection opened before any metadata is known.
pub(super) const BOOTSTRAP: i32 = i32::MIN;
/// Below this much room in the budget a fetch is not worth sending.
const MIN_FETCH_ROOM: usize = 16 * 1024;
/// How soon leaders are asked again when some partitions still have none.
pub(super) const METADATA_RETRY: Duration = Duration::from_secs(5);
/// The pause after a partition-level error that names no remedy.
const PARTITION_RETRY: Duration = Duration::from_secs(1);
/// How often a partition stuck on an undecodable batch is tried (and logged) again.
const STUCK_RETRY: Duration = Duration::from_secs(60);

pub(super) struct PartitionState {
    pub(super) topic: Arc<str>,
    pub(super) position: i64,
    pub(super) leader: Option<i32>,
    pub(super) sender: mpsc::Sender<FetchItem>,
    /// Tells a response for an earlier assignment of the same partition from a current one.
    pub(super) token: u64,
    /// No fetch before this instant (a partition error's backoff, or a stuck batch's retry).
    pub(super) not_before: Option<Instant>,
    pub(super) stuck: bool,
    /// The hole in the offsets this partition's reads are waiting at, if any.
    pub(super) gap_watch: GapWatch,
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

pub(super) struct Session {
    pub(super) connection: ConnectionSettings,
    pub(super) settings: FetchSettings,
    pub(super) budget: Arc<FetchBudget>,
    /// Connections for Metadata and ListOffsets, by node id (and the bootstrap one).
    pub(super) admin: HashMap<i32, BrokerConnection>,
    pub(super) brokers: HashMap<i32, String>,
    /// Fetch connections not carrying a request right now.
    pub(super) idle: HashMap<i32, BrokerConnection>,
    /// Nodes with a Fetch in flight (one at a time per connection, as the protocol allows).
    pub(super) busy: HashSet<i32>,
    /// Brokers whose last fetch failed: no fetch before the instant; the backoff grows while
    /// they keep failing and is dropped at the first answer.
    pub(super) broker_backoff: HashMap<i32, (Instant, Backoff)>,
    pub(super) partitions: BTreeMap<TopicPartition, PartitionState>,
    pub(super) leaders: HashMap<TopicPartition, i32>,
    /// Set when leaders must be asked again, with the earliest time to do so.
    pub(super) metadata_due: Option<Instant>,
    pub(super) next_token: u64,
    /// Turns which partitions go first when a request cannot carry them all.
    pub(super) rotation: usize,
}

impl Session {
    pub(super) fn new(
        connection: ConnectionSettings,
        settings: FetchSettings,
        budget: Arc<FetchBudget>,
        bootstrap: BrokerConnection,
    ) -> Self {
        Self {
            connection,
            settings,
            budget,
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
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
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
                        state.not_before = Some(Instant::now() + PARTITION_RETRY);
                    }
                }
            }
        }
        for partition in resets {
            self.reset_out_of_range(partition).await;
        }
    }

    /// A connection or broker-level failure: drop the connection, back off that broker
    /// (doubling, with jitter so many consumers do not retry in step) and ask for leaders
    /// again, since a failed broker may no longer lead.
    fn broker_failed(&mut self, node: i32, error: &str) {
        self.idle.remove(&node);
        let first = !self.broker_backoff.contains_key(&node);
        let (_, backoff) = self
            .broker_backoff
            .entry(node)
            .or_insert_with(|| (Instant::now(), Backoff::new(CONTROL_BACKOFF)));
        // No deadline: a consumer keeps trying its brokers for as long as it runs.
        let delay = backoff.next_delay().unwrap_or(CONTROL_BACKOFF.max);
        if first || delay >= CONTROL_BACKOFF.max.mul_f64(1.0 - CONTROL_BACKOFF.jitter) {
            tracing::warn!(node, error, backoff = ?delay, "fetching from the broker failed; retrying");
        }
        let until = Instant::now() + delay;
        if let Some((at, _)) = self.broker_backoff.get_mut(&node) {
            *at = until;
        }
        self.metadata_due.get_or_insert(until);
    }
}

/// Decodes one partition's answer and hands its records over; an undecodable batch pauses
/// the partition at that batch.
pub(super) fn deliver(
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
            state.not_before = match decoded.gap {
                None => {
                    state.gap_watch.clear();
                    None
                }
                Some(gap) => match state.gap_watch.judge(gap, Instant::now()) {
                    GapVerdict::Wait(until) => {
                        tracing::debug!(%partition, offset = gap.missing_from, next_batch = gap.resumes_at, "offsets missing below the high watermark; asking again");
                        Some(until)
                    }
                    GapVerdict::ReadPast { from, to, waited } => {
                        tracing::warn!(%partition, from, to, ?waited, "offsets are missing from the log (compacted away?); reading on after them");
                        state.position = to;
                        None
                    }
                },
            };
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

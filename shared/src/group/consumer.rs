//! The application's side of a group member: a [`GroupConsumer`] yields assignments,
//! revocations and record batches in order, commits, pauses and resumes partitions, and
//! reports lag.
//!
//! It owns the fetchers and the positions (what it has delivered), never the group state,
//! which belongs to the member task. A revocation is acknowledged when the application asks
//! for the next event — so "handle `Revoked`, flush, commit, then poll again" is the on-revoke
//! hook, and handling `Assigned` before polling on is the on-assign hook.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::ReceiverStream;

use super::GroupError;
use super::config::GroupConfig;
use super::fetch::{
    BatchError, BudgetShare, ConsumerRecord, FetchItem, Fetcher, StartOffset, TopicPartition,
};
use super::member::{
    Command, CommitOutcome, Member, MemberEvent, MemberLinks, MemberSnapshot, PollState,
};
use crate::connect;
use crate::settings::ConnectionSettings;

/// Records of one partition, in offset order.
///
/// The batch's bytes count against the consumer's fetch budget
/// (`queued.max.messages.kbytes`) until the batch is dropped, so records queued in the
/// application (a worker's channel) are bounded too; a clone does not count twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    pub partition: TopicPartition,
    pub records: Vec<ConsumerRecord>,
    pub high_watermark: i64,
    pub budget: HeldBytes,
}

/// A batch's hold on the fetch budget, given back when the batch is dropped.
#[derive(Debug, Default)]
pub struct HeldBytes(Option<BudgetShare>);

impl HeldBytes {
    /// The bytes this batch holds of the budget (0 for a copy).
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, BudgetShare::bytes)
    }
}

impl Clone for HeldBytes {
    /// A copy holds nothing: the original still does.
    fn clone(&self) -> Self {
        Self(None)
    }
}

impl PartialEq for HeldBytes {
    /// Not part of what a batch says.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for HeldBytes {}

/// What the consumer yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// These partitions are now ours, in addition to those we kept (restore their state
    /// before their records arrive). Empty when a cooperative rebalance gave us nothing new.
    Assigned(Vec<TopicPartition>),
    /// These partitions are leaving: flush and commit them before polling again. Eager
    /// assignors revoke everything; cooperative ones only what moves, and the others keep
    /// delivering records meanwhile. `lost` means the group already moved on and commits for
    /// them will fail.
    Revoked {
        partitions: Vec<TopicPartition>,
        lost: bool,
    },
    Records(RecordBatch),
    /// The partition's next batch does not decode: it is paused there and retried every
    /// minute (its records resume, with no event of their own, once the batch decodes).
    /// Returned at once, so a status page shows it while the other partitions are idle.
    Stuck {
        partition: TopicPartition,
        error: BatchError,
    },
}

pub struct GroupConsumer {
    config: GroupConfig,
    fetcher: Fetcher,
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<MemberEvent>,
    snapshot: watch::Receiver<MemberSnapshot>,
    fetched: StreamMap<TopicPartition, ReceiverStream<FetchItem>>,
    paused: HashMap<TopicPartition, Option<ReceiverStream<FetchItem>>>,
    /// Every assigned partition (delivering or paused).
    assigned: std::collections::BTreeSet<TopicPartition>,
    /// Partitions whose next batch does not decode, with why (they stay paused there).
    stuck: BTreeMap<TopicPartition, BatchError>,
    /// The next offset to deliver, per assigned partition that has delivered or started.
    positions: BTreeMap<TopicPartition, i64>,
    high_watermarks: BTreeMap<TopicPartition, i64>,
    pending_revoke: Option<(Vec<TopicPartition>, oneshot::Sender<()>)>,
    last_auto_commit: Instant,
    /// The auto-commit under way, if any: at most one at a time.
    auto_commit: Option<JoinHandle<()>>,
    /// Tells the member the application is alive (`max.poll.interval.ms`).
    last_poll: Arc<watch::Sender<PollState>>,
    member: Option<JoinHandle<()>>,
}

/// Marks the application as back from `next()` whichever way `next()` ends.
struct ReturnedOnDrop(Arc<watch::Sender<PollState>>);

impl Drop for ReturnedOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(PollState::Returned(Instant::now()));
    }
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.config.group_id)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl GroupConsumer {
    /// Connects the data path and starts the member task, which joins in the background.
    pub async fn start(
        settings: &ConnectionSettings,
        config: GroupConfig,
        connect_deadline: Duration,
    ) -> Result<Self, GroupError> {
        config.validate().map_err(GroupError::Config)?;
        let bootstrap = connect::broker_connection(settings, connect_deadline).await?;
        let fetcher = Fetcher::start(settings, bootstrap, config.fetch_settings());
        let (command_tx, command_rx) = mpsc::channel(16);
        let (event_tx, event_rx) = mpsc::channel(4);
        let (snapshot_tx, snapshot_rx) = watch::channel(MemberSnapshot {
            group_instance_id: config.group_instance_id.clone(),
            generation: -1,
            ..MemberSnapshot::default()
        });
        let (last_poll_tx, last_poll_rx) = watch::channel(PollState::Returned(Instant::now()));
        let links = MemberLinks {
            commands: command_rx,
            events: event_tx,
            snapshot: snapshot_tx,
            last_poll: last_poll_rx,
        };
        let member = Member::new(settings, config.clone(), links);
        let member = tokio::spawn(member.run());
        Ok(Self {
            config,
            fetcher,
            commands: command_tx,
            events: event_rx,
            snapshot: snapshot_rx,
            fetched: StreamMap::new(),
            paused: HashMap::new(),
            assigned: Default::default(),
            stuck: BTreeMap::new(),
            positions: BTreeMap::new(),
            high_watermarks: BTreeMap::new(),
            pending_revoke: None,
            last_auto_commit: Instant::now(),
            auto_commit: None,
            last_poll: Arc::new(last_poll_tx),
            member: Some(member),
        })
    }

    /// The next event; `None` once the member has closed.
    ///
    /// Waiting in here counts as polling for `max.poll.interval.ms`, however long it takes:
    /// Java's `poll` returns empty after its time-out and is called again, which keeps an idle
    /// consumer in the group; a caller waiting here for the next record is just as alive. The
    /// clock starts when an event is handed to the application.
    pub async fn next(&mut self) -> Option<Result<ConsumerEvent, GroupError>> {
        self.last_poll.send_replace(PollState::Waiting);
        // Also when the caller drops this future (a `select!` that took another branch).
        let _returned = ReturnedOnDrop(Arc::clone(&self.last_poll));
        self.next_event().await
    }

    async fn next_event(&mut self) -> Option<Result<ConsumerEvent, GroupError>> {
        self.finish_revoke();
        if self.config.enable_auto_commit
            && self.last_auto_commit.elapsed() >= self.config.auto_commit_interval
        {
            self.start_auto_commit();
        }
        loop {
            tokio::select! {
                biased;
                event = self.events.recv() => {
                    return match event? {
                        MemberEvent::Assigned { partitions, .. } => Some(self.on_assigned(partitions).await),
                        MemberEvent::Revoke { partitions, lost, ack } => Some(Ok(self.on_revoke(partitions, lost, ack).await)),
                        MemberEvent::Failed(e) => Some(Err(e)),
                    };
                }
                item = self.fetched.next(), if !self.fetched.is_empty() => match item {
                    Some((partition, FetchItem::Batch { records, high_watermark, share })) => {
                        self.stuck.remove(&partition);
                        if let Some(last) = records.last() {
                            self.positions.insert(partition.clone(), last.offset + 1);
                        }
                        self.high_watermarks.insert(partition.clone(), high_watermark);
                        return Some(Ok(ConsumerEvent::Records(RecordBatch { partition, records, high_watermark, budget: HeldBytes(Some(share)) })));
                    }
                    Some((partition, FetchItem::Stuck(error))) => {
                        self.stuck.insert(partition.clone(), error.clone());
                        return Some(Ok(ConsumerEvent::Stuck { partition, error }));
                    }
                    Some((partition, FetchItem::Failed(e))) => {
                        self.stop_fetcher(&partition);
                        return Some(Err(e));
                    }
                    None => continue,
                },
            }
        }
    }

    /// The consumer as a `Stream` of events.
    pub fn into_stream(self) -> impl Stream<Item = Result<ConsumerEvent, GroupError>> {
        futures::stream::unfold(self, |mut consumer| async move {
            consumer.next().await.map(|event| (event, consumer))
        })
    }

    /// Fixes every new partition's position (committed offset, or `auto.offset.reset`) before
    /// reporting the assignment, so "assigned" means "reading from a known position".
    async fn on_assigned(
        &mut self,
        partitions: Vec<(TopicPartition, StartOffset)>,
    ) -> Result<ConsumerEvent, GroupError> {
        if partitions.is_empty() {
            // A cooperative rebalance that moved nothing to us (Java still calls
            // onPartitionsAssigned, with an empty set).
            return Ok(ConsumerEvent::Assigned(Vec::new()));
        }
        let started = self.fetcher.assign(partitions).await?;
        let mut assigned = Vec::with_capacity(started.len());
        for partition in started {
            self.positions
                .insert(partition.partition.clone(), partition.position);
            self.assigned.insert(partition.partition.clone());
            self.fetched.insert(
                partition.partition.clone(),
                ReceiverStream::new(partition.receiver),
            );
            assigned.push(partition.partition);
        }
        Ok(ConsumerEvent::Assigned(assigned))
    }

    async fn on_revoke(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
        ack: oneshot::Sender<()>,
    ) -> ConsumerEvent {
        for partition in &partitions {
            self.stop_fetcher(partition);
        }
        if self.config.enable_auto_commit && !lost {
            let offsets = self.delivered(&partitions);
            if !offsets.is_empty()
                && let Err(e) = self.commit(offsets).await
            {
                tracing::warn!(error = %e, "commit before revoking failed");
            }
        }
        // Positions stay until the application polls again, so its on-revoke hook can
        // still commit them.
        self.pending_revoke = Some((partitions.clone(), ack));
        ConsumerEvent::Revoked { partitions, lost }
    }

    /// The application polled after a revocation: forget those partitions and let the member
    /// rejoin.
    fn finish_revoke(&mut self) {
        if let Some((partitions, ack)) = self.pending_revoke.take() {
            for partition in &partitions {
                self.positions.remove(partition);
                self.high_watermarks.remove(partition);
            }
            let _ = ack.send(());
        }
    }

    /// Commits the delivered positions in the background, as Java's auto-commit does
    /// (`commitAsync`): a commit held across a rebalance must not stop the records of the
    /// partitions we keep. One at a time; a round whose predecessor is still out is skipped.
    fn start_auto_commit(&mut self) {
        if self.auto_commit.as_ref().is_some_and(|c| !c.is_finished()) {
            return;
        }
        self.last_auto_commit = Instant::now();
        let offsets: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .map(|(partition, offset)| (partition.clone(), *offset))
            .collect();
        if offsets.is_empty() {
            return;
        }
        let committer = self.committer();
        self.auto_commit = Some(tokio::spawn(async move {
            if let Err(e) = committer.commit(offsets).await {
                tracing::warn!(error = %e, "auto-commit failed");
            }
        }));
    }

    fn stop_fetcher(&mut self, partition: &TopicPartition) {
        self.fetched.remove(partition);
        self.paused.remove(partition);
        self.stuck.remove(partition);
        if self.assigned.remove(partition) {
            self.fetcher.remove(vec![partition.clone()]);
        }
    }

    /// Commits explicit offsets (each the next offset to read) and returns per-partition
    /// outcomes.
    pub async fn commit(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> Result<Vec<CommitOutcome>, GroupError> {
        self.committer().commit(offsets).await
    }

    /// A handle that commits from other tasks (e.g. per-partition workers) while this
    /// consumer keeps polling.
    pub fn committer(&self) -> Committer {
        Committer {
            commands: self.commands.clone(),
        }
    }

    /// Commits the position after the last delivered record of every assigned partition.
    pub async fn commit_positions(&self) -> Result<Vec<CommitOutcome>, GroupError> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .map(|(partition, offset)| (partition.clone(), *offset))
            .collect();
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        self.commit(offsets).await
    }

    fn delivered(&self, partitions: &[TopicPartition]) -> Vec<(TopicPartition, i64)> {
        partitions
            .iter()
            .filter_map(|p| self.positions.get(p).map(|offset| (p.clone(), *offset)))
            .collect()
    }

    /// Stops delivering a partition; its fetcher stops once its small buffer is full.
    pub fn pause(&mut self, partition: &TopicPartition) {
        if let Some(stream) = self.fetched.remove(partition) {
            self.paused.insert(partition.clone(), Some(stream));
        }
    }

    pub fn resume(&mut self, partition: &TopicPartition) {
        if let Some(Some(stream)) = self.paused.remove(partition) {
            self.fetched.insert(partition.clone(), stream);
        }
    }

    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.keys().cloned().collect()
    }

    /// The partitions currently assigned (delivering or paused).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.iter().cloned().collect()
    }

    /// Partitions paused on a batch that does not decode, with the error naming its offset.
    pub fn stuck(&self) -> &BTreeMap<TopicPartition, BatchError> {
        &self.stuck
    }

    /// Bytes fetched and not yet handed to the application (bounded by
    /// `queued.max.messages.kbytes`).
    pub fn queued_bytes(&self) -> usize {
        self.fetcher.queued_bytes()
    }

    /// Member id, generation, phase and assignment as the member last published them.
    pub fn snapshot(&self) -> MemberSnapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every snapshot the member publishes.
    pub fn watch_snapshot(&self) -> watch::Receiver<MemberSnapshot> {
        self.snapshot.clone()
    }

    /// The next offset to deliver, per partition.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.positions
    }

    /// High watermark − position, per partition with both known.
    pub fn lag(&self) -> BTreeMap<TopicPartition, i64> {
        self.high_watermarks
            .iter()
            .filter_map(|(partition, high)| {
                self.positions
                    .get(partition)
                    .map(|position| (partition.clone(), (high - position).max(0)))
            })
            .collect()
    }

    /// Commits positions if auto-commit is on, stops fetching and leaves the group (dynamic
    /// members only), then waits for the member task to end.
    pub async fn close(mut self) -> Result<(), GroupError> {
        self.finish_revoke();
        let commit_result = if self.config.enable_auto_commit {
            self.commit_positions().await.map(|_| ())
        } else {
            Ok(())
        };
        let partitions: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        for partition in &partitions {
            self.stop_fetcher(partition);
        }
        let (reply, closed) = oneshot::channel();
        if self.commands.send(Command::Close { reply }).await.is_ok() {
            let _ = closed.await;
        }
        if let Some(member) = self.member.take() {
            let _ = member.await;
        }
        commit_result
    }
}

/// Commits offsets through the member from any task.
#[derive(Debug, Clone)]
pub struct Committer {
    commands: mpsc::Sender<Command>,
}

impl Committer {
    /// Commits explicit offsets (each the next offset to read).
    pub async fn commit(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> Result<Vec<CommitOutcome>, GroupError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Commit { offsets, reply })
            .await
            .map_err(|_| GroupError::Closed)?;
        answer.await.map_err(|_| GroupError::Closed)?
    }
}

impl GroupConsumer {
    /// Stops everything at once, as a killed process would: no commit, no LeaveGroup, no
    /// more heartbeats. The coordinator notices only when the session times out.
    pub fn abort(mut self) {
        if let Some(member) = self.member.take() {
            member.abort();
        }
    }
}

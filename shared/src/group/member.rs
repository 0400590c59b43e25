//! The group member's state machine: find coordinator → join → sync → stable (heartbeats) →
//! rebalance (revoke, rejoin) → close, as one task that alone owns the member's state.
//!
//! The consumer handle talks to it through two channels (commands in, events out) and reads a
//! published snapshot; nothing else touches member id, generation or assignment. JoinGroup and
//! SyncGroup run on their own coordinator connection while heartbeats and commits use another,
//! so a JoinGroup held by the broker for a whole rebalance never starves a commit. Every error
//! code goes through `errors::classify` and is acted on in the `match`es below.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::GroupError;
use super::assignor::{self, GroupMember};
use super::config::GroupConfig;
use super::coordinator::{Coordinator, MemberIdentityParts, TopicPartitionsList};
use super::errors::{self, ErrorAction, GroupApi, code};
use super::fetch::{StartOffset, TopicPartition};
use super::protocol::{self, Subscription, TopicPartitions};
use crate::settings::ConnectionSettings;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Retries for a commit whose coordinator moved or was loading.
const COMMIT_ATTEMPTS: u32 = 5;

/// The result of committing one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    pub partition: TopicPartition,
    pub offset: i64,
    /// `None` when committed; otherwise the Kafka error code.
    pub error_code: Option<i16>,
}

impl CommitOutcome {
    pub fn is_committed(&self) -> bool {
        self.error_code.is_none()
    }
}

/// Requests from the consumer handle.
#[derive(Debug)]
pub enum Command {
    Commit {
        offsets: Vec<(TopicPartition, i64)>,
        reply: oneshot::Sender<Result<Vec<CommitOutcome>, GroupError>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// What the member tells the consumer handle.
#[derive(Debug)]
pub enum MemberEvent {
    /// A new assignment and where each partition starts.
    Assigned {
        generation: i32,
        partitions: Vec<(TopicPartition, StartOffset)>,
    },
    /// These partitions leave; `lost` means they can no longer be committed (the generation
    /// or member id is gone). The member waits for `ack` (or the rebalance timeout) before it
    /// rejoins, which is the application's chance to flush and commit.
    Revoke {
        partitions: Vec<TopicPartition>,
        lost: bool,
        ack: oneshot::Sender<()>,
    },
    /// The member stopped for good.
    Failed(GroupError),
}

/// Where the member is in its lifecycle, for the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberPhase {
    #[default]
    Joining,
    Stable,
    Rebalancing,
    Closed,
    Failed,
}

/// What the member publishes for observers (readiness, metrics).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSnapshot {
    pub phase: MemberPhase,
    pub member_id: String,
    pub generation: i32,
    pub group_instance_id: Option<String>,
    pub leader: bool,
    pub protocol: String,
    pub assignment: Vec<TopicPartition>,
    /// Completed rebalances (joins that ended in an assignment).
    pub rebalances: u64,
}

const POLL_EXPIRED: &str = "the application did not poll within max.poll.interval.ms";

/// Why the stable phase ended.
enum StableExit {
    Close(oneshot::Sender<()>),
    Rejoin {
        lost: bool,
        reset_member_id: bool,
        reason: &'static str,
    },
}

/// The outcome of one successful join and sync.
struct Joined {
    identity: MemberIdentityParts,
    leader: bool,
    protocol: String,
    assignment: TopicPartitions,
}

pub struct Member {
    config: GroupConfig,
    joiner: Coordinator,
    control: Coordinator,
    /// The member id to join with ("" until the coordinator hands one out).
    member_id: String,
    /// The identity of the current generation, while we have one.
    identity: Option<MemberIdentityParts>,
    assignment: TopicPartitions,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<MemberEvent>,
    snapshot: watch::Sender<MemberSnapshot>,
    /// Whether the application is polling, or since when it has not (`max.poll.interval.ms`).
    last_poll: watch::Receiver<PollState>,
}

/// Where the application is in its poll loop, as the member sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollState {
    /// Inside `GroupConsumer::next`, waiting for an event: alive however long it waits.
    Waiting,
    /// Last handed an event at this instant and has not asked for the next one since.
    Returned(Instant),
}

impl PollState {
    /// Past `max.poll.interval.ms` without asking for the next event.
    pub fn overdue(&self, max_poll_interval: Duration) -> bool {
        matches!(self, PollState::Returned(at) if at.elapsed() > max_poll_interval)
    }
}

/// The member's channels to and from the consumer handle.
pub struct MemberLinks {
    pub commands: mpsc::Receiver<Command>,
    pub events: mpsc::Sender<MemberEvent>,
    pub snapshot: watch::Sender<MemberSnapshot>,
    pub last_poll: watch::Receiver<PollState>,
}

impl Member {
    pub fn new(settings: &ConnectionSettings, config: GroupConfig, links: MemberLinks) -> Self {
        let MemberLinks {
            commands,
            events,
            snapshot,
            last_poll,
        } = links;
        let joiner = Coordinator::new(settings, &config.group_id, config.request_timeout);
        let control = Coordinator::new(settings, &config.group_id, config.request_timeout);
        Self {
            config,
            joiner,
            control,
            member_id: String::new(),
            identity: None,
            assignment: TopicPartitions::new(),
            commands,
            events,
            snapshot,
            last_poll,
        }
    }

    /// Runs until closed or failed; a failure is also sent as [`MemberEvent::Failed`].
    pub async fn run(mut self) {
        match self.lifecycle().await {
            Ok(()) => self.publish(MemberPhase::Closed),
            Err(e) => {
                tracing::error!(group = %self.config.group_id, error = %e, "group member stopped");
                self.publish(MemberPhase::Failed);
                let _ = self.events.send(MemberEvent::Failed(e)).await;
            }
        }
    }

    async fn lifecycle(&mut self) -> Result<(), GroupError> {
        let mut reason = "joining";
        loop {
            self.publish(MemberPhase::Joining);
            let Some(joined) = self.join_serving_commands(reason).await? else {
                return Ok(());
            };
            self.adopt(joined);
            let starts = self.start_offsets().await?;
            let generation = self.identity.as_ref().map_or(-1, |i| i.generation_id);
            if self
                .events
                .send(MemberEvent::Assigned {
                    generation,
                    partitions: starts,
                })
                .await
                .is_err()
            {
                // The handle is gone: nobody consumes, so leave.
                self.leave_if_dynamic().await;
                return Ok(());
            }
            match self.stable().await? {
                StableExit::Close(reply) => {
                    self.leave_if_dynamic().await;
                    let _ = reply.send(());
                    return Ok(());
                }
                StableExit::Rejoin {
                    lost,
                    reset_member_id,
                    reason: why,
                } => {
                    tracing::info!(group = %self.config.group_id, reason = why, lost, "rebalancing");
                    self.publish(MemberPhase::Rebalancing);
                    let poll_expired = why == POLL_EXPIRED;
                    if poll_expired {
                        // Java's member leaves at once so the group can move on without us.
                        self.leave_if_dynamic().await;
                    }
                    if let Some(reply) = self.revoke(lost, poll_expired).await {
                        self.leave_if_dynamic().await;
                        let _ = reply.send(());
                        return Ok(());
                    }
                    self.identity = None;
                    if reset_member_id {
                        self.member_id.clear();
                    }
                    reason = why;
                }
            }
        }
    }

    fn adopt(&mut self, joined: Joined) {
        tracing::info!(
            group = %self.config.group_id,
            member = %joined.identity.member_id,
            generation = joined.identity.generation_id,
            leader = joined.leader,
            protocol = %joined.protocol,
            assignment = ?joined.assignment,
            "joined group"
        );
        self.member_id = joined.identity.member_id.clone();
        self.identity = Some(joined.identity);
        self.assignment = joined.assignment;
        self.snapshot.send_modify(|s| {
            s.leader = joined.leader;
            s.protocol = joined.protocol;
            s.rebalances += 1;
        });
        self.publish(MemberPhase::Stable);
    }

    fn publish(&self, phase: MemberPhase) {
        let assignment = partitions_of(&self.assignment);
        self.snapshot.send_modify(|s| {
            s.phase = phase;
            s.member_id = self.member_id.clone();
            s.generation = self.identity.as_ref().map_or(-1, |i| i.generation_id);
            s.group_instance_id = self.config.group_instance_id.clone();
            s.assignment = assignment;
        });
    }

    /// Joins and syncs, serving commits meanwhile. `None` if asked to close.
    async fn join_serving_commands(&mut self, reason: &str) -> Result<Option<Joined>, GroupError> {
        let join = join_and_sync(&mut self.joiner, &self.config, &mut self.member_id, reason);
        tokio::pin!(join);
        loop {
            tokio::select! {
                joined = &mut join => return joined.map(Some),
                command = self.commands.recv() => match command {
                    Some(Command::Commit { offsets, reply }) => {
                        let (result, _) = commit(&mut self.control, &self.config, self.identity.as_ref(), &offsets).await;
                        let _ = reply.send(result);
                    }
                    Some(Command::Close { reply }) => {
                        let _ = reply.send(());
                        return Ok(None);
                    }
                    None => return Ok(None),
                },
            }
        }
    }

    /// OffsetFetch for the assignment; partitions without a committed offset get the reset
    /// policy, which the fetcher applies.
    async fn start_offsets(&mut self) -> Result<Vec<(TopicPartition, StartOffset)>, GroupError> {
        let wanted: TopicPartitionsList = self
            .assignment
            .iter()
            .filter(|(_, partitions)| !partitions.is_empty())
            .map(|(topic, partitions)| (topic.clone(), partitions.clone()))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut backoff = MIN_BACKOFF;
        loop {
            let outcome = self.control.committed(&wanted).await;
            let retry = match outcome {
                Ok((top_level, committed)) => {
                    let unstable = committed.iter().any(|(_, c)| {
                        errors::classify(GroupApi::OffsetFetch, c.error_code) == ErrorAction::Retry
                    });
                    match errors::classify(GroupApi::OffsetFetch, top_level) {
                        ErrorAction::Proceed if !unstable => {
                            return Ok(self.resolve_starts(&committed));
                        }
                        ErrorAction::Proceed | ErrorAction::Retry => true,
                        ErrorAction::RefindCoordinator => {
                            self.control.mark_unknown();
                            true
                        }
                        ErrorAction::FencedInstance => return Err(self.fenced()),
                        _ => {
                            return Err(GroupError::Fatal {
                                api: GroupApi::OffsetFetch,
                                error_code: top_level,
                            });
                        }
                    }
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "offset fetch failed; retrying");
                    true
                }
                Err(e) => return Err(e),
            };
            if retry {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn resolve_starts(
        &self,
        committed: &[(String, super::coordinator::CommittedOffset)],
    ) -> Vec<(TopicPartition, StartOffset)> {
        partitions_of(&self.assignment)
            .into_iter()
            .map(|tp| {
                let offset = committed
                    .iter()
                    .find(|(topic, c)| *topic == tp.topic && c.partition == tp.partition)
                    .map(|(_, c)| c.offset)
                    .unwrap_or(-1);
                let start = if offset >= 0 {
                    StartOffset::Committed(offset)
                } else {
                    StartOffset::Reset(self.config.auto_offset_reset)
                };
                (tp, start)
            })
            .collect()
    }

    /// Heartbeats and serves commits until a rebalance, a failure or close.
    async fn stable(&mut self) -> Result<StableExit, GroupError> {
        let identity = self
            .identity
            .clone()
            .ok_or(GroupError::CoordinatorUnknown)?;
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut last_heartbeat_ok = Instant::now();
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if self.last_poll.borrow().overdue(self.config.max_poll_interval) {
                        tracing::warn!(group = %self.config.group_id, "{POLL_EXPIRED}; leaving until it polls again");
                        return Ok(StableExit::Rejoin { lost: true, reset_member_id: true, reason: POLL_EXPIRED });
                    }
                    match self.control.heartbeat(&identity).await {
                        Ok(error_code) => match errors::classify(GroupApi::Heartbeat, error_code) {
                            ErrorAction::Proceed => last_heartbeat_ok = Instant::now(),
                            ErrorAction::RejoinIfStable => {
                                return Ok(StableExit::Rejoin { lost: false, reset_member_id: false, reason: "the group is rebalancing" });
                            }
                            ErrorAction::RejoinKeepingId => {
                                return Ok(StableExit::Rejoin { lost: true, reset_member_id: false, reason: "our generation is stale (ILLEGAL_GENERATION)" });
                            }
                            ErrorAction::RejoinResettingId => {
                                return Ok(StableExit::Rejoin { lost: true, reset_member_id: true, reason: "the coordinator no longer knows our member id (UNKNOWN_MEMBER_ID)" });
                            }
                            ErrorAction::RefindCoordinator | ErrorAction::Retry => self.control.mark_unknown(),
                            ErrorAction::FencedInstance => return Err(self.fenced()),
                            _ => return Err(GroupError::Fatal { api: GroupApi::Heartbeat, error_code }),
                        },
                        Err(e) if e.is_retriable() => {
                            tracing::warn!(error = %e, "heartbeat failed");
                            if last_heartbeat_ok.elapsed() > self.config.session_timeout {
                                // The coordinator has surely expired us; do not pretend to own anything.
                                return Ok(StableExit::Rejoin { lost: true, reset_member_id: self.config.group_instance_id.is_none(), reason: "no heartbeat got through within the session timeout" });
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Commit { offsets, reply }) => {
                        let (result, rejoin) = commit(&mut self.control, &self.config, Some(&identity), &offsets).await;
                        let fenced = matches!(result, Err(GroupError::Fenced { .. }));
                        let _ = reply.send(result);
                        if fenced {
                            return Err(self.fenced());
                        }
                        if let Some((lost, reset_member_id)) = rejoin {
                            return Ok(StableExit::Rejoin { lost, reset_member_id, reason: "a commit found the group rebalancing" });
                        }
                    }
                    Some(Command::Close { reply }) => return Ok(StableExit::Close(reply)),
                    None => {
                        let (reply, _) = oneshot::channel();
                        return Ok(StableExit::Close(reply));
                    }
                },
            }
        }
    }

    /// Eager revocation: every partition leaves before we rejoin. Serves commits while the
    /// handle flushes; returns a close reply if asked to close meanwhile. After a poll
    /// time-out it waits for the application however long it takes: rejoining would only hand
    /// partitions to a member that is not reading.
    async fn revoke(&mut self, lost: bool, wait_for_poll: bool) -> Option<oneshot::Sender<()>> {
        let partitions = partitions_of(&self.assignment);
        self.assignment.clear();
        let (ack, acked) = oneshot::channel();
        if self
            .events
            .send(MemberEvent::Revoke {
                partitions,
                lost,
                ack,
            })
            .await
            .is_err()
        {
            return None;
        }
        let patience = if wait_for_poll {
            Duration::from_secs(365 * 24 * 3600)
        } else {
            self.config.max_poll_interval
        };
        let deadline = tokio::time::sleep(patience);
        tokio::pin!(deadline);
        tokio::pin!(acked);
        loop {
            tokio::select! {
                _ = &mut acked => return None,
                _ = &mut deadline => {
                    tracing::warn!("the application did not finish revoking within max.poll.interval.ms; rejoining anyway");
                    return None;
                }
                command = self.commands.recv() => match command {
                    Some(Command::Commit { offsets, reply }) => {
                        let identity = if lost { None } else { self.identity.as_ref() };
                        let (result, _) = commit(&mut self.control, &self.config, identity, &offsets).await;
                        let _ = reply.send(result);
                    }
                    Some(Command::Close { reply }) => return Some(reply),
                    None => return None,
                },
            }
        }
    }

    /// LeaveGroup for dynamic members; static members never send it (KIP-345), so a restart
    /// within the session timeout keeps their partitions without a rebalance.
    async fn leave_if_dynamic(&mut self) {
        if self.config.group_instance_id.is_some() || self.member_id.is_empty() {
            return;
        }
        let identity = MemberIdentityParts {
            group_id: self.config.group_id.clone(),
            member_id: self.member_id.clone(),
            generation_id: self.identity.as_ref().map_or(-1, |i| i.generation_id),
            group_instance_id: None,
        };
        match self.control.leave(&identity).await {
            Ok(code::NONE) => tracing::info!(member = %identity.member_id, "left the group"),
            Ok(error_code) => {
                tracing::warn!(error = errors::name(error_code), "LeaveGroup refused")
            }
            Err(e) => tracing::warn!(error = %e, "LeaveGroup failed"),
        }
    }

    fn fenced(&self) -> GroupError {
        GroupError::Fenced {
            instance_id: self.config.group_instance_id.clone().unwrap_or_default(),
        }
    }
}

/// Our subscription as JoinGroup metadata, once per assignor we offer.
fn join_protocols(config: &GroupConfig) -> Result<Vec<(String, Vec<u8>)>, GroupError> {
    let mut topics = config.topics.clone();
    topics.sort();
    topics.dedup();
    let subscription = Subscription {
        topics,
        generation_id: -1,
        ..Subscription::default()
    };
    let metadata = protocol::encode_subscription(&subscription)
        .map_err(|e| GroupError::Protocol(e.to_string()))?;
    Ok(config
        .assignors
        .iter()
        .map(|name| (name.clone(), metadata.clone()))
        .collect())
}

/// One complete join + sync, retrying as the error table says until it succeeds or fails
/// fatally. Only touches the join connection and the member id.
async fn join_and_sync(
    joiner: &mut Coordinator,
    config: &GroupConfig,
    member_id: &mut String,
    reason: &str,
) -> Result<Joined, GroupError> {
    let protocols = join_protocols(config)?;
    let instance = config.group_instance_id.as_deref();
    let fenced = || GroupError::Fenced {
        instance_id: config.group_instance_id.clone().unwrap_or_default(),
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        let response = match joiner
            .join(
                member_id,
                instance,
                config.session_timeout,
                config.max_poll_interval,
                &protocols,
                reason,
                config.join_timeout(),
            )
            .await
        {
            Ok(response) => response,
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "JoinGroup failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(e) => return Err(e),
        };
        match errors::classify(GroupApi::JoinGroup, response.error_code) {
            ErrorAction::Proceed => {}
            ErrorAction::JoinWithAssignedId => {
                *member_id = response.member_id.to_string();
                continue;
            }
            ErrorAction::RejoinResettingId => {
                member_id.clear();
                continue;
            }
            ErrorAction::RefindCoordinator => {
                joiner.mark_unknown();
                tokio::time::sleep(backoff).await;
                continue;
            }
            ErrorAction::Retry | ErrorAction::RejoinKeepingId | ErrorAction::RejoinIfStable => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            ErrorAction::FencedInstance => return Err(fenced()),
            _ => {
                return Err(GroupError::Fatal {
                    api: GroupApi::JoinGroup,
                    error_code: response.error_code,
                });
            }
        }
        *member_id = response.member_id.to_string();
        let identity = MemberIdentityParts {
            group_id: config.group_id.clone(),
            member_id: member_id.clone(),
            generation_id: response.generation_id,
            group_instance_id: config.group_instance_id.clone(),
        };
        let protocol = response
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let leader = response.leader.as_str() == member_id.as_str();
        // A returning static leader of a stable group must not reassign (JoinGroup v9).
        let assignments = if leader && !response.skip_assignment {
            let members: Vec<GroupMember> = response
                .members
                .iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                    subscription: protocol::decode_subscription(&m.metadata).unwrap_or_else(|e| {
                        tracing::warn!(member = %m.member_id, error = %e, "undecodable subscription; assigning it nothing");
                        Subscription::default()
                    }),
                })
                .collect();
            match leader_assign(joiner, &protocol, &members).await {
                Ok(assignments) => assignments,
                Err(e) if e.is_retriable() => {
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            Vec::new()
        };
        let sync = match joiner
            .sync(&identity, &protocol, assignments, config.join_timeout())
            .await
        {
            Ok(sync) => sync,
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(backoff).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        match errors::classify(GroupApi::SyncGroup, sync.error_code) {
            ErrorAction::Proceed => {
                let assignment = protocol::decode_assignment(&sync.assignment)
                    .map_err(|e| GroupError::Protocol(e.to_string()))?;
                return Ok(Joined {
                    identity,
                    leader,
                    protocol,
                    assignment: assignment.partitions,
                });
            }
            ErrorAction::RejoinResettingId => member_id.clear(),
            ErrorAction::RefindCoordinator => joiner.mark_unknown(),
            ErrorAction::FencedInstance => return Err(fenced()),
            ErrorAction::RejoinKeepingId | ErrorAction::RejoinIfStable | ErrorAction::Retry => {}
            _ => {
                return Err(GroupError::Fatal {
                    api: GroupApi::SyncGroup,
                    error_code: sync.error_code,
                });
            }
        }
        tokio::time::sleep(MIN_BACKOFF).await;
    }
}

/// The leader runs the chosen assignor; every member gets an entry, even an empty one, since
/// Java followers fail on a missing assignment.
async fn leader_assign(
    joiner: &mut Coordinator,
    protocol_name: &str,
    members: &[GroupMember],
) -> Result<Vec<(String, Vec<u8>)>, GroupError> {
    let assignor = assignor::assignor_by_name(protocol_name).ok_or_else(|| {
        GroupError::Protocol(format!(
            "the group chose assignor {protocol_name:?}, which we do not offer"
        ))
    })?;
    let mut topics: Vec<String> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter().cloned())
        .collect();
    topics.sort();
    topics.dedup();
    let counts = joiner.partition_counts(&topics).await?;
    let assignments = assignor.assign(members, &counts);
    members
        .iter()
        .map(|m| {
            let assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
            protocol::encode_assignment(&assignment)
                .map(|bytes| (m.member_id.clone(), bytes))
                .map_err(|e| GroupError::Protocol(e.to_string()))
        })
        .collect()
}

/// Commits offsets with the given identity, retrying coordinator moves. Returns the outcomes
/// and, if the group is rebalancing under us, whether to rejoin (lost, reset member id).
async fn commit(
    control: &mut Coordinator,
    config: &GroupConfig,
    identity: Option<&MemberIdentityParts>,
    offsets: &[(TopicPartition, i64)],
) -> (Result<Vec<CommitOutcome>, GroupError>, Option<(bool, bool)>) {
    // Outside a generation, Kafka only accepts commits with generation -1 and no member id
    // (and only while the group is empty).
    let anonymous = MemberIdentityParts {
        group_id: config.group_id.clone(),
        member_id: String::new(),
        generation_id: -1,
        group_instance_id: None,
    };
    let identity = identity.unwrap_or(&anonymous);
    let request: Vec<(String, i32, i64)> = offsets
        .iter()
        .map(|(tp, offset)| (tp.topic.clone(), tp.partition, *offset))
        .collect();
    let mut backoff = MIN_BACKOFF;
    for attempt in 1..=COMMIT_ATTEMPTS {
        let response = match control.commit(identity, &request).await {
            Ok(response) => response,
            Err(e) if e.is_retriable() && attempt < COMMIT_ATTEMPTS => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(e) => return (Err(e), None),
        };
        let mut retry = false;
        let mut rejoin = None;
        let mut outcomes = Vec::with_capacity(response.len());
        for (topic, partition, error_code) in response {
            let offset = offsets
                .iter()
                .find(|(tp, _)| tp.topic == topic && tp.partition == partition)
                .map_or(-1, |(_, o)| *o);
            match errors::classify(GroupApi::OffsetCommit, error_code) {
                ErrorAction::Proceed => {}
                ErrorAction::RefindCoordinator => {
                    control.mark_unknown();
                    retry = true;
                }
                ErrorAction::Retry => retry = true,
                ErrorAction::RejoinKeepingId => rejoin = Some((false, false)),
                ErrorAction::RejoinResettingId => rejoin = Some((true, true)),
                ErrorAction::FencedInstance => {
                    return (
                        Err(GroupError::Fenced {
                            instance_id: config.group_instance_id.clone().unwrap_or_default(),
                        }),
                        None,
                    );
                }
                _ => {}
            }
            outcomes.push(CommitOutcome {
                partition: TopicPartition::new(topic, partition),
                offset,
                error_code: (error_code != code::NONE).then_some(error_code),
            });
        }
        if retry && attempt < COMMIT_ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        return (Ok(outcomes), rejoin);
    }
    (Err(GroupError::CoordinatorUnknown), None)
}

fn partitions_of(assignment: &TopicPartitions) -> Vec<TopicPartition> {
    assignment
        .iter()
        .flat_map(|(topic, partitions)| {
            partitions
                .iter()
                .map(|p| TopicPartition::new(topic.clone(), *p))
        })
        .collect()
}

//! The member's one command-serving loop: while the member waits on anything (a JoinGroup the
//! broker holds, a SyncGroup, the next heartbeat tick, the application's revoke hook) the desk
//! answers commits on the control connection and notices a request to close.
//!
//! It owns the control connection's commits and the commits parked across a rebalance; it must
//! not change the member's state: it reports what it saw (a close, a commit that found the
//! group rebalancing) and the lifecycle decides. Commits refused with REBALANCE_IN_PROGRESS
//! are parked and sent again with the next generation, as the Java consumer does, because the
//! partitions a cooperative member keeps are still its own to commit.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use super::super::GroupError;
use super::super::config::GroupConfig;
use super::super::coordinator::{Coordinator, MemberIdentityParts};
use super::super::errors::{self, ErrorAction, GroupApi, code};
use super::super::fetch::TopicPartition;
use super::cause::RejoinCause;
use super::{Command, CommitOutcome};
use crate::backoff::{Backoff, BackoffPolicy};

/// Retries for a commit whose coordinator moved or was loading.
const COMMIT_ATTEMPTS: u32 = 5;

/// What ended a wait at the desk.
pub(super) enum Served<T> {
    /// The awaited work finished.
    Done(T),
    /// The application asked to close (or dropped its handle); reply once the member is out.
    Close(oneshot::Sender<()>),
    /// A commit found that our generation is over (only when asked to stop for that).
    Noticed(RejoinCause),
}

/// A commit the coordinator refused because the group was rebalancing.
struct ParkedCommit {
    offsets: Vec<(TopicPartition, i64)>,
    reply: oneshot::Sender<Result<Vec<CommitOutcome>, GroupError>>,
}

pub(super) struct Desk {
    commands: mpsc::Receiver<Command>,
    pub(super) control: Coordinator,
    config: GroupConfig,
    /// The generation commits are sent in; `None` once it is lost.
    identity: Option<MemberIdentityParts>,
    parked: Vec<ParkedCommit>,
    /// Whether a commit refused for a rebalance is parked (outside a wait on the
    /// application, whose revoke hook may be the one waiting for the answer).
    parking: bool,
    /// The rejoin cause the last commit named, until the lifecycle takes it.
    noticed: Option<RejoinCause>,
}

impl Desk {
    pub(super) fn new(
        commands: mpsc::Receiver<Command>,
        control: Coordinator,
        config: GroupConfig,
    ) -> Self {
        Self {
            commands,
            control,
            config,
            identity: None,
            parked: Vec::new(),
            parking: true,
            noticed: None,
        }
    }

    /// Serves commands until `work` finishes or the application closes. With
    /// `stop_on_notice`, also returns as soon as a commit shows our generation is over.
    pub(super) async fn serve_until<F: Future>(
        &mut self,
        mut work: Pin<&mut F>,
        stop_on_notice: bool,
    ) -> Served<F::Output> {
        loop {
            if stop_on_notice && let Some(cause) = self.noticed.take() {
                return Served::Noticed(cause);
            }
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Commit { offsets, reply }) => self.commit(offsets, reply).await,
                    Some(Command::Close { reply }) => return Served::Close(reply),
                    None => return Served::Close(oneshot::channel().0),
                },
                output = &mut work => return Served::Done(output),
            }
        }
    }

    /// The generation commits go out in from now on.
    pub(super) fn set_identity(&mut self, identity: Option<MemberIdentityParts>) {
        self.identity = identity;
        self.noticed = None;
    }

    /// Sends the parked commits again in the current generation, for the partitions in
    /// `ours`; the others are answered with the REBALANCE_IN_PROGRESS they met.
    pub(super) async fn resend_parked(&mut self, ours: &BTreeSet<TopicPartition>) {
        for parked in std::mem::take(&mut self.parked) {
            let (mine, gone): (Vec<_>, Vec<_>) = parked
                .offsets
                .into_iter()
                .partition(|(tp, _)| ours.contains(tp));
            let mut outcomes = refused(&gone, code::REBALANCE_IN_PROGRESS);
            let result = if mine.is_empty() {
                Ok(outcomes)
            } else {
                let (result, _) = self.send_commit(&mine).await;
                result.map(|sent| {
                    outcomes.extend(sent);
                    outcomes
                })
            };
            let _ = parked.reply.send(result);
        }
    }

    /// Whether commits refused for a rebalance wait for the next generation from now on.
    pub(super) fn set_parking(&mut self, parking: bool) {
        self.parking = parking;
    }

    /// Answers the parked commits with the error they met: used before waiting on the
    /// application, whose revoke hook may itself be waiting on one of them.
    pub(super) fn fail_parked(&mut self) {
        for parked in std::mem::take(&mut self.parked) {
            let _ = parked
                .reply
                .send(Ok(refused(&parked.offsets, code::REBALANCE_IN_PROGRESS)));
        }
    }

    async fn commit(
        &mut self,
        offsets: Vec<(TopicPartition, i64)>,
        reply: oneshot::Sender<Result<Vec<CommitOutcome>, GroupError>>,
    ) {
        let (result, cause) = self.send_commit(&offsets).await;
        if cause == Some(RejoinCause::GroupRebalancing) && self.identity.is_some() && self.parking {
            // The group is between JoinGroup and SyncGroup: the next generation will take it.
            self.parked.push(ParkedCommit { offsets, reply });
            self.noticed = cause;
            return;
        }
        if cause.is_some() {
            self.noticed = cause;
        }
        let _ = reply.send(result);
    }

    /// Commits with the current identity, retrying coordinator moves. Returns the outcomes
    /// and the rejoin cause a partition's error names, if any.
    async fn send_commit(
        &mut self,
        offsets: &[(TopicPartition, i64)],
    ) -> (Result<Vec<CommitOutcome>, GroupError>, Option<RejoinCause>) {
        // Outside a generation Kafka only accepts generation -1 and no member id (and only
        // while the group is empty).
        let anonymous = MemberIdentityParts {
            group_id: self.config.group_id.clone(),
            member_id: String::new(),
            generation_id: -1,
            group_instance_id: None,
        };
        let identity = self.identity.clone().unwrap_or(anonymous);
        let request: Vec<(String, i32, i64)> = offsets
            .iter()
            .map(|(tp, offset)| (tp.topic.clone(), tp.partition, *offset))
            .collect();
        let mut backoff = Backoff::new(BackoffPolicy::REQUESTS);
        for attempt in 1..=COMMIT_ATTEMPTS {
            let last = attempt == COMMIT_ATTEMPTS;
            let response = match self.control.commit(&identity, &request).await {
                Ok(response) => response,
                Err(e) if e.is_retriable() && !last => {
                    pause(&mut backoff).await;
                    continue;
                }
                Err(e) => return (Err(e), None),
            };
            let mut retry = false;
            let mut cause = None;
            let mut outcomes = Vec::with_capacity(response.len());
            for (topic, partition, error_code) in response {
                let offset = offsets
                    .iter()
                    .find(|(tp, _)| tp.topic == topic && tp.partition == partition)
                    .map_or(-1, |(_, o)| *o);
                match errors::classify(GroupApi::OffsetCommit, error_code) {
                    ErrorAction::RefindCoordinator => {
                        self.control.mark_unknown();
                        retry = true;
                    }
                    ErrorAction::Retry => retry = true,
                    ErrorAction::RejoinKeepingId | ErrorAction::RejoinResettingId => {
                        cause = cause.or(RejoinCause::from_commit_error(error_code));
                    }
                    ErrorAction::FencedInstance => {
                        let instance_id = self.config.group_instance_id.clone().unwrap_or_default();
                        return (Err(GroupError::Fenced { instance_id }), None);
                    }
                    _ => {}
                }
                outcomes.push(CommitOutcome {
                    partition: TopicPartition::new(topic, partition),
                    offset,
                    error_code: (error_code != code::NONE).then_some(error_code),
                });
            }
            if retry && !last {
                pause(&mut backoff).await;
                continue;
            }
            return (Ok(outcomes), cause);
        }
        (Err(GroupError::CoordinatorUnknown), None)
    }
}

fn refused(offsets: &[(TopicPartition, i64)], error_code: i16) -> Vec<CommitOutcome> {
    offsets
        .iter()
        .map(|(partition, offset)| CommitOutcome {
            partition: partition.clone(),
            offset: *offset,
            error_code: Some(error_code),
        })
        .collect()
}

/// One wait of a backoff that has no deadline, so it cannot run out.
pub(super) async fn pause(backoff: &mut Backoff) {
    if let Err(e) = backoff.wait().await {
        tracing::debug!(error = %e, "backoff without a deadline ran out");
    }
}

//! The group member's state machine: find coordinator → join → sync → reconcile the assignment
//! → stable (heartbeats) → rejoin → … → leave, as one task that alone owns the member's state.
//!
//! The consumer handle talks to it through two channels (commands in, events out) and reads a
//! published snapshot; nothing else touches member id, generation or assignment. JoinGroup and
//! SyncGroup run on their own coordinator connection (`join`) while heartbeats and commits use
//! another (`desk`), so a JoinGroup held by the broker for a whole rebalance never starves a
//! commit. Eager assignors revoke everything before rejoining; cooperative ones (KIP-429) keep
//! what they own, revoke only what the new assignment takes away, and then rejoin once more.
//! Time is `tokio::time`, so the timers below run on a paused test clock.

mod cause;
mod desk;
mod events;
mod join;
mod stable;
mod starts;

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::GroupError;
use super::assignor::{self, RebalanceProtocol};
use super::config::GroupConfig;
use super::coordinator::{Coordinator, MemberIdentityParts};
use super::errors::{self, code};
use super::fetch::TopicPartition;
use super::protocol::TopicPartitions;
use crate::settings::ConnectionSettings;
pub use cause::RejoinCause;
use desk::{Desk, Served};
pub use events::{
    Command, CommitOutcome, MemberEvent, MemberLinks, MemberPhase, MemberSnapshot, PollState,
};
use join::JoinEnd;

/// What ended a generation, as the lifecycle sees it.
enum Exit {
    Close(oneshot::Sender<()>),
    Rejoin(RejoinCause),
}

/// Where adopting a new assignment leaves the member.
enum Reconciled {
    /// Nothing left to hand over: heartbeat until the next rebalance.
    Stable,
    /// It revoked partitions in a cooperative rebalance: rejoin at once so they can move.
    FollowUp,
    Close(oneshot::Sender<()>),
}

/// The outcome of one successful join and sync.
pub(super) struct Joined {
    identity: MemberIdentityParts,
    leader: bool,
    protocol: String,
    rebalance: RebalanceProtocol,
    assignment: TopicPartitions,
}

pub struct Member {
    config: GroupConfig,
    joiner: Coordinator,
    desk: Desk,
    /// The member id to join with ("" until the coordinator hands one out).
    member_id: String,
    /// The generation we are in, while we have one.
    generation: Option<MemberIdentityParts>,
    /// How the current generation rebalances (from the protocol the group chose).
    rebalance: RebalanceProtocol,
    /// What we own: kept through a cooperative rebalance, empty after an eager revoke.
    assignment: TopicPartitions,
    events: mpsc::Sender<MemberEvent>,
    snapshot: watch::Sender<MemberSnapshot>,
    /// Whether the application is polling, or since when it has not (`max.poll.interval.ms`).
    last_poll: watch::Receiver<PollState>,
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
        let rebalance = configured_protocol(&config);
        Self {
            desk: Desk::new(commands, control, config.clone()),
            config,
            joiner,
            member_id: String::new(),
            generation: None,
            rebalance,
            assignment: TopicPartitions::new(),
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
        let mut cause = RejoinCause::Starting;
        loop {
            let joined = match self.join(cause).await? {
                JoinEnd::Joined(joined) => joined,
                JoinEnd::Close(reply) => return self.close(Some(reply)).await,
            };
            let exit = match self.reconcile(joined).await? {
                Reconciled::Stable => self.stable().await?,
                Reconciled::FollowUp => Exit::Rejoin(RejoinCause::FollowUp),
                Reconciled::Close(reply) => Exit::Close(reply),
            };
            cause = match exit {
                Exit::Close(reply) => return self.close(Some(reply)).await,
                Exit::Rejoin(cause) => cause,
            };
            tracing::info!(group = %self.config.group_id, reason = cause.reason(), "rebalancing");
            self.publish(MemberPhase::Rebalancing);
            if let Some(reply) = self.prepare_rejoin(cause).await {
                return self.close(Some(reply)).await;
            }
        }
    }

    /// What happens between a generation's end and the next JoinGroup: partitions lost or
    /// (eager) all revoked, the member id reset where the coordinator forgot it. Returns a
    /// close reply if the application closed meanwhile.
    async fn prepare_rejoin(&mut self, cause: RejoinCause) -> Option<oneshot::Sender<()>> {
        if cause == RejoinCause::FollowUp {
            return None;
        }
        let lost = cause.loses_partitions();
        if cause == RejoinCause::PollTimeout {
            // Java's member leaves at once so the group can move on without us.
            self.leave_if_dynamic().await;
        }
        if lost || self.rebalance == RebalanceProtocol::Eager {
            let partitions = partitions_of(&self.assignment);
            self.assignment.clear();
            if lost {
                self.generation = None;
                self.desk.set_identity(None);
            }
            let patience = (cause == RejoinCause::PollTimeout).then_some(FOREVER);
            if let Some(reply) = self.revoke(partitions, lost, patience).await {
                return Some(reply);
            }
        }
        if cause.resets_member_id(self.config.group_instance_id.is_some()) {
            self.member_id.clear();
        }
        None
    }

    /// Adopts a new generation: revokes what it takes away (cooperative), reports what it
    /// adds, and resends commits parked during the rebalance. Returns `FollowUp` when it
    /// revoked something in a cooperative rebalance, so the partitions can move on.
    async fn reconcile(&mut self, joined: Joined) -> Result<Reconciled, GroupError> {
        tracing::info!(
            group = %self.config.group_id,
            member = %joined.identity.member_id,
            generation = joined.identity.generation_id,
            leader = joined.leader,
            protocol = %joined.protocol,
            assignment = ?joined.assignment,
            "joined group"
        );
        let owned: BTreeSet<TopicPartition> = partitions_of(&self.assignment).into_iter().collect();
        let next: BTreeSet<TopicPartition> =
            partitions_of(&joined.assignment).into_iter().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&next).cloned().collect();
        let added: Vec<TopicPartition> = next.difference(&owned).cloned().collect();
        self.generation = Some(joined.identity.clone());
        self.rebalance = joined.rebalance;
        self.desk.set_identity(Some(joined.identity));
        let committable: BTreeSet<TopicPartition> = owned.union(&next).cloned().collect();
        self.desk.resend_parked(&committable).await;
        self.snapshot.send_modify(|s| {
            s.leader = joined.leader;
            s.protocol = joined.protocol;
            s.rebalances += 1;
        });
        if !revoked.is_empty() {
            // Only a cooperative member still owns partitions here (an eager one revoked all
            // before rejoining): the new generation lets it commit them before they move.
            self.assignment = joined.assignment.clone();
            self.publish(MemberPhase::Rebalancing);
            if let Some(reply) = self.revoke(revoked.clone(), false, None).await {
                return Ok(Reconciled::Close(reply));
            }
        }
        self.assignment = joined.assignment;
        let starts = self.start_offsets(&added).await?;
        // After a revocation the follow-up rebalance comes first: not stable yet.
        self.publish(if revoked.is_empty() {
            MemberPhase::Stable
        } else {
            MemberPhase::Rebalancing
        });
        let generation = self.generation.as_ref().map_or(-1, |g| g.generation_id);
        let assigned = MemberEvent::Assigned {
            generation,
            partitions: starts,
        };
        if self.events.send(assigned).await.is_err() {
            // The handle is gone: nobody consumes, so leave.
            let (reply, _) = oneshot::channel();
            return Ok(Reconciled::Close(reply));
        }
        Ok(if revoked.is_empty() {
            Reconciled::Stable
        } else {
            Reconciled::FollowUp
        })
    }

    fn publish(&self, phase: MemberPhase) {
        let assignment = partitions_of(&self.assignment);
        self.snapshot.send_modify(|s| {
            s.phase = phase;
            s.member_id = self.member_id.clone();
            s.generation = self.generation.as_ref().map_or(-1, |g| g.generation_id);
            s.group_instance_id = self.config.group_instance_id.clone();
            s.assignment = assignment;
        });
    }

    /// Hands `partitions` back to the application and waits for its ack, serving commits
    /// meanwhile; `patience` bounds the wait (default `max.poll.interval.ms`). Returns a close
    /// reply if asked to close meanwhile. After a poll time-out the wait is unbounded:
    /// rejoining would only hand partitions to a member that is not reading.
    async fn revoke(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
        patience: Option<Duration>,
    ) -> Option<oneshot::Sender<()>> {
        // The application's revoke hook may wait on a parked commit: answer those first,
        // and park none while it runs.
        self.desk.fail_parked();
        self.desk.set_parking(false);
        let outcome = self.await_revoke(partitions, lost, patience).await;
        self.desk.set_parking(true);
        outcome
    }

    async fn await_revoke(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
        patience: Option<Duration>,
    ) -> Option<oneshot::Sender<()>> {
        let (ack, acked) = oneshot::channel();
        let revoke = MemberEvent::Revoke {
            partitions,
            lost,
            ack,
        };
        if self.events.send(revoke).await.is_err() {
            return None;
        }
        let deadline = tokio::time::sleep(patience.unwrap_or(self.config.max_poll_interval));
        let waited = async {
            tokio::select! {
                _ = acked => true,
                () = deadline => false,
            }
        };
        tokio::pin!(waited);
        loop {
            match self.desk.serve_until(waited.as_mut(), false).await {
                Served::Done(true) => return None,
                Served::Done(false) => {
                    tracing::warn!(
                        "the application did not finish revoking within max.poll.interval.ms; going on anyway"
                    );
                    return None;
                }
                Served::Close(reply) => return Some(reply),
                Served::Noticed(_) => continue,
            }
        }
    }

    /// Leaves (dynamic members) and answers the close.
    async fn close(&mut self, reply: Option<oneshot::Sender<()>>) -> Result<(), GroupError> {
        self.desk.fail_parked();
        self.leave_if_dynamic().await;
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
        Ok(())
    }

    /// LeaveGroup for a dynamic member that has a member id, in whatever state it is (stable
    /// or mid-rebalance, as Java's `maybeLeaveGroup`); static members never send it (KIP-345),
    /// so a restart within the session timeout keeps their partitions without a rebalance.
    async fn leave_if_dynamic(&mut self) {
        if self.config.group_instance_id.is_some() || self.member_id.is_empty() {
            return;
        }
        let identity = MemberIdentityParts {
            group_id: self.config.group_id.clone(),
            member_id: self.member_id.clone(),
            generation_id: self.generation.as_ref().map_or(-1, |g| g.generation_id),
            group_instance_id: None,
        };
        match self.desk.control.leave(&identity).await {
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

/// A wait that never ends in practice (a year).
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// The rebalance protocol the configured assignors speak (validation refuses a mix), used
/// until the group's choice is known.
fn configured_protocol(config: &GroupConfig) -> RebalanceProtocol {
    let cooperative = config.assignors.iter().all(|name| {
        assignor::assignor_by_name(name)
            .is_some_and(|a| a.protocol() == RebalanceProtocol::Cooperative)
    });
    if cooperative && !config.assignors.is_empty() {
        RebalanceProtocol::Cooperative
    } else {
        RebalanceProtocol::Eager
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_revoke_the_application_never_acknowledges_ends_after_max_poll_interval() {
        // The bound `revoke` waits with, on its own: a select of the ack and the deadline.
        let (_ack, acked) = oneshot::channel::<()>();
        let started = Instant::now();
        let deadline = tokio::time::sleep(Duration::from_secs(300));
        let acknowledged = tokio::select! {
            _ = acked => true,
            () = deadline => false,
        };
        assert!(!acknowledged);
        assert_eq!(started.elapsed(), Duration::from_secs(300));
    }

    #[test]
    fn a_cooperative_only_list_speaks_the_cooperative_protocol() {
        let mut config = GroupConfig::new("g", vec!["t".into()]);
        assert_eq!(configured_protocol(&config), RebalanceProtocol::Eager);
        config.assignors = vec!["cooperative-sticky".into()];
        assert_eq!(configured_protocol(&config), RebalanceProtocol::Cooperative);
    }
}

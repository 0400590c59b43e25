//! One complete JoinGroup + SyncGroup round, request by request, with the desk serving commits
//! and noticing a close between them; and the leader's part (running the chosen assignor).
//!
//! It owns nothing but the join connection's requests; the member id it learns is written to
//! the member at once, so a close at any point knows which id to send LeaveGroup for. The one
//! choice a reader may question: a close that arrives while the *first* JoinGroup (no member
//! id yet) is in flight waits for that answer, because it is the answer that names the member
//! id (KIP-394) and a member the coordinator created but nobody leaves would hold up the next
//! rebalance until its session expired.

use tokio::sync::oneshot;

use super::super::GroupError;
use super::super::assignor::{self, GroupMember, RebalanceProtocol};
use super::super::coordinator::{Coordinator, MemberIdentityParts};
use super::super::errors::{self, ErrorAction, GroupApi};
use super::super::protocol::{self, Subscription, TopicPartitions};
use super::cause::RejoinCause;
use super::desk::{Served, pause};
use super::{Joined, Member};
use crate::backoff::{Backoff, BackoffPolicy};

/// The answer to one request, or a close that came first (with the member id the first
/// JoinGroup's answer named, if we waited for it).
enum Step<T> {
    Answer(T),
    Close(oneshot::Sender<()>, Option<String>),
}

/// How a join attempt ended.
pub(super) enum JoinEnd {
    Joined(Joined),
    Close(oneshot::Sender<()>),
}

impl Member {
    /// Joins and syncs, retrying as the error table says, until it has an assignment, the
    /// application closes, or an error is fatal. The subscription names what we still own
    /// (cooperative members keep their partitions through the rebalance).
    pub(super) async fn join(&mut self, cause: RejoinCause) -> Result<JoinEnd, GroupError> {
        let protocols = self.join_protocols()?;
        let instance = self.config.group_instance_id.clone();
        let mut backoff = Backoff::new(BackoffPolicy::REQUESTS);
        loop {
            let member_id = self.member_id.clone();
            let step = {
                let join = self.joiner.join(
                    &member_id,
                    instance.as_deref(),
                    self.config.session_timeout,
                    self.config.max_poll_interval,
                    &protocols,
                    cause.reason(),
                    self.config.join_timeout(),
                );
                tokio::pin!(join);
                match self.desk.serve_until(join.as_mut(), false).await {
                    Served::Done(response) => Step::Answer(response),
                    Served::Close(reply) if member_id.is_empty() && instance.is_none() => {
                        let answer = tokio::time::timeout(self.config.request_timeout, join).await;
                        let learned = answer.ok().and_then(Result::ok);
                        Step::Close(reply, learned.map(|r| r.member_id.to_string()))
                    }
                    Served::Close(reply) => Step::Close(reply, None),
                    Served::Noticed(_) => continue,
                }
            };
            let response = match step {
                Step::Answer(response) => response,
                Step::Close(reply, learned) => {
                    if let Some(member_id) = learned.filter(|id| !id.is_empty()) {
                        self.member_id = member_id;
                    }
                    return Ok(JoinEnd::Close(reply));
                }
            };
            let response = match response {
                Ok(response) => response,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "JoinGroup failed; retrying");
                    pause(&mut backoff).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match errors::classify(GroupApi::JoinGroup, response.error_code) {
                ErrorAction::Proceed => {}
                ErrorAction::JoinWithAssignedId => {
                    self.member_id = response.member_id.to_string();
                    continue;
                }
                ErrorAction::RejoinResettingId => {
                    self.member_id.clear();
                    continue;
                }
                ErrorAction::RefindCoordinator => {
                    self.joiner.mark_unknown();
                    pause(&mut backoff).await;
                    continue;
                }
                ErrorAction::Retry | ErrorAction::RejoinKeepingId | ErrorAction::RejoinIfStable => {
                    pause(&mut backoff).await;
                    continue;
                }
                ErrorAction::FencedInstance => return Err(self.fenced()),
                _ => {
                    return Err(GroupError::Fatal {
                        api: GroupApi::JoinGroup,
                        error_code: response.error_code,
                    });
                }
            }
            self.member_id = response.member_id.to_string();
            let identity = MemberIdentityParts {
                group_id: self.config.group_id.clone(),
                member_id: self.member_id.clone(),
                generation_id: response.generation_id,
                group_instance_id: instance.clone(),
            };
            // Commits go out in the new generation from here: between JoinGroup and
            // SyncGroup the coordinator answers them REBALANCE_IN_PROGRESS, and the desk
            // holds them for the assignment (the old generation would get ILLEGAL_GENERATION).
            self.desk.set_identity(Some(identity.clone()));
            let protocol = response
                .protocol_name
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let leader = response.leader.as_str() == self.member_id.as_str();
            // A returning static leader of a stable group must not reassign (JoinGroup v9).
            let assignments = if leader && !response.skip_assignment {
                let members: Vec<GroupMember> =
                    response.members.iter().map(decode_member).collect();
                match leader_assign(&mut self.joiner, &protocol, &members).await {
                    Ok(assignments) => assignments,
                    Err(e) if e.is_retriable() => {
                        pause(&mut backoff).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                Vec::new()
            };
            let served = {
                let sync = self.joiner.sync(
                    &identity,
                    &protocol,
                    assignments,
                    self.config.join_timeout(),
                );
                tokio::pin!(sync);
                self.desk.serve_until(sync.as_mut(), false).await
            };
            let sync = match served {
                Served::Done(Ok(sync)) => sync,
                Served::Done(Err(e)) if e.is_retriable() => {
                    pause(&mut backoff).await;
                    continue;
                }
                Served::Done(Err(e)) => return Err(e),
                Served::Close(reply) => return Ok(JoinEnd::Close(reply)),
                Served::Noticed(_) => continue,
            };
            match errors::classify(GroupApi::SyncGroup, sync.error_code) {
                ErrorAction::Proceed => {
                    let assignment = protocol::decode_assignment(&sync.assignment)
                        .map_err(GroupError::Protocol)?;
                    let rebalance = assignor::assignor_by_name(&protocol)
                        .map_or(RebalanceProtocol::Eager, |a| a.protocol());
                    return Ok(JoinEnd::Joined(Joined {
                        identity,
                        leader,
                        protocol,
                        rebalance,
                        assignment: assignment.partitions,
                    }));
                }
                ErrorAction::RejoinResettingId => self.member_id.clear(),
                ErrorAction::RefindCoordinator => self.joiner.mark_unknown(),
                ErrorAction::FencedInstance => return Err(self.fenced()),
                ErrorAction::RejoinKeepingId | ErrorAction::RejoinIfStable | ErrorAction::Retry => {
                }
                _ => {
                    return Err(GroupError::Fatal {
                        api: GroupApi::SyncGroup,
                        error_code: sync.error_code,
                    });
                }
            }
            pause(&mut backoff).await;
        }
    }

    /// Our subscription as JoinGroup metadata, once per assignor we offer: the topics, and
    /// (v1+, KIP-429) the partitions we still own with the generation they were assigned in,
    /// so a cooperative leader keeps them where they are.
    fn join_protocols(&self) -> Result<Vec<(String, Vec<u8>)>, GroupError> {
        let mut topics = self.config.topics.clone();
        topics.sort();
        topics.dedup();
        let owned: TopicPartitions = self
            .assignment
            .iter()
            .filter(|(_, partitions)| !partitions.is_empty())
            .map(|(topic, partitions)| (topic.clone(), partitions.clone()))
            .collect();
        let generation_id = match (&self.generation, owned.is_empty()) {
            (Some(identity), false) => identity.generation_id,
            _ => protocol::NO_GENERATION,
        };
        let subscription = Subscription {
            topics,
            owned_partitions: owned,
            generation_id,
            ..Subscription::default()
        };
        let metadata =
            protocol::encode_subscription(&subscription).map_err(GroupError::Protocol)?;
        Ok(self
            .config
            .assignors
            .iter()
            .map(|name| (name.clone(), metadata.clone()))
            .collect())
    }
}

fn decode_member(
    member: &kafka_protocol::messages::join_group_response::JoinGroupResponseMember,
) -> GroupMember {
    GroupMember {
        member_id: member.member_id.to_string(),
        group_instance_id: member.group_instance_id.as_ref().map(|i| i.to_string()),
        subscription: protocol::decode_subscription(&member.metadata).unwrap_or_else(|e| {
            tracing::warn!(member = %member.member_id, error = %e, "undecodable subscription; assigning it nothing");
            Subscription::default()
        }),
    }
}

/// The leader runs the chosen assignor; every member gets an entry, even an empty one, since
/// Java followers fail on a missing assignment.
async fn leader_assign(
    joiner: &mut Coordinator,
    protocol_name: &str,
    members: &[GroupMember],
) -> Result<Vec<(String, Vec<u8>)>, GroupError> {
    let assignor =
        assignor::assignor_by_name(protocol_name).ok_or_else(|| GroupError::UnofferedAssignor {
            protocol: protocol_name.to_owned(),
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
                .map_err(GroupError::Protocol)
        })
        .collect()
}

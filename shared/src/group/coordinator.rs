//! A connection to the group's coordinator broker, found with FindCoordinator and re-found
//! when the broker says it is no longer the coordinator.
//!
//! It sends the group APIs at the highest version both sides support within the ranges the
//! member is written for, and returns the raw responses: classifying their error codes is
//! `errors`' job and acting on them the member's. The member holds two of these — one for
//! JoinGroup/SyncGroup, which the broker may hold for a whole rebalance, and one for
//! heartbeats, commits and offset fetches — because a connection serves one request at a time.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::{self, TopicPartitions};
use crate::connect;
use crate::settings::ConnectionSettings;
use crate::wire::{BrokerConnection, WireError};

use super::GroupError;
use super::errors::{self, ErrorAction, GroupApi};

/// Who we are in the group, as every request after JoinGroup states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentityParts {
    pub group_id: String,
    pub member_id: String,
    pub generation_id: i32,
    pub group_instance_id: Option<String>,
}

/// A partition's committed offset as OffsetFetch reports it (-1 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedOffset {
    pub partition: i32,
    pub offset: i64,
    pub error_code: i16,
}

#[derive(Debug)]
pub struct Coordinator {
    settings: ConnectionSettings,
    group_id: String,
    request_timeout: Duration,
    connection: Option<BrokerConnection>,
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl Coordinator {
    pub fn new(settings: &ConnectionSettings, group_id: &str, request_timeout: Duration) -> Self {
        Self {
            settings: settings.clone(),
            group_id: group_id.to_owned(),
            request_timeout,
            connection: None,
        }
    }

    /// Forgets the coordinator: the next request finds it again.
    pub fn mark_unknown(&mut self) {
        self.connection = None;
    }

    /// The coordinator connection, finding the coordinator first if it is unknown.
    async fn connection(&mut self) -> Result<&mut BrokerConnection, GroupError> {
        if self.connection.is_none() {
            let address = self.find().await?;
            let mut target = self.settings.clone();
            target.bootstrap_servers = vec![address];
            let mut connection = connect::broker_connection(&target, self.request_timeout).await?;
            connection.set_request_timeout(self.request_timeout);
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or(GroupError::CoordinatorUnknown)
    }

    /// FindCoordinator (v3 single key, or v4+ batched keys, KIP-699) on any bootstrap broker.
    async fn find(&mut self) -> Result<String, GroupError> {
        let mut bootstrap =
            connect::broker_connection(&self.settings, self.request_timeout).await?;
        let version = bootstrap.negotiate::<FindCoordinatorRequest>(3..=6)?;
        let request = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![text(&self.group_id)])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_key(text(&self.group_id))
        };
        let response = bootstrap.send(version, &request).await?;
        let (error_code, host, port) = if version >= 4 {
            let coordinator = response
                .coordinators
                .first()
                .ok_or(GroupError::CoordinatorUnknown)?;
            (
                coordinator.error_code,
                coordinator.host.to_string(),
                coordinator.port,
            )
        } else {
            (
                response.error_code,
                response.host.to_string(),
                response.port,
            )
        };
        match errors::classify(GroupApi::FindCoordinator, error_code) {
            ErrorAction::Proceed => Ok(format!("{host}:{port}")),
            ErrorAction::Fatal => Err(GroupError::Fatal {
                api: GroupApi::FindCoordinator,
                error_code,
            }),
            _ => Err(GroupError::Retriable {
                api: GroupApi::FindCoordinator,
                error_code,
            }),
        }
    }

    /// Runs `request` on the coordinator connection; a transport failure forgets the
    /// coordinator so the next attempt reconnects.
    async fn send<R: kafka_protocol::protocol::Request>(
        &mut self,
        versions: std::ops::RangeInclusive<i16>,
        build: impl FnOnce(i16) -> R,
        timeout: Option<Duration>,
    ) -> Result<(i16, R::Response), GroupError> {
        let connection = self.connection().await?;
        let version = connection.negotiate::<R>(versions)?;
        let request = build(version);
        let default_timeout = self.request_timeout;
        let connection = self
            .connection
            .as_mut()
            .ok_or(GroupError::CoordinatorUnknown)?;
        if let Some(timeout) = timeout {
            connection.set_request_timeout(timeout);
        }
        let result = connection.send(version, &request).await;
        if let Some(connection) = self.connection.as_mut() {
            connection.set_request_timeout(default_timeout);
        }
        match result {
            Ok(response) => Ok((version, response)),
            Err(e) => {
                if e.is_transient() {
                    self.mark_unknown();
                }
                Err(GroupError::Wire(e))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn join(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        session_timeout: Duration,
        rebalance_timeout: Duration,
        protocols: &[(String, Vec<u8>)],
        reason: &str,
        join_timeout: Duration,
    ) -> Result<JoinGroupResponse, GroupError> {
        let group_id = self.group_id.clone();
        let (_, response) = self
            .send(
                5..=9,
                |_| {
                    JoinGroupRequest::default()
                        .with_group_id(GroupId(text(&group_id)))
                        .with_session_timeout_ms(millis(session_timeout))
                        .with_rebalance_timeout_ms(millis(rebalance_timeout))
                        .with_member_id(text(member_id))
                        .with_group_instance_id(group_instance_id.map(text))
                        .with_protocol_type(StrBytes::from_static_str("consumer"))
                        .with_protocols(
                            protocols
                                .iter()
                                .map(|(name, metadata)| {
                                    JoinGroupRequestProtocol::default()
                                        .with_name(text(name))
                                        .with_metadata(Bytes::from(metadata.clone()))
                                })
                                .collect(),
                        )
                        .with_reason(Some(text(reason)))
                },
                Some(join_timeout),
            )
            .await?;
        Ok(response)
    }

    pub async fn sync(
        &mut self,
        identity: &MemberIdentityParts,
        protocol_name: &str,
        assignments: Vec<(String, Vec<u8>)>,
        sync_timeout: Duration,
    ) -> Result<SyncGroupResponse, GroupError> {
        let (_, response) = self
            .send(
                3..=5,
                |_| {
                    SyncGroupRequest::default()
                        .with_group_id(GroupId(text(&identity.group_id)))
                        .with_generation_id(identity.generation_id)
                        .with_member_id(text(&identity.member_id))
                        .with_group_instance_id(identity.group_instance_id.as_deref().map(text))
                        .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                        .with_protocol_name(Some(text(protocol_name)))
                        .with_assignments(
                            assignments
                                .into_iter()
                                .map(|(member_id, bytes)| {
                                    SyncGroupRequestAssignment::default()
                                        .with_member_id(text(&member_id))
                                        .with_assignment(Bytes::from(bytes))
                                })
                                .collect(),
                        )
                },
                Some(sync_timeout),
            )
            .await?;
        Ok(response)
    }

    /// Heartbeat; returns the error code.
    pub async fn heartbeat(&mut self, identity: &MemberIdentityParts) -> Result<i16, GroupError> {
        let (_, response) = self
            .send(
                3..=4,
                |_| {
                    HeartbeatRequest::default()
                        .with_group_id(GroupId(text(&identity.group_id)))
                        .with_generation_id(identity.generation_id)
                        .with_member_id(text(&identity.member_id))
                        .with_group_instance_id(identity.group_instance_id.as_deref().map(text))
                },
                None,
            )
            .await?;
        Ok(response.error_code)
    }

    /// LeaveGroup in the v3+ batch form with our one member; returns the error code.
    pub async fn leave(&mut self, identity: &MemberIdentityParts) -> Result<i16, GroupError> {
        let (_, response) = self
            .send(
                3..=5,
                |_| {
                    LeaveGroupRequest::default()
                        .with_group_id(GroupId(text(&identity.group_id)))
                        .with_members(vec![
                            MemberIdentity::default()
                                .with_member_id(text(&identity.member_id))
                                .with_group_instance_id(
                                    identity.group_instance_id.as_deref().map(text),
                                )
                                .with_reason(Some(StrBytes::from_static_str("consumer closing"))),
                        ])
                },
                None,
            )
            .await?;
        let member_code = response.members.first().map_or(0, |m| m.error_code);
        Ok(if response.error_code != 0 {
            response.error_code
        } else {
            member_code
        })
    }

    /// OffsetCommit; returns (topic, partition, error code) per partition.
    pub async fn commit(
        &mut self,
        identity: &MemberIdentityParts,
        offsets: &[(String, i32, i64)],
    ) -> Result<Vec<(String, i32, i16)>, GroupError> {
        let mut by_topic: std::collections::BTreeMap<&str, Vec<OffsetCommitRequestPartition>> =
            Default::default();
        for (topic, partition, offset) in offsets {
            by_topic.entry(topic.as_str()).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::from_static_str(""))),
            );
        }
        let topics: Vec<OffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(partitions)
            })
            .collect();
        let (_, response) = self
            .send(
                7..=9,
                |_| {
                    OffsetCommitRequest::default()
                        .with_group_id(GroupId(text(&identity.group_id)))
                        .with_generation_id_or_member_epoch(identity.generation_id)
                        .with_member_id(text(&identity.member_id))
                        .with_group_instance_id(identity.group_instance_id.as_deref().map(text))
                        .with_retention_time_ms(-1)
                        .with_topics(topics)
                },
                None,
            )
            .await?;
        Ok(response
            .topics
            .iter()
            .flat_map(|topic| {
                let name = topic.name.0.to_string();
                topic
                    .partitions
                    .iter()
                    .map(move |p| (name.clone(), p.partition_index, p.error_code))
            })
            .collect())
    }

    /// OffsetFetch for the given partitions (v6–v7 single group, v8 batched groups); returns
    /// the committed offsets per topic and a top-level error code.
    pub async fn committed(
        &mut self,
        partitions: &TopicPartitionsList,
    ) -> Result<(i16, Vec<(String, CommittedOffset)>), GroupError> {
        let group_id = self.group_id.clone();
        let (version, response) = self
            .send(
                6..=8,
                |version| {
                    if version >= 8 {
                        OffsetFetchRequest::default().with_groups(vec![
                            OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(text(&group_id)))
                                .with_topics(Some(
                                    partitions
                                        .iter()
                                        .map(|(topic, indexes)| {
                                            OffsetFetchRequestTopics::default()
                                                .with_name(TopicName(text(topic)))
                                                .with_partition_indexes(indexes.clone())
                                        })
                                        .collect(),
                                )),
                        ])
                    } else {
                        OffsetFetchRequest::default()
                            .with_group_id(GroupId(text(&group_id)))
                            .with_topics(Some(
                                partitions
                                    .iter()
                                    .map(|(topic, indexes)| {
                                        OffsetFetchRequestTopic::default()
                                            .with_name(TopicName(text(topic)))
                                            .with_partition_indexes(indexes.clone())
                                    })
                                    .collect(),
                            ))
                    }
                },
                None,
            )
            .await?;
        let mut committed = Vec::new();
        let top_level = if version >= 8 {
            let Some(group) = response.groups.first() else {
                return Ok((errors::code::NONE, committed));
            };
            for topic in &group.topics {
                for p in &topic.partitions {
                    committed.push((
                        topic.name.0.to_string(),
                        CommittedOffset {
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            error_code: p.error_code,
                        },
                    ));
                }
            }
            group.error_code
        } else {
            for topic in &response.topics {
                for p in &topic.partitions {
                    committed.push((
                        topic.name.0.to_string(),
                        CommittedOffset {
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            error_code: p.error_code,
                        },
                    ));
                }
            }
            response.error_code
        };
        Ok((top_level, committed))
    }

    /// Partition counts of the subscribed topics, for the leader's assignment.
    pub async fn partition_counts(
        &mut self,
        topics: &[String],
    ) -> Result<TopicPartitions, GroupError> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let connection = self.connection().await?;
        match admin::partition_counts(connection, &names).await {
            Ok(counts) => Ok(counts),
            Err(admin::AdminError::Wire(e)) => {
                if e.is_transient() {
                    self.mark_unknown();
                }
                Err(GroupError::Wire(e))
            }
            Err(e) => Err(GroupError::Admin(e)),
        }
    }
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub error_code: i16,
    /// Empty, PreparingRebalance, CompletingRebalance, Stable or Dead.
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor (while Stable).
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    /// The member's partitions, decoded from its assignment bytes (while Stable).
    pub assignment: super::protocol::TopicPartitions,
}

impl Coordinator {
    /// DescribeGroups for our group: its state, protocol and members with their assignments.
    pub async fn describe(&mut self) -> Result<GroupDescription, GroupError> {
        let group_id = self.group_id.clone();
        let (_, response) = self
            .send(
                0..=5,
                |_| DescribeGroupsRequest::default().with_groups(vec![GroupId(text(&group_id))]),
                None,
            )
            .await?;
        let group = response
            .groups
            .into_iter()
            .next()
            .ok_or(GroupError::CoordinatorUnknown)?;
        Ok(GroupDescription {
            error_code: group.error_code,
            state: group.group_state.to_string(),
            protocol_type: group.protocol_type.to_string(),
            protocol: group.protocol_data.to_string(),
            members: group
                .members
                .into_iter()
                .map(|m| DescribedMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    assignment: super::protocol::decode_assignment(&m.member_assignment)
                        .map(|a| a.partitions)
                        .unwrap_or_default(),
                })
                .collect(),
        })
    }
}

/// topic -> partition indexes.
pub type TopicPartitionsList = Vec<(String, Vec<i32>)>;

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

impl From<WireError> for GroupError {
    fn from(e: WireError) -> Self {
        GroupError::Wire(e)
    }
}

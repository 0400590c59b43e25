//! A hand-written member of a Kafka consumer group (the classic protocol: FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch), with static
//! membership (KIP-345), because rskafka has no consumer groups.
//!
//! `GroupConsumer` is the application's handle; `member` is the state machine that owns the
//! group state; `coordinator` speaks to the coordinator broker; `errors` classifies error codes
//! in one place; `protocol` and `assignor` are the embedded consumer-protocol bytes and the
//! partition assignment strategies; `fetch` reads the assigned partitions, one multi-partition
//! Fetch per leader broker.

pub mod assignor;
pub mod config;
pub mod consumer;
pub mod coordinator;
pub mod errors;
pub mod fetch;
pub mod member;
pub mod protocol;

pub use config::{GroupConfig, OffsetReset};
pub use consumer::{Committer, ConsumerEvent, GroupConsumer, HeldBytes, RecordBatch};
pub use fetch::{ConsumerRecord, TopicPartition};
pub use member::{CommitOutcome, MemberPhase, MemberSnapshot};

use crate::connect::ConnectError;
use crate::wire::WireError;
use errors::GroupApi;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(
        "group.instance.id {instance_id:?} is in use by another process: this member was fenced \
         (FENCED_INSTANCE_ID) and stops; give every process its own GROUP_INSTANCE_ID"
    )]
    Fenced { instance_id: String },
    #[error("{api:?} failed with {} (error code {error_code}); not retrying", errors::name(*error_code))]
    Fatal { api: GroupApi, error_code: i16 },
    #[error("{api:?} failed with {} (error code {error_code})", errors::name(*error_code))]
    Retriable { api: GroupApi, error_code: i16 },
    #[error("no committed offset for {topic}-{partition} and auto.offset.reset=none")]
    NoCommittedOffset { topic: String, partition: i32 },
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Wire(WireError),
    #[error("the group coordinator is not known")]
    CoordinatorUnknown,
    #[error("metadata for the leader's assignment")]
    Admin(#[source] crate::admin::AdminError),
    #[error("consumer protocol")]
    Protocol(#[source] protocol::ProtocolError),
    #[error("the group chose assignor {protocol:?}, which this member does not offer")]
    UnofferedAssignor { protocol: String },
    #[error("reading partitions: {0}")]
    Data(String),
    #[error("invalid group configuration: {0}")]
    Config(String),
    #[error("the group member has stopped")]
    Closed,
}

impl GroupError {
    /// Whether trying again later may succeed (the broker or coordinator was unreachable or
    /// moving), as opposed to a configuration, protocol or fencing problem.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Wire(e) => e.is_transient(),
            Self::Connect(ConnectError::Unreachable { .. }) => true,
            Self::Retriable { .. } | Self::CoordinatorUnknown => true,
            _ => false,
        }
    }
}

//! The one place where a Kafka error code from a group API becomes an action for the member.
//!
//! The mapping follows the Java consumer's handlers (`AbstractCoordinator`,
//! `ConsumerCoordinator`), summarised in the project's Kafka reference §1.4. It must not perform
//! the action: the member's state machine does, so every path is visible in one `match` there.

/// Kafka error codes the group member meets.
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

/// The group APIs whose errors we classify (their handling differs per API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupApi {
    FindCoordinator,
    JoinGroup,
    SyncGroup,
    Heartbeat,
    OffsetCommit,
    OffsetFetch,
    LeaveGroup,
}

/// What the member does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Nothing went wrong.
    Proceed,
    /// Try the same request again after a backoff, same coordinator.
    Retry,
    /// Forget the coordinator, find it again, then retry.
    RefindCoordinator,
    /// Rejoin keeping the member id (the generation is stale).
    RejoinKeepingId,
    /// Rejoin with the member id reset to "" (the coordinator forgot us).
    RejoinResettingId,
    /// JoinGroup v4+: adopt the member id in the response and join again at once.
    JoinWithAssignedId,
    /// A rebalance is under way: rejoin if we are stable (heartbeat), otherwise carry on.
    RejoinIfStable,
    /// Another process holds our `group.instance.id`: stop, never retry (KIP-345).
    FencedInstance,
    /// A request-level failure to report to the caller (commit errors the caller can act on).
    Report,
    /// Stop the member: a configuration or authorisation problem retrying cannot fix.
    Fatal,
}

/// Classifies `error_code` returned by `api`.
pub fn classify(api: GroupApi, error_code: i16) -> ErrorAction {
    use ErrorAction::*;
    use code::*;
    match (api, error_code) {
        (_, NONE) => Proceed,
        (_, FENCED_INSTANCE_ID) => FencedInstance,
        (_, NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) => RefindCoordinator,
        (GroupApi::OffsetCommit, REQUEST_TIMED_OUT) => RefindCoordinator,
        (_, COORDINATOR_LOAD_IN_PROGRESS) => Retry,
        (GroupApi::FindCoordinator, GROUP_AUTHORIZATION_FAILED) => Fatal,
        (GroupApi::FindCoordinator, _) => Retry,

        (GroupApi::JoinGroup, MEMBER_ID_REQUIRED) => JoinWithAssignedId,
        (GroupApi::JoinGroup, UNKNOWN_MEMBER_ID) => RejoinResettingId,
        // A JoinGroup that meets a rebalance simply tries again (Java's JoinGroupResponseHandler).
        (GroupApi::JoinGroup, REBALANCE_IN_PROGRESS) => Retry,
        (
            GroupApi::JoinGroup,
            INCONSISTENT_GROUP_PROTOCOL
            | INVALID_GROUP_ID
            | INVALID_SESSION_TIMEOUT
            | GROUP_AUTHORIZATION_FAILED
            | GROUP_MAX_SIZE_REACHED
            | UNSUPPORTED_VERSION,
        ) => Fatal,

        (_, UNKNOWN_MEMBER_ID) => RejoinResettingId,
        (_, ILLEGAL_GENERATION) => RejoinKeepingId,
        (GroupApi::SyncGroup, REBALANCE_IN_PROGRESS) => RejoinKeepingId,
        (GroupApi::Heartbeat, REBALANCE_IN_PROGRESS) => RejoinIfStable,
        // A commit during a rebalance fails, but the member keeps its id and rejoins.
        (GroupApi::OffsetCommit, REBALANCE_IN_PROGRESS) => RejoinKeepingId,
        (GroupApi::OffsetCommit | GroupApi::OffsetFetch, UNKNOWN_TOPIC_OR_PARTITION) => Retry,
        (GroupApi::OffsetFetch, UNSTABLE_OFFSET_COMMIT) => Retry,
        (GroupApi::OffsetCommit, OFFSET_METADATA_TOO_LARGE | INVALID_COMMIT_OFFSET_SIZE) => Report,
        (_, GROUP_AUTHORIZATION_FAILED | TOPIC_AUTHORIZATION_FAILED) => Fatal,
        (GroupApi::LeaveGroup, _) => Report,
        _ => Fatal,
    }
}

/// A short name for an error code, for logs and error messages.
pub fn name(error_code: i16) -> &'static str {
    use code::*;
    match error_code {
        NONE => "NONE",
        OFFSET_OUT_OF_RANGE => "OFFSET_OUT_OF_RANGE",
        UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
        REQUEST_TIMED_OUT => "REQUEST_TIMED_OUT",
        OFFSET_METADATA_TOO_LARGE => "OFFSET_METADATA_TOO_LARGE",
        COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
        COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
        NOT_COORDINATOR => "NOT_COORDINATOR",
        ILLEGAL_GENERATION => "ILLEGAL_GENERATION",
        INCONSISTENT_GROUP_PROTOCOL => "INCONSISTENT_GROUP_PROTOCOL",
        INVALID_GROUP_ID => "INVALID_GROUP_ID",
        UNKNOWN_MEMBER_ID => "UNKNOWN_MEMBER_ID",
        INVALID_SESSION_TIMEOUT => "INVALID_SESSION_TIMEOUT",
        REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
        INVALID_COMMIT_OFFSET_SIZE => "INVALID_COMMIT_OFFSET_SIZE",
        TOPIC_AUTHORIZATION_FAILED => "TOPIC_AUTHORIZATION_FAILED",
        GROUP_AUTHORIZATION_FAILED => "GROUP_AUTHORIZATION_FAILED",
        UNSUPPORTED_VERSION => "UNSUPPORTED_VERSION",
        MEMBER_ID_REQUIRED => "MEMBER_ID_REQUIRED",
        GROUP_MAX_SIZE_REACHED => "GROUP_MAX_SIZE_REACHED",
        FENCED_INSTANCE_ID => "FENCED_INSTANCE_ID",
        UNSTABLE_OFFSET_COMMIT => "UNSTABLE_OFFSET_COMMIT",
        _ => "UNKNOWN_ERROR_CODE",
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorAction::*;
    use super::GroupApi::*;
    use super::code::*;
    use super::*;

    /// The reference's table (§1.4), row by row.
    #[test]
    fn every_error_code_maps_to_the_java_members_reaction() {
        let table = [
            (JoinGroup, COORDINATOR_LOAD_IN_PROGRESS, Retry),
            (OffsetCommit, COORDINATOR_LOAD_IN_PROGRESS, Retry),
            (OffsetFetch, COORDINATOR_LOAD_IN_PROGRESS, Retry),
            (
                FindCoordinator,
                COORDINATOR_NOT_AVAILABLE,
                RefindCoordinator,
            ),
            (Heartbeat, COORDINATOR_NOT_AVAILABLE, RefindCoordinator),
            (JoinGroup, NOT_COORDINATOR, RefindCoordinator),
            (SyncGroup, NOT_COORDINATOR, RefindCoordinator),
            (Heartbeat, NOT_COORDINATOR, RefindCoordinator),
            (OffsetCommit, NOT_COORDINATOR, RefindCoordinator),
            (OffsetFetch, NOT_COORDINATOR, RefindCoordinator),
            (SyncGroup, ILLEGAL_GENERATION, RejoinKeepingId),
            (Heartbeat, ILLEGAL_GENERATION, RejoinKeepingId),
            (OffsetCommit, ILLEGAL_GENERATION, RejoinKeepingId),
            (JoinGroup, UNKNOWN_MEMBER_ID, RejoinResettingId),
            (SyncGroup, UNKNOWN_MEMBER_ID, RejoinResettingId),
            (Heartbeat, UNKNOWN_MEMBER_ID, RejoinResettingId),
            (OffsetCommit, UNKNOWN_MEMBER_ID, RejoinResettingId),
            (Heartbeat, REBALANCE_IN_PROGRESS, RejoinIfStable),
            (SyncGroup, REBALANCE_IN_PROGRESS, RejoinKeepingId),
            (JoinGroup, REBALANCE_IN_PROGRESS, Retry),
            (OffsetCommit, REBALANCE_IN_PROGRESS, RejoinKeepingId),
            (JoinGroup, MEMBER_ID_REQUIRED, JoinWithAssignedId),
            (JoinGroup, FENCED_INSTANCE_ID, FencedInstance),
            (SyncGroup, FENCED_INSTANCE_ID, FencedInstance),
            (Heartbeat, FENCED_INSTANCE_ID, FencedInstance),
            (OffsetCommit, FENCED_INSTANCE_ID, FencedInstance),
            (JoinGroup, INCONSISTENT_GROUP_PROTOCOL, Fatal),
            (JoinGroup, INVALID_GROUP_ID, Fatal),
            (JoinGroup, INVALID_SESSION_TIMEOUT, Fatal),
            (JoinGroup, GROUP_AUTHORIZATION_FAILED, Fatal),
            (JoinGroup, GROUP_MAX_SIZE_REACHED, Fatal),
            (JoinGroup, UNSUPPORTED_VERSION, Fatal),
            (FindCoordinator, GROUP_AUTHORIZATION_FAILED, Fatal),
            (OffsetCommit, OFFSET_METADATA_TOO_LARGE, Report),
            (OffsetCommit, INVALID_COMMIT_OFFSET_SIZE, Report),
            (OffsetCommit, UNKNOWN_TOPIC_OR_PARTITION, Retry),
            (OffsetCommit, REQUEST_TIMED_OUT, RefindCoordinator),
            (OffsetFetch, UNSTABLE_OFFSET_COMMIT, Retry),
            (LeaveGroup, UNKNOWN_MEMBER_ID, RejoinResettingId),
        ];
        for (api, code, action) in table {
            assert_eq!(classify(api, code), action, "{api:?} {}", name(code));
        }
    }

    #[test]
    fn success_always_proceeds() {
        for api in [
            FindCoordinator,
            JoinGroup,
            SyncGroup,
            Heartbeat,
            OffsetCommit,
            OffsetFetch,
            LeaveGroup,
        ] {
            assert_eq!(classify(api, NONE), Proceed);
        }
    }

    #[test]
    fn an_unknown_code_on_join_is_fatal_rather_than_a_retry_loop() {
        assert_eq!(classify(JoinGroup, 9999), Fatal);
    }
}

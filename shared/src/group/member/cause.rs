//! Why a member rejoins its group, as one enum instead of loose flags: each cause knows
//! whether the partitions it held are lost (the group moved on without it, so they can no
//! longer be committed) and whether the coordinator still knows its member id.
//!
//! It must not act on a cause: the member's lifecycle does (revoke, leave, reset the id), and
//! this file only answers its questions, so every rule can be read and tested in one place.

use super::super::errors::code;

/// What ended the member's last generation, or what it is joining for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejoinCause {
    /// The member's first join.
    Starting,
    /// A heartbeat or commit answered REBALANCE_IN_PROGRESS: another member joined or left.
    GroupRebalancing,
    /// ILLEGAL_GENERATION: the group formed a newer generation without us.
    StaleGeneration,
    /// UNKNOWN_MEMBER_ID: the coordinator expired or removed our member id.
    UnknownMember,
    /// No heartbeat got through within the session timeout: the coordinator has surely
    /// expired us.
    SessionLost,
    /// The application did not poll within `max.poll.interval.ms`.
    PollTimeout,
    /// Cooperative rebalancing (KIP-429): we revoked partitions the leader moved, so we rejoin
    /// at once and the next assignment can hand them to their new owner.
    FollowUp,
}

impl RejoinCause {
    /// The cause a commit's error code names, if it names one.
    pub fn from_commit_error(error_code: i16) -> Option<RejoinCause> {
        match error_code {
            code::REBALANCE_IN_PROGRESS => Some(RejoinCause::GroupRebalancing),
            code::ILLEGAL_GENERATION => Some(RejoinCause::StaleGeneration),
            code::UNKNOWN_MEMBER_ID => Some(RejoinCause::UnknownMember),
            _ => None,
        }
    }

    /// Whether the partitions held are already someone else's to take: then they are revoked
    /// as lost (no commit can succeed for them), whatever the rebalance protocol. Java's
    /// `onPartitionsLost` covers the same cases.
    pub fn loses_partitions(self) -> bool {
        matches!(
            self,
            RejoinCause::StaleGeneration
                | RejoinCause::UnknownMember
                | RejoinCause::SessionLost
                | RejoinCause::PollTimeout
        )
    }

    /// Whether the next JoinGroup starts with an empty member id. A static member keeps
    /// its id across a lost session (its instance id maps it back); a dynamic one asks for a
    /// new id, as Java's `resetGenerationOnResponseError` does.
    pub fn resets_member_id(self, is_static: bool) -> bool {
        match self {
            RejoinCause::UnknownMember => true,
            RejoinCause::SessionLost | RejoinCause::PollTimeout => !is_static,
            _ => false,
        }
    }

    /// The text sent as JoinGroup's reason (KIP-800) and logged.
    pub fn reason(self) -> &'static str {
        match self {
            RejoinCause::Starting => "joining",
            RejoinCause::GroupRebalancing => "the group is rebalancing",
            RejoinCause::StaleGeneration => "our generation is stale (ILLEGAL_GENERATION)",
            RejoinCause::UnknownMember => {
                "the coordinator no longer knows our member id (UNKNOWN_MEMBER_ID)"
            }
            RejoinCause::SessionLost => "no heartbeat got through within the session timeout",
            RejoinCause::PollTimeout => "the application did not poll within max.poll.interval.ms",
            RejoinCause::FollowUp => {
                "revoked partitions in a cooperative rebalance; rejoining so they can move"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_causes_where_the_group_moved_on_lose_partitions() {
        assert!(!RejoinCause::GroupRebalancing.loses_partitions());
        assert!(!RejoinCause::FollowUp.loses_partitions());
        assert!(RejoinCause::StaleGeneration.loses_partitions());
        assert!(RejoinCause::UnknownMember.loses_partitions());
        assert!(RejoinCause::SessionLost.loses_partitions());
        assert!(RejoinCause::PollTimeout.loses_partitions());
    }

    #[test]
    fn a_static_member_keeps_its_id_after_a_lost_session_and_a_dynamic_one_does_not() {
        assert!(!RejoinCause::SessionLost.resets_member_id(true));
        assert!(RejoinCause::SessionLost.resets_member_id(false));
        assert!(RejoinCause::UnknownMember.resets_member_id(true));
        assert!(!RejoinCause::StaleGeneration.resets_member_id(false));
    }

    #[test]
    fn commit_errors_name_their_causes() {
        assert_eq!(
            RejoinCause::from_commit_error(code::REBALANCE_IN_PROGRESS),
            Some(RejoinCause::GroupRebalancing)
        );
        assert_eq!(
            RejoinCause::from_commit_error(code::ILLEGAL_GENERATION),
            Some(RejoinCause::StaleGeneration)
        );
        assert_eq!(RejoinCause::from_commit_error(code::NONE), None);
    }
}

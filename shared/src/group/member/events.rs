//! What passes between the member task and the consumer handle: the commands it serves, the
//! events it sends, the snapshot it publishes and the application's poll state it reads.
//!
//! Plain data only; nothing here acts. `PollState` uses `tokio::time::Instant`, so the
//! `max.poll.interval.ms` check runs on a paused test clock.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::super::GroupError;
use super::super::fetch::{StartOffset, TopicPartition};

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
    /// Partitions added to the assignment and where each starts (empty in a cooperative
    /// rebalance that moved nothing to us).
    Assigned {
        generation: i32,
        partitions: Vec<(TopicPartition, StartOffset)>,
    },
    /// These partitions leave (all of them when eager or lost; only the moved ones in a
    /// cooperative rebalance); `lost` means they can no longer be committed. The member waits
    /// for `ack` (or `max.poll.interval.ms`) before it goes on, which is the application's
    /// chance to flush and commit.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_application_is_overdue_only_after_max_poll_interval_and_never_while_waiting() {
        let max_poll = Duration::from_secs(300);
        let returned = PollState::Returned(Instant::now());
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(!returned.overdue(max_poll));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(returned.overdue(max_poll));
        assert!(!PollState::Waiting.overdue(max_poll));
    }
}

//! How a fetched partition's position is fixed and kept: leaders from Metadata, starting
//! offsets from ListOffsets (`auto.offset.reset`), and the reset after OFFSET_OUT_OF_RANGE.
//!
//! These are the session's control requests, run on its admin connections between fetches;
//! they must not touch the fetch connections or the budget. Retries use `shared::backoff`
//! with a bounded number of attempts: an assignment cannot start without leaders, but a
//! consumer whose brokers are gone should fail rather than wait forever.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::gaps::GapWatch;
use super::session::{BOOTSTRAP, METADATA_RETRY, PartitionState, Session};
use super::{AssignedPartition, FetchItem, StartOffset, TopicPartition, brokers};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::group::GroupError;
use crate::group::config::OffsetReset;
use crate::wire::BrokerConnection;

/// Attempts at Metadata or ListOffsets before an assignment gives up.
const CONTROL_ATTEMPTS: u32 = 20;
/// 100 ms doubling to 5 s: the fetcher's waits before it had `shared::backoff`.
pub(super) const CONTROL_BACKOFF: BackoffPolicy = BackoffPolicy::doubling(
    std::time::Duration::from_millis(100),
    std::time::Duration::from_secs(5),
);

impl Session {
    /// Fixes each new partition's position — its committed offset, or `auto.offset.reset`
    /// asked of its leader — and starts reading it.
    pub(super) async fn assign(
        &mut self,
        partitions: Vec<(TopicPartition, StartOffset)>,
    ) -> Result<Vec<AssignedPartition>, GroupError> {
        let mut topics: Vec<String> = partitions.iter().map(|(p, _)| p.topic.clone()).collect();
        topics.extend(self.partitions.keys().map(|p| p.topic.clone()));
        topics.sort();
        topics.dedup();
        self.ask_leaders(&topics).await?;
        let mut positions = HashMap::with_capacity(partitions.len());
        let mut resets: Vec<(OffsetReset, Vec<TopicPartition>)> = Vec::new();
        for (partition, start) in &partitions {
            match start {
                StartOffset::Committed(offset) => {
                    positions.insert(partition.clone(), *offset);
                }
                StartOffset::Reset(OffsetReset::None) => {
                    return Err(GroupError::NoCommittedOffset {
                        topic: partition.topic.clone(),
                        partition: partition.partition,
                    });
                }
                StartOffset::Reset(policy) => match resets.iter_mut().find(|(p, _)| p == policy) {
                    Some((_, list)) => list.push(partition.clone()),
                    None => resets.push((*policy, vec![partition.clone()])),
                },
            }
        }
        for (policy, partitions) in resets {
            positions.extend(self.reset_positions(&partitions, policy).await?);
        }
        let mut assigned = Vec::with_capacity(partitions.len());
        for (partition, _) in partitions {
            let Some(&position) = positions.get(&partition) else {
                continue;
            };
            let (sender, receiver) = mpsc::channel(self.settings.prefetch_batches);
            self.next_token += 1;
            self.partitions.insert(
                partition.clone(),
                PartitionState {
                    topic: Arc::from(partition.topic.as_str()),
                    position,
                    leader: self.leader_of(&partition),
                    sender,
                    token: self.next_token,
                    not_before: None,
                    stuck: false,
                    gap_watch: GapWatch::default(),
                },
            );
            assigned.push(AssignedPartition {
                partition,
                position,
                receiver,
            });
        }
        Ok(assigned)
    }

    pub(super) async fn end_offsets(
        &mut self,
        partitions: Vec<TopicPartition>,
    ) -> Result<HashMap<TopicPartition, i64>, GroupError> {
        let mut topics: Vec<String> = partitions.iter().map(|p| p.topic.clone()).collect();
        topics.extend(self.partitions.keys().map(|p| p.topic.clone()));
        topics.sort();
        topics.dedup();
        self.ask_leaders(&topics).await?;
        self.reset_positions(&partitions, OffsetReset::Latest).await
    }

    fn leader_of(&self, partition: &TopicPartition) -> Option<i32> {
        self.leaders.get(partition).copied()
    }

    /// Asks any broker who leads the partitions of `topics`, trying for a while: an
    /// assignment cannot start without leaders.
    async fn ask_leaders(&mut self, topics: &[String]) -> Result<(), GroupError> {
        let mut backoff = Backoff::new(CONTROL_BACKOFF);
        let mut attempts = 0;
        loop {
            match self.metadata(topics).await {
                Ok(()) => return Ok(()),
                Err(e) if attempts < CONTROL_ATTEMPTS => {
                    attempts += 1;
                    tracing::warn!(error = %e, "metadata for the fetcher failed; retrying");
                    // No deadline is set, so there is always a next wait.
                    let _ = backoff.wait().await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One Metadata round trip on an admin connection (reconnecting to the bootstrap servers
    /// if none is open); updates brokers and leaders.
    async fn metadata(&mut self, topics: &[String]) -> Result<(), GroupError> {
        let open = self.admin.keys().next().copied();
        let key = match open {
            Some(key) => key,
            None => {
                let connection = crate::connect::broker_connection(
                    &self.connection,
                    self.settings.request_timeout,
                )
                .await?;
                self.admin.insert(BOOTSTRAP, connection);
                BOOTSTRAP
            }
        };
        let Some(mut connection) = self.admin.remove(&key) else {
            return Err(GroupError::CoordinatorUnknown);
        };
        let answer = brokers::leaders(&mut connection, topics).await;
        match answer {
            Ok(found) => {
                self.admin.insert(key, connection);
                self.brokers = found.brokers;
                self.leaders = found.leaders;
                Ok(())
            }
            Err(e) => Err(GroupError::Wire(e)),
        }
    }

    /// The leaders of every partition we read, asked again after a leader error; the
    /// partitions without one wait for the next try.
    pub(super) async fn refresh_leaders(&mut self) {
        let mut topics: Vec<String> = self.partitions.keys().map(|p| p.topic.clone()).collect();
        topics.dedup();
        match self.metadata(&topics).await {
            Ok(()) => {
                let mut missing = false;
                for (partition, state) in self.partitions.iter_mut() {
                    state.leader = self.leaders.get(partition).copied();
                    missing |= state.leader.is_none();
                }
                self.metadata_due = missing.then(|| Instant::now() + METADATA_RETRY);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metadata for the fetcher failed; retrying");
                self.metadata_due = Some(Instant::now() + CONTROL_BACKOFF.initial * 5);
            }
        }
    }

    /// Positions for `partitions` by `policy`, asked of each partition's leader.
    async fn reset_positions(
        &mut self,
        partitions: &[TopicPartition],
        policy: OffsetReset,
    ) -> Result<HashMap<TopicPartition, i64>, GroupError> {
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for partition in partitions {
            let leader = self
                .leader_of(partition)
                .ok_or_else(|| GroupError::Data(format!("no leader known for {partition}")))?;
            by_leader.entry(leader).or_default().push(partition.clone());
        }
        let mut positions = HashMap::with_capacity(partitions.len());
        for (node, partitions) in by_leader {
            let mut backoff = Backoff::new(CONTROL_BACKOFF);
            let mut attempts = 0;
            loop {
                match self.list_offsets(node, &partitions, policy).await {
                    Ok(found) => {
                        positions.extend(found);
                        break;
                    }
                    Err(e) if attempts < CONTROL_ATTEMPTS => {
                        attempts += 1;
                        tracing::warn!(error = %e, "list offsets failed; retrying");
                        let _ = backoff.wait().await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(positions)
    }

    async fn list_offsets(
        &mut self,
        node: i32,
        partitions: &[TopicPartition],
        policy: OffsetReset,
    ) -> Result<HashMap<TopicPartition, i64>, GroupError> {
        let mut connection = match self.admin.remove(&node) {
            Some(connection) => connection,
            None => {
                let address = self.brokers.get(&node).cloned().ok_or_else(|| {
                    GroupError::Data(format!("broker {node} is not in the metadata"))
                })?;
                BrokerConnection::connect(
                    &address,
                    &self.connection.security,
                    &self.connection.client_id,
                    self.settings.request_timeout,
                )
                .await
                .map_err(GroupError::Wire)?
            }
        };
        let listed = brokers::list_offsets(&mut connection, partitions, policy)
            .await
            .map_err(GroupError::Wire)?;
        self.admin.insert(node, connection);
        let mut positions = HashMap::with_capacity(listed.len());
        for (partition, answer) in listed {
            match answer {
                Ok(offset) => {
                    positions.insert(partition, offset);
                }
                Err(code) => {
                    return Err(GroupError::Data(format!(
                        "ListOffsets for {partition} failed with error code {code}"
                    )));
                }
            }
        }
        if let Some(missing) = partitions.iter().find(|p| !positions.contains_key(*p)) {
            return Err(GroupError::Data(format!(
                "ListOffsets did not answer for {missing}"
            )));
        }
        Ok(positions)
    }

    /// OFFSET_OUT_OF_RANGE: the position left the log (retention, truncation). Java and
    /// librdkafka apply `auto.offset.reset`; with `none` we start over from the earliest
    /// offset rather than stop, since the committed position is gone either way.
    pub(super) async fn reset_out_of_range(&mut self, partition: TopicPartition) {
        let policy = match self.settings.reset {
            OffsetReset::None => OffsetReset::Earliest,
            policy => policy,
        };
        let found = self
            .reset_positions(std::slice::from_ref(&partition), policy)
            .await;
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        match found {
            Ok(positions) => {
                if let Some(&position) = positions.get(&partition) {
                    tracing::warn!(%partition, from = state.position, to = position, ?policy, "offset out of range; reset");
                    state.position = position;
                }
            }
            Err(e) => {
                let _ = state.sender.try_send(FetchItem::Failed(e));
                self.partitions.remove(&partition);
            }
        }
    }
}

//! Where newly assigned partitions start reading: their committed offsets (OffsetFetch), or
//! the `auto.offset.reset` policy for those without one, which the fetcher applies.
//!
//! Only partitions new to the member are looked up; in a cooperative rebalance the ones it
//! keeps go on from where they are.

use super::super::GroupError;
use super::super::coordinator::{CommittedOffset, TopicPartitionsList};
use super::super::errors::{self, ErrorAction, GroupApi};
use super::super::fetch::{StartOffset, TopicPartition};
use super::Member;
use super::desk::pause;
use crate::backoff::{Backoff, BackoffPolicy};

impl Member {
    /// OffsetFetch for `partitions`; those without a committed offset get the reset policy,
    /// which the fetcher applies.
    pub(super) async fn start_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, StartOffset)>, GroupError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted: TopicPartitionsList = Vec::new();
        for tp in partitions {
            match wanted.iter_mut().find(|(topic, _)| *topic == tp.topic) {
                Some((_, list)) => list.push(tp.partition),
                None => wanted.push((tp.topic.clone(), vec![tp.partition])),
            }
        }
        let mut backoff = Backoff::new(BackoffPolicy::REQUESTS);
        loop {
            match self.desk.control.committed(&wanted).await {
                Ok((top_level, committed)) => {
                    let unstable = committed.iter().any(|(_, c)| {
                        errors::classify(GroupApi::OffsetFetch, c.error_code) == ErrorAction::Retry
                    });
                    match errors::classify(GroupApi::OffsetFetch, top_level) {
                        ErrorAction::Proceed if !unstable => {
                            return Ok(self.resolve_starts(partitions, &committed));
                        }
                        ErrorAction::Proceed | ErrorAction::Retry => {}
                        ErrorAction::RefindCoordinator => self.desk.control.mark_unknown(),
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
                }
                Err(e) => return Err(e),
            }
            pause(&mut backoff).await;
        }
    }

    fn resolve_starts(
        &self,
        partitions: &[TopicPartition],
        committed: &[(String, CommittedOffset)],
    ) -> Vec<(TopicPartition, StartOffset)> {
        partitions
            .iter()
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
                (tp.clone(), start)
            })
            .collect()
    }
}

//! What comes back from the broker: each partition's answer in a request classified once
//! (`errors::classify_produce`) into written, retried (in sequence order, after every request
//! of the failed connection has returned), retried under a new epoch or producer id, or failed;
//! and each record's delivery reported to its ticket. Anything but written closes the broker's
//! connection. Part of the accumulator's one owner of state; it must not send anything itself:
//! a retried batch goes back to its partition's queue and `dispatch` sends it after a backoff.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Accumulator, Answered};
use crate::producer::errors::{Reaction, classify_produce};
use crate::producer::identity::IdentityRequest;
use crate::producer::partition::SealedBatch;
use crate::producer::pipeline::Answer;
use crate::producer::{Delivery, ProduceError};

impl Accumulator {
    /// One request's answers: every partition's batch completes, fails or comes back; if any
    /// did not complete, the connection the request went on is closed.
    pub(super) fn on_answer(&mut self, answered: Answered) {
        let Answered {
            broker,
            generation,
            batches,
        } = answered;
        if let Some(state) = self.brokers.get_mut(broker) {
            state.requests_in_flight = state.requests_in_flight.saturating_sub(1);
        }
        let indices: Vec<usize> = batches.iter().map(|(index, _, _)| *index).collect();
        let mut close = false;
        for (index, id, answer) in batches {
            close |= !self.on_partition_answer(index, id, answer);
        }
        if close {
            self.close_link(broker, generation);
        }
        for index in indices {
            if let Some(state) = self.partitions.get_mut(index) {
                state.resume_if_drained();
            }
        }
    }

    /// Whether the partition's batch completed (written, or found written before).
    fn on_partition_answer(&mut self, index: usize, id: u64, answer: Answer) -> bool {
        let Some(state) = self.partitions.get_mut(index) else {
            return true;
        };
        let Some(position) = state.in_flight.iter().position(|b| b.id == id) else {
            return true;
        };
        let Some(batch) = state.in_flight.remove(position) else {
            return true;
        };
        let idempotent = self.config.idempotence;
        let (reaction, offset, reason) = match answer {
            Ok((code, offset, message)) => (
                classify_produce(code, idempotent),
                offset,
                format!(
                    "broker error {code}{}",
                    message.map(|m| format!(" ({m})")).unwrap_or_default()
                ),
            ),
            Err(reason) => (
                Reaction::Retry {
                    refresh_leader: true,
                },
                -1,
                reason,
            ),
        };
        match reaction {
            Reaction::Written => {
                state.backoff.reset();
                self.complete(index, batch, Some(offset));
                return true;
            }
            Reaction::AlreadyWritten => {
                tracing::debug!(topic = %self.topic, partition = index, records = batch.count, "DUPLICATE_SEQUENCE_NUMBER: written by an earlier attempt, offset unknown");
                state.backoff.reset();
                self.complete(index, batch, None);
                return true;
            }
            Reaction::Fail => self.fail(index, batch, reason),
            Reaction::Retry { refresh_leader } => {
                state.leader_stale |= refresh_leader;
                self.retry_later(index, batch, reason);
            }
            Reaction::RetryWithBumpedEpoch => {
                if let Some(current) = self.current_identity() {
                    self.want_identity(IdentityRequest::Bump(current));
                }
                self.retry_later(index, batch, reason);
            }
            Reaction::RetryWithNewProducerId => {
                self.want_identity(IdentityRequest::Fresh);
                self.retry_later(index, batch, reason);
            }
        }
        false
    }

    /// Keeps a failed attempt for resending, unless its delivery time-out would pass first.
    pub(super) fn retry_later(&mut self, index: usize, batch: SealedBatch, reason: String) {
        let state = &mut self.partitions[index];
        // The first resend waits at least `retry_backoff` (less jitter); if even that passes
        // the delivery time-out, fail now rather than resend a batch nobody waits for.
        if Instant::now() + self.config.retry_backoff >= batch.opened + self.config.delivery_timeout
        {
            return self.fail(index, batch, reason);
        }
        tracing::warn!(topic = %self.topic, partition = index, error = %reason, "produce failed; retrying after a backoff");
        state.returned.push(batch);
    }

    pub(super) fn complete(&mut self, index: usize, batch: SealedBatch, base_offset: Option<i64>) {
        self.counters
            .acknowledged
            .fetch_add(batch.count as u64, Ordering::Relaxed);
        let partition = index as i32;
        for (position, reply) in batch.replies.into_iter().enumerate() {
            if let Some(reply) = reply {
                let offset = base_offset.map(|base| base + position as i64);
                let _ = reply.send(Ok(Delivery { partition, offset }));
            }
        }
        drop(batch.permit);
    }

    pub(super) fn fail(&mut self, index: usize, batch: SealedBatch, reason: String) {
        tracing::error!(topic = %self.topic, partition = index, records = batch.count, %reason, "batch failed");
        // A batch the broker may hold leaves a sequence we will never fill: start a new epoch
        // so later batches are not refused as out of order (Java does the same).
        if batch.sent
            && let Some(current) = self.current_identity()
        {
            self.want_identity(IdentityRequest::Bump(current));
        }
        self.counters
            .failed
            .fetch_add(batch.count as u64, Ordering::Relaxed);
        let error = ProduceError::DeliveryFailed {
            timeout: self.config.delivery_timeout,
            reason,
        };
        for reply in batch.replies.into_iter().flatten() {
            let _ = reply.send(Err(error.clone()));
        }
        drop(batch.permit);
    }
}

//! Sending: which ready batches go out now (up to the in-flight limit per partition, in
//! sequence order, stamped with the producer id), connecting to leaders, and asking for a new
//! producer id when one is wanted.
//!
//! Part of the accumulator's one owner of state; it starts network work only as spawned tasks
//! or futures the accumulator polls, and must not wait on them here.

use std::sync::Arc;
use std::time::Instant;

use super::{Accumulator, Event, IdentityState};
use crate::producer::batch::ProducerIdentity;
use crate::producer::identity::{self, IdentityRequest};
use crate::producer::partition::{Encoded, Link, stamped};
use crate::producer::pipeline::{self, Pipeline};

impl Accumulator {
    /// Sends what may be sent: up to `max_in_flight_per_partition` encoded batches per
    /// partition, unless the partition is waiting for its failed requests, backing off,
    /// connecting, or the producer is waiting for a new identity.
    pub(super) fn dispatch(&mut self) {
        let now = Instant::now();
        self.expire_waiting_batches(now);
        if let IdentityState::Wanted {
            request,
            not_before,
        } = self.identity
            && now >= not_before
            && self.nothing_in_flight()
        {
            self.ask_for_identity(request);
        }
        for state in &mut self.partitions {
            if state.retry_at.is_some_and(|at| at <= now) {
                state.retry_at = None;
            }
        }
        let identity = match self.identity {
            IdentityState::Disabled => None,
            IdentityState::Ready(identity) => Some(identity),
            IdentityState::Wanted { .. } | IdentityState::Asking => return,
        };
        let mut unencodable = Vec::new();
        let mut to_connect = Vec::new();
        for index in 0..self.partitions.len() {
            let state = &mut self.partitions[index];
            if state.ready.is_empty() || !state.returned.is_empty() || state.retry_at.is_some() {
                continue;
            }
            let pipeline = match &mut state.link {
                Link::Up(pipeline) => pipeline,
                Link::Connecting => continue,
                Link::Down => {
                    to_connect.push(index);
                    continue;
                }
            };
            while state.in_flight.len() < self.config.in_flight_limit() {
                let Some(front) = state.ready.front() else {
                    break;
                };
                match &front.data {
                    Encoded::Pending => break,
                    Encoded::Failed(reason) => {
                        let reason = reason.clone();
                        if let Some(batch) = state.ready.pop_front() {
                            unencodable.push((index, batch, reason));
                        }
                        continue;
                    }
                    Encoded::Fresh(_) | Encoded::Stamped { .. } => {}
                }
                let Some(mut batch) = state.ready.pop_front() else {
                    break;
                };
                let base_sequence = match (identity, batch.base_sequence) {
                    (None, _) => -1,
                    (Some(_), Some(sequence)) => sequence,
                    (Some(_), None) => {
                        let sequence = state.next_sequence;
                        // Kafka's sequences wrap from i32::MAX to 0.
                        state.next_sequence =
                            ((i64::from(sequence) + batch.count as i64) % (1 << 31)) as i32;
                        sequence
                    }
                };
                batch.base_sequence = Some(base_sequence);
                let bytes = stamped(&mut batch.data, identity, base_sequence);
                batch.sent = true;
                let answer = pipeline.send(bytes);
                let id = batch.id;
                self.answers
                    .push(Box::pin(async move { (index, id, answer.await) }));
                state.in_flight.push_back(batch);
            }
        }
        for (index, batch, reason) in unencodable {
            self.fail(index, batch, reason);
        }
        for index in to_connect {
            self.connect(index);
        }
    }

    pub(super) fn expire_waiting_batches(&mut self, now: Instant) {
        let timeout = self.config.delivery_timeout;
        for index in 0..self.partitions.len() {
            while self.partitions[index]
                .ready
                .front()
                .is_some_and(|b| b.opened + timeout <= now && !matches!(b.data, Encoded::Pending))
            {
                if let Some(batch) = self.partitions[index].ready.pop_front() {
                    self.fail(index, batch, "timed out waiting to be sent".into());
                }
            }
        }
    }

    pub(super) fn connect(&mut self, index: usize) {
        let state = &mut self.partitions[index];
        state.link = Link::Connecting;
        let settings = self.settings.clone();
        let topic = Arc::clone(&self.topic);
        let (leader, stale) = (state.leader.clone(), state.leader_stale);
        let timeout = self.config.request_timeout;
        let events = self.events.clone();
        let partition = index as i32;
        tokio::spawn(async move {
            let leader = if stale {
                pipeline::find_leader(&settings, &topic, partition, timeout)
                    .await
                    .unwrap_or(leader)
            } else {
                leader
            };
            let result = Pipeline::open(&settings, &leader, &topic, partition, timeout)
                .await
                .map(|pipeline| (pipeline, leader));
            let _ = events.send(Event::Connected {
                partition: index,
                result,
            });
        });
    }

    pub(super) fn ask_for_identity(&mut self, request: IdentityRequest) {
        self.identity = IdentityState::Asking;
        let settings = self.settings.clone();
        let (timeout, deadline) = (self.config.request_timeout, self.config.delivery_timeout);
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = identity::obtain(&settings, request, timeout, deadline).await;
            let _ = events.send(Event::Identity(result));
        });
    }

    /// Asks for a new identity before anything more is sent (the first request wins).
    pub(super) fn want_identity(&mut self, request: IdentityRequest) {
        if let IdentityState::Ready(_) = self.identity {
            self.identity = IdentityState::Wanted {
                request,
                not_before: Instant::now(),
            };
        }
    }

    pub(super) fn current_identity(&self) -> Option<ProducerIdentity> {
        match self.identity {
            IdentityState::Ready(identity) => Some(identity),
            _ => None,
        }
    }
}

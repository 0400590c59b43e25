//! Sending: per broker with room for another request, one ready batch from each partition it
//! leads, in sequence order, stamped with the producer id, up to the request's byte cap; and
//! connecting to brokers, looking leaders up, asking for a new producer id when one is wanted.
//!
//! Part of the accumulator's one owner of state; it starts network work only as spawned tasks
//! or futures the accumulator polls, and must not wait on them here.

use bytes::Bytes;
use std::time::Instant;

use super::broker::{BrokerLink, Link};
use super::{Accumulator, Answered, Event, IdentityState};
use crate::producer::batch::ProducerIdentity;
use crate::producer::identity::{self, IdentityRequest};
use crate::producer::partition::{Encoded, PartitionState, SealedBatch, stamped};

/// Bytes of batches in one Produce request (Java's `max.request.size` default), though always
/// at least one batch: a batch may pass it (it closes at `batch_max_bytes` plus one record).
const REQUEST_MAX_BYTES: usize = 1024 * 1024;

impl Accumulator {
    /// Sends what may be sent: for each connected broker with fewer than the in-flight limit of
    /// requests on its connection, a request with the next batch of every partition it leads
    /// that may send (nothing returned waiting, no backoff, its front batch encoded, fewer than
    /// the limit in flight) — unless the producer is waiting for a new identity. Brokers not
    /// connected are connected to, leaders in doubt looked up.
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
        let limit = self.config.in_flight_limit();
        for broker in 0..self.brokers.len() {
            let BrokerLink {
                link,
                requests_in_flight,
                drain_start,
                ..
            } = &mut self.brokers[broker];
            let Link::Up {
                pipeline,
                generation,
            } = link
            else {
                continue;
            };
            while *requests_in_flight < limit {
                let request = drain(
                    &mut self.partitions,
                    (broker, *generation),
                    drain_start,
                    limit,
                    identity,
                    &mut unencodable,
                );
                if request.batches.is_empty() {
                    break;
                }
                let Drained { sent, batches } = request;
                let answers = pipeline.send(batches);
                let generation = *generation;
                *requests_in_flight += 1;
                self.answers.push(Box::pin(async move {
                    let answers = answers.await;
                    Answered {
                        broker,
                        generation,
                        batches: sent
                            .into_iter()
                            .zip(answers)
                            .map(|((index, id), answer)| (index, id, answer))
                            .collect(),
                    }
                }));
            }
        }
        for (index, batch, reason) in unencodable {
            self.fail(index, batch, reason);
        }
        self.reach_leaders();
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

    /// Connects to each broker that leads a partition with a batch to send, and looks up the
    /// leaders in doubt of partitions with batches to send.
    fn reach_leaders(&mut self) {
        let mut lookup = false;
        let mut to_connect = Vec::new();
        for state in self.partitions.iter().filter(|p| p.may_send()) {
            if state.leader_stale {
                lookup = true;
            } else if self
                .brokers
                .get(state.leader)
                .is_some_and(|b| matches!(b.link, Link::Down))
                && !to_connect.contains(&state.leader)
            {
                to_connect.push(state.leader);
            }
        }
        if lookup && !self.looking_up_leaders {
            self.look_up_leaders();
        }
        for broker in to_connect {
            self.connect(broker);
        }
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

/// One request's batches: (partition index, batch id) of each, and its partition and bytes.
#[derive(Default)]
struct Drained {
    sent: Vec<(usize, u64)>,
    batches: Vec<(i32, Bytes)>,
}

/// One request's batches for a broker's connection: the front batch of each partition it leads
/// that may send, starting where the last drain stopped, until the byte cap; each popped, given
/// its sequence and identity, and moved to its partition's in-flight queue. A partition with
/// batches still in flight on an earlier connection waits until they are back, so that its
/// requests are never on two connections and a failure's followers are sure to fail with it.
fn drain(
    partitions: &mut [PartitionState],
    link: (usize, u64),
    drain_start: &mut usize,
    limit: usize,
    identity: Option<ProducerIdentity>,
    unencodable: &mut Vec<(usize, SealedBatch, String)>,
) -> Drained {
    let count = partitions.len();
    let start = *drain_start % count.max(1);
    let mut request = Drained::default();
    let mut bytes = 0;
    for index in (start..count).chain(0..start) {
        let state = &mut partitions[index];
        if state.leader != link.0
            || state.leader_stale
            || !state.may_send()
            || state.in_flight.len() >= limit
            || (!state.in_flight.is_empty() && state.in_flight_link != link)
        {
            continue;
        }
        while let Some(front) = state.ready.front()
            && let Encoded::Failed(reason) = &front.data
        {
            let reason = reason.clone();
            if let Some(batch) = state.ready.pop_front() {
                unencodable.push((index, batch, reason));
            }
        }
        let size = match state.ready.front().map(|b| &b.data) {
            Some(Encoded::Fresh(data)) => data.len(),
            Some(Encoded::Stamped { bytes, .. }) => bytes.len(),
            Some(Encoded::Pending | Encoded::Failed(_)) | None => continue,
        };
        if bytes + size > REQUEST_MAX_BYTES && !request.batches.is_empty() {
            // The next request starts with this partition.
            *drain_start = index;
            return request;
        }
        let Some(mut batch) = state.ready.pop_front() else {
            continue;
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
        let data = stamped(&mut batch.data, identity, base_sequence);
        batch.sent = true;
        bytes += data.len();
        request.sent.push((index, batch.id));
        request.batches.push((index as i32, data));
        state.in_flight.push_back(batch);
        state.in_flight_link = link;
        *drain_start = index + 1;
    }
    request
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;

    use super::*;

    const IDENTITY: Option<ProducerIdentity> = Some(ProducerIdentity { id: 7, epoch: 0 });

    /// Partitions led by the given brokers, each with batches of these sizes ready (3 records
    /// each), encoded and never sent.
    fn partitions(leaders: &[usize], sizes: &[usize]) -> Vec<PartitionState> {
        let mut id = 0;
        leaders
            .iter()
            .map(|&leader| {
                let mut state = PartitionState::new(leader, Duration::from_millis(100));
                for &size in sizes {
                    id += 1;
                    state.ready.push_back(SealedBatch {
                        id,
                        data: Encoded::Fresh(BytesMut::from(&vec![0u8; size][..])),
                        count: 3,
                        replies: Vec::new(),
                        permit: None,
                        in_memory_bytes: 0,
                        encoded_bytes: size,
                        opened: Instant::now(),
                        base_sequence: None,
                        sent: false,
                    });
                }
                state
            })
            .collect()
    }

    /// One request's drain on connection `link` with the test identity.
    fn next(
        states: &mut [PartitionState],
        link: (usize, u64),
        start: &mut usize,
        limit: usize,
        failed: &mut Vec<(usize, SealedBatch, String)>,
    ) -> Drained {
        drain(states, link, start, limit, IDENTITY, failed)
    }

    fn partitions_in(request: &Drained) -> Vec<i32> {
        request
            .batches
            .iter()
            .map(|(partition, _)| *partition)
            .collect()
    }

    #[test]
    fn a_request_takes_one_batch_from_each_partition_the_broker_leads_in_sequence_order() {
        let mut states = partitions(&[0, 1, 0, 0], &[100, 100]);
        let (mut start, mut failed) = (0, Vec::new());
        let first = next(&mut states, (0, 1), &mut start, 5, &mut failed);
        assert_eq!(partitions_in(&first), [0, 2, 3]);
        let second = next(&mut states, (0, 1), &mut start, 5, &mut failed);
        assert_eq!(partitions_in(&second), [0, 2, 3]);
        for index in [0, 2, 3] {
            let sequences: Vec<_> = states[index]
                .in_flight
                .iter()
                .map(|b| b.base_sequence)
                .collect();
            assert_eq!(sequences, [Some(0), Some(3)], "partition {index}");
        }
        assert_eq!(states[1].in_flight.len(), 0, "led by another broker");
        let third = next(&mut states, (0, 1), &mut start, 5, &mut failed);
        assert!(third.batches.is_empty());
    }

    #[test]
    fn the_byte_cap_ends_a_request_and_the_next_one_starts_with_the_partition_left_out() {
        let big = 600 * 1024;
        let mut states = partitions(&[0, 0, 0], &[big, big]);
        let (mut start, mut failed) = (0, Vec::new());
        let mut order = Vec::new();
        for _ in 0..6 {
            let request = next(&mut states, (0, 1), &mut start, 5, &mut failed);
            assert_eq!(request.batches.len(), 1, "two would pass the cap");
            order.extend(partitions_in(&request));
        }
        // Round robin: no partition waits behind the same others every time.
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_batch_larger_than_the_cap_still_goes_alone() {
        let mut states = partitions(&[0], &[REQUEST_MAX_BYTES + 1]);
        let (mut start, mut failed) = (0, Vec::new());
        let request = next(&mut states, (0, 1), &mut start, 5, &mut failed);
        assert_eq!(partitions_in(&request), [0]);
    }

    #[test]
    fn a_partition_at_its_in_flight_limit_or_still_on_a_closed_connection_waits() {
        let mut states = partitions(&[0, 0], &[100, 100, 100]);
        let (mut start, mut failed) = (0, Vec::new());
        let limit = 2;
        for _ in 0..2 {
            next(&mut states, (0, 1), &mut start, limit, &mut failed);
        }
        let full = next(&mut states, (0, 1), &mut start, limit, &mut failed);
        assert!(full.batches.is_empty(), "both partitions have 2 in flight");
        // One answer came back for partition 1; the connection was replaced (generation 2)
        // while partition 1 still has a batch on the old one.
        states[1].in_flight.pop_front();
        states[0].in_flight.clear();
        let request = next(&mut states, (0, 2), &mut start, limit, &mut failed);
        assert_eq!(partitions_in(&request), [0]);
    }

    #[test]
    fn an_unencodable_batch_fails_and_the_next_one_goes_in_its_place() {
        let mut states = partitions(&[0], &[100, 100]);
        states[0].ready[0].data = Encoded::Failed("too odd".into());
        let (mut start, mut failed) = (0, Vec::new());
        let request = next(&mut states, (0, 1), &mut start, 5, &mut failed);
        assert_eq!(failed.len(), 1);
        assert_eq!(request.sent, [(0, 2)]);
        assert_eq!(states[0].in_flight[0].base_sequence, Some(0));
    }
}

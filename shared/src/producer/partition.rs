//! One partition's side of the producer: the batch it is filling, its closed batches in
//! sequence order, what is in flight to its leader, and which broker that leader is.
//!
//! Plain state that the accumulator owns and drives; it must not spawn or wait. The choice a
//! reader may question: a closed batch keeps its encoded bytes and remembers the identity and
//! sequence stamped into them, so a resend reuses the bytes unless an epoch bump changed them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::OwnedSemaphorePermit;

use super::batch::{self, ProducerIdentity};
use super::{OutgoingRecord, Reply};
use crate::backoff::{Backoff, BackoffPolicy};

/// Longest pause between attempts on one partition (Java's `retry.backoff.max.ms`).
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A partition's retry spacing: `retry_backoff` doubling to [`MAX_BACKOFF`], with jitter.
pub(super) fn retry_policy(retry_backoff: Duration) -> BackoffPolicy {
    BackoffPolicy::doubling(retry_backoff, MAX_BACKOFF.max(retry_backoff))
}

/// Records gathered for one partition, not yet encoded.
pub(super) struct OpenBatch {
    pub(super) records: Vec<OutgoingRecord>,
    pub(super) replies: Vec<Option<Reply>>,
    pub(super) permit: Option<OwnedSemaphorePermit>,
    pub(super) encoded_bytes: usize,
    pub(super) in_memory_bytes: usize,
    pub(super) opened: Instant,
}

pub(super) enum Encoded {
    Pending,
    Failed(String),
    Fresh(BytesMut),
    Stamped {
        bytes: Bytes,
        identity: Option<ProducerIdentity>,
        base_sequence: i32,
    },
}

/// A closed batch, from encoding until its records' outcome is known.
pub(super) struct SealedBatch {
    pub(super) id: u64,
    pub(super) data: Encoded,
    pub(super) count: usize,
    pub(super) replies: Vec<Option<Reply>>,
    pub(super) permit: Option<OwnedSemaphorePermit>,
    /// Given back once encoded: the records' in-memory form is gone then.
    pub(super) in_memory_bytes: usize,
    pub(super) encoded_bytes: usize,
    pub(super) opened: Instant,
    pub(super) base_sequence: Option<i32>,
    /// Sent at least once: the broker may hold it.
    pub(super) sent: bool,
}

pub(super) struct PartitionState {
    pub(super) open: Option<OpenBatch>,
    pub(super) ready: VecDeque<SealedBatch>,
    pub(super) in_flight: VecDeque<SealedBatch>,
    /// The connection (broker index, generation) the in-flight batches went on.
    pub(super) in_flight_link: (usize, u64),
    /// Failed attempts waiting for the rest of the partition's requests to come back.
    pub(super) returned: Vec<SealedBatch>,
    pub(super) next_sequence: i32,
    /// The leader's index among the accumulator's brokers.
    pub(super) leader: usize,
    /// The leader is in doubt (it refused us, or its connection failed): look it up first.
    pub(super) leader_stale: bool,
    pub(super) retry_at: Option<Instant>,
    /// Spaces the partition's reconnects and resends; reset by the first success.
    pub(super) backoff: Backoff,
}

impl PartitionState {
    pub(super) fn new(leader: usize, retry_backoff: Duration) -> Self {
        Self {
            open: None,
            ready: VecDeque::new(),
            in_flight: VecDeque::new(),
            in_flight_link: (leader, 0),
            returned: Vec::new(),
            next_sequence: 0,
            leader,
            leader_stale: false,
            retry_at: None,
            backoff: Backoff::new(retry_policy(retry_backoff)),
        }
    }

    /// Whether the partition's next batch may go out as far as the partition is concerned:
    /// one is ready, no failed attempt waits for the rest to return, no backoff runs.
    pub(super) fn may_send(&self) -> bool {
        !self.ready.is_empty() && self.returned.is_empty() && self.retry_at.is_none()
    }

    /// Once every request of a failed connection has come back, puts them in front of the
    /// queue in the order they were first sent, and backs off.
    pub(super) fn resume_if_drained(&mut self) {
        if !self.in_flight.is_empty() || self.returned.is_empty() {
            return;
        }
        self.returned.sort_by_key(|b| b.id);
        while let Some(batch) = self.returned.pop() {
            self.ready.push_front(batch);
        }
        self.back_off();
    }
}

impl PartitionState {
    /// No attempt on this partition before its next backoff has passed.
    pub(super) fn back_off(&mut self) -> Duration {
        // No deadline: each batch's delivery time-out bounds the retries instead.
        let delay = self.backoff.next_delay().unwrap_or(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + delay);
        delay
    }
}

/// The batch's bytes with this identity and sequence, stamping (a copy) only when they differ.
pub(super) fn stamped(
    data: &mut Encoded,
    identity: Option<ProducerIdentity>,
    base_sequence: i32,
) -> Bytes {
    let current = std::mem::replace(data, Encoded::Pending);
    let mut fresh = match current {
        Encoded::Stamped {
            bytes,
            identity: stamped_identity,
            base_sequence: stamped_sequence,
        } if stamped_identity == identity && stamped_sequence == base_sequence => {
            *data = Encoded::Stamped {
                bytes: bytes.clone(),
                identity,
                base_sequence,
            };
            return bytes;
        }
        Encoded::Stamped { bytes, .. } => BytesMut::from(&bytes[..]),
        Encoded::Fresh(bytes) => bytes,
        Encoded::Pending | Encoded::Failed(_) => BytesMut::new(),
    };
    batch::stamp(&mut fresh, identity, base_sequence);
    let bytes = fresh.freeze();
    *data = Encoded::Stamped {
        bytes: bytes.clone(),
        identity,
        base_sequence,
    };
    bytes
}

//! What one record costs the producer's byte budget (`BUFFER_MEMORY_BYTES`): its encoded size
//! in a v2 record batch plus what the accumulator really holds for it until it is encoded.
//!
//! It owns only arithmetic; taking and returning permits is the producer's business. The
//! choice a reader may question: both parts are taken at `send`, although a record is held in
//! its in-memory form until its batch is encoded and in its encoded form after. Encoding needs
//! both at once, so that is the peak; the in-memory part is given back as soon as the batch is
//! encoded, the encoded part when the batch is acknowledged.

use std::borrow::Cow;
use std::mem::size_of;

use super::{Delivery, OutgoingRecord, ProduceError, Queued};

/// A oneshot channel's shared state (tokio allocates one per delivery ticket): the value slot
/// plus six words (the `Arc`'s counts, the state, the two tasks' wakers as tokio packs them),
/// 96 bytes with tokio 1.54 — `tests/tests/producer_budget.rs` measures it.
const ONESHOT_BYTES: usize =
    size_of::<Option<Result<Delivery, ProduceError>>>() + size_of::<usize>() * 6;

/// What one record holds, in two parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCost {
    /// Bytes of the record in a v2 batch, as the first record of its batch (a later record's
    /// offset and timestamp deltas can take a few bytes more).
    pub encoded: usize,
    /// Heap and slot bytes the record occupies while it waits in the accumulator.
    pub in_memory: usize,
}

impl RecordCost {
    pub fn of(record: &OutgoingRecord, with_ticket: bool) -> Self {
        Self {
            encoded: encoded_size(record),
            in_memory: in_memory_size(record, with_ticket),
        }
    }

    pub fn total(&self) -> usize {
        self.encoded + self.in_memory
    }
}

/// Kafka's v2 record: a varint length, then attributes, timestamp delta, offset delta, key,
/// value and headers (lengths as zig-zag varints).
pub fn encoded_size(record: &OutgoingRecord) -> usize {
    let key = record
        .key
        .as_ref()
        .map_or(varint_len(-1), |k| varint_len(k.len() as i64) + k.len());
    let value = varint_len(record.value.len() as i64) + record.value.len();
    let headers = varint_len(record.headers.len() as i64)
        + record
            .headers
            .iter()
            .map(|(name, value)| {
                varint_len(name.len() as i64)
                    + name.len()
                    + varint_len(value.len() as i64)
                    + value.len()
            })
            .sum::<usize>();
    // attributes (1 byte) + timestamp delta 0 (1) + offset delta 0 (1)
    let body = 3 + key + value + headers;
    varint_len(body as i64) + body
}

/// The record's slot plus the heap behind its key, value and headers (counted by capacity,
/// which is what the allocator gave out) and its delivery ticket's channel. The slot is the
/// hand-over's `Queued`, the larger of the two places a waiting record sits (the other is its
/// batch's record and reply vectors).
pub fn in_memory_size(record: &OutgoingRecord, with_ticket: bool) -> usize {
    let slot = size_of::<Queued>();
    let key = record.key.as_ref().map_or(0, Vec::capacity);
    let value = record.value.capacity();
    let headers = record.headers.capacity() * size_of::<(Cow<'static, str>, bytes::Bytes)>()
        + record
            .headers
            .iter()
            .map(|(name, value)| {
                let name = match name {
                    Cow::Borrowed(_) => 0,
                    Cow::Owned(owned) => owned.capacity(),
                };
                name + value.len()
            })
            .sum::<usize>();
    let ticket = if with_ticket { ONESHOT_BYTES } else { 0 };
    slot + key + value + headers + ticket
}

/// Length of a zig-zag varint.
fn varint_len(value: i64) -> usize {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let mut len = 1;
    while zigzag >= 0x80 {
        zigzag >>= 7;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::Utc;

    use super::*;
    use crate::producer::Compression;
    use crate::producer::batch;

    /// Bytes of a v2 batch before its first record.
    const BATCH_HEADER: usize = 61;

    fn record(key: Option<&str>, value_len: usize, headers: usize) -> OutgoingRecord {
        OutgoingRecord {
            key: key.map(|k| k.as_bytes().to_vec()),
            value: vec![b'x'; value_len],
            headers: (0..headers)
                .map(|i| {
                    (
                        Cow::Owned(format!("header-{i}")),
                        Bytes::from(vec![b'v'; i * 50]),
                    )
                })
                .collect(),
            timestamp: Utc::now(),
            partition: None,
        }
    }

    #[test]
    fn encoded_size_is_the_record_bytes_the_batch_encoder_writes() {
        for sample in [
            record(None, 0, 0),
            record(Some("order-1"), 200, 0),
            record(Some("k"), 70_000, 3),
            record(None, 63, 1),
            record(Some(""), 64, 2),
        ] {
            let expected = encoded_size(&sample);
            let encoded = batch::encode(vec![sample.clone()], Compression::None).expect("encodes");
            assert_eq!(encoded.len() - BATCH_HEADER, expected, "{sample:?}");
        }
    }

    #[test]
    fn in_memory_size_counts_capacity_not_length() {
        let mut sample = record(Some("key"), 10, 0);
        sample.value.reserve_exact(1000);
        let capacity = sample.value.capacity();
        let cost = in_memory_size(&sample, false);
        assert!(cost >= capacity + 3 + size_of::<OutgoingRecord>(), "{cost}");
        assert!(in_memory_size(&sample, true) > cost);
    }

    #[test]
    fn varint_lengths_follow_kafka_zigzag() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(-1), 1);
        assert_eq!(varint_len(63), 1);
        assert_eq!(varint_len(64), 2);
        assert_eq!(varint_len(-65), 2);
        assert_eq!(varint_len(8191), 2);
        assert_eq!(varint_len(8192), 3);
    }
}

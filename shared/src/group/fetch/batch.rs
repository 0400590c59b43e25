//! Decoding of the record batches (message format v2, the only one Kafka 4 writes) that a
//! Fetch response carries for one partition, into [`ConsumerRecord`]s.
//!
//! Keys, values and header values are slices of the response (or of the decompressed records),
//! never copies: a record costs one `Vec` slot and a few reference counts, not three
//! allocations. Every length read from the wire is checked against the bytes that remain
//! before anything is sliced or reserved, so a corrupt or hostile batch is an error, never a
//! panic or an allocation sized by the sender. It decodes only; what to do with a batch that
//! does not decode is the fetcher's decision.

#[cfg(test)]
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use chrono::{DateTime, Utc};

use super::compression::{self, Codec, DecompressError};

/// One record as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// In the order the producer wrote them (a key may repeat, as Kafka allows).
    pub headers: Vec<RecordHeader>,
    pub timestamp: DateTime<Utc>,
}

impl ConsumerRecord {
    /// The value of the first header named `key`.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: String,
    pub value: Option<Bytes>,
}

/// Why the batch at `offset` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record batch at offset {offset}: {reason}")]
pub struct BatchError {
    pub offset: i64,
    pub reason: BatchFault,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchFault {
    #[error("message format v{0} is not supported (only v2)")]
    UnsupportedMagic(i8),
    #[error("CRC-32C mismatch (the batch says {expected:#010x}, its bytes give {actual:#010x})")]
    Crc { expected: u32, actual: u32 },
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// What one partition's records decoded to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records at or after the position asked for, in offset order.
    pub records: Vec<ConsumerRecord>,
    /// The offset after the last complete batch, even when that batch held nothing to
    /// deliver (a transaction marker, aborted records), so the position moves past it.
    pub next_offset: Option<i64>,
    /// Decoding stopped here: the next batch starts past the offset that should come next.
    pub gap: Option<OffsetGap>,
}

/// Offsets missing between the position (or the end of the last batch) and the next batch.
///
/// Kafka's log below the high watermark has no holes except where compaction removed whole
/// batches. Nisshi's memory engine has transient ones: it raises the high watermark before it
/// stores the batch, so a fetch racing a produce can see a later batch and not the one before
/// it. Reading on would lose that batch for good, so the decoder stops at a gap and the
/// fetcher decides (`gaps`) whether it is a late batch or a real hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetGap {
    /// The first offset that is missing.
    pub missing_from: i64,
    /// The base offset of the batch after the hole.
    pub resumes_at: i64,
}

/// Read-committed filtering: the producers whose transactions in this range were aborted,
/// from the Fetch response's list (KIP-98). A batch of an aborted producer is skipped until
/// that producer's abort marker.
#[derive(Debug, Default)]
pub struct AbortedTransactions {
    /// (first offset, producer id), ascending: each becomes active once a batch reaches it.
    pending: Vec<(i64, i64)>,
    active: HashSet<i64>,
}

impl AbortedTransactions {
    pub fn new(mut list: Vec<(i64, i64)>) -> Self {
        list.sort_unstable();
        list.reverse(); // popped from the end, lowest first offset first
        Self {
            pending: list,
            active: HashSet::new(),
        }
    }

    fn activate_up_to(&mut self, last_offset: i64) {
        while let Some(&(first_offset, producer_id)) = self.pending.last() {
            if first_offset > last_offset {
                break;
            }
            self.active.insert(producer_id);
            self.pending.pop();
        }
    }
}

/// The largest record section we decompress (the records of one batch).
pub const MAX_DECOMPRESSED_BATCH: usize = 64 * 1024 * 1024;

const BATCH_HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the part that precedes what batchLength counts.
const LOG_OVERHEAD: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const CRC_COVERS_FROM: usize = 21;
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;
const LOG_APPEND_TIME: i16 = 0x08;

/// Decodes the batches in `data` for one partition, keeping records at or after `from`.
///
/// A batch cut short at the end of `data` is normal (the broker fills up to the byte limit)
/// and ends decoding without error; so does a batch that starts past the next expected
/// offset (`decoded.gap` says where). The first bad batch is an error, after the records of
/// the good batches before it have been kept in `decoded`.
pub fn decode(
    topic: &Arc<str>,
    partition: i32,
    mut data: Bytes,
    from: i64,
    aborted: &mut AbortedTransactions,
    decoded: &mut Decoded,
) -> Result<(), BatchError> {
    // The offset the next batch must reach down to: a batch may start before the position
    // (it is fetched whole), never after it.
    let mut due = from;
    while data.len() >= LOG_OVERHEAD {
        let base_offset = (&data[..8]).get_i64();
        if base_offset > due {
            decoded.gap = Some(OffsetGap {
                missing_from: due,
                resumes_at: base_offset,
            });
            break;
        }
        let fail = |reason: BatchFault| BatchError {
            offset: base_offset,
            reason,
        };
        let batch_length = (&data[8..12]).get_i32();
        let total = usize::try_from(batch_length)
            .ok()
            .and_then(|length| length.checked_add(LOG_OVERHEAD))
            .ok_or_else(|| fail(BatchFault::Malformed("negative batch length")))?;
        if data.len() < total {
            break; // the tail the broker cut at its byte limit
        }
        let batch = data.split_to(total);
        if total < BATCH_HEADER_LEN {
            // Old message formats have shorter headers; say which format it is if we can.
            let magic = batch.get(MAGIC_AT).map_or(-1, |m| *m as i8);
            return Err(fail(if magic == 2 {
                BatchFault::Malformed("batch shorter than its header")
            } else {
                BatchFault::UnsupportedMagic(magic)
            }));
        }
        let magic = batch[MAGIC_AT] as i8;
        if magic != 2 {
            return Err(fail(BatchFault::UnsupportedMagic(magic)));
        }
        let expected = (&batch[CRC_AT..CRC_AT + 4]).get_u32();
        let actual = crc32c::crc32c(&batch[CRC_COVERS_FROM..]);
        if expected != actual {
            return Err(fail(BatchFault::Crc { expected, actual }));
        }
        let mut header = &batch[CRC_COVERS_FROM..BATCH_HEADER_LEN];
        let attributes = header.get_i16();
        let last_offset_delta = header.get_i32();
        let base_timestamp = header.get_i64();
        let max_timestamp = header.get_i64();
        let producer_id = header.get_i64();
        let _producer_epoch = header.get_i16();
        let _base_sequence = header.get_i32();
        let count = header.get_i32();
        let last_offset = base_offset + i64::from(last_offset_delta);
        aborted.activate_up_to(last_offset);
        // Set only once the batch is known good, so a bad batch is never skipped over.
        let skipped = if attributes & CONTROL != 0 {
            // A transaction marker: an abort ends the aborted range of its producer.
            if is_abort_marker(&batch.slice(BATCH_HEADER_LEN..)) {
                aborted.active.remove(&producer_id);
            }
            true
        } else {
            (attributes & TRANSACTIONAL != 0 && aborted.active.contains(&producer_id))
                // wholly before the position (a compressed batch is fetched whole)
                || last_offset < from
        };
        due = due.max(last_offset + 1);
        if skipped {
            decoded.next_offset = Some(last_offset + 1);
            continue;
        }
        let codec = Codec::from_attributes(attributes).map_err(|e| fail(e.into()))?;
        let records = match codec {
            Codec::None => batch.slice(BATCH_HEADER_LEN..),
            codec => {
                compression::decompress(codec, &batch[BATCH_HEADER_LEN..], MAX_DECOMPRESSED_BATCH)
                    .map_err(|e| fail(e.into()))?
            }
        };
        let batch_header = BatchHeader {
            base_offset,
            base_timestamp,
            log_append_time: (attributes & LOG_APPEND_TIME != 0).then_some(max_timestamp),
        };
        let count = usize::try_from(count)
            .map_err(|_| fail(BatchFault::Malformed("negative record count")))?;
        // Never reserve from the count alone: a record takes at least 7 bytes on the wire.
        decoded.records.reserve(count.min(records.len() / 7));
        let kept = decoded.records.len();
        if let Err(reason) = decode_records(
            topic,
            partition,
            records,
            count,
            &batch_header,
            from,
            decoded,
        ) {
            // None of a bad batch is delivered: its good records would come again on retry.
            decoded.records.truncate(kept);
            return Err(fail(BatchFault::Malformed(reason)));
        }
        decoded.next_offset = Some(last_offset + 1);
    }
    Ok(())
}

struct BatchHeader {
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
}

fn decode_records(
    topic: &Arc<str>,
    partition: i32,
    mut records: Bytes,
    count: usize,
    batch: &BatchHeader,
    from: i64,
    decoded: &mut Decoded,
) -> Result<(), &'static str> {
    for _ in 0..count {
        let length = varint_length(&mut records)?.ok_or("null record length")?;
        if records.len() < length {
            return Err("record longer than its batch");
        }
        let mut record = records.split_to(length);
        if record.is_empty() {
            return Err("empty record");
        }
        record.advance(1); // attributes, unused in v2
        let timestamp_delta = varlong(&mut record)?;
        let offset_delta = varlong(&mut record)?;
        let key = bytes_field(&mut record)?;
        let value = bytes_field(&mut record)?;
        let header_count = varint_length(&mut record)?.unwrap_or(0);
        let mut headers = Vec::with_capacity(header_count.min(record.len() / 2));
        for _ in 0..header_count {
            let key = bytes_field(&mut record)?.ok_or("null header key")?;
            let value = bytes_field(&mut record)?;
            headers.push(RecordHeader {
                key: String::from_utf8_lossy(&key).into_owned(),
                value,
            });
        }
        let offset = batch.base_offset + offset_delta;
        if offset < from {
            continue;
        }
        let millis = batch
            .log_append_time
            .unwrap_or(batch.base_timestamp.saturating_add(timestamp_delta));
        decoded.records.push(ConsumerRecord {
            topic: Arc::clone(topic),
            partition,
            offset,
            key,
            value,
            headers,
            timestamp: DateTime::from_timestamp_millis(millis).unwrap_or_default(),
        });
    }
    Ok(())
}

/// A control record's key is (version i16, type i16); type 0 is ABORT, 1 COMMIT.
fn is_abort_marker(records: &Bytes) -> bool {
    let mut records = records.clone();
    let mut first = || -> Result<Option<Bytes>, &'static str> {
        let _length = varint_length(&mut records)?;
        if records.is_empty() {
            return Err("empty");
        }
        records.advance(1);
        varlong(&mut records)?;
        varlong(&mut records)?;
        bytes_field(&mut records)
    };
    matches!(first(), Ok(Some(key)) if key.len() >= 4 && (&key[2..4]).get_i16() == 0)
}

/// A zig-zag varlong (Kafka's varint and varlong share the encoding; a varint is at most 5
/// bytes, which the callers' range checks cover).
fn varlong(buf: &mut Bytes) -> Result<i64, &'static str> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let Some(&byte) = buf.first() else {
            return Err("varint cut short");
        };
        buf.advance(1);
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err("varint longer than 10 bytes")
}

/// A length: -1 is null, other negatives and lengths past `i32` are malformed.
fn varint_length(buf: &mut Bytes) -> Result<Option<usize>, &'static str> {
    match varlong(buf)? {
        -1 => Ok(None),
        length if (0..=i64::from(i32::MAX)).contains(&length) => Ok(Some(length as usize)),
        _ => Err("negative length"),
    }
}

fn bytes_field(buf: &mut Bytes) -> Result<Option<Bytes>, &'static str> {
    match varint_length(buf)? {
        None => Ok(None),
        Some(length) if length <= buf.len() => Ok(Some(buf.split_to(length))),
        Some(_) => Err("field longer than its record"),
    }
}

/// Builds v2 batches, for the decoder's tests and for anyone who needs bytes a broker would
/// send (the fuzz targets).
pub mod encode {
    use bytes::{BufMut, BytesMut};

    fn varlong(out: &mut BytesMut, value: i64) {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        loop {
            let byte = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                out.put_u8(byte);
                return;
            }
            out.put_u8(byte | 0x80);
        }
    }

    fn field(out: &mut BytesMut, value: Option<&[u8]>) {
        match value {
            None => varlong(out, -1),
            Some(bytes) => {
                varlong(out, bytes.len() as i64);
                out.put_slice(bytes);
            }
        }
    }

    /// One record to encode: key, value and headers.
    pub type PlainRecord<'a> = (
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        &'a [(&'a str, &'a [u8])],
    );

    /// The record section of a batch: records at offset deltas 0, 1, 2, ...
    pub fn records(records: &[PlainRecord<'_>]) -> BytesMut {
        let mut out = BytesMut::new();
        for (delta, (key, value, headers)) in records.iter().enumerate() {
            let mut body = BytesMut::new();
            body.put_i8(0);
            varlong(&mut body, delta as i64 * 10); // timestamp delta
            varlong(&mut body, delta as i64);
            field(&mut body, *key);
            field(&mut body, *value);
            varlong(&mut body, headers.len() as i64);
            for (name, value) in *headers {
                field(&mut body, Some(name.as_bytes()));
                field(&mut body, Some(value));
            }
            varlong(&mut out, body.len() as i64);
            out.put_slice(&body);
        }
        out
    }

    /// A whole batch around an (already compressed, if `attributes` says so) record section.
    pub fn batch(
        base_offset: i64,
        count: i32,
        attributes: i16,
        producer_id: i64,
        records: &[u8],
    ) -> BytesMut {
        let mut after_crc = BytesMut::new();
        after_crc.put_i16(attributes);
        after_crc.put_i32(count - 1);
        after_crc.put_i64(1_700_000_000_000);
        after_crc.put_i64(1_700_000_000_000 + i64::from(count));
        after_crc.put_i64(producer_id);
        after_crc.put_i16(0);
        after_crc.put_i32(0);
        after_crc.put_i32(count);
        after_crc.put_slice(records);
        let mut out = BytesMut::new();
        out.put_i64(base_offset);
        out.put_i32((4 + 1 + 4 + after_crc.len()) as i32);
        out.put_i32(0); // partition leader epoch
        out.put_i8(2);
        out.put_u32(crc32c::crc32c(&after_crc));
        out.put_slice(&after_crc);
        out
    }
}

/// The records of `decoded`, as (offset, value) pairs, for tests.
#[cfg(test)]
fn offsets_and_values(decoded: &Decoded) -> BTreeMap<i64, Vec<u8>> {
    decoded
        .records
        .iter()
        .map(|r| (r.offset, r.value.as_deref().unwrap_or_default().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::BytesMut;

    use super::*;

    fn topic() -> Arc<str> {
        Arc::from("t")
    }

    fn three_records() -> BytesMut {
        encode::records(&[
            (Some(b"k0"), Some(b"v0"), &[("reason", b"malformed")]),
            (None, Some(b"v1"), &[]),
            (Some(b"k2"), None, &[]),
        ])
    }

    fn decode_all(data: Bytes, from: i64) -> Result<Decoded, BatchError> {
        let mut decoded = Decoded::default();
        decode(
            &topic(),
            3,
            data,
            from,
            &mut AbortedTransactions::default(),
            &mut decoded,
        )?;
        Ok(decoded)
    }

    #[test]
    fn a_plain_batch_decodes_with_keys_values_headers_and_timestamps() {
        let data = encode::batch(100, 3, 0, -1, &three_records()).freeze();
        let decoded = decode_all(data, 100).expect("decodes");
        assert_eq!(decoded.next_offset, Some(103));
        let first = &decoded.records[0];
        assert_eq!((first.partition, first.offset), (3, 100));
        assert_eq!(first.key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(first.header("reason"), Some(&b"malformed"[..]));
        assert_eq!(first.timestamp.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(decoded.records[1].key, None);
        assert_eq!(decoded.records[2].value, None);
        assert_eq!(
            decoded.records[2].timestamp.timestamp_millis(),
            1_700_000_000_020
        );
    }

    #[test]
    fn records_before_the_position_are_dropped_but_the_position_still_advances() {
        let mut data = encode::batch(0, 3, 0, -1, &three_records());
        data.extend_from_slice(&encode::batch(3, 3, 0, -1, &three_records()));
        let decoded = decode_all(data.freeze(), 4).expect("decodes");
        assert_eq!(
            decoded.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [4, 5]
        );
        assert_eq!(decoded.next_offset, Some(6));
    }

    #[test]
    fn decoding_stops_at_a_hole_in_the_offsets_keeping_what_came_before() {
        // Offsets 3-5 are missing: a batch stored late (Nisshi) or compacted away (Kafka).
        let mut data = encode::batch(0, 3, 0, -1, &three_records());
        data.extend_from_slice(&encode::batch(6, 3, 0, -1, &three_records()));
        let decoded = decode_all(data.freeze(), 1).expect("decodes");
        assert_eq!(
            decoded.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(decoded.next_offset, Some(3));
        let gap = OffsetGap {
            missing_from: 3,
            resumes_at: 6,
        };
        assert_eq!(decoded.gap, Some(gap));
    }

    #[test]
    fn an_answer_that_starts_past_the_position_delivers_nothing() {
        let data = encode::batch(6, 3, 0, -1, &three_records()).freeze();
        let decoded = decode_all(data, 3).expect("decodes");
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.next_offset, None, "the position stays at the hole");
        let gap = OffsetGap {
            missing_from: 3,
            resumes_at: 6,
        };
        assert_eq!(decoded.gap, Some(gap));
        // Once the fetcher accepts the hole, it reads on from the batch after it.
        let data = encode::batch(6, 3, 0, -1, &three_records()).freeze();
        let decoded = decode_all(data, 6).expect("decodes");
        assert_eq!((decoded.records.len(), decoded.gap), (3, None));
    }

    #[test]
    fn a_batch_cut_short_at_the_end_is_left_for_the_next_fetch() {
        let mut data = encode::batch(0, 3, 0, -1, &three_records());
        let second = encode::batch(3, 3, 0, -1, &three_records());
        data.extend_from_slice(&second[..second.len() - 5]);
        let decoded = decode_all(data.freeze(), 0).expect("decodes");
        assert_eq!(decoded.records.len(), 3);
        assert_eq!(decoded.next_offset, Some(3));
    }

    #[test]
    fn compressed_batches_decode_for_every_codec() {
        let plain = three_records();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&plain).expect("gzip");
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz4.write_all(&plain).expect("lz4");
        for (attributes, section) in [
            (1, gzip.finish().expect("gzip")),
            (
                2,
                snap::raw::Encoder::new()
                    .compress_vec(&plain)
                    .expect("snappy"),
            ),
            (3, lz4.finish().expect("lz4")),
            (
                4,
                ruzstd::encoding::compress_to_vec(
                    &plain[..],
                    ruzstd::encoding::CompressionLevel::Fastest,
                ),
            ),
        ] {
            let data = encode::batch(10, 3, attributes, -1, &section).freeze();
            let decoded = decode_all(data, 10).expect("decodes");
            assert_eq!(
                offsets_and_values(&decoded),
                BTreeMap::from([(10, b"v0".to_vec()), (11, b"v1".to_vec()), (12, Vec::new())]),
                "codec {attributes}"
            );
        }
    }

    #[test]
    fn a_corrupt_batch_is_an_error_naming_its_offset_after_the_good_ones() {
        let mut data = encode::batch(0, 3, 0, -1, &three_records());
        let mut bad = encode::batch(3, 3, 0, -1, &three_records());
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        data.extend_from_slice(&bad);
        let mut decoded = Decoded::default();
        let error = decode(
            &topic(),
            0,
            data.freeze(),
            0,
            &mut AbortedTransactions::default(),
            &mut decoded,
        )
        .expect_err("the CRC catches the flipped byte");
        assert_eq!(error.offset, 3);
        assert!(matches!(error.reason, BatchFault::Crc { .. }));
        assert_eq!(decoded.records.len(), 3);
    }

    #[test]
    fn an_old_message_format_is_named() {
        let mut data = encode::batch(0, 3, 0, -1, &three_records());
        data[MAGIC_AT] = 1;
        let error = decode_all(data.freeze(), 0).expect_err("v1 is refused");
        assert_eq!(error.reason, BatchFault::UnsupportedMagic(1));
    }

    #[test]
    fn aborted_transactions_are_skipped_until_their_marker() {
        let producer = 42;
        let marker_key: &[u8] = &[0, 0, 0, 0]; // version 0, type ABORT
        let marker = encode::records(&[(Some(marker_key), Some(b"\0\0\0\0\0\0"), &[])]);
        let mut data = encode::batch(0, 3, TRANSACTIONAL, producer, &three_records());
        data.extend_from_slice(&encode::batch(
            3,
            1,
            TRANSACTIONAL | CONTROL,
            producer,
            &marker,
        ));
        data.extend_from_slice(&encode::batch(
            4,
            3,
            TRANSACTIONAL,
            producer,
            &three_records(),
        ));
        let mut aborted = AbortedTransactions::new(vec![(0, producer)]);
        let mut decoded = Decoded::default();
        decode(&topic(), 0, data.freeze(), 0, &mut aborted, &mut decoded).expect("decodes");
        assert_eq!(
            decoded.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [4, 5, 6]
        );
        assert_eq!(decoded.next_offset, Some(7));
    }

    #[test]
    fn forged_lengths_are_errors_not_allocations() {
        let mut records = BytesMut::new();
        records.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]); // a record of ~2 GiB
        let data = encode::batch(0, i32::MAX, 0, -1, &records).freeze();
        let error = decode_all(data, 0).expect_err("refused");
        assert!(matches!(error.reason, BatchFault::Malformed(_)));
    }
}

//! Record batches on the write side: encodes records once into Kafka's v2 batch format with any
//! of Kafka's codecs, and stamps the producer id, epoch and base sequence into the header.
//!
//! It must not decide sequences or talk to a broker. The choice a reader may question:
//! identity is stamped into already encoded bytes (14 header bytes and the CRC, which covers
//! everything after it) instead of being encoded with the records, because the sequence is
//! only known when the batch is sent and changes after an epoch bump, while the records —
//! possibly compressed — are encoded once, off the accumulator's task.
//!
//! Codecs: gzip and snappy are kafka-protocol's (its snappy is xerial-framed, as the Java client
//! writes it; librdkafka writes raw snappy and reads both); lz4 is the LZ4 *frame* format
//! (`lz4_flex`), zstd a standard frame (`ruzstd`, whose output libzstd reads): pure Rust, so the
//! static musl builds need no C toolchain.

use std::io::Write;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{self, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::{Compression, OutgoingRecord};

/// Header field offsets of a v2 record batch (Kafka's `DefaultRecordBatch`).
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const HEADER_BYTES: usize = 61;

/// Who wrote a batch, for the broker's duplicate and ordering checks (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

/// Encodes records into one record batch without a producer identity (stamp it later).
pub fn encode(records: Vec<OutgoingRecord>, compression: Compression) -> Result<BytesMut, String> {
    let size = records.iter().map(super::budget::encoded_size).sum();
    encode_sized(records, compression, size)
}

/// As [`encode`], given the records' encoded size: the buffer is allocated once at the size
/// the batch will have (a later record's deltas can take a few bytes more), so the batch held
/// until it is acknowledged is not a doubling buffer's worth larger than its bytes.
pub fn encode_sized(
    records: Vec<OutgoingRecord>,
    compression: Compression,
    records_size: usize,
) -> Result<BytesMut, String> {
    let delta_slack = records.len() * 4;
    let encoded: Vec<records::Record> = records
        .into_iter()
        .enumerate()
        .map(|(index, record)| records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: records::NO_PARTITION_LEADER_EPOCH,
            producer_id: records::NO_PRODUCER_ID,
            producer_epoch: records::NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // The encoder starts a new batch whenever offset − sequence changes; keeping it
            // constant yields one batch per request, which brokers require. The real base
            // sequence is stamped when the batch is sent.
            sequence: index as i32,
            timestamp: record.timestamp.timestamp_millis(),
            key: record.key.map(Bytes::from),
            value: Some(Bytes::from(record.value)),
            headers: record
                .headers
                .into_iter()
                .map(|(name, value)| {
                    let name = match name {
                        std::borrow::Cow::Borrowed(name) => StrBytes::from_static_str(name),
                        std::borrow::Cow::Owned(name) => StrBytes::from_string(name),
                    };
                    (name, Some(value))
                })
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let options = RecordEncodeOptions {
        version: 2,
        compression: match compression {
            Compression::None => records::Compression::None,
            Compression::Gzip => records::Compression::Gzip,
            Compression::Snappy => records::Compression::Snappy,
            Compression::Lz4 => records::Compression::Lz4,
            Compression::Zstd => records::Compression::Zstd,
        },
    };
    let capacity = match compression {
        Compression::None => HEADER_BYTES + records_size + delta_slack,
        // Compressed output is smaller; start at a quarter and let it grow if needed.
        _ => HEADER_BYTES + (records_size + delta_slack) / 4,
    };
    let mut buffer = BytesMut::with_capacity(capacity);
    let result = match compression {
        Compression::None | Compression::Gzip | Compression::Snappy => {
            RecordBatchEncoder::encode(&mut buffer, &encoded, &options)
        }
        Compression::Lz4 | Compression::Zstd => RecordBatchEncoder::encode_with_custom_compression(
            &mut buffer,
            &encoded,
            &options,
            Some(|plain: &mut BytesMut, out: &mut BytesMut, _| {
                match compression {
                    Compression::Lz4 => {
                        // What Java's KafkaLZ4BlockOutputStream writes: 64 KiB independent
                        // blocks, no checksums, no content size.
                        let frame = lz4_flex::frame::FrameInfo::new()
                            .block_size(lz4_flex::frame::BlockSize::Max64KB)
                            .block_mode(lz4_flex::frame::BlockMode::Independent);
                        let mut encoder =
                            lz4_flex::frame::FrameEncoder::with_frame_info(frame, Vec::new());
                        encoder.write_all(plain)?;
                        out.extend_from_slice(&encoder.finish()?);
                    }
                    _ => {
                        let compressed = ruzstd::encoding::compress_to_vec(
                            &plain[..],
                            ruzstd::encoding::CompressionLevel::Fastest,
                        );
                        out.extend_from_slice(&compressed);
                    }
                }
                Ok(())
            }),
        ),
    };
    result.map_err(|e| e.to_string())?;
    if buffer.len() < HEADER_BYTES {
        return Err(format!(
            "the encoder wrote {} bytes, less than a batch header",
            buffer.len()
        ));
    }
    Ok(buffer)
}

/// Writes the producer identity and base sequence into an encoded batch and recomputes its
/// CRC. `None` writes the "no producer" values a non-idempotent producer sends.
pub fn stamp(batch: &mut BytesMut, identity: Option<ProducerIdentity>, base_sequence: i32) {
    let (id, epoch, sequence) = match identity {
        Some(identity) => (identity.id, identity.epoch, base_sequence),
        None => (
            records::NO_PRODUCER_ID,
            records::NO_PRODUCER_EPOCH,
            records::NO_SEQUENCE,
        ),
    };
    if batch.len() < HEADER_BYTES {
        return;
    }
    batch[PRODUCER_ID_OFFSET..PRODUCER_EPOCH_OFFSET].copy_from_slice(&id.to_be_bytes());
    batch[PRODUCER_EPOCH_OFFSET..BASE_SEQUENCE_OFFSET].copy_from_slice(&epoch.to_be_bytes());
    batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::io::Read;

    use chrono::{TimeZone, Utc};
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;

    fn orders(count: usize) -> Vec<OutgoingRecord> {
        (0..count)
            .map(|i| OutgoingRecord {
                key: Some(format!("order-{i}").into_bytes()),
                value: format!("{{\"order_id\":\"order-{i}\",\"quantity\":{}}}", i % 7)
                    .into_bytes(),
                headers: vec![(Cow::Borrowed("source"), Bytes::from_static(b"test"))],
                timestamp: Utc
                    .timestamp_millis_opt(1_700_000_000_000 + i as i64)
                    .unwrap(),
                partition: None,
            })
            .collect()
    }

    /// Decodes a batch as a consumer would: kafka-protocol's own codecs for gzip and snappy,
    /// the same pure-Rust crates the write side uses for lz4 and zstd.
    fn decode(mut batch: Bytes) -> Result<records::RecordSet, String> {
        let decompress = |compressed: &mut Bytes, codec| {
            let mut plain = Vec::new();
            match codec {
                records::Compression::Lz4 => {
                    lz4_flex::frame::FrameDecoder::new(&compressed[..]).read_to_end(&mut plain)?;
                }
                _ => {
                    ruzstd::decoding::StreamingDecoder::new(&compressed[..])
                        .map_err(std::io::Error::other)?
                        .read_to_end(&mut plain)?;
                }
            }
            Ok(Bytes::from(plain))
        };
        let codec = batch
            .get(ATTRIBUTES_OFFSET + 1)
            .map_or(0, |attributes| attributes & 7);
        let decoded = if codec == 3 || codec == 4 {
            RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompress))
        } else {
            RecordBatchDecoder::decode(&mut batch)
        };
        decoded.map_err(|e| e.to_string())
    }

    #[test]
    fn every_codec_round_trips_through_the_batch_decoder() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let encoded = encode(orders(500), compression).expect("encodes").freeze();
            let set = decode(encoded).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
            assert_eq!(set.records.len(), 500, "{compression:?}");
            assert_eq!(
                set.records[499].value.as_deref(),
                Some(&b"{\"order_id\":\"order-499\",\"quantity\":2}"[..]),
                "{compression:?}"
            );
        }
    }

    #[test]
    fn stamping_sets_identity_and_sequence_and_keeps_the_crc_valid() {
        let mut encoded = encode(orders(10), Compression::Lz4).expect("encodes");
        stamp(
            &mut encoded,
            Some(ProducerIdentity { id: 4711, epoch: 3 }),
            100,
        );
        let set = decode(encoded.freeze()).expect("the CRC still matches");
        let first = &set.records[0];
        assert_eq!((first.producer_id, first.producer_epoch), (4711, 3));
        assert_eq!(first.sequence, 100);
        assert_eq!(set.records[9].sequence, 109);
    }
}

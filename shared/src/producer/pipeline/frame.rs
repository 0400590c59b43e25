//! The Produce request frame, built around record batches it shares rather than copies: the
//! request's own fields come from kafka-protocol's encoder, the batches are placed between them.
//! It must not touch the socket. The choice a reader may question: rather than hand-encode the
//! fields, the request is encoded with empty records and the fixed-size partition slots at its
//! end are checked against what we expect and rewritten, so a change in the encoder fails loudly
//! instead of writing a frame the broker misreads.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

/// What a Produce frame is addressed to.
pub(super) struct ProduceTarget<'a> {
    pub(super) version: i16,
    pub(super) topic: &'a StrBytes,
    pub(super) client_id: &'a StrBytes,
    pub(super) request_timeout: Duration,
}

/// The Produce frame for these batches as pieces, without copying a batch: the request is
/// encoded with every partition's records empty — so each partition ends the frame with a
/// fixed-size slot (v3-v8: its index and an i32 length 0; v9: its index, a compact length,
/// an empty tag buffer; then the topic's and the request's empty tag buffers) — and the slots
/// are written again around the real batches.
pub(super) fn produce_frame(
    target: &ProduceTarget<'_>,
    correlation_id: i32,
    batches: Vec<(i32, Bytes)>,
) -> Result<Vec<Bytes>, String> {
    if batches.is_empty() {
        return Err("a Produce request without batches".into());
    }
    let request = ProduceRequest::default()
        .with_acks(-1)
        // Java sends request.timeout.ms as the broker's replication wait too.
        .with_timeout_ms(i32::try_from(target.request_timeout.as_millis()).unwrap_or(i32::MAX))
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(target.topic.clone()))
                .with_partition_data(
                    batches
                        .iter()
                        .map(|(partition, _)| {
                            PartitionProduceData::default()
                                .with_index(*partition)
                                .with_records(Some(Bytes::new()))
                        })
                        .collect(),
                ),
        ]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(target.version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(target.client_id.clone()));
    let mut glue = BytesMut::with_capacity(256 + batches.len() * 16);
    glue.put_i32(0);
    header
        .encode(&mut glue, ProduceRequest::header_version(target.version))
        .map_err(|e| format!("encoding the Produce header: {e}"))?;
    request
        .encode(&mut glue, target.version)
        .map_err(|e| format!("encoding Produce v{}: {e}", target.version))?;
    let flexible = target.version >= 9;
    // An empty partition slot after its index, and what follows the last slot.
    let (empty, trailer): (&[u8], &[u8]) = if flexible {
        (&[1, 0], &[0, 0])
    } else {
        (&[0, 0, 0, 0], &[])
    };
    let slots = batches.len() * (4 + empty.len()) + trailer.len();
    let encoded_slots = glue
        .len()
        .checked_sub(slots)
        .map(|start| glue.split_off(start))
        .ok_or_else(|| format!("Produce v{} is shorter than its partitions", target.version))?;
    let expected: Vec<u8> = batches
        .iter()
        .flat_map(|(partition, _)| {
            partition
                .to_be_bytes()
                .into_iter()
                .chain(empty.iter().copied())
        })
        .chain(trailer.iter().copied())
        .collect();
    if encoded_slots[..] != expected[..] {
        return Err(format!(
            "Produce v{} did not end with its partitions' empty records",
            target.version
        ));
    }
    let mut total = 0;
    let mut pieces = Vec::with_capacity(batches.len() * 2 + 1);
    for (position, (partition, batch)) in batches.into_iter().enumerate() {
        if flexible && position > 0 {
            // The previous partition's empty tag buffer.
            glue.put_u8(0);
        }
        glue.put_i32(partition);
        if flexible {
            put_unsigned_varint(&mut glue, batch.len() as u64 + 1);
        } else {
            glue.put_i32(i32::try_from(batch.len()).map_err(|_| "batch larger than 2 GiB")?);
        }
        total += glue.len() + batch.len();
        pieces.push(glue.split().freeze());
        pieces.push(batch);
    }
    if flexible {
        // The last partition's, the topic's and the request's empty tag buffers.
        glue.put_slice(&[0, 0, 0]);
        total += glue.len();
        pieces.push(glue.split().freeze());
    }
    let length = i32::try_from(total - 4).map_err(|_| "request larger than 2 GiB")?;
    let mut head = BytesMut::from(&pieces[0][..]);
    head[..4].copy_from_slice(&length.to_be_bytes());
    pieces[0] = head.freeze();
    Ok(pieces)
}

fn put_unsigned_varint(buffer: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buffer.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "orders";
    const CLIENT_ID: &str = "producer-order";

    /// What kafka-protocol's encoder writes for the whole request, batches inside.
    fn encoder_frame(version: i16, batches: &[(i32, Bytes)]) -> Vec<u8> {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partition_data(
                        batches
                            .iter()
                            .map(|(partition, batch)| {
                                PartitionProduceData::default()
                                    .with_index(*partition)
                                    .with_records(Some(batch.clone()))
                            })
                            .collect(),
                    ),
            ]);
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(version)
            .with_correlation_id(17)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut whole = BytesMut::new();
        whole.put_i32(0);
        header
            .encode(&mut whole, ProduceRequest::header_version(version))
            .expect("header");
        request.encode(&mut whole, version).expect("request");
        let length = (whole.len() - 4) as i32;
        whole[..4].copy_from_slice(&length.to_be_bytes());
        whole.to_vec()
    }

    fn spliced(version: i16, batches: &[(i32, Bytes)]) -> Vec<u8> {
        let (topic, client_id) = (
            StrBytes::from_static_str(TOPIC),
            StrBytes::from_static_str(CLIENT_ID),
        );
        let target = ProduceTarget {
            version,
            topic: &topic,
            client_id: &client_id,
            request_timeout: Duration::from_secs(30),
        };
        let pieces = produce_frame(&target, 17, batches.to_vec()).expect("frames");
        pieces.concat()
    }

    #[test]
    fn the_spliced_frame_is_the_frame_the_encoder_writes_with_the_batch_inside() {
        let batches = [(4, Bytes::from(vec![7u8; 300]))];
        for version in 3..=9 {
            assert_eq!(
                spliced(version, &batches),
                encoder_frame(version, &batches),
                "Produce v{version}"
            );
        }
    }

    #[test]
    fn a_multi_partition_frame_is_the_frame_the_encoder_writes_with_every_batch_inside() {
        // Sizes on both sides of the one- and two-byte compact lengths (v9), partitions out of
        // order as a rotating drain sends them.
        let batches: Vec<(i32, Bytes)> = [(11, 300), (0, 126), (383, 127), (5, 20_000), (7, 1)]
            .into_iter()
            .map(|(partition, size)| (partition, Bytes::from(vec![partition as u8; size])))
            .collect();
        for version in [3, 7, 8, 9] {
            assert_eq!(
                spliced(version, &batches),
                encoder_frame(version, &batches),
                "Produce v{version}"
            );
        }
    }

    #[test]
    fn the_batches_are_shared_into_the_frame_not_copied() {
        let batch = Bytes::from(vec![1u8; 4096]);
        let (topic, client_id) = (
            StrBytes::from_static_str("t"),
            StrBytes::from_static_str("c"),
        );
        let target = ProduceTarget {
            version: 9,
            topic: &topic,
            client_id: &client_id,
            request_timeout: Duration::from_secs(30),
        };
        let pieces = produce_frame(&target, 1, vec![(0, batch.clone()), (1, batch.clone())])
            .expect("frames");
        let shared = pieces
            .iter()
            .filter(|piece| piece.as_ptr() == batch.as_ptr())
            .count();
        assert_eq!(shared, 2);
    }
}

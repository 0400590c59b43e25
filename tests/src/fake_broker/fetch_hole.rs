//! Fetch-answer surgery for the hostile front: a real FetchResponse with one record batch cut
//! out of a partition's `records`, so the client sees a hole in the offsets below the high
//! watermark. It must not change anything else in the answer, and never decodes a batch:
//! batches are found by their header alone (base offset i64, batch length i32), so the cut
//! shares no code with the decoder under test. The choice a reader may question: the whole
//! response is decoded and re-encoded with `kafka-protocol` rather than spliced in place, since
//! the cut changes the length prefix of `records` (a varint in flexible versions).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{FetchResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

/// Base offset and batch length, the part of a batch header every batch has.
const LOG_OVERHEAD: usize = 12;
/// Where a v2 batch says its last offset delta (after length, leader epoch, magic, CRC and
/// attributes).
const LAST_OFFSET_DELTA_AT: usize = 23;

/// Which batch to cut.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cut {
    /// The first batch of the first partition whose records hold two whole batches or more.
    FirstOfTwo,
    /// The batch with this base offset, in every partition that holds it (whole or partial).
    BaseOffset(i64),
}

/// A batch the front cut out of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedBatch {
    pub topic: String,
    pub partition: i32,
    pub base_offset: i64,
    /// The batch's last offset, when the answer held enough of its header to say.
    pub last_offset: Option<i64>,
}

/// A batch's place in a partition's `records`.
struct Span {
    base_offset: i64,
    last_offset: Option<i64>,
    start: usize,
    /// Past the batch's end, or past `records` for a batch cut short at the byte limit.
    end: usize,
    whole: bool,
}

/// The batches in `records`, in order, as far as their headers can be read.
fn spans(records: &[u8]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(header) = records.get(at..at + LOG_OVERHEAD) {
        let base_offset = i64::from_be_bytes(header[..8].try_into().unwrap_or_default());
        let length = i32::from_be_bytes(header[8..].try_into().unwrap_or_default());
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let last_offset = records
            .get(at + LAST_OFFSET_DELTA_AT..at + LAST_OFFSET_DELTA_AT + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b| base_offset + i64::from(i32::from_be_bytes(b)));
        let end = at + LOG_OVERHEAD + length;
        spans.push(Span {
            base_offset,
            last_offset,
            start: at,
            end: end.min(records.len()),
            whole: end <= records.len(),
        });
        at = end;
    }
    spans
}

/// `body` (a FetchResponse at `version`, header included, no length prefix) with the batch
/// `cut` names removed, and what was removed; `None` if it holds no such batch (or does not
/// decode), so the caller forwards the real answer.
pub(super) fn remove_batch(
    body: &[u8],
    version: i16,
    cut: Cut,
) -> Option<(Vec<u8>, Vec<RemovedBatch>)> {
    let header_version = FetchResponse::header_version(version);
    let mut buf = Bytes::copy_from_slice(body);
    let header = ResponseHeader::decode(&mut buf, header_version).ok()?;
    let mut response = FetchResponse::decode(&mut buf, version).ok()?;
    let mut removed = Vec::new();
    'topics: for topic in &mut response.responses {
        for data in &mut topic.partitions {
            let Some(records) = data.records.as_ref() else {
                continue;
            };
            let spans = spans(records);
            let doomed: Vec<&Span> = match cut {
                Cut::FirstOfTwo if spans.iter().filter(|s| s.whole).count() >= 2 => {
                    spans.iter().take(1).collect()
                }
                Cut::FirstOfTwo => continue,
                Cut::BaseOffset(base_offset) => spans
                    .iter()
                    .filter(|s| s.base_offset == base_offset)
                    .collect(),
            };
            if doomed.is_empty() {
                continue;
            }
            let mut kept = BytesMut::with_capacity(records.len());
            let mut from = 0;
            for span in &doomed {
                kept.extend_from_slice(&records[from..span.start]);
                from = span.end;
                removed.push(RemovedBatch {
                    topic: topic.topic.0.as_str().to_owned(),
                    partition: data.partition_index,
                    base_offset: span.base_offset,
                    last_offset: span.last_offset,
                });
            }
            kept.extend_from_slice(&records[from..]);
            data.records = Some(kept.freeze());
            if matches!(cut, Cut::FirstOfTwo) {
                break 'topics;
            }
        }
    }
    if removed.is_empty() {
        return None;
    }
    let mut out = BytesMut::new();
    header.encode(&mut out, header_version).ok()?;
    response.encode(&mut out, version).ok()?;
    Some((out.to_vec(), removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::protocol::StrBytes;

    /// A fake batch: the header fields the surgery reads, then filler up to `length`.
    fn batch(base_offset: i64, last_delta: i32) -> Vec<u8> {
        let mut batch = base_offset.to_be_bytes().to_vec();
        let length: i32 = 49 + 10;
        batch.extend_from_slice(&length.to_be_bytes());
        batch.resize(LAST_OFFSET_DELTA_AT, 0);
        batch.extend_from_slice(&last_delta.to_be_bytes());
        batch.resize(LOG_OVERHEAD + length as usize, 0xab);
        batch
    }

    fn answer(version: i16, partitions: Vec<Vec<u8>>) -> Vec<u8> {
        let response = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(
                    partitions
                        .into_iter()
                        .enumerate()
                        .map(|(i, records)| {
                            PartitionData::default()
                                .with_partition_index(i as i32)
                                .with_high_watermark(100)
                                .with_records(Some(Bytes::from(records)))
                        })
                        .collect(),
                ),
        ]);
        let mut out = BytesMut::new();
        let header_version = FetchResponse::header_version(version);
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut out, header_version)
            .expect("header encodes");
        response.encode(&mut out, version).expect("encodes");
        out.to_vec()
    }

    fn records_of(body: &[u8], version: i16) -> Vec<Bytes> {
        let mut buf = Bytes::copy_from_slice(body);
        let header = ResponseHeader::decode(&mut buf, FetchResponse::header_version(version))
            .expect("header decodes");
        assert_eq!(header.correlation_id, 7);
        let response = FetchResponse::decode(&mut buf, version).expect("decodes");
        response.responses[0]
            .partitions
            .iter()
            .map(|p| p.records.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn the_first_batch_of_the_first_partition_with_two_is_cut() {
        for version in [4, 11, 12] {
            let lone = batch(0, 0);
            let pair = [batch(10, 1), batch(12, 0)].concat();
            let body = answer(version, vec![lone.clone(), pair]);
            let (altered, removed) =
                remove_batch(&body, version, Cut::FirstOfTwo).expect("a partition has two");
            assert_eq!(records_of(&altered, version), [lone, batch(12, 0)]);
            assert_eq!(
                removed,
                [RemovedBatch {
                    topic: "t".into(),
                    partition: 1,
                    base_offset: 10,
                    last_offset: Some(11),
                }]
            );
        }
    }

    #[test]
    fn an_answer_without_two_batches_in_a_partition_is_left_alone() {
        let mut short = [batch(0, 0), batch(1, 0)].concat();
        short.truncate(short.len() - 5); // the second cut short at the byte limit
        let body = answer(12, vec![batch(5, 0), short, Vec::new()]);
        assert!(remove_batch(&body, 12, Cut::FirstOfTwo).is_none());
    }

    #[test]
    fn a_base_offset_is_cut_wherever_it_is_whole_or_partial() {
        let mut partial = [batch(4, 0), batch(5, 0)].concat();
        partial.truncate(partial.len() - 5);
        let body = answer(
            12,
            vec![[batch(4, 0), batch(5, 0), batch(6, 0)].concat(), partial],
        );
        let (altered, removed) = remove_batch(&body, 12, Cut::BaseOffset(5)).expect("cut");
        let expected = [batch(4, 0), batch(6, 0)].concat();
        assert_eq!(records_of(&altered, 12), [expected, batch(4, 0)]);
        assert_eq!(removed.len(), 2);
        assert!(remove_batch(&body, 12, Cut::BaseOffset(9)).is_none());
    }
}

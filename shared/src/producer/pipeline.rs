//! One partition's connection to its leader, with several Produce requests in flight: requests
//! are written in order and answers matched to them in order, as Kafka answers one connection.
//!
//! It owns the socket and nothing else: no retries, no error codes (the accumulator classifies
//! those). The choice a reader may question: a lost or late answer is not survivable on the
//! connection (every later answer would be read as the wrong one's), so any failure — a
//! time-out, a wrong correlation id, a broken socket — closes it and fails every request still
//! on it; the accumulator then resends those in sequence order on a new connection.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::connect;
use crate::settings::ConnectionSettings;
use crate::wire::{self, Stream};

/// The answer to one request: the partition's error code and base offset, or why there is none.
pub type Answer = Result<(i16, i64, Option<String>), String>;

/// A request handed to the connection's task: the frame up to the records, the record batch
/// itself (shared, not copied), and the bytes after it.
struct Outgoing {
    head: BytesMut,
    batch: Bytes,
    tail: &'static [u8],
    correlation_id: i32,
    reply: oneshot::Sender<Result<Bytes, String>>,
}

/// The open connection; dropping it closes the socket and fails what is in flight.
#[derive(Debug)]
pub struct Pipeline {
    address: String,
    topic: StrBytes,
    partition: i32,
    client_id: StrBytes,
    version: i16,
    request_timeout: Duration,
    next_correlation_id: i32,
    requests: mpsc::UnboundedSender<Outgoing>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pipeline {
    /// Connects to `leader` (authenticating as the settings say) and negotiates Produce v3+.
    pub async fn open(
        settings: &ConnectionSettings,
        leader: &str,
        topic: &str,
        partition: i32,
        request_timeout: Duration,
    ) -> Result<Self, String> {
        let mut target = settings.clone();
        target.bootstrap_servers = vec![leader.to_owned()];
        let connection = connect::broker_connection(&target, request_timeout)
            .await
            .map_err(|e| e.to_string())?;
        // v3 is the first with record batches and producer ids; v9 is the highest we encode.
        let version = connection
            .negotiate::<ProduceRequest>(3..=9)
            .map_err(|e| e.to_string())?;
        let address = connection.address().to_owned();
        let (stream, next_correlation_id) = connection.into_stream();
        let (requests, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(stream, queue, address.clone()));
        Ok(Self {
            address,
            topic: StrBytes::from_string(topic.to_owned()),
            partition,
            client_id: StrBytes::from_string(settings.client_id.clone()),
            version,
            request_timeout,
            next_correlation_id,
            requests,
            task,
        })
    }

    /// Queues one encoded batch; the returned future resolves to the broker's answer, or an
    /// error after the request time-out or when the connection fails.
    pub fn send(&mut self, batch: Bytes) -> impl Future<Output = Answer> + Send + 'static {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let (reply, answer) = oneshot::channel();
        let frame = self.frame(correlation_id, batch.len());
        let queued = match frame {
            Ok((head, tail)) => self
                .requests
                .send(Outgoing {
                    head,
                    batch,
                    tail,
                    correlation_id,
                    reply,
                })
                .map_err(|_| format!("the connection to {} is closed", self.address)),
            Err(e) => Err(e),
        };
        let (version, partition, timeout, address) = (
            self.version,
            self.partition,
            self.request_timeout,
            self.address.clone(),
        );
        async move {
            queued?;
            let body = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(body)) => body?,
                Ok(Err(_)) => return Err(format!("the connection to {address} closed")),
                Err(_) => return Err(format!("no answer from {address} within {timeout:?}")),
            };
            decode(body, version, partition)
        }
    }

    /// The Produce frame around a batch of `batch_len` bytes, without copying the batch: the
    /// request is encoded with empty records, whose length field ends the frame in every
    /// version we send (v3-v8: an i32; v9: a compact length, then three empty tag buffers), and
    /// that field is rewritten for the real batch.
    fn frame(
        &self,
        correlation_id: i32,
        batch_len: usize,
    ) -> Result<(BytesMut, &'static [u8]), String> {
        produce_frame(
            &ProduceTarget {
                version: self.version,
                topic: &self.topic,
                partition: self.partition,
                client_id: &self.client_id,
                request_timeout: self.request_timeout,
            },
            correlation_id,
            batch_len,
        )
    }
}

/// What a Produce frame is addressed to.
struct ProduceTarget<'a> {
    version: i16,
    topic: &'a StrBytes,
    partition: i32,
    client_id: &'a StrBytes,
    request_timeout: Duration,
}

fn produce_frame(
    target: &ProduceTarget<'_>,
    correlation_id: i32,
    batch_len: usize,
) -> Result<(BytesMut, &'static [u8]), String> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        // Java sends request.timeout.ms as the broker's replication wait too.
        .with_timeout_ms(i32::try_from(target.request_timeout.as_millis()).unwrap_or(i32::MAX))
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(target.topic.clone()))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(target.partition)
                        .with_records(Some(Bytes::new())),
                ]),
        ]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(target.version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(target.client_id.clone()));
    let mut head = BytesMut::with_capacity(256);
    head.put_i32(0);
    header
        .encode(&mut head, ProduceRequest::header_version(target.version))
        .map_err(|e| format!("encoding the Produce header: {e}"))?;
    request
        .encode(&mut head, target.version)
        .map_err(|e| format!("encoding Produce v{}: {e}", target.version))?;
    let flexible = target.version >= 9;
    let (empty, tail): (&[u8], &'static [u8]) = if flexible {
        (&[1, 0, 0, 0], &[0, 0, 0])
    } else {
        (&[0, 0, 0, 0], &[])
    };
    if !head.ends_with(empty) {
        return Err(format!(
            "Produce v{} did not end with empty records",
            target.version
        ));
    }
    head.truncate(head.len() - empty.len());
    if flexible {
        put_unsigned_varint(&mut head, batch_len as u64 + 1);
    } else {
        head.put_i32(i32::try_from(batch_len).map_err(|_| "batch larger than 2 GiB")?);
    }
    let length = i32::try_from(head.len() - 4 + batch_len + tail.len())
        .map_err(|_| "request larger than 2 GiB")?;
    head[..4].copy_from_slice(&length.to_be_bytes());
    Ok((head, tail))
}

fn put_unsigned_varint(buffer: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buffer.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

fn decode(body: Bytes, version: i16, partition: i32) -> Answer {
    let header_version = ProduceResponse::header_version(version);
    let response: ProduceResponse =
        wire::decode_response(ApiKey::Produce, version, header_version, body)
            .map_err(|e| format!("decoding Produce v{version}: {e}"))?;
    let answer = response
        .responses
        .iter()
        .flat_map(|topic| topic.partition_responses.iter())
        .find(|p| p.index == partition)
        .ok_or("the Produce response did not mention our partition")?;
    Ok((
        answer.error_code,
        answer.base_offset,
        answer.error_message.as_ref().map(|m| m.to_string()),
    ))
}

/// Writes requests in order and hands each answer to the request sent first; ends at the first
/// failure, which drops every waiting reply (their senders see the connection closed).
async fn run(
    stream: Box<dyn Stream>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    address: String,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (waiting_tx, mut waiting_rx) =
        mpsc::unbounded_channel::<(i32, oneshot::Sender<Result<Bytes, String>>)>();
    let write = async move {
        while let Some(outgoing) = queue.recv().await {
            if waiting_tx
                .send((outgoing.correlation_id, outgoing.reply))
                .is_err()
            {
                return;
            }
            let written = async {
                writer.write_all(&outgoing.head).await?;
                writer.write_all(&outgoing.batch).await?;
                writer.write_all(outgoing.tail).await?;
                writer.flush().await
            };
            if written.await.is_err() {
                return;
            }
        }
    };
    let read = async move {
        loop {
            let frame = match read_frame(&mut reader).await {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::debug!(%address, error = %e, "produce connection closed");
                    return;
                }
            };
            // Requests are queued here before they are written, so an answer always finds one.
            let Some((expected, reply)) = waiting_rx.recv().await else {
                return;
            };
            let got = frame.clone().get_i32();
            if got != expected {
                let _ = reply.send(Err(format!(
                    "{address} answered correlation id {got} to request {expected}"
                )));
                return;
            }
            let _ = reply.send(Ok(frame));
        }
    };
    tokio::select! {
        () = write => {}
        () = read => {}
    }
}

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> Result<Bytes, String> {
    wire::read_frame(reader).await.map_err(|e| e.to_string())
}

/// Looks the partition's leader up through a bootstrap broker.
pub async fn find_leader(
    settings: &ConnectionSettings,
    topic: &str,
    partition: i32,
    request_timeout: Duration,
) -> Result<String, String> {
    let mut bootstrap = connect::broker_connection(settings, request_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let leaders = crate::admin::partition_leaders(&mut bootstrap, topic)
        .await
        .map_err(|e| e.to_string())?;
    leaders
        .get(partition as usize)
        .cloned()
        .ok_or_else(|| format!("{topic} has no partition {partition}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spliced_frame_is_the_frame_the_encoder_writes_with_the_batch_inside() {
        let batch = Bytes::from(vec![7u8; 300]);
        let topic = StrBytes::from_static_str("orders");
        let client_id = StrBytes::from_static_str("producer-order");
        for version in 3..=9 {
            let target = ProduceTarget {
                version,
                topic: &topic,
                partition: 4,
                client_id: &client_id,
                request_timeout: Duration::from_secs(30),
            };
            let (head, tail) = produce_frame(&target, 17, batch.len()).expect("frames");
            let spliced = [&head[..], &batch[..], tail].concat();

            let request = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(TopicName(topic.clone()))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(4)
                                .with_records(Some(batch.clone())),
                        ]),
                ]);
            let header = RequestHeader::default()
                .with_request_api_key(ApiKey::Produce as i16)
                .with_request_api_version(version)
                .with_correlation_id(17)
                .with_client_id(Some(client_id.clone()));
            let mut whole = BytesMut::new();
            whole.put_i32(0);
            header
                .encode(&mut whole, ProduceRequest::header_version(version))
                .expect("header");
            request.encode(&mut whole, version).expect("request");
            let length = (whole.len() - 4) as i32;
            whole[..4].copy_from_slice(&length.to_be_bytes());
            assert_eq!(spliced, whole.to_vec(), "Produce v{version}");
        }
    }
}

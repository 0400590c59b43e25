//! One connection to one broker, carrying Produce requests for every partition of the topic it
//! leads (a batch of each per request), several in flight, answered in order as Kafka answers a
//! connection. It owns the socket and nothing else: no retries, no error codes. The choice a
//! reader may question: a lost or late answer is not survivable on the connection (every later
//! answer would be read as the wrong one's), so any failure closes it and fails every request
//! still on it; the accumulator resends those in sequence order on a new connection.

mod frame;

use std::collections::HashMap;
use std::io::IoSlice;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::{HeaderVersion, StrBytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::connect;
use crate::settings::ConnectionSettings;
use crate::wire::{self, Stream};
use frame::{ProduceTarget, produce_frame};

/// One partition's answer: its error code, base offset and error message, or why there is none.
pub type Answer = Result<(i16, i64, Option<String>), String>;

/// A request handed to the connection's task: the frame as pieces written back to back — the
/// small parts encoded here, each record batch shared, not copied.
struct Outgoing {
    pieces: Vec<Bytes>,
    correlation_id: i32,
    reply: oneshot::Sender<Result<Bytes, String>>,
}

/// The open connection; dropping it closes the socket and fails what is in flight.
#[derive(Debug)]
pub struct Pipeline {
    address: String,
    topic: StrBytes,
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
    /// Connects to `broker` (authenticating as the settings say) and negotiates Produce v3+.
    pub async fn open(
        settings: &ConnectionSettings,
        broker: &str,
        topic: &str,
        request_timeout: Duration,
    ) -> Result<Self, String> {
        let mut target = settings.clone();
        target.bootstrap_servers = vec![broker.to_owned()];
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
            client_id: StrBytes::from_string(settings.client_id.clone()),
            version,
            request_timeout,
            next_correlation_id,
            requests,
            task,
        })
    }

    /// Queues one request with an encoded batch for each partition listed (each partition at
    /// most once); the returned future resolves to one answer per partition, in the order
    /// given — all the same error after the request time-out or when the connection fails.
    pub fn send(
        &mut self,
        batches: Vec<(i32, Bytes)>,
    ) -> impl Future<Output = Vec<Answer>> + Send + 'static {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let partitions: Vec<i32> = batches.iter().map(|(partition, _)| *partition).collect();
        let (reply, answer) = oneshot::channel();
        let target = ProduceTarget {
            version: self.version,
            topic: &self.topic,
            client_id: &self.client_id,
            request_timeout: self.request_timeout,
        };
        let queued = produce_frame(&target, correlation_id, batches).and_then(|pieces| {
            self.requests
                .send(Outgoing {
                    pieces,
                    correlation_id,
                    reply,
                })
                .map_err(|_| format!("the connection to {} is closed", self.address))
        });
        let (version, timeout, address) =
            (self.version, self.request_timeout, self.address.clone());
        async move {
            let answered = async {
                queued?;
                let body = match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(body)) => body?,
                    Ok(Err(_)) => return Err(format!("the connection to {address} closed")),
                    Err(_) => return Err(format!("no answer from {address} within {timeout:?}")),
                };
                decode(body, version, &partitions)
            };
            match answered.await {
                Ok(answers) => answers,
                Err(reason) => vec![Err(reason); partitions.len()],
            }
        }
    }
}

/// Each requested partition's answer, in request order; one the broker left out is an error.
fn decode(body: Bytes, version: i16, partitions: &[i32]) -> Result<Vec<Answer>, String> {
    let header_version = ProduceResponse::header_version(version);
    let response: ProduceResponse =
        wire::decode_response(ApiKey::Produce, version, header_version, body)
            .map_err(|e| format!("decoding Produce v{version}: {e}"))?;
    let mut answered: HashMap<i32, _> = response
        .responses
        .into_iter()
        .flat_map(|topic| topic.partition_responses)
        .map(|p| (p.index, p))
        .collect();
    Ok(partitions
        .iter()
        .map(|partition| {
            answered
                .remove(partition)
                .map(|p| {
                    let message = p.error_message.map(|m| m.to_string());
                    (p.error_code, p.base_offset, message)
                })
                .ok_or_else(|| {
                    format!("the Produce response did not mention partition {partition}")
                })
        })
        .collect())
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
                write_pieces(&mut writer, &outgoing.pieces).await?;
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

/// Slices handed to one vectored write (Linux takes up to 1024).
const MAX_SLICES_PER_WRITE: usize = 256;

/// Writes the pieces back to back with vectored writes: a request for hundreds of partitions
/// takes a few system calls, not one per batch.
async fn write_pieces<W: AsyncWrite + Unpin>(
    writer: &mut W,
    pieces: &[Bytes],
) -> std::io::Result<()> {
    let (mut index, mut offset) = (0, 0);
    loop {
        while pieces.get(index).is_some_and(|piece| piece.len() == offset) {
            (index, offset) = (index + 1, 0);
        }
        let Some(first) = pieces.get(index) else {
            return Ok(());
        };
        let slices: Vec<IoSlice<'_>> = std::iter::once(&first[offset..])
            .chain(pieces[index + 1..].iter().map(|piece| &piece[..]))
            .take(MAX_SLICES_PER_WRITE)
            .map(IoSlice::new)
            .collect();
        let mut written = writer.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let left = pieces[index].len() - offset;
            if written < left {
                offset += written;
                break;
            }
            written -= left;
            (index, offset) = (index + 1, 0);
        }
    }
}

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> Result<Bytes, String> {
    wire::read_frame(reader).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[tokio::test]
    async fn vectored_writes_deliver_every_piece_in_order_through_short_writes() {
        let pieces: Vec<Bytes> = (0..700u32)
            .map(|i| Bytes::from(vec![(i % 251) as u8; (i % 5) as usize * 40]))
            .collect();
        // A pipe with a small buffer forces partial writes.
        let (mut client, mut server) = tokio::io::duplex(333);
        let expected = pieces.concat();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server, &mut got)
                .await
                .expect("reads");
            got
        });
        write_pieces(&mut client, &pieces).await.expect("writes");
        drop(client);
        assert_eq!(reader.await.expect("reader"), expected);
    }

    #[test]
    fn a_partition_the_broker_left_out_is_an_error_and_the_rest_keep_their_answers() {
        use kafka_protocol::messages::ResponseHeader;
        use kafka_protocol::messages::produce_response::{
            PartitionProduceResponse, TopicProduceResponse,
        };
        let version = 9;
        let response = ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_responses(vec![
                    PartitionProduceResponse::default()
                        .with_index(2)
                        .with_base_offset(40),
                    PartitionProduceResponse::default()
                        .with_index(0)
                        .with_error_code(6)
                        .with_base_offset(-1),
                ]),
        ]);
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(5)
            .encode(&mut body, ProduceResponse::header_version(version))
            .expect("encodes");
        response.encode(&mut body, version).expect("encodes");
        let answers = decode(body.freeze(), version, &[0, 1, 2]).expect("decodes");
        assert_eq!(answers[0], Ok((6, -1, None)));
        assert!(answers[1].is_err());
        assert_eq!(answers[2], Ok((0, 40, None)));
    }
}

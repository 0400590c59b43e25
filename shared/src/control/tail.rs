//! Reading a single-partition topic from its start and following it: the control and status
//! topics are small, compacted and read whole by every reader, as plain consumers.
//!
//! This owns the read position and what to do when the topic goes away; it must not interpret
//! records. It reads through rskafka's partition client, not `shared::group`, because a group
//! member would share the records out between processes while every reader needs all of them.
//! A topic that cannot be read is reported once (and its return once), not on every retry; a
//! topic recreated under us (its end now behind our position) is read again from its start.

use std::sync::Arc;
use std::time::Duration;

use rskafka::client::Client;
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use tokio::sync::mpsc;

use crate::shutdown::Shutdown;

/// How long a fetch waits for new records. Nisshi answers an empty long-poll after about half
/// of it (`docs/broker.md`), so a write is seen within ~150 ms: well inside the 1 s promise.
const FETCH_WAIT_MS: i32 = 300;
/// Pause before trying an unreadable topic again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Bytes per fetch: settings and status records are small.
const FETCH_BYTES: std::ops::Range<i32> = 1..1024 * 1024;

/// What a tail reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    Record {
        offset: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp_ms: i64,
    },
    /// Every record that existed when the tail first read the topic has been delivered; later
    /// records were written after the reader started.
    CaughtUp,
    /// The topic was recreated: what follows is read from its new start.
    Restarted,
    /// The topic cannot be read (reported once per outage).
    Unreadable(String),
    /// It can be read again.
    Readable,
}

/// Starts following `topic`'s partition 0; events arrive on the returned channel until
/// `shutdown` or until the receiver is dropped.
pub fn follow(client: Arc<Client>, topic: String, shutdown: Shutdown) -> mpsc::Receiver<TailEvent> {
    let (events, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        tokio::select! {
            () = Tail { client, topic, events, next: None, boot_end: None, caught_up: false, readable: true }.run() => {}
            () = shutdown.cancelled() => {}
        }
    });
    receiver
}

struct Tail {
    client: Arc<Client>,
    topic: String,
    events: mpsc::Sender<TailEvent>,
    /// The next offset to read; `None` until the topic was first read (then: its start).
    next: Option<i64>,
    /// The end offset when the topic was first read: what "caught up" means.
    boot_end: Option<i64>,
    caught_up: bool,
    readable: bool,
}

impl Tail {
    async fn run(mut self) {
        loop {
            let Err(reason) = self.read().await else {
                return;
            };
            if self.events.is_closed() {
                return;
            }
            if self.readable {
                self.readable = false;
                if self
                    .events
                    .send(TailEvent::Unreadable(reason))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Reads until an error, which is returned (also when nobody listens any more).
    async fn read(&mut self) -> Result<(), String> {
        let partition = self
            .client
            .partition_client(self.topic.clone(), 0, UnknownTopicHandling::Error)
            .await
            .map_err(|e| format!("{}: {e}", self.topic))?;
        let earliest = offset(&partition, OffsetAt::Earliest).await?;
        let latest = offset(&partition, OffsetAt::Latest).await?;
        if !self.readable {
            self.readable = true;
            self.send(TailEvent::Readable).await?;
        }
        let mut position = match self.next {
            None => earliest,
            Some(position) if position > latest => {
                self.send(TailEvent::Restarted).await?;
                earliest
            }
            Some(position) => position.max(earliest),
        };
        let end_at_boot = *self.boot_end.get_or_insert(latest);
        loop {
            if !self.caught_up && position >= end_at_boot {
                self.caught_up = true;
                self.send(TailEvent::CaughtUp).await?;
            }
            let (records, high_watermark) = partition
                .fetch_records(position, FETCH_BYTES, FETCH_WAIT_MS)
                .await
                .map_err(|e| format!("{}: {e}", self.topic))?;
            if high_watermark < position {
                // Deleted and recreated between two fetches: start over from its beginning.
                self.send(TailEvent::Restarted).await?;
                position = offset(&partition, OffsetAt::Earliest).await?;
                self.next = Some(position);
                continue;
            }
            let from = position;
            for record in records.into_iter().filter(|r| r.offset >= from) {
                position = record.offset + 1;
                self.send(TailEvent::Record {
                    offset: record.offset,
                    key: record.record.key,
                    value: record.record.value,
                    timestamp_ms: record.record.timestamp.timestamp_millis(),
                })
                .await?;
            }
            self.next = Some(position);
        }
    }

    async fn send(&self, event: TailEvent) -> Result<(), String> {
        // A closed receiver ends the tail quietly: `run` sees the same error on its next send.
        self.events
            .send(event)
            .await
            .map_err(|_| "the reader has stopped".to_owned())
    }
}

async fn offset(partition: &PartitionClient, at: OffsetAt) -> Result<i64, String> {
    partition
        .get_offset(at)
        .await
        .map_err(|e| format!("{}: {e}", partition.topic()))
}

//! The status topic: what each running service instance says about itself — its effective
//! settings, its counters, its group members, the commands it acted on — for the ripple view.
//!
//! A service fills a [`StatusBoard`] (one JSON object per [`StatusPart`]); one task publishes
//! it, so publishing never blocks the service and the service never speaks to the topic. The
//! choice a reader may question is the cadence: settings, members and commands are written
//! when they change (at most every [`COALESCE`]), figures only every [`FIGURES_EVERY`]. That
//! keeps the topic small on a broker that never compacts (arithmetic in the module above);
//! the second-by-second rates come from the data topics themselves, measured by analytics.
//! A member's stuck partitions ([`StuckPartition`]) travel with its members part, so they
//! show within a second of being noticed rather than at the next figures tick.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::Client;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::group::TopicPartition;
use crate::group::fetch::BatchError;
use crate::shutdown::Shutdown;

/// How often the counters are published (also the heartbeat that shows an instance is alive).
pub const FIGURES_EVERY: Duration = Duration::from_secs(10);
/// Changes closer together than this go out as one record.
pub const COALESCE: Duration = Duration::from_millis(200);
/// An instance whose last record is older than this is considered gone.
pub const STALE_AFTER: Duration = Duration::from_secs(35);
/// Time allowed for one status write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The parts of a status; each is its own record (and key), so a change to one does not
/// rewrite the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusPart {
    Settings,
    Figures,
    Members,
    Commands,
}

impl StatusPart {
    pub const ALL: [StatusPart; 4] = [
        StatusPart::Settings,
        StatusPart::Figures,
        StatusPart::Members,
        StatusPart::Commands,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StatusPart::Settings => "settings",
            StatusPart::Figures => "figures",
            StatusPart::Members => "members",
            StatusPart::Commands => "commands",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|part| part.name() == name)
    }
}

/// Who is speaking: a service name and one running instance of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusIdentity {
    pub service: String,
    pub instance: String,
}

impl StatusIdentity {
    /// A new instance id per process start: the pid (readable in logs) and a random suffix
    /// (containers all run as pid 1).
    pub fn for_this_process(service: &str) -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self {
            service: service.to_owned(),
            instance: format!("{}-{}", std::process::id(), &random[..6]),
        }
    }
}

/// One decoded status record.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    pub service: String,
    pub instance: String,
    pub part: StatusPart,
    /// Epoch milliseconds when it was written.
    pub at_ms: i64,
    pub body: Map<String, Value>,
}

impl StatusRecord {
    /// `None` for records that are not status records (a foreign writer, a bad key).
    pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Option<Self> {
        let key = std::str::from_utf8(key?).ok()?;
        let mut pieces = key.splitn(3, '/');
        let (service, instance, part) = (pieces.next()?, pieces.next()?, pieces.next()?);
        let part = StatusPart::from_name(part)?;
        let Value::Object(mut body) = serde_json::from_slice(value?).ok()? else {
            return None;
        };
        let at_ms = body.remove("at").and_then(|at| at.as_i64()).unwrap_or(0);
        Some(Self {
            service: service.to_owned(),
            instance: instance.to_owned(),
            part,
            at_ms,
            body,
        })
    }
}

/// A partition a group member cannot read past, because the batch at `offset` does not
/// decode (a codec we lack, a corrupt batch): the member paused it there and retries it
/// every minute. Published with the members; counted in analytics' metrics and dashboard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StuckPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Why, as the decoder says it.
    pub error: String,
}

impl StuckPartition {
    /// What a group consumer reports (`GroupConsumer::stuck`), in partition order.
    pub fn list(stuck: &BTreeMap<TopicPartition, BatchError>) -> Vec<Self> {
        stuck
            .iter()
            .map(|(partition, error)| Self {
                topic: partition.topic.clone(),
                partition: partition.partition,
                offset: error.offset,
                error: error.reason.to_string(),
            })
            .collect()
    }
}

/// Where a service writes its status; cheap to clone.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    parts: Arc<watch::Sender<BTreeMap<StatusPart, Map<String, Value>>>>,
}

impl StatusBoard {
    /// Sets one part (a JSON object); an unchanged value costs nothing.
    pub fn set(&self, part: StatusPart, body: Value) {
        let Value::Object(body) = body else {
            tracing::warn!(
                part = part.name(),
                "status part is not a JSON object; not published"
            );
            return;
        };
        self.parts.send_if_modified(|parts| {
            if parts.get(&part) == Some(&body) {
                return false;
            }
            parts.insert(part, body);
            true
        });
    }
}

/// Starts publishing to `topic` as `identity`. The task ends at `shutdown`, after writing a
/// last figures record marked `"stopped": true` so the instance leaves the view at once.
pub fn publish(
    client: Arc<Client>,
    topic: &str,
    identity: StatusIdentity,
    shutdown: Shutdown,
) -> (StatusBoard, JoinHandle<()>) {
    let (parts_tx, parts) = watch::channel(BTreeMap::new());
    let publisher = Publisher {
        client,
        topic: topic.to_owned(),
        identity,
        partition: None,
        failing: false,
        published: BTreeMap::new(),
    };
    let task = tokio::spawn(publisher.run(parts, shutdown));
    (
        StatusBoard {
            parts: Arc::new(parts_tx),
        },
        task,
    )
}

struct Publisher {
    client: Arc<Client>,
    topic: String,
    identity: StatusIdentity,
    partition: Option<PartitionClient>,
    /// Whether the last write failed (so a failure is logged once, not every time).
    failing: bool,
    published: BTreeMap<StatusPart, Map<String, Value>>,
}

impl Publisher {
    async fn run(
        mut self,
        mut parts: watch::Receiver<BTreeMap<StatusPart, Map<String, Value>>>,
        shutdown: Shutdown,
    ) {
        let mut figures = tokio::time::interval(FIGURES_EVERY);
        figures.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = parts.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(COALESCE) => {}
                        () = shutdown.cancelled() => break,
                    }
                    let current = parts.borrow_and_update().clone();
                    for (part, body) in current {
                        // Figures go out on their own clock, except the first (a new instance
                        // shows up at once).
                        let first = !self.published.contains_key(&part);
                        if (part != StatusPart::Figures || first) && self.published.get(&part) != Some(&body) {
                            self.write(part, body).await;
                        }
                    }
                }
                _ = figures.tick() => {
                    let body = parts.borrow().get(&StatusPart::Figures).cloned();
                    if let Some(body) = body {
                        self.write(StatusPart::Figures, body).await;
                    }
                }
            }
        }
        let mut last = parts
            .borrow()
            .get(&StatusPart::Figures)
            .cloned()
            .unwrap_or_default();
        last.insert("stopped".into(), Value::Bool(true));
        self.write(StatusPart::Figures, last).await;
    }

    async fn write(&mut self, part: StatusPart, body: Map<String, Value>) {
        let mut value = body.clone();
        value.insert(
            "at".into(),
            Value::from(chrono::Utc::now().timestamp_millis()),
        );
        let record = Record {
            key: Some(
                format!(
                    "{}/{}/{}",
                    self.identity.service,
                    self.identity.instance,
                    part.name()
                )
                .into_bytes(),
            ),
            value: serde_json::to_vec(&value).ok(),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        };
        match self.produce(record).await {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(topic = %self.topic, "status is published again");
                }
                self.published.insert(part, body);
            }
            Err(reason) => {
                self.partition = None;
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(topic = %self.topic, %reason, "cannot publish status; the service runs on and tries again");
                }
            }
        }
    }

    async fn produce(&mut self, record: Record) -> Result<(), String> {
        if self.partition.is_none() {
            let partition = tokio::time::timeout(
                WRITE_TIMEOUT,
                self.client
                    .partition_client(self.topic.clone(), 0, UnknownTopicHandling::Error),
            )
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
            self.partition = Some(partition);
        }
        let Some(partition) = &self.partition else {
            return Err("no partition client".into());
        };
        tokio::time::timeout(
            WRITE_TIMEOUT,
            partition.produce(vec![record], Compression::NoCompression),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map(drop)
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_records_decode_and_foreign_ones_are_skipped() {
        let decoded = StatusRecord::decode(
            Some(b"producer-order/42-abcdef/figures"),
            Some(br#"{"at":1700000000000,"acked":5}"#),
        )
        .expect("decodes");
        assert_eq!(decoded.service, "producer-order");
        assert_eq!(decoded.part, StatusPart::Figures);
        assert_eq!(decoded.at_ms, 1_700_000_000_000);
        assert_eq!(decoded.body.get("acked"), Some(&Value::from(5)));
        assert!(StatusRecord::decode(Some(b"a/b/unknown"), Some(b"{}")).is_none());
        assert!(StatusRecord::decode(Some(b"a/b/figures"), Some(b"[1]")).is_none());
        assert!(StatusRecord::decode(None, Some(b"{}")).is_none());
    }

    #[test]
    fn a_stuck_partition_names_topic_partition_offset_and_why() {
        use crate::group::fetch::BatchFault;
        let mut stuck = BTreeMap::new();
        stuck.insert(
            TopicPartition::new("orders", 4),
            BatchError {
                offset: 1234,
                reason: BatchFault::Malformed("batch shorter than its header"),
            },
        );
        let listed = StuckPartition::list(&stuck);
        let json = serde_json::to_value(&listed).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!([{"topic": "orders", "partition": 4, "offset": 1234,
                "error": "malformed: batch shorter than its header"}])
        );
        let back: Vec<StuckPartition> = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, listed);
    }
}

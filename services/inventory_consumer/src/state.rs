//! Stock that survives restarts and rebalances: every change is written to a compacted
//! changelog topic (key `item_id`) at the same partition number as the order that caused it,
//! and a newly assigned partition's items are restored from it before its orders are processed.
//!
//! Each entry records the stock before and after and the order offset behind it; a worker
//! writes one entry per item per batch (before its first change, after its last, the first
//! order's offset), which is enough because batches are committed whole. Entries from orders
//! at or after the committed offset belong to the uncommitted tail, which will be processed
//! again: restoring stops at the stock *before* the first of them, so replaying the tail
//! repeats exactly the same decisions instead of applying them twice.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shared::group::fetch::{FetchItem, Fetcher, StartOffset};
use shared::group::{OffsetReset, TopicPartition};
use shared::producer::OutgoingRecord;
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::ReceiverStream;

use crate::rules::Stock;

/// One change of one item's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChange {
    pub item_id: String,
    pub stock_before: i64,
    pub stock_after: i64,
    /// The order behind the change; `None` for a restock.
    pub source_offset: Option<i64>,
}

impl StockChange {
    pub fn record(&self, partition: i32) -> Result<OutgoingRecord, serde_json::Error> {
        Ok(OutgoingRecord {
            key: Some(self.item_id.clone().into_bytes()),
            value: {
                let mut value = Vec::with_capacity(128);
                serde_json::to_writer(&mut value, self)?;
                value
            },
            headers: vec![(
                Cow::Borrowed("event-type"),
                Bytes::from_static(b"stock.changed"),
            )],
            timestamp: chrono::Utc::now(),
            partition: Some(partition),
        })
    }
}

/// How long a partition's changelog may stay silent below its end offset before what was read
/// is taken as complete: a compacted log's last offsets may hold no record any more.
const SILENT_TAIL: Duration = Duration::from_secs(5);

/// Rebuilds the stock of each of `partitions` (partition, committed order offset) from the
/// changelog, as of its committed order offset. All partitions are read at once through one
/// fetcher — one request per broker, not one connection per partition.
pub async fn restore(
    fetcher: &Fetcher,
    state_topic: &str,
    partitions: &[(i32, i64)],
) -> Result<HashMap<i32, Stock>, String> {
    let wanted: Vec<TopicPartition> = partitions
        .iter()
        .map(|(partition, _)| TopicPartition::new(state_topic, *partition))
        .collect();
    let committed: HashMap<i32, i64> = partitions.iter().copied().collect();
    let ends = fetcher
        .end_offsets(wanted.clone())
        .await
        .map_err(|e| format!("{state_topic}: end offsets: {e}"))?;
    let started = fetcher
        .assign(
            wanted
                .iter()
                .map(|p| (p.clone(), StartOffset::Reset(OffsetReset::Earliest)))
                .collect(),
        )
        .await
        .map_err(|e| format!("{state_topic}: {e}"))?;
    let mut restored: HashMap<i32, Restoring> = HashMap::new();
    let mut reading = StreamMap::new();
    let mut ends_left = HashMap::new();
    for assigned in started {
        let partition = assigned.partition.partition;
        let end = ends.get(&assigned.partition).copied().unwrap_or(0);
        restored.insert(
            partition,
            Restoring::new(committed.get(&partition).copied().unwrap_or(0)),
        );
        if assigned.position < end {
            reading.insert(partition, ReceiverStream::new(assigned.receiver));
            ends_left.insert(partition, end);
        }
    }
    let outcome = read_to_ends(&mut reading, &ends_left, &mut restored).await;
    fetcher.remove(wanted);
    outcome?;
    Ok(restored
        .into_iter()
        .map(|(partition, restoring)| (partition, restoring.stock))
        .collect())
}

type Reading = StreamMap<i32, ReceiverStream<FetchItem>>;

/// Reads every partition concurrently (a fetcher's budget is shared, so draining them one at
/// a time could leave the one being drained without room) until each reaches its end.
async fn read_to_ends(
    reading: &mut Reading,
    ends: &HashMap<i32, i64>,
    restored: &mut HashMap<i32, Restoring>,
) -> Result<(), String> {
    while !reading.is_empty() {
        let next = tokio::time::timeout(SILENT_TAIL, reading.next()).await;
        let Ok(Some((partition, item))) = next else {
            // Silent below the end: the rest was compacted away; what was read is complete.
            return Ok(());
        };
        let end = ends.get(&partition).copied().unwrap_or(i64::MAX);
        match item {
            FetchItem::Batch { records, .. } => {
                let Some(restoring) = restored.get_mut(&partition) else {
                    continue;
                };
                let mut reached = false;
                for record in &records {
                    restoring.apply(partition, record.offset, record.value.as_deref());
                    reached |= record.offset + 1 >= end;
                }
                if reached {
                    reading.remove(&partition);
                }
            }
            FetchItem::Stuck(error) => {
                return Err(format!("changelog partition {partition}: {error}"));
            }
            FetchItem::Failed(error) => {
                return Err(format!("changelog partition {partition}: {error}"));
            }
        }
    }
    Ok(())
}

/// One partition's stock as its changelog is read.
struct Restoring {
    committed: i64,
    stock: Stock,
    /// Items whose first change in the uncommitted tail has been seen: later entries of the
    /// same item belong to that tail too.
    tail_items: HashSet<String>,
}

impl Restoring {
    fn new(committed: i64) -> Self {
        Self {
            committed,
            stock: Stock::new(),
            tail_items: HashSet::new(),
        }
    }

    fn apply(&mut self, partition: i32, offset: i64, value: Option<&[u8]>) {
        let Some(value) = value else {
            return;
        };
        let Ok(change) = serde_json::from_slice::<StockChange>(value) else {
            tracing::warn!(partition, offset, "unreadable changelog entry skipped");
            return;
        };
        if self.tail_items.contains(&change.item_id) {
            return;
        }
        match change.source_offset {
            Some(source) if source >= self.committed => {
                self.stock
                    .insert(change.item_id.clone(), change.stock_before);
                self.tail_items.insert(change.item_id);
            }
            _ => {
                self.stock.insert(change.item_id, change.stock_after);
            }
        }
    }
}

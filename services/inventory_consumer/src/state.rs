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
use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use rskafka::client::Client;
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use serde::{Deserialize, Serialize};
use shared::producer::OutgoingRecord;

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

/// Rebuilds a partition's stock from its changelog, as of the committed order offset.
pub async fn restore(
    client: &Client,
    state_topic: &str,
    partition: i32,
    committed: i64,
) -> Result<Stock, String> {
    let partition_client = client
        .partition_client(
            state_topic.to_owned(),
            partition,
            UnknownTopicHandling::Retry,
        )
        .await
        .map_err(|e| format!("{state_topic}-{partition}: {e}"))?;
    let end = partition_client
        .get_offset(OffsetAt::Latest)
        .await
        .map_err(|e| e.to_string())?;
    let mut offset = partition_client
        .get_offset(OffsetAt::Earliest)
        .await
        .map_err(|e| e.to_string())?;
    let mut stock = Stock::new();
    let mut tail_items: HashSet<String> = HashSet::new();
    while offset < end {
        let (records, _) = tokio::time::timeout(
            Duration::from_secs(30),
            partition_client.fetch_records(offset, 1..8 * 1024 * 1024, 100),
        )
        .await
        .map_err(|_| "restoring timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        let start = offset;
        if records.iter().all(|r| r.offset < start) {
            // Nothing readable before the end (a compacted gap): the stock is complete.
            break;
        }
        for record in records.into_iter().filter(|r| r.offset >= start) {
            offset = record.offset + 1;
            let Some(value) = record.record.value else {
                continue;
            };
            let Ok(change) = serde_json::from_slice::<StockChange>(&value) else {
                tracing::warn!(
                    partition,
                    offset = record.offset,
                    "unreadable changelog entry skipped"
                );
                continue;
            };
            if tail_items.contains(&change.item_id) {
                continue;
            }
            match change.source_offset {
                Some(source) if source >= committed => {
                    stock.insert(change.item_id.clone(), change.stock_before);
                    tail_items.insert(change.item_id);
                }
                _ => {
                    stock.insert(change.item_id, change.stock_after);
                }
            }
        }
    }
    Ok(stock)
}

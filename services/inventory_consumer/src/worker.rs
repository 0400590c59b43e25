//! One worker per assigned order partition: applies the rules to its orders in offset order,
//! writes one outcome per order (plus a dead letter for failed and malformed orders, and one
//! changelog entry per item whose stock the batch changed), and hands each batch to the
//! member's commit queue (`commit`), which commits it only once every record it produced is
//! acknowledged.
//!
//! The worker alone owns its partition's stock, so no item is touched by two tasks. A record
//! that cannot be delivered stops the worker with an error (the service exits and a restart
//! replays the uncommitted tail), because committing past it would lose an order.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use shared::events::{INVENTORY_SCHEMA_VERSION, InventoryEvent, InventoryOutcome, decode_order};
use shared::group::{ConsumerRecord, RecordBatch, TopicPartition};
use shared::producer::{OutgoingRecord, Producer};
use tokio::sync::mpsc;

use crate::commit::{CommitQueue, Committed};
use crate::rules::{self, FailureModel, Stock};
use crate::state::StockChange;

/// Counters every worker adds to (read by the summary line).
#[derive(Debug, Default)]
pub struct Stats {
    pub processed: AtomicU64,
    pub reserved: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    pub restocked: AtomicU64,
    pub retries: AtomicU64,
    pub malformed: AtomicU64,
    pub dead_letters: AtomicU64,
}

/// What every worker shares.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub outcomes: Producer,
    pub dead_letters: Producer,
    pub changelog: Producer,
    /// The member's commit queue: one OffsetCommit for every partition ready at once.
    pub committer: CommitQueue,
    pub stats: Arc<Stats>,
    pub failures: FailureModel,
    pub throttle: Duration,
    pub initial_stock: i64,
    pub restock: Option<(Duration, i64)>,
    /// Live changes to the three fields above (`live::LiveRules`, applied by `refresh_rules`).
    pub rules: tokio::sync::watch::Receiver<crate::live::LiveRules>,
}

/// What one batch produces, per output topic.
#[derive(Default)]
struct Pending {
    outcomes: Vec<OutgoingRecord>,
    changes: BatchChanges,
    letters: Vec<OutgoingRecord>,
}

pub struct Worker {
    partition: TopicPartition,
    stock: Stock,
    outputs: Outputs,
    /// When the last restock round started: the next starts at least a millisecond later,
    /// even if the clock has not moved or missed ticks fire together, so restock ids only grow.
    last_restock_round: chrono::DateTime<chrono::Utc>,
}

/// The batch's stock changes, one per item: the stock before its first change in the batch,
/// after its last, and the offset of the first order that changed it.
///
/// One entry per item per batch is enough because a batch is committed whole: restoring as of
/// a committed offset either keeps the whole batch (`stock_after`) or none of it
/// (`stock_before`, since `source_offset` is at or past the commit). It halves what the
/// service produces when items repeat within a batch, which at any real rate they do.
#[derive(Default)]
struct BatchChanges {
    changes: Vec<StockChange>,
    index_by_item: std::collections::HashMap<String, usize>,
}

impl BatchChanges {
    fn record(&mut self, item_id: &str, stock_before: i64, stock_after: i64, offset: i64) {
        match self.index_by_item.get(item_id) {
            Some(&index) => self.changes[index].stock_after = stock_after,
            None => {
                self.index_by_item
                    .insert(item_id.to_owned(), self.changes.len());
                self.changes.push(StockChange {
                    item_id: item_id.to_owned(),
                    stock_before,
                    stock_after,
                    source_offset: Some(offset),
                });
            }
        }
    }

    fn into_records(self, partition: i32) -> Result<Vec<OutgoingRecord>, serde_json::Error> {
        self.changes
            .iter()
            .map(|change| change.record(partition))
            .collect()
    }
}

/// Batches whose outputs may be awaiting acknowledgement and commit at once, per partition.
/// Deciding the next batch while the last one's outcomes and commit travel takes a round trip
/// (linger, produce, commit) off every order's latency; the bound keeps what is held small.
const COMMITS_AHEAD: usize = 4;

impl Worker {
    pub fn new(partition: TopicPartition, stock: Stock, outputs: Outputs) -> Self {
        Self {
            partition,
            stock,
            outputs,
            last_restock_round: chrono::DateTime::UNIX_EPOCH,
        }
    }

    /// Processes batches until the channel closes (revocation or shutdown), then waits until
    /// every batch handed to the commit queue is committed.
    pub async fn run(mut self, mut batches: mpsc::Receiver<RecordBatch>) -> anyhow::Result<()> {
        let mut in_flight = VecDeque::with_capacity(COMMITS_AHEAD);
        let processed = self.process_all(&mut batches, &mut in_flight).await;
        // A commit's own failure (an unacknowledged outcome) explains a failed hand-over.
        let mut committed = Ok(());
        for batch in in_flight {
            if let Err(e) = wait_committed(batch).await {
                committed = committed.and(Err(e));
            }
        }
        committed.and(processed)
    }

    async fn process_all(
        &mut self,
        batches: &mut mpsc::Receiver<RecordBatch>,
        in_flight: &mut VecDeque<Committed>,
    ) -> anyhow::Result<()> {
        let mut restock_period = self.outputs.restock.map(|(every, _)| every);
        let mut restock = restock_timer(restock_period).await;
        let mut rules_open = true;
        loop {
            tokio::select! {
                batch = batches.recv() => match batch {
                    Some(batch) => self.process(batch, in_flight).await?,
                    None => return Ok(()),
                },
                _ = restock.tick(), if self.outputs.restock.is_some() => self.restock().await?,
                changed = self.outputs.rules.changed(), if rules_open => match changed {
                    Ok(()) => self.outputs.refresh_rules(),
                    Err(_) => rules_open = false,
                },
            }
            let period = self.outputs.restock.map(|(every, _)| every);
            if period != restock_period {
                restock_period = period;
                restock = restock_timer(period).await;
            }
        }
    }

    /// Decides every order of the batch and hands its outputs to the producers; the commit
    /// follows once they are acknowledged, while the next batch is already being decided.
    async fn process(
        &mut self,
        batch: RecordBatch,
        in_flight: &mut VecDeque<Committed>,
    ) -> anyhow::Result<()> {
        let Some(last) = batch.records.last().map(|r| r.offset) else {
            return Ok(());
        };
        let mut out = Pending::default();
        for record in &batch.records {
            // A live change applies from the next order, not the next batch.
            if self.outputs.rules.has_changed().unwrap_or(false) {
                self.outputs.refresh_rules();
            }
            if !self.outputs.throttle.is_zero() {
                tokio::time::sleep(self.outputs.throttle).await;
            }
            self.process_one(record, &mut out).await?;
        }
        // One hand-over per output topic for the whole batch.
        let mut tickets = self.outputs.outcomes.send_all(out.outcomes).await?;
        let changes = out.changes.into_records(self.partition.partition)?;
        tickets.extend(self.outputs.changelog.send_all(changes).await?);
        tickets.extend(self.outputs.dead_letters.send_all(out.letters).await?);
        // At the bound, the oldest batch must be committed before another is handed over.
        if in_flight.len() >= COMMITS_AHEAD
            && let Some(oldest) = in_flight.pop_front()
        {
            wait_committed(oldest).await?;
        }
        let committed = self
            .outputs
            .committer
            .hand_over(self.partition.clone(), tickets, last + 1)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.partition))?;
        in_flight.push_back(committed);
        Ok(())
    }

    async fn process_one(
        &mut self,
        record: &ConsumerRecord,
        out: &mut Pending,
    ) -> anyhow::Result<()> {
        let stats = &self.outputs.stats;
        let value = record.value.as_deref().unwrap_or_default();
        let order = match decode_order(value) {
            Ok(order) => order,
            Err(e) => {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                out.letters
                    .push(self.dead_letter(record, "malformed", &e.to_string(), 0));
                return Ok(());
            }
        };
        let decision = rules::decide(
            &mut self.stock,
            self.outputs.initial_stock,
            &self.outputs.failures,
            order.order_id,
            &order.item_id,
            order.quantity,
        )
        .await;
        stats.processed.fetch_add(1, Ordering::Relaxed);
        stats
            .retries
            .fetch_add(u64::from(decision.attempts - 1), Ordering::Relaxed);
        let event = InventoryEvent {
            schema_version: INVENTORY_SCHEMA_VERSION,
            event_id: InventoryEvent::event_id_for(order.order_id, decision.outcome),
            order_id: Some(order.order_id),
            item_id: order.item_id.clone(),
            quantity: order.quantity,
            outcome: decision.outcome,
            reason: decision.reason.map(str::to_owned),
            stock_after: decision.stock_after,
            attempts: decision.attempts,
            order_created_at: Some(order.created_at),
            processed_at: chrono::Utc::now(),
            source_partition: Some(record.partition),
            source_offset: Some(record.offset),
        };
        out.outcomes.push(outcome_record(&event)?);
        match decision.outcome {
            InventoryOutcome::Reserved => {
                stats.reserved.fetch_add(1, Ordering::Relaxed);
                out.changes.record(
                    &order.item_id,
                    decision.stock_before,
                    decision.stock_after,
                    record.offset,
                );
            }
            InventoryOutcome::Rejected => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
            }
            InventoryOutcome::Failed => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                out.letters.push(self.dead_letter(
                    record,
                    "failed",
                    "simulated_failure",
                    decision.attempts,
                ));
            }
            InventoryOutcome::Restocked => {}
        }
        Ok(())
    }

    /// Copies the original record to the dead-letter topic with why, how often, and where from.
    fn dead_letter(
        &self,
        record: &ConsumerRecord,
        reason: &'static str,
        error: &str,
        attempts: u32,
    ) -> OutgoingRecord {
        self.outputs
            .stats
            .dead_letters
            .fetch_add(1, Ordering::Relaxed);
        let headers = vec![
            (
                Cow::Borrowed("reason"),
                Bytes::from_static(reason.as_bytes()),
            ),
            (Cow::Borrowed("error"), Bytes::from(error.to_owned())),
            (Cow::Borrowed("attempts"), Bytes::from(attempts.to_string())),
            (
                Cow::Borrowed("source-topic"),
                Bytes::from(record.topic.to_string()),
            ),
            (
                Cow::Borrowed("source-partition"),
                Bytes::from(record.partition.to_string()),
            ),
            (
                Cow::Borrowed("source-offset"),
                Bytes::from(record.offset.to_string()),
            ),
        ];
        OutgoingRecord {
            key: record.key.as_deref().map(<[u8]>::to_vec),
            value: record.value.as_deref().unwrap_or_default().to_vec(),
            headers,
            timestamp: chrono::Utc::now(),
            partition: None,
        }
    }

    /// Adds `RESTOCK_AMOUNT` to every item this partition has seen and reports each restock.
    async fn restock(&mut self) -> anyhow::Result<()> {
        let Some((_, amount)) = self.outputs.restock else {
            return Ok(());
        };
        let mut tickets = Vec::new();
        // One timestamp for the whole round: with the item's index it makes each restock's id
        // larger than every earlier one of this partition (see `restock_event_id`).
        let round_started =
            chrono::Utc::now().max(self.last_restock_round + chrono::Duration::milliseconds(1));
        self.last_restock_round = round_started;
        for (index, (item_id, stock)) in (0u64..).zip(&mut self.stock) {
            let before = *stock;
            *stock += amount;
            let event = InventoryEvent {
                schema_version: INVENTORY_SCHEMA_VERSION,
                event_id: InventoryEvent::restock_event_id(
                    self.partition.partition,
                    round_started,
                    index,
                ),
                order_id: None,
                item_id: item_id.clone(),
                quantity: u32::try_from(amount).unwrap_or(u32::MAX),
                outcome: InventoryOutcome::Restocked,
                reason: None,
                stock_after: *stock,
                attempts: 1,
                order_created_at: None,
                processed_at: round_started,
                source_partition: Some(self.partition.partition),
                source_offset: None,
            };
            tickets.push(self.outputs.outcomes.send(outcome_record(&event)?).await?);
            let change = StockChange {
                item_id: item_id.clone(),
                stock_before: before,
                stock_after: *stock,
                source_offset: None,
            };
            tickets.push(
                self.outputs
                    .changelog
                    .send(change.record(self.partition.partition)?)
                    .await?,
            );
            self.outputs.stats.restocked.fetch_add(1, Ordering::Relaxed);
        }
        for ticket in tickets {
            ticket
                .delivered()
                .await
                .context("a restock was not acknowledged")?;
        }
        Ok(())
    }
}

/// Waits for one handed-over batch's commit.
async fn wait_committed(committed: Committed) -> anyhow::Result<()> {
    match committed.await {
        Ok(result) => result.map_err(anyhow::Error::msg),
        Err(_) => anyhow::bail!("the commit queue stopped before the batch was committed"),
    }
}

/// A restock clock (a year apart when restocking is off, so it never fires); its first tick
/// is taken, so the first restock comes one period after start.
async fn restock_timer(period: Option<Duration>) -> tokio::time::Interval {
    let mut timer = tokio::time::interval(period.unwrap_or(Duration::from_secs(365 * 24 * 3600)));
    timer.tick().await;
    timer
}

fn outcome_record(event: &InventoryEvent) -> anyhow::Result<OutgoingRecord> {
    Ok(OutgoingRecord {
        key: Some(event.item_id.clone().into_bytes()),
        value: {
            let mut value = Vec::with_capacity(512);
            serde_json::to_writer(&mut value, event)?;
            value
        },
        headers: vec![
            (
                Cow::Borrowed("event-type"),
                Bytes::from_static(b"inventory.outcome"),
            ),
            (Cow::Borrowed("schema-version"), Bytes::from_static(b"1")),
        ],
        timestamp: event.processed_at,
        partition: None,
    })
}

//! The consume loop: a static group member on both topics feeds [`Metrics`]; every
//! `REPORT_INTERVAL_SEC` a fresh snapshot is published for the HTTP handlers and one summary
//! line is logged.
//!
//! The group consumer runs in its own task and hands batches over a small channel, so the
//! loop's `select!` never cancels the consumer half-way through an assignment. Time for the
//! window is wall-clock seconds, read once per batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use shared::admin::TopicAdmin;
use shared::control::StuckPartition;
use shared::group::{
    ConsumerEvent, ConsumerRecord, GroupConfig, GroupConsumer, OffsetReset, RecordBatch,
    TopicPartition,
};
use shared::shutdown::Shutdown;
use tokio::sync::{mpsc, oneshot, watch};

use crate::http::Rendered;
use crate::metrics::Metrics;
use crate::settings::AnalyticsSettings;

const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

fn unix_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

enum Feed {
    Batch(RecordBatch),
    Failed(shared::group::GroupError),
}

pub async fn run(
    settings: AnalyticsSettings,
    published: watch::Sender<Option<Arc<Rendered>>>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let topics = [
        settings.order_topic.as_str(),
        settings.inventory_topic.as_str(),
    ];
    tokio::select! {
        waited = async {
            let mut admin = TopicAdmin::connect(&settings.connection, CONNECT_DEADLINE).await?;
            admin.wait_for_topics(&topics, &settings.topic_wait).await
        } => { waited.context("waiting for topics")?; }
        _ = shutdown.cancelled() => return Ok(()),
    }
    let mut config = GroupConfig::new(
        settings.group_id.clone(),
        vec![
            settings.order_topic.clone(),
            settings.inventory_topic.clone(),
        ],
    )
    .with_session_timeout(settings.session_timeout)
    .with_fetch(&settings.fetch);
    config.group_instance_id = settings.group_instance_id.clone();
    config.assignors = settings.assignors.clone();
    // The totals live in memory and are rebuilt from the log on every start, so the group
    // never commits: a restarted member (static, so no rebalance) reads from AUTO_OFFSET_RESET
    // again and its totals still reconcile with everything produced. Committing would make a
    // restart count only what arrived after the last commit.
    config.enable_auto_commit = false;
    config.auto_offset_reset = if settings.auto_offset_reset_earliest {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let consumer = GroupConsumer::start(&settings.connection, config, CONNECT_DEADLINE)
        .await
        .context("starting the group member")?;
    let group = consumer.watch_snapshot();
    let (feed_tx, mut feed) = mpsc::channel::<Feed>(8);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (stuck_tx, stuck) = watch::channel(Vec::new());
    let consumer_task = tokio::spawn(drive(consumer, feed_tx, stuck_tx, stop_rx));

    let started = Instant::now();
    let mut metrics = Metrics::new(settings.window.as_secs(), &settings.group_id);
    metrics.group.instance_id = settings.group_instance_id.clone();
    let mut counted = CountedOffsets::default();
    let mut ticker = tokio::time::interval(settings.report_interval);
    // Armed by the first batch counted after a publish, so /metrics trails the counting by at
    // most METRICS_REFRESH_MS while records flow, and an idle consumer sets no timer at all.
    let refresh = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(refresh);
    let mut refresh_armed = false;
    let outcome = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            _ = ticker.tick() => {
                metrics.stuck.clone_from(&stuck.borrow());
                let rendered = publish(&mut metrics, &group, started, &published);
                let snapshot = &rendered.snapshot;
                tracing::info!(
                    orders = snapshot.orders.total,
                    outcomes = snapshot.inventory_events.total,
                    orders_per_sec = format!("{:.1}", snapshot.orders.per_second),
                    success = format!("{:.3}", snapshot.rates.success),
                    p99_ms = snapshot.latency_seconds.p99.map(|s| format!("{:.1}", s * 1000.0)),
                    lag = snapshot.lag_total,
                    stuck_partitions = snapshot.stuck_partitions,
                    generation = snapshot.group.generation,
                    "summary"
                );
                refresh_armed = false;
            }
            () = &mut refresh, if refresh_armed => {
                metrics.stuck.clone_from(&stuck.borrow());
                publish(&mut metrics, &group, started, &published);
                refresh_armed = false;
            }
            item = feed.recv() => match item {
                Some(Feed::Batch(batch)) => {
                    let second = unix_second();
                    let is_orders = batch.partition.topic == settings.order_topic;
                    let partition = batch.partition.partition;
                    for record in counted.unseen(&batch.partition, &batch.records) {
                        let value = record.value.as_deref().unwrap_or_default();
                        if is_orders {
                            metrics.on_order(second, partition, record.offset, value);
                        } else {
                            metrics.on_inventory(second, partition, value);
                        }
                    }
                    if !refresh_armed {
                        refresh
                            .as_mut()
                            .reset(tokio::time::Instant::now() + settings.metrics_refresh);
                        refresh_armed = true;
                    }
                    // What is left to read after this batch; no per-batch map of every partition.
                    if let Some(last) = batch.records.last() {
                        let lag = (batch.high_watermark - (last.offset + 1)).max(0);
                        match metrics.lag.get_mut(&batch.partition) {
                            Some(known) => *known = lag,
                            None => {
                                metrics.lag.insert(batch.partition.clone(), lag);
                            }
                        }
                    }
                }
                Some(Feed::Failed(e)) => break Err(anyhow::Error::new(e).context("group member")),
                None => break Ok(()),
            },
        }
    };
    let _ = stop_tx.send(());
    if let Ok(Err(e)) = consumer_task.await {
        tracing::warn!(error = %e, "closing the group member");
    }
    outcome
}

/// Takes a snapshot with the member's latest state, renders it once and publishes it for
/// the HTTP handlers.
fn publish(
    metrics: &mut Metrics,
    group: &watch::Receiver<shared::group::MemberSnapshot>,
    started: Instant,
    published: &watch::Sender<Option<Arc<Rendered>>>,
) -> Arc<Rendered> {
    let member = group.borrow().clone();
    metrics.group.member_id = member.member_id;
    metrics.group.generation = member.generation;
    metrics.group.rebalances = member.rebalances;
    metrics.group.state = format!("{:?}", member.phase);
    metrics.group.assigned_partitions = member.assignment.len();
    metrics
        .lag
        .retain(|partition, _| member.assignment.contains(partition));
    let snapshot = metrics.snapshot(unix_second(), started.elapsed().as_secs_f64());
    let rendered = Arc::new(Rendered::new(snapshot));
    published.send_replace(Some(Arc::clone(&rendered)));
    rendered
}

/// Owns the consumer: forwards batches and shows its stuck partitions until told to stop,
/// then closes it (a static member sends no LeaveGroup).
async fn drive(
    mut consumer: GroupConsumer,
    feed: mpsc::Sender<Feed>,
    stuck: watch::Sender<Vec<StuckPartition>>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), shared::group::GroupError> {
    loop {
        // Refreshed after every event, a stuck partition's own among them.
        let now_stuck = StuckPartition::list(consumer.stuck());
        stuck.send_if_modified(|shown| {
            let changed = *shown != now_stuck;
            if changed {
                *shown = now_stuck;
            }
            changed
        });
        let event = tokio::select! {
            _ = &mut stop => break,
            event = consumer.next() => event,
        };
        let forwarded = match event {
            None => break,
            Some(Ok(ConsumerEvent::Records(batch))) => Feed::Batch(batch),
            Some(Ok(ConsumerEvent::Assigned(partitions))) => {
                tracing::info!(?partitions, "assigned");
                continue;
            }
            Some(Ok(ConsumerEvent::Revoked { partitions, .. })) => {
                tracing::info!(?partitions, "revoked");
                continue;
            }
            Some(Ok(ConsumerEvent::Stuck { .. })) => continue,
            Some(Err(e)) => Feed::Failed(e),
        };
        if feed.send(forwarded).await.is_err() {
            break;
        }
    }
    consumer.close().await
}

/// How far each partition has been counted. The group never commits, so a partition handed
/// back after a rebalance is read again from `AUTO_OFFSET_RESET`; the records below this mark
/// were counted the first time and must not be again. One lookup per batch, not per record.
#[derive(Debug, Default)]
struct CountedOffsets {
    next_uncounted: HashMap<TopicPartition, i64>,
}

impl CountedOffsets {
    /// The records of this batch not counted before, and marks them counted.
    fn unseen<'a>(
        &mut self,
        partition: &TopicPartition,
        records: &'a [ConsumerRecord],
    ) -> &'a [ConsumerRecord] {
        // Look up before inserting: the common case (a known partition) then allocates nothing.
        if !self.next_uncounted.contains_key(partition) {
            self.next_uncounted.insert(partition.clone(), 0);
        }
        let Some(mark) = self.next_uncounted.get_mut(partition) else {
            return records;
        };
        let first_new = records.partition_point(|record| record.offset < *mark);
        if let Some(last) = records.last() {
            *mark = (*mark).max(last.offset + 1);
        }
        &records[first_new..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(offsets: std::ops::Range<i64>) -> Vec<ConsumerRecord> {
        offsets
            .map(|offset| ConsumerRecord {
                topic: "orders".into(),
                partition: 0,
                offset,
                key: None,
                value: None,
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            })
            .collect()
    }

    #[test]
    fn a_partition_read_again_after_a_rebalance_is_counted_once() {
        let mut counted = CountedOffsets::default();
        let partition = TopicPartition::new("orders", 0);
        assert_eq!(counted.unseen(&partition, &records(0..10)).len(), 10);
        // Read again from the start: only what lies past the first reading is new.
        let again = records(0..15);
        let new = counted.unseen(&partition, &again);
        assert_eq!(new.first().map(|r| r.offset), Some(10));
        assert_eq!(new.len(), 5);
        assert!(counted.unseen(&partition, &records(3..15)).is_empty());
        let other = TopicPartition::new("orders", 1);
        assert_eq!(counted.unseen(&other, &records(0..3)).len(), 3);
    }
}

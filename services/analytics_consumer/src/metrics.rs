//! Everything the analytics consumer counts, and the snapshot it publishes.
//!
//! One owner (the consume loop) updates [`Metrics`]; readers only ever see an immutable
//! [`MetricsSnapshot`] taken every `REPORT_INTERVAL_SEC`, so serving HTTP never touches the
//! counters. An order's outcome is counted once per order record, a restock once
//! ([`CountedOutcomes`], bounded state): a reprocessed order's repeated outcome must not make
//! totals disagree with what was produced. (Records read a second time after a rebalance never
//! get here: the consume loop skips offsets it has counted.)

use std::collections::{BTreeMap, HashMap};

use crate::dedup::CountedOutcomes;
use crate::window::{self, LATENCY_BOUNDS, LatencyCounts, RollingWindow, quantile};
use serde::Serialize;
use shared::control::StuckPartition;
use shared::events::{InventoryOutcome, decode_inventory, decode_order};
use shared::group::TopicPartition;

/// How many of the most ordered items a snapshot lists.
const TOP_ITEMS: usize = 10;

/// Counts per outcome, by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub reserved: u64,
    pub rejected: u64,
    pub failed: u64,
    pub restocked: u64,
}

impl From<[u64; 4]> for OutcomeCounts {
    fn from(counts: [u64; 4]) -> Self {
        Self {
            reserved: counts[0],
            rejected: counts[1],
            failed: counts[2],
            restocked: counts[3],
        }
    }
}

impl OutcomeCounts {
    /// Outcomes that answer an order (restocks do not).
    pub fn orders_decided(&self) -> u64 {
        self.reserved + self.rejected + self.failed
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    pub total: u64,
    pub in_window: u64,
    pub per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    /// reserved / decided orders, 0–1 (over all time).
    pub success: f64,
    /// failed / decided orders.
    pub failure: f64,
    /// rejected / decided orders.
    pub rejection: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemCount {
    pub item_id: String,
    pub orders: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// The consumer group as the member last reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupFigures {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub rebalances: u64,
    pub state: String,
    pub assigned_partitions: usize,
}

/// The published snapshot: the JSON of `GET /metrics`, field names documented in the README.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub uptime_seconds: f64,
    pub window_seconds: u64,
    /// Orders seen (the seed's "processed order count" is `processed_order_count`).
    pub orders: Flow,
    pub inventory_events: Flow,
    /// Orders with an outcome (reserved + rejected + failed).
    pub processed_order_count: u64,
    /// Orders per second over the window.
    pub throughput_per_sec: f64,
    pub outcomes_total: OutcomeCounts,
    pub outcomes_in_window: OutcomeCounts,
    pub rates: Rates,
    /// End-to-end: inventory `processed_at` − order `created_at`, seconds, over the window.
    pub latency_seconds: Latency,
    pub duplicate_events_ignored: u64,
    /// Late outcomes given up on to keep deduplication bounded (see `dedup`); 0 unless
    /// outcomes arrive wildly out of order.
    pub dedup_holes_forgotten: u64,
    pub malformed_records: u64,
    pub top_items: Vec<ItemCount>,
    pub lag: Vec<PartitionLag>,
    pub lag_total: i64,
    pub group: GroupFigures,
    /// This member's partitions paused on a batch that does not decode, and that list.
    pub stuck_partitions: usize,
    pub stuck: Vec<StuckPartition>,
    /// For Prometheus: cumulative latency histogram over all time.
    #[serde(skip)]
    pub latency_histogram: LatencyCounts,
    #[serde(skip)]
    pub latency_sum: f64,
}

#[derive(Debug)]
pub struct Metrics {
    window: RollingWindow,
    orders_total: u64,
    inventory_total: u64,
    outcomes_total: [u64; 4],
    duplicates: u64,
    malformed: u64,
    counted_outcomes: CountedOutcomes,
    item_orders: HashMap<String, u64>,
    latency_histogram: LatencyCounts,
    latency_sum: f64,
    pub group: GroupFigures,
    /// Records left to read per partition, as of its latest batch.
    pub lag: BTreeMap<TopicPartition, i64>,
    /// As the group consumer last reported them.
    pub stuck: Vec<StuckPartition>,
}

impl Metrics {
    pub fn new(window_seconds: u64, group_id: &str) -> Self {
        Self {
            window: RollingWindow::new(window_seconds),
            orders_total: 0,
            inventory_total: 0,
            outcomes_total: [0; 4],
            duplicates: 0,
            malformed: 0,
            counted_outcomes: CountedOutcomes::default(),
            item_orders: HashMap::new(),
            latency_histogram: LatencyCounts::default(),
            latency_sum: 0.0,
            group: GroupFigures {
                group_id: group_id.to_owned(),
                generation: -1,
                ..GroupFigures::default()
            },
            lag: BTreeMap::new(),
            stuck: Vec::new(),
        }
    }

    /// The order record at `partition`/`offset` arrived at `second`; undecodable records are
    /// counted, not fatal (the inventory consumer dead-letters them, so no outcome will come).
    pub fn on_order(&mut self, second: u64, partition: i32, offset: i64, value: &[u8]) {
        match decode_order(value) {
            Ok(order) => {
                self.orders_total += 1;
                self.window.record_order(second);
                *self.item_orders.entry(order.item_id).or_default() += 1;
            }
            Err(_) => {
                self.malformed += 1;
                self.counted_outcomes.settle(partition, offset);
            }
        }
    }

    /// An inventory record of `partition` arrived at `second`; an outcome of an order record
    /// already answered, or a restock already seen, is counted as a duplicate only.
    pub fn on_inventory(&mut self, second: u64, partition: i32, value: &[u8]) {
        let event = match decode_inventory(value) {
            Ok(event) => event,
            Err(_) => {
                self.malformed += 1;
                return;
            }
        };
        if !self.counted_outcomes.first_time(partition, &event) {
            self.duplicates += 1;
            return;
        }
        self.inventory_total += 1;
        self.outcomes_total[window::outcome_index(event.outcome)] += 1;
        let latency = match (event.outcome, event.order_created_at) {
            (InventoryOutcome::Restocked, _) | (_, None) => None,
            (_, Some(created)) => {
                let millis = (event.processed_at - created).num_milliseconds().max(0);
                Some(millis as f64 / 1000.0)
            }
        };
        if let Some(seconds) = latency {
            self.latency_histogram[window::latency_bucket(seconds)] += 1;
            self.latency_sum += seconds;
        }
        self.window.record_outcome(second, event.outcome, latency);
    }

    pub fn snapshot(&self, now_second: u64, uptime_seconds: f64) -> MetricsSnapshot {
        let figures = self.window.figures(now_second);
        let window_seconds = self.window.seconds();
        let span = window_seconds as f64;
        let totals = OutcomeCounts::from(self.outcomes_total);
        let decided = totals.orders_decided();
        let ratio = |part: u64| {
            if decided == 0 {
                0.0
            } else {
                part as f64 / decided as f64
            }
        };
        // Snapshots are taken up to every METRICS_REFRESH_MS: pick the ten in linear time and
        // copy only their names, however many items there are.
        let mut ranked: Vec<(&String, u64)> = self
            .item_orders
            .iter()
            .map(|(item_id, orders)| (item_id, *orders))
            .collect();
        let by_rank =
            |a: &(&String, u64), b: &(&String, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if ranked.len() > TOP_ITEMS {
            ranked.select_nth_unstable_by(TOP_ITEMS - 1, by_rank);
            ranked.truncate(TOP_ITEMS);
        }
        ranked.sort_unstable_by(by_rank);
        let top: Vec<ItemCount> = ranked
            .into_iter()
            .map(|(item_id, orders)| ItemCount {
                item_id: item_id.clone(),
                orders,
            })
            .collect();
        let max = (figures.latency.iter().sum::<u64>() > 0).then_some(figures.latency_max);
        let lag: Vec<PartitionLag> = self
            .lag
            .iter()
            .map(|(partition, lag)| PartitionLag {
                topic: partition.topic.clone(),
                partition: partition.partition,
                lag: *lag,
            })
            .collect();
        MetricsSnapshot {
            uptime_seconds,
            window_seconds,
            orders: Flow {
                total: self.orders_total,
                in_window: figures.orders,
                per_second: figures.orders as f64 / span,
            },
            inventory_events: Flow {
                total: self.inventory_total,
                in_window: figures.inventory_events,
                per_second: figures.inventory_events as f64 / span,
            },
            processed_order_count: decided,
            throughput_per_sec: figures.orders as f64 / span,
            outcomes_total: totals,
            outcomes_in_window: OutcomeCounts::from(figures.outcomes),
            rates: Rates {
                success: ratio(totals.reserved),
                failure: ratio(totals.failed),
                rejection: ratio(totals.rejected),
            },
            latency_seconds: Latency {
                count: figures.latency.iter().sum(),
                p50: quantile(&figures.latency, 0.50, figures.latency_max),
                p95: quantile(&figures.latency, 0.95, figures.latency_max),
                p99: quantile(&figures.latency, 0.99, figures.latency_max),
                max,
            },
            duplicate_events_ignored: self.duplicates,
            dedup_holes_forgotten: self.counted_outcomes.holes_forgotten,
            malformed_records: self.malformed,
            top_items: top,
            lag_total: lag.iter().map(|l| l.lag).sum(),
            lag,
            group: self.group.clone(),
            stuck_partitions: self.stuck.len(),
            stuck: self.stuck.clone(),
            latency_histogram: self.latency_histogram,
            latency_sum: self.latency_sum,
        }
    }
}

/// The bucket bounds, for the Prometheus rendering.
pub fn latency_bounds() -> &'static [f64] {
    &LATENCY_BOUNDS
}

#[cfg(test)]
mod tests {
    use shared::events::{OrderEvent, encode_event};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_top_items_are_the_ten_most_ordered_ties_by_name() {
        let mut metrics = Metrics::new(60, "group");
        let mut offset = 0;
        // item-00 … item-24, item-n ordered (n % 13) + 1 times: several ties.
        for n in 0..25u64 {
            for _ in 0..(n % 13) + 1 {
                let order = OrderEvent::new(
                    Uuid::from_u128(offset as u128),
                    "c",
                    format!("item-{n:02}"),
                    1,
                    1.0,
                    "EUR",
                    chrono::Utc::now(),
                );
                let bytes = encode_event(&order).expect("encode");
                metrics.on_order(1, 0, offset, &bytes);
                offset += 1;
            }
        }
        let top: Vec<(String, u64)> = metrics
            .snapshot(1, 1.0)
            .top_items
            .into_iter()
            .map(|item| (item.item_id, item.orders))
            .collect();
        let expected: Vec<(String, u64)> = [
            (12, 13),
            (11, 12),
            (24, 12),
            (10, 11),
            (23, 11),
            (9, 10),
            (22, 10),
            (8, 9),
            (21, 9),
            (7, 8), // item-20 has 8 too, and sorts after item-07
        ]
        .into_iter()
        .map(|(n, orders)| (format!("item-{n:02}"), orders))
        .collect();
        assert_eq!(top, expected);
    }
}

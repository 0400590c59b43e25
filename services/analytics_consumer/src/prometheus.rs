//! Renders a metrics snapshot in the Prometheus text format 0.0.4.
//!
//! Names follow Prometheus conventions: an `analytics_` prefix, base units (seconds, ratios),
//! `_total` for counters, labels only for bounded dimensions (outcome, topic, partition), and
//! end-to-end latency as a real histogram (`_bucket`/`_sum`/`_count`), which aggregates across
//! instances where a summary would not.

use std::fmt::Write;

use crate::metrics::{MetricsSnapshot, latency_bounds};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "analytics_orders_total",
        "counter",
        "Orders consumed.",
    );
    let _ = writeln!(out, "analytics_orders_total {}", snapshot.orders.total);
    family(
        &mut out,
        "analytics_inventory_events_total",
        "counter",
        "Inventory events consumed: each order's outcome and each restock once.",
    );
    let _ = writeln!(
        out,
        "analytics_inventory_events_total {}",
        snapshot.inventory_events.total
    );
    family(
        &mut out,
        "analytics_outcomes_total",
        "counter",
        "Inventory outcomes by kind.",
    );
    let totals = &snapshot.outcomes_total;
    for (outcome, count) in [
        ("reserved", totals.reserved),
        ("rejected", totals.rejected),
        ("failed", totals.failed),
        ("restocked", totals.restocked),
    ] {
        let _ = writeln!(
            out,
            "analytics_outcomes_total{{outcome=\"{outcome}\"}} {count}"
        );
    }
    family(
        &mut out,
        "analytics_duplicate_events_total",
        "counter",
        "Repeated outcomes (of an order record already answered) and restocks ignored.",
    );
    let _ = writeln!(
        out,
        "analytics_duplicate_events_total {}",
        snapshot.duplicate_events_ignored
    );
    family(
        &mut out,
        "analytics_dedup_holes_forgotten_total",
        "counter",
        "Late outcomes given up on to keep deduplication bounded.",
    );
    let _ = writeln!(
        out,
        "analytics_dedup_holes_forgotten_total {}",
        snapshot.dedup_holes_forgotten
    );
    family(
        &mut out,
        "analytics_malformed_records_total",
        "counter",
        "Records that did not decode.",
    );
    let _ = writeln!(
        out,
        "analytics_malformed_records_total {}",
        snapshot.malformed_records
    );
    family(
        &mut out,
        "analytics_orders_per_second",
        "gauge",
        "Orders per second over the window.",
    );
    let _ = writeln!(
        out,
        "analytics_orders_per_second {}",
        snapshot.orders.per_second
    );
    family(
        &mut out,
        "analytics_inventory_events_per_second",
        "gauge",
        "Inventory events per second over the window.",
    );
    let _ = writeln!(
        out,
        "analytics_inventory_events_per_second {}",
        snapshot.inventory_events.per_second
    );
    family(
        &mut out,
        "analytics_outcome_ratio",
        "gauge",
        "Share of decided orders by result, 0-1.",
    );
    for (result, value) in [
        ("success", snapshot.rates.success),
        ("failure", snapshot.rates.failure),
        ("rejection", snapshot.rates.rejection),
    ] {
        let _ = writeln!(
            out,
            "analytics_outcome_ratio{{result=\"{result}\"}} {value}"
        );
    }
    family(
        &mut out,
        "analytics_end_to_end_latency_seconds",
        "histogram",
        "Inventory processed_at minus order created_at.",
    );
    let mut cumulative = 0u64;
    for (index, count) in snapshot.latency_histogram.iter().enumerate() {
        cumulative += count;
        let le = latency_bounds()
            .get(index)
            .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
        let _ = writeln!(
            out,
            "analytics_end_to_end_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "analytics_end_to_end_latency_seconds_sum {}",
        snapshot.latency_sum
    );
    let _ = writeln!(
        out,
        "analytics_end_to_end_latency_seconds_count {cumulative}"
    );
    family(
        &mut out,
        "analytics_consumer_lag_records",
        "gauge",
        "High watermark minus position.",
    );
    for lag in &snapshot.lag {
        let _ = writeln!(
            out,
            "analytics_consumer_lag_records{{topic=\"{}\",partition=\"{}\"}} {}",
            lag.topic, lag.partition, lag.lag
        );
    }
    family(
        &mut out,
        "analytics_group_rebalances_total",
        "counter",
        "Rebalances this member completed.",
    );
    let _ = writeln!(
        out,
        "analytics_group_rebalances_total {}",
        snapshot.group.rebalances
    );
    family(
        &mut out,
        "analytics_group_generation",
        "gauge",
        "Current group generation.",
    );
    let _ = writeln!(
        out,
        "analytics_group_generation {}",
        snapshot.group.generation
    );
    family(
        &mut out,
        "analytics_uptime_seconds",
        "gauge",
        "Seconds since start.",
    );
    let _ = writeln!(out, "analytics_uptime_seconds {}", snapshot.uptime_seconds);
    out
}

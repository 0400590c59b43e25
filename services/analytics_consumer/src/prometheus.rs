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
        "analytics_stuck_partitions",
        "gauge",
        "This member's partitions paused on a record batch that does not decode.",
    );
    let _ = writeln!(
        out,
        "analytics_stuck_partitions {}",
        snapshot.stuck_partitions
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

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The ripple view's figures (`pipeline` in `/metrics`), appended to [`render`]'s output.
pub fn render_pipeline(figures: &crate::pipeline::PipelineFigures) -> String {
    let mut out = String::with_capacity(2048);
    let producer = &figures.producer;
    family(
        &mut out,
        "analytics_pipeline_producer_actual_rate",
        "gauge",
        "Orders per second arriving in the order topic (end offsets, last second).",
    );
    let _ = writeln!(
        out,
        "analytics_pipeline_producer_actual_rate {}",
        producer.actual_rate
    );
    if let Some(target) = producer.target_rate {
        family(
            &mut out,
            "analytics_pipeline_producer_target_rate",
            "gauge",
            "Orders per second the producer's pacing asks for.",
        );
        let _ = writeln!(out, "analytics_pipeline_producer_target_rate {target}");
    }
    family(
        &mut out,
        "analytics_pipeline_producer_paused",
        "gauge",
        "1 while the producer is paused.",
    );
    let _ = writeln!(
        out,
        "analytics_pipeline_producer_paused {}",
        u8::from(producer.paused)
    );
    family(
        &mut out,
        "analytics_pipeline_producer_acked_total",
        "counter",
        "Orders the running producers had acknowledged (their last status).",
    );
    let _ = writeln!(
        out,
        "analytics_pipeline_producer_acked_total {}",
        producer.acked_total
    );
    let group = &figures.inventory_group;
    family(
        &mut out,
        "analytics_pipeline_inventory_lag_records",
        "gauge",
        "End offset minus the inventory group's committed offset.",
    );
    for lag in &group.lag {
        let _ = writeln!(
            out,
            "analytics_pipeline_inventory_lag_records{{topic=\"{}\",partition=\"{}\"}} {}",
            label(&lag.topic),
            lag.partition,
            lag.lag
        );
    }
    family(
        &mut out,
        "analytics_pipeline_inventory_members",
        "gauge",
        "Members of the inventory group reported by running instances.",
    );
    let _ = writeln!(
        out,
        "analytics_pipeline_inventory_members {}",
        group.members.len()
    );
    family(
        &mut out,
        "analytics_pipeline_inventory_member_partitions",
        "gauge",
        "Partitions assigned to each inventory group member.",
    );
    for member in &group.members {
        let _ = writeln!(
            out,
            "analytics_pipeline_inventory_member_partitions{{member_id=\"{}\"}} {}",
            label(&member.member_id),
            member.partitions.len()
        );
    }
    family(
        &mut out,
        "analytics_pipeline_inventory_rebalances_total",
        "counter",
        "Rebalances seen in the inventory group's status (last 100 kept).",
    );
    let _ = writeln!(
        out,
        "analytics_pipeline_inventory_rebalances_total {}",
        group.rebalances.len()
    );
    family(
        &mut out,
        "analytics_pipeline_inventory_stuck_partitions",
        "gauge",
        "Inventory partitions paused on a record batch that does not decode (members' status).",
    );
    let _ = writeln!(
        out,
        "analytics_pipeline_inventory_stuck_partitions {}",
        group.stuck_partitions
    );
    if let Some(last) = group.rebalances.last() {
        family(
            &mut out,
            "analytics_pipeline_inventory_last_rebalance_pause_seconds",
            "gauge",
            "How long the last rebalance paused processing of the partitions it moved.",
        );
        let _ = writeln!(
            out,
            "analytics_pipeline_inventory_last_rebalance_pause_seconds {}",
            last.paused_ms as f64 / 1000.0
        );
    }
    family(
        &mut out,
        "analytics_pipeline_setting_info",
        "gauge",
        "Effective settings of each service and where each came from (secrets masked).",
    );
    for (service, settings) in &figures.settings {
        let Some(settings) = settings.as_object() else {
            continue;
        };
        for (name, effective) in settings {
            let value = effective
                .get("value")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let source = effective
                .get("source")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "analytics_pipeline_setting_info{{service=\"{}\",name=\"{}\",value=\"{}\",source=\"{}\"}} 1",
                label(service),
                label(name),
                label(value),
                label(source)
            );
        }
    }
    out
}

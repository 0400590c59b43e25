use std::sync::Arc;

use shared::events::{InventoryEvent, InventoryOutcome, OrderEvent, encode_event};
use tokio::sync::watch;
use uuid::Uuid;

use super::*;
use crate::metrics::Metrics;

fn snapshot() -> MetricsSnapshot {
    let mut metrics = Metrics::new(60, "analytics-service");
    let created = chrono::Utc::now();
    for i in 0..4u128 {
        let order = OrderEvent::new(Uuid::from_u128(i), "c", "item-0001", 2, 1.5, "EUR", created);
        metrics.on_order(100, 0, i as i64, &encode_event(&order).expect("encode"));
        let outcome = if i == 3 {
            InventoryOutcome::Rejected
        } else {
            InventoryOutcome::Reserved
        };
        let event = InventoryEvent {
            schema_version: 1,
            event_id: InventoryEvent::event_id_for(order.order_id, outcome),
            order_id: Some(order.order_id),
            item_id: order.item_id.clone(),
            quantity: 2,
            outcome,
            reason: None,
            stock_after: 10,
            attempts: 1,
            order_created_at: Some(created),
            processed_at: created + chrono::Duration::milliseconds(20),
            source_partition: Some(0),
            source_offset: Some(i as i64),
        };
        let bytes = encode_event(&event).expect("encode");
        metrics.on_inventory(100, 0, &bytes);
        metrics.on_inventory(100, 0, &bytes); // a reprocessed duplicate
    }
    metrics.on_order(100, 0, 4, b"{not json");
    metrics.group.state = "Stable".into();
    metrics.group.assigned_partitions = 2;
    metrics
        .lag
        .insert(shared::group::TopicPartition::new("order-events", 0), 5);
    metrics.snapshot(100, 12.5)
}

fn routes_with(
    snapshot: Option<MetricsSnapshot>,
) -> impl warp::Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let (_tx, rx) = watch::channel(snapshot.map(|s| Arc::new(Rendered::new(s))));
    // Keep the sender alive for the routes' lifetime: the receiver still reads the last value.
    std::mem::forget(_tx);
    routes(rx)
}

#[tokio::test]
async fn metrics_json_has_the_documented_fields_and_exact_counts() {
    let routes = routes_with(Some(snapshot()));
    let response = warp::test::request().path("/metrics").reply(&routes).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(response.body()).expect("JSON");
    for field in [
        "uptime_seconds",
        "window_seconds",
        "orders",
        "inventory_events",
        "processed_order_count",
        "throughput_per_sec",
        "outcomes_total",
        "outcomes_in_window",
        "rates",
        "latency_seconds",
        "duplicate_events_ignored",
        "dedup_holes_forgotten",
        "malformed_records",
        "top_items",
        "lag",
        "lag_total",
        "group",
    ] {
        assert!(body.get(field).is_some(), "missing {field}: {body}");
    }
    assert_eq!(body["orders"]["total"], 4);
    assert_eq!(
        body["inventory_events"]["total"], 4,
        "duplicates counted once"
    );
    assert_eq!(body["duplicate_events_ignored"], 4);
    assert_eq!(body["malformed_records"], 1);
    assert_eq!(body["processed_order_count"], 4);
    assert_eq!(body["outcomes_total"]["reserved"], 3);
    assert_eq!(body["rates"]["success"], 0.75);
    assert_eq!(body["rates"]["rejection"], 0.25);
    assert_eq!(body["latency_seconds"]["max"], 0.02);
    assert_eq!(body["top_items"][0]["item_id"], "item-0001");
    assert_eq!(body["lag_total"], 5);
    assert_eq!(body["group"]["group_id"], "analytics-service");
}

#[tokio::test]
async fn prometheus_text_is_served_on_request_and_parses() {
    let routes = routes_with(Some(snapshot()));
    for request in [
        warp::test::request()
            .path("/metrics")
            .header("accept", "text/plain;version=0.0.4"),
        warp::test::request().path("/metrics/prometheus"),
    ] {
        let response = request.reply(&routes).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], prometheus::CONTENT_TYPE);
        let text = std::str::from_utf8(response.body()).expect("UTF-8");
        assert!(text.ends_with('\n'));
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let name = parts.next().expect("name");
                let kind = parts.next().expect("kind");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                if kind == "counter" {
                    assert!(
                        name.ends_with("_total"),
                        "counter {name} must end in _total"
                    );
                }
                typed.insert(name.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("series value");
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value in {line}"));
            let name = series.split('{').next().expect("name");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|base| typed.contains(*base))
                })
                .unwrap_or(name);
            assert!(typed.contains(family), "{name} has no TYPE line before it");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
        }
        assert!(text.contains("analytics_outcomes_total{outcome=\"reserved\"} 3"));
        assert!(text.contains("analytics_end_to_end_latency_seconds_bucket{le=\"+Inf\"} 4"));
        assert!(text.contains("analytics_end_to_end_latency_seconds_count 4"));
    }
}

#[tokio::test]
async fn health_readiness_and_dashboard() {
    let routes = routes_with(Some(snapshot()));
    let health = warp::test::request().path("/healthz").reply(&routes).await;
    assert_eq!(health.status(), 200);
    let ready = warp::test::request().path("/readyz").reply(&routes).await;
    assert_eq!(ready.status(), 200);
    let page = warp::test::request().path("/").reply(&routes).await;
    assert_eq!(page.status(), 200);
    let html = std::str::from_utf8(page.body()).expect("UTF-8");
    assert!(
        html.contains("<canvas") && !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );

    let empty = routes_with(None);
    assert_eq!(
        warp::test::request()
            .path("/readyz")
            .reply(&empty)
            .await
            .status(),
        503
    );
    assert_eq!(
        warp::test::request()
            .path("/metrics")
            .reply(&empty)
            .await
            .status(),
        503
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let routes = routes_with(Some(snapshot()));
    let missing = warp::test::request().path("/nope").reply(&routes).await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = serde_json::from_slice(missing.body()).expect("JSON");
    assert_eq!(body["error"], "not found");
    let wrong = warp::test::request()
        .method("POST")
        .path("/metrics")
        .reply(&routes)
        .await;
    assert_eq!(wrong.status(), 405);
    let body: serde_json::Value = serde_json::from_slice(wrong.body()).expect("JSON");
    assert_eq!(body["error"], "method not allowed");
}

//! analytics-consumer as a process against a real broker: totals reconcile exactly with what
//! was produced (repeated event ids counted once), it becomes ready, `healthcheck` works, and
//! a restarted static member keeps its partitions and generation.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::broker::free_port;
use integration_tests::{shared_broker, unique_name, workspace_root};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::events::{InventoryEvent, InventoryOutcome, OrderEvent, encode_event};
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_analytics-consumer");
const LIMIT: Duration = Duration::from_secs(60);

struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn start(env: &[(&str, String)], port: u16) -> Self {
        let child = Command::new(BINARY)
            .current_dir(workspace_root())
            .env_clear()
            .env("HTTP_HOST", "127.0.0.1")
            .env("HTTP_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("analytics starts");
        Self { child, port }
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n")?.1.to_owned();
        Some((status, body))
    }

    /// Polls /metrics until `done` holds (the snapshot refreshes every second).
    async fn metrics_until(&self, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.json_until("/metrics", done).await
    }

    async fn json_until(
        &self,
        path: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            if let Some((200, body)) = self.get(path)
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(&body)
                && done(&value)
            {
                return value;
            }
            assert!(
                started.elapsed() < LIMIT,
                "metrics never satisfied the condition"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

async fn produce(topic: &str, partition: i32, values: Vec<Vec<u8>>) {
    let client = shared::connect::data_client(&shared_broker().connection_settings("t"), LIMIT)
        .await
        .expect("client");
    let partition = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition");
    let records = values
        .into_iter()
        .map(|value| Record {
            key: None,
            value: Some(value),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        })
        .collect();
    partition
        .produce(records, Compression::NoCompression)
        .await
        .expect("produce");
}

fn order_bytes(n: u128) -> Vec<u8> {
    let order = OrderEvent::new(
        Uuid::from_u128(n),
        "c",
        format!("item-{}", n % 5),
        1,
        2.0,
        "EUR",
        chrono::Utc::now(),
    );
    encode_event(&order).expect("encode")
}

/// A headless Chromium loads the dashboard while orders flow and runs its script: the
/// charts must have been drawn with non-zero data.
#[tokio::test]
async fn the_dashboard_draws_its_charts_with_live_data_in_a_real_browser() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Debian's chromium is needed for this test (scripts/test.sh installs it)");
    let orders_topic = unique_name("dash-orders");
    let inventory_topic = unique_name("dash-inventory");
    TopicAdmin::connect(&shared_broker().connection_settings("t"), LIMIT)
        .await
        .expect("admin")
        .create_topics(&[
            TopicSpec::new(&orders_topic, 1, 1),
            TopicSpec::new(&inventory_topic, 1, 1),
        ])
        .await
        .expect("topics");
    let port = free_port();
    let service = Service::start(
        &[
            ("BOOTSTRAP_SERVERS", shared_broker().bootstrap()),
            ("ORDER_TOPIC", orders_topic.clone()),
            ("INVENTORY_TOPIC", inventory_topic),
            ("GROUP_ID", unique_name("dash")),
            ("REPORT_INTERVAL_SEC", "1".to_owned()),
        ],
        port,
    );
    let flowing_topic = orders_topic.clone();
    let flow = tokio::spawn(async move {
        for round in 0..200u128 {
            produce(
                &flowing_topic,
                0,
                (0..20).map(|i| order_bytes(round * 20 + i + 1)).collect(),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    service
        .metrics_until(|m| m["orders"]["per_second"].as_f64().unwrap_or(0.0) > 0.0)
        .await;
    // The throughput chart plots the produced rate that the ripple view samples into its
    // history once a second: wait until the history holds a sample of it.
    service
        .json_until("/history", |h| {
            h["samples"].as_array().is_some_and(|samples| {
                samples
                    .iter()
                    .any(|s| s["produced"].as_f64().unwrap_or(0.0) > 0.0)
            })
        })
        .await;

    let page = format!("http://127.0.0.1:{port}/");
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=4000",
            "--dump-dom",
        ])
        .arg(&page)
        .output()
        .expect("chromium runs");
    flow.abort();
    service.stop();
    let dom = String::from_utf8_lossy(&output.stdout);
    let attribute = |element: &str, name: &str| -> Option<f64> {
        let start = dom.find(&format!("id=\"{element}\""))?;
        let tag_start = dom[..start].rfind('<')?;
        let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>')?];
        let value_start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        tag[value_start..].split('"').next()?.parse().ok()
    };
    let refreshes: f64 = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        refreshes >= 1.0,
        "the page fetched /metrics and drew: {dom}"
    );
    let points = attribute("throughput-chart", "data-points").expect("throughput chart drawn");
    let max = attribute("throughput-chart", "data-max").expect("throughput chart drawn");
    assert!(points >= 1.0, "points plotted");
    assert!(max > 1e-6, "non-zero throughput plotted ({max})");
    let status = dom
        .split("id=\"status\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("");
    assert!(!status.contains("cannot reach"), "{status}");
}

#[tokio::test]
async fn totals_reconcile_readiness_healthcheck_and_a_static_restart_keeps_the_generation() {
    let orders_topic = unique_name("orders");
    let inventory_topic = unique_name("inventory");
    TopicAdmin::connect(&shared_broker().connection_settings("t"), LIMIT)
        .await
        .expect("admin")
        .create_topics(&[
            TopicSpec::new(&orders_topic, 2, 1),
            TopicSpec::new(&inventory_topic, 2, 1),
        ])
        .await
        .expect("topics");
    let env = vec![
        ("BOOTSTRAP_SERVERS", shared_broker().bootstrap()),
        ("ORDER_TOPIC", orders_topic.clone()),
        ("INVENTORY_TOPIC", inventory_topic.clone()),
        ("GROUP_ID", unique_name("analytics")),
        ("GROUP_INSTANCE_ID", "analytics-test-1".to_owned()),
        ("REPORT_INTERVAL_SEC", "1".to_owned()),
    ];
    let port = free_port();
    let service = Service::start(&env, port);

    // 100 orders, 100 outcomes, 20 of them delivered twice (as after a crash), 1 garbage record.
    let created = chrono::Utc::now();
    let mut orders = Vec::new();
    let mut outcomes = Vec::new();
    for i in 0..100u128 {
        let order = OrderEvent::new(
            Uuid::from_u128(i + 1),
            "c",
            format!("item-{}", i % 5),
            1,
            2.0,
            "EUR",
            created,
        );
        orders.push(encode_event(&order).expect("encode"));
        let outcome = match i % 10 {
            0 => InventoryOutcome::Failed,
            1 | 2 => InventoryOutcome::Rejected,
            _ => InventoryOutcome::Reserved,
        };
        let event = InventoryEvent {
            schema_version: 1,
            event_id: InventoryEvent::event_id_for(order.order_id, outcome),
            order_id: Some(order.order_id),
            item_id: order.item_id.clone(),
            quantity: 1,
            outcome,
            reason: None,
            stock_after: 0,
            attempts: 1,
            order_created_at: Some(created),
            processed_at: created + chrono::Duration::milliseconds(15),
            source_partition: Some(0),
            source_offset: Some(i as i64),
        };
        outcomes.push(encode_event(&event).expect("encode"));
    }
    let repeated: Vec<Vec<u8>> = outcomes[..20].to_vec();
    produce(&orders_topic, 0, orders[..50].to_vec()).await;
    produce(&orders_topic, 1, orders[50..].to_vec()).await;
    produce(&inventory_topic, 0, outcomes).await;
    produce(&inventory_topic, 1, repeated).await;
    produce(&orders_topic, 1, vec![b"garbage".to_vec()]).await;

    let metrics = service
        .metrics_until(|m| {
            m["orders"]["total"] == 100
                && m["inventory_events"]["total"] == 100
                && m["lag_total"] == 0
        })
        .await;
    assert_eq!(metrics["duplicate_events_ignored"], 20);
    assert_eq!(metrics["malformed_records"], 1);
    assert_eq!(metrics["outcomes_total"]["reserved"], 70);
    assert_eq!(metrics["outcomes_total"]["rejected"], 20);
    assert_eq!(metrics["outcomes_total"]["failed"], 10);
    assert_eq!(metrics["rates"]["success"], 0.7);
    assert_eq!(metrics["group"]["instance_id"], "analytics-test-1");
    assert_eq!(metrics["group"]["assigned_partitions"], 4);
    let generation = metrics["group"]["generation"].clone();

    assert_eq!(service.get("/readyz").map(|(status, _)| status), Some(200));
    let health = Command::new(BINARY)
        .arg("healthcheck")
        .current_dir(workspace_root())
        .env_clear()
        .env("HTTP_PORT", port.to_string())
        .output()
        .expect("healthcheck runs");
    assert_eq!(
        health.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );

    // A static member restarting within the session timeout: same partitions, same generation.
    service.stop();
    let restarted = Service::start(&env, port);
    let after = restarted
        .metrics_until(|m| {
            m["group"]["state"] == "Stable" && m["group"]["assigned_partitions"] == 4
        })
        .await;
    assert_eq!(after["group"]["generation"], generation, "no rebalance");
    restarted.stop();

    let down = Command::new(BINARY)
        .arg("healthcheck")
        .current_dir(workspace_root())
        .env_clear()
        .env("HTTP_PORT", port.to_string())
        .output()
        .expect("healthcheck runs");
    assert_eq!(down.status.code(), Some(1), "nothing listens any more");
}

//! producer-order against a real broker: every order lands, decodes and sits on the partition
//! the Java client would choose; a broker outage mid-run is retried and every order is
//! accounted for.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use integration_tests::broker::Storage;
use integration_tests::{TestBroker, shared_broker, unique_name, workspace_root};
use rskafka::client::partition::UnknownTopicHandling;
use shared::events::decode_order;
use shared::producer::partitioner::partition_for_key;

const BINARY: &str = env!("CARGO_BIN_EXE_producer-order");

fn producer(bootstrap: &str, topic: &str, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(workspace_root())
        .env_clear()
        .env("BOOTSTRAP_SERVERS", bootstrap)
        .env("ORDER_TOPIC", topic)
        .env("CREATE_TOPICS", "1")
        .env("TOPIC_PARTITIONS", "6")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .envs(extra.iter().copied());
    command
}

/// Starts the producer in the background with its output captured for the summary.
fn spawn_producer(bootstrap: &str, topic: &str, extra: &[(&str, &str)]) -> std::process::Child {
    producer(bootstrap, topic, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("producer starts")
}

fn summary(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"summary\""))
        .unwrap_or_else(|| {
            panic!(
                "no summary; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    serde_json::from_str(line).expect("the summary is one JSON object")
}

/// Every record of the topic, as (partition, key, value, headers).
async fn read_all(broker: &TestBroker, topic: &str) -> Vec<(i32, Vec<u8>, Vec<u8>, Vec<String>)> {
    let client = shared::connect::data_client(
        &broker.connection_settings("reader"),
        Duration::from_secs(30),
    )
    .await
    .expect("client");
    let mut all = Vec::new();
    for partition in 0..6 {
        let partition_client = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let mut offset = 0;
        loop {
            let (records, high_watermark) = partition_client
                .fetch_records(offset, 1..10_000_000, 100)
                .await
                .expect("fetch");
            let start = offset;
            for r in records.into_iter().filter(|r| r.offset >= start) {
                offset = r.offset + 1;
                all.push((
                    partition,
                    r.record.key.unwrap_or_default(),
                    r.record.value.unwrap_or_default(),
                    r.record.headers.keys().cloned().collect(),
                ));
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    all
}

/// Waits until partition 0 of `topic` holds more than `records` records (the producer runs).
async fn wait_until_flowing(broker: &TestBroker, topic: &str, records: i64) {
    let client = shared::connect::data_client(
        &broker.connection_settings("watcher"),
        Duration::from_secs(30),
    )
    .await
    .expect("client");
    loop {
        if client
            .list_topics()
            .await
            .expect("topics")
            .iter()
            .any(|t| t.name == topic)
        {
            let partition = client
                .partition_client(topic, 0, UnknownTopicHandling::Retry)
                .await
                .expect("partition client");
            let end = partition
                .get_offset(rskafka::client::partition::OffsetAt::Latest)
                .await
                .unwrap_or(0);
            if end > records {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ten_thousand_orders_are_all_acknowledged_decodable_and_on_their_java_partition() {
    let broker = shared_broker();
    let topic = unique_name("orders");
    let output = producer(
        &broker.bootstrap(),
        &topic,
        &[("TOTAL_EVENTS", "10000"), ("BURST_SIZE", "10000")],
    )
    .output()
    .expect("producer runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = summary(&output);
    assert_eq!(summary["sent"], 10000);
    assert_eq!(summary["acknowledged"], 10000);
    assert_eq!(summary["failed"], 0);

    let records = read_all(broker, &topic).await;
    assert_eq!(records.len(), 10000, "exactly 10000 records on the topic");
    let mut order_ids = BTreeSet::new();
    for (partition, key, value, headers) in &records {
        let order = decode_order(value).expect("each record is an OrderEvent");
        assert_eq!(key, order.item_id.as_bytes(), "key = item_id");
        assert_eq!(
            *partition,
            partition_for_key(key, 6),
            "Java partition of {}",
            order.item_id
        );
        assert_eq!(
            headers,
            &vec!["event-type".to_owned(), "schema-version".to_owned()]
        );
        order_ids.insert(order.order_id);
    }
    assert_eq!(order_ids.len(), 10000, "no order twice");
}

#[tokio::test]
async fn a_broker_outage_mid_run_is_retried_and_every_order_accounted_for() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut broker = TestBroker::start(Storage::Durable(data.path().to_path_buf()));
    let topic = unique_name("outage");
    let child = spawn_producer(
        &broker.bootstrap(),
        &topic,
        &[
            ("MODE", "steady"),
            ("RATE_PER_SEC", "2000"),
            ("TOTAL_EVENTS", "12000"),
            ("DELIVERY_TIMEOUT_MS", "60000"),
        ],
    );

    // Wait until orders are flowing, then take the broker away for a while.
    wait_until_flowing(&broker, &topic, 100).await;
    broker.stop();
    // The outage itself is the scenario: orders keep being generated while nothing answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart();

    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("producer exits");
    let summary = summary(&output);
    let sent = summary["sent"].as_u64().expect("sent");
    let acknowledged = summary["acknowledged"].as_u64().expect("acknowledged");
    let failed = summary["failed"].as_u64().expect("failed");
    assert_eq!(sent, 12000, "every order was generated");
    assert_eq!(acknowledged + failed, sent, "every order is accounted for");
    if output.status.code() == Some(0) {
        assert_eq!(acknowledged, 12000);
    } else {
        assert_eq!(output.status.code(), Some(1));
        assert!(failed > 0);
    }
    let records = read_all(&broker, &topic).await;
    let order_ids: BTreeSet<_> = records
        .iter()
        .map(|(_, _, value, _)| decode_order(value).expect("decodes").order_id)
        .collect();
    assert!(
        order_ids.len() as u64 >= acknowledged,
        "every acknowledged order is on the topic ({} unique of {acknowledged})",
        order_ids.len()
    );
}

#[tokio::test]
async fn sigterm_stops_generating_flushes_and_summarises_exact_counts() {
    let broker = shared_broker();
    let topic = unique_name("sigterm");
    let child = spawn_producer(
        &broker.bootstrap(),
        &topic,
        &[
            ("MODE", "steady"),
            ("RATE_PER_SEC", "2000"),
            ("TOTAL_EVENTS", "0"),
        ],
    );

    wait_until_flowing(broker, &topic, 50).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("producer exits");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = summary(&output);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["failed"], 0);
    assert_eq!(
        summary["acknowledged"], summary["sent"],
        "everything sent was flushed"
    );
    let on_topic = read_all(broker, &topic).await.len() as u64;
    assert_eq!(
        Some(on_topic),
        summary["acknowledged"].as_u64(),
        "the summary counts what is on the topic"
    );
}

//! producer-order through a proxy that loses 5% of its Produce answers after the broker wrote
//! the batch: with idempotence every order is in the topic exactly once and in each key's send
//! order; without it the retries show as duplicates, which proves the check can fail.
//!
//! The same for our producer library through reset connections, late answers and a black hole.
//!
//! Send order comes from a reference run: the generator is seeded, so the same settings
//! without faults write the same orders in the same per-key order to another topic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use integration_tests::broker::Storage;
use integration_tests::pipeline::{Service, exclusive, service_binary};
use integration_tests::proxy::{Action, Fault, ProxiedBroker, api};
use integration_tests::{unique_name, workspace_root};
use shared::admin::{TopicAdmin, TopicSpec};
use shared::producer::{Delivery, OutgoingRecord, Producer, ProducerConfig};
use shared::settings::ConnectionSettings;

const ORDERS: usize = 20_000;
const PARTITIONS: i32 = 6;
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);

/// The producer's client id (its service name); the verifying reader uses another.
const PRODUCER_CLIENT: &str = "producer-order";

/// Per key (item id), the order ids in partition order.
type KeySequences = BTreeMap<String, Vec<String>>;

struct TopicContents {
    records: usize,
    distinct_orders: usize,
    per_key: KeySequences,
    /// Which order sits at each (partition, offset).
    at: HashMap<(i32, i64), String>,
}

async fn create_topic(broker: &ProxiedBroker, prefix: &str) -> String {
    let topic = unique_name(prefix);
    TopicAdmin::connect(&reader_settings(broker), CLIENT_DEADLINE)
        .await
        .expect("admin connects through the proxy")
        .create_topics(&[TopicSpec::new(&topic, PARTITIONS, 1)])
        .await
        .expect("topic created");
    topic
}

fn reader_settings(broker: &ProxiedBroker) -> ConnectionSettings {
    ConnectionSettings::plaintext(vec![broker.bootstrap()], "lossy-test-reader")
}

/// Runs producer-order to completion and returns its summary line.
async fn produce_orders(broker: &ProxiedBroker, topic: &str, idempotence: bool) -> String {
    let output = tokio::process::Command::new(service_binary(Service::Producer))
        .current_dir(workspace_root())
        .env_clear()
        .env(
            "ENV_FILE",
            workspace_root().join("services/producer_order/producer.env"),
        )
        .envs([
            ("BOOTSTRAP_SERVERS", broker.bootstrap().as_str()),
            ("ORDER_TOPIC", topic),
            ("MODE", "burst"),
            ("TOTAL_EVENTS", &ORDERS.to_string()),
            ("BURST_SIZE", "2000"),
            ("SLEEP_MS", "0"),
            ("SEED", "1515"),
            // Small batches: many produce requests, so 5% of them is a real number.
            ("BATCH_MAX_BYTES", "8192"),
            ("REQUEST_TIMEOUT_MS", "1000"),
            ("ENABLE_IDEMPOTENCE", if idempotence { "1" } else { "0" }),
            ("RUST_LOG", "warn"),
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("producer-order runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "producer-order failed ({}):\n{stdout}\n{}\nbroker log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        broker.log()
    );
    stdout
        .lines()
        .find(|line| line.starts_with("producer-order summary:"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"))
        .to_owned()
}

/// Reads every partition from the start to its high watermark, as a peer would.
async fn read_topic(broker: &ProxiedBroker, topic: &str) -> TopicContents {
    let all = integration_tests::topic::read_all(&reader_settings(broker), topic, PARTITIONS).await;
    let records = all.len();
    let mut per_key = KeySequences::new();
    let mut distinct = HashSet::new();
    let mut at = HashMap::new();
    for (partition, record) in all {
        let value: serde_json::Value =
            serde_json::from_slice(record.record.value.as_deref().unwrap_or_default())
                .expect("an order event");
        let order_id = value["order_id"].as_str().unwrap_or_default().to_owned();
        let key =
            String::from_utf8_lossy(record.record.key.as_deref().unwrap_or_default()).into_owned();
        distinct.insert(order_id.clone());
        at.insert((partition, record.offset), order_id.clone());
        per_key.entry(key).or_default().push(order_id);
    }
    TopicContents {
        records,
        distinct_orders: distinct.len(),
        per_key,
        at,
    }
}

/// Each key's sequence with repeats removed (a retried batch lands again later).
fn first_occurrences(per_key: &KeySequences) -> KeySequences {
    per_key
        .iter()
        .map(|(key, orders)| {
            let mut seen = HashSet::new();
            let unique = orders.iter().filter(|o| seen.insert(*o)).cloned().collect();
            (key.clone(), unique)
        })
        .collect()
}

fn lose_produce_answers(broker: &ProxiedBroker) {
    broker.proxy.inject(Fault {
        api_key: api::PRODUCE,
        client_prefix: PRODUCER_CLIENT.into(),
        rate: 0.05,
        action: Action::LoseResponse,
    });
}

/// Reference run, then the lossy run; returns both topics' contents and the lossy summary.
async fn reference_and_lossy_runs(
    storage: Storage,
    idempotence: bool,
) -> (TopicContents, TopicContents, String, u64) {
    let broker = ProxiedBroker::start(storage);
    let reference_topic = create_topic(&broker, "lossy-reference").await;
    let lossy_topic = create_topic(&broker, "lossy").await;
    produce_orders(&broker, &reference_topic, idempotence).await;
    lose_produce_answers(&broker);
    let summary = produce_orders(&broker, &lossy_topic, idempotence).await;
    let lost = broker.proxy.counts().lost;
    broker.proxy.heal();
    let reference = read_topic(&broker, &reference_topic).await;
    let lossy = read_topic(&broker, &lossy_topic).await;
    eprintln!(
        "idempotence {idempotence}: {lost} produce answers lost; topic holds {} records, {} distinct orders; {summary}",
        lossy.records, lossy.distinct_orders
    );
    (reference, lossy, summary, lost)
}

fn assert_exactly_once_in_key_order(
    reference: &TopicContents,
    lossy: &TopicContents,
    summary: &str,
    lost: u64,
) {
    assert!(lost >= 5, "the proxy lost only {lost} produce answers");
    assert_eq!(reference.records, ORDERS, "the reference run is complete");
    assert_eq!(reference.distinct_orders, ORDERS);
    assert_eq!(
        lossy.records, ORDERS,
        "every order exactly once although {lost} answers were lost"
    );
    assert_eq!(lossy.distinct_orders, ORDERS);
    assert_eq!(
        lossy.per_key, reference.per_key,
        "each key's orders in send order"
    );
    assert!(
        summary.starts_with(&format!(
            "producer-order summary: sent={ORDERS} acknowledged={ORDERS} failed=0 "
        )),
        "{summary}"
    );
}

#[tokio::test]
async fn idempotent_producer_writes_each_order_once_while_produce_answers_are_lost() {
    let _one_at_a_time = exclusive().await;
    let (reference, lossy, summary, lost) = reference_and_lossy_runs(Storage::Memory, true).await;
    assert_exactly_once_in_key_order(&reference, &lossy, &summary, lost);
}

#[tokio::test]
async fn idempotent_producer_writes_each_order_once_on_sqlite_storage_too() {
    // Nisshi's SQL engines answer a resent batch with DUPLICATE_SEQUENCE_NUMBER, not its offset.
    let _one_at_a_time = exclusive().await;
    let data = tempfile::tempdir().expect("a data folder");
    let (reference, lossy, summary, lost) =
        reference_and_lossy_runs(Storage::Durable(data.path().to_path_buf()), true).await;
    assert_exactly_once_in_key_order(&reference, &lossy, &summary, lost);
}

#[tokio::test]
async fn without_idempotence_lost_answers_become_duplicates() {
    let _one_at_a_time = exclusive().await;
    let (reference, lossy, summary, lost) = reference_and_lossy_runs(Storage::Memory, false).await;
    assert!(lost >= 5, "the proxy lost only {lost} produce answers");
    assert_eq!(
        lossy.distinct_orders, ORDERS,
        "no order is missing: {summary}"
    );
    assert!(
        lossy.records > ORDERS,
        "{lost} lost answers were retried, yet the topic holds no duplicate ({} records)",
        lossy.records
    );
    // One request in flight per partition: a retry lands right after its first copy, so the
    // first occurrences still follow the send order.
    assert_eq!(first_occurrences(&lossy.per_key), reference.per_key);
}

/// Our producer library itself, keyed records carrying their send index, through resets,
/// delayed answers and a black hole: every record once, each key in send order, and each
/// delivery result naming the offset its record really has.
async fn produce_numbered(broker: &ProxiedBroker, topic: &str, count: usize) -> Vec<Delivery> {
    let settings = ConnectionSettings::plaintext(vec![broker.bootstrap()], "lossy-library");
    let config = ProducerConfig {
        // About 30 records a batch: some 28 batches a partition; as a request carries a batch
        // of every partition, some 50 requests.
        batch_max_bytes: 1024,
        request_timeout: Duration::from_millis(800),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(&settings, topic, config, CLIENT_DEADLINE)
        .await
        .expect("producer");
    let records = (0..count)
        .map(|i| OutgoingRecord {
            key: Some(format!("key-{}", i % 10).into_bytes()),
            value: format!("{{\"order_id\":\"{i:06}\"}}").into_bytes(),
            headers: Vec::new(),
            timestamp: chrono::Utc::now(),
            partition: None,
        })
        .collect();
    let tickets = producer.send_all(records).await.expect("queued");
    let mut deliveries = Vec::with_capacity(count);
    for ticket in tickets {
        deliveries.push(ticket.delivered().await.expect("acknowledged"));
    }
    deliveries
}

/// Every delivery with an offset points at its own record; returns how many had none
/// (answered DUPLICATE_SEQUENCE_NUMBER).
fn assert_deliveries_exact(deliveries: &[Delivery], contents: &TopicContents) -> usize {
    let mut without_offset = 0;
    for (index, delivery) in deliveries.iter().enumerate() {
        match delivery.offset {
            Some(offset) => assert_eq!(
                contents.at.get(&(delivery.partition, offset)),
                Some(&format!("{index:06}")),
                "record {index}'s delivery names {}@{offset}",
                delivery.partition
            ),
            None => without_offset += 1,
        }
    }
    without_offset
}

fn assert_each_key_in_send_order(contents: &TopicContents, count: usize) {
    assert_eq!(contents.records, count, "no record twice");
    assert_eq!(contents.distinct_orders, count, "no record missing");
    for (key, indexes) in &contents.per_key {
        assert!(
            indexes.windows(2).all(|pair| pair[0] < pair[1]),
            "{key} out of send order"
        );
    }
}

async fn resets_and_late_answers(storage: Storage) {
    let broker = ProxiedBroker::start(storage);
    let topic = create_topic(&broker, "lossy-reset").await;
    for action in [
        Action::Reset,
        // Later than the request time-out: the answer arrives after the producer gave up.
        Action::Delay(Duration::from_millis(1200)),
        Action::Delay(Duration::from_millis(100)),
    ] {
        broker.proxy.inject(Fault {
            api_key: api::PRODUCE,
            client_prefix: "lossy-library".into(),
            rate: 0.04,
            action,
        });
    }
    let deliveries = produce_numbered(&broker, &topic, 5000).await;
    let counts = broker.proxy.counts();
    broker.proxy.heal();
    assert!(counts.reset > 0 && counts.delayed > 0, "{counts:?}");
    let contents = read_topic(&broker, &topic).await;
    assert_each_key_in_send_order(&contents, 5000);
    let without_offset = assert_deliveries_exact(&deliveries, &contents);
    eprintln!("{counts:?}; {without_offset} deliveries without an offset");
}

#[tokio::test]
async fn reset_connections_and_late_answers_neither_duplicate_nor_reorder() {
    let _one_at_a_time = exclusive().await;
    resets_and_late_answers(Storage::Memory).await;
}

#[tokio::test]
async fn reset_connections_and_late_answers_on_sqlite_storage() {
    let _one_at_a_time = exclusive().await;
    let data = tempfile::tempdir().expect("a data folder");
    resets_and_late_answers(Storage::Durable(data.path().to_path_buf())).await;
}

async fn black_holed(storage: Storage) {
    let broker = ProxiedBroker::start(storage);
    let topic = create_topic(&broker, "lossy-black-hole").await;
    broker.proxy.inject(Fault {
        api_key: api::PRODUCE,
        client_prefix: "lossy-library".into(),
        // Of some 50 requests (see `produce_numbered`), a few.
        rate: 0.1,
        action: Action::BlackHole(Duration::from_secs(1)),
    });
    let deliveries = produce_numbered(&broker, &topic, 5000).await;
    let counts = broker.proxy.counts();
    broker.proxy.heal();
    assert!(counts.black_holed > 0, "{counts:?}");
    let contents = read_topic(&broker, &topic).await;
    assert_each_key_in_send_order(&contents, 5000);
    assert_deliveries_exact(&deliveries, &contents);
}

#[tokio::test]
async fn a_black_holed_broker_delays_delivery_but_loses_and_doubles_nothing() {
    let _one_at_a_time = exclusive().await;
    black_holed(Storage::Memory).await;
}

#[tokio::test]
async fn a_black_holed_broker_loses_and_doubles_nothing_on_sqlite_storage() {
    let _one_at_a_time = exclusive().await;
    let data = tempfile::tempdir().expect("a data folder");
    black_holed(Storage::Durable(data.path().to_path_buf())).await;
}

#[tokio::test]
async fn batches_that_time_out_unanswered_fail_and_the_producer_carries_on_under_a_new_epoch() {
    let _one_at_a_time = exclusive().await;
    new_epoch_after_timeouts(Storage::Memory).await;
}

#[tokio::test]
async fn batches_that_time_out_unanswered_fail_and_a_new_epoch_follows_on_sqlite_storage() {
    let _one_at_a_time = exclusive().await;
    let data = tempfile::tempdir().expect("a data folder");
    new_epoch_after_timeouts(Storage::Durable(data.path().to_path_buf())).await;
}

async fn new_epoch_after_timeouts(storage: Storage) {
    // A failed batch the broker may hold leaves a sequence gap: the producer takes a new
    // identity (an epoch bump, KIP-360) so later batches start again at sequence 0 instead of
    // being refused as out of order.
    let broker = ProxiedBroker::start(storage);
    let topic = create_topic(&broker, "lossy-epoch").await;
    broker.proxy.inject(Fault {
        api_key: api::PRODUCE,
        client_prefix: "lossy-epoch".into(),
        rate: 1.0,
        action: Action::BlackHole(Duration::from_secs(30)),
    });
    let settings = ConnectionSettings::plaintext(vec![broker.bootstrap()], "lossy-epoch");
    let config = ProducerConfig {
        request_timeout: Duration::from_millis(300),
        delivery_timeout: Duration::from_millis(1500),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(&settings, &topic, config, CLIENT_DEADLINE)
        .await
        .expect("producer");
    let first_identity = producer.stats().identity;
    assert!(first_identity.is_some(), "idempotent by default");
    let record = |i: usize| OutgoingRecord {
        key: Some(format!("key-{}", i % 10).into_bytes()),
        value: format!("{{\"order_id\":\"{i:06}\"}}").into_bytes(),
        headers: Vec::new(),
        timestamp: chrono::Utc::now(),
        partition: None,
    };
    let lost = producer
        .send_all((0..100).map(record).collect())
        .await
        .expect("queued");
    for ticket in lost {
        assert!(
            ticket.delivered().await.is_err(),
            "nothing reached the broker, so nothing may be acknowledged"
        );
    }
    broker.proxy.heal();
    let later = producer
        .send_all((100..200).map(record).collect())
        .await
        .expect("queued");
    let mut deliveries = Vec::new();
    for ticket in later {
        deliveries.push(
            ticket
                .delivered()
                .await
                .expect("delivered after the network healed"),
        );
    }
    let contents = read_topic(&broker, &topic).await;
    assert_eq!(
        contents.records, 100,
        "only the later records are in the topic"
    );
    for (index, delivery) in deliveries.iter().enumerate() {
        // Not retries, so every answer carries an offset on either storage.
        let offset = delivery.offset.expect("a first write answers its offset");
        assert_eq!(
            contents.at.get(&(delivery.partition, offset)),
            Some(&format!("{:06}", index + 100))
        );
    }
    let stats = producer.stats();
    assert_eq!(stats.failed, 100);
    assert!(stats.identity_changes >= 1, "{stats:?}");
    // We ask to bump the epoch (InitProducerId v4 with our id and epoch, KIP-360); Kafka
    // answers the same id at epoch + 1, Nisshi 0.8.1 a new id at epoch 0 for a producer
    // without transactional.id. Either way the identity is a new one.
    assert_ne!(stats.identity, first_identity, "{stats:?}");
}

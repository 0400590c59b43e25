//! The shared producer on many partitions, through the fault proxy: one connection to the
//! broker carries every partition, a request a batch of each, so 96 partitions' batches take a
//! handful of Produce requests, not one request (and connection) per partition. And when that
//! one connection is reset mid-run, every partition's batches on it come back and are resent
//! without a record lost, doubled or reordered.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::broker::Storage;
use integration_tests::pipeline::exclusive;
use integration_tests::proxy::{Action, Fault, ProxiedBroker, api};
use integration_tests::unique_name;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::producer::{Delivery, OutgoingRecord, Producer, ProducerConfig};
use shared::settings::ConnectionSettings;

const PARTITIONS: i32 = 96;
const DEADLINE: Duration = Duration::from_secs(30);
const CLIENT: &str = "many-partitions";

async fn topic(broker: &ProxiedBroker) -> String {
    let topic = unique_name("many-partitions");
    TopicAdmin::connect(&settings(broker, "admin"), DEADLINE)
        .await
        .expect("admin connects through the proxy")
        .create_topics(&[TopicSpec::new(&topic, PARTITIONS, 1)])
        .await
        .expect("topic created");
    topic
}

fn settings(broker: &ProxiedBroker, client: &str) -> ConnectionSettings {
    ConnectionSettings::plaintext(vec![broker.bootstrap()], client)
}

/// `per_partition` records for each partition, numbered in send order within it.
fn numbered(per_partition: usize) -> Vec<OutgoingRecord> {
    (0..per_partition)
        .flat_map(|n| {
            (0..PARTITIONS).map(move |partition| OutgoingRecord {
                key: None,
                value: format!("{partition}:{n:06}").into_bytes(),
                headers: Vec::new(),
                timestamp: chrono::Utc::now(),
                partition: Some(partition),
            })
        })
        .collect()
}

async fn send_and_wait(producer: &Producer, records: Vec<OutgoingRecord>) -> Vec<Delivery> {
    let tickets = producer.send_all(records).await.expect("queued");
    let mut deliveries = Vec::with_capacity(tickets.len());
    for ticket in tickets {
        deliveries.push(ticket.delivered().await.expect("acknowledged"));
    }
    deliveries
}

/// Each partition's values in offset order, read back by rskafka.
async fn contents(broker: &ProxiedBroker, topic: &str) -> BTreeMap<i32, Vec<String>> {
    let mut by_partition = BTreeMap::<i32, Vec<String>>::new();
    let records =
        integration_tests::topic::read_all(&settings(broker, "reader"), topic, PARTITIONS).await;
    for (partition, record) in records {
        let value = record.record.value.unwrap_or_default();
        by_partition
            .entry(partition)
            .or_default()
            .push(String::from_utf8_lossy(&value).into_owned());
    }
    by_partition
}

fn expected(per_partition: usize) -> BTreeMap<i32, Vec<String>> {
    (0..PARTITIONS)
        .map(|p| {
            (
                p,
                (0..per_partition).map(|n| format!("{p}:{n:06}")).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn ninety_six_partitions_share_one_connection_and_a_few_produce_requests() {
    let _one_at_a_time = exclusive().await;
    let broker = ProxiedBroker::start(Storage::Memory);
    let topic = topic(&broker).await;
    let config = ProducerConfig {
        // Every partition's batch is ready by the time the first request goes.
        linger: Duration::from_millis(200),
        ..ProducerConfig::default()
    };
    let before = broker.proxy.counts().requests;
    let producer = Producer::new(&settings(&broker, CLIENT), &topic, config, DEADLINE)
        .await
        .expect("producer");
    let deliveries = send_and_wait(&producer, numbered(10)).await;
    let requests = broker.proxy.counts().requests - before;
    eprintln!("{requests} requests through the proxy for {PARTITIONS} partitions");

    // Metadata and InitProducerId on bootstrap connections, ApiVersions on each, then the
    // Produce requests. One connection per partition took 96 ApiVersions and 96 Produce.
    assert!(
        requests <= 20,
        "{requests} requests for {PARTITIONS} partitions' batches"
    );
    for (index, delivery) in deliveries.iter().enumerate() {
        let partition = index as i32 % PARTITIONS;
        assert_eq!(delivery.partition, partition);
        assert_eq!(delivery.offset, Some((index as i32 / PARTITIONS) as i64));
    }
    assert_eq!(contents(&broker, &topic).await, expected(10));
}

#[tokio::test]
async fn a_reset_of_the_shared_connection_resends_every_partition_in_order_and_once() {
    let _one_at_a_time = exclusive().await;
    let broker = ProxiedBroker::start(Storage::Memory);
    let topic = topic(&broker).await;
    broker.proxy.inject(Fault {
        api_key: api::PRODUCE,
        client_prefix: CLIENT.into(),
        rate: 0.15,
        action: Action::Reset,
    });
    let config = ProducerConfig {
        linger: Duration::from_millis(2),
        request_timeout: Duration::from_millis(1000),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(&settings(&broker, CLIENT), &topic, config, DEADLINE)
        .await
        .expect("producer");
    let per_partition = 60;
    let records = numbered(per_partition);
    // One record per partition a round, and a round queued while the one before is still on
    // its way: many requests, each carrying every partition, some reset with others in flight.
    let mut delivered = Vec::new();
    let mut previous = Vec::new();
    for round in records.chunks(PARTITIONS as usize) {
        let tickets = producer.send_all(round.to_vec()).await.expect("queued");
        for ticket in std::mem::replace(&mut previous, tickets) {
            delivered.push(ticket.delivered().await.expect("acknowledged"));
        }
    }
    for ticket in previous {
        delivered.push(ticket.delivered().await.expect("acknowledged"));
    }
    let counts = broker.proxy.counts();
    broker.proxy.heal();
    eprintln!("{counts:?}");
    assert!(counts.reset >= 2, "{counts:?}");
    let contents = contents(&broker, &topic).await;
    assert_eq!(contents, expected(per_partition), "{counts:?}");
    // Each delivery names the offset its record really has (or none: found written before).
    for (index, delivery) in delivered.iter().enumerate() {
        let n = index / PARTITIONS as usize;
        if let Some(offset) = delivery.offset {
            assert_eq!(offset, n as i64, "record {index}: {delivery:?}");
        }
    }
}

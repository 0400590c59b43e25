//! The shared producer against a real broker: per-record delivery results with their offsets,
//! and a memory budget that holds however fast records are sent.

use std::time::Duration;

use integration_tests::{shared_broker, unique_name};
use shared::admin::{TopicAdmin, TopicSpec};
use shared::producer::partitioner::partition_for_key;
use shared::producer::{OutgoingRecord, Producer, ProducerConfig};

async fn topic(partitions: i32) -> String {
    let topic = unique_name("producer");
    TopicAdmin::connect(
        &shared_broker().connection_settings("t"),
        Duration::from_secs(10),
    )
    .await
    .expect("admin")
    .create_topics(&[TopicSpec::new(&topic, partitions, 1)])
    .await
    .expect("create");
    topic
}

fn record(key: &str, value_bytes: usize) -> OutgoingRecord {
    OutgoingRecord {
        key: Some(key.as_bytes().to_vec()),
        value: vec![b'x'; value_bytes],
        headers: Default::default(),
        timestamp: chrono::Utc::now(),
        partition: None,
    }
}

#[tokio::test]
async fn every_record_gets_its_partition_and_consecutive_offsets() {
    let topic = topic(3).await;
    let producer = Producer::new(
        &shared_broker().connection_settings("t"),
        &topic,
        ProducerConfig::default(),
        Duration::from_secs(10),
    )
    .await
    .expect("producer");
    let mut tickets = Vec::new();
    for i in 0..300 {
        let key = format!("key-{}", i % 7);
        tickets.push((
            key.clone(),
            producer.send(record(&key, 10)).await.expect("queued"),
        ));
    }
    let mut next_offset = [0i64; 3];
    for (key, ticket) in tickets {
        let delivery = ticket.delivered().await.expect("acknowledged");
        assert_eq!(delivery.partition, partition_for_key(key.as_bytes(), 3));
        let expected = &mut next_offset[delivery.partition as usize];
        assert_eq!(
            delivery.offset,
            Some(*expected),
            "offsets follow send order per partition"
        );
        *expected += 1;
    }
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.acknowledged, stats.failed),
        (300, 300, 0)
    );
}

#[tokio::test]
async fn unacknowledged_bytes_never_exceed_the_buffer() {
    let topic = topic(2).await;
    let config = ProducerConfig {
        buffer_memory_bytes: 1024 * 1024,
        batch_max_bytes: 64 * 1024,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(
        &shared_broker().connection_settings("t"),
        &topic,
        config,
        Duration::from_secs(10),
    )
    .await
    .expect("producer");
    let record_bytes = 10 * 1024;
    for i in 0..2000 {
        producer
            .send_counted(record(&format!("k{i}"), record_bytes))
            .await
            .expect("queued");
        // Each record accounts for its value plus a little overhead; the budget holds.
        let in_flight = producer.stats().in_flight();
        assert!(
            in_flight * (record_bytes as u64) <= 1024 * 1024,
            "{in_flight} records of 10 KiB in flight exceed the 1 MiB budget"
        );
    }
    producer.flush().await.expect("flush");
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.acknowledged, stats.failed),
        (2000, 2000, 0)
    );
}

#[tokio::test]
async fn an_unknown_topic_is_a_clear_error() {
    let err = Producer::new(
        &shared_broker().connection_settings("t"),
        &unique_name("missing"),
        ProducerConfig::default(),
        Duration::from_secs(10),
    )
    .await
    .expect_err("no such topic");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

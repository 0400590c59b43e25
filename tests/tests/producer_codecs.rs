//! Batches our producer writes with each of Kafka's codecs, read by librdkafka
//! (confluent-kafka), and its idempotent batches (producer id, epoch, sequence) accepted as
//! such: the check that our lz4 frames, zstd frames and xerial snappy are what other clients
//! expect, not only what our own decoder accepts.

use std::time::Duration;

use integration_tests::peers::run_python;
use integration_tests::{shared_broker, unique_name};
use shared::admin::{TopicAdmin, TopicSpec};
use shared::producer::{Compression, OutgoingRecord, Producer, ProducerConfig};

const COUNT: usize = 500;

/// Reads a topic's partition 0 from the start and prints each value on a line; fails on any
/// error (a batch librdkafka cannot decompress is an error).
const CONFLUENT_READER: &str = r#"
import sys
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "fetch.wait.max.ms": 50})
consumer.assign([TopicPartition(topic, 0, 0)])
seen = 0
while seen < count:
    message = consumer.poll(10.0)
    if message is None:
        sys.exit("timed out after %d records" % seen)
    if message.error():
        sys.exit("error: %s" % message.error())
    sys.stdout.write(message.value().decode() + "\n")
    seen += 1
consumer.close()
"#;

fn values() -> Vec<Vec<u8>> {
    (0..COUNT)
        .map(|i| {
            format!(
                "{{\"order_id\":\"order-{i:05}\",\"item_id\":\"item-{:03}\",\"quantity\":{}}}",
                i % 37,
                1 + i % 4
            )
            .into_bytes()
        })
        .collect()
}

async fn write_with(compression: Compression) -> String {
    let settings = shared_broker().connection_settings("codec-test");
    let topic = unique_name("codec");
    TopicAdmin::connect(&settings, Duration::from_secs(10))
        .await
        .expect("admin")
        .create_topics(&[TopicSpec::new(&topic, 1, 1)])
        .await
        .expect("create");
    let config = ProducerConfig {
        compression,
        // Several batches, so more than one sequence range is checked by the broker.
        batch_max_bytes: 8 * 1024,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(&settings, &topic, config, Duration::from_secs(10))
        .await
        .expect("producer");
    let records = values()
        .into_iter()
        .map(|value| OutgoingRecord {
            key: None,
            value,
            headers: Vec::new(),
            timestamp: chrono::Utc::now(),
            partition: Some(0),
        })
        .collect();
    let tickets = producer.send_all(records).await.expect("queued");
    for (index, ticket) in tickets.into_iter().enumerate() {
        let delivery = ticket.delivered().await.expect("acknowledged");
        assert_eq!(delivery.offset, Some(index as i64), "{compression:?}");
    }
    topic
}

#[tokio::test]
async fn librdkafka_reads_what_our_producer_writes_with_every_codec() {
    let expected: Vec<String> = values()
        .into_iter()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .collect();
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = write_with(compression).await;
        let output = run_python(
            CONFLUENT_READER,
            &[&shared_broker().bootstrap(), &topic, &COUNT.to_string()],
        );
        let read: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(
            read == expected,
            "{compression:?}: confluent-kafka read {} values, not ours in order",
            read.len()
        );
    }
}

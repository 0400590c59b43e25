//! The consumer's read path against a real broker: fetched bytes stay within the budget
//! (`queued.max.messages.kbytes`) however many partitions there are, a batch held by the
//! application keeps counting until it is dropped, and batches written by librdkafka with
//! every codec decode.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::group::{create_topic, produce, test_config};
use integration_tests::peers::run_python;
use integration_tests::shared_broker;
use shared::group::{ConsumerEvent, GroupConsumer, RecordBatch};

const LIMIT: Duration = Duration::from_secs(60);

async fn next_batch(consumer: &mut GroupConsumer, within: Duration) -> Option<RecordBatch> {
    loop {
        match tokio::time::timeout(within, consumer.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(ConsumerEvent::Records(batch)))) => return Some(batch),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("expected records, got {other:?}"),
        }
    }
}

fn value(record: &shared::group::ConsumerRecord) -> String {
    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned()
}

#[tokio::test]
async fn fetched_bytes_stay_within_the_budget_until_the_application_drops_its_batches() {
    let broker = shared_broker();
    let partitions = 48;
    let topic = create_topic(broker, "budget", partitions).await;
    let written = produce(
        broker,
        &topic,
        partitions,
        400,
        "budget-record-with-some-padding",
    )
    .await;
    let mut config = test_config(&integration_tests::unique_name("budget"), &topic);
    config.queued_max_bytes = 256 * 1024;
    config.max_partition_fetch_bytes = 32 * 1024;
    let mut consumer =
        GroupConsumer::start(&broker.connection_settings("budget"), config.clone(), LIMIT)
            .await
            .expect("start");

    // Hold every batch, as an application whose workers are all busy would: the fetcher must
    // stop once what it holds reaches the budget. A request asks each partition for at least
    // 16 KiB and no more partitions than the room holds at that, so one answer overshoots by
    // at most that many of the broker's batches — a bound set by the budget, not by the
    // partition count.
    let per_request = config.queued_max_bytes / (16 * 1024) + 1;
    let mut held: Vec<RecordBatch> = Vec::new();
    let mut values = BTreeSet::new();
    let mut within = LIMIT; // the first batch waits for the group to form
    while let Some(batch) = next_batch(&mut consumer, within).await {
        within = Duration::from_secs(3);
        values.extend(batch.records.iter().map(value));
        held.push(batch);
        let largest = held.iter().map(|b| b.budget.bytes()).max().unwrap_or(0);
        let ceiling = config.queued_max_bytes + per_request * largest;
        assert!(
            consumer.queued_bytes() <= ceiling,
            "{} bytes held, budget {}, ceiling {ceiling}",
            consumer.queued_bytes(),
            config.queued_max_bytes
        );
        assert!(
            values.len() < written.len(),
            "everything arrived while the application held it all"
        );
    }
    // Nothing more came for 3 s (the time during which nothing must happen): the budget is
    // what stopped the fetcher.
    assert!(
        consumer.queued_bytes() + 16 * 1024 >= config.queued_max_bytes,
        "the fetcher stopped early at {} bytes",
        consumer.queued_bytes()
    );

    // Dropping the batches gives their bytes back, and reading resumes to the end.
    held.clear();
    assert_eq!(consumer.queued_bytes(), 0);
    while values.len() < written.len() {
        let batch = next_batch(&mut consumer, LIMIT)
            .await
            .expect("reading resumes once batches are dropped");
        values.extend(
            batch.records.iter().map(|r| {
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
            }),
        );
    }
    assert_eq!(
        values, written,
        "every record exactly once, none lost to the pause"
    );
    consumer.close().await.expect("close");
}

#[tokio::test]
async fn batches_librdkafka_compressed_with_every_codec_decode() {
    let broker = shared_broker();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = create_topic(broker, codec, 2).await;
        run_python(
            r#"
import sys
from confluent_kafka import Producer
bootstrap, topic, codec = sys.argv[1:4]
producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20})
for i in range(500):
    producer.produce(topic, key=str(i).encode(), value=("order-%d " % i + "x" * 100).encode())
producer.flush(30)
"#,
            &[&broker.bootstrap(), &topic, codec],
        );
        let config = test_config(&integration_tests::unique_name(codec), &topic);
        let mut consumer = GroupConsumer::start(&broker.connection_settings(codec), config, LIMIT)
            .await
            .expect("start");
        let mut seen = BTreeSet::new();
        while seen.len() < 500 {
            let batch = next_batch(&mut consumer, LIMIT).await.expect("records");
            for record in &batch.records {
                let key =
                    String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
                let value = record.value.as_deref().unwrap_or_default();
                assert!(
                    value.starts_with(format!("order-{key} ").as_bytes()),
                    "{codec}: key {key} with a value of another record"
                );
                assert!(seen.insert(key), "{codec}: a record twice");
            }
        }
        assert!(
            consumer.stuck().is_empty(),
            "{codec}: {:?}",
            consumer.stuck()
        );
        consumer.close().await.expect("close");
    }
}

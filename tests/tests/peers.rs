//! The peer clients from the virtualenv work against the test broker, both ways: what a
//! librdkafka producer writes our data client reads, and what we write kafka-python reads.

use std::time::Duration;

use integration_tests::peers::run_python;
use integration_tests::{shared_broker, unique_name};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::connect;

async fn create_topic(partitions: i32) -> String {
    let topic = unique_name("peers");
    let settings = shared_broker().connection_settings("peer-test");
    TopicAdmin::connect(&settings, Duration::from_secs(10))
        .await
        .expect("admin")
        .create_topics(&[TopicSpec::new(&topic, partitions, 1)])
        .await
        .expect("create");
    topic
}

const CONFLUENT_PRODUCER: &str = r#"
import sys
from confluent_kafka import Producer
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
delivered = []
def on_delivery(err, msg):
    if err is None:
        delivered.append(msg.offset())
for i in range(count):
    producer.produce(topic, key=f"key-{i}", value=f"value-{i}", partition=0, on_delivery=on_delivery)
producer.flush(30)
print(len(delivered))
"#;

const KAFKA_PYTHON_READER: &str = r#"
import sys
from kafka import KafkaConsumer, TopicPartition
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=20000)
partition = TopicPartition(topic, 0)
consumer.assign([partition])
consumer.seek_to_beginning(partition)
values = []
for message in consumer:
    values.append(message.value.decode())
    if len(values) == count:
        break
print("\n".join(values))
"#;

#[tokio::test]
async fn records_from_a_confluent_kafka_producer_are_read_by_our_data_client() {
    let topic = create_topic(1).await;
    let output = run_python(
        CONFLUENT_PRODUCER,
        &[&shared_broker().bootstrap(), &topic, "50"],
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "50");

    let settings = shared_broker().connection_settings("peer-test");
    let client = connect::data_client(&settings, Duration::from_secs(10))
        .await
        .expect("client");
    let partition = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition");
    let mut values = Vec::new();
    let mut offset = 0;
    while values.len() < 50 {
        let (records, _) = partition
            .fetch_records(offset, 1..1_000_000, 1_000)
            .await
            .expect("fetch");
        for record in records {
            offset = record.offset + 1;
            values.push(String::from_utf8(record.record.value.unwrap_or_default()).expect("utf8"));
        }
    }
    let expected: Vec<String> = (0..50).map(|i| format!("value-{i}")).collect();
    assert_eq!(values, expected);
}

#[tokio::test]
async fn records_from_our_data_client_are_read_by_kafka_python() {
    let topic = create_topic(1).await;
    let settings = shared_broker().connection_settings("peer-test");
    let client = connect::data_client(&settings, Duration::from_secs(10))
        .await
        .expect("client");
    let partition = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition");
    let records = (0..20)
        .map(|i| Record {
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(format!("value-{i}").into_bytes()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        })
        .collect();
    partition
        .produce(records, Compression::NoCompression)
        .await
        .expect("produce");

    let output = run_python(
        KAFKA_PYTHON_READER,
        &[&shared_broker().bootstrap(), &topic, "20"],
    );
    let read: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("value-{i}")).collect();
    assert_eq!(read, expected);
}

const PARTITION_REPORTER: &str = r#"
import sys, json
from confluent_kafka import Producer
from kafka import KafkaProducer
bootstrap, topic = sys.argv[1], sys.argv[2]
keys = sys.argv[3:]
confluent = {}
producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
def remember(err, msg):
    if err is None:
        confluent[msg.key().decode()] = msg.partition()
for key in keys:
    producer.produce(topic, key=key, value=b"x", on_delivery=remember)
producer.flush(30)
python = {}
kp = KafkaProducer(bootstrap_servers=bootstrap)
for key in keys:
    python[key] = kp.send(topic, key=key.encode(), value=b"x").get(timeout=30).partition
kp.close()
print(json.dumps({"confluent": confluent, "kafka-python": python}))
"#;

#[tokio::test]
async fn peers_put_each_key_on_the_partition_our_partitioner_computes() {
    let topic = create_topic(6).await;
    let mut keys: Vec<String> = (0..100).map(|i| format!("item-{i:04}")).collect();
    keys.extend(
        [
            "354afe16-939a-4ea8-8e17-8bb0840b6886",
            "f562ac3b-2224-4e25-a0ab-56094e10c239",
            "21",
            "foobar",
            "order-1",
        ]
        .map(String::from),
    );
    let mut args = vec![shared_broker().bootstrap(), topic];
    args.extend(keys.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_python(PARTITION_REPORTER, &args);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the peer prints JSON");
    for client in ["confluent", "kafka-python"] {
        for key in &keys {
            let theirs = report[client][key.as_str()]
                .as_i64()
                .unwrap_or_else(|| panic!("{client} did not report {key}"));
            let ours = shared::producer::partitioner::partition_for_key(key.as_bytes(), 6);
            assert_eq!(theirs, i64::from(ours), "{client} put {key} elsewhere");
        }
    }
}

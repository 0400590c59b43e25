//! Every codec end to end, as a user meets them: orders written by confluent-kafka
//! (librdkafka) with `compression.type` gzip, snappy, lz4 and zstd reach an outcome each
//! through the inventory consumer, whose own producers write the outcomes with the same
//! codec (`COMPRESSION`), and analytics reads both — the orders librdkafka compressed and the
//! outcomes we compressed — and reconciles exactly.
//!
//! One pipeline, one stage per codec: the inventory consumer is restarted with the stage's
//! `COMPRESSION`, the peer writes that stage's orders, and the reconciliation is asserted on
//! the running totals, so a codec that silently stalls or skips shows at its own stage. Each
//! stage also reads its batches raw (a Fetch of our own, the batch header's attributes) to
//! prove both sides really used the codec: orders as librdkafka wrote them, outcomes as we did.

use std::time::Duration;

use integration_tests::peers::run_python;
use integration_tests::pipeline::{Pipeline, Service, count, exclusive};
use integration_tests::{shared_broker, workspace_root};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};

const ORDERS_PER_CODEC: u64 = 1_000;
const PARTITIONS: i32 = 6;
const LIMIT: Duration = Duration::from_secs(180);

/// Writes COUNT orders (built by `scripts/peer_events.py`, keyed by item id, murmur2
/// partitioning as Java's) with the given `compression.type`, fails unless all are acknowledged.
const CONFLUENT_ORDERS: &str = r#"
import sys, uuid, random
scripts, bootstrap, topic, count, codec = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, scripts)
import peer_events
from confluent_kafka import Producer
producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20,
                     "acks": "all", "partitioner": "murmur2_random"})
failures = []
def delivered(error, message):
    if error is not None:
        failures.append(str(error))
rng = random.Random(codec)
for n in range(count):
    item = "item-%04d" % rng.randrange(100)
    order = peer_events.order(str(uuid.uuid4()), "customer-%05d" % rng.randrange(10000), item,
                              rng.randint(1, 3), 9.5, peer_events.timestamp())
    producer.produce(topic, key=item, value=peer_events.encode(order),
                     headers=peer_events.ORDER_HEADERS, on_delivery=delivered)
    producer.poll(0)
left = producer.flush(60)
if left or failures:
    sys.exit("%d unacknowledged, failures: %s" % (left, failures[:3]))
"#;

/// Kafka's codec ids (the low three bits of a batch's attributes).
fn codec_id(codec: &str) -> i16 {
    match codec {
        "gzip" => 1,
        "snappy" => 2,
        "lz4" => 3,
        "zstd" => 4,
        _ => 0,
    }
}

/// Each partition's end offset now.
async fn end_offsets(topic: &str) -> Vec<i64> {
    let settings = shared_broker().connection_settings("codecs-checker");
    let client = shared::connect::data_client(&settings, Duration::from_secs(30))
        .await
        .expect("client");
    let mut ends = Vec::new();
    for partition in 0..PARTITIONS {
        let partition_client = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        ends.push(
            partition_client
                .get_offset(OffsetAt::Latest)
                .await
                .expect("end offset"),
        );
    }
    ends
}

/// The codec id of every record batch of `topic` from `from` (per partition) on, read raw:
/// one Fetch, then each batch's header (base offset 8 bytes, length 4, ..., attributes at 21).
async fn batch_codecs(topic: &str, from: &[i64]) -> Vec<i16> {
    let settings = shared_broker().connection_settings("codecs-checker");
    let mut connection = shared::connect::broker_connection(&settings, Duration::from_secs(30))
        .await
        .expect("a connection");
    let version = connection
        .negotiate::<FetchRequest>(4..=12)
        .expect("Fetch v4-12");
    let partitions = from
        .iter()
        .enumerate()
        .map(|(partition, offset)| {
            FetchPartition::default()
                .with_partition(partition as i32)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(*offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(4 << 20)
        })
        .collect();
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        // Nisshi 0.8.1 answers a Fetch with max_wait 0 with no topics at all.
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_isolation_level(1)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(partitions),
        ]);
    let response = connection.send(version, &request).await.expect("answered");
    let mut codecs = Vec::new();
    for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
        assert_eq!(partition.error_code, 0, "fetch error");
        let records = partition.records.clone().unwrap_or_default();
        let mut at = 0;
        while records.len() >= at + 23 {
            let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().expect("4 bytes"));
            codecs.push(i16::from_be_bytes([records[at + 21], records[at + 22]]) & 0x07);
            at += 12 + usize::try_from(length).expect("a batch length");
        }
    }
    codecs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_compressed_by_librdkafka_and_outcomes_compressed_by_us_reconcile_with_every_codec()
{
    let _slot = exclusive().await;
    let broker = shared_broker();
    let mut pipeline = Pipeline::create(&broker.bootstrap(), "codecs", PARTITIONS).await;
    pipeline.start(Service::Analytics);
    let scripts = workspace_root().join("scripts");
    let mut orders = 0;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        pipeline.set(Service::Inventory, "COMPRESSION", codec);
        let orders_from = end_offsets(&pipeline.names.orders).await;
        let outcomes_from = end_offsets(&pipeline.names.inventory).await;
        pipeline.start(Service::Inventory);
        run_python(
            CONFLUENT_ORDERS,
            &[
                &scripts.to_string_lossy(),
                &broker.bootstrap(),
                &pipeline.names.orders,
                &ORDERS_PER_CODEC.to_string(),
                codec,
            ],
        );
        orders += ORDERS_PER_CODEC;
        let metrics = pipeline.reconcile(LIMIT, orders, 0).await;
        // analytics' own figures: it decoded every librdkafka-compressed order and every
        // outcome our producer compressed, none of them malformed.
        assert_eq!(count(&metrics, "/orders/total"), orders, "{codec}");
        assert_eq!(
            count(&metrics, "/inventory_events/total"),
            orders,
            "{codec}"
        );
        assert_eq!(count(&metrics, "/malformed_records"), 0, "{codec}");
        for (topic, from, writer) in [
            (&pipeline.names.orders, &orders_from, "librdkafka"),
            (&pipeline.names.inventory, &outcomes_from, "our producer"),
        ] {
            let codecs = batch_codecs(topic, from).await;
            assert!(
                !codecs.is_empty() && codecs.iter().all(|c| *c == codec_id(codec)),
                "{codec}: {writer} wrote batches with codec ids {codecs:?}"
            );
        }
        assert!(
            pipeline.stop(Service::Inventory, LIMIT).success(),
            "{codec}: the inventory consumer stopped cleanly"
        );
        eprintln!("{codec}: {orders} orders reconciled");
    }
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
}

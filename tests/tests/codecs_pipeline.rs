//! Every codec end to end, as a user meets them: orders written by confluent-kafka
//! (librdkafka) with `compression.type` gzip, snappy, lz4 and zstd reach an outcome each
//! through the inventory consumer, whose own producers write the outcomes with the same
//! codec (`COMPRESSION`), and analytics reads both — the orders librdkafka compressed and the
//! outcomes we compressed — and reconciles exactly.
//!
//! One pipeline, one stage per codec: the inventory consumer is restarted with the stage's
//! `COMPRESSION`, the peer writes that stage's orders, and the reconciliation is asserted on
//! the running totals, so a codec that silently stalls or skips shows at its own stage.

use std::time::Duration;

use integration_tests::peers::run_python;
use integration_tests::pipeline::{Pipeline, Service, count, exclusive};
use integration_tests::{shared_broker, workspace_root};

const ORDERS_PER_CODEC: u64 = 1_000;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_compressed_by_librdkafka_and_outcomes_compressed_by_us_reconcile_with_every_codec()
{
    let _slot = exclusive().await;
    let broker = shared_broker();
    let mut pipeline = Pipeline::create(&broker.bootstrap(), "codecs", 6).await;
    pipeline.start(Service::Analytics);
    let scripts = workspace_root().join("scripts");
    let mut orders = 0;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        pipeline.set(Service::Inventory, "COMPRESSION", codec);
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
        assert!(
            pipeline.stop(Service::Inventory, LIMIT).success(),
            "{codec}: the inventory consumer stopped cleanly"
        );
        eprintln!("{codec}: {orders} orders reconciled");
    }
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
}

//! inventory-consumer as a process against a real broker: every order gets exactly one
//! outcome, dead letters account for failed and malformed orders, a kill -9 only replays the
//! uncommitted tail (with identical event ids and identical stock), two instances share the
//! work without negative stock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::peers::run_python;
use integration_tests::{shared_broker, unique_name, workspace_root};
use rskafka::client::partition::UnknownTopicHandling;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::events::{
    InventoryEvent, InventoryOutcome, OrderEvent, decode_inventory, encode_event,
};
use shared::producer::{OutgoingRecord, Producer, ProducerConfig};
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_inventory-consumer");
const LIMIT: Duration = Duration::from_secs(120);
const PARTITIONS: i32 = 3;
const ITEMS: u128 = 20;
const INITIAL_STOCK: i64 = 2000;

struct Pipeline {
    orders: String,
    outcomes: String,
    dlq: String,
    group: String,
}

impl Pipeline {
    async fn new() -> Self {
        let pipeline = Self {
            orders: unique_name("orders"),
            outcomes: unique_name("outcomes"),
            dlq: unique_name("dlq"),
            group: unique_name("inventory"),
        };
        TopicAdmin::connect(&shared_broker().connection_settings("t"), LIMIT)
            .await
            .expect("admin")
            .create_topics(&[TopicSpec::new(&pipeline.orders, PARTITIONS, 1)])
            .await
            .expect("order topic");
        pipeline
    }

    fn start(&self, extra: &[(&str, &str)]) -> Child {
        Command::new(BINARY)
            .current_dir(workspace_root())
            .env_clear()
            .env("BOOTSTRAP_SERVERS", shared_broker().bootstrap())
            .env("ORDER_TOPIC", &self.orders)
            .env("INVENTORY_TOPIC", &self.outcomes)
            .env("DLQ_TOPIC", &self.dlq)
            .env("STATE_TOPIC", format!("{}-state", self.outcomes))
            .env("GROUP_ID", &self.group)
            .env("CREATE_TOPICS", "1")
            .env("INITIAL_STOCK", INITIAL_STOCK.to_string())
            .env("RETRY_BACKOFF_MS", "0")
            .env("RUST_LOG", "warn")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("inventory-consumer starts")
    }

    /// Writes `count` orders (quantities 1-5 over ITEMS items); returns order id -> quantity.
    async fn produce_orders(&self, count: u128) -> BTreeMap<Uuid, (String, u32)> {
        let producer = Producer::new(
            &shared_broker().connection_settings("t"),
            &self.orders,
            ProducerConfig::default(),
            LIMIT,
        )
        .await
        .expect("producer");
        let mut orders = BTreeMap::new();
        for i in 0..count {
            let item = format!("item-{:02}", i % ITEMS);
            let quantity = 1 + (i % 5) as u32;
            let order = OrderEvent::new(
                Uuid::from_u128(i + 1),
                "c",
                item.clone(),
                quantity,
                1.0,
                "EUR",
                chrono::Utc::now(),
            );
            producer
                .send_counted(OutgoingRecord {
                    key: Some(item.clone().into_bytes()),
                    value: encode_event(&order).expect("encode"),
                    headers: Vec::new(),
                    timestamp: order.created_at,
                    partition: None,
                })
                .await
                .expect("queued");
            orders.insert(order.order_id, (item, quantity));
        }
        producer.flush().await.expect("flush");
        assert_eq!(producer.stats().acknowledged as u128, count);
        orders
    }

    /// Every record of a topic (all partitions), values with headers.
    async fn read(&self, topic: &str) -> Vec<(Vec<u8>, BTreeMap<String, Vec<u8>>)> {
        let client = shared::connect::data_client(&shared_broker().connection_settings("r"), LIMIT)
            .await
            .expect("client");
        let mut all = Vec::new();
        if !client
            .list_topics()
            .await
            .expect("topics")
            .iter()
            .any(|t| t.name == topic)
        {
            return all;
        }
        for partition in 0..PARTITIONS {
            let pc = client
                .partition_client(topic, partition, UnknownTopicHandling::Retry)
                .await
                .expect("partition");
            let mut offset = 0;
            loop {
                let (records, high) = pc
                    .fetch_records(offset, 1..10_000_000, 50)
                    .await
                    .expect("fetch");
                let start = offset;
                for r in records.into_iter().filter(|r| r.offset >= start) {
                    offset = r.offset + 1;
                    all.push((r.record.value.unwrap_or_default(), r.record.headers));
                }
                if offset >= high {
                    break;
                }
            }
        }
        all
    }

    async fn outcomes(&self) -> Vec<InventoryEvent> {
        self.read(&self.outcomes)
            .await
            .into_iter()
            .map(|(value, _)| decode_inventory(&value).expect("every outcome decodes"))
            .collect()
    }

    /// Waits until every order has an outcome.
    async fn wait_for_outcomes(&self, orders: usize) -> Vec<InventoryEvent> {
        let started = Instant::now();
        loop {
            let events = self.outcomes().await;
            let decided: BTreeSet<Uuid> = events.iter().filter_map(|e| e.order_id).collect();
            if decided.len() >= orders {
                return events;
            }
            assert!(
                started.elapsed() < LIMIT,
                "only {} of {orders} orders decided",
                decided.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Each order has exactly one distinct event id; repeats are identical; stock never negative
/// and, per item, ends at INITIAL_STOCK minus what was reserved.
fn check_conservation(
    events: &[InventoryEvent],
    orders: &BTreeMap<Uuid, (String, u32)>,
) -> [u64; 3] {
    let mut by_order: HashMap<Uuid, Vec<&InventoryEvent>> = HashMap::new();
    for event in events {
        assert!(event.stock_after >= 0, "negative stock: {event:?}");
        by_order
            .entry(event.order_id.expect("order outcome"))
            .or_default()
            .push(event);
    }
    assert_eq!(by_order.len(), orders.len(), "every order has an outcome");
    let mut counts = [0u64; 3];
    let mut reserved_per_item: BTreeMap<String, i64> = BTreeMap::new();
    let mut last_stock: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (order_id, seen) in &by_order {
        let first = seen[0];
        for repeat in seen {
            assert_eq!(
                repeat.event_id, first.event_id,
                "a replay has the identical event id"
            );
            assert_eq!(
                repeat.stock_after, first.stock_after,
                "a replay decides identically"
            );
        }
        let (item, quantity) = &orders[order_id];
        match first.outcome {
            InventoryOutcome::Reserved => {
                counts[0] += 1;
                *reserved_per_item.entry(item.clone()).or_default() += i64::from(*quantity);
                let offset = first.source_offset.expect("offset");
                let entry = last_stock
                    .entry(item.clone())
                    .or_insert((-1, INITIAL_STOCK));
                if offset > entry.0 {
                    *entry = (offset, first.stock_after);
                }
            }
            InventoryOutcome::Rejected => counts[1] += 1,
            InventoryOutcome::Failed => counts[2] += 1,
            InventoryOutcome::Restocked => panic!("no restocks configured"),
        }
    }
    for (item, reserved) in reserved_per_item {
        assert_eq!(
            last_stock[&item].1,
            INITIAL_STOCK - reserved,
            "{item}: stock continues, never reset or applied twice"
        );
    }
    counts
}

#[tokio::test]
async fn every_order_gets_one_outcome_and_dead_letters_match_failed_plus_malformed() {
    let pipeline = Pipeline::new().await;
    let orders = pipeline.produce_orders(20_000).await;
    // Malformed input from a real peer client: random bytes, truncated JSON, a wrong type.
    run_python(
        r#"
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1]})
for value in [b"\x00\xff\x10garbage", b'{"schema_version": 1, "order_id": "', b'{"schema_version": 1, "quantity": "three"}']:
    p.produce(sys.argv[2], value=value, partition=0)
p.flush(30)
"#,
        &[&shared_broker().bootstrap(), &pipeline.orders],
    );
    let child = pipeline.start(&[("FAIL_RATE", "0.2"), ("MAX_RETRIES", "1")]);
    let events = pipeline.wait_for_outcomes(orders.len()).await;
    // Every dead letter is acknowledged before its order is committed; wait for all three malformed.
    let started = Instant::now();
    let letters = loop {
        let letters = pipeline.read(&pipeline.dlq).await;
        let malformed = letters
            .iter()
            .filter(|(_, h)| h.get("reason").map(Vec::as_slice) == Some(b"malformed"))
            .count();
        if malformed >= 3 {
            break letters;
        }
        assert!(
            started.elapsed() < LIMIT,
            "malformed records never reached the dead-letter topic"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop(child);
    let [reserved, rejected, failed] = check_conservation(&events, &orders);
    assert_eq!(
        reserved + rejected + failed,
        20_000,
        "exactly 20000 terminal outcomes"
    );
    assert!(failed > 0, "FAIL_RATE=0.2 with one retry fails some orders");
    let malformed = letters
        .iter()
        .filter(|(_, h)| h.get("reason").map(Vec::as_slice) == Some(b"malformed"))
        .count() as u64;
    assert_eq!(malformed, 3);
    assert_eq!(
        letters.len() as u64,
        failed + malformed,
        "dead letters = failed + malformed"
    );
    for (_, headers) in &letters {
        for header in [
            "error",
            "attempts",
            "source-topic",
            "source-partition",
            "source-offset",
        ] {
            assert!(headers.contains_key(header), "dead letter without {header}");
        }
    }
}

#[tokio::test]
async fn a_kill_9_mid_run_replays_only_the_tail_with_identical_outcomes_and_stock_continues() {
    let pipeline = Pipeline::new().await;
    let orders = pipeline.produce_orders(6_000).await;
    let throttle = [("THROTTLE_MS", "1"), ("FAIL_RATE", "0.1")];
    let mut child = pipeline.start(&throttle);
    // Kill it without warning once it is part-way through.
    let started = Instant::now();
    loop {
        let decided = pipeline.outcomes().await.len();
        if decided > 500 {
            break;
        }
        assert!(started.elapsed() < LIMIT, "no progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let restarted = pipeline.start(&[("FAIL_RATE", "0.1")]);
    let events = pipeline.wait_for_outcomes(orders.len()).await;
    stop(restarted);
    let [reserved, rejected, failed] = check_conservation(&events, &orders);
    assert_eq!(reserved + rejected + failed, 6_000);
}

#[tokio::test]
async fn two_instances_share_the_partitions_and_no_stock_goes_negative() {
    let pipeline = Pipeline::new().await;
    let orders = pipeline.produce_orders(10_000).await;
    let first = pipeline.start(&[]);
    let second = pipeline.start(&[]);
    let events = pipeline.wait_for_outcomes(orders.len()).await;
    stop(first);
    stop(second);
    let [reserved, rejected, failed] = check_conservation(&events, &orders);
    assert_eq!(reserved + rejected + failed, 10_000);
    assert!(
        rejected > 0,
        "stock ran out for some items: rejections happened"
    );
}

#[tokio::test]
async fn restocking_adds_to_known_items_and_reports_restocked_events() {
    let pipeline = Pipeline::new().await;
    let orders = pipeline.produce_orders(100).await;
    let child = pipeline.start(&[("RESTOCK_INTERVAL_SEC", "1"), ("RESTOCK_AMOUNT", "50")]);
    let started = Instant::now();
    let events = loop {
        let events = pipeline.outcomes().await;
        let decided = events.iter().filter(|e| e.order_id.is_some()).count();
        if decided >= orders.len()
            && events
                .iter()
                .any(|e| e.outcome == InventoryOutcome::Restocked)
        {
            break events;
        }
        assert!(started.elapsed() < LIMIT, "no restock reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop(child);
    let restock = events
        .iter()
        .find(|e| e.outcome == InventoryOutcome::Restocked)
        .expect("a restock");
    assert_eq!(restock.order_id, None);
    assert_eq!(restock.quantity, 50);
    // The restock lands on top of what the item had left after its orders.
    let before: i64 = events
        .iter()
        .filter(|e| e.item_id == restock.item_id && e.outcome == InventoryOutcome::Reserved)
        .map(|e| e.stock_after)
        .min()
        .unwrap_or(INITIAL_STOCK);
    assert!(
        restock.stock_after >= before + 50,
        "{} after restocking {}",
        restock.stock_after,
        before
    );
}

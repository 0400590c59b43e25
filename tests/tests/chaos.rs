//! Chaos against the running pipeline: processes killed, frozen and restarted, the broker
//! restarted, poison records injected. Each test ends with the same exact reconciliation:
//! every order seen once by analytics, decided exactly once (a replayed order must repeat its
//! `event_id`, or the count of distinct outcomes would exceed the orders), dead letters equal
//! to failed outcomes, and no lag in either group.

use std::time::Duration;

use integration_tests::broker::Storage;
use integration_tests::pipeline::{Pipeline, Service, count, exclusive};
use integration_tests::{TestBroker, shared_broker};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use shared::events::{OrderEvent, encode_event};
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(300);

/// A pipeline whose producer sends `orders` at `rate` per second, so the chaos lands mid-run.
async fn steady_pipeline(bootstrap: &str, prefix: &str, orders: u64, rate: u64) -> Pipeline {
    let mut pipeline = Pipeline::create(bootstrap, prefix, 6).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", rate);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", orders);
    pipeline.set(Service::Inventory, "FAIL_RATE", "0.1");
    pipeline.set(Service::Inventory, "MAX_RETRIES", 1);
    pipeline
}

/// Waits until analytics has decided at least `decided` orders.
async fn until_decided(pipeline: &mut Pipeline, decided: u64) -> serde_json::Value {
    pipeline
        .metrics_until(&format!("{decided} decided orders"), LIMIT, |m| {
            count(m, "/processed_order_count") >= decided
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_consumer_killed_twice_mid_run_loses_nothing_and_repeats_its_event_ids() {
    let _slot = exclusive().await;
    const ORDERS: u64 = 30_000;
    let mut pipeline = steady_pipeline(&shared_broker().bootstrap(), "kill9", ORDERS, 3_000).await;
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    for decided in [5_000, 15_000] {
        until_decided(&mut pipeline, decided).await;
        pipeline.kill(Service::Inventory);
        pipeline.start(Service::Inventory);
    }

    let metrics = pipeline.reconcile(LIMIT, ORDERS, 0).await;
    eprintln!(
        "replayed outcomes ignored as duplicates: {}",
        count(&metrics, "/duplicate_events_ignored")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cooperative_inventory_members_killed_mid_run_and_restarted_reconcile_exactly() {
    let _slot = exclusive().await;
    const ORDERS: u64 = 20_000;
    let mut pipeline = steady_pipeline(&shared_broker().bootstrap(), "coop", ORDERS, 2_000).await;
    // Three members in one process join one after another, so the group goes through
    // cooperative rebalances with partial revocations (KIP-429) while orders flow; then the
    // whole process dies and its successor's members take the partitions back.
    pipeline.set(
        Service::Inventory,
        "PARTITION_ASSIGNMENT_STRATEGY",
        "cooperative-sticky",
    );
    pipeline.set(Service::Inventory, "MEMBERS", 3);
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    until_decided(&mut pipeline, 6_000).await;
    pipeline.kill(Service::Inventory);
    pipeline.start(Service::Inventory);

    pipeline.reconcile(LIMIT, ORDERS, 0).await;
    let (state, members) = pipeline.inventory_group_state().await;
    assert_eq!(
        (state.as_str(), members),
        ("Stable", 3),
        "the restarted members"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_inventory_consumer_is_expired_then_rejoins_cleanly_when_thawed() {
    let _slot = exclusive().await;
    const ORDERS: u64 = 20_000;
    let mut pipeline =
        steady_pipeline(&shared_broker().bootstrap(), "sigstop", ORDERS, 2_000).await;
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    until_decided(&mut pipeline, 4_000).await;
    pipeline.signal(Service::Inventory, "STOP");
    // Past the 6 s session timeout the coordinator removes the silent member: wait for that
    // rather than for a fixed time.
    let started = std::time::Instant::now();
    loop {
        let (state, members) = pipeline.inventory_group_state().await;
        if members == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            pipeline.fail(&format!(
                "the frozen member was never expired (group {state}, {members} members)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pipeline.signal(Service::Inventory, "CONT");

    pipeline.reconcile(LIMIT, ORDERS, 0).await;
    let (state, members) = pipeline.inventory_group_state().await;
    assert_eq!(
        (state.as_str(), members),
        ("Stable", 1),
        "the thawed member rejoined"
    );
    assert!(
        pipeline.is_running(Service::Inventory),
        "it kept running after being fenced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_static_analytics_member_causes_no_rebalance() {
    let _slot = exclusive().await;
    const ORDERS: u64 = 20_000;
    let mut pipeline = steady_pipeline(&shared_broker().bootstrap(), "static", ORDERS, 2_000).await;
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    let before = pipeline
        .metrics_until("analytics to be assigned and counting", LIMIT, |m| {
            count(m, "/processed_order_count") >= 4_000 && m["group"]["state"] == "Stable"
        })
        .await;
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
    pipeline.start(Service::Analytics);

    let metrics = pipeline.reconcile(LIMIT, ORDERS, 0).await;
    assert_eq!(
        metrics["group"]["generation"], before["group"]["generation"],
        "a static member back within its session timeout keeps the generation"
    );
    // Its member id may change: Kafka gives a static member that rejoins without one a new id
    // and fences the old (KIP-345); what must not change is the generation and the partitions.
    assert_eq!(
        metrics["group"]["assigned_partitions"],
        before["group"]["assigned_partitions"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_recovers_from_a_broker_restart_on_durable_storage() {
    let _slot = exclusive().await;
    const ORDERS: u64 = 20_000;
    let data = tempfile::tempdir().expect("broker data folder");
    let mut broker = TestBroker::start(Storage::Durable(data.path().to_path_buf()));
    let mut pipeline = steady_pipeline(&broker.bootstrap(), "restart", ORDERS, 2_000).await;
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    until_decided(&mut pipeline, 5_000).await;
    broker.restart();

    pipeline.reconcile(LIMIT, ORDERS, 0).await;
}

/// 1000 poison records of four kinds, 250 each, interleaved with good orders.
fn poison(index: usize) -> Vec<u8> {
    let good = encode_event(&OrderEvent::new(
        Uuid::from_u128(index as u128 + 1),
        "customer-1",
        "item-1",
        2,
        9.5,
        "EUR",
        chrono::Utc::now(),
    ))
    .expect("a valid order encodes");
    let text = String::from_utf8(good.clone()).expect("JSON is UTF-8");
    // A small deterministic generator: the bytes differ per record and per run they repeat.
    let mut state = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    match index % 4 {
        0 => (0..1 + next() % 300).map(|_| next() as u8).collect(),
        1 => good[..1 + (next() as usize % (good.len() - 1))].to_vec(),
        2 => match index % 3 {
            0 => text.replace("\"quantity\":2", "\"quantity\":\"2\""),
            1 => text.replace("\"unit_price\":9.5", "\"unit_price\":[9.5]"),
            _ => text.replace("\"item_id\":\"item-1\"", "\"item_id\":17"),
        }
        .into_bytes(),
        _ => match index % 3 {
            0 => text
                .replace("\"quantity\":2", "\"quantity\":99999999999999999999")
                .into_bytes(),
            1 => text
                .replace(
                    "\"item_id\":\"item-1\"",
                    &format!("\"item_id\":\"{}\"", "x".repeat(5_000)),
                )
                .into_bytes(),
            _ => {
                // Beyond the decoder's 64 KiB limit: rejected before it is parsed.
                text.replace("\"customer-1\"", &format!("\"{}\"", "c".repeat(200_000)))
                    .into_bytes()
            }
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_malformed_records_all_reach_the_dead_letters_and_disturb_nothing() {
    let _slot = exclusive().await;
    const ORDERS: u64 = 10_000;
    const POISON: usize = 1_000;
    let broker = shared_broker();
    let mut pipeline = steady_pipeline(&broker.bootstrap(), "poison", ORDERS, 2_000).await;
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    let client = shared::connect::data_client(&broker.connection_settings("poison"), LIMIT)
        .await
        .expect("client");
    // In ten rounds while good orders flow, so poison lands between them on every partition.
    for round in 0..10 {
        until_decided(&mut pipeline, (round as u64 + 1) * 800).await;
        for partition in 0..pipeline.partitions {
            let records: Vec<Record> = (0..POISON / 10)
                .filter(|i| i % pipeline.partitions as usize == partition as usize)
                .map(|i| Record {
                    key: Some(b"poison".to_vec()),
                    value: Some(poison(round * (POISON / 10) + i)),
                    headers: Default::default(),
                    timestamp: chrono::Utc::now(),
                })
                .collect();
            let partition_client = client
                .partition_client(
                    &pipeline.names.orders,
                    partition,
                    UnknownTopicHandling::Retry,
                )
                .await
                .expect("partition client");
            // One request per record: a few oversized ones together would pass the broker's
            // 1 MiB request limit, and the point is to reach the consumer, not to be refused.
            for record in records {
                partition_client
                    .produce(vec![record], Compression::NoCompression)
                    .await
                    .expect("the poison is written");
            }
        }
    }

    pipeline.reconcile(LIMIT, ORDERS, POISON as u64).await;
    assert!(pipeline.is_running(Service::Inventory));
    assert!(pipeline.is_running(Service::Analytics));
}

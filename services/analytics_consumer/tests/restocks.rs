//! Restocks through the real pipeline: the inventory consumer restocks every second and is
//! killed (-9) twice mid-run; analytics must count exactly the distinct restocks on the
//! inventory topic. Restocks carry no order offset, so they are recognised by their growing
//! ids: a restarted worker's first restock must not be taken for a repeat of an earlier one.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::pipeline::{Pipeline, Service, count, exclusive};
use integration_tests::shared_broker;
use rskafka::client::partition::UnknownTopicHandling;
use shared::events::{InventoryOutcome, decode_inventory};

const ORDERS: u64 = 12_000;
const LIMIT: Duration = Duration::from_secs(300);

/// Every restock on the inventory topic: (records, distinct event ids).
async fn restocks_written(pipeline: &Pipeline) -> (usize, usize) {
    let broker = shared_broker();
    let client = shared::connect::data_client(&broker.connection_settings("restock-reader"), LIMIT)
        .await
        .expect("a data client");
    let mut records = 0;
    let mut distinct = BTreeSet::new();
    for partition in 0..pipeline.partitions {
        let partition_client = client
            .partition_client(
                &pipeline.names.inventory,
                partition,
                UnknownTopicHandling::Retry,
            )
            .await
            .expect("a partition client");
        let mut offset = 0;
        loop {
            let (batch, high_watermark) = partition_client
                .fetch_records(offset, 1..50_000_000, 100)
                .await
                .expect("fetch");
            let start = offset;
            for record in batch.into_iter().filter(|r| r.offset >= start) {
                offset = record.offset + 1;
                let value = record.record.value.unwrap_or_default();
                let event = decode_inventory(&value).expect("inventory writes valid events");
                if event.outcome == InventoryOutcome::Restocked {
                    records += 1;
                    distinct.insert(event.event_id);
                }
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    (records, distinct.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restocks_across_two_inventory_kills_are_each_counted_once() {
    let _slot = exclusive().await;
    let mut pipeline = Pipeline::create(&shared_broker().bootstrap(), "restock", 3).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 1_000);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", ORDERS);
    pipeline.set(Service::Inventory, "RESTOCK_INTERVAL_SEC", 1);
    pipeline.set(Service::Inventory, "RESTOCK_AMOUNT", 5);
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    for decided in [3_000, 7_000] {
        pipeline
            .metrics_until(&format!("{decided} decided orders"), LIMIT, |m| {
                count(m, "/processed_order_count") >= decided
            })
            .await;
        pipeline.kill(Service::Inventory);
        pipeline.start(Service::Inventory);
    }
    pipeline.reconcile(LIMIT, ORDERS, 0).await;
    // No more restocks once it is stopped: then the topic holds them all.
    assert!(pipeline.stop(Service::Inventory, LIMIT).success());
    let (records, distinct) = restocks_written(&pipeline).await;
    assert!(distinct > 0, "the run restocked");
    let metrics = pipeline
        .metrics_until("analytics to read every restock", LIMIT, |m| {
            m["lag_total"] == 0 && count(m, "/outcomes_total/restocked") >= distinct as u64
        })
        .await;
    assert_eq!(
        count(&metrics, "/outcomes_total/restocked"),
        distinct as u64,
        "each distinct restock counted once ({records} restock records)"
    );
    eprintln!(
        "{distinct} restocks ({records} records); {} repeated outcomes ignored",
        count(&metrics, "/duplicate_events_ignored")
    );
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
}

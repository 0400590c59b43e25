//! The three services through a proxy that loses 5% of the Produce answers of both writing
//! services (producer-order, and the inventory consumer's outcome, dead-letter and changelog
//! producers), nothing else broken: with idempotence the exact reconciliation holds and
//! `inventory-events` holds no record twice — counted by record, not only by `event_id`.

use std::collections::HashSet;
use std::time::Duration;

use integration_tests::broker::Storage;
use integration_tests::pipeline::{Pipeline, Service, exclusive};
use integration_tests::proxy::{Action, Fault, ProxiedBroker, api};
use rskafka::client::partition::UnknownTopicHandling;
use shared::settings::ConnectionSettings;

const ORDERS: u64 = 20_000;
const PARTITIONS: i32 = 6;
const LIMIT: Duration = Duration::from_secs(300);

/// Every record of a topic: (records, distinct event ids).
async fn count_records(broker: &ProxiedBroker, topic: &str) -> (usize, usize) {
    let settings = ConnectionSettings::plaintext(vec![broker.bootstrap()], "lossy-e2e-reader");
    let client = shared::connect::data_client(&settings, Duration::from_secs(30))
        .await
        .expect("data client");
    let mut records = 0;
    let mut event_ids = HashSet::new();
    for partition in 0..PARTITIONS {
        let partition_client = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let mut offset = 0;
        loop {
            let (batch, high_watermark) = partition_client
                .fetch_records(offset, 1..50_000_000, 100)
                .await
                .expect("fetch");
            let start = offset;
            for record in batch.into_iter().filter(|r| r.offset >= start) {
                offset = record.offset + 1;
                records += 1;
                let value: serde_json::Value =
                    serde_json::from_slice(record.record.value.as_deref().unwrap_or_default())
                        .expect("an inventory event");
                event_ids.insert(value["event_id"].as_str().unwrap_or_default().to_owned());
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    (records, event_ids.len())
}

/// Runs the lossy pipeline, the inventory's producers idempotent or not (producer-order always
/// is: duplicated orders would break the reconciliation's order count); returns (answers lost,
/// outcome records, distinct event ids).
async fn lossy_run(idempotence: bool) -> (u64, usize, usize) {
    let broker = ProxiedBroker::start(Storage::Memory);
    for writer in ["producer-order", "inventory-consumer"] {
        broker.proxy.inject(Fault {
            api_key: api::PRODUCE,
            client_prefix: writer.into(),
            rate: 0.05,
            action: Action::LoseResponse,
        });
    }
    let mut pipeline = Pipeline::create(&broker.bootstrap(), "lossy-e2e", PARTITIONS).await;
    pipeline.set(Service::Producer, "MODE", "burst");
    pipeline.set(Service::Producer, "TOTAL_EVENTS", ORDERS);
    pipeline.set(Service::Producer, "BURST_SIZE", 2000);
    pipeline.set(Service::Producer, "SLEEP_MS", 0);
    for service in [Service::Producer, Service::Inventory] {
        pipeline.set(service, "REQUEST_TIMEOUT_MS", 1000);
        // Smaller batches: more produce requests, so 5% of them is a real number.
        pipeline.set(service, "BATCH_MAX_BYTES", 16384);
    }
    pipeline.set(
        Service::Inventory,
        "ENABLE_IDEMPOTENCE",
        u8::from(idempotence),
    );

    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);
    pipeline.reconcile(LIMIT, ORDERS, 0).await;
    let lost = broker.proxy.counts().lost;
    broker.proxy.heal();

    let (records, distinct) = count_records(&broker, &pipeline.names.inventory).await;
    eprintln!(
        "idempotence {idempotence}: {lost} produce answers lost; inventory-events: {records} records, {distinct} event ids"
    );
    assert!(pipeline.stop(Service::Inventory, LIMIT).success());
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
    (lost, records, distinct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_answers_lost_on_every_hop_leave_no_record_twice() {
    let _slot = exclusive().await;
    let (lost, records, distinct) = lossy_run(true).await;
    assert!(lost >= 10, "only {lost} answers were lost");
    assert_eq!(distinct as u64, ORDERS, "one outcome per order");
    assert_eq!(records as u64, ORDERS, "no outcome record written twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idempotence_the_same_losses_write_outcomes_twice() {
    // Proof that the test above can fail (the inventory's producers without idempotence); the
    // reconciliation still holds, since analytics counts outcomes by event id.
    let _slot = exclusive().await;
    let (lost, records, distinct) = lossy_run(false).await;
    assert!(lost >= 10, "only {lost} answers were lost");
    assert_eq!(distinct as u64, ORDERS, "one outcome per order");
    assert!(
        records as u64 > ORDERS,
        "{lost} lost answers, yet no outcome record twice"
    );
}

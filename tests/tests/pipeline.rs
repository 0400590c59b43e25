//! The whole pipeline end to end: 100,000 orders through the three real services and a real
//! broker, with one attempt in ten failing. Every order must be seen by analytics, decided
//! exactly once, failed orders must match the dead letters, and nothing may be left uncommitted.

use std::time::Duration;

use integration_tests::pipeline::{Pipeline, Service, count, exclusive};
use integration_tests::shared_broker;

const ORDERS: u64 = 100_000;
const LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_orders_with_ten_percent_failures_all_reconcile() {
    let _slot = exclusive().await;
    let mut pipeline = Pipeline::create(&shared_broker().bootstrap(), "e2e", 6).await;
    pipeline.set(Service::Producer, "MODE", "burst");
    pipeline.set(Service::Producer, "TOTAL_EVENTS", ORDERS);
    pipeline.set(Service::Producer, "BURST_SIZE", ORDERS);
    pipeline.set(Service::Inventory, "FAIL_RATE", "0.1");
    // One retry: an order fails for good with probability 0.1² = 1%, about a thousand dead
    // letters, enough to check that failed outcomes and dead letters agree.
    pipeline.set(Service::Inventory, "MAX_RETRIES", 1);

    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);
    let metrics = pipeline.reconcile(LIMIT, ORDERS, 0).await;

    let reserved = count(&metrics, "/outcomes_total/reserved");
    let rejected = count(&metrics, "/outcomes_total/rejected");
    let failed = count(&metrics, "/outcomes_total/failed");
    assert!(
        reserved > 0 && rejected > 0 && failed > 0,
        "the run exercised every outcome: {reserved} reserved, {rejected} rejected, {failed} failed"
    );
    // 1% of 100k: far outside these bounds only if the failure model is broken.
    assert!((500..=1500).contains(&failed), "{failed} failed orders");

    assert!(pipeline.stop(Service::Inventory, LIMIT).success());
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
}

//! The inventory consumer (the service binary) behind the fault proxy with every request to
//! its group coordinator (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch) black-holed for longer than its session timeout, while its
//! fetches and produces pass: the coordinator expires the member, the member notices, drops
//! its partitions as lost and rejoins once the network returns, and every order still ends
//! with exactly one outcome.
//!
//! What "exactly one" means here is what the design promises, no more: the commits swallowed
//! by the black hole are lost, so after the rejoin the uncommitted tail is decided again
//! (at-least-once by design). A replay repeats the outcome record itself — same `event_id`,
//! derived from order id and outcome — so replays are visible as repeated records and are
//! allowed. What is not allowed, and what this test counts per `order_id` in
//! `inventory-events`, is an order with no outcome, or with two *different* outcomes (two
//! event ids): that would be an order lost or decided twice. Doubles of any other kind are
//! detectable too: the producers are idempotent (a lost Produce answer never writes a record
//! twice) and the worker commits a batch only after all its outputs are acknowledged, so the
//! only repeats the topic may hold are the tail replayed after the lost commits.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use integration_tests::broker::Storage;
use integration_tests::pipeline::{Pipeline, Service, count, exclusive};
use integration_tests::proxy::{Action, Fault, ProxiedBroker, api};
use shared::settings::ConnectionSettings;

const ORDERS: u64 = 16_000;
const RATE: u64 = 1_000;
const PARTITIONS: i32 = 6;
const LIMIT: Duration = Duration::from_secs(300);
/// The pipeline harness runs the inventory with `SESSION_TIMEOUT_MS=6000`.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a connection that swallowed a request stays silent before the proxy closes it.
const SILENCE: Duration = Duration::from_secs(8);

/// Every request kind that goes to a group coordinator.
const COORDINATOR_APIS: [i16; 7] = [
    api::FIND_COORDINATOR,
    api::JOIN_GROUP,
    14, // SyncGroup
    api::HEARTBEAT,
    13, // LeaveGroup
    api::OFFSET_COMMIT,
    9, // OffsetFetch
];

/// Every record value of a topic, read by a client the proxy leaves alone.
async fn read_values(broker: &ProxiedBroker, topic: &str) -> Vec<serde_json::Value> {
    let settings = ConnectionSettings::plaintext(vec![broker.bootstrap()], "lossy-group-reader");
    integration_tests::topic::read_all(&settings, topic, PARTITIONS)
        .await
        .into_iter()
        .map(|(_, record)| {
            serde_json::from_slice(record.record.value.as_deref().unwrap_or_default())
                .expect("a JSON event")
        })
        .collect()
}

/// What `inventory-events` says about each order.
#[derive(Debug, Default)]
struct OutcomesPerOrder {
    /// order id → the distinct (event id, outcome) pairs written for it.
    decided: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Outcome records (restocks aside), repeats included.
    records: usize,
}

impl OutcomesPerOrder {
    fn of(events: &[serde_json::Value]) -> Self {
        let mut outcomes = Self::default();
        for event in events {
            let Some(order_id) = event["order_id"].as_str() else {
                continue; // a restock answers no order
            };
            outcomes.records += 1;
            outcomes
                .decided
                .entry(order_id.to_owned())
                .or_default()
                .insert((
                    event["event_id"].as_str().unwrap_or_default().to_owned(),
                    event["outcome"].as_str().unwrap_or_default().to_owned(),
                ));
        }
        outcomes
    }

    /// Panics unless each of `orders` has exactly one outcome and nothing else has one;
    /// returns how many outcome records were replays.
    fn assert_one_each(&self, orders: &BTreeSet<String>) -> usize {
        let missing: Vec<&String> = orders
            .iter()
            .filter(|id| !self.decided.contains_key(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "{} orders without an outcome, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        let doubled: Vec<_> = self.decided.iter().filter(|(_, o)| o.len() > 1).collect();
        assert!(
            doubled.is_empty(),
            "{} orders decided twice, e.g. {:?}",
            doubled.len(),
            doubled.first()
        );
        let unknown = self
            .decided
            .keys()
            .filter(|id| !orders.contains(*id))
            .count();
        assert_eq!(unknown, 0, "outcomes for orders never produced");
        self.records - self.decided.len()
    }
}

/// Waits until the coordinator (asked by a client the proxy lets through) lists no member.
async fn until_expired(pipeline: &mut Pipeline) -> Duration {
    let started = Instant::now();
    loop {
        let (state, members) = pipeline.inventory_group_state().await;
        if members == 0 {
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(90) {
            pipeline.fail(&format!(
                "the cut-off member was never expired (group {state}, {members} members)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn black_holed_coordinator(storage: Storage) {
    let broker = ProxiedBroker::start(storage);
    let mut pipeline = Pipeline::create(&broker.bootstrap(), "lossy-group", PARTITIONS).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", RATE);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", ORDERS);
    pipeline.set(Service::Inventory, "FAIL_RATE", "0.1");
    pipeline.set(Service::Inventory, "MAX_RETRIES", 1);
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);

    // Mid-run, with orders still arriving: cut the inventory off its coordinator.
    let before = pipeline
        .metrics_until("the first outcomes", LIMIT, |m| {
            count(m, "/processed_order_count") >= 3_000
        })
        .await;
    let (state, members) = pipeline.inventory_group_state().await;
    assert_eq!((state.as_str(), members), ("Stable", 1), "{before}");
    let cut_at = Instant::now();
    for api_key in COORDINATOR_APIS {
        broker.proxy.inject(Fault {
            api_key,
            client_prefix: "inventory-consumer".into(),
            rate: 1.0,
            action: Action::BlackHole(SILENCE),
        });
    }
    let expired_after = until_expired(&mut pipeline).await;
    // The outage goes on for another session timeout after the expiry (the length of the
    // fault, not a wait for something): the member's own heartbeat clock runs out too, its
    // commits fail, and orders pile up uncommitted.
    tokio::time::sleep(SESSION_TIMEOUT).await;
    let cut_for = cut_at.elapsed();
    let swallowed = broker.proxy.counts().black_holed;
    broker.proxy.heal();
    assert!(swallowed > 0, "the proxy swallowed no coordinator request");

    let metrics = pipeline.reconcile(LIMIT, ORDERS, 0).await;
    let (state, members) = pipeline.inventory_group_state().await;
    assert_eq!(
        (state.as_str(), members),
        ("Stable", 1),
        "the member rejoined"
    );
    // It knew it had been expired: it gave its partitions up as lost and joined anew (the
    // inventory's status, as analytics shows it), rather than carrying on as if nothing
    // happened.
    let rebalances = metrics["pipeline"]["inventory_group"]["rebalances"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        rebalances.iter().any(|r| r["cause"]
            .as_str()
            .is_some_and(|cause| cause.contains("lost"))),
        "no rebalance after lost partitions: {rebalances:?}"
    );
    assert!(
        pipeline.is_running(Service::Inventory),
        "the inventory consumer rode out the outage"
    );

    let orders: BTreeSet<String> = read_values(&broker, &pipeline.names.orders)
        .await
        .iter()
        .map(|order| order["order_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        orders.len() as u64,
        ORDERS,
        "every order once in the order topic"
    );
    let outcomes = OutcomesPerOrder::of(&read_values(&broker, &pipeline.names.inventory).await);
    let replays = outcomes.assert_one_each(&orders);
    eprintln!(
        "coordinator cut off for {cut_for:?} ({swallowed} requests swallowed), member expired \
         after {expired_after:?}; {replays} outcome records replayed after the lost commits, \
         analytics ignored {} repeats",
        count(&metrics, "/duplicate_events_ignored")
    );
    assert!(pipeline.stop(Service::Inventory, LIMIT).success());
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_black_holed_past_the_session_timeout_expires_the_member_and_loses_no_order()
{
    let _slot = exclusive().await;
    black_holed_coordinator(Storage::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_black_holed_past_the_session_timeout_on_sqlite_storage() {
    let _slot = exclusive().await;
    let data = tempfile::tempdir().expect("a data folder");
    black_holed_coordinator(Storage::Durable(data.path().to_path_buf())).await;
}

//! A hole in a partition's offsets below the high watermark, served to our group consumer by
//! the hostile front (`integration_tests::fake_broker`) in front of a real Nisshi. A hole that
//! is filled by the next fetch (Nisshi's memory engine still storing a batch it has counted)
//! is waited for, and every record arrives once, in order. A hole that lasts (as compaction
//! leaves) is read past, but only after the fetcher has asked again for at least its grace,
//! and every record after it still arrives, in order.

use std::time::{Duration, Instant};

use integration_tests::broker::Storage;
use integration_tests::fake_broker::{Delivered, HostileBroker, Hostility, RemovedBatch};
use integration_tests::group::{create_topic_at, test_config};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use shared::group::{ConsumerEvent, GroupConsumer};
use shared::settings::ConnectionSettings;

const FETCH: i16 = 1;
const RECORDS: i64 = 20;
const LIMIT: Duration = Duration::from_secs(60);
/// How long a hole must last before the fetcher reads past it (`GAP_GRACE` in
/// shared/src/group/fetch/gaps.rs, private there).
const GAP_GRACE: Duration = Duration::from_secs(2);
/// The consumer's client id, which the front's plans target.
const CONSUMER: &str = "hole-consumer";

fn settings(broker: &HostileBroker, client_id: &str) -> ConnectionSettings {
    ConnectionSettings::plaintext(vec![broker.bootstrap()], client_id)
}

fn value(offset: i64) -> String {
    format!("record-{offset}")
}

/// A one-partition topic holding `RECORDS` records, each produced and acknowledged alone so
/// each is its own batch, with value `record-<offset>`.
async fn topic_of_single_batches(broker: &HostileBroker, prefix: &str) -> String {
    let writer = settings(broker, "hole-writer");
    let topic = create_topic_at(&writer, prefix, 1).await;
    let client = shared::connect::data_client(&writer, LIMIT)
        .await
        .expect("data client");
    let partition = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    for offset in 0..RECORDS {
        let record = Record {
            key: None,
            value: Some(value(offset).into_bytes()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        };
        let written = partition
            .produce(vec![record], Compression::NoCompression)
            .await
            .expect("produce");
        assert_eq!(written, [offset], "one record per batch, in order");
    }
    topic
}

/// A record as the application saw it: offset, value, and when its batch was handed over.
#[derive(Debug)]
struct Seen {
    offset: i64,
    value: String,
    at: Instant,
}

/// Starts a group consumer of `topic` through the front and reads until `count` records have
/// arrived (or fails the test after `LIMIT`).
async fn consume(broker: &HostileBroker, topic: &str, count: usize) -> Vec<Seen> {
    let group = integration_tests::unique_name("hole-group");
    let mut consumer = GroupConsumer::start(
        &settings(broker, CONSUMER),
        test_config(&group, topic),
        LIMIT,
    )
    .await
    .expect("the consumer starts");
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut seen: Vec<Seen> = Vec::new();
    while seen.len() < count {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Ok(Some(Ok(ConsumerEvent::Records(batch)))) => {
                let at = Instant::now();
                seen.extend(
                    batch.records.iter().map(|r| Seen {
                        offset: r.offset,
                        value: String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                            .into_owned(),
                        at,
                    }),
                );
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("expected records, got {other:?}"),
            Err(_) => panic!(
                "only {} of {count} records within {LIMIT:?} (offsets {:?}); stuck: {:?}",
                seen.len(),
                seen.iter().map(|s| s.offset).collect::<Vec<_>>(),
                consumer.stuck()
            ),
        }
    }
    assert!(consumer.stuck().is_empty(), "{:?}", consumer.stuck());
    consumer.close().await.expect("close");
    seen
}

/// The consumer's altered Fetch answers.
fn holes_served(broker: &HostileBroker) -> Vec<Delivered> {
    broker
        .delivered()
        .into_iter()
        .filter(|d| d.api_key == FETCH && d.client_id == CONSUMER)
        .collect()
}

fn assert_in_order(seen: &[Seen], expected: &[i64]) {
    let offsets: Vec<i64> = seen.iter().map(|s| s.offset).collect();
    assert_eq!(
        offsets, expected,
        "the offsets the application saw, in order"
    );
    for record in seen {
        assert_eq!(record.value, value(record.offset), "{record:?}");
    }
}

#[tokio::test]
async fn a_hole_filled_by_the_next_fetch_is_waited_for_and_nothing_is_lost() {
    let broker = HostileBroker::start(Storage::Memory);
    let topic = topic_of_single_batches(&broker, "transient-hole").await;
    broker.plan(CONSUMER, FETCH, Hostility::FirstBatchMissing);

    let seen = consume(&broker, &topic, RECORDS as usize).await;

    let served = holes_served(&broker);
    assert_eq!(broker.pending(), 0, "the hole was served: {served:?}");
    assert_eq!(served.len(), 1, "{served:?}");
    let [removed] = served[0].removed.as_slice() else {
        panic!("one batch cut: {served:?}");
    };
    assert_eq!(
        (removed.topic.as_str(), removed.partition),
        (topic.as_str(), 0)
    );
    assert!((0..RECORDS).contains(&removed.base_offset), "{removed:?}");
    let expected: Vec<i64> = (0..RECORDS).collect();
    assert_in_order(&seen, &expected);
}

#[tokio::test]
async fn a_lasting_hole_is_read_past_after_the_grace_and_the_rest_arrives_in_order() {
    const MISSING: i64 = 5;
    let broker = HostileBroker::start(Storage::Memory);
    let topic = topic_of_single_batches(&broker, "lasting-hole").await;
    broker.plan(
        CONSUMER,
        FETCH,
        Hostility::BatchMissing {
            base_offset: MISSING,
        },
    );

    let expected: Vec<i64> = (0..RECORDS).filter(|o| *o != MISSING).collect();
    let seen = consume(&broker, &topic, expected.len()).await;

    // Everything up to the last record, in order, and not the missing one: read past, it
    // could only have come before offset 6.
    assert_in_order(&seen, &expected);
    let served = holes_served(&broker);
    let hole = RemovedBatch {
        topic: topic.clone(),
        partition: 0,
        base_offset: MISSING,
        last_offset: Some(MISSING),
    };
    assert!(
        served.iter().all(|d| d.removed == [hole.clone()]),
        "{served:?}"
    );
    // Asked again at the hole rather than reading on at its first sight.
    assert!(
        served.len() >= 2,
        "the hole was asked for again: {served:?}"
    );
    let first_served = served.first().map(|d| d.at).expect("the hole was served");
    let after = seen
        .iter()
        .find(|s| s.offset > MISSING)
        .expect("records after the hole");
    let waited = after.at.duration_since(first_served);
    eprintln!(
        "offset {} arrived {waited:?} after the hole was first served; the hole was served {} times",
        after.offset,
        served.len()
    );
    assert!(
        waited >= GAP_GRACE,
        "offset {} arrived {waited:?} after the hole was first served, less than the {GAP_GRACE:?} grace",
        after.offset
    );
    // The broker holds the record: the hole was the front's doing (rskafka passes untouched).
    let all =
        integration_tests::topic::read_all(&settings(&broker, "hole-checker"), &topic, 1).await;
    assert_eq!(all.len(), RECORDS as usize, "the broker holds every record");
}

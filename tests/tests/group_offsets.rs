//! Committed offsets and `auto.offset.reset` against a real broker.

use std::time::Duration;

use integration_tests::group::{DrivenConsumer, Stop, create_topic, produce, test_config};
use integration_tests::{shared_broker, unique_name};
use shared::group::{ConsumerEvent, GroupConsumer, MemberPhase, OffsetReset, TopicPartition};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_new_member_resumes_exactly_after_the_committed_offset() {
    let broker = shared_broker();
    let topic = create_topic(broker, "resume", 1).await;
    produce(broker, &topic, 1, 2000, "r").await;
    let group = unique_name("g");
    let mut config = test_config(&group, &topic);
    config.enable_auto_commit = false;

    let mut consumer =
        GroupConsumer::start(&broker.connection_settings("t"), config.clone(), LIMIT)
            .await
            .expect("start");
    let mut consumed = 0usize;
    while consumed < 1000 {
        match tokio::time::timeout(LIMIT, consumer.next())
            .await
            .expect("in time")
        {
            Some(Ok(ConsumerEvent::Records(batch))) => {
                let wanted = 1000 - consumed;
                consumed += batch.records.len().min(wanted);
            }
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let outcomes = consumer
        .commit(vec![(TopicPartition::new(&topic, 0), 1000)])
        .await
        .expect("commit");
    assert!(outcomes.iter().all(|o| o.is_committed()), "{outcomes:?}");
    consumer.close().await.expect("close");

    let mut next = DrivenConsumer::start(broker, config).await;
    let records = next.records(1000, LIMIT).await;
    let offsets: Vec<i64> = records.iter().map(|(_, o, _)| *o).collect();
    assert_eq!(
        offsets,
        (1000..2000).collect::<Vec<i64>>(),
        "no gap, no duplicate"
    );
    assert_eq!(records[0].2, "r-p0-1000");
    next.stop(Stop::Close).await.expect("close");
}

#[tokio::test]
async fn earliest_reads_from_the_start() {
    let broker = shared_broker();
    let topic = create_topic(broker, "earliest", 1).await;
    produce(broker, &topic, 1, 10, "old").await;
    let mut config = test_config(&unique_name("g"), &topic);
    config.auto_offset_reset = OffsetReset::Earliest;
    let mut consumer = DrivenConsumer::start(broker, config).await;
    let records = consumer.records(10, LIMIT).await;
    assert_eq!(records[0].1, 0);
    assert_eq!(records[0].2, "old-p0-0");
    consumer.stop(Stop::Close).await.expect("close");
}

#[tokio::test]
async fn latest_skips_what_was_there_and_reads_what_comes_next() {
    let broker = shared_broker();
    let topic = create_topic(broker, "latest", 1).await;
    produce(broker, &topic, 1, 10, "old").await;
    let mut config = test_config(&unique_name("g"), &topic);
    config.auto_offset_reset = OffsetReset::Latest;
    let mut consumer = GroupConsumer::start(&broker.connection_settings("t"), config, LIMIT)
        .await
        .expect("start");
    // The position is resolved when the partition is assigned; produce after that.
    match tokio::time::timeout(LIMIT, consumer.next())
        .await
        .expect("in time")
    {
        Some(Ok(ConsumerEvent::Assigned(_))) => {}
        other => panic!("expected the assignment first, got {other:?}"),
    }
    assert_eq!(consumer.snapshot().phase, MemberPhase::Stable);
    let partition = TopicPartition::new(&topic, 0);
    assert_eq!(
        consumer.positions().get(&partition),
        Some(&10),
        "latest = the end of the log"
    );
    produce(broker, &topic, 1, 5, "new").await;
    let mut values = Vec::new();
    while values.len() < 5 {
        match tokio::time::timeout(LIMIT, consumer.next())
            .await
            .expect("in time")
        {
            Some(Ok(ConsumerEvent::Records(batch))) => {
                values.extend(batch.records.iter().map(|r| {
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
                }))
            }
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        values,
        (0..5).map(|i| format!("new-p0-{i}")).collect::<Vec<_>>()
    );
    consumer.close().await.expect("close");
}

#[tokio::test]
async fn none_fails_naming_the_partition_without_a_committed_offset() {
    let broker = shared_broker();
    let topic = create_topic(broker, "none", 1).await;
    let mut config = test_config(&unique_name("g"), &topic);
    config.auto_offset_reset = OffsetReset::None;
    let mut consumer = DrivenConsumer::start(broker, config).await;
    let failure = consumer.failure(LIMIT).await;
    assert_eq!(
        failure,
        format!("no committed offset for {topic}-0 and auto.offset.reset=none")
    );
    consumer.stop(Stop::Close).await.ok();
}

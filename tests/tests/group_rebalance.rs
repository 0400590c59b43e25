//! Rebalance hooks, pause/resume, lag, poll time-outs and recovery from being removed from the
//! group, against a real broker.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::group::{DrivenConsumer, Stop, create_topic, produce, test_config};
use integration_tests::{shared_broker, unique_name};
use shared::group::coordinator::{Coordinator, MemberIdentityParts};
use shared::group::{ConsumerEvent, GroupConsumer, MemberPhase, TopicPartition};

const LIMIT: Duration = Duration::from_secs(60);

async fn next_event(consumer: &mut GroupConsumer) -> ConsumerEvent {
    match tokio::time::timeout(LIMIT, consumer.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn committing_in_the_revoke_hook_hands_the_partition_over_without_duplicates() {
    let broker = shared_broker();
    let topic = create_topic(broker, "hook", 1).await;
    let written = produce(broker, &topic, 1, 100, "r").await;
    let group = unique_name("g");
    let mut config = test_config(&group, &topic);
    config.enable_auto_commit = false;

    let mut first = GroupConsumer::start(&broker.connection_settings("t"), config.clone(), LIMIT)
        .await
        .expect("start");
    let mut read = Vec::new();
    while read.len() < 100 {
        if let ConsumerEvent::Records(batch) = next_event(&mut first).await {
            read.extend(batch.records.into_iter().map(|r| r.offset));
        }
    }
    let mut second = DrivenConsumer::start(broker, config).await;
    // The first member must keep polling for the rebalance to reach it.
    let revoked = loop {
        if let ConsumerEvent::Revoked { partitions, lost } = next_event(&mut first).await {
            assert!(!lost);
            break partitions;
        }
    };
    assert_eq!(revoked, vec![TopicPartition::new(&topic, 0)]);
    // The on-revoke hook: commit what was processed before polling on.
    let outcomes = first.commit_positions().await.expect("commit in the hook");
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].is_committed(), "{outcomes:?}");
    assert_eq!(outcomes[0].offset, 100);

    let events = tokio::spawn(async move {
        loop {
            match first.next().await {
                Some(Ok(_)) => {}
                _ => return first,
            }
        }
    });
    second
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 1
        })
        .await;
    let after = produce(broker, &topic, 1, 10, "after").await;
    let records = second.records(10, LIMIT).await;
    let values: BTreeSet<String> = records.iter().map(|(_, _, v)| v.clone()).collect();
    assert_eq!(
        values, after,
        "the second member starts at the committed 100, not at 0"
    );
    assert_eq!(records[0].1, 100);
    assert_eq!(written.len(), 100);
    events.abort();
    second.stop(Stop::Close).await.expect("close");
}

#[tokio::test]
async fn a_paused_partition_delivers_nothing_until_resumed() {
    let broker = shared_broker();
    let topic = create_topic(broker, "pause", 2).await;
    produce(broker, &topic, 2, 20, "r").await;
    let config = test_config(&unique_name("g"), &topic);
    let mut consumer = GroupConsumer::start(&broker.connection_settings("t"), config, LIMIT)
        .await
        .expect("start");
    let paused = TopicPartition::new(&topic, 0);
    let assigned = loop {
        if let ConsumerEvent::Assigned(partitions) = next_event(&mut consumer).await {
            break partitions;
        }
    };
    assert_eq!(assigned.len(), 2);
    consumer.pause(&paused);
    assert_eq!(consumer.paused(), vec![paused.clone()]);
    let mut from_other = 0;
    while from_other < 20 {
        if let ConsumerEvent::Records(batch) = next_event(&mut consumer).await {
            assert_ne!(batch.partition, paused, "nothing from the paused partition");
            from_other += batch.records.len();
        }
    }
    consumer.resume(&paused);
    let mut from_resumed = 0;
    while from_resumed < 20 {
        if let ConsumerEvent::Records(batch) = next_event(&mut consumer).await {
            assert_eq!(batch.partition, paused);
            from_resumed += batch.records.len();
        }
    }
    assert_eq!(consumer.lag().values().sum::<i64>(), 0, "all read: no lag");
    assert_eq!(consumer.positions().get(&paused), Some(&20));
    consumer.close().await.expect("close");
}

#[tokio::test]
async fn lag_is_the_high_watermark_minus_the_position() {
    let broker = shared_broker();
    let topic = create_topic(broker, "lag", 1).await;
    produce(broker, &topic, 1, 50, "r").await;
    let mut config = test_config(&unique_name("g"), &topic);
    config.max_partition_fetch_bytes = 256; // small fetches: lag shrinks batch by batch
    let mut consumer = GroupConsumer::start(&broker.connection_settings("t"), config, LIMIT)
        .await
        .expect("start");
    let partition = TopicPartition::new(&topic, 0);
    let mut seen = 0usize;
    while seen < 50 {
        if let ConsumerEvent::Records(batch) = next_event(&mut consumer).await {
            seen += batch.records.len();
            let lag = consumer.lag()[&partition];
            assert_eq!(lag, batch.high_watermark - consumer.positions()[&partition]);
            assert_eq!(lag, 50 - seen as i64, "after {seen} records");
        }
    }
    consumer.close().await.expect("close");
}

#[tokio::test]
async fn a_member_that_stops_polling_leaves_and_rejoins_when_it_polls_again() {
    let broker = shared_broker();
    let topic = create_topic(broker, "poll", 6).await;
    let group = unique_name("g");
    let mut config = test_config(&group, &topic);
    config.session_timeout = Duration::from_secs(30);
    let mut slow_config = config.clone();
    slow_config.max_poll_interval = Duration::from_secs(2);

    let mut slow = DrivenConsumer::start(broker, slow_config).await;
    slow.wait_for(LIMIT, |s| {
        s.phase == MemberPhase::Stable && s.assignment.len() == 6
    })
    .await;
    let mut steady = DrivenConsumer::start(broker, config).await;
    steady
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 3
        })
        .await;

    slow.stalled.send_replace(true);
    // Long before the 30 s session timeout, the stalled member has left.
    steady
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 6
        })
        .await;
    slow.stalled.send_replace(false);
    slow.wait_for(LIMIT, |s| {
        s.phase == MemberPhase::Stable && s.assignment.len() == 3
    })
    .await;
    steady
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 3
        })
        .await;
    slow.stop(Stop::Close).await.expect("close");
    steady.stop(Stop::Close).await.expect("close");
}

/// An application waiting in `next()` for records that do not come is polling, not stuck:
/// like Java's consumer calling `poll` again after each empty return, it stays in the group
/// however long the topic is idle.
#[tokio::test]
async fn an_idle_member_waiting_for_records_outlives_max_poll_interval() {
    let broker = shared_broker();
    let topic = create_topic(broker, "idle", 2).await;
    let group = unique_name("g");
    let mut config = test_config(&group, &topic);
    config.max_poll_interval = Duration::from_secs(1);
    let mut member = DrivenConsumer::start(broker, config).await;
    member
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 2
        })
        .await;
    let joined = member.snapshot.borrow().clone();

    // Nothing to await here: the behaviour is that nothing happens. Four intervals of silence.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let now = member.snapshot.borrow().clone();
    assert_eq!(now.phase, MemberPhase::Stable);
    assert_eq!(now.generation, joined.generation, "no rebalance");
    assert_eq!(now.member_id, joined.member_id, "it never left");
    assert_eq!(now.rebalances, joined.rebalances);
    member.stop(Stop::Close).await.expect("close");
}

#[tokio::test]
async fn a_member_removed_from_the_group_rejoins_with_a_new_member_id() {
    let broker = shared_broker();
    let topic = create_topic(broker, "kicked", 2).await;
    let group = unique_name("g");
    let mut member = DrivenConsumer::start(broker, test_config(&group, &topic)).await;
    let before = member
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 2
        })
        .await;

    // An operator removes the member (as `kafka-consumer-groups --delete-members` would).
    let mut admin = Coordinator::new(&broker.connection_settings("admin"), &group, LIMIT);
    let identity = MemberIdentityParts {
        group_id: group.clone(),
        member_id: before.member_id.clone(),
        generation_id: before.generation,
        group_instance_id: None,
    };
    assert_eq!(admin.leave(&identity).await.expect("LeaveGroup"), 0);

    let after = member
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable
                && s.assignment.len() == 2
                && s.member_id != before.member_id
        })
        .await;
    assert!(after.generation > before.generation);
    let written = produce(broker, &topic, 2, 5, "after").await;
    let read: BTreeSet<String> = member
        .records(10, LIMIT)
        .await
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(read, written, "it consumes again after rejoining");
    member.stop(Stop::Close).await.expect("close");
}

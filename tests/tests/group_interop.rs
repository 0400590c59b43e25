//! Our member shares groups with real peer clients: confluent-kafka (librdkafka, range) and
//! kafka-python (static, `group_instance_id`). Partitions split, every record is read exactly
//! once, once with our member as the leader and once with the peer as the leader.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::group::{DrivenConsumer, Stop, create_topic, produce, test_config};
use integration_tests::peers::{PeerClient, PeerMember};
use integration_tests::{shared_broker, unique_name};
use shared::group::MemberPhase;

const LIMIT: Duration = Duration::from_secs(90);

async fn split_and_read_once(
    peer_client: PeerClient,
    peer_instance: Option<&str>,
    ours_first: bool,
) {
    let broker = shared_broker();
    let topic = create_topic(broker, "interop", 6).await;
    let group = unique_name("interop");
    let mut config = test_config(&group, &topic);
    config.session_timeout = Duration::from_secs(10);
    if peer_instance.is_some() {
        config.group_instance_id = Some(unique_name("ours"));
    }

    let (mut ours, mut peer) = if ours_first {
        let mut ours = DrivenConsumer::start(broker, config).await;
        ours.wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 6
        })
        .await;
        let peer = PeerMember::start(
            peer_client,
            &broker.bootstrap(),
            &group,
            &topic,
            peer_instance,
        );
        (ours, peer)
    } else {
        let mut peer = PeerMember::start(
            peer_client,
            &broker.bootstrap(),
            &group,
            &topic,
            peer_instance,
        );
        peer.until(LIMIT, |p| p.assigned.len() == 6).await;
        let ours = DrivenConsumer::start(broker, config).await;
        (ours, peer)
    };
    let snapshot = ours
        .wait_for(LIMIT, |s| {
            s.phase == MemberPhase::Stable && s.assignment.len() == 3
        })
        .await;
    peer.until(LIMIT, |p| p.assigned.len() == 3).await;
    assert_eq!(snapshot.leader, ours_first, "who leads the group");
    let ours_set: BTreeSet<i32> = snapshot.assignment.iter().map(|p| p.partition).collect();
    let peer_set: BTreeSet<i32> = peer.assigned.iter().map(|(_, p)| *p).collect();
    assert!(
        ours_set.is_disjoint(&peer_set),
        "ours {ours_set:?}, peer {peer_set:?}"
    );
    assert_eq!(ours_set.len() + peer_set.len(), 6);

    let written = produce(broker, &topic, 6, 100, "interop").await;
    let mut seen: Vec<String> = Vec::new();
    let expected_ours = written
        .iter()
        .filter(|v| ours_set.iter().any(|p| v.contains(&format!("-p{p}-"))))
        .count();
    seen.extend(
        ours.records(expected_ours, LIMIT)
            .await
            .into_iter()
            .map(|(_, _, v)| v),
    );
    let expected_peer = written.len() - expected_ours;
    peer.until(LIMIT, |p| p.records.len() >= expected_peer)
        .await;
    seen.extend(ours.drain_records());
    seen.extend(peer.records.iter().cloned());
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        unique.len(),
        "no record read twice across the two clients"
    );
    assert_eq!(unique, written, "every record read");

    peer.close().await;
    ours.stop(Stop::Close).await.expect("close");
}

#[tokio::test]
async fn with_confluent_kafka_range_and_our_member_leading() {
    split_and_read_once(PeerClient::Confluent, None, true).await;
}

#[tokio::test]
async fn with_confluent_kafka_range_and_the_peer_leading() {
    split_and_read_once(PeerClient::Confluent, None, false).await;
}

#[tokio::test]
async fn with_static_kafka_python_and_our_member_leading() {
    split_and_read_once(PeerClient::KafkaPython, Some("kafka-python-1"), true).await;
}

#[tokio::test]
async fn with_static_kafka_python_and_the_peer_leading() {
    split_and_read_once(PeerClient::KafkaPython, Some("kafka-python-2"), false).await;
}

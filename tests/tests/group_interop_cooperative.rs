//! Cooperative-sticky (KIP-429) across clients: our member and a confluent-kafka consumer
//! (librdkafka, `partition.assignment.strategy=cooperative-sticky`) in one group, each leading
//! once. The first member gives up only the partitions that move, as its own revoke hook
//! reports, and every record is read exactly once. And a member offering only an eager
//! protocol cannot join a cooperative group: INCONSISTENT_GROUP_PROTOCOL, as Kafka says.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::group::{
    DrivenConsumer, Observed, Stop, create_topic, produce, test_config,
};
use integration_tests::peers::{PeerClient, PeerMember};
use integration_tests::{shared_broker, unique_name};
use shared::group::{MemberPhase, MemberSnapshot, TopicPartition};

const LIMIT: Duration = Duration::from_secs(90);

fn owns(count: usize) -> impl Fn(&MemberSnapshot) -> bool {
    move |s| s.phase == MemberPhase::Stable && s.assignment.len() == count
}

/// Our member's revocations and records so far, without waiting.
fn drain(
    ours: &mut DrivenConsumer,
    revoked: &mut Vec<Vec<TopicPartition>>,
    seen: &mut Vec<String>,
) {
    while let Ok(observed) = ours.events.try_recv() {
        match observed {
            Observed::Revoked(p) => revoked.push(p),
            Observed::Record { value, .. } => seen.push(value),
            Observed::Failed(e) => panic!("our member failed: {e}"),
            Observed::Assigned(_) => {}
        }
    }
}

async fn cooperative_hand_over(ours_first: bool) {
    let broker = shared_broker();
    let topic = create_topic(broker, "coop-interop", 6).await;
    let group = unique_name("coop-interop");
    let mut config = test_config(&group, &topic);
    config.session_timeout = Duration::from_secs(10);
    config.assignors = vec!["cooperative-sticky".into()];
    let before = produce(broker, &topic, 6, 100, "before").await;
    let start_peer = || {
        PeerMember::start_with(
            PeerClient::Confluent,
            &broker.bootstrap(),
            &group,
            &topic,
            None,
            "cooperative-sticky",
        )
    };

    let (mut ours, mut peer) = if ours_first {
        let mut ours = DrivenConsumer::start(broker, config).await;
        ours.wait_for(LIMIT, owns(6)).await;
        (ours, start_peer())
    } else {
        let mut peer = start_peer();
        peer.until(LIMIT, |p| p.assigned.len() == 6).await;
        (DrivenConsumer::start(broker, config).await, peer)
    };
    let snapshot = ours.wait_for(LIMIT, owns(3)).await;
    peer.until(LIMIT, |p| p.assigned.len() == 3).await;
    assert_eq!(snapshot.leader, ours_first, "who leads the group");
    assert_eq!(snapshot.protocol, "cooperative-sticky");
    let ours_set: BTreeSet<i32> = snapshot.assignment.iter().map(|p| p.partition).collect();
    let peer_set: BTreeSet<i32> = peer.assigned.iter().map(|(_, p)| *p).collect();
    assert!(
        ours_set.is_disjoint(&peer_set),
        "ours {ours_set:?}, peer {peer_set:?}"
    );

    let after = produce(broker, &topic, 6, 100, "after").await;
    let expected: BTreeSet<String> = before.union(&after).cloned().collect();
    let mut our_revoked = Vec::new();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        drain(&mut ours, &mut our_revoked, &mut seen);
        if seen.len() + peer.records.len() >= expected.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records missing after {LIMIT:?}"
        );
        peer.absorb_for(Duration::from_millis(200)).await;
    }
    seen.extend(peer.records.iter().cloned());
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        unique.len(),
        "no record read twice across the two clients"
    );
    assert_eq!(unique, expected, "every record read");

    // The first member owned all six and gave up exactly the three that moved, in one
    // revocation; the newcomer gave up nothing.
    let (first_revoked, newcomer_revoked): (Vec<BTreeSet<i32>>, Vec<BTreeSet<i32>>) = {
        let ours: Vec<BTreeSet<i32>> = our_revoked
            .iter()
            .map(|r| r.iter().map(|p| p.partition).collect())
            .collect();
        let peer: Vec<BTreeSet<i32>> = peer
            .revoked
            .iter()
            .map(|r| r.iter().map(|(_, p)| *p).collect())
            .collect();
        let (first, newcomer) = if ours_first {
            (ours, peer)
        } else {
            (peer, ours)
        };
        // librdkafka may call on_revoke with nothing in it; only real revocations count.
        (
            first.into_iter().filter(|r| !r.is_empty()).collect(),
            newcomer,
        )
    };
    let newcomer_set = if ours_first { &peer_set } else { &ours_set };
    eprintln!(
        "first member revoked {first_revoked:?}, newcomer {newcomer_revoked:?}, newcomer holds {newcomer_set:?}, {} records",
        seen.len()
    );
    assert_eq!(
        first_revoked,
        vec![newcomer_set.clone()],
        "the first member revoked only the partitions that moved"
    );
    assert!(
        newcomer_revoked.iter().all(BTreeSet::is_empty),
        "the newcomer revoked nothing: {newcomer_revoked:?}"
    );

    peer.close().await;
    ours.stop(Stop::Close).await.expect("close");
}

#[tokio::test]
async fn cooperative_sticky_with_confluent_kafka_and_our_member_leading() {
    cooperative_hand_over(true).await;
}

#[tokio::test]
async fn cooperative_sticky_with_confluent_kafka_and_the_peer_leading() {
    cooperative_hand_over(false).await;
}

#[tokio::test]
async fn an_eager_only_member_cannot_join_a_cooperative_group_inconsistent_group_protocol() {
    let broker = shared_broker();
    let topic = create_topic(broker, "coop-mixed", 6).await;
    let group = unique_name("coop-mixed");
    let mut cooperative = test_config(&group, &topic);
    cooperative.assignors = vec!["cooperative-sticky".into()];
    let mut eager = test_config(&group, &topic);
    eager.assignors = vec!["range".into()];

    let mut first = DrivenConsumer::start(broker, cooperative).await;
    first.wait_for(LIMIT, owns(6)).await;
    let mut second = DrivenConsumer::start(broker, eager).await;
    let failure = second.failure(LIMIT).await;
    assert!(failure.contains("INCONSISTENT_GROUP_PROTOCOL"), "{failure}");
    assert_eq!(
        first.snapshot.borrow().assignment.len(),
        6,
        "the group is untouched"
    );
    second.stop(Stop::Close).await.ok();
    first.stop(Stop::Close).await.expect("close");
}

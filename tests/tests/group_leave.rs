//! A dynamic member closed in the middle of a rebalance still sends LeaveGroup, so the
//! survivor takes over within seconds, not after the session timeout.
//!
//! The fault proxy delays the closing member's JoinGroup or SyncGroup answers, which holds it
//! mid-rebalance for as long as the test needs: before the fix, a close that arrived there
//! dropped the join without a LeaveGroup (the 30 s hand-over seen once in CI, when the close
//! happened to land while the leader's SyncGroup answer was still on its way).

use std::time::{Duration, Instant};

use integration_tests::broker::Storage;
use integration_tests::group::{DrivenConsumer, Stop, create_topic_at, test_config};
use integration_tests::proxy::{Action, Fault, ProxiedBroker, api};
use integration_tests::unique_name;
use shared::group::{MemberPhase, MemberSnapshot};
use shared::settings::ConnectionSettings;

const LIMIT: Duration = Duration::from_secs(60);
const SYNC_GROUP: i16 = 14;
/// Long enough that only a LeaveGroup can make the hand-over fast.
const SESSION: Duration = Duration::from_secs(30);
/// How long the closing member's answers are held: it is mid-rebalance for this long.
const HELD: Duration = Duration::from_secs(4);

fn owns(count: usize) -> impl Fn(&MemberSnapshot) -> bool {
    move |s| s.phase == MemberPhase::Stable && s.assignment.len() == count
}

fn settings(broker: &ProxiedBroker, client_id: &str) -> ConnectionSettings {
    ConnectionSettings::plaintext(vec![broker.bootstrap()], client_id)
}

/// Two members; when the second joins, the first's answers to `api_key` are delayed, and the
/// first is closed while it waits for one. Returns how long the survivor took to own all six.
async fn close_mid_rebalance(api_key: i16) -> Duration {
    let broker = ProxiedBroker::start(Storage::Memory);
    let topic = create_topic_at(&settings(&broker, "harness"), "leave-mid", 6).await;
    let group = unique_name("g");
    let mut config = test_config(&group, &topic);
    config.session_timeout = SESSION;
    let mut leaver = DrivenConsumer::start_with(&settings(&broker, "leaver"), config.clone()).await;
    leaver.wait_for(LIMIT, owns(6)).await;

    broker.proxy.inject(Fault {
        api_key,
        client_prefix: "leaver".into(),
        rate: 1.0,
        action: Action::Delay(HELD),
    });
    let mut survivor = DrivenConsumer::start_with(&settings(&broker, "survivor"), config).await;
    // The leaver is now rejoining and its answer is held by the proxy.
    leaver
        .wait_for(LIMIT, |s| s.phase != MemberPhase::Stable)
        .await;
    // The leaver's request is at the broker and its answer held: a condition, polled.
    let deadline = Instant::now() + LIMIT;
    while broker.proxy.counts().delayed == 0 {
        assert!(
            Instant::now() < deadline,
            "the leaver never sent the request to hold"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if api_key == SYNC_GROUP {
        // The group formed: the survivor has its half while the leaver's SyncGroup answer is
        // still on its way (the CI failure's timing).
        survivor.wait_for(LIMIT, owns(3)).await;
    }
    assert_ne!(
        leaver.snapshot.borrow().phase,
        MemberPhase::Stable,
        "the leaver is still mid-rebalance when it closes"
    );
    let closed_at = Instant::now();
    leaver.stop(Stop::Close).await.expect("close");
    survivor.wait_for(LIMIT, owns(6)).await;
    let took = closed_at.elapsed();
    eprintln!("hand-over after the close: {took:?}");
    survivor.stop(Stop::Close).await.expect("close");
    took
}

#[tokio::test]
async fn a_member_closed_while_its_sync_group_answer_is_held_leaves_and_the_survivor_takes_all_at_once()
 {
    let took = close_mid_rebalance(SYNC_GROUP).await;
    assert!(
        took < SESSION / 2,
        "the survivor took over in {took:?}; without a LeaveGroup it waits for the {SESSION:?} session timeout"
    );
}

#[tokio::test]
async fn a_member_closed_while_its_join_group_answer_is_held_leaves_and_the_survivor_takes_all_at_once()
 {
    let took = close_mid_rebalance(api::JOIN_GROUP).await;
    assert!(
        took < SESSION / 2,
        "the survivor took over in {took:?}; without a LeaveGroup it waits for the {SESSION:?} session timeout"
    );
}

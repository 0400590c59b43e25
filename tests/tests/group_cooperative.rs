//! Cooperative incremental rebalancing (KIP-429) with our own members: when a member joins,
//! only the partitions that move stop; the others are never revoked, and every record is read
//! exactly once across the members.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use integration_tests::group::{
    DrivenConsumer, Observed, Stop, create_topic, produce, test_config,
};
use integration_tests::{shared_broker, unique_name};
use shared::group::{GroupConfig, MemberPhase, MemberSnapshot, TopicPartition};

const LIMIT: Duration = Duration::from_secs(60);

fn cooperative(group: &str, topic: &str) -> GroupConfig {
    let mut config = test_config(group, topic);
    config.assignors = vec!["cooperative-sticky".into()];
    config
}

fn owns(count: usize) -> impl Fn(&MemberSnapshot) -> bool {
    move |s| s.phase == MemberPhase::Stable && s.assignment.len() == count
}

/// What one member reported, in order.
#[derive(Default)]
struct Log {
    assigned: Vec<Vec<TopicPartition>>,
    revoked: Vec<Vec<TopicPartition>>,
    records: Vec<String>,
    /// What the events say the member owns (added by `Assigned`, removed by `Revoked`).
    owned: BTreeSet<TopicPartition>,
}

impl Log {
    fn absorb(&mut self, observed: Observed) {
        match observed {
            Observed::Assigned(p) => {
                self.owned.extend(p.iter().cloned());
                self.assigned.push(p);
            }
            Observed::Revoked(p) => {
                for partition in &p {
                    self.owned.remove(partition);
                }
                self.revoked.push(p);
            }
            Observed::Record { value, .. } => self.records.push(value),
            Observed::Failed(e) => panic!("a member failed: {e}"),
        }
    }

    /// Takes in events until they add up to `assignment`: the snapshot is published before
    /// the events that led to it have reached the driver.
    async fn catch_up(
        &mut self,
        member: &mut DrivenConsumer,
        assignment: &BTreeSet<TopicPartition>,
    ) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while &self.owned != assignment {
            match tokio::time::timeout_at(deadline, member.events.recv()).await {
                Ok(Some(observed)) => self.absorb(observed),
                _ => panic!(
                    "events never added up to {assignment:?}; they say {:?}",
                    self.owned
                ),
            }
        }
    }

    fn drain(&mut self, member: &mut DrivenConsumer) {
        while let Ok(observed) = member.events.try_recv() {
            self.absorb(observed);
        }
    }
}

fn set(snapshot: &MemberSnapshot) -> BTreeSet<TopicPartition> {
    snapshot.assignment.iter().cloned().collect()
}

#[tokio::test]
async fn a_third_cooperative_member_takes_its_share_while_the_two_others_keep_the_rest_unrevoked() {
    let broker = shared_broker();
    let topic = create_topic(broker, "coop", 6).await;
    let group = unique_name("g");
    let before = produce(broker, &topic, 6, 100, "before").await;

    let mut a = DrivenConsumer::start(broker, cooperative(&group, &topic)).await;
    a.wait_for(LIMIT, owns(6)).await;
    let mut b = DrivenConsumer::start(broker, cooperative(&group, &topic)).await;
    let b_before = b.wait_for(LIMIT, owns(3)).await;
    let a_before = a.wait_for(LIMIT, owns(3)).await;
    assert_eq!(b_before.protocol, "cooperative-sticky");
    let mut logs: BTreeMap<&str, Log> = BTreeMap::new();
    for (name, member, snapshot) in [("a", &mut a, &a_before), ("b", &mut b, &b_before)] {
        let log = logs.entry(name).or_default();
        log.catch_up(member, &set(snapshot)).await;
        // What happened before the third member is not what this test is about, except the
        // records, which count towards exactly-once.
        log.assigned.clear();
        log.revoked.clear();
    }

    let mut c = DrivenConsumer::start(broker, cooperative(&group, &topic)).await;
    let c_after = c.wait_for(LIMIT, owns(2)).await;
    // The newcomer's share comes in the follow-up rebalance, the last one: the others are
    // stable in that same generation.
    let settled = |s: &MemberSnapshot| owns(2)(s) && s.generation == c_after.generation;
    let a_after = a.wait_for(LIMIT, settled).await;
    let b_after = b.wait_for(LIMIT, settled).await;
    let after = produce(broker, &topic, 6, 100, "after").await;

    let expected: BTreeSet<String> = before.union(&after).cloned().collect();
    let mut c_log = Log::default();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        for (name, member) in [("a", &mut a), ("b", &mut b)] {
            logs.entry(name).or_default().drain(member);
        }
        c_log.drain(&mut c);
        let read = logs
            .values()
            .chain([&c_log])
            .map(|l| l.records.len())
            .sum::<usize>();
        if read >= expected.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {read} of {} records within {LIMIT:?}",
            expected.len()
        );
        tokio::select! {
            Some(o) = a.events.recv() => logs.entry("a").or_default().absorb(o),
            Some(o) = b.events.recv() => logs.entry("b").or_default().absorb(o),
            Some(o) = c.events.recv() => c_log.absorb(o),
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }

    for (name, kept_before, kept_after) in [
        ("a", set(&a_before), set(&a_after)),
        ("b", set(&b_before), set(&b_after)),
    ] {
        let log = &logs[name];
        assert!(
            kept_after.is_subset(&kept_before),
            "{name} only gave partitions up"
        );
        let revoked: BTreeSet<TopicPartition> = log.revoked.iter().flatten().cloned().collect();
        let moved: BTreeSet<TopicPartition> =
            kept_before.difference(&kept_after).cloned().collect();
        assert_eq!(
            revoked, moved,
            "{name} revoked exactly the partitions that moved"
        );
        assert!(
            revoked.is_disjoint(&kept_after),
            "{name} never revoked a partition it kept"
        );
        assert!(
            log.assigned.iter().all(Vec::is_empty),
            "{name} was given nothing new: {:?}",
            log.assigned
        );
    }
    let c_got: BTreeSet<TopicPartition> = c_log.assigned.iter().flatten().cloned().collect();
    assert_eq!(
        c_got,
        set(&c_after),
        "the newcomer's share arrived in its assignments"
    );
    assert!(c_log.revoked.is_empty(), "the newcomer gave nothing back");

    let all: Vec<&String> = logs
        .values()
        .chain([&c_log])
        .flat_map(|l| l.records.iter())
        .collect();
    let unique: BTreeSet<String> = all.iter().map(|v| (*v).clone()).collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "no record read twice across the members"
    );
    assert_eq!(unique, expected, "every record read");

    for member in [a, b, c] {
        member.stop(Stop::Close).await.expect("close");
    }
}

//! Partition assignors: the strategies a group leader runs over the members' subscriptions to
//! decide who consumes which partition.
//!
//! This module owns the shared vocabulary (the `Assignor` trait, `GroupMember`, the member
//! order every strategy walks in) and one file per strategy. Assignors are pure functions of
//! their input: they must not talk to brokers, read clocks or keep state between rebalances —
//! anything a strategy remembers travels in the members' subscriptions. The member order is
//! Java's, not librdkafka's, so a Rust leader hands out the same partitions a Java leader would.

mod cooperative_sticky;
mod range;
mod round_robin;

use std::cmp::Ordering;
use std::collections::BTreeMap;

pub use cooperative_sticky::CooperativeStickyAssignor;
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;

use super::protocol::{Assignment, Subscription};

/// Whether members give up everything before a rebalance (eager) or keep what they own and
/// revoke only what the leader moved (cooperative, KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    Eager,
    Cooperative,
}

/// One entry of the JoinGroup response's member list, with its subscription decoded.
#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    pub subscription: Subscription,
}

impl GroupMember {
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscription.topics.iter().any(|t| t == topic)
    }
}

/// A partition assignment strategy, named as it is in JoinGroup's protocol list.
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The protocol name every client uses: "range", "roundrobin", "cooperative-sticky".
    fn name(&self) -> &'static str;
    fn protocol(&self) -> RebalanceProtocol;
    /// Every member in `members` gets an entry, even an empty one. `partition_counts`: topic ->
    /// number of partitions (topics absent from it are skipped).
    fn assign(
        &self,
        members: &[GroupMember],
        partition_counts: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment>;
}

/// The assignors we offer when the configuration names none: range first, as Java's default
/// list begins, and an eager pair only (eager and cooperative names must not be mixed).
pub const DEFAULT_ASSIGNORS: &[&str] = &["range", "roundrobin"];

/// The assignor a JoinGroup protocol name refers to, if we implement it.
pub fn assignor_by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        "cooperative-sticky" => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// Members in the order every strategy walks them, as Java's `MemberInfo` sorts: static members
/// (with a `group.instance.id`) first, by instance id, then dynamic members by member id.
///
/// Sorting static members by their stable instance id keeps their partitions across restarts,
/// which is the point of static membership. Ties (which a coordinator never produces) fall back
/// to the member id so the order is total.
pub fn ordered_members(members: &[GroupMember]) -> Vec<&GroupMember> {
    let mut ordered: Vec<&GroupMember> = members.iter().collect();
    ordered.sort_by(|a, b| {
        let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_instance.then_with(|| a.member_id.cmp(&b.member_id))
    });
    ordered
}

/// An empty assignment for every member: Java followers fail on a missing entry.
fn empty_assignments(members: &[GroupMember]) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::default()))
        .collect()
}

/// Appends one partition to a member's assignment. Callers give partitions of a topic in
/// ascending order, which keeps each list sorted as `TopicPartitions` promises.
fn give(
    assignments: &mut BTreeMap<String, Assignment>,
    member_id: &str,
    topic: &str,
    partition: i32,
) {
    if let Some(assignment) = assignments.get_mut(member_id) {
        assignment
            .partitions
            .entry(topic.to_owned())
            .or_default()
            .push(partition);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders shared by the strategies' tests.

    use super::*;
    use crate::group::protocol::TopicPartitions;

    pub fn member(id: &str, topics: &[&str]) -> GroupMember {
        GroupMember {
            member_id: id.to_owned(),
            group_instance_id: None,
            subscription: Subscription {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                ..Subscription::default()
            },
        }
    }

    pub fn static_member(id: &str, instance: &str, topics: &[&str]) -> GroupMember {
        GroupMember {
            group_instance_id: Some(instance.to_owned()),
            ..member(id, topics)
        }
    }

    pub fn counts(topics: &[(&str, i32)]) -> BTreeMap<String, i32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    pub fn partitions(entries: &[(&str, &[i32])]) -> TopicPartitions {
        entries
            .iter()
            .map(|(topic, parts)| (topic.to_string(), parts.to_vec()))
            .collect()
    }

    /// The partitions each member got, for compact assertions.
    pub fn owned(result: &BTreeMap<String, Assignment>, member_id: &str) -> TopicPartitions {
        result
            .get(member_id)
            .map(|a| a.partitions.clone())
            .unwrap_or_else(|| panic!("{member_id} has no entry"))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn static_members_come_first_by_instance_id_then_dynamic_by_member_id() {
        let members = [
            member("a-dynamic", &[]),
            static_member("z-static", "instance-2", &[]),
            member("0-dynamic", &[]),
            static_member("b-static", "instance-1", &[]),
        ];
        let order: Vec<&str> = ordered_members(&members)
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        assert_eq!(order, ["b-static", "z-static", "0-dynamic", "a-dynamic"]);
    }

    #[test]
    fn names_resolve_to_their_assignors() {
        for name in DEFAULT_ASSIGNORS {
            let assignor = assignor_by_name(name).expect("a default assignor exists");
            assert_eq!(assignor.name(), *name);
            assert_eq!(assignor.protocol(), RebalanceProtocol::Eager);
        }
        assert!(assignor_by_name("sticky").is_none());
    }
}

//! The `range` assignor (Java's `RangeAssignor`): each topic is split on its own into contiguous
//! blocks, one block per subscribed member.
//!
//! Topics are handled independently, so two topics with the same partition count and the same
//! subscribers line up partition for partition (orders p3 and inventory p3 land on one member),
//! at the price of piling the remainders of every topic on the first members. Rack-aware
//! matching is not done: we do not know the partitions' replica racks here.

use std::collections::BTreeMap;

use super::{Assignor, GroupMember, RebalanceProtocol, empty_assignments, give, ordered_members};
use crate::group::protocol::Assignment;

#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        members: &[GroupMember],
        partition_counts: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment> {
        let mut assignments = empty_assignments(members);
        let ordered = ordered_members(members);
        for (topic, &count) in partition_counts {
            let subscribers: Vec<&GroupMember> = ordered
                .iter()
                .copied()
                .filter(|m| m.subscribes_to(topic))
                .collect();
            if subscribers.is_empty() {
                continue;
            }
            // q = N / C partitions each, and the first r = N % C members one more.
            let total = usize::try_from(count).unwrap_or(0);
            let quota = total / subscribers.len();
            let with_extra = total % subscribers.len();
            let mut partitions = 0..count.max(0);
            for (index, subscriber) in subscribers.iter().enumerate() {
                let take = quota + usize::from(index < with_extra);
                for partition in partitions.by_ref().take(take) {
                    give(&mut assignments, &subscriber.member_id, topic, partition);
                }
            }
        }
        assignments
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn java_javadoc_example_two_consumers_two_topics() {
        // RangeAssignor javadoc: C0 and C1 both subscribe t0 and t1, 3 partitions each.
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let result = RangeAssignor.assign(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(
            owned(&result, "C0"),
            partitions(&[("t0", &[0, 1]), ("t1", &[0, 1])])
        );
        assert_eq!(
            owned(&result, "C1"),
            partitions(&[("t0", &[2]), ("t1", &[2])])
        );
    }

    #[test]
    fn six_partitions_two_members_split_three_and_three() {
        let members = [member("m-1", &["orders"]), member("m-2", &["orders"])];
        let result = RangeAssignor.assign(&members, &counts(&[("orders", 6)]));
        assert_eq!(owned(&result, "m-1"), partitions(&[("orders", &[0, 1, 2])]));
        assert_eq!(owned(&result, "m-2"), partitions(&[("orders", &[3, 4, 5])]));
    }

    #[test]
    fn static_members_sort_before_dynamic_ones_regardless_of_member_id() {
        // "zzz" would sort last by member id, but its instance id puts it first.
        let members = [
            member("aaa", &["orders"]),
            static_member("zzz", "inventory-1", &["orders"]),
        ];
        let result = RangeAssignor.assign(&members, &counts(&[("orders", 3)]));
        assert_eq!(owned(&result, "zzz"), partitions(&[("orders", &[0, 1])]));
        assert_eq!(owned(&result, "aaa"), partitions(&[("orders", &[2])]));
    }

    #[test]
    fn member_subscribed_to_nothing_still_gets_an_empty_entry() {
        let members = [member("busy", &["orders"]), member("idle", &[])];
        let result = RangeAssignor.assign(&members, &counts(&[("orders", 2)]));
        assert_eq!(owned(&result, "busy"), partitions(&[("orders", &[0, 1])]));
        assert_eq!(result.get("idle"), Some(&Assignment::default()));
    }

    #[test]
    fn more_members_than_partitions_leaves_the_last_ones_empty() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let result = RangeAssignor.assign(&members, &counts(&[("t", 2)]));
        assert_eq!(owned(&result, "a"), partitions(&[("t", &[0])]));
        assert_eq!(owned(&result, "b"), partitions(&[("t", &[1])]));
        assert!(owned(&result, "c").is_empty());
        assert_eq!(result.len(), 3);
    }

    #[test]
    fn topics_without_a_partition_count_are_skipped() {
        let members = [member("a", &["known", "unknown"])];
        let result = RangeAssignor.assign(&members, &counts(&[("known", 1)]));
        assert_eq!(owned(&result, "a"), partitions(&[("known", &[0])]));
    }

    #[test]
    fn each_topic_is_split_over_its_own_subscribers() {
        let members = [member("a", &["t0"]), member("b", &["t0", "t1"])];
        let result = RangeAssignor.assign(&members, &counts(&[("t0", 4), ("t1", 2)]));
        assert_eq!(owned(&result, "a"), partitions(&[("t0", &[0, 1])]));
        assert_eq!(
            owned(&result, "b"),
            partitions(&[("t0", &[2, 3]), ("t1", &[0, 1])])
        );
    }
}

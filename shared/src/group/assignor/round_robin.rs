//! The `roundrobin` assignor (Java's `RoundRobinAssignor`): every partition of every subscribed
//! topic, dealt one at a time around the members like cards.
//!
//! It balances better than `range` when members subscribe to the same topics, because
//! remainders do not accumulate per topic. When subscriptions differ, a member is skipped for
//! partitions of topics it does not want, and the deal continues from the next member — the
//! cursor is shared across topics rather than reset per topic, exactly as Java does, so a Rust
//! leader and a Java leader produce the same assignment.

use std::collections::BTreeMap;

use super::{Assignor, GroupMember, RebalanceProtocol, empty_assignments, give, ordered_members};
use crate::group::protocol::Assignment;

#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
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
        let mut cursor = 0;
        // The map iterates topics sorted by name, which is the order the deal must follow.
        for (topic, &count) in partition_counts {
            if !ordered.iter().any(|m| m.subscribes_to(topic)) {
                continue;
            }
            for partition in 0..count {
                // Terminates: at least one member subscribes to `topic`.
                while !ordered[cursor].subscribes_to(topic) {
                    cursor = (cursor + 1) % ordered.len();
                }
                give(
                    &mut assignments,
                    &ordered[cursor].member_id,
                    topic,
                    partition,
                );
                cursor = (cursor + 1) % ordered.len();
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
        // RoundRobinAssignor javadoc: C0 and C1 both subscribe t0 and t1, 3 partitions each.
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let result = RoundRobinAssignor.assign(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(
            owned(&result, "C0"),
            partitions(&[("t0", &[0, 2]), ("t1", &[1])])
        );
        assert_eq!(
            owned(&result, "C1"),
            partitions(&[("t0", &[1]), ("t1", &[0, 2])])
        );
    }

    #[test]
    fn java_javadoc_example_unequal_subscriptions() {
        // RoundRobinAssignor javadoc: C0 wants t0; C1 t0, t1; C2 t0, t1, t2.
        let members = [
            member("C0", &["t0"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t0", "t1", "t2"]),
        ];
        let result =
            RoundRobinAssignor.assign(&members, &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(owned(&result, "C0"), partitions(&[("t0", &[0])]));
        assert_eq!(owned(&result, "C1"), partitions(&[("t1", &[0])]));
        assert_eq!(
            owned(&result, "C2"),
            partitions(&[("t1", &[1]), ("t2", &[0, 1, 2])])
        );
    }

    #[test]
    fn six_partitions_two_members_split_three_and_three() {
        let members = [member("m-1", &["orders"]), member("m-2", &["orders"])];
        let result = RoundRobinAssignor.assign(&members, &counts(&[("orders", 6)]));
        assert_eq!(owned(&result, "m-1"), partitions(&[("orders", &[0, 2, 4])]));
        assert_eq!(owned(&result, "m-2"), partitions(&[("orders", &[1, 3, 5])]));
    }

    #[test]
    fn static_members_sort_before_dynamic_ones_regardless_of_member_id() {
        let members = [
            member("aaa", &["orders"]),
            static_member("zzz", "inventory-1", &["orders"]),
        ];
        let result = RoundRobinAssignor.assign(&members, &counts(&[("orders", 3)]));
        assert_eq!(owned(&result, "zzz"), partitions(&[("orders", &[0, 2])]));
        assert_eq!(owned(&result, "aaa"), partitions(&[("orders", &[1])]));
    }

    #[test]
    fn member_subscribed_to_nothing_still_gets_an_empty_entry() {
        let members = [member("busy", &["orders"]), member("idle", &[])];
        let result = RoundRobinAssignor.assign(&members, &counts(&[("orders", 2)]));
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
        let result = RoundRobinAssignor.assign(&members, &counts(&[("t", 2)]));
        assert_eq!(owned(&result, "a"), partitions(&[("t", &[0])]));
        assert_eq!(owned(&result, "b"), partitions(&[("t", &[1])]));
        assert!(owned(&result, "c").is_empty());
    }

    #[test]
    fn no_members_means_no_assignments() {
        assert!(
            RoundRobinAssignor
                .assign(&[], &counts(&[("t", 4)]))
                .is_empty()
        );
    }
}

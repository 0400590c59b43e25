//! The `cooperative-sticky` assignor (KIP-429): members keep what they own up to their fair
//! share, and a partition only changes hands over two rebalances.
//!
//! It owns the leader's side of incremental rebalancing: deciding who really owns each claimed
//! partition, computing a balanced target that moves as little as possible, and holding back
//! every partition that another member still claims, so its owner revokes it first and the next
//! rebalance hands it over. It must not know how members revoke or commit. Design choice: one
//! balancing path for equal and unequal subscriptions alike (keep, fill the least loaded, then
//! move single partitions from the most to the least loaded member), instead of Java's separate
//! fast path for equal subscriptions; with equal subscriptions it ends in the same quotas.

use std::collections::{BTreeMap, BTreeSet};

use super::{Assignor, GroupMember, RebalanceProtocol, empty_assignments, give, ordered_members};
use crate::group::protocol::{Assignment, NO_GENERATION};

#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

/// One partition, its topic borrowed from the caller's partition counts.
type TopicPartition<'a> = (&'a str, i32);

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        members: &[GroupMember],
        partition_counts: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment> {
        let ordered = ordered_members(members);
        let universe = subscribed_partitions(&ordered, partition_counts);
        let claims = Claims::collect(&ordered, partition_counts);
        let target = balanced_target(&ordered, &universe, &claims.owner);

        let mut assignments = empty_assignments(members);
        for (index, partitions) in target.iter().enumerate() {
            let member_id = &ordered[index].member_id;
            for &(topic, partition) in partitions {
                if claims.may_take((topic, partition), index) {
                    give(&mut assignments, member_id, topic, partition);
                }
            }
        }
        assignments
    }
}

/// Every partition of every topic that exists and that at least one member subscribes to.
fn subscribed_partitions<'a>(
    ordered: &[&GroupMember],
    partition_counts: &'a BTreeMap<String, i32>,
) -> BTreeSet<TopicPartition<'a>> {
    partition_counts
        .iter()
        .filter(|(topic, _)| ordered.iter().any(|m| m.subscribes_to(topic)))
        .flat_map(|(topic, &count)| (0..count).map(move |p| (topic.as_str(), p)))
        .collect()
}

/// Who says they own what, and whose claim stands. Members are indices into the ordered list.
struct Claims<'a> {
    /// Everyone who listed the partition in their subscription's owned partitions.
    claimants: BTreeMap<TopicPartition<'a>, BTreeSet<usize>>,
    /// The claim that stands: the single claimant of the highest generation, if it still
    /// subscribes to the topic. Two claims in that same generation cancel out.
    owner: BTreeMap<TopicPartition<'a>, usize>,
}

impl<'a> Claims<'a> {
    /// A claim on a partition that no longer exists (topic deleted or shrunk away) is ignored.
    ///
    /// Java's equal-subscription path drops *every* claim of a member from an older generation;
    /// we drop a claim only where a newer one on the same partition beats it, since an
    /// uncontested stale claim most likely means that member is still consuming it.
    fn collect(ordered: &[&GroupMember], partition_counts: &'a BTreeMap<String, i32>) -> Self {
        let mut claimants: BTreeMap<TopicPartition<'a>, BTreeSet<usize>> = BTreeMap::new();
        let mut newest: BTreeMap<TopicPartition<'a>, (i32, Vec<usize>)> = BTreeMap::new();
        for (index, member) in ordered.iter().enumerate() {
            let generation = claim_generation(member);
            for (topic, partitions) in &member.subscription.owned_partitions {
                let Some((topic, &count)) = partition_counts.get_key_value(topic) else {
                    continue;
                };
                for &partition in partitions.iter().filter(|&&p| (0..count).contains(&p)) {
                    let tp = (topic.as_str(), partition);
                    claimants.entry(tp).or_default().insert(index);
                    let best = newest.entry(tp).or_insert((generation, Vec::new()));
                    if generation > best.0 {
                        *best = (generation, Vec::new());
                    }
                    if generation == best.0 {
                        best.1.push(index);
                    }
                }
            }
        }
        let owner = newest
            .into_iter()
            .filter_map(|(tp, (_, holders))| match holders.as_slice() {
                [only] if ordered[*only].subscribes_to(tp.0) => Some((tp, *only)),
                _ => None,
            })
            .collect();
        Self { claimants, owner }
    }

    /// KIP-429's two-phase rule: a member may receive a partition only if it is the standing
    /// owner or nobody else claims it. Otherwise the partition stays unassigned this round;
    /// the claimant sees it missing, revokes it and re-joins, and the next round assigns it.
    /// Java applies this to the standing owner only; we also wait for cancelled and beaten
    /// claims, so no two members ever consume one partition at the same time.
    fn may_take(&self, tp: TopicPartition<'a>, member: usize) -> bool {
        self.owner.get(&tp) == Some(&member)
            || self
                .claimants
                .get(&tp)
                .is_none_or(|claimants| claimants.iter().all(|&c| c == member))
    }
}

/// The generation a member's claims belong to: the subscription's field (v2+), or for older
/// subscriptions the big-endian i32 Java's cooperative-sticky assignor puts in user data.
fn claim_generation(member: &GroupMember) -> i32 {
    let subscription = &member.subscription;
    if subscription.generation_id != NO_GENERATION {
        return subscription.generation_id;
    }
    subscription
        .user_data
        .first_chunk::<4>()
        .map_or(NO_GENERATION, |bytes| i32::from_be_bytes(*bytes))
}

/// Where each partition should end up, per member index: standing owners keep their
/// partitions, unowned ones go to the least-loaded subscriber, then single partitions move
/// from the most-loaded member to one holding at least two fewer until no such move exists.
///
/// Each move lowers the sum of squared loads, so the loop ends; with equal subscriptions it
/// ends with every member at floor(P/C) or ceil(P/C), having taken from a member only what it
/// held above its share.
fn balanced_target<'a>(
    ordered: &[&GroupMember],
    universe: &BTreeSet<TopicPartition<'a>>,
    owner: &BTreeMap<TopicPartition<'a>, usize>,
) -> Vec<BTreeSet<TopicPartition<'a>>> {
    let mut held: Vec<BTreeSet<TopicPartition<'a>>> = vec![BTreeSet::new(); ordered.len()];
    for (&tp, &index) in owner {
        held[index].insert(tp);
    }
    for &tp in universe.iter().filter(|tp| !owner.contains_key(*tp)) {
        let least_loaded = (0..ordered.len())
            .filter(|&i| ordered[i].subscribes_to(tp.0))
            .min_by_key(|&i| (held[i].len(), i));
        if let Some(index) = least_loaded {
            held[index].insert(tp);
        }
    }
    while let Some((from, to, tp)) = next_move(ordered, &held, owner) {
        held[from].remove(&tp);
        held[to].insert(tp);
    }
    held
}

/// The next single-partition move that narrows an imbalance of two or more, if any: from the
/// most-loaded member, to the least-loaded one that can take one of its partitions. The donor
/// gives up a partition it was only handed this round before one it already owns, and its
/// highest-numbered first, so long-held partitions are the last to move.
fn next_move<'a>(
    ordered: &[&GroupMember],
    held: &[BTreeSet<TopicPartition<'a>>],
    owner: &BTreeMap<TopicPartition<'a>, usize>,
) -> Option<(usize, usize, TopicPartition<'a>)> {
    let mut by_load: Vec<usize> = (0..held.len()).collect();
    by_load.sort_by_key(|&i| (held[i].len(), i));
    for &from in by_load.iter().rev() {
        for &to in &by_load {
            if held[to].len() + 2 > held[from].len() {
                break;
            }
            let movable = |tp: &&TopicPartition<'a>| ordered[to].subscribes_to(tp.0);
            let fresh = held[from]
                .iter()
                .rev()
                .filter(movable)
                .find(|tp| owner.get(*tp) != Some(&from));
            let chosen = fresh.or_else(|| held[from].iter().rev().find(movable));
            if let Some(&tp) = chosen {
                return Some((from, to, tp));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::group::protocol::TopicPartitions;

    fn owning(id: &str, topics: &[&str], generation: i32, owned: &[(&str, &[i32])]) -> GroupMember {
        let mut m = member(id, topics);
        m.subscription.generation_id = generation;
        m.subscription.owned_partitions = partitions(owned);
        m
    }

    fn assign(members: &[GroupMember], topics: &[(&str, i32)]) -> BTreeMap<String, Assignment> {
        CooperativeStickyAssignor.assign(members, &counts(topics))
    }

    fn total(result: &BTreeMap<String, Assignment>) -> usize {
        result
            .values()
            .flat_map(|a| a.partitions.values())
            .map(Vec::len)
            .sum()
    }

    #[test]
    fn fresh_group_is_balanced_and_every_member_has_an_entry() {
        let members = [
            member("a", &["orders"]),
            member("b", &["orders"]),
            member("idle", &[]),
        ];
        let result = assign(&members, &[("orders", 6)]);
        assert_eq!(owned(&result, "a"), partitions(&[("orders", &[0, 2, 4])]));
        assert_eq!(owned(&result, "b"), partitions(&[("orders", &[1, 3, 5])]));
        assert_eq!(result.get("idle"), Some(&Assignment::default()));
    }

    #[test]
    fn stable_group_keeps_exactly_what_it_owns() {
        let members = [
            owning("a", &["orders"], 5, &[("orders", &[0, 1, 5])]),
            owning("b", &["orders"], 5, &[("orders", &[2, 3, 4])]),
        ];
        let result = assign(&members, &[("orders", 6)]);
        assert_eq!(owned(&result, "a"), partitions(&[("orders", &[0, 1, 5])]));
        assert_eq!(owned(&result, "b"), partitions(&[("orders", &[2, 3, 4])]));
    }

    #[test]
    fn a_joining_member_waits_for_the_owner_to_revoke() {
        // a owns everything; b joins. a keeps its share (its lowest partitions), and b gets
        // nothing yet: p3..p5 are still a's, so handing them to b now would double-consume.
        let members = [
            owning("a", &["orders"], 3, &[("orders", &[0, 1, 2, 3, 4, 5])]),
            member("b", &["orders"]),
        ];
        let first = assign(&members, &[("orders", 6)]);
        assert_eq!(owned(&first, "a"), partitions(&[("orders", &[0, 1, 2])]));
        assert!(owned(&first, "b").is_empty());

        // a revoked p3..p5 and re-joined owning only what it kept: now b gets them.
        let members = [
            owning("a", &["orders"], 4, &[("orders", &[0, 1, 2])]),
            member("b", &["orders"]),
        ];
        let second = assign(&members, &[("orders", 6)]);
        assert_eq!(owned(&second, "a"), partitions(&[("orders", &[0, 1, 2])]));
        assert_eq!(owned(&second, "b"), partitions(&[("orders", &[3, 4, 5])]));
    }

    #[test]
    fn a_leaving_members_partitions_move_at_once() {
        // c left without revoking anything anyone else claims: its partitions are free.
        let members = [
            owning("a", &["orders"], 7, &[("orders", &[0, 1])]),
            owning("b", &["orders"], 7, &[("orders", &[2, 3])]),
        ];
        let result = assign(&members, &[("orders", 6)]);
        assert_eq!(owned(&result, "a"), partitions(&[("orders", &[0, 1, 4])]));
        assert_eq!(owned(&result, "b"), partitions(&[("orders", &[2, 3, 5])]));
    }

    #[test]
    fn the_newest_generation_wins_a_conflicting_claim() {
        let members = [
            owning("stale", &["orders"], 4, &[("orders", &[0])]),
            owning("current", &["orders"], 5, &[("orders", &[0, 1])]),
        ];
        let result = assign(&members, &[("orders", 2)]);
        // "current"'s newer claim on p0 stands and it keeps p0.
        assert_eq!(owned(&result, "current"), partitions(&[("orders", &[0])]));
        // p1 is over "current"'s share of one, so the target moves it to "stale"; but "current"
        // still claims it, so it is withheld until revoked, and "stale" gets nothing yet.
        assert!(owned(&result, "stale").is_empty());
        assert_eq!(total(&result), 1);
    }

    #[test]
    fn claims_in_the_same_generation_cancel_and_wait_for_both_to_revoke() {
        let members = [
            owning("a", &["orders"], 5, &[("orders", &[0])]),
            owning("b", &["orders"], 5, &[("orders", &[0, 1])]),
        ];
        let result = assign(&members, &[("orders", 2)]);
        // Nobody keeps p0, and nobody is handed it while either still claims it.
        assert!(
            result
                .values()
                .all(|a| a.partitions.get("orders").is_none_or(|p| !p.contains(&0)))
        );
        // p1 is b's alone and stays with it.
        assert_eq!(owned(&result, "b"), partitions(&[("orders", &[1])]));
    }

    #[test]
    fn old_subscriptions_carry_the_generation_in_user_data() {
        // A pre-v2 subscription has no generation field; Java's cooperative-sticky assignor then
        // sends it as a big-endian i32 in user data. Generation 9 there beats 8 in the field.
        let mut old = owning("old", &["orders"], NO_GENERATION, &[("orders", &[0])]);
        old.subscription.user_data = 9i32.to_be_bytes().to_vec();
        let members = [old, owning("new", &["orders"], 8, &[("orders", &[0])])];
        let result = assign(&members, &[("orders", 2)]);
        assert_eq!(owned(&result, "old"), partitions(&[("orders", &[0])]));
        assert_eq!(owned(&result, "new"), partitions(&[("orders", &[1])]));
    }

    #[test]
    fn unequal_subscriptions_never_assign_an_unsubscribed_topic() {
        let members = [member("a", &["t0", "t1"]), member("b", &["t1"])];
        let result = assign(&members, &[("t0", 2), ("t1", 2)]);
        assert_eq!(owned(&result, "a"), partitions(&[("t0", &[0, 1])]));
        assert_eq!(owned(&result, "b"), partitions(&[("t1", &[0, 1])]));
    }

    #[test]
    fn claims_on_vanished_partitions_are_ignored() {
        let members = [owning(
            "a",
            &["orders"],
            2,
            &[("orders", &[0, 9]), ("deleted", &[0])],
        )];
        let result = assign(&members, &[("orders", 2)]);
        assert_eq!(owned(&result, "a"), partitions(&[("orders", &[0, 1])]));
    }

    #[test]
    fn a_partition_newly_handed_out_moves_before_an_owned_one() {
        // a owns t2 and also receives the fresh t1 while filling (tied with c, first in order);
        // u is a's alone, so a ends up two ahead of c and must give one t partition away. It
        // gives the fresh t1, not the higher-numbered t2 it owns, which would have to wait a
        // whole extra rebalance to change hands.
        let members = [
            owning("a", &["t", "u"], 1, &[("t", &[2])]),
            member("c", &["t"]),
        ];
        let result = assign(&members, &[("t", 3), ("u", 2)]);
        assert_eq!(
            owned(&result, "a"),
            partitions(&[("t", &[2]), ("u", &[0, 1])])
        );
        assert_eq!(owned(&result, "c"), partitions(&[("t", &[0, 1])]));
    }

    /// Runs rebalances the way cooperative members do (each re-joins owning what it was last
    /// assigned) until the assignment stops changing, checking the two-phase rule each round.
    fn settle(mut members: Vec<GroupMember>, topics: &[(&str, i32)]) -> (Vec<GroupMember>, usize) {
        for round in 1..=5 {
            let result = assign(&members, topics);
            for m in &members {
                for (topic, parts) in &owned(&result, &m.member_id) {
                    for &p in parts {
                        let someone_else_owns = members
                            .iter()
                            .any(|o| o.member_id != m.member_id && owns(o, topic, p));
                        assert!(
                            !someone_else_owns || owns(m, topic, p),
                            "round {round}: {topic}-{p} handed to {} while another member owns it",
                            m.member_id
                        );
                    }
                }
            }
            let unchanged = members
                .iter()
                .all(|m| owned(&result, &m.member_id) == m.subscription.owned_partitions);
            if unchanged {
                return (members, round);
            }
            for m in &mut members {
                m.subscription.owned_partitions = owned(&result, &m.member_id);
                m.subscription.generation_id += 1;
            }
        }
        panic!("no stable assignment after 5 rebalances");
    }

    fn owns(m: &GroupMember, topic: &str, partition: i32) -> bool {
        m.subscription
            .owned_partitions
            .get(topic)
            .is_some_and(|ps| ps.contains(&partition))
    }

    fn loads(members: &[GroupMember]) -> Vec<usize> {
        members
            .iter()
            .map(|m| m.subscription.owned_partitions.values().map(Vec::len).sum())
            .collect()
    }

    #[test]
    fn scaling_out_converges_in_two_rebalances_without_double_ownership() {
        let start = vec![
            owning(
                "a",
                &["orders", "inventory"],
                1,
                &[("orders", &[0, 1, 2, 3]), ("inventory", &[0, 1, 2, 3])],
            ),
            member("b", &["orders", "inventory"]),
            member("c", &["orders", "inventory"]),
        ];
        let (settled, rounds) = settle(start, &[("orders", 4), ("inventory", 4)]);
        // Round 1 revokes, round 2 hands over, round 3 confirms nothing moves.
        assert_eq!(rounds, 3);
        let mut loads = loads(&settled);
        loads.sort();
        assert_eq!(loads, [2, 3, 3]);
        let all: TopicPartitions = settled.iter().fold(TopicPartitions::new(), |mut acc, m| {
            for (t, ps) in &m.subscription.owned_partitions {
                acc.entry(t.clone()).or_default().extend(ps);
            }
            acc
        });
        assert_eq!(
            all.values().map(Vec::len).sum::<usize>(),
            8,
            "every partition assigned once"
        );
    }

    #[test]
    fn is_offered_by_name_as_a_cooperative_protocol() {
        let assignor = super::super::assignor_by_name("cooperative-sticky").expect("known");
        assert_eq!(assignor.name(), "cooperative-sticky");
        assert_eq!(assignor.protocol(), RebalanceProtocol::Cooperative);
    }
}

use chrono::{TimeZone, Utc};
use shared::events::{INVENTORY_SCHEMA_VERSION, InventoryOutcome};
use uuid::Uuid;

use super::*;

fn outcome(partition: i32, offset: i64) -> InventoryEvent {
    let order_id = Uuid::from_u128(((partition as u128) << 64) | offset as u128);
    InventoryEvent {
        schema_version: INVENTORY_SCHEMA_VERSION,
        event_id: InventoryEvent::event_id_for(order_id, InventoryOutcome::Reserved),
        order_id: Some(order_id),
        item_id: "item".into(),
        quantity: 1,
        outcome: InventoryOutcome::Reserved,
        reason: None,
        stock_after: 1,
        attempts: 1,
        order_created_at: Some(Utc::now()),
        processed_at: Utc::now(),
        source_partition: Some(partition),
        source_offset: Some(offset),
    }
}

fn restock(partition: i32, round_second: i64, index: u64) -> InventoryEvent {
    let round = Utc
        .timestamp_opt(1_800_000_000 + round_second, 0)
        .single()
        .expect("a valid time");
    InventoryEvent {
        event_id: InventoryEvent::restock_event_id(partition, round, index),
        order_id: None,
        outcome: InventoryOutcome::Restocked,
        order_created_at: None,
        source_offset: None,
        ..outcome(partition, 0)
    }
}

/// Feeds `offsets` of order partition 0, read from inventory partition 0; returns how many
/// were new.
fn count_new(counted: &mut CountedOutcomes, offsets: impl IntoIterator<Item = i64>) -> usize {
    offsets
        .into_iter()
        .filter(|offset| counted.first_time(0, &outcome(0, *offset)))
        .count()
}

#[test]
fn a_replayed_tail_is_recognised_and_an_in_order_run_is_one_range() {
    let mut counted = CountedOutcomes::default();
    assert_eq!(count_new(&mut counted, 0..100_000), 100_000);
    // The inventory consumer killed and restarted from its last commit, 400 behind.
    assert_eq!(count_new(&mut counted, 99_600..100_100), 100);
    assert_eq!(counted.open_holes(), 0);
    assert_eq!(counted.by_order_partition[&0].ranges, vec![0..100_100]);
}

#[test]
fn outcomes_arriving_out_of_order_are_each_counted_once() {
    // One order partition's outcomes spread over two inventory partitions read at different
    // paces: odd offsets arrive long after even ones.
    let mut counted = CountedOutcomes::default();
    assert_eq!(count_new(&mut counted, (0..1000).step_by(2)), 500);
    assert_eq!(counted.open_holes(), 499);
    assert_eq!(count_new(&mut counted, (1..1000).step_by(2)), 500);
    assert_eq!(counted.open_holes(), 0);
    assert_eq!(count_new(&mut counted, 0..1000), 0);
}

#[test]
fn a_hole_left_by_a_failed_batch_is_filled_by_the_replay() {
    // 0..100 landed, 100..200 failed, 200..300 landed; the restart replays 100..300. A
    // high-water mark would drop 100..200 as seen.
    let mut counted = CountedOutcomes::default();
    assert_eq!(count_new(&mut counted, (0..100).chain(200..300)), 200);
    assert_eq!(count_new(&mut counted, 100..300), 100);
    assert_eq!(counted.open_holes(), 0);
}

#[test]
fn partitions_are_told_apart() {
    let mut counted = CountedOutcomes::default();
    assert!(counted.first_time(0, &outcome(0, 7)));
    assert!(counted.first_time(0, &outcome(1, 7)));
    assert!(
        !counted.first_time(3, &outcome(1, 7)),
        "whichever partition it is read from"
    );
}

#[test]
fn an_order_without_an_outcome_leaves_no_hole() {
    let mut counted = CountedOutcomes::default();
    count_new(&mut counted, 0..10);
    assert!(counted.settle(0, 10), "a malformed order at offset 10");
    count_new(&mut counted, 11..20);
    assert_eq!(counted.open_holes(), 0);
}

#[test]
fn holes_past_the_cap_are_forgotten_oldest_first() {
    let mut counted = CountedOutcomes::default();
    let holes = MAX_OPEN_HOLES as i64 + 10;
    assert_eq!(
        count_new(&mut counted, (0..=holes).map(|i| i * 2)),
        holes as usize + 1
    );
    assert_eq!(counted.open_holes(), MAX_OPEN_HOLES);
    assert_eq!(counted.holes_forgotten, 10);
    // The ten oldest holes (offsets 1, 3, …, 19) are taken as settled; the rest are exact.
    assert_eq!(count_new(&mut counted, (1..20).step_by(2)), 0);
    assert_eq!(count_new(&mut counted, [21, 23]), 2);
}

#[test]
fn a_repeated_restock_batch_is_ignored_and_later_rounds_count() {
    let mut counted = CountedOutcomes::default();
    let round: Vec<_> = (0..5).map(|index| restock(2, 0, index)).collect();
    assert!(round.iter().all(|event| counted.first_time(2, event)));
    assert!(
        !round.iter().any(|event| counted.first_time(2, event)),
        "the producer wrote the batch twice"
    );
    assert!(counted.first_time(2, &restock(2, 1, 0)), "the next round");
    // Another order partition's restocks, and the same partition's read from another
    // inventory partition, have marks of their own.
    assert!(counted.first_time(2, &restock(3, 0, 0)));
    assert!(counted.first_time(4, &restock(2, 0, 0)));
}

#[test]
fn restocks_from_writers_that_do_not_number_them_are_always_counted() {
    let mut counted = CountedOutcomes::default();
    let mut foreign = restock(0, 0, 0);
    foreign.event_id = Uuid::from_u128(42);
    assert!(counted.first_time(0, &foreign));
    assert!(counted.first_time(0, &foreign));
    foreign.source_partition = None;
    assert!(counted.first_time(0, &foreign));
}

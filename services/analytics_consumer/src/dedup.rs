//! Which inventory events have been counted, in state that does not grow with the events: a
//! replayed outcome is recognised by the order record it answers, a repeated restock by its
//! place in its partition's sequence of restocks.
//!
//! An order's outcome names its order record (`source_partition`, `source_offset`); per order
//! partition we keep the counted offsets as sorted ranges, so a run of a million in-order
//! outcomes is one range and memory follows only the *holes* (offsets whose outcome is late
//! while later ones have arrived, or that are known to have none). Design choice: ranges
//! rather than one high-water mark per partition, because a mark silently drops an outcome
//! that arrives after a later one (outcomes of one order partition spread over several
//! inventory partitions read at different paces; a produce batch that failed while the next
//! one landed, replayed after a restart); ranges stay exact in any order. Holes are capped
//! ([`MAX_OPEN_HOLES`]): past it the oldest is taken as settled and counted in
//! `holes_forgotten`. Restocks answer no order; their ids grow per order partition
//! (`InventoryEvent::restock_event_id`) and are never replayed, so one mark per (inventory
//! partition, order partition) recognises a producer's repeated batch. This module must not
//! decode records or count outcomes: it only answers "first time?".

use std::collections::BTreeMap;
use std::ops::Range;

use shared::events::InventoryEvent;

/// Open holes across all order partitions before the oldest is forgotten: 16 bytes each, so
/// at most about 1 MiB, and far more than replays or uneven reading leave open.
pub const MAX_OPEN_HOLES: usize = 1 << 16;

/// The counted offsets of one order partition: sorted, disjoint, never adjacent ranges.
#[derive(Debug, Default)]
struct OffsetRanges {
    ranges: Vec<Range<i64>>,
    /// The range the last insert touched: consecutive offsets extend it without a search.
    cursor: usize,
}

/// What inserting one offset did to the number of ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inserted {
    AlreadyThere,
    Extended,
    Opened,
    Joined,
}

impl OffsetRanges {
    fn insert(&mut self, offset: i64) -> Inserted {
        // `after` = the index of the first range starting past `offset`.
        let at_cursor = self
            .ranges
            .get(self.cursor)
            .is_some_and(|r| r.start <= offset)
            && self
                .ranges
                .get(self.cursor + 1)
                .is_none_or(|next| next.start > offset);
        let after = if at_cursor {
            self.cursor + 1
        } else {
            self.ranges.partition_point(|r| r.start <= offset)
        };
        let before = after.checked_sub(1);
        if let Some(index) = before
            && self.ranges[index].end > offset
        {
            return Inserted::AlreadyThere;
        }
        let joins_before = before.is_some_and(|index| self.ranges[index].end == offset);
        let joins_after = self
            .ranges
            .get(after)
            .is_some_and(|next| next.start == offset + 1);
        match (before, joins_before, joins_after) {
            (Some(index), true, true) => {
                self.ranges[index].end = self.ranges[after].end;
                self.ranges.remove(after);
                self.cursor = index;
                Inserted::Joined
            }
            (Some(index), true, false) => {
                self.ranges[index].end = offset + 1;
                self.cursor = index;
                Inserted::Extended
            }
            (_, _, true) => {
                self.ranges[after].start = offset;
                self.cursor = after;
                Inserted::Extended
            }
            _ => {
                self.ranges.insert(after, offset..offset + 1);
                self.cursor = after;
                Inserted::Opened
            }
        }
    }

    /// Takes the oldest hole as settled: joins the first two ranges.
    fn forget_oldest_hole(&mut self) -> bool {
        if self.ranges.len() < 2 {
            return false;
        }
        self.ranges[0].end = self.ranges[1].end;
        self.ranges.remove(1);
        self.cursor = 0;
        true
    }

    fn holes(&self) -> usize {
        self.ranges.len().saturating_sub(1)
    }
}

#[derive(Debug, Default)]
pub struct CountedOutcomes {
    by_order_partition: BTreeMap<i32, OffsetRanges>,
    open_holes: usize,
    /// The latest restock id counted, per (inventory partition, order partition).
    last_restock: BTreeMap<(i32, i32), u128>,
    /// Holes given up on to stay within [`MAX_OPEN_HOLES`].
    pub holes_forgotten: u64,
}

impl CountedOutcomes {
    /// Whether `event`, read from inventory partition `inventory_partition`, is counted for
    /// the first time (and marks it counted). Restocks from writers that do not number them
    /// are always new: nothing bounded could tell their repeats apart.
    pub fn first_time(&mut self, inventory_partition: i32, event: &InventoryEvent) -> bool {
        if let (Some(partition), Some(offset)) = (event.source_partition, event.source_offset)
            && event.order_id.is_some()
        {
            return self.settle(partition, offset);
        }
        match event.restock_position() {
            Some((partition, position)) => {
                let last = self
                    .last_restock
                    .entry((inventory_partition, partition))
                    .or_default();
                let new = position > *last;
                *last = (*last).max(position);
                new
            }
            None => true,
        }
    }

    /// Marks order `offset` of `partition` as accounted for; false if it already was. Also
    /// for orders that will never have an outcome (malformed ones), so that they leave no hole.
    pub fn settle(&mut self, partition: i32, offset: i64) -> bool {
        let ranges = self.by_order_partition.entry(partition).or_default();
        match ranges.insert(offset) {
            Inserted::AlreadyThere => return false,
            Inserted::Extended => {}
            Inserted::Opened => self.open_holes += usize::from(ranges.ranges.len() > 1),
            Inserted::Joined => self.open_holes -= 1,
        }
        if self.open_holes > MAX_OPEN_HOLES {
            self.forget_a_hole();
        }
        true
    }

    /// The oldest hole of the partition with the most: the likeliest never to be filled.
    fn forget_a_hole(&mut self) {
        let fullest = self
            .by_order_partition
            .values_mut()
            .max_by_key(|ranges| ranges.holes());
        if let Some(ranges) = fullest
            && ranges.forget_oldest_hole()
        {
            self.open_holes -= 1;
            self.holes_forgotten += 1;
        }
    }

    #[cfg(test)]
    pub fn open_holes(&self) -> usize {
        self.open_holes
    }
}

#[cfg(test)]
mod tests;

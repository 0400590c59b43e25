//! The fetch budget: bytes fetched and not yet taken by the application, across all of a
//! consumer's partitions (librdkafka's `queued.max.messages.kbytes`).
//!
//! It only counts: the session asks it how much room is left before each request, and every
//! handed-over batch carries a [`BudgetShare`] that gives its bytes back when dropped, so the
//! count cannot drift whoever ends up dropping the batch. It must not decide what to fetch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Bytes fetched and not yet handed to the application, against the limit.
#[derive(Debug)]
pub struct FetchBudget {
    limit: usize,
    used: AtomicUsize,
    pub(super) freed: Notify,
}

impl FetchBudget {
    pub(super) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(super) fn available(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    pub(super) fn take(self: &Arc<Self>, bytes: usize) -> BudgetShare {
        self.used.fetch_add(bytes, Ordering::Relaxed);
        BudgetShare {
            budget: Arc::clone(self),
            bytes,
        }
    }
}

/// One batch's part of the budget, returned on drop (also when a revoked partition's queued
/// batches are thrown away).
#[derive(Debug)]
pub struct BudgetShare {
    budget: Arc<FetchBudget>,
    bytes: usize,
}

impl BudgetShare {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
        self.budget.freed.notify_one();
    }
}

//! The stock rules: reserve when enough stock is left, reject otherwise, and a simulated
//! downstream failure that is retried with exponential backoff before the order fails.
//!
//! The failure draw is a hash of (seed, order id, attempt), not a random generator's next
//! value: reprocessing an order after a crash therefore repeats exactly the same attempts and
//! outcome, which is what makes a replayed outcome identical (same `event_id`). Stock is the
//! caller's; this module only decides.

use std::collections::HashMap;
use std::time::Duration;

use shared::events::InventoryOutcome;
use uuid::Uuid;

/// Stock per item of one partition (items are keyed by partition, so one owner each).
pub type Stock = HashMap<String, i64>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureModel {
    pub fail_rate: f64,
    pub max_retries: u32,
    pub backoff: Duration,
    pub seed: u64,
}

impl FailureModel {
    /// Whether attempt `attempt` (1-based) at `order_id` fails.
    pub fn fails(&self, order_id: Uuid, attempt: u32) -> bool {
        if self.fail_rate <= 0.0 {
            return false;
        }
        let mut x = self.seed ^ (order_id.as_u128() as u64) ^ ((order_id.as_u128() >> 64) as u64);
        x ^= u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // SplitMix64 finaliser: a well-mixed 64-bit value from the inputs.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        ((x >> 11) as f64 / (1u64 << 53) as f64) < self.fail_rate
    }

    /// The pause before retry number `retry` (1-based): backoff × 2^(retry−1).
    pub fn pause_before(&self, retry: u32) -> Duration {
        self.backoff.saturating_mul(1u32 << (retry - 1).min(16))
    }
}

/// What happened to one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: InventoryOutcome,
    pub reason: Option<&'static str>,
    pub attempts: u32,
    pub stock_before: i64,
    pub stock_after: i64,
}

/// Applies the rules to one order against `stock`, sleeping between failed attempts.
pub async fn decide(
    stock: &mut Stock,
    initial_stock: i64,
    failures: &FailureModel,
    order_id: Uuid,
    item_id: &str,
    quantity: u32,
) -> Decision {
    let mut attempts = 1;
    while failures.fails(order_id, attempts) {
        if attempts > failures.max_retries {
            let current = *stock.get(item_id).unwrap_or(&initial_stock);
            return Decision {
                outcome: InventoryOutcome::Failed,
                reason: Some("simulated_failure"),
                attempts,
                stock_before: current,
                stock_after: current,
            };
        }
        tokio::time::sleep(failures.pause_before(attempts)).await;
        attempts += 1;
    }
    // Look up before inserting: the common case (a known item) then allocates nothing.
    let before = stock.get(item_id).copied().unwrap_or(initial_stock);
    let wanted = i64::from(quantity);
    let (outcome, reason, after) = if before >= wanted {
        (InventoryOutcome::Reserved, None, before - wanted)
    } else {
        (
            InventoryOutcome::Rejected,
            Some("insufficient_stock"),
            before,
        )
    };
    match stock.get_mut(item_id) {
        Some(current) => *current = after,
        None => {
            stock.insert(item_id.to_owned(), after);
        }
    }
    Decision {
        outcome,
        reason,
        attempts,
        stock_before: before,
        stock_after: after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(fail_rate: f64) -> FailureModel {
        FailureModel {
            fail_rate,
            max_retries: 3,
            backoff: Duration::ZERO,
            seed: 7,
        }
    }

    #[tokio::test]
    async fn reserves_while_stock_lasts_then_rejects() {
        let mut stock = Stock::new();
        let first = decide(&mut stock, 5, &model(0.0), Uuid::from_u128(1), "item", 3).await;
        assert_eq!(
            (first.outcome, first.stock_before, first.stock_after),
            (InventoryOutcome::Reserved, 5, 2)
        );
        let second = decide(&mut stock, 5, &model(0.0), Uuid::from_u128(2), "item", 3).await;
        assert_eq!(second.outcome, InventoryOutcome::Rejected);
        assert_eq!(second.reason, Some("insufficient_stock"));
        assert_eq!(stock["item"], 2, "a rejection leaves stock alone");
    }

    #[tokio::test]
    async fn always_failing_orders_fail_after_all_retries_without_touching_stock() {
        let mut stock = Stock::new();
        let decision = decide(&mut stock, 5, &model(1.0), Uuid::from_u128(3), "item", 1).await;
        assert_eq!(decision.outcome, InventoryOutcome::Failed);
        assert_eq!(decision.attempts, 4, "one attempt plus MAX_RETRIES retries");
        assert!(stock.get("item").is_none_or(|s| *s == 5));
    }

    #[test]
    fn failure_draws_are_deterministic_and_near_the_rate() {
        let failures = model(0.2);
        let failed = (0..100_000u128)
            .filter(|i| failures.fails(Uuid::from_u128(*i), 1))
            .count();
        assert!((19_000..21_000).contains(&failed), "{failed}");
        for i in 0..100u128 {
            assert_eq!(
                failures.fails(Uuid::from_u128(i), 2),
                failures.fails(Uuid::from_u128(i), 2)
            );
        }
    }

    #[test]
    fn backoff_doubles() {
        let failures = FailureModel {
            backoff: Duration::from_millis(10),
            ..model(0.5)
        };
        assert_eq!(failures.pause_before(1), Duration::from_millis(10));
        assert_eq!(failures.pause_before(3), Duration::from_millis(40));
    }
}

//! Builds order events: which customer orders which item, how many, at what price.
//!
//! Everything but the timestamp is deterministic for a given `SEED`, so two runs produce the
//! same orders in the same order. Item popularity is uniform (`SKEW=0`) or Zipf with exponent
//! `SKEW`, sampled from a precomputed cumulative table; the generator owns no I/O.

use chrono::{DateTime, Utc};
use shared::events::OrderEvent;

/// SplitMix64: tiny, fast and good enough to pick items; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }
}

#[derive(Debug, Clone)]
pub struct OrderGenerator {
    random: SplitMix64,
    /// Cumulative popularity of items 0..n (last entry 1.0).
    cumulative: Vec<f64>,
    customer_count: u64,
    currency: String,
}

impl OrderGenerator {
    pub fn new(seed: u64, item_count: u32, skew: f64, customer_count: u32, currency: &str) -> Self {
        Self {
            random: SplitMix64::new(seed),
            cumulative: popularity(item_count, skew),
            customer_count: u64::from(customer_count.max(1)),
            currency: currency.to_owned(),
        }
    }

    /// Changes which items are ordered (a live `ITEM_COUNT` or `SKEW`) without restarting the
    /// random sequence: restarting it would repeat order ids already sent.
    pub fn set_items(&mut self, item_count: u32, skew: f64) {
        self.cumulative = popularity(item_count, skew);
    }

    /// The index of the next item, by popularity.
    pub fn next_item(&mut self) -> usize {
        let u = self.random.next_f64();
        self.cumulative
            .partition_point(|c| *c <= u)
            .min(self.cumulative.len() - 1)
    }

    pub fn next_order(&mut self, created_at: DateTime<Utc>) -> OrderEvent {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.random.next_u64().to_le_bytes());
        id[8..].copy_from_slice(&self.random.next_u64().to_le_bytes());
        let order_id = uuid::Builder::from_random_bytes(id).into_uuid();
        let item = self.next_item();
        let customer = self.random.below(self.customer_count);
        let quantity = 1 + self.random.below(5) as u32;
        OrderEvent::new(
            order_id,
            format!("customer-{customer:05}"),
            item_id(item),
            quantity,
            unit_price(item),
            self.currency.clone(),
            created_at,
        )
    }
}

/// Cumulative popularity of items 0..n (last entry exactly 1.0): uniform at `skew` 0, Zipf
/// with exponent `skew` above.
fn popularity(item_count: u32, skew: f64) -> Vec<f64> {
    let items = item_count.max(1) as usize;
    let weights: Vec<f64> = (1..=items)
        .map(|rank| 1.0 / (rank as f64).powf(skew.max(0.0)))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut running = 0.0;
    let mut cumulative: Vec<f64> = weights
        .iter()
        .map(|w| {
            running += w / total;
            running
        })
        .collect();
    if let Some(last) = cumulative.last_mut() {
        *last = 1.0;
    }
    cumulative
}

/// `item-0001` style ids, the record key of every order.
pub fn item_id(index: usize) -> String {
    format!("item-{index:04}")
}

/// A fixed price per item between 1.00 and 100.99, so totals are reproducible.
fn unit_price(index: usize) -> f64 {
    let cents = 100 + (index as u64 * 7919) % 10_000;
    cents as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_790_000_000_000)
            .single()
            .expect("valid")
    }

    #[test]
    fn the_same_seed_gives_the_same_orders() {
        let mut a = OrderGenerator::new(7, 100, 1.1, 1000, "EUR");
        let mut b = OrderGenerator::new(7, 100, 1.1, 1000, "EUR");
        for _ in 0..100 {
            assert_eq!(a.next_order(now()), b.next_order(now()));
        }
        let mut c = OrderGenerator::new(8, 100, 1.1, 1000, "EUR");
        assert_ne!(a.next_order(now()).order_id, c.next_order(now()).order_id);
    }

    #[test]
    fn orders_are_valid_events() {
        let mut generator = OrderGenerator::new(1, 50, 0.0, 10, "EUR");
        for _ in 0..1000 {
            let order = generator.next_order(now());
            let bytes = shared::events::encode_event(&order).expect("encode");
            assert_eq!(shared::events::decode_order(&bytes), Ok(order));
        }
    }

    #[test]
    fn uniform_popularity_spreads_evenly() {
        let mut generator = OrderGenerator::new(3, 10, 0.0, 10, "EUR");
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[generator.next_item()] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn zipf_popularity_favours_the_first_items() {
        let mut generator = OrderGenerator::new(3, 100, 1.2, 10, "EUR");
        let mut counts = vec![0u32; 100];
        for _ in 0..100_000 {
            counts[generator.next_item()] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[99]);
        // With s = 1.2 over 100 items the top item takes about a quarter of the orders.
        assert!((20_000..32_000).contains(&counts[0]), "{}", counts[0]);
    }
}

//! The rolling window: per-second buckets over the last `WINDOW_SEC` seconds, so memory is
//! bounded by the window length, never by traffic.
//!
//! Time comes in as whole seconds from the caller (an injected clock), which makes expiry exact
//! and testable: a bucket counts while `now - second < window` and is reused after. Latency is
//! kept as histogram counts per bucket (the Prometheus buckets), from which percentiles are
//! estimated; the exact maximum is kept too.

use shared::events::InventoryOutcome;

/// Upper bounds (seconds) of the latency histogram buckets; the last bucket is +Inf.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Counts per latency bucket; index `LATENCY_BOUNDS.len()` is +Inf.
pub type LatencyCounts = [u64; LATENCY_BOUNDS.len() + 1];

/// The latency bucket a value falls in.
pub fn latency_bucket(seconds: f64) -> usize {
    LATENCY_BOUNDS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(LATENCY_BOUNDS.len())
}

/// The `q` quantile (0–1) estimated from histogram counts by linear interpolation inside the
/// bucket, as Prometheus' `histogram_quantile` does; `None` without observations.
pub fn quantile(counts: &LatencyCounts, q: f64, max: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut seen = 0u64;
    for (index, count) in counts.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        if (seen + count) as f64 >= rank {
            let lower = if index == 0 {
                0.0
            } else {
                LATENCY_BOUNDS[index - 1]
            };
            let upper = LATENCY_BOUNDS
                .get(index)
                .copied()
                .unwrap_or(max)
                .min(max.max(lower));
            let within = (rank - seen as f64) / *count as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        seen += count;
    }
    Some(max)
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    second: u64,
    orders: u64,
    inventory_events: u64,
    outcomes: [u64; 4],
    latency: LatencyCounts,
    latency_max: f64,
}

/// What the window holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowFigures {
    pub orders: u64,
    pub inventory_events: u64,
    /// reserved, rejected, failed, restocked
    pub outcomes: [u64; 4],
    pub latency: LatencyCounts,
    pub latency_max: f64,
}

#[derive(Debug, Clone)]
pub struct RollingWindow {
    buckets: Vec<Bucket>,
}

pub fn outcome_index(outcome: InventoryOutcome) -> usize {
    match outcome {
        InventoryOutcome::Reserved => 0,
        InventoryOutcome::Rejected => 1,
        InventoryOutcome::Failed => 2,
        InventoryOutcome::Restocked => 3,
    }
}

impl RollingWindow {
    pub fn new(window_seconds: u64) -> Self {
        Self {
            buckets: vec![Bucket::default(); window_seconds.max(1) as usize],
        }
    }

    pub fn seconds(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// The bucket for `second`, cleared if it last held an older second.
    fn bucket(&mut self, second: u64) -> &mut Bucket {
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(second % len) as usize];
        if bucket.second != second {
            *bucket = Bucket {
                second,
                ..Bucket::default()
            };
        }
        bucket
    }

    pub fn record_order(&mut self, second: u64) {
        self.bucket(second).orders += 1;
    }

    /// An inventory outcome, with its end-to-end latency when it has one.
    pub fn record_outcome(&mut self, second: u64, outcome: InventoryOutcome, latency: Option<f64>) {
        let bucket = self.bucket(second);
        bucket.inventory_events += 1;
        bucket.outcomes[outcome_index(outcome)] += 1;
        if let Some(latency) = latency {
            bucket.latency[latency_bucket(latency)] += 1;
            bucket.latency_max = bucket.latency_max.max(latency);
        }
    }

    /// Sums the buckets of the last `window` seconds up to and including `now`.
    pub fn figures(&self, now: u64) -> WindowFigures {
        let len = self.buckets.len() as u64;
        let mut figures = WindowFigures::default();
        for bucket in &self.buckets {
            if bucket.second > now || now - bucket.second >= len {
                continue;
            }
            figures.orders += bucket.orders;
            figures.inventory_events += bucket.inventory_events;
            for (sum, count) in figures.outcomes.iter_mut().zip(bucket.outcomes) {
                *sum += count;
            }
            for (sum, count) in figures.latency.iter_mut().zip(bucket.latency) {
                *sum += count;
            }
            figures.latency_max = figures.latency_max.max(bucket.latency_max);
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_count_while_inside_the_window_and_expire_exactly() {
        let mut window = RollingWindow::new(10);
        window.record_order(100);
        window.record_order(100);
        window.record_order(105);
        assert_eq!(window.figures(100).orders, 2);
        assert_eq!(window.figures(105).orders, 3);
        // Second 100 is inside the window up to second 109 and gone at 110.
        assert_eq!(window.figures(109).orders, 3);
        assert_eq!(window.figures(110).orders, 1);
        assert_eq!(window.figures(114).orders, 1);
        assert_eq!(window.figures(115).orders, 0);
    }

    #[test]
    fn a_reused_bucket_starts_from_zero() {
        let mut window = RollingWindow::new(3);
        window.record_order(1);
        window.record_order(1);
        window.record_order(4); // same slot as second 1
        assert_eq!(window.figures(4).orders, 1);
    }

    #[test]
    fn future_buckets_are_not_counted() {
        let mut window = RollingWindow::new(10);
        window.record_order(50);
        assert_eq!(window.figures(49).orders, 0);
    }

    #[test]
    fn outcomes_and_rates_are_exact() {
        let mut window = RollingWindow::new(60);
        for second in 0..60 {
            window.record_order(second);
            window.record_order(second);
            window.record_outcome(second, InventoryOutcome::Reserved, Some(0.02));
            window.record_outcome(second, InventoryOutcome::Rejected, Some(0.02));
        }
        let figures = window.figures(59);
        assert_eq!(figures.orders, 120);
        assert_eq!(figures.outcomes, [60, 60, 0, 0]);
        // Throughput over the window: exactly 2 orders per second.
        assert_eq!(figures.orders as f64 / window.seconds() as f64, 2.0);
    }

    #[test]
    fn latency_percentiles_come_from_the_histogram_and_the_max_is_exact() {
        let mut window = RollingWindow::new(10);
        for _ in 0..90 {
            window.record_outcome(1, InventoryOutcome::Reserved, Some(0.004));
        }
        for _ in 0..10 {
            window.record_outcome(1, InventoryOutcome::Reserved, Some(0.2));
        }
        let figures = window.figures(1);
        assert_eq!(figures.latency_max, 0.2);
        let p50 = quantile(&figures.latency, 0.5, figures.latency_max).expect("data");
        assert!((0.001..=0.005).contains(&p50), "{p50}");
        let p99 = quantile(&figures.latency, 0.99, figures.latency_max).expect("data");
        assert!((0.1..=0.2).contains(&p99), "{p99}");
        assert_eq!(quantile(&LatencyCounts::default(), 0.5, 0.0), None);
    }

    #[test]
    fn restocks_have_no_latency() {
        let mut window = RollingWindow::new(10);
        window.record_outcome(3, InventoryOutcome::Restocked, None);
        let figures = window.figures(3);
        assert_eq!(figures.outcomes[3], 1);
        assert_eq!(figures.latency.iter().sum::<u64>(), 0);
    }
}

//! The last 15 minutes of the pipeline, one sample a second, served at `GET /history` so a
//! dashboard opened late still shows what already happened.
//!
//! Rates here are per second between two samples (what is happening now), unlike the window
//! figures of `/metrics` (averages over `WINDOW_SEC`); both are shown side by side. The buffer
//! is bounded (900 samples of ~200 bytes); nothing here grows with load.

use std::collections::VecDeque;

use serde::Serialize;

use super::PipelineFigures;
use crate::metrics::MetricsSnapshot;

/// Samples kept: 15 minutes at one a second.
const KEPT: usize = 900;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Epoch seconds.
    pub t: i64,
    /// Orders per second arriving in the order topic (end offsets).
    pub produced: f64,
    pub target: Option<f64>,
    /// Outcomes per second as analytics counted them, by kind.
    pub reserved: f64,
    pub rejected: f64,
    pub failed: f64,
    /// Dead letters per second (failed orders and malformed records).
    pub dead_letters: f64,
    /// End-to-end latency over the window, in milliseconds.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub lag_total: i64,
    /// Lag per partition of the order topic, in partition order.
    pub lag: Vec<i64>,
    pub members: usize,
    pub paused: bool,
}

#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    /// (epoch ms, reserved, rejected, failed, malformed) at the previous sample.
    previous: Option<(i64, u64, u64, u64, u64)>,
}

impl History {
    /// Adds a sample, at most one a second (later calls within the same second are ignored).
    pub fn record(
        &mut self,
        now_ms: i64,
        figures: &PipelineFigures,
        metrics: Option<&MetricsSnapshot>,
    ) {
        if self
            .samples
            .back()
            .is_some_and(|last| last.t == now_ms / 1000)
        {
            return;
        }
        let totals = metrics.map(|m| {
            (
                m.outcomes_total.reserved,
                m.outcomes_total.rejected,
                m.outcomes_total.failed,
                m.malformed_records,
            )
        });
        let (reserved, rejected, failed, dead_letters) = match (self.previous, totals) {
            (Some((at, r0, j0, f0, m0)), Some((r, j, f, m))) if now_ms > at => {
                let seconds = (now_ms - at) as f64 / 1000.0;
                let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / seconds;
                (rate(r, r0), rate(j, j0), rate(f, f0), rate(f + m, f0 + m0))
            }
            _ => (0.0, 0.0, 0.0, 0.0),
        };
        if let Some((r, j, f, m)) = totals {
            self.previous = Some((now_ms, r, j, f, m));
        }
        let group = &figures.inventory_group;
        let mut lag: Vec<&super::PartitionLag> = group.lag.iter().collect();
        lag.sort_by_key(|l| l.partition);
        self.samples.push_back(Sample {
            t: now_ms / 1000,
            produced: round(figures.producer.actual_rate),
            target: figures.producer.target_rate.map(round),
            reserved: round(reserved),
            rejected: round(rejected),
            failed: round(failed),
            dead_letters: round(dead_letters),
            p50_ms: metrics
                .and_then(|m| m.latency_seconds.p50)
                .map(|s| round(s * 1000.0)),
            p99_ms: metrics
                .and_then(|m| m.latency_seconds.p99)
                .map(|s| round(s * 1000.0)),
            lag_total: group.lag_total,
            lag: lag.into_iter().map(|l| l.lag).collect(),
            members: group.members.len(),
            paused: figures.producer.paused,
        });
        while self.samples.len() > KEPT {
            self.samples.pop_front();
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let samples: Vec<&Sample> = self.samples.iter().collect();
        serde_json::to_vec(&serde_json::json!({"interval_seconds": 1, "samples": samples}))
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.samples.len()
    }
}

/// One decimal is plenty for a chart and keeps `/history` small.
fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_bounded() {
        let mut history = History::default();
        let figures = PipelineFigures::default();
        for second in 0..(KEPT as i64 + 50) {
            history.record(second * 1000, &figures, None);
            history.record(second * 1000 + 500, &figures, None);
        }
        assert_eq!(
            history.len(),
            KEPT,
            "one sample a second, the last 15 minutes"
        );
    }
}

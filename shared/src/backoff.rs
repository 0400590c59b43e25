//! The one retry policy of the library: exponential backoff with jitter and an optional
//! deadline, shared by the group member, connection set-up, the producer and the fetchers.
//!
//! It owns only the arithmetic of waiting (how long the next wait is, whether the deadline
//! leaves room for it) and the wait itself on `tokio::time`, so a paused test clock drives it.
//! It must not decide *whether* an error is worth retrying: callers classify their errors and
//! ask for the next wait only for the retriable ones.
//!
//! Jitter spreads the retries of many clients that failed together (a broker restart drops
//! every connection at once): each wait is drawn uniformly from
//! `[delay × (1 − jitter), delay × (1 + jitter)]`, as the Java client's `ExponentialBackoff`
//! and rskafka's `backoff` module do, instead of every client knocking at the same instant.

use std::time::Duration;

use tokio::time::Instant;

/// How retries are spaced: the first wait, the growth factor, the ceiling and the jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The wait before the first retry (before jitter).
    pub initial: Duration,
    /// No wait grows past this (before jitter).
    pub max: Duration,
    /// Each wait is the previous one times this (at least 1).
    pub multiplier: f64,
    /// The fraction (0 to 1) by which a wait may be shorter or longer than its nominal value.
    pub jitter: f64,
}

impl BackoffPolicy {
    /// Java's defaults for `retry.backoff.ms` / `retry.backoff.max.ms` (KIP-580): 100 ms
    /// doubling to 1 s, ±20 %.
    pub const REQUESTS: BackoffPolicy = BackoffPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: 0.2,
    };

    /// Java's `reconnect.backoff.ms` / `reconnect.backoff.max.ms`: 50 ms doubling to 1 s.
    pub const RECONNECT: BackoffPolicy = BackoffPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: 0.2,
    };

    /// A policy with this first wait and ceiling, doubling, ±20 %.
    pub const fn doubling(initial: Duration, max: Duration) -> BackoffPolicy {
        BackoffPolicy {
            initial,
            max,
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

/// The deadline left no room for another wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("gave up retrying after {waited:?}: the deadline leaves no room for another wait")]
pub struct DeadlineExceeded {
    /// How long ago the retries began.
    pub waited: Duration,
}

/// One sequence of retries under a policy; `reset` after a success starts again from the
/// first wait.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    /// The nominal (un-jittered) next wait.
    next: Duration,
    started: Instant,
    deadline: Option<Instant>,
    jitter_state: u64,
}

impl Backoff {
    /// Retries without a deadline.
    pub fn new(policy: BackoffPolicy) -> Backoff {
        let started = Instant::now();
        Backoff {
            policy,
            next: policy.initial,
            started,
            deadline: None,
            jitter_state: seed(),
        }
    }

    /// Retries that give up once `within` has passed since now.
    pub fn with_deadline(policy: BackoffPolicy, within: Duration) -> Backoff {
        let mut backoff = Backoff::new(policy);
        backoff.deadline = Some(backoff.started + within);
        backoff
    }

    /// How long these retries have been going.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The time left before the deadline (`None` without one).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The next wait with its jitter, and advances the sequence; an error when waiting that
    /// long would pass the deadline.
    pub fn next_delay(&mut self) -> Result<Duration, DeadlineExceeded> {
        let nominal = self.next;
        let grown = nominal.mul_f64(self.policy.multiplier.max(1.0));
        self.next = grown.min(self.policy.max);
        let delay = self.jittered(nominal);
        match self.deadline {
            Some(deadline) if Instant::now() + delay > deadline => Err(DeadlineExceeded {
                waited: self.elapsed(),
            }),
            _ => Ok(delay),
        }
    }

    /// Sleeps for the next wait (on `tokio::time`), or returns the error at once when the
    /// deadline leaves no room for it.
    pub async fn wait(&mut self) -> Result<Duration, DeadlineExceeded> {
        let delay = self.next_delay()?;
        tokio::time::sleep(delay).await;
        Ok(delay)
    }

    /// Starts again from the first wait (after a success); the deadline stays.
    pub fn reset(&mut self) {
        self.next = self.policy.initial;
    }

    fn jittered(&mut self, nominal: Duration) -> Duration {
        let jitter = self.policy.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return nominal;
        }
        // A uniform fraction in [0, 1) from a xorshift step: spreading retries needs no more.
        self.jitter_state ^= self.jitter_state << 13;
        self.jitter_state ^= self.jitter_state >> 7;
        self.jitter_state ^= self.jitter_state << 17;
        let fraction = (self.jitter_state >> 11) as f64 / (1u64 << 53) as f64;
        nominal.mul_f64(1.0 - jitter + 2.0 * jitter * fraction)
    }
}

/// A seed that differs between processes and between backoffs of one process.
fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mixed = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed | 1 // xorshift must not start from zero
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXACT: BackoffPolicy = BackoffPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
        multiplier: 2.0,
        jitter: 0.0,
    };

    #[test]
    fn waits_double_up_to_the_ceiling_and_reset_starts_again() {
        let mut backoff = Backoff::new(EXACT);
        let waits: Vec<u64> = (0..6)
            .map(|_| backoff.next_delay().map(|d| d.as_millis() as u64))
            .collect::<Result<_, _>>()
            .expect("no deadline");
        assert_eq!(waits, [100, 200, 400, 800, 800, 800]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Ok(Duration::from_millis(100)));
    }

    #[test]
    fn jitter_stays_within_its_band_and_varies() {
        let policy = BackoffPolicy {
            jitter: 0.2,
            max: Duration::from_millis(100),
            ..EXACT
        };
        let mut backoff = Backoff::new(policy);
        let waits: Vec<Duration> = (0..200)
            .map(|_| backoff.next_delay().expect("no deadline"))
            .collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_millis(80) && *w <= Duration::from_millis(120))
        );
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 50, "jitter should spread the waits");
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_the_waits_that_would_pass_it() {
        let mut backoff = Backoff::with_deadline(EXACT, Duration::from_millis(1000));
        // 100 + 200 + 400 = 700 ms fit; the next wait (800 ms) would end at 1500 ms.
        for expected in [100, 200, 400] {
            assert_eq!(backoff.wait().await, Ok(Duration::from_millis(expected)));
        }
        let refused = backoff
            .wait()
            .await
            .expect_err("800 ms more passes the deadline");
        assert_eq!(refused.waited, Duration::from_millis(700));
        assert_eq!(backoff.remaining(), Some(Duration::from_millis(300)));
    }
}

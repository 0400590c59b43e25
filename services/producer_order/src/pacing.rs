//! When orders are due in each `MODE`: pure functions of the time since the run started, so
//! the schedule cannot drift (a late tick catches up) and tests can ask "how many by 2.5 s?".
//!
//! It decides counts only; sending and sleeping are the run loop's job. Burst mode is the one
//! exception to "a function of time": a burst goes out as fast as the broker takes it and the
//! pause starts when it is done, so the run loop drives bursts itself.

use std::time::Duration;

/// The pacing of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// `size` orders as fast as possible, then `pause`, repeated.
    Burst { size: u64, pause: Duration },
    /// A constant rate (orders per second).
    Steady { rate: f64 },
    /// From `start` to `end` orders per second, linearly over `over`, then `end`.
    Ramp {
        start: f64,
        end: f64,
        over: Duration,
    },
    /// `base` orders per second, times `factor` for `lasting` at the start of every `every`.
    Spike {
        base: f64,
        factor: f64,
        every: Duration,
        lasting: Duration,
    },
}

impl Pacing {
    /// How many orders should have been sent `elapsed` after the start (continuous modes;
    /// burst mode has no schedule and returns `u64::MAX`).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let t = elapsed.as_secs_f64();
        let due = match *self {
            Pacing::Burst { .. } => return u64::MAX,
            Pacing::Steady { rate } => rate * t,
            Pacing::Ramp { start, end, over } => {
                let over = over.as_secs_f64();
                if over <= 0.0 {
                    end * t
                } else if t <= over {
                    start * t + (end - start) * t * t / (2.0 * over)
                } else {
                    (start + end) * over / 2.0 + end * (t - over)
                }
            }
            Pacing::Spike {
                base,
                factor,
                every,
                lasting,
            } => {
                let every = every.as_secs_f64().max(f64::EPSILON);
                let lasting = lasting.as_secs_f64().min(every);
                let periods = (t / every).floor();
                let in_spike = periods * lasting + (t - periods * every).min(lasting);
                base * t + base * (factor - 1.0) * in_spike
            }
        };
        // A hair of tolerance so that exact multiples (rate × t) are not lost to rounding.
        (due + 1e-9).floor().max(0.0) as u64
    }

    /// The instantaneous rate at `elapsed`, for progress lines.
    pub fn rate_at(&self, elapsed: Duration) -> Option<f64> {
        let t = elapsed.as_secs_f64();
        match *self {
            Pacing::Burst { .. } => None,
            Pacing::Steady { rate } => Some(rate),
            Pacing::Ramp { start, end, over } => {
                let over = over.as_secs_f64();
                Some(if over <= 0.0 || t >= over {
                    end
                } else {
                    start + (end - start) * t / over
                })
            }
            Pacing::Spike {
                base,
                factor,
                every,
                lasting,
            } => {
                let phase = t % every.as_secs_f64().max(f64::EPSILON);
                Some(if phase < lasting.as_secs_f64() {
                    base * factor
                } else {
                    base
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    #[test]
    fn steady_is_rate_times_elapsed_without_drift() {
        let pacing = Pacing::Steady { rate: 1000.0 };
        assert_eq!(pacing.due_by(at(0.0)), 0);
        assert_eq!(pacing.due_by(at(0.0005)), 0);
        assert_eq!(pacing.due_by(at(0.001)), 1);
        assert_eq!(pacing.due_by(at(2.5)), 2500);
        // Catching up after a stall: the schedule is absolute, not per tick.
        assert_eq!(pacing.due_by(at(60.0)), 60_000);
    }

    #[test]
    fn ramp_integrates_the_rising_rate_then_holds_the_end_rate() {
        let pacing = Pacing::Ramp {
            start: 100.0,
            end: 300.0,
            over: at(10.0),
        };
        assert_eq!(pacing.due_by(at(0.0)), 0);
        // After 5 s the rate is 200/s; the area is (100 + 200) / 2 × 5 = 750.
        assert_eq!(pacing.due_by(at(5.0)), 750);
        // The whole ramp: (100 + 300) / 2 × 10 = 2000, then 300/s.
        assert_eq!(pacing.due_by(at(10.0)), 2000);
        assert_eq!(pacing.due_by(at(12.0)), 2600);
        assert_eq!(pacing.rate_at(at(5.0)), Some(200.0));
        assert_eq!(pacing.rate_at(at(20.0)), Some(300.0));
    }

    #[test]
    fn a_falling_ramp_works_too() {
        let pacing = Pacing::Ramp {
            start: 300.0,
            end: 100.0,
            over: at(10.0),
        };
        assert_eq!(pacing.due_by(at(10.0)), 2000);
        assert_eq!(pacing.due_by(at(11.0)), 2100);
    }

    #[test]
    fn spike_multiplies_the_rate_at_the_start_of_each_period() {
        let pacing = Pacing::Spike {
            base: 100.0,
            factor: 10.0,
            every: at(10.0),
            lasting: at(1.0),
        };
        // First second is a spike: 1000/s.
        assert_eq!(pacing.due_by(at(1.0)), 1000);
        // Then 100/s for 9 s.
        assert_eq!(pacing.due_by(at(10.0)), 1900);
        // The next period starts with another spike.
        assert_eq!(pacing.due_by(at(10.5)), 2400);
        assert_eq!(pacing.due_by(at(20.0)), 3800);
        assert_eq!(pacing.rate_at(at(10.5)), Some(1000.0));
        assert_eq!(pacing.rate_at(at(12.0)), Some(100.0));
    }

    #[test]
    fn burst_has_no_time_schedule() {
        let pacing = Pacing::Burst {
            size: 10,
            pause: at(1.0),
        };
        assert_eq!(pacing.due_by(at(0.0)), u64::MAX);
        assert_eq!(pacing.rate_at(at(0.0)), None);
    }
}

//! What the fetcher does when a partition's answer skips offsets (an [`OffsetGap`]): wait for
//! the missing batch, or, once the hole has lasted long enough to be real, read on past it.
//!
//! Pure state per partition, no I/O; the session asks it after each decode. The choice a
//! reader may question: Kafka never shows a hole below the high watermark except where
//! compaction removed batches, and the Java consumer simply reads on; we wait first, because
//! Nisshi's memory engine shows holes for a few milliseconds while a batch it has counted is
//! still being stored (it raises the high watermark first), and reading on there loses that
//! batch for good. A hole that lasts [`GAP_GRACE`] is taken as real: a compacted topic costs
//! that pause per hole at a fetch boundary, not a stall.

use std::time::Duration;

use tokio::time::Instant;

use super::OffsetGap;

/// How long a hole must last before it is read past.
pub(super) const GAP_GRACE: Duration = Duration::from_secs(2);
/// How soon a partition waiting at a hole is fetched again.
pub(super) const GAP_RETRY: Duration = Duration::from_millis(5);

/// What the session does next with a partition whose answer stopped at a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GapVerdict {
    /// Ask for the same position again, not before this instant.
    Wait(Instant),
    /// The hole is real: the position moves to the batch after it.
    ReadPast {
        from: i64,
        to: i64,
        waited: Duration,
    },
}

/// The hole a partition is waiting at, if any.
#[derive(Debug, Default)]
pub(super) struct GapWatch {
    waiting: Option<(OffsetGap, Instant)>,
}

impl GapWatch {
    /// The answer read on without a hole: whatever was awaited has arrived.
    pub(super) fn clear(&mut self) {
        self.waiting = None;
    }

    pub(super) fn judge(&mut self, gap: OffsetGap, now: Instant) -> GapVerdict {
        match self.waiting {
            // The same hole, as long as the grace: real. A hole that starts at the same
            // offset but ends elsewhere is still the same missing batch.
            Some((seen, since)) if seen.missing_from == gap.missing_from => {
                let waited = now.saturating_duration_since(since);
                if waited >= GAP_GRACE {
                    self.waiting = None;
                    GapVerdict::ReadPast {
                        from: gap.missing_from,
                        to: gap.resumes_at,
                        waited,
                    }
                } else {
                    GapVerdict::Wait(now + GAP_RETRY)
                }
            }
            _ => {
                self.waiting = Some((gap, now));
                GapVerdict::Wait(now + GAP_RETRY)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(missing_from: i64, resumes_at: i64) -> OffsetGap {
        OffsetGap {
            missing_from,
            resumes_at,
        }
    }

    #[test]
    fn a_new_hole_is_waited_for() {
        let mut watch = GapWatch::default();
        let now = Instant::now();
        assert_eq!(
            watch.judge(gap(10, 12), now),
            GapVerdict::Wait(now + GAP_RETRY)
        );
        let later = now + GAP_GRACE / 2;
        assert_eq!(
            watch.judge(gap(10, 13), later),
            GapVerdict::Wait(later + GAP_RETRY),
            "the same missing offset, however the hole ends, keeps its first sighting"
        );
    }

    #[test]
    fn a_hole_that_lasts_the_grace_is_read_past() {
        let mut watch = GapWatch::default();
        let now = Instant::now();
        watch.judge(gap(10, 12), now);
        let verdict = watch.judge(gap(10, 12), now + GAP_GRACE);
        assert_eq!(
            verdict,
            GapVerdict::ReadPast {
                from: 10,
                to: 12,
                waited: GAP_GRACE
            }
        );
        // The next hole starts its own wait.
        let later = now + GAP_GRACE * 2;
        assert_eq!(
            watch.judge(gap(20, 25), later),
            GapVerdict::Wait(later + GAP_RETRY)
        );
    }

    #[test]
    fn a_filled_hole_forgets_the_wait() {
        let mut watch = GapWatch::default();
        let now = Instant::now();
        watch.judge(gap(10, 12), now);
        watch.clear();
        // The same offset missing again much later is a new sighting, not a long hole.
        let later = now + GAP_GRACE * 3;
        assert_eq!(
            watch.judge(gap(10, 12), later),
            GapVerdict::Wait(later + GAP_RETRY)
        );
    }
}

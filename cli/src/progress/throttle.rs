//! Per-step rate limiting of `Bytes` events.
//!
//! Steps may report bytes thousands of times a second; line-oriented outputs
//! show at most one report per interval per step. The newest suppressed value
//! is remembered so that the final count can still be shown when the step
//! ends.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use berth_builder::progress::StepId;

/// A `Bytes` report that was held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub bytes: u64,
    /// When it was reported, for outputs that timestamp events.
    pub time: SystemTime,
}

#[derive(Debug)]
struct Slot {
    last_shown: Instant,
    pending: Option<Pending>,
}

#[derive(Debug)]
pub struct ByteThrottle {
    interval: Duration,
    steps: HashMap<StepId, Slot>,
}

impl ByteThrottle {
    pub fn new(interval: Duration) -> Self {
        ByteThrottle {
            interval,
            steps: HashMap::new(),
        }
    }

    /// Whether a report of `bytes` for `step` at `now` should be shown. If
    /// not, it is kept as the step's pending value (replacing an older one).
    pub fn admit(&mut self, step: StepId, bytes: u64, now: Instant, time: SystemTime) -> bool {
        match self.steps.get_mut(&step) {
            None => {
                self.steps.insert(
                    step,
                    Slot {
                        last_shown: now,
                        pending: None,
                    },
                );
                true
            }
            Some(slot) if now.saturating_duration_since(slot.last_shown) >= self.interval => {
                slot.last_shown = now;
                slot.pending = None;
                true
            }
            Some(slot) => {
                slot.pending = Some(Pending { bytes, time });
                false
            }
        }
    }

    /// The step ended: forgets it and returns the value that was held back
    /// since the last one shown, if any.
    pub fn end(&mut self, step: StepId) -> Option<Pending> {
        self.steps.remove(&step).and_then(|slot| slot.pending)
    }

    /// Forgets every step, returning the held-back values (in step order, so
    /// that output is deterministic).
    pub fn drain(&mut self) -> Vec<(StepId, Pending)> {
        let mut pending: Vec<_> = self
            .steps
            .drain()
            .filter_map(|(step, slot)| slot.pending.map(|p| (step, p)))
            .collect();
        pending.sort_by_key(|(step, _)| *step);
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_report_shown_then_one_per_interval_and_last_kept() {
        let mut t = ByteThrottle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let s = StepId(1);
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(t.admit(s, 10, ms(0), wall));
        assert!(!t.admit(s, 20, ms(500), wall));
        assert!(!t.admit(s, 30, ms(999), wall));
        assert!(t.admit(s, 40, ms(1000), wall));
        assert!(!t.admit(s, 50, ms(1200), wall));
        // Another step has its own budget.
        assert!(t.admit(StepId(2), 1, ms(1200), wall));
        assert_eq!(t.end(s).map(|p| p.bytes), Some(50));
        assert_eq!(t.end(s), None);
        // After its end a step starts afresh.
        assert!(t.admit(s, 60, ms(1201), wall));
        assert_eq!(t.end(StepId(2)), None);
    }

    #[test]
    fn nothing_pending_when_last_report_was_shown() {
        let mut t = ByteThrottle::new(Duration::from_millis(100));
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        assert!(t.admit(StepId(1), 1, t0, wall));
        assert!(!t.admit(StepId(1), 2, t0, wall));
        assert!(t.admit(StepId(1), 3, t0 + Duration::from_millis(100), wall));
        assert_eq!(t.end(StepId(1)), None);
    }

    #[test]
    fn drain_returns_pending_in_step_order() {
        let mut t = ByteThrottle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        for step in [5, 3, 4] {
            t.admit(StepId(step), 1, t0, wall);
        }
        t.admit(StepId(5), 2, t0, wall);
        t.admit(StepId(3), 7, t0, wall);
        let drained: Vec<_> = t.drain().into_iter().map(|(s, p)| (s.0, p.bytes)).collect();
        assert_eq!(drained, [(3, 7), (5, 2)]);
        assert!(t.drain().is_empty());
    }
}

//! Retrying transient failures: exponential backoff with jitter, the
//! server's `Retry-After` honoured (within a cap), a fixed attempt budget,
//! and cancellation between attempts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::RegistryError;

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each failure.
    pub base_delay: Duration,
    /// Longest delay between attempts, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `n` (1-based).
    pub fn delay(&self, n: u32, retry_after: Option<u64>) -> Duration {
        if let Some(secs) = retry_after {
            return Duration::from_secs(secs).min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << n.saturating_sub(1).min(16));
        // Up to a quarter more, so parallel transfers do not retry in step.
        let jitter_ns = (exp.as_nanos() as u64 / 4).max(1);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
        (exp + Duration::from_nanos(seed % jitter_ns)).min(self.max_delay)
    }

    /// Runs `op` until it succeeds, fails for good, or the budget is spent.
    /// `op` gets the attempt number (1-based). `on_retry` hears about each
    /// transient failure before the pause.
    pub fn run<T>(
        &self,
        cancel: Option<&AtomicBool>,
        mut on_retry: impl FnMut(u32, &RegistryError),
        mut op: impl FnMut(u32) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut n = 1;
        loop {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(RegistryError::Cancelled);
            }
            match op(n) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && n < self.attempts => {
                    on_retry(n, &e);
                    let retry_after = match &e {
                        RegistryError::Transient { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    sleep_unless_cancelled(self.delay(n, retry_after), cancel);
                    n += 1;
                }
                Err(e) if e.is_transient() => {
                    return Err(RegistryError::RetriesExhausted {
                        attempts: n,
                        last: Box::new(e),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn sleep_unless_cancelled(total: Duration, cancel: Option<&AtomicBool>) {
    let step = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return;
        }
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> RegistryError {
        RegistryError::Transient {
            reason: "x".into(),
            retry_after: None,
        }
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    #[test]
    fn retries_transient_until_success() {
        let mut seen = 0;
        let v = quick()
            .run(
                None,
                |_, _| seen += 1,
                |n| if n < 3 { Err(transient()) } else { Ok(n) },
            )
            .expect("third attempt succeeds");
        assert_eq!((v, seen), (3, 2));
    }

    #[test]
    fn gives_up_after_budget_and_says_so() {
        let e = quick()
            .run(None, |_, _| {}, |_| Err::<(), _>(transient()))
            .expect_err("budget spent");
        assert!(
            e.to_string().starts_with("giving up after 3 attempts"),
            "{e}"
        );
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let mut calls = 0;
        let e = quick()
            .run(
                None,
                |_, _| {},
                |_| {
                    calls += 1;
                    Err::<(), _>(RegistryError::ManifestUnknown)
                },
            )
            .expect_err("permanent");
        assert_eq!((calls, e.to_string()), (1, "manifest unknown".to_owned()));
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Some(3)), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(3600)), p.max_delay);
        assert!(p.delay(3, None) >= Duration::from_millis(1000));
    }

    #[test]
    fn cancel_stops_before_the_next_attempt() {
        let cancel = AtomicBool::new(true);
        let e = quick()
            .run(Some(&cancel), |_, _| {}, |_| Ok::<_, RegistryError>(()))
            .expect_err("cancelled");
        assert!(matches!(e, RegistryError::Cancelled));
    }
}

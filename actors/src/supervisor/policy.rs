//! When and how fast to restart a failed child: exponential backoff and a
//! restart-intensity limit. Pure bookkeeping over instants the caller
//! passes in, so it is tested without sleeping.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How the supervisor restarts a failed child.
///
/// The n-th restart inside `window` waits `base_backoff × factorⁿ⁻¹`,
/// capped at `max_backoff`. A failure that would be restart number
/// `max_restarts + 1` inside `window` is one too many: the supervisor stops
/// restarting that child, journals it with `gave_up = true`, and reports it
/// in [`crate::Engine::failed_actors`]. Restarts older than `window` no
/// longer count, so a child that fails rarely is restarted forever and its
/// backoff shrinks back to `base_backoff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Wait before the first restart.
    pub base_backoff: Duration,
    /// Growth of the wait per further restart inside the window (≥ 1).
    pub factor: u32,
    /// Longest wait.
    pub max_backoff: Duration,
    /// Most restarts allowed inside `window`.
    pub max_restarts: u32,
    /// The sliding window restarts are counted in.
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            base_backoff: Duration::from_millis(100),
            factor: 2,
            max_backoff: Duration::from_secs(30),
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }
}

impl RestartPolicy {
    /// The wait before restart number `attempt` (1-based) inside the window.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let mut wait = self.base_backoff;
        for _ in 1..attempt {
            if wait >= self.max_backoff {
                break;
            }
            wait = wait.saturating_mul(self.factor);
        }
        wait.min(self.max_backoff)
    }
}

/// What to do about one failure of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Restarts inside the window, this one included (for a give-up: the
    /// restart that was refused).
    pub(crate) attempt: u32,
    /// Wait before restarting; `None` means give up.
    pub(crate) backoff: Option<Duration>,
}

/// One child's recent restarts.
#[derive(Debug, Default)]
pub(crate) struct RestartHistory {
    restarts: VecDeque<Instant>,
}

impl RestartHistory {
    /// A history that already holds restarts made `ages` ago (what the
    /// journal recorded before this process started), oldest first, so the
    /// intensity limit counts restarts across process restarts too.
    pub(crate) fn with_past(now: Instant, mut ages: Vec<std::time::Duration>) -> Self {
        ages.sort_unstable_by(|a, b| b.cmp(a));
        RestartHistory {
            restarts: ages
                .into_iter()
                .filter_map(|age| now.checked_sub(age))
                .collect(),
        }
    }

    /// Records a failure at `now` and decides whether and when to restart.
    pub(crate) fn on_failure(&mut self, now: Instant, policy: &RestartPolicy) -> Decision {
        while self
            .restarts
            .front()
            .is_some_and(|&at| now.duration_since(at) >= policy.window)
        {
            self.restarts.pop_front();
        }
        // A window can never hold more than u32::MAX restarts: the limit is
        // a u32 and entries are only added below it.
        let attempt = self.restarts.len() as u32 + 1;
        if attempt > policy.max_restarts {
            return Decision {
                attempt,
                backoff: None,
            };
        }
        self.restarts.push_back(now);
        Decision {
            attempt,
            backoff: Some(policy.backoff(attempt)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            base_backoff: Duration::from_millis(10),
            factor: 3,
            max_backoff: Duration::from_millis(100),
            max_restarts: 3,
            window: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_grows_by_the_factor_up_to_the_cap() {
        let waits: Vec<u128> = (1..=5).map(|n| policy().backoff(n).as_millis()).collect();
        assert_eq!(waits, [10, 30, 90, 100, 100]);
    }

    #[test]
    fn backoff_never_overflows() {
        let p = RestartPolicy {
            factor: u32::MAX,
            max_backoff: Duration::MAX,
            ..policy()
        };
        assert_eq!(p.backoff(u32::MAX), Duration::MAX);
    }

    #[test]
    fn gives_up_on_the_failure_past_the_limit() {
        let (p, t0, mut history) = (policy(), Instant::now(), RestartHistory::default());
        let decisions: Vec<Decision> = (0..4)
            .map(|i| history.on_failure(t0 + Duration::from_secs(i), &p))
            .collect();
        let ms = |d: u64| Some(Duration::from_millis(d));
        assert_eq!(
            decisions,
            [
                Decision {
                    attempt: 1,
                    backoff: ms(10)
                },
                Decision {
                    attempt: 2,
                    backoff: ms(30)
                },
                Decision {
                    attempt: 3,
                    backoff: ms(90)
                },
                Decision {
                    attempt: 4,
                    backoff: None
                },
            ]
        );
    }

    #[test]
    fn restarts_older_than_the_window_stop_counting() {
        let (p, t0, mut history) = (policy(), Instant::now(), RestartHistory::default());
        for i in 0..3 {
            history.on_failure(t0 + Duration::from_secs(i), &p);
        }
        // The first restart (t0) left the window; the other two still count.
        let later = history.on_failure(t0 + p.window, &p);
        assert_eq!(
            later,
            Decision {
                attempt: 3,
                backoff: Some(p.backoff(3))
            }
        );
        // Long after all of them, the backoff is back to its base.
        let much_later = history.on_failure(t0 + p.window * 5, &p);
        assert_eq!(
            much_later,
            Decision {
                attempt: 1,
                backoff: Some(p.base_backoff)
            }
        );
    }
}

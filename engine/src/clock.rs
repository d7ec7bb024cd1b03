//! The store's millisecond clock.
//!
//! Expiry compares `expire_at_ms` with "now". If the wall clock stepped
//! backwards (NTP correction), a key that had already been reported expired
//! could become visible again; Redis promises that never happens, so the
//! store's clock never goes backwards within a process.

use std::sync::atomic::{AtomicI64, Ordering};

/// A wall clock in Unix milliseconds that never decreases.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    floor: AtomicI64,
}

impl Clock {
    /// The current time, never earlier than any time returned before.
    pub(crate) fn now(&self) -> i64 {
        let wall = keyferry_journal::now_ms();
        let before = self.floor.fetch_max(wall, Ordering::Relaxed);
        before.max(wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let clock = Clock::default();
        // Pretend an earlier call saw a time far in the future (the wall
        // clock has since been stepped back).
        let future = keyferry_journal::now_ms() + 60_000;
        clock.floor.store(future, Ordering::Relaxed);
        assert_eq!(clock.now(), future);
    }
}

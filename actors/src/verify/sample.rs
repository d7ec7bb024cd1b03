//! Choosing the sample: each key with probability `percent / 100`.
//!
//! The choice is a keyed hash of the database and the key compared with a
//! threshold, not a coin toss per visit: the source and destination
//! passes then take the same subset of the key space, so a sample means
//! the same keys on both sides, and a key `SCAN` returns twice gets the
//! same answer twice. The hash key is random for each verification, so
//! repeated runs look at different samples.

use std::hash::{BuildHasher, RandomState};

use keyferry_engine::Db;

/// Which keys a verification looks at.
#[derive(Debug, Clone)]
pub(super) struct Sampler {
    hasher: RandomState,
    /// Hashes at or below this are chosen; `None` chooses every key (100 %
    /// needs no hashing, and must not lose a key to float rounding).
    threshold: Option<u64>,
}

impl Sampler {
    /// A sampler that takes `percent` percent of keys; `None` unless
    /// `0 < percent <= 100`.
    pub(super) fn new(percent: f64) -> Option<Sampler> {
        if !(percent > 0.0 && percent <= 100.0) {
            return None;
        }
        // The float-to-int cast saturates, so the product cannot overflow.
        let threshold = (percent < 100.0).then(|| (percent / 100.0 * u64::MAX as f64) as u64);
        Some(Sampler {
            hasher: RandomState::new(),
            threshold,
        })
    }

    /// True when the sample includes `key` of `db`.
    pub(super) fn chooses(&self, db: Db, key: &[u8]) -> bool {
        self.threshold
            .is_none_or(|threshold| self.hasher.hash_one((db, key)) <= threshold)
    }
}

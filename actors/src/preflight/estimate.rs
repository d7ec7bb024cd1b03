//! Estimates and recommended throttles, from the key count, the sampled
//! memory and the round trip to the source. Pure arithmetic: every figure
//! here is a planning aid, and the constants say what it assumes.

use std::time::Duration;

use serde::Serialize;

/// Destination bytes per byte of source `MEMORY USAGE`.
///
/// MEMORY USAGE counts a key's Redis overhead (object header, dict entry,
/// allocator rounding: ~50–80 bytes per key) and compact encodings of
/// small collections (listpacks: 1–3 bytes per element). In SQLite a key
/// costs a `keys` row plus a `UNIQUE (db, key)` index entry (the key is
/// stored twice), a collection element costs a row with a ~10 byte header
/// (a zset member twice more, for the by-score index), and B-tree pages
/// filled in hash order end up about 70% full. Small strings come out at
/// about 1×, small collections at up to 2×, big hash-table-encoded
/// collections below 1×; 1.5 sits in the middle and leaves room for the
/// WAL during the import.
pub const SQLITE_OVERHEAD_FACTOR: f64 = 1.5;

/// Keys per second `estimated_bulk_seconds` assumes: a fifth of the
/// import's 250k small keys/s aim, so that a slower disk or network still
/// finishes within the estimate.
pub const ASSUMED_KEYS_PER_SECOND: u64 = 50_000;

/// Bytes of source memory per second `estimated_bulk_seconds` assumes
/// (big values are bounded by the network and SQLite's write speed
/// rather than by the key rate): 50 MB/s.
pub const ASSUMED_BYTES_PER_SECOND: u64 = 50_000_000;

/// The mean key size recommendations assume when the sample measured
/// none (an empty source, or MEMORY USAGE refused with no `used_memory`).
const UNKNOWN_MEAN_KEY_BYTES: u64 = 1024;

/// The bytes of values one SCAN page should bring back: big enough to
/// amortise the round trip, small enough to keep the reply in memory.
const PAGE_BYTES: u64 = 4 << 20;

/// The bytes one destination transaction should write: SQLite commits
/// this in well under a second, so other writers never wait long.
const BATCH_BYTES: u64 = 16 << 20;

/// Pages in flight on a local network. Redis runs commands one at a time,
/// so more only queue on the server; each further millisecond of round
/// trip needs about this many more to keep the server busy.
const LOCAL_CONCURRENCY: u64 = 4;

/// Throttles suggested for `bulk` and `apply-dirty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recommended {
    /// `--scan-count`.
    pub scan_count: u32,
    /// `--max-concurrency`.
    pub max_concurrency: u32,
    /// `--batch-keys`.
    pub batch_keys: u32,
}

/// The destination file size for `memory` bytes of source data.
pub(super) fn destination_bytes(memory: u64) -> u64 {
    // Rounding is irrelevant next to the factor's own uncertainty.
    (memory as f64 * SQLITE_OVERHEAD_FACTOR) as u64
}

/// Seconds to import `keys` keys holding `memory` bytes at the assumed
/// rates: whichever of the two limits binds.
pub(super) fn bulk_seconds(keys: u64, memory: Option<u64>) -> u64 {
    let by_keys = keys.div_ceil(ASSUMED_KEYS_PER_SECOND);
    let by_bytes = memory.unwrap_or(0).div_ceil(ASSUMED_BYTES_PER_SECOND);
    by_keys.max(by_bytes)
}

/// Throttles for keys of `mean_key_bytes` on average, `round_trip` away.
pub(super) fn recommend(mean_key_bytes: Option<u64>, round_trip: Duration) -> Recommended {
    let mean = mean_key_bytes.unwrap_or(UNKNOWN_MEAN_KEY_BYTES).max(1);
    let round_trip_ms = u64::try_from(round_trip.as_millis()).unwrap_or(u64::MAX);
    Recommended {
        scan_count: clamped(PAGE_BYTES / mean, 10, 1000),
        max_concurrency: clamped(
            LOCAL_CONCURRENCY.saturating_mul(round_trip_ms.saturating_add(1)),
            LOCAL_CONCURRENCY,
            32,
        ),
        batch_keys: clamped(BATCH_BYTES / mean, 100, 10_000),
    }
}

fn clamped(value: u64, min: u64, max: u64) -> u32 {
    // `max` is far below u32::MAX.
    value.clamp(min, max) as u32
}

/// `bytes` for people: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

//! keyferry's event journal.
//!
//! The journal records the *actors'* state changes (migration runs,
//! checkpoints, committed batches, the dirty-key registry, jobs and leases,
//! actor restarts, snapshots) — never client writes, which live only in the
//! keyspace tables. Every row carries a sequence number assigned by SQLite
//! (so several processes may append to one file), the event kind, the schema
//! version it was written with, a timestamp, a CRC-32 checksum, and an
//! rmp-serde payload encoded with *named* fields.
//!
//! Writes go through [`writer::Writer`], a single thread that groups many
//! callers' work into one SQLite transaction (group commit) and answers each
//! caller only once that transaction has committed. The keyspace (in
//! `keyferry-engine`) submits its own work to the same writer so that a data
//! write and the journal event describing it commit together.

pub mod connection;
pub mod event;
pub mod schema;
pub mod writer;

/// Milliseconds since the Unix epoch, the journal's and keyspace's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

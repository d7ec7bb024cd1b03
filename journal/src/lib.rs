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
//! write and the journal event describing it commit together
//! ([`append_in`]).
//!
//! Reads use read-only connections and stream in pages
//! ([`Journal::read_from`]); a row whose checksum or payload is wrong is
//! reported with its sequence number, never skipped. [`Projection`]s fold
//! events into state, and snapshots of that state let a replay after a
//! restart read only the tail of the journal.
//!
//! The migration registry ([`registry`]) and the job queue ([`jobs`]) are
//! the journal's SQL face: tables of runs, dirty keys, errors and jobs,
//! written in the same transaction as each append ([`projections`]), that
//! the CLI and the actors query directly. The job queue's operations
//! (enqueue, dequeue under a fenced lease, heartbeat, ack, fail with
//! backoff, reclaim) run inside the caller's write transaction.

mod append;
mod checkpointer;
pub mod codec;
pub mod compaction;
pub mod connection;
mod error;
pub mod event;
pub mod jobs;
mod journal;
mod migrations;
mod page_cache;
mod projection;
pub mod projections;
mod read;
pub mod rebuild;
pub mod registry;
pub mod schema;
mod snapshot;
mod summary;
mod wal_writes;
pub mod writer;

pub use append::append_in;
pub use connection::Durability;
pub use error::{JournalError, ReadError, ReplayError, SnapshotError};
pub use event::{Counters, EVENT_VERSION, Event, RunStatus, Seq, Severity};
pub use jobs::{Backoff, Job, JobError, JobStatus, NewJob};
pub use journal::Journal;
pub use migrations::{COMPONENT, MIGRATIONS};
pub use projection::{Projection, Replayed};
pub use read::{Entries, Entry, last_seq};
pub use registry::{ErrorRow, PendingKey, PendingState, RunRow, Throttles};
pub use summary::{ActorRestarts, CheckpointSummary, JobCounts, RunSummary, Summary};
pub use writer::{Cost, Isolation, Pending, WriteError, Writer, WriterConfig, WriterHandle};

/// Milliseconds since the Unix epoch, the journal's and keyspace's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

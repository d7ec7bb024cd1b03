//! Projection snapshots and journal compaction: what keeps start-up time
//! flat and the journal's size bounded however long a deployment runs.
//!
//! A *snapshot* at sequence number S ([`take_snapshot`]) is, in one write
//! transaction, a copy of every SQL projection table (see
//! [`crate::rebuild::PROJECTION_TABLES`]) in shadow tables, plus a
//! [`Summary`] snapshot covering S (the in-memory projection actors load at
//! start-up: [`crate::Journal::replay`] starts from its latest snapshot and
//! reads only the tail). The SQL projections themselves need no rebuild at
//! start-up — they are written in the transaction of every append — so
//! their copies serve one purpose: once the events before S are deleted,
//! `keyferry replay` can still rebuild (and check) every state from S on.
//!
//! *Compaction* ([`compact`]) deletes the journal rows before
//! `min(retain_after, latest snapshot)`, a bounded chunk per short write
//! transaction so other writers are never held up for long. It never
//! deletes the newest row: `seq` is a rowid without `AUTOINCREMENT`, and
//! SQLite would hand a deleted maximum's number to the next append. A
//! snapshot older than the first remaining event cannot be replayed from
//! any more and is deleted with the rows.
//!
//! [`maintain`], called periodically by long-running processes (`serve`,
//! `migrate`), applies a [`SnapshotPolicy`]: a snapshot every
//! `every_events` events (default 100,000), and, when a retention is set,
//! compaction down to the last `retain_events` events. The command line
//! sets the retention with the environment variable
//! `KEYFERRY_JOURNAL_RETENTION` ([`RETENTION_ENV`]): the number of events to
//! keep; unset or empty keeps every event. Retention is coarse: rows are
//! deleted only up to the latest snapshot, so up to `every_events` more
//! events than asked may be kept, and `keyferry replay --until` can reach
//! back only to the oldest snapshot kept (the error names it).
//!
//! Each snapshot kept costs one copy of the projection tables. While the
//! journal still holds every event, only the latest snapshot is kept (any
//! state can be rebuilt from the first event); after compaction, every
//! snapshot from the first remaining event on is kept, about
//! `retain_events / every_events` of them.
//!
//! The snapshot tables belong to their own schema component, [`COMPONENT`]:
//! run [`prepare`] on a read-write connection before taking snapshots
//! ([`maintain`] does).

mod shadow;

use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::connection::{Durability, open_ro, open_rw};
use crate::error::{ReadError, SnapshotError};
use crate::event::Seq;
use crate::journal::Journal;
use crate::projection::Projection;
use crate::read::{self, last_seq};
use crate::rebuild::{first_seq, tables::fingerprint};
use crate::schema::{self, Migration, SchemaError};
use crate::snapshot;
use crate::summary::Summary;
use crate::writer::WriteError;

pub(crate) use shadow::{restore, usable};

/// The schema component owning the snapshot tables, as recorded in
/// `schema_version`.
pub const COMPONENT: &str = "snapshots";

/// The snapshot component's migrations, oldest first.
///
/// Only the catalog is created here; the shadow tables holding the copied
/// rows are created by the first snapshot, from the projection tables'
/// columns at that time (a projection table added later needs no migration
/// here).
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    // One row per snapshot: the last event it covers, when it was taken,
    // and the fingerprint of the projection tables' definitions it was
    // copied from (a copy restores only into identical tables).
    sql: "
        CREATE TABLE projection_snapshots (
            seq             INTEGER PRIMARY KEY,
            at_ms           INTEGER NOT NULL,
            schema_checksum INTEGER NOT NULL
        );
    ",
}];

/// The environment variable holding the number of journal events to keep
/// (see [`SnapshotPolicy::from_env`]).
pub const RETENTION_ENV: &str = "KEYFERRY_JOURNAL_RETENTION";

/// Journal rows deleted per compaction transaction: a few milliseconds of
/// work, so other writers (and other processes) wait little.
const CHUNK_ROWS: i64 = 10_000;

/// Why taking a snapshot or compacting failed. Nothing was changed by the
/// failed transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactionError {
    /// SQLite failed.
    #[error("journal compaction sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The snapshot tables could not be created or upgraded.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A journal event needed for the summary snapshot could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The summary snapshot could not be loaded or saved.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The snapshot tables do not exist: [`prepare`] was not run.
    #[error("the projection snapshot tables do not exist (run compaction::prepare first)")]
    NotPrepared,
    /// The summary's latest snapshot is older than the first event left
    /// in the journal: the events in between were compacted away, so the
    /// summary cannot be brought up to date.
    #[error(
        "cannot snapshot the summary: its latest snapshot covers seq {covers}, but the journal starts at seq {first}"
    )]
    SummaryGap {
        /// The last event the summary's latest snapshot covers (0: none).
        covers: Seq,
        /// The first event left in the journal.
        first: Seq,
    },
    /// [`RETENTION_ENV`] is not a number of events.
    #[error("{RETENTION_ENV}={value:?} is not a number of events to keep")]
    BadRetention {
        /// The variable's value.
        value: String,
    },
    /// The writer's transaction could not begin or commit.
    #[error("journal compaction transaction failed: {0}")]
    Transaction(Arc<rusqlite::Error>),
    /// The writer job panicked.
    #[error("journal compaction panicked: {0}")]
    Panicked(String),
    /// The writer has stopped.
    #[error("the database writer has stopped")]
    WriterGone,
}

impl From<WriteError<CompactionError>> for CompactionError {
    fn from(error: WriteError<CompactionError>) -> Self {
        match error {
            WriteError::Op(e) => e,
            WriteError::Transaction(e) => CompactionError::Transaction(e),
            WriteError::Panicked(message) => CompactionError::Panicked(message),
            WriteError::WriterGone => CompactionError::WriterGone,
        }
    }
}

/// Creates or upgrades the snapshot tables on `conn` (a read-write
/// connection outside any transaction). Returns the component's version.
pub fn prepare(conn: &mut Connection) -> Result<u32, SchemaError> {
    schema::migrate(conn, COMPONENT, MIGRATIONS)
}

/// When [`maintain`] takes snapshots and how much journal it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// A snapshot is taken once this many events were appended since the
    /// latest one.
    pub every_events: u64,
    /// Events to keep in the journal; older ones are compacted away (down
    /// to the latest snapshot at most). `None` keeps every event.
    pub retain_events: Option<u64>,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            every_events: 100_000,
            retain_events: None,
        }
    }
}

impl SnapshotPolicy {
    /// The default policy with the retention read from
    /// `KEYFERRY_JOURNAL_RETENTION` (events to keep; unset or empty keeps
    /// every event).
    pub fn from_env() -> Result<SnapshotPolicy, CompactionError> {
        let value = std::env::var_os(RETENTION_ENV).unwrap_or_default();
        SnapshotPolicy::with_retention(&value.to_string_lossy())
    }

    /// The default policy keeping `retention` events, written as in
    /// [`RETENTION_ENV`].
    fn with_retention(retention: &str) -> Result<SnapshotPolicy, CompactionError> {
        let retention = retention.trim();
        let retain_events = match retention {
            "" => None,
            n => Some(n.parse().map_err(|_| CompactionError::BadRetention {
                value: n.to_owned(),
            })?),
        };
        Ok(SnapshotPolicy {
            retain_events,
            ..SnapshotPolicy::default()
        })
    }
}

/// A snapshot just taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The last event it covers.
    pub seq: Seq,
    /// Projection rows copied.
    pub rows: u64,
}

/// Takes a snapshot of every projection covering the journal's last event,
/// inside the caller's write transaction (a writer job, or a
/// `BEGIN IMMEDIATE` transaction of the caller's own), so the copies and
/// the summary are of one consistent state. Returns `None` when the journal
/// is empty.
///
/// The summary is brought up from its latest snapshot by reading the
/// events since, and its snapshot appends a
/// [`crate::Event::SnapshotTaken`]. The transaction's length grows with
/// the projection tables' size (every row is copied); the policy's interval
/// amortises it. Requires [`prepare`].
pub fn take_snapshot(conn: &Connection) -> Result<Option<Taken>, CompactionError> {
    if !shadow::has_catalog(conn)? {
        return Err(CompactionError::NotPrepared);
    }
    let seq = last_seq(conn)?;
    if seq == 0 {
        return Ok(None);
    }
    let schema = fingerprint(conn)?;
    shadow::forget_other_schemas(conn, schema)?;
    let summary = summary_at(conn, seq)?;
    let rows = shadow::copy(conn, seq)?;
    shadow::record(conn, seq, schema)?;
    if first_seq(conn)?.is_some_and(|first| first <= 1) {
        // Every event is still there: any state can be rebuilt from the
        // first one, and older copies would only take space.
        shadow::delete_before(conn, seq)?;
    }
    snapshot::save_in(conn, &snapshot::encode(&summary, seq)?)?;
    Ok(Some(Taken { seq, rows }))
}

/// The [`Summary`] through `seq`: its latest snapshot plus the events
/// after it, read through `conn` (inside the caller's transaction, so its
/// own uncommitted appends are included).
fn summary_at(conn: &Connection, seq: Seq) -> Result<Summary, CompactionError> {
    let (covers, mut state) = snapshot::load_latest::<Summary>(conn, seq)?.unwrap_or_default();
    if let Some(first) = first_seq(conn)?
        && covers + 1 < first
    {
        return Err(CompactionError::SummaryGap { covers, first });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, kind, version, at_ms, checksum, payload FROM journal
         WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query([covers, seq])?;
    while let Some(row) = rows.next()? {
        let entry = read::entry(row.get(0)?, row)?;
        state.apply(entry.seq, &entry.event);
    }
    Ok(state)
}

/// The outcome of a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Journal rows deleted.
    pub deleted: u64,
    /// The first event left (`None`: the journal is empty).
    pub first: Option<Seq>,
}

/// Deletes the journal rows before `min(retain_after, latest usable
/// snapshot)` — never the newest row — in short `BEGIN IMMEDIATE`
/// transactions of its own on `conn` (a read-write connection outside any
/// transaction), then the snapshots the remaining events no longer follow.
/// Without a snapshot nothing is deleted.
pub fn compact(conn: &Connection, retain_after: Seq) -> Result<Compacted, CompactionError> {
    let deleted = in_chunks(|| {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let progress = compact_chunk(&tx, retain_after)?;
        tx.commit()?;
        Ok(progress)
    })?;
    Ok(Compacted {
        deleted,
        first: first_seq(conn)?,
    })
}

/// What one compaction transaction did.
struct Progress {
    deleted: u64,
    done: bool,
}

/// Runs compaction transactions (`chunk`) until one says it is done;
/// returns the rows deleted.
fn in_chunks(
    mut chunk: impl FnMut() -> Result<Progress, CompactionError>,
) -> Result<u64, CompactionError> {
    let mut deleted = 0;
    loop {
        let progress = chunk()?;
        deleted += progress.deleted;
        if progress.done {
            return Ok(deleted);
        }
    }
}

/// One compaction transaction, inside the caller's: deletes at most
/// [`CHUNK_ROWS`] rows below the horizon, recomputed from what the
/// transaction sees (another process may have appended or snapshotted in
/// between), and once the horizon is reached deletes the snapshots that
/// can no longer be replayed from.
fn compact_chunk(conn: &Connection, retain_after: Seq) -> Result<Progress, CompactionError> {
    let done = |deleted| Progress {
        deleted,
        done: true,
    };
    let Some(first) = first_seq(conn)? else {
        return Ok(done(0));
    };
    let schema = fingerprint(conn)?;
    let Some(&latest) = shadow::usable(conn, schema, Some(first))?.last() else {
        return Ok(done(0));
    };
    // Rows below the horizon go. The newest row always stays, so SQLite
    // never reuses its sequence number.
    let horizon = retain_after.min(latest).min(last_seq(conn)?);
    let below = horizon.min(first.saturating_add(CHUNK_ROWS));
    let deleted = if first < below {
        conn.prepare_cached("DELETE FROM journal WHERE seq < ?1")?
            .execute([below])? as u64
    } else {
        0
    };
    if below < horizon {
        return Ok(Progress {
            deleted,
            done: false,
        });
    }
    if let Some(first) = first_seq(conn)? {
        forget_unreachable(conn, first)?;
    }
    Ok(done(deleted))
}

/// Deletes the snapshots (projection copies and every projection's
/// serialized snapshot) older than `first - 1`: the events between them and
/// `first` are gone, so no replay can start from them.
fn forget_unreachable(conn: &Connection, first: Seq) -> rusqlite::Result<()> {
    shadow::delete_before(conn, first - 1)?;
    conn.prepare_cached("DELETE FROM journal_snapshots WHERE seq < ?1")?
        .execute([first - 1])
        .map(drop)
}

/// What [`maintain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Maintenance {
    /// The snapshot taken, if one was due.
    pub snapshot: Option<Taken>,
    /// Journal rows compacted away.
    pub deleted: u64,
}

/// Applies `policy` to `journal`: takes a snapshot if `every_events`
/// events were appended since the latest one, then, with a retention,
/// compacts down to the last `retain_events` events. Creates the snapshot
/// tables on first use.
///
/// Meant to be called periodically (every few seconds) from a plain thread
/// of a long-running process: it blocks while its transactions, each a
/// job of the journal's writer, commit.
pub fn maintain(
    journal: &Journal,
    policy: &SnapshotPolicy,
) -> Result<Maintenance, CompactionError> {
    let reader = open_ro(journal.path())?;
    let supported = MIGRATIONS.last().map_or(0, |m| m.version);
    if schema::current_version(&reader, COMPONENT)? < supported {
        prepare(&mut open_rw(journal.path(), Durability::Normal)?)?;
    }
    let writer = journal.writer();
    let last = last_seq(&reader)?;
    let since = u64::try_from(last - shadow::latest(&reader)?.unwrap_or(0)).unwrap_or(0);
    let snapshot = if last > 0 && since >= policy.every_events {
        writer.submit(take_snapshot).wait()?
    } else {
        None
    };
    let deleted = match policy.retain_events {
        Some(keep) => {
            // Keep the rows after `last - keep`: `keep` events.
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let retain_after = last_seq(&reader)?.saturating_sub(keep).saturating_add(1);
            in_chunks(|| {
                Ok(writer
                    .submit(move |conn| compact_chunk(conn, retain_after))
                    .wait()?)
            })?
        }
        None => 0,
    };
    Ok(Maintenance { snapshot, deleted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_a_number_of_events_or_nothing() {
        let retention = |value| SnapshotPolicy::with_retention(value).map(|p| p.retain_events);
        assert_eq!(retention("").unwrap(), None);
        assert_eq!(retention(" 250000\n").unwrap(), Some(250_000));
        for bad in ["1e6", "-1", "all"] {
            let error = retention(bad).unwrap_err().to_string();
            assert_eq!(
                error,
                format!("KEYFERRY_JOURNAL_RETENTION=\"{bad}\" is not a number of events to keep")
            );
        }
        assert_eq!(SnapshotPolicy::default().every_events, 100_000);
    }
}

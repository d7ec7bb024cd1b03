//! Rebuilding every projection from the journal, as a restart would, into
//! a database of its own — and comparing the result with what is stored
//! (`keyferry replay`).
//!
//! A [`JournalView`] opens a journal file read-only (never creating it)
//! inside one read transaction, so its bounds, its snapshots and the
//! stored projections it is compared with are one consistent state even
//! while other processes keep appending. [`JournalView::rebuild`] then
//! replays the events up to an optional `until` — the state a crash right
//! after that event would have left — into a private temporary database
//! with this build's schema: the SQL projection tables (every table of
//! [`PROJECTION_TABLES`], through the very function appends use) and the
//! [`Summary`] projection, in one pass. Events are streamed in pages, so
//! memory holds one page whatever the journal's length; the temporary
//! database spills to a file when it outgrows its cache.
//!
//! The rebuild starts from the first event while the journal still holds
//! it, which checks the whole history; or from the latest projection
//! snapshot at or before `until` (see [`crate::compaction`]), which it must
//! once the events before that were compacted away. A `until` before the
//! earliest snapshot left fails, naming the earliest sequence number that
//! can be replayed.
//!
//! [`compare`] merges the stored and rebuilt tables in primary-key order
//! and names each [`Difference`] by table, primary key and column.

mod cell;
mod compare;
pub(crate) mod tables;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::compaction;
use crate::connection::open_ro;
use crate::error::{ReadError, SnapshotError};
use crate::event::Seq;
use crate::migrations::{COMPONENT, MIGRATIONS};
use crate::projection::{Projection, Replayed};
use crate::read::{Entries, last_seq};
use crate::schema::{self, SchemaError};
use crate::snapshot;
use crate::summary::Summary;

pub use cell::Cell;
pub use compare::{Comparison, Difference, DifferenceKind, compare};
pub use tables::PROJECTION_TABLES;

/// Why a journal could not be opened for, or replayed into, a rebuild.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// The path names no file (a rebuild never creates one).
    #[error("no such file {}", .0.display())]
    NoSuchFile(PathBuf),
    /// The file has no keyferry journal.
    #[error("{} holds no keyferry journal", .0.display())]
    NotAJournal(PathBuf),
    /// SQLite failed.
    #[error("rebuild sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file's journal is newer than this build, or the rebuilt
    /// database's schema could not be created.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A journal row could not be read; the error names its sequence
    /// number.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A summary snapshot could not be loaded.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Projecting an event failed.
    #[error("projecting journal row {seq} failed: {source}")]
    Project {
        /// The event's sequence number.
        seq: Seq,
        /// Underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The events needed to reach `until` were compacted away.
    #[error(
        "cannot replay until seq {until}: the events before seq {first} were compacted away; {}",
        match .earliest {
            Some(seq) => format!("the earliest available sequence is {seq}"),
            None => "no snapshot is left to start from".to_string(),
        }
    )]
    BeforeEarliest {
        /// The sequence number asked for.
        until: Seq,
        /// The first event left in the journal.
        first: Seq,
        /// The lowest `until` that can be replayed, if any.
        earliest: Option<Seq>,
    },
    /// A projection snapshot has no summary snapshot beside it.
    #[error("the projection snapshot covering seq {seq} has no summary snapshot")]
    IncompleteSnapshot {
        /// The snapshot's sequence number.
        seq: Seq,
    },
    /// Events the rebuild read vanished meanwhile: another process
    /// compacted the journal. Running it again will do.
    #[error(
        "the journal changed during the rebuild ({applied} events read, {expected} expected): it was compacted meanwhile; run again"
    )]
    Changed {
        /// Events the view holds in the replayed range.
        expected: u64,
        /// Events read.
        applied: u64,
    },
    /// A table of [`PROJECTION_TABLES`] is missing from this build's schema
    /// (a bug).
    #[error("projection table {0} is not created by the journal's migrations")]
    UnknownTable(&'static str),
}

/// The extent of a journal, as a [`JournalView`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// The first event left (`None`: the journal is empty).
    pub first: Option<Seq>,
    /// The last event (0: the journal is empty).
    pub last: Seq,
    /// The projection snapshots a rebuild can start from, oldest first.
    pub snapshots: Vec<Seq>,
}

impl Bounds {
    /// The first event left when the events before it were compacted
    /// away; `None` while the journal holds every event since the first.
    pub fn compacted_before(&self) -> Option<Seq> {
        self.first.filter(|&first| first > 1)
    }

    /// The lowest `until` a rebuild can reach: 0 while the journal holds
    /// every event, else the oldest snapshot left (`None` if there is
    /// none).
    pub fn earliest(&self) -> Option<Seq> {
        match self.compacted_before() {
            None => Some(0),
            Some(_) => self.snapshots.first().copied(),
        }
    }
}

/// Where a rebuild starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// From the first event, checking the whole history; from the latest
    /// snapshot at or before `until` once the first events were compacted
    /// away.
    #[default]
    FirstEvent,
    /// From the latest snapshot at or before `until`, if any (from the
    /// first event otherwise).
    LatestSnapshot,
}

/// What to rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildOptions {
    /// The last event to include, as if the process crashed right after it
    /// (`None`: the journal's last event). Values past the last event mean
    /// the last event.
    pub until: Option<Seq>,
    /// Where to start.
    pub start: Start,
}

/// Projections rebuilt from the journal.
#[derive(Debug)]
pub struct Rebuilt {
    /// A private temporary database (deleted when dropped) holding the
    /// journal schema's tables, with the projection tables as rebuilt.
    pub conn: Connection,
    /// The summary projection, and what the rebuild did: the last event
    /// included (`seq`), the snapshot it started from (`snapshot_seq`) and
    /// the events applied on top (`applied`).
    pub summary: Replayed<Summary>,
}

/// A journal file opened read-only inside one read transaction: every
/// read through it sees the same state, whatever other processes append
/// meanwhile.
#[derive(Debug)]
pub struct JournalView {
    path: PathBuf,
    conn: Connection,
    bounds: Bounds,
}

impl JournalView {
    /// Opens the journal in `path`, which must exist, read-only.
    ///
    /// The read transaction holds a WAL snapshot until the view is
    /// dropped: drop it once done.
    pub fn open(path: &Path) -> Result<JournalView, RebuildError> {
        if !path.is_file() {
            return Err(RebuildError::NoSuchFile(path.to_path_buf()));
        }
        let conn = open_ro(path)?;
        // Everything read through the view (its bounds, snapshots and the
        // stored projections) then comes from one WAL snapshot, taken at
        // the first read below.
        conn.execute_batch("BEGIN")?;
        let version = schema::current_version(&conn, COMPONENT)?;
        let supported = MIGRATIONS.last().map_or(0, |m| m.version);
        if version == 0 {
            return Err(RebuildError::NotAJournal(path.to_path_buf()));
        }
        if version > supported {
            return Err(SchemaError::TooNew {
                component: COMPONENT,
                found: version,
                supported,
            }
            .into());
        }
        let first = first_seq(&conn)?;
        let schema = tables::fingerprint(&empty_projections()?)?;
        let bounds = Bounds {
            first,
            last: last_seq(&conn)?,
            snapshots: compaction::usable(&conn, schema, first)?,
        };
        Ok(JournalView {
            path: path.to_path_buf(),
            conn,
            bounds,
        })
    }

    /// The journal's extent and snapshots.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// The view's connection, for reading the stored projections (e.g. to
    /// [`compare`] them with rebuilt ones).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Rebuilds every projection from the journal as `options` ask.
    pub fn rebuild(&self, options: RebuildOptions) -> Result<Rebuilt, RebuildError> {
        let until = options
            .until
            .map_or(self.bounds.last, |until| until.min(self.bounds.last));
        let start = self.start(until, options.start)?;
        let mut conn = empty_projections()?;
        let tx = conn.transaction()?;
        let mut summary = match start {
            None => Replayed::starting_at(Summary::default(), 0, None),
            Some(seq) => {
                compaction::restore(&self.conn, &tx, seq)?;
                let state = match snapshot::load_latest::<Summary>(&self.conn, seq)? {
                    Some((covers, state)) if covers == seq => state,
                    _ => return Err(RebuildError::IncompleteSnapshot { seq }),
                };
                Replayed::starting_at(state, seq, Some(seq))
            }
        };
        let from = summary.seq;
        for entry in Entries::new(open_ro(&self.path)?, from + 1, until) {
            let entry = entry?;
            tables::project(&tx, &entry).map_err(|source| RebuildError::Project {
                seq: entry.seq,
                source,
            })?;
            summary.state.apply(entry.seq, &entry.event);
            summary.seq = entry.seq;
            summary.applied += 1;
        }
        // The events were read outside the view's transaction: check that
        // none of those it holds went missing meanwhile.
        let expected: i64 = self.conn.query_row(
            "SELECT count(*) FROM journal WHERE seq > ?1 AND seq <= ?2",
            [from, until],
            |r| r.get(0),
        )?;
        let expected = expected.unsigned_abs();
        if expected != summary.applied {
            return Err(RebuildError::Changed {
                expected,
                applied: summary.applied,
            });
        }
        tx.commit()?;
        Ok(Rebuilt { conn, summary })
    }

    /// The snapshot a rebuild up to `until` starts from (`None`: the first
    /// event).
    fn start(&self, until: Seq, start: Start) -> Result<Option<Seq>, RebuildError> {
        let bounds = &self.bounds;
        let snapshot = bounds
            .snapshots
            .iter()
            .rev()
            .find(|&&s| s <= until)
            .copied();
        let Some(first) = bounds.compacted_before() else {
            return Ok(match start {
                Start::FirstEvent => None,
                Start::LatestSnapshot => snapshot,
            });
        };
        snapshot.map(Some).ok_or(RebuildError::BeforeEarliest {
            until,
            first,
            earliest: bounds.earliest(),
        })
    }
}

/// A fresh database with this build's journal schema and nothing in it.
///
/// An empty file name makes SQLite open a private temporary database,
/// deleted when closed, that lives in memory until it outgrows its cache
/// and then spills to a temporary file: a projection larger than memory
/// can still be rebuilt.
fn empty_projections() -> Result<Connection, RebuildError> {
    let mut conn = Connection::open("")?;
    conn.set_prepared_statement_cache_capacity(128);
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    schema::migrate(&mut conn, COMPONENT, MIGRATIONS)?;
    Ok(conn)
}

/// The first event left in the journal, `None` when it is empty.
pub(crate) fn first_seq(conn: &Connection) -> rusqlite::Result<Option<Seq>> {
    conn.prepare_cached("SELECT min(seq) FROM journal")?
        .query_row([], |r| r.get(0))
}

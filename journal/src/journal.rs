//! [`Journal`], the handle actors use to append to and read the journal.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::append::{self, Encoded};
use crate::connection::{Durability, open_ro, open_rw};
use crate::error::{JournalError, ReadError, ReplayError, SnapshotError};
use crate::event::{Event, Seq};
use crate::migrations::{COMPONENT, MIGRATIONS};
use crate::projection::{Projection, Replayed};
use crate::read::{Entries, Entry, last_seq};
use crate::schema::migrate;
use crate::snapshot;
use crate::writer::{Pending, Writer, WriterConfig, WriterHandle};

/// A journal in one SQLite file: appends go through a group-committing
/// writer, reads through read-only connections of their own.
///
/// Cheap to clone; clones share the writer.
#[derive(Clone)]
pub struct Journal {
    path: PathBuf,
    writer: WriterHandle,
}

impl Journal {
    /// Opens (creating if needed) the journal in `path` on its own: opens a
    /// read-write connection, brings the journal's tables up to date and
    /// spawns a writer on that connection.
    ///
    /// The returned [`Writer`] owns the writer thread: keep it alive while
    /// the journal is in use, and call [`Writer::shutdown`] to stop it after
    /// everything queued committed.
    pub fn open(
        path: &Path,
        durability: Durability,
        config: WriterConfig,
    ) -> Result<(Writer, Journal), JournalError> {
        let mut conn = open_rw(path, durability)?;
        migrate(&mut conn, COMPONENT, MIGRATIONS)?;
        let writer = Writer::spawn(conn, config).map_err(JournalError::Spawn)?;
        let journal = Journal::attach(path, writer.handle());
        Ok((writer, journal))
    }

    /// A journal sharing a writer someone else spawned on `path`, after
    /// running [`MIGRATIONS`] on its connection (the keyspace does this, so
    /// data writes and journal events share transactions).
    pub fn attach(path: &Path, writer: WriterHandle) -> Journal {
        Journal {
            path: path.to_path_buf(),
            writer,
        }
    }

    /// Appends `events` in the writer's next transaction. The returned
    /// [`Pending`] resolves to their sequence numbers once it committed.
    ///
    /// The events are encoded on the calling thread, so the writer only
    /// inserts ready-made rows (and projects them into the
    /// [`crate::registry`], in the same transaction).
    pub fn append(&self, events: Vec<Event>) -> Pending<Vec<Seq>, JournalError> {
        match Encoded::new(events) {
            Ok(batch) => self.writer.submit(move |conn| append::insert(conn, &batch)),
            Err(e) => Pending::failed(e),
        }
    }

    /// The writer this journal appends through, for work that must commit
    /// together with journal events (see [`crate::append_in`]).
    pub fn writer(&self) -> WriterHandle {
        self.writer.clone()
    }

    /// Streams the events from sequence number `from` (included) to the end,
    /// a page at a time, through a new read-only connection.
    pub fn read_from(&self, from: Seq) -> Result<Entries, ReadError> {
        self.read_range(from, Seq::MAX)
    }

    /// Streams the events with sequence numbers `from..=until`.
    pub fn read_range(&self, from: Seq, until: Seq) -> Result<Entries, ReadError> {
        Ok(Entries::new(self.reader()?, from, until))
    }

    /// The highest committed sequence number, 0 when the journal is empty.
    pub fn last_seq(&self) -> Result<Seq, ReadError> {
        Ok(last_seq(&self.reader()?)?)
    }

    /// Stores a snapshot of `state`, which must include exactly the events
    /// up to `covers` (as returned in [`Replayed::seq`]), and journals a
    /// [`Event::SnapshotTaken`]. Resolves to that event's sequence number.
    pub fn save_snapshot<P: Projection>(
        &self,
        state: &P,
        covers: Seq,
    ) -> Pending<Seq, SnapshotError> {
        match snapshot::encode(state, covers) {
            Ok(encoded) => self
                .writer
                .submit(move |conn| snapshot::save_in(conn, &encoded)),
            Err(e) => Pending::failed(e),
        }
    }

    /// Rebuilds `P` from its newest snapshot covering no event after `until`
    /// (or from the beginning when there is none) plus the events after the
    /// snapshot up to `until` (`None`: to the end).
    pub fn replay<P: Projection>(&self, until: Option<Seq>) -> Result<Replayed<P>, ReplayError> {
        let until = until.unwrap_or(Seq::MAX);
        let conn = self.reader().map_err(ReadError::from)?;
        let start = match snapshot::load_latest::<P>(&conn, until)? {
            Some((seq, state)) => Replayed::starting_at(state, seq, Some(seq)),
            None => Replayed::starting_at(P::default(), 0, None),
        };
        Ok(replay_tail(conn, start, until)?)
    }

    /// Rebuilds `P` from the first event up to `until`, ignoring snapshots
    /// (for `replay --check`, which compares the two).
    pub fn replay_from_start<P: Projection>(
        &self,
        until: Option<Seq>,
    ) -> Result<Replayed<P>, ReadError> {
        let start = Replayed::starting_at(P::default(), 0, None);
        replay_tail(self.reader()?, start, until.unwrap_or(Seq::MAX))
    }

    /// The events of `kind` appended at or after `since_ms`, newest first.
    /// Reads the journal backwards from its end and stops at the first
    /// older row, so the cost follows the recent events, not the history
    /// (the supervisor rebuilds its restart-intensity window with it).
    pub fn recent_of_kind(&self, kind: &str, since_ms: i64) -> Result<Vec<Entry>, ReadError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT seq, kind, version, at_ms, checksum, payload FROM journal ORDER BY seq DESC",
        )?;
        let mut rows = stmt.query([])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let at_ms: i64 = row.get(3)?;
            if at_ms < since_ms {
                break;
            }
            if row.get_ref(1)?.as_str().is_ok_and(|k| k == kind) {
                found.push(crate::read::entry(row.get(0)?, row)?);
            }
        }
        Ok(found)
    }

    fn reader(&self) -> rusqlite::Result<Connection> {
        open_ro(&self.path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Applies the events after `start.seq` up to `until` to `start`.
fn replay_tail<P: Projection>(
    conn: Connection,
    mut start: Replayed<P>,
    until: Seq,
) -> Result<Replayed<P>, ReadError> {
    let mut entries = Entries::new(conn, start.seq + 1, until);
    start.apply_all(&mut entries)?;
    Ok(start)
}

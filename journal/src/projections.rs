//! The journal's SQL projections behind one entry point.
//!
//! Two sets of tables are kept from the journal: the migration registry
//! ([`crate::registry`]) and the job queue ([`crate::jobs`]). Every append
//! path calls [`apply`] for each event right after inserting its row, in the
//! same transaction, so a committed event is always projected and a
//! rolled-back one never is. Neither set holds anything the journal does
//! not: calling [`apply`] over every entry, in order, into an empty file
//! rebuilds both exactly (`keyferry replay --check`).

use rusqlite::Connection;

use crate::event::{Event, Seq};
use crate::{jobs, read, registry};

/// Projects the event `event`, stored as journal row `seq` at `at_ms`, into
/// every projection table, inside the caller's transaction.
///
/// Events must be applied in sequence order.
pub fn apply(conn: &Connection, seq: Seq, at_ms: i64, event: &Event) -> rusqlite::Result<()> {
    let mut projector = Projector::default();
    projector.apply(conn, seq, at_ms, event)?;
    projector.finish(conn)
}

/// Projects a batch of events appended together: like [`apply`] for each,
/// except that a run's counters are written once for a stretch of its
/// events rather than once per event (see [`registry::apply_deferred`]).
/// [`Projector::finish`] must be called before the transaction ends.
#[derive(Default)]
pub(crate) struct Projector {
    runs: registry::RunDeltas,
}

impl Projector {
    /// Projects event `event`, stored as journal row `seq` at `at_ms`.
    pub(crate) fn apply(
        &mut self,
        conn: &Connection,
        seq: Seq,
        at_ms: i64,
        event: &Event,
    ) -> rusqlite::Result<()> {
        registry::apply_deferred(conn, seq, at_ms, event, &mut self.runs)?;
        jobs::apply(conn, seq, at_ms, event)
    }

    /// Writes what the batch's events left pending.
    pub(crate) fn finish(mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.runs.flush(conn)
    }
}

/// Projects every event already in the journal whose kind matches the SQL
/// `LIKE` pattern `kinds`, oldest first, with `project` (one projection's
/// `apply`; the pattern spares decoding events it ignores). Run by the
/// schema migration that
/// creates that projection's tables, inside its transaction, so a journal
/// written before they existed gets the rows it would have had all along.
///
/// A row that fails its checksum or does not decode is left out with a
/// warning rather than making the file impossible to open; reading or
/// replaying the journal reports it by sequence number.
pub(crate) fn project_existing(
    conn: &Connection,
    projection: &str,
    kinds: &str,
    project: fn(&Connection, Seq, i64, &Event) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT seq, kind, version, at_ms, checksum, payload FROM journal
         WHERE kind LIKE ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([kinds])?;
    while let Some(row) = rows.next()? {
        let seq: Seq = row.get(0)?;
        match read::entry(seq, row) {
            Ok(entry) => project(conn, entry.seq, entry.at_ms, &entry.event)?,
            Err(error) => {
                tracing::warn!(seq, %error, projection, "journal row left out of a projection");
            }
        }
    }
    Ok(())
}

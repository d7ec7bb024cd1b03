//! The migration registry: SQL projections of the journal that answer
//! "where is run X, which keys are still dirty, what went wrong" without
//! replaying anything.
//!
//! Three tables (created by journal schema v2, see [`crate::MIGRATIONS`]):
//! `migration_runs` (one row per run: status, scan position, counters,
//! sweep and tracker state, throttles), `migration_dirty_keys` (one row per
//! run, database and key the tracker or applier touched) and
//! `migration_errors` (one row per [`Event::ErrorRecorded`]).
//!
//! They are written by [`apply`] inside the transaction that inserts the
//! event's journal row, so they can never disagree with the journal: both
//! commit or neither does. They hold nothing the journal does not, so
//! calling [`apply`] over every journal entry, in order, into an empty
//! file rebuilds them exactly (`keyferry replay --check`).
//!
//! A key's registry state is pending — `dirty` (the tracker saw a write)
//! or `deleted` (it saw the key disappear) — until the dirty applier
//! settles it as `applied`, `removed` or `skipped` *through* a sequence
//! number. A settlement through an older sequence number than the key's
//! latest tracker event is ignored: the key was written again while it was
//! being applied, and must be applied again.
//!
//! Runs are created on first mention, whatever the event: the tracker and
//! the bulk scanner are separate processes that may start in either order,
//! so the tracker's first `KeyDirtied` can precede the run's `RunStarted`.
//!
//! The queries ([`run`], [`pending`], [`is_tracked`], …) read the tables
//! through any connection: a read-only one, or the writer's inside a job.

mod query;
#[cfg(test)]
mod tests;

use rusqlite::{Connection, params};

use crate::event::{Event, Seq, Severity};

pub(crate) use query::named;
pub use query::{
    ErrorRow, PendingKey, PendingState, RunRow, Throttles, UnknownName, is_pending, is_tracked,
    pending, pending_after, pending_count, recent_errors, run, runs, state_counts,
};

/// Projects the event `event`, stored as journal row `seq` at `at_ms`, into
/// the registry tables, inside the caller's transaction.
///
/// Events must be applied in sequence order. Events of no run (jobs,
/// restarts, snapshots) change nothing.
pub fn apply(conn: &Connection, seq: Seq, at_ms: i64, event: &Event) -> rusqlite::Result<()> {
    let mut runs = RunDeltas::default();
    apply_deferred(conn, seq, at_ms, event, &mut runs)?;
    runs.flush(conn)
}

/// [`apply`], except that the run's counters are only added to `runs`
/// when `event` changes nothing else of the run row: a batch of events of
/// one run (the applier settles thousands of keys per transaction) then
/// updates the run's row once, in [`RunDeltas::flush`], rather than once
/// per event. The caller must flush before its transaction ends.
pub(crate) fn apply_deferred(
    conn: &Connection,
    seq: Seq,
    at_ms: i64,
    event: &Event,
    runs: &mut RunDeltas,
) -> rusqlite::Result<()> {
    let Some(run_id) = event.run_id() else {
        // Only an ErrorRecorded without a run gets here with work to do.
        if let Event::ErrorRecorded { .. } = event {
            insert_error(conn, seq, at_ms, event)?;
        }
        return Ok(());
    };
    let mut delta = Delta::default();
    // Whether the event changes only the run's counters, which may wait
    // in `runs`.
    let mut only_counts = true;
    match event {
        Event::KeyDirtied { db, key, event, .. } => {
            let seen = mark_seen(conn, run_id, *db, key, seq, at_ms, event, "dirty")?;
            delta.dirty_events = 1;
            delta.dirty_keys_seen = i64::from(seen);
        }
        Event::KeyDeleted { db, key, event, .. } => {
            let seen = mark_seen(conn, run_id, *db, key, seq, at_ms, event, "deleted")?;
            delta.dirty_events = 1;
            delta.dirty_keys_seen = i64::from(seen);
        }
        Event::KeyMarkedApplied {
            db,
            key,
            through_seq,
            ..
        } => {
            settle(conn, run_id, *db, key, *through_seq, at_ms, "applied")?;
            delta.dirty_keys_applied = 1;
        }
        Event::KeyMarkedDeleted {
            db,
            key,
            through_seq,
            ..
        } => {
            settle(conn, run_id, *db, key, *through_seq, at_ms, "removed")?;
            delta.dirty_keys_deleted = 1;
        }
        Event::KeyMarkedSkipped {
            db,
            key,
            through_seq,
            ..
        } => {
            settle(conn, run_id, *db, key, *through_seq, at_ms, "skipped")?;
            delta.dirty_keys_skipped = 1;
        }
        Event::BatchCommitted { .. } => delta.batches = 1,
        Event::ErrorRecorded { .. } => {
            insert_error(conn, seq, at_ms, event)?;
            only_counts = false;
        }
        // The rest set run columns (update_run).
        _ => only_counts = false,
    }
    runs.add(conn, run_id, seq, at_ms, &delta)?;
    if only_counts {
        return Ok(());
    }
    // update_run needs the run's row, which the flush creates.
    runs.flush(conn)?;
    update_run(conn, run_id, seq, at_ms, event)
}

/// Run counter increments not written yet: consecutive events of one run
/// add up here, and [`RunDeltas::flush`] writes them with one `UPDATE`.
#[derive(Default)]
pub(crate) struct RunDeltas {
    /// The run, its latest event's sequence number and time, and the sum
    /// of its events' increments since the last flush.
    pending: Option<(String, Seq, i64, Delta)>,
}

impl RunDeltas {
    /// Adds the increments of run `run_id`'s event `seq`, flushing first
    /// if another run's are pending.
    fn add(
        &mut self,
        conn: &Connection,
        run_id: &str,
        seq: Seq,
        at_ms: i64,
        delta: &Delta,
    ) -> rusqlite::Result<()> {
        if self.pending.as_ref().is_some_and(|(run, ..)| run != run_id) {
            self.flush(conn)?;
        }
        match &mut self.pending {
            Some((_, last_seq, last_at, sum)) => {
                (*last_seq, *last_at) = (seq, at_ms);
                sum.add(delta);
            }
            None => self.pending = Some((run_id.to_string(), seq, at_ms, delta.clone())),
        }
        Ok(())
    }

    /// Writes the pending increments (creating the run's row if needed).
    pub(crate) fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        match self.pending.take() {
            Some((run_id, seq, at_ms, delta)) => touch_run(conn, &run_id, seq, at_ms, &delta),
            None => Ok(()),
        }
    }
}

/// Increments to a run's counters, added by [`touch_run`].
#[derive(Default, Clone)]
struct Delta {
    batches: i64,
    dirty_keys_seen: i64,
    dirty_events: i64,
    dirty_keys_applied: i64,
    dirty_keys_deleted: i64,
    dirty_keys_skipped: i64,
}

impl Delta {
    fn add(&mut self, other: &Delta) {
        self.batches += other.batches;
        self.dirty_keys_seen += other.dirty_keys_seen;
        self.dirty_events += other.dirty_events;
        self.dirty_keys_applied += other.dirty_keys_applied;
        self.dirty_keys_deleted += other.dirty_keys_deleted;
        self.dirty_keys_skipped += other.dirty_keys_skipped;
    }
}

/// Creates the run if it has no row yet, records that `seq` is its latest
/// event, and adds `delta` to its counters.
///
/// An `UPDATE`, then an `INSERT` only if the run has no row: the tracker's
/// events (thousands a second) nearly always find the run, and a plain
/// update of its row costs a third of an upsert's attempted insert. The
/// caller's write transaction keeps another process from inserting the row
/// in between.
fn touch_run(
    conn: &Connection,
    run_id: &str,
    seq: Seq,
    at_ms: i64,
    delta: &Delta,
) -> rusqlite::Result<()> {
    let params = params![
        run_id,
        at_ms,
        seq,
        delta.batches,
        delta.dirty_keys_seen,
        delta.dirty_events,
        delta.dirty_keys_applied,
        delta.dirty_keys_deleted,
        delta.dirty_keys_skipped,
    ];
    let updated = conn
        .prepare_cached(
            "UPDATE migration_runs SET
                 updated_at_ms = ?2,
                 last_seq = ?3,
                 batches = batches + ?4,
                 dirty_keys_seen = dirty_keys_seen + ?5,
                 dirty_events = dirty_events + ?6,
                 dirty_keys_applied = dirty_keys_applied + ?7,
                 dirty_keys_deleted = dirty_keys_deleted + ?8,
                 dirty_keys_skipped = dirty_keys_skipped + ?9
             WHERE run_id = ?1",
        )?
        .execute(params)?;
    if updated == 0 {
        conn.prepare_cached(
            "INSERT INTO migration_runs (run_id, started_at_ms, updated_at_ms, last_seq,
                 batches, dirty_keys_seen, dirty_events,
                 dirty_keys_applied, dirty_keys_deleted, dirty_keys_skipped)
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params)?;
    }
    Ok(())
}

/// Sets the run columns an event determines beyond [`touch_run`]'s. The
/// run's row exists (touched just before).
fn update_run(
    conn: &Connection,
    run_id: &str,
    seq: Seq,
    at_ms: i64,
    event: &Event,
) -> rusqlite::Result<()> {
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
        conn.prepare_cached(sql)?.execute(params).map(drop)
    };
    match event {
        Event::RunStarted {
            source,
            destination,
            ..
        } => run(
            // A RunStarted for an existing run resumes it: counters and
            // the scan position stay, the previous status's reason goes.
            "UPDATE migration_runs SET source_uri = ?2, destination = ?3,
                 status = 'running', status_reason = NULL
             WHERE run_id = ?1",
            params![run_id, source, destination],
        ),
        Event::RunStatusChanged { status, reason, .. } => run(
            "UPDATE migration_runs SET status = ?2, status_reason = ?3 WHERE run_id = ?1",
            params![run_id, status.as_str(), reason],
        ),
        Event::Checkpoint {
            source_run_id,
            cursor,
            counters,
            db,
            done,
            ..
        } => run(
            // Counters are cumulative in the event: set, never add.
            "UPDATE migration_runs SET
                 scan_db = ?2, scan_cursor = ?3, scan_done = ?4,
                 source_run_id = ?5, scan_source_run_id = ?5,
                 scanned_keys = ?6, migrated_keys = ?7, skipped_keys = ?8,
                 error_keys = ?9, migrated_bytes = ?10,
                 last_checkpoint_seq = ?11, last_checkpoint_at_ms = ?12
             WHERE run_id = ?1",
            params![
                run_id,
                db,
                // SQLite integers are i64; the cursor round-trips bit for
                // bit (see the migration's comment).
                *cursor as i64,
                done,
                source_run_id,
                count(counters.scanned_keys),
                count(counters.migrated_keys),
                count(counters.skipped_keys),
                count(counters.error_keys),
                count(counters.migrated_bytes),
                seq,
                at_ms,
            ],
        ),
        Event::ErrorRecorded {
            severity: Severity::Error,
            message,
            ..
        } => run(
            "UPDATE migration_runs SET last_error = ?2 WHERE run_id = ?1",
            params![run_id, message],
        ),
        Event::SweepRequired { reason, .. } => run(
            "UPDATE migration_runs SET needs_sweep = 1, last_sweep_required_seq = ?2,
                 sweep_reason = ?3
             WHERE run_id = ?1",
            params![run_id, seq, reason],
        ),
        Event::SweepCompleted { started_seq, .. } => run(
            // A need recorded after the sweep began may concern writes the
            // sweep had already passed: it still stands.
            "UPDATE migration_runs SET needs_sweep = 0, sweep_reason = NULL
             WHERE run_id = ?1 AND coalesce(last_sweep_required_seq, 0) <= ?2",
            params![run_id, started_seq],
        ),
        Event::ThrottlesChanged {
            max_rps,
            max_concurrency,
            batch_keys,
            batch_bytes,
            scan_count,
            ..
        } => run(
            "UPDATE migration_runs SET
                 max_rps = coalesce(?2, max_rps),
                 max_concurrency = coalesce(?3, max_concurrency),
                 batch_keys = coalesce(?4, batch_keys),
                 batch_bytes = coalesce(?5, batch_bytes),
                 scan_count = coalesce(?6, scan_count)
             WHERE run_id = ?1",
            params![
                run_id,
                max_rps,
                max_concurrency,
                batch_keys,
                batch_bytes.map(count),
                scan_count
            ],
        ),
        Event::TrackerStopRequested { .. } => run(
            "UPDATE migration_runs SET tracker_stop_seq = ?2 WHERE run_id = ?1",
            params![run_id, seq],
        ),
        Event::TrackerState {
            connected,
            source_run_id,
            ..
        } => run(
            "UPDATE migration_runs SET tracker_connected = ?2,
                 source_run_id = CASE WHEN ?3 = '' THEN source_run_id ELSE ?3 END
             WHERE run_id = ?1",
            params![run_id, connected, source_run_id],
        ),
        Event::NotificationsChanged { previous, .. } => run(
            // The first setting changed and not yet restored is the one to
            // restore: a second change (after a crash, say) would otherwise
            // record the tool's own setting as "previous".
            "UPDATE migration_runs SET notify_previous = coalesce(notify_previous, ?2)
             WHERE run_id = ?1",
            params![run_id, previous],
        ),
        Event::NotificationsRestored { .. } => run(
            "UPDATE migration_runs SET notify_previous = NULL WHERE run_id = ?1",
            params![run_id],
        ),
        // Key and batch events only touch counters (apply, touch_run).
        _ => Ok(()),
    }
}

/// A counter as SQLite stores it. Counters never approach `i64::MAX`;
/// saturating keeps an absurd value from failing the append.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Records a tracker event for a key: the key becomes pending in `state`
/// (`dirty` or `deleted`), whatever it was. Returns true when this is the
/// first tracker event for the key, i.e. the run has seen one more
/// distinct dirty key.
///
/// An `UPDATE` of a key the tracker saw before, then an upsert only if
/// there was none: repeated writes to a key are the common case, and the
/// update alone is the cheapest way to record them. A miss means the key
/// has no row, or only a settlement's row (`events_count` 0): either way
/// this is its first tracker event.
#[allow(clippy::too_many_arguments)] // one per column; a struct would only rename them
fn mark_seen(
    conn: &Connection,
    run_id: &str,
    db: u32,
    key: &[u8],
    seq: Seq,
    at_ms: i64,
    keyspace_event: &str,
    state: &str,
) -> rusqlite::Result<bool> {
    let params = params![run_id, db, key, seq, at_ms, keyspace_event, state];
    let updated = conn
        .prepare_cached(
            "UPDATE migration_dirty_keys SET
                 last_seen_seq = ?4,
                 last_seen_at_ms = ?5,
                 events_count = events_count + 1,
                 last_event = ?6,
                 state = ?7
             WHERE run_id = ?1 AND db = ?2 AND key = ?3 AND events_count > 0",
        )?
        .execute(params)?;
    if updated > 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO migration_dirty_keys (run_id, db, key, first_seen_seq, last_seen_seq,
             first_seen_at_ms, last_seen_at_ms, events_count, last_event, state)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?5, 1, ?6, ?7)
         ON CONFLICT (run_id, db, key) DO UPDATE SET
             last_seen_seq = excluded.last_seen_seq,
             last_seen_at_ms = excluded.last_seen_at_ms,
             events_count = 1,
             last_event = excluded.last_event,
             state = excluded.state",
    )?
    .execute(params)?;
    Ok(true)
}

/// Settles a key as `state` (`applied`, `removed` or `skipped`) through
/// `through_seq`, unless the tracker saw it again after `through_seq`, in
/// which case it stays pending. A key with no row gets one, settled, with
/// no tracker events.
///
/// An `UPDATE` first, as in [`mark_seen`]: the applier settles keys that
/// have rows. When it changes nothing, the key has no row, or a newer
/// event keeps it pending, which the insert's `DO NOTHING` leaves alone.
fn settle(
    conn: &Connection,
    run_id: &str,
    db: u32,
    key: &[u8],
    through_seq: Seq,
    at_ms: i64,
    state: &str,
) -> rusqlite::Result<()> {
    // Both statements take the same parameters (?5, the time, is used by
    // the insert only).
    let params = params![run_id, db, key, through_seq, at_ms, state];
    let updated = conn
        .prepare_cached(
            "UPDATE migration_dirty_keys SET state = ?6, settled_seq = ?4
             WHERE run_id = ?1 AND db = ?2 AND key = ?3 AND last_seen_seq <= ?4",
        )?
        .execute(params)?;
    if updated == 0 {
        conn.prepare_cached(
            "INSERT INTO migration_dirty_keys (run_id, db, key, first_seen_seq, last_seen_seq,
                 first_seen_at_ms, last_seen_at_ms, events_count, last_event, state, settled_seq)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?5, 0, NULL, ?6, ?4)
             ON CONFLICT (run_id, db, key) DO NOTHING",
        )?
        .execute(params)?;
    }
    Ok(())
}

/// Stores an [`Event::ErrorRecorded`] under its journal sequence number.
fn insert_error(conn: &Connection, seq: Seq, at_ms: i64, event: &Event) -> rusqlite::Result<()> {
    let Event::ErrorRecorded {
        run_id,
        component,
        severity,
        message,
        db,
        key,
    } = event
    else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO migration_errors (seq, run_id, at_ms, component, severity, db, key, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seq,
        run_id,
        at_ms,
        component,
        severity.as_str(),
        db,
        key,
        message
    ])
    .map(drop)
}

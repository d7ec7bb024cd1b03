//! Reading the registry: typed rows for `keyferry status`, the bulk
//! scanner and the dirty applier.
//!
//! Every query takes a plain [`Connection`], so it works on a read-only
//! connection and inside a writer job alike (where it sees the job's own
//! uncommitted writes). Statements are cached and always run to completion,
//! so none is left holding a read snapshot.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::event::{Counters, RunStatus, Seq, Severity};

/// A stored name this build does not know (a run or job status, a severity
/// or a key state), reported as a column conversion error.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {name:?} stored in a journal projection")]
pub struct UnknownName {
    /// What kind of name it should have been, e.g. `run status`.
    pub what: &'static str,
    /// The stored text.
    pub name: String,
}

/// Reads a text column as one of a fixed set of names (also the job
/// queue's statuses, [`crate::jobs`]).
pub(crate) fn named<T>(
    value: ValueRef<'_>,
    what: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> FromSqlResult<T> {
    let name = value.as_str()?;
    parse(name).ok_or_else(|| {
        FromSqlError::Other(Box::new(UnknownName {
            what,
            name: name.to_owned(),
        }))
    })
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "run status", RunStatus::from_name)
    }
}

impl FromSql for Severity {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "severity", Severity::from_name)
    }
}

/// Why a key is waiting for the dirty applier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    /// The tracker saw a write: re-read the key and replace it.
    Dirty,
    /// The tracker saw the key disappear: delete it.
    Deleted,
}

impl PendingState {
    /// The state's name in the registry's `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingState::Dirty => "dirty",
            PendingState::Deleted => "deleted",
        }
    }
}

impl FromSql for PendingState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "pending key state", |name| {
            [PendingState::Dirty, PendingState::Deleted]
                .into_iter()
                .find(|s| s.as_str() == name)
        })
    }
}

/// A run's throttles as last set by `keyferry control … set`; `None` when
/// never set (the command's defaults apply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttles {
    /// Most source requests per second.
    pub max_rps: Option<u32>,
    /// Most source requests in flight at once.
    pub max_concurrency: Option<u32>,
    /// Most keys per imported batch.
    pub batch_keys: Option<u32>,
    /// Most key and value bytes per imported batch.
    pub batch_bytes: Option<u64>,
    /// The `COUNT` hint given to `SCAN`.
    pub scan_count: Option<u32>,
}

/// One `migration_runs` row: everything known about a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// The run's id.
    pub run_id: String,
    /// Source URI without password (empty until its `RunStarted`).
    pub source_uri: String,
    /// Destination path (empty until its `RunStarted`).
    pub destination: String,
    /// Time of the run's first event (ms since the epoch).
    pub started_at_ms: i64,
    /// Time of its latest event.
    pub updated_at_ms: i64,
    /// Its state.
    pub status: RunStatus,
    /// Why it entered that state, when known.
    pub status_reason: Option<String>,
    /// The database the scan is in.
    pub scan_db: u32,
    /// The `SCAN` cursor to resume from in `scan_db`.
    pub scan_cursor: u64,
    /// True once every database was scanned.
    pub scan_done: bool,
    /// The source's `INFO` `run_id` as last seen by the scanner or the
    /// tracker.
    pub source_run_id: Option<String>,
    /// The source's `run_id` when `scan_cursor` was taken: if the source's
    /// current one differs, it restarted and the cursor is void.
    pub scan_source_run_id: Option<String>,
    /// The scan's cumulative counters, as of the latest checkpoint.
    pub counters: Counters,
    /// Batches imported.
    pub batches: u64,
    /// Distinct keys the tracker saw written or deleted.
    pub dirty_keys_seen: u64,
    /// Tracker events recorded (a key written twice counts twice).
    pub dirty_events: u64,
    /// Keys the dirty applier re-imported (settlements, ignored or not).
    pub dirty_keys_applied: u64,
    /// Keys the dirty applier deleted.
    pub dirty_keys_deleted: u64,
    /// Keys the dirty applier set aside as unsupported.
    pub dirty_keys_skipped: u64,
    /// True while a safety sweep is required and none covering the need
    /// has completed.
    pub needs_sweep: bool,
    /// Sequence number of the latest `SweepRequired`.
    pub last_sweep_required_seq: Option<Seq>,
    /// Why the pending sweep is required.
    pub sweep_reason: Option<String>,
    /// The throttles set at runtime.
    pub throttles: Throttles,
    /// True while the tracker is subscribed to the source.
    pub tracker_connected: bool,
    /// Sequence number of the latest `keyferry tracker stop` request: a
    /// tracker started before it stops.
    pub tracker_stop_seq: Option<Seq>,
    /// The source's `notify-keyspace-events` to restore, while the tool's
    /// change is in force.
    pub notify_previous: Option<String>,
    /// Message of the run's latest error (severity error, not warning).
    pub last_error: Option<String>,
    /// Sequence number of the latest checkpoint.
    pub last_checkpoint_seq: Option<Seq>,
    /// Time of the latest checkpoint.
    pub last_checkpoint_at_ms: Option<i64>,
    /// Sequence number of the run's latest event.
    pub last_seq: Seq,
}

/// `SELECT`s the columns [`RunRow::from_row`] reads, in its order, from
/// `migration_runs`, followed by `$tail`. A macro so each query is one
/// constant string (the statement cache's key) rather than formatted per
/// call.
macro_rules! select_runs {
    ($tail:literal) => {
        concat!(
            "SELECT run_id, source_uri, destination, started_at_ms, updated_at_ms,
                 status, status_reason, scan_db, scan_cursor, scan_done,
                 source_run_id, scan_source_run_id,
                 scanned_keys, migrated_keys, skipped_keys, error_keys, migrated_bytes,
                 batches, dirty_keys_seen, dirty_events,
                 dirty_keys_applied, dirty_keys_deleted, dirty_keys_skipped,
                 needs_sweep, last_sweep_required_seq, sweep_reason,
                 max_rps, max_concurrency, batch_keys, batch_bytes, scan_count,
                 tracker_connected, tracker_stop_seq, notify_previous, last_error,
                 last_checkpoint_seq, last_checkpoint_at_ms, last_seq
             FROM migration_runs ",
            $tail
        )
    };
}

/// Column `i` of `r`, a count, as the unsigned number it is. (rusqlite
/// reads no u64 unless the workspace opts into its `fallible_uint`.)
fn unsigned(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    to_unsigned(i, r.get(i)?)
}

/// The value `n` of column `i` as a u64.
fn to_unsigned(i: usize, n: i64) -> rusqlite::Result<u64> {
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, n))
}

impl RunRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            run_id: r.get(0)?,
            source_uri: r.get(1)?,
            destination: r.get(2)?,
            started_at_ms: r.get(3)?,
            updated_at_ms: r.get(4)?,
            status: r.get(5)?,
            status_reason: r.get(6)?,
            scan_db: r.get(7)?,
            // Stored bit-cast to i64 (see the migration).
            scan_cursor: r.get::<_, i64>(8)? as u64,
            scan_done: r.get(9)?,
            source_run_id: r.get(10)?,
            scan_source_run_id: r.get(11)?,
            counters: Counters {
                scanned_keys: unsigned(r, 12)?,
                migrated_keys: unsigned(r, 13)?,
                skipped_keys: unsigned(r, 14)?,
                error_keys: unsigned(r, 15)?,
                migrated_bytes: unsigned(r, 16)?,
            },
            batches: unsigned(r, 17)?,
            dirty_keys_seen: unsigned(r, 18)?,
            dirty_events: unsigned(r, 19)?,
            dirty_keys_applied: unsigned(r, 20)?,
            dirty_keys_deleted: unsigned(r, 21)?,
            dirty_keys_skipped: unsigned(r, 22)?,
            needs_sweep: r.get(23)?,
            last_sweep_required_seq: r.get(24)?,
            sweep_reason: r.get(25)?,
            throttles: Throttles {
                max_rps: r.get(26)?,
                max_concurrency: r.get(27)?,
                batch_keys: r.get(28)?,
                batch_bytes: r
                    .get::<_, Option<i64>>(29)?
                    .map(|n| to_unsigned(29, n))
                    .transpose()?,
                scan_count: r.get(30)?,
            },
            tracker_connected: r.get(31)?,
            tracker_stop_seq: r.get(32)?,
            notify_previous: r.get(33)?,
            last_error: r.get(34)?,
            last_checkpoint_seq: r.get(35)?,
            last_checkpoint_at_ms: r.get(36)?,
            last_seq: r.get(37)?,
        })
    }
}

/// A key waiting for the dirty applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingKey {
    /// Logical database (0..15).
    pub db: u32,
    /// The key, as raw bytes.
    pub key: Vec<u8>,
    /// Sequence number of the latest tracker event for it: pass it as
    /// `through_seq` when marking the key, so a write recorded meanwhile
    /// keeps it pending.
    pub last_seen_seq: Seq,
    /// What to do with it.
    pub state: PendingState,
}

/// One `migration_errors` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    /// Sequence number of the `ErrorRecorded` event.
    pub seq: Seq,
    /// The run it belongs to, if any.
    pub run_id: Option<String>,
    /// When it was recorded (ms since the epoch).
    pub at_ms: i64,
    /// The actor or component that saw it.
    pub component: String,
    /// How bad it is.
    pub severity: Severity,
    /// Logical database of the key involved, if any.
    pub db: Option<u32>,
    /// The key involved, if any.
    pub key: Option<Vec<u8>>,
    /// What happened.
    pub message: String,
}

/// The run `run_id`, if the registry has it.
pub fn run(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<RunRow>> {
    conn.prepare_cached(select_runs!("WHERE run_id = ?1"))?
        .query_row([run_id], RunRow::from_row)
        .optional()
}

/// Every run, oldest first.
pub fn runs(conn: &Connection) -> rusqlite::Result<Vec<RunRow>> {
    conn.prepare_cached(select_runs!("ORDER BY started_at_ms, run_id"))?
        .query_map([], RunRow::from_row)?
        .collect()
}

/// The query behind [`pending_after`]: one ordered index range per pending
/// state, each cut at the limit, then merged. The cost follows the limit,
/// not the number of pending keys (`state IN (…)` alone would sort them
/// all first). Each arm repeats the partial index's own condition, which
/// SQLite must find verbatim in a query to use that index.
pub(super) const PENDING_SQL: &str = "
    SELECT db, key, last_seen_seq, state FROM (
        SELECT db, key, last_seen_seq, state FROM migration_dirty_keys
        WHERE run_id = ?1 AND state = 'dirty' AND state IN ('dirty', 'deleted')
          AND last_seen_seq > ?2
        ORDER BY last_seen_seq LIMIT ?3)
    UNION ALL
    SELECT db, key, last_seen_seq, state FROM (
        SELECT db, key, last_seen_seq, state FROM migration_dirty_keys
        WHERE run_id = ?1 AND state = 'deleted' AND state IN ('dirty', 'deleted')
          AND last_seen_seq > ?2
        ORDER BY last_seen_seq LIMIT ?3)
    ORDER BY last_seen_seq LIMIT ?3";

/// Up to `limit` pending keys of `run_id`, the longest-waiting first
/// (by the sequence number of their latest tracker event).
pub fn pending(conn: &Connection, run_id: &str, limit: usize) -> rusqlite::Result<Vec<PendingKey>> {
    pending_after(conn, run_id, 0, limit)
}

/// Like [`pending`], for the keys whose latest tracker event is after
/// `after`: an applier with keys in flight (read but not yet marked) pages
/// on from the last key it took instead of taking them again.
pub fn pending_after(
    conn: &Connection,
    run_id: &str,
    after: Seq,
    limit: usize,
) -> rusqlite::Result<Vec<PendingKey>> {
    conn.prepare_cached(PENDING_SQL)?
        .query_map(params![run_id, after, limit_param(limit)], |r| {
            Ok(PendingKey {
                db: r.get(0)?,
                key: r.get(1)?,
                last_seen_seq: r.get(2)?,
                state: r.get(3)?,
            })
        })?
        .collect()
}

/// A `LIMIT` for SQLite, which takes an i64 (a negative one means none).
fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// How many keys of `run_id` are pending (`dirty` or `deleted`).
pub fn pending_count(conn: &Connection, run_id: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT count(*) FROM migration_dirty_keys
         WHERE run_id = ?1 AND state IN ('dirty', 'deleted')",
    )?
    .query_row([run_id], |r| unsigned(r, 0))
}

/// How many keys of `run_id` are in each registry state (`dirty`,
/// `deleted`, `applied`, `removed`, `skipped`), by state name; states with
/// no key are left out.
pub fn state_counts(conn: &Connection, run_id: &str) -> rusqlite::Result<Vec<(String, u64)>> {
    conn.prepare_cached(
        "SELECT state, count(*) FROM migration_dirty_keys WHERE run_id = ?1
         GROUP BY state ORDER BY state",
    )?
    .query_map([run_id], |r| Ok((r.get(0)?, unsigned(r, 1)?)))?
    .collect()
}

/// True when the registry has a row for the key, whatever its state: the
/// dirty applier owns such a key, so the bulk scanner leaves it alone.
pub fn is_tracked(conn: &Connection, run_id: &str, db: u32, key: &[u8]) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM migration_dirty_keys
             WHERE run_id = ?1 AND db = ?2 AND key = ?3)",
    )?
    .query_row(params![run_id, db, key], |r| r.get(0))
}

/// True when the key is pending (`dirty` or `deleted`) in `run_id`: the
/// dirty applier will deal with it, so a sweep need not mark it again.
pub fn is_pending(conn: &Connection, run_id: &str, db: u32, key: &[u8]) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM migration_dirty_keys
             WHERE run_id = ?1 AND db = ?2 AND key = ?3 AND state IN ('dirty', 'deleted'))",
    )?
    .query_row(params![run_id, db, key], |r| r.get(0))
}

/// Up to `limit` errors and warnings of `run_id`, newest first.
pub fn recent_errors(
    conn: &Connection,
    run_id: &str,
    limit: usize,
) -> rusqlite::Result<Vec<ErrorRow>> {
    conn.prepare_cached(
        "SELECT seq, run_id, at_ms, component, severity, db, key, message
         FROM migration_errors WHERE run_id = ?1 ORDER BY seq DESC LIMIT ?2",
    )?
    .query_map(params![run_id, limit_param(limit)], |r| {
        Ok(ErrorRow {
            seq: r.get(0)?,
            run_id: r.get(1)?,
            at_ms: r.get(2)?,
            component: r.get(3)?,
            severity: r.get(4)?,
            db: r.get(5)?,
            key: r.get(6)?,
            message: r.get(7)?,
        })
    })?
    .collect()
}

//! `keyferry status --run-id ID --to PATH [--json]`: where a migration run
//! is, read from the registry tables of its destination file.
//!
//! Everything comes from one read transaction, so the numbers are
//! consistent with each other even while the run's steps keep writing.
//! Status only reads: it works beside running steps in other processes.
//! Source URIs are stored without their password, so none can appear.

use std::collections::BTreeMap;

use keyferry_actors::verify::escape_bytes;
use keyferry_journal::registry::{self, ErrorRow, RunRow};
use serde::Serialize;

pub use super::output::CommandError;
use super::output::{Lines, open_destination, print_json, utc};
use crate::cli::StatusArgs;

/// How many of the run's latest errors and warnings are shown.
const RECENT_ERRORS: usize = 10;

/// Every registry state a key can be in, shown even when no key is in it
/// so `dirty_states` always has the same fields.
const KEY_STATES: [&str; 5] = ["dirty", "deleted", "applied", "removed", "skipped"];

/// Runs `keyferry status`. Fails when the file or the run does not exist.
pub fn run(args: StatusArgs) -> Result<(), CommandError> {
    let store = open_destination(&args.run.to)?;
    let run_id = args.run.run_id.clone();
    let report = store.read(move |view| {
        let conn = view.conn();
        let Some(row) = registry::run(conn, &run_id)? else {
            return Ok(None);
        };
        Ok(Some(StatusReport::new(
            row,
            registry::pending_count(conn, &run_id)?,
            registry::state_counts(conn, &run_id)?,
            registry::recent_errors(conn, &run_id, RECENT_ERRORS)?,
        )))
    })?;
    let report = report.ok_or_else(|| CommandError::unknown_run(&args.run))?;
    if args.json {
        print_json(&report)
    } else {
        report.lines().print()
    }
}

/// A run's status, as `keyferry status --json` prints it. The field names
/// are stable:
///
/// - `run_id`, `status` (`running`, `paused`, `completed`, `aborted`,
///   `failed`), `status_reason` (or null), `source_uri` (never with a
///   password), `destination`.
/// - `started_at_ms`, `updated_at_ms`: the run's first and latest events,
///   in Unix milliseconds.
/// - `scanned_keys`, `migrated_keys`, `skipped_keys`, `error_keys`,
///   `migrated_bytes`: the bulk scan's counters as of the last checkpoint;
///   `batches`: batches imported.
/// - `keys_per_second`, `bytes_per_second`: average rates — the counters
///   divided by the time from the run's start to its last checkpoint (the
///   counters' own time, so later events such as a `control pause` do not
///   dilute them); 0 before the first checkpoint.
/// - `scan_db`, `scan_cursor` (a decimal string, as Redis sends cursors:
///   a u64 does not fit a JSON number everywhere), `scan_done`.
/// - `dirty_pending`: keys waiting for the dirty applier; `dirty_states`:
///   keys per registry state (`dirty`, `deleted`, `applied`, `removed`,
///   `skipped`, always all five); `dirty_keys_seen`, `dirty_events`,
///   `dirty_keys_applied`, `dirty_keys_deleted`, `dirty_keys_skipped`.
/// - `needs_sweep`, `sweep_reason` (or null).
/// - `throttles`: `max_rps`, `max_concurrency`, `batch_keys`,
///   `batch_bytes`, `scan_count` as last set, null where never set (the
///   step's default applies).
/// - `tracker_connected`.
/// - `last_error` (or null), `last_checkpoint_seq`,
///   `last_checkpoint_at_ms` (null before the first checkpoint).
/// - `recent_errors`: the latest errors and warnings, newest first, each
///   with `seq`, `at_ms`, `component`, `severity` (`warning` or `error`),
///   `db` and `key` (escaped as Redis shows keys; null when no key is
///   involved) and `message`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// The run's id.
    pub run_id: String,
    /// Its state's name.
    pub status: &'static str,
    /// Why it entered that state, when known.
    pub status_reason: Option<String>,
    /// The source, without password.
    pub source_uri: String,
    /// The destination file as the run recorded it.
    pub destination: String,
    /// Time of the run's first event (Unix ms).
    pub started_at_ms: i64,
    /// Time of its latest event.
    pub updated_at_ms: i64,
    /// Keys `SCAN` returned.
    pub scanned_keys: u64,
    /// Keys written to the destination.
    pub migrated_keys: u64,
    /// Keys skipped (vanished or expired before being read).
    pub skipped_keys: u64,
    /// Keys that failed to import.
    pub error_keys: u64,
    /// Bytes of keys and values written.
    pub migrated_bytes: u64,
    /// Batches imported.
    pub batches: u64,
    /// Average keys migrated per second (see the type's docs).
    pub keys_per_second: f64,
    /// Average bytes migrated per second.
    pub bytes_per_second: f64,
    /// The database the scan is in.
    pub scan_db: u32,
    /// The `SCAN` cursor to resume from, in decimal.
    pub scan_cursor: String,
    /// True once every database was scanned.
    pub scan_done: bool,
    /// Keys waiting for the dirty applier.
    pub dirty_pending: u64,
    /// Keys per registry state.
    pub dirty_states: BTreeMap<String, u64>,
    /// Distinct keys the tracker saw written or deleted.
    pub dirty_keys_seen: u64,
    /// Tracker events recorded.
    pub dirty_events: u64,
    /// Keys the dirty applier re-imported.
    pub dirty_keys_applied: u64,
    /// Keys the dirty applier deleted.
    pub dirty_keys_deleted: u64,
    /// Keys the dirty applier set aside as unsupported.
    pub dirty_keys_skipped: u64,
    /// True while a safety sweep is required.
    pub needs_sweep: bool,
    /// Why it is required.
    pub sweep_reason: Option<String>,
    /// The throttles in force.
    pub throttles: ThrottlesReport,
    /// True while the tracker is subscribed to the source.
    pub tracker_connected: bool,
    /// The latest error's message.
    pub last_error: Option<String>,
    /// Sequence number of the latest checkpoint.
    pub last_checkpoint_seq: Option<i64>,
    /// Time of the latest checkpoint (Unix ms).
    pub last_checkpoint_at_ms: Option<i64>,
    /// The latest errors and warnings, newest first.
    pub recent_errors: Vec<ErrorReport>,
}

/// The throttles set on a run; `None` where never set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ThrottlesReport {
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

/// One recorded error or warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// Its journal sequence number.
    pub seq: i64,
    /// When it was recorded (Unix ms).
    pub at_ms: i64,
    /// The component that saw it.
    pub component: String,
    /// `warning` or `error`.
    pub severity: &'static str,
    /// The database of the key involved.
    pub db: Option<u32>,
    /// The key involved, escaped as Redis shows keys.
    pub key: Option<String>,
    /// What happened.
    pub message: String,
}

impl StatusReport {
    /// The report of `row`, with its dirty backlog and recent errors.
    fn new(row: RunRow, pending: u64, states: Vec<(String, u64)>, errors: Vec<ErrorRow>) -> Self {
        let mut dirty_states: BTreeMap<String, u64> =
            KEY_STATES.iter().map(|s| (s.to_string(), 0)).collect();
        dirty_states.extend(states);
        let seconds = row
            .last_checkpoint_at_ms
            .map_or(0.0, |at| (at - row.started_at_ms).max(0) as f64 / 1000.0);
        let per_second = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        let t = row.throttles;
        StatusReport {
            status: row.status.as_str(),
            keys_per_second: per_second(row.counters.migrated_keys),
            bytes_per_second: per_second(row.counters.migrated_bytes),
            scanned_keys: row.counters.scanned_keys,
            migrated_keys: row.counters.migrated_keys,
            skipped_keys: row.counters.skipped_keys,
            error_keys: row.counters.error_keys,
            migrated_bytes: row.counters.migrated_bytes,
            scan_cursor: row.scan_cursor.to_string(),
            dirty_pending: pending,
            dirty_states,
            throttles: ThrottlesReport {
                max_rps: t.max_rps,
                max_concurrency: t.max_concurrency,
                batch_keys: t.batch_keys,
                batch_bytes: t.batch_bytes,
                scan_count: t.scan_count,
            },
            recent_errors: errors.into_iter().map(ErrorReport::from).collect(),
            run_id: row.run_id,
            status_reason: row.status_reason,
            source_uri: row.source_uri,
            destination: row.destination,
            started_at_ms: row.started_at_ms,
            updated_at_ms: row.updated_at_ms,
            batches: row.batches,
            scan_db: row.scan_db,
            scan_done: row.scan_done,
            dirty_keys_seen: row.dirty_keys_seen,
            dirty_events: row.dirty_events,
            dirty_keys_applied: row.dirty_keys_applied,
            dirty_keys_deleted: row.dirty_keys_deleted,
            dirty_keys_skipped: row.dirty_keys_skipped,
            needs_sweep: row.needs_sweep,
            sweep_reason: row.sweep_reason,
            tracker_connected: row.tracker_connected,
            last_error: row.last_error,
            last_checkpoint_seq: row.last_checkpoint_seq,
            last_checkpoint_at_ms: row.last_checkpoint_at_ms,
        }
    }

    /// The text report.
    fn lines(&self) -> Lines {
        let mut lines = Lines::default();
        lines.add("run", &self.run_id);
        lines.add(
            "status",
            with_reason(self.status, self.status_reason.as_deref()),
        );
        lines.add("source", or_dash(&self.source_uri));
        lines.add("destination", or_dash(&self.destination));
        lines.add("started", utc(self.started_at_ms));
        lines.add("updated", utc(self.updated_at_ms));
        lines.add("scanned keys", self.scanned_keys);
        lines.add("migrated keys", self.migrated_keys);
        lines.add("skipped keys", self.skipped_keys);
        lines.add("error keys", self.error_keys);
        lines.add("migrated bytes", self.migrated_bytes);
        lines.add("batches", self.batches);
        lines.add(
            "rate",
            format!(
                "{:.1} keys/s, {:.2} MB/s (average, start to last checkpoint)",
                self.keys_per_second,
                self.bytes_per_second / 1e6
            ),
        );
        lines.add(
            "cursor",
            if self.scan_done {
                "scan done".to_string()
            } else {
                format!("db {} cursor {}", self.scan_db, self.scan_cursor)
            },
        );
        let states: Vec<String> = self
            .dirty_states
            .iter()
            .map(|(state, n)| format!("{state} {n}"))
            .collect();
        lines.add(
            "dirty backlog",
            format!("{} pending ({})", self.dirty_pending, states.join(", ")),
        );
        lines.add(
            "dirty keys seen",
            format!("{} ({} events)", self.dirty_keys_seen, self.dirty_events),
        );
        lines.add(
            "needs sweep",
            if self.needs_sweep {
                with_reason("yes", self.sweep_reason.as_deref())
            } else {
                "no".to_string()
            },
        );
        lines.add("throttles", self.throttles.describe());
        lines.add(
            "tracker",
            if self.tracker_connected {
                "connected"
            } else {
                "not connected"
            },
        );
        lines.add(
            "last checkpoint",
            match (self.last_checkpoint_seq, self.last_checkpoint_at_ms) {
                (Some(seq), Some(at)) => format!("{} (seq {seq})", utc(at)),
                _ => "none".to_string(),
            },
        );
        lines.add("last error", self.last_error.as_deref().unwrap_or("none"));
        lines.add("recent errors", self.recent_errors.len());
        for error in &self.recent_errors {
            lines.detail(error.describe());
        }
        lines
    }
}

impl ThrottlesReport {
    /// `name value` for each throttle, `default` where never set.
    fn describe(&self) -> String {
        let show = |name: &str, value: Option<String>| {
            format!("{name} {}", value.as_deref().unwrap_or("default"))
        };
        let text = |n: Option<u32>| n.map(|n| n.to_string());
        [
            show("max_rps", text(self.max_rps)),
            show("max_concurrency", text(self.max_concurrency)),
            show("batch_keys", text(self.batch_keys)),
            show("batch_bytes", self.batch_bytes.map(|n| n.to_string())),
            show("scan_count", text(self.scan_count)),
        ]
        .join(", ")
    }
}

impl ErrorReport {
    /// One line: when, how bad, who, which key, what.
    fn describe(&self) -> String {
        let mut text = format!("{} {} {}", utc(self.at_ms), self.severity, self.component);
        if let Some(db) = self.db {
            text.push_str(&format!(" db {db}"));
        }
        if let Some(key) = &self.key {
            text.push_str(&format!(" \"{key}\""));
        }
        text.push_str(&format!(": {}", self.message));
        text
    }
}

impl From<ErrorRow> for ErrorReport {
    fn from(row: ErrorRow) -> Self {
        ErrorReport {
            seq: row.seq,
            at_ms: row.at_ms,
            component: row.component,
            severity: row.severity.as_str(),
            db: row.db,
            key: row.key.as_deref().map(escape_bytes),
            message: row.message,
        }
    }
}

/// `what (why)`, or `what` alone.
fn with_reason(what: &str, why: Option<&str>) -> String {
    match why {
        Some(why) => format!("{what} ({why})"),
        None => what.to_string(),
    }
}

/// `text`, or `-` when empty (a run the bulk step has not started yet
/// has no source or destination recorded).
fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

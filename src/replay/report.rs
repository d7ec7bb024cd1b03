//! [`ReplayReport`], what `keyferry replay` found, as `--json` prints it
//! and the text output renders it.

use std::collections::BTreeMap;
use std::fmt;

use keyferry_actors::verify::escape_bytes;
use keyferry_journal::rebuild::{
    Bounds, Cell, Comparison, Difference, DifferenceKind, RebuildError, Rebuilt,
};
use keyferry_journal::{Seq, jobs, registry};
use serde::{Serialize, Serializer};

use crate::cli::ReplayArgs;

/// The outcome of a replay. The JSON field names are stable:
///
/// - `db`: the file replayed.
/// - `first_seq` (null when the journal is empty), `last_seq` (0 when
///   empty): the events the journal holds; `compacted_before`: `first_seq`
///   when the events before it were compacted away, else null;
///   `earliest_seq`: the lowest `--until` that can be replayed (null when
///   compacted with no snapshot left); `snapshots`: the projection
///   snapshots a replay can start from, oldest first.
/// - `until`: the `--until` given (or null); `replayed_through`: the last
///   event the state includes; `snapshot_seq`: the snapshot the replay
///   started from (null: the first event); `events_applied`: events
///   replayed on top of it.
/// - `runs`: one object per migration run, oldest first: `run_id`,
///   `status`, `scanned_keys`, `migrated_keys`, `skipped_keys`,
///   `error_keys`, `migrated_bytes`, `batches`, `dirty_pending` (keys
///   waiting for the dirty applier), `dirty_states` (keys per registry
///   state, for the states holding any), `needs_sweep`,
///   `tracker_connected`, `errors`, `warnings`, `last_seq` (its latest
///   event).
/// - `jobs`: jobs per status (`queued`, `leased`, `done`, `failed`,
///   `dead`, always all five).
/// - `restarts`: per supervised actor, `restarts`, `gave_up`,
///   `last_reason`.
/// - `errors`, `warnings`: recorded, all runs and components together.
/// - `check`: null without `--check`; else `ok`, `tables` and `rows`
///   compared, `difference_count`, and `differences` (the first 20), each
///   with `table`, `key` (primary-key column → value), `kind`
///   (`missing_table`, `missing_row`: the journal produces it but the file
///   lacks it, `extra_row`: the reverse, or `column`), and for `column`
///   ones `column`, `stored` and `rebuilt`.
///
/// Values of TEXT and BLOB columns (keys above all) are shown escaped as
/// Redis shows keys (`a\r\n\xff`), never decoded as UTF-8.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The file replayed.
    pub db: String,
    /// The first event the journal holds.
    pub first_seq: Option<Seq>,
    /// The last event.
    pub last_seq: Seq,
    /// The first event when the ones before it were compacted away.
    pub compacted_before: Option<Seq>,
    /// The lowest `--until` that can be replayed.
    pub earliest_seq: Option<Seq>,
    /// The projection snapshots a replay can start from.
    pub snapshots: Vec<Seq>,
    /// The `--until` given.
    pub until: Option<Seq>,
    /// The last event the state includes.
    pub replayed_through: Seq,
    /// The snapshot the replay started from.
    pub snapshot_seq: Option<Seq>,
    /// Events replayed.
    pub events_applied: u64,
    /// Migration runs.
    pub runs: Vec<RunReport>,
    /// Jobs per status, in lifecycle order (a JSON object).
    #[serde(serialize_with = "in_order")]
    pub jobs: Vec<(&'static str, u64)>,
    /// Restarts per actor.
    pub restarts: BTreeMap<String, RestartReport>,
    /// Errors recorded.
    pub errors: u64,
    /// Warnings recorded.
    pub warnings: u64,
    /// The comparison with the stored projections (`--check`).
    pub check: Option<CheckReport>,
}

/// A migration run as rebuilt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// Its state's name.
    pub status: &'static str,
    /// Keys `SCAN` returned (as of the latest checkpoint).
    pub scanned_keys: u64,
    /// Keys written to the destination.
    pub migrated_keys: u64,
    /// Keys skipped.
    pub skipped_keys: u64,
    /// Keys that failed to import.
    pub error_keys: u64,
    /// Bytes of keys and values written.
    pub migrated_bytes: u64,
    /// Batches imported.
    pub batches: u64,
    /// Keys waiting for the dirty applier.
    pub dirty_pending: u64,
    /// Keys per registry state.
    pub dirty_states: BTreeMap<String, u64>,
    /// True while a safety sweep is required.
    pub needs_sweep: bool,
    /// True while the tracker is subscribed to the source.
    pub tracker_connected: bool,
    /// Errors recorded for the run.
    pub errors: u64,
    /// Warnings recorded for the run.
    pub warnings: u64,
    /// The run's latest event.
    pub last_seq: Seq,
}

/// Restarts of one supervised actor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartReport {
    /// Restarts performed.
    pub restarts: u64,
    /// True once the supervisor gave up on it.
    pub gave_up: bool,
    /// Why it failed last.
    pub last_reason: String,
}

/// The comparison of rebuilt and stored projections.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// True when nothing differs.
    pub ok: bool,
    /// Tables compared.
    pub tables: usize,
    /// Rows compared.
    pub rows: u64,
    /// Differences found.
    pub difference_count: u64,
    /// The first differences.
    pub differences: Vec<DifferenceReport>,
}

/// One difference between the rebuilt and the stored projections.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DifferenceReport {
    /// The table.
    pub table: &'static str,
    /// The row's primary key, column by column (a JSON object whose
    /// fields are in key order; empty for a missing table).
    #[serde(serialize_with = "in_order")]
    pub key: Vec<(String, CellReport)>,
    /// What differs (`kind`, and its fields).
    #[serde(flatten)]
    pub what: WhatDiffers,
}

/// What a [`DifferenceReport`] is about, tagged `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WhatDiffers {
    /// The file has no such table.
    MissingTable,
    /// The journal produces the row; the file lacks it.
    MissingRow,
    /// The file has the row; the journal does not produce it.
    ExtraRow,
    /// A column's values differ.
    Column {
        /// The column.
        column: String,
        /// Its value in the file.
        stored: CellReport,
        /// Its value as rebuilt.
        rebuilt: CellReport,
    },
}

/// A column value: JSON null or a number as such, TEXT and BLOB escaped
/// as Redis shows keys.
#[derive(Debug, Clone, PartialEq)]
pub struct CellReport(pub Cell);

/// Serializes `pairs` as a map, in their order.
fn in_order<S: Serializer, K: Serialize, V: Serialize>(
    pairs: &[(K, V)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().map(|(name, value)| (name, value)))
}

/// The value as `replay` prints it: numbers as such, `NULL`, TEXT and
/// BLOB escaped and quoted as Redis shows keys (`"a\r\n\xff"`).
impl fmt::Display for CellReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Cell::Null => f.write_str("NULL"),
            Cell::Integer(i) => write!(f, "{i}"),
            Cell::Real(r) => write!(f, "{r}"),
            Cell::Text(bytes) | Cell::Blob(bytes) => write!(f, "\"{}\"", escape_bytes(bytes)),
        }
    }
}

impl Serialize for CellReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Cell::Null => serializer.serialize_none(),
            Cell::Integer(i) => serializer.serialize_i64(*i),
            Cell::Real(r) => serializer.serialize_f64(*r),
            Cell::Text(bytes) | Cell::Blob(bytes) => serializer.serialize_str(&escape_bytes(bytes)),
        }
    }
}

impl ReplayReport {
    /// The report on `rebuilt`, replayed from a journal of `bounds` as
    /// `args` asked, with the comparison if one was made.
    pub(super) fn new(
        args: &ReplayArgs,
        bounds: &Bounds,
        rebuilt: &Rebuilt,
        check: Option<&Comparison>,
    ) -> Result<ReplayReport, RebuildError> {
        let summary = &rebuilt.summary;
        let conn = &rebuilt.conn;
        let runs = registry::runs(conn)?
            .into_iter()
            .map(|row| {
                let counts = summary.state.runs.get(&row.run_id);
                Ok(RunReport {
                    status: row.status.as_str(),
                    scanned_keys: row.counters.scanned_keys,
                    migrated_keys: row.counters.migrated_keys,
                    skipped_keys: row.counters.skipped_keys,
                    error_keys: row.counters.error_keys,
                    migrated_bytes: row.counters.migrated_bytes,
                    batches: row.batches,
                    dirty_pending: registry::pending_count(conn, &row.run_id)?,
                    dirty_states: registry::state_counts(conn, &row.run_id)?
                        .into_iter()
                        .collect(),
                    needs_sweep: row.needs_sweep,
                    tracker_connected: row.tracker_connected,
                    errors: counts.map_or(0, |c| c.errors),
                    warnings: counts.map_or(0, |c| c.warnings),
                    last_seq: row.last_seq,
                    run_id: row.run_id,
                })
            })
            .collect::<Result<_, RebuildError>>()?;
        let jobs = jobs::jobs_by_status(conn)?
            .into_iter()
            .map(|(status, n)| (status.as_str(), n))
            .collect();
        let restarts = summary
            .state
            .restarts
            .iter()
            .map(|(actor, r)| {
                let report = RestartReport {
                    restarts: r.restarts,
                    gave_up: r.gave_up,
                    last_reason: r.last_reason.clone(),
                };
                (actor.clone(), report)
            })
            .collect();
        Ok(ReplayReport {
            db: args.db.display().to_string(),
            first_seq: bounds.first,
            last_seq: bounds.last,
            compacted_before: bounds.compacted_before(),
            earliest_seq: bounds.earliest(),
            snapshots: bounds.snapshots.clone(),
            until: args.until,
            replayed_through: summary.seq,
            snapshot_seq: summary.snapshot_seq,
            events_applied: summary.applied,
            runs,
            jobs,
            restarts,
            errors: summary.state.errors,
            warnings: summary.state.warnings,
            check: check.map(CheckReport::new),
        })
    }
}

impl CheckReport {
    fn new(comparison: &Comparison) -> CheckReport {
        CheckReport {
            ok: comparison.is_clean(),
            tables: comparison.tables,
            rows: comparison.rows,
            difference_count: comparison.total,
            differences: comparison
                .differences
                .iter()
                .map(DifferenceReport::new)
                .collect(),
        }
    }
}

impl DifferenceReport {
    fn new(difference: &Difference) -> DifferenceReport {
        let what = match &difference.kind {
            DifferenceKind::MissingTable => WhatDiffers::MissingTable,
            DifferenceKind::MissingRow => WhatDiffers::MissingRow,
            DifferenceKind::ExtraRow => WhatDiffers::ExtraRow,
            DifferenceKind::Column {
                column,
                stored,
                rebuilt,
            } => WhatDiffers::Column {
                column: column.clone(),
                stored: CellReport(stored.clone()),
                rebuilt: CellReport(rebuilt.clone()),
            },
        };
        DifferenceReport {
            table: difference.table,
            key: difference
                .key
                .iter()
                .map(|(column, value)| (column.clone(), CellReport(value.clone())))
                .collect(),
            what,
        }
    }
}

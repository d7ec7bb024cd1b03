//! `keyferry replay --db PATH [--until SEQ] [--check] [--json]`: rebuilds
//! every projection from the journal, as a restart would, and shows the
//! result; with `--check`, compares it with the projections stored in the
//! file and fails naming every difference.
//!
//! The file is only read: it is opened read-only (a missing file is an
//! error, never created) inside one read transaction, so the replay beside
//! running steps in other processes sees one consistent state. The rebuild
//! goes into a private temporary database (see
//! [`keyferry_journal::rebuild`]).
//!
//! `--until SEQ` shows the state a crash right after event SEQ would have
//! left. Journals compacted by a retention (`KEYFERRY_JOURNAL_RETENTION`,
//! see [`keyferry_journal::compaction`]) can be replayed from their oldest
//! snapshot on; an earlier SEQ fails, naming the earliest available
//! sequence number.

mod report;
mod text;

use std::io::{self, Write};

use keyferry_journal::Seq;
use keyferry_journal::rebuild::{JournalView, RebuildError, RebuildOptions, Start, compare};

use crate::cli::ReplayArgs;
pub use report::{
    CellReport, CheckReport, DifferenceReport, ReplayReport, RestartReport, RunReport, WhatDiffers,
};

/// Differences listed by `--check`; the rest are counted.
const SHOWN_DIFFERENCES: usize = 20;

/// Why `keyferry replay` failed (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayCommandError {
    /// The file could not be opened, replayed or compared (missing file,
    /// unreadable row, `--until` before the earliest available sequence,
    /// …).
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    /// `--check --until SEQ` with SEQ before the last event: the stored
    /// projections are those of the last event, so they cannot match.
    #[error(
        "--check compares the rebuilt projections with the stored ones, which are the state after the journal's last event (seq {last}); --until {until} stops before it, so they would differ. Drop --check to see the state at {until}, or use --until {last} or later"
    )]
    CheckBeforeLast {
        /// The `--until` given.
        until: Seq,
        /// The journal's last event.
        last: Seq,
    },
    /// `--check` found differences (the report was printed).
    #[error("{0} difference(s) between the rebuilt and the stored projections")]
    Differences(u64),
    /// The report could not be written to stdout (e.g. a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// The report could not be encoded as JSON.
    #[error("cannot encode the output as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs `keyferry replay`.
pub fn run(args: ReplayArgs) -> Result<(), ReplayCommandError> {
    let view = JournalView::open(&args.db)?;
    let last = view.bounds().last;
    if args.check
        && let Some(until) = args.until.filter(|&until| until < last)
    {
        return Err(ReplayCommandError::CheckBeforeLast { until, last });
    }
    let rebuilt = view.rebuild(RebuildOptions {
        until: args.until,
        start: Start::FirstEvent,
    })?;
    let check = if args.check {
        Some(compare(view.conn(), &rebuilt.conn, SHOWN_DIFFERENCES)?)
    } else {
        None
    };
    let report = ReplayReport::new(&args, view.bounds(), &rebuilt, check.as_ref())?;
    // The view's read transaction is no longer needed: let the WAL move on.
    drop(view);
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(text::render(&report).as_bytes())?;
    }
    out.flush()?;
    match check {
        Some(comparison) if !comparison.is_clean() => {
            Err(ReplayCommandError::Differences(comparison.total))
        }
        _ => Ok(()),
    }
}

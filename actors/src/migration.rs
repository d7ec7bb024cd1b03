//! Live migration from a source Redis: the keyspace tracker, the bulk
//! scanner and the dirty applier, and what they share.
//!
//! Every actor works for one *run* (`--run-id`) in one destination file.
//! Its state lives in the journal's projection tables (`migration_runs`,
//! `migration_dirty_keys`, `migration_errors`, see
//! `keyferry_journal::registry`), updated in the same transaction as the
//! events that change it. That is what lets the pieces run as separate
//! processes on one file (the seed's workflow), lets an operator steer a
//! run from yet another process (`keyferry control`, `tracker stop`), and
//! lets a restarted actor carry on from the last committed batch.

pub mod applier;
mod batch;
pub mod bulk;
mod control;
pub mod orchestrator;
pub mod steps;
pub mod sweep;
pub mod tracker;

use keyferry_engine::{Store, StoreError};
use keyferry_journal::registry::{self, RunRow};
use keyferry_journal::{Event, Seq, Severity};

use crate::source::{Source, SourceError};

pub use control::{
    ControlRequest, ControlVerdict, Controlled, Settings, TtlMode, control, throttles_event,
};

/// Why a migration step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The source could not be reached or refused a command.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The destination file refused a read or write.
    #[error("destination: {0}")]
    Store(#[from] StoreError),
    /// The source's `notify-keyspace-events` misses classes the tracker
    /// needs, and `--enable-notifications` was not given.
    #[error(
        "the source's notify-keyspace-events is {current:?}, which lacks {missing:?}: the tracker would miss writes. \
         Set it on the source (CONFIG SET notify-keyspace-events KEA) or pass --enable-notifications"
    )]
    NotificationsOff {
        /// The source's current setting.
        current: String,
        /// The flag letters missing.
        missing: String,
    },
    /// The source refuses `CONFIG`, so notifications cannot be checked or
    /// enabled from here.
    #[error(
        "the source refuses CONFIG GET notify-keyspace-events (a managed Redis?): enable KEA notifications in the provider's console"
    )]
    ConfigRefused,
    /// The run was aborted (`keyferry control … abort`).
    #[error("run {0} was aborted")]
    Aborted(String),
    /// A comparison with the source failed.
    #[error(transparent)]
    Compare(#[from] crate::compare::CompareError),
    /// The step refuses to start, for the reason given.
    #[error("{0}")]
    Refused(String),
    /// The run does not exist in the destination file.
    #[error("no run {0:?} in the destination file")]
    UnknownRun(String),
}

impl From<rusqlite::Error> for MigrationError {
    fn from(e: rusqlite::Error) -> Self {
        MigrationError::Store(StoreError::from(e))
    }
}

/// One migration run: its id, the source it reads, the file it writes.
/// Cheap to clone; every actor of the run holds one.
#[derive(Clone)]
pub struct Run {
    /// The run id (`--run-id`).
    pub id: String,
    /// The source Redis.
    pub source: Source,
    /// The destination file's keyspace (and journal).
    pub store: Store,
}

impl Run {
    /// Appends `events` in one transaction; resolves once committed.
    pub async fn record(&self, events: Vec<Event>) -> Result<Vec<Seq>, MigrationError> {
        Ok(self
            .store
            .write(move |tx| tx.append_events(&events))
            .await?)
    }

    /// Records an error or warning of `component` for this run, and logs it.
    pub async fn record_error(
        &self,
        component: &str,
        severity: Severity,
        message: String,
        key: Option<(u32, Vec<u8>)>,
    ) -> Result<(), MigrationError> {
        match severity {
            Severity::Warning => tracing::warn!(run = %self.id, component, "{message}"),
            _ => tracing::error!(run = %self.id, component, "{message}"),
        }
        let (db, key) = key.map_or((None, None), |(db, key)| (Some(db), Some(key)));
        self.record(vec![Event::ErrorRecorded {
            run_id: Some(self.id.clone()),
            component: component.to_string(),
            severity,
            message,
            db,
            key,
        }])
        .await
        .map(drop)
    }

    /// The run's row in `migration_runs`, if the run exists.
    pub fn row(&self) -> Result<Option<RunRow>, MigrationError> {
        let id = self.id.clone();
        Ok(self
            .store
            .read(move |view| Ok(registry::run(view.conn(), &id)?))?)
    }

    /// How many of the run's keys are pending (dirty or deleted, not yet
    /// applied).
    pub fn pending(&self) -> Result<u64, MigrationError> {
        let id = self.id.clone();
        Ok(self
            .store
            .read(move |view| Ok(registry::pending_count(view.conn(), &id)?))?)
    }

    /// The journal's last sequence number, as committed now.
    pub fn last_seq(&self) -> Result<Seq, MigrationError> {
        Ok(self
            .store
            .read(|view| Ok(keyferry_journal::last_seq(view.conn())?))?)
    }
}

/// What a keyspace event means for the destination: the key must be
/// re-read (`Dirty`) or deleted (`Deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Re-read the key from the source and replace it.
    Dirty,
    /// The key is gone from the source.
    Deleted,
}

/// Maps a keyspace event name to what it means (the BRIEF's table). Any
/// event not known to delete a key — including ones this build has never
/// heard of — makes it dirty: re-reading a key is always safe, missing a
/// write is not.
pub fn classify(event: &[u8]) -> Mark {
    match event {
        b"del" | b"expired" | b"evicted" | b"rename_from" | b"move_from" => Mark::Deleted,
        _ => Mark::Dirty,
    }
}

/// The registry event for `mark` on `key`.
fn mark_event(run_id: &str, db: u32, key: Vec<u8>, event: String, mark: Mark) -> Event {
    let run_id = run_id.to_string();
    match mark {
        Mark::Dirty => Event::KeyDirtied {
            run_id,
            db,
            key,
            event,
        },
        Mark::Deleted => Event::KeyDeleted {
            run_id,
            db,
            key,
            event,
        },
    }
}

/// The logical databases a Redis has by default; SCAN and the sweep visit
/// each of them.
pub const DATABASES: u32 = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_are_the_briefs_five_and_everything_else_is_dirty() {
        for deleted in ["del", "expired", "evicted", "rename_from", "move_from"] {
            assert_eq!(classify(deleted.as_bytes()), Mark::Deleted, "{deleted}");
        }
        for dirty in [
            "set",
            "hset",
            "lpush",
            "zadd",
            "expire",
            "persist",
            "rename_to",
            "move_to",
            "copy_to",
            "restore",
            "sortstore",
            "some_future_event",
        ] {
            assert_eq!(classify(dirty.as_bytes()), Mark::Dirty, "{dirty}");
        }
    }
}

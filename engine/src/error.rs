//! The store's error types: [`OpenError`] for opening, [`StoreError`] for
//! everything afterwards.

use std::sync::Arc;

use keyferry_journal::schema::SchemaError;
use keyferry_journal::writer::WriteError;
use keyferry_journal::{JobError, JournalError};

use crate::keyvalue::KeyKind;

/// Why [`crate::Store::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite could not open or configure the file.
    #[error("cannot open the keyspace database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The journal's or keyspace's tables could not be created or upgraded.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The writer or sweeper thread could not be started.
    #[error("cannot start a keyspace thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Why a read or write of the keyspace failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The key holds a different type than the operation needs.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// A sorted-set score was NaN, which Redis never stores.
    #[error("sorted-set score is not a number (NaN)")]
    NanScore,
    /// Strings are imported whole with `import_key`; only collections can be
    /// staged.
    #[error("a {} cannot be staged, only hashes, lists, sets and sorted sets", .0.name())]
    NotStageable(KeyKind),
    /// A staged key was given elements of another type.
    #[error("a staged {} was given {} elements", .expected.name(), .found.name())]
    KindMismatch {
        /// The type the staged key was begun with.
        expected: KeyKind,
        /// The type of the elements passed.
        found: KeyKind,
    },
    /// A list index outside the list.
    #[error("index out of range")]
    IndexOutOfRange,
    /// The staging key no longer exists: it was already committed or
    /// aborted, or its lease ran out and the sweeper dropped it.
    #[error("the staged key no longer exists (committed, aborted or lease expired)")]
    StagingLost,
    /// SQLite refused a statement.
    #[error("keyspace sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A journal event could not be appended.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A job-queue operation was refused (a lease held by another worker,
    /// or lost: see `keyferry_journal::jobs`). Its write is undone.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The transaction the write was part of could not begin or commit;
    /// nothing of it was written.
    #[error("transaction failed: {0}")]
    Transaction(Arc<rusqlite::Error>),
    /// The write panicked and was rolled back.
    #[error("write panicked: {0}")]
    Panicked(String),
    /// The store has been shut down.
    #[error("the keyspace store has been shut down")]
    Closed,
    /// The writer reported a failure this build does not know.
    #[error("write failed: {0}")]
    Writer(String),
    /// The caller cancelled the write before it changed anything (e.g. an
    /// earlier write it depends on failed).
    #[error("write cancelled: {0}")]
    Cancelled(String),
    /// A command that promised to find its errors before writing
    /// ([`crate::command::Undo::NothingWrittenOnError`]) wrote and then
    /// failed; its transaction must not commit.
    #[error("'{0}' failed after writing; its transaction was rolled back")]
    WroteBeforeFailing(&'static str),
}

impl From<WriteError<StoreError>> for StoreError {
    fn from(e: WriteError<StoreError>) -> Self {
        match e {
            WriteError::Op(e) => e,
            WriteError::Transaction(e) => StoreError::Transaction(e),
            WriteError::Panicked(message) => StoreError::Panicked(message),
            WriteError::WriterGone => StoreError::Closed,
            other => StoreError::Writer(other.to_string()),
        }
    }
}

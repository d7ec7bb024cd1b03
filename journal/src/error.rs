//! Error types, one per kind of operation: writing ([`JournalError`]),
//! reading ([`ReadError`]), snapshots ([`SnapshotError`]) and replay
//! ([`ReplayError`]).
//!
//! Every error about a particular row names its sequence number, so an
//! operator can find it with `keyferry replay --until SEQ`.

use crate::event::Seq;
use crate::schema::SchemaError;

/// Why the journal could not be opened or an append failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The event could not be encoded (a bug: every event is encodable).
    #[error("could not encode a {kind} event: {source}")]
    Encode {
        /// The event's kind.
        kind: &'static str,
        /// Underlying error.
        #[source]
        source: rmp_serde::encode::Error,
    },
    /// SQLite refused to open the file or to insert a row.
    #[error("journal sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The journal's tables could not be created or upgraded.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The writer thread could not be started.
    #[error("could not start the journal writer thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Why reading the journal failed.
///
/// The row-level variants ([`ReadError::ChecksumMismatch`],
/// [`ReadError::Undecodable`], [`ReadError::UnknownVersion`],
/// [`ReadError::MalformedRow`]) are never skipped silently: a reader yields
/// them in place of the row, and may continue with the next row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// SQLite failed (cannot open the file, I/O error, …).
    #[error("journal sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The row's stored checksum does not match its contents.
    #[error(
        "journal row {seq} is corrupt: checksum {stored:#010x} stored, {computed:#010x} computed"
    )]
    ChecksumMismatch {
        /// The row.
        seq: Seq,
        /// Checksum column as stored.
        stored: i64,
        /// Checksum of the row's kind, version, timestamp and payload.
        computed: u32,
    },
    /// The checksum matches but the payload does not decode as an event of
    /// the stored kind (written by a buggy or incompatible build).
    #[error("journal row {seq} ({kind}) does not decode: {source}")]
    Undecodable {
        /// The row.
        seq: Seq,
        /// The row's `kind` column.
        kind: String,
        /// Underlying error.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// The row's event version is not one this build can decode (usually a
    /// newer keyferry wrote it).
    #[error(
        "journal row {seq} uses event version {version}, which this build does not know (it reads 1..={supported}); upgrade keyferry"
    )]
    UnknownVersion {
        /// The row.
        seq: Seq,
        /// The row's `version` column.
        version: i64,
        /// [`crate::event::EVENT_VERSION`].
        supported: u32,
    },
    /// A column holds a value of the wrong type (NULL payload, text
    /// checksum, …).
    #[error("journal row {seq} is malformed: {source}")]
    MalformedRow {
        /// The row.
        seq: Seq,
        /// Underlying error.
        #[source]
        source: rusqlite::types::FromSqlError,
    },
}

impl ReadError {
    /// The sequence number of the offending row, for row-level errors.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            ReadError::ChecksumMismatch { seq, .. }
            | ReadError::Undecodable { seq, .. }
            | ReadError::UnknownVersion { seq, .. }
            | ReadError::MalformedRow { seq, .. } => Some(*seq),
            ReadError::Sqlite(_) => None,
        }
    }
}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// SQLite failed.
    #[error("snapshot sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The projection's state could not be encoded.
    #[error("could not encode a {projection} snapshot: {source}")]
    Encode {
        /// The projection's name.
        projection: &'static str,
        /// Underlying error.
        #[source]
        source: rmp_serde::encode::Error,
    },
    /// Recording the [`crate::Event::SnapshotTaken`] event failed.
    #[error("could not journal the snapshot: {0}")]
    Append(#[from] JournalError),
    /// A stored snapshot's checksum does not match its contents.
    #[error("{projection} snapshot covering journal seq {seq} is corrupt: checksum mismatch")]
    ChecksumMismatch {
        /// The projection's name.
        projection: &'static str,
        /// The last event the snapshot covers.
        seq: Seq,
    },
    /// A stored snapshot does not decode as the projection's state.
    #[error("{projection} snapshot covering journal seq {seq} does not decode: {source}")]
    Undecodable {
        /// The projection's name.
        projection: &'static str,
        /// The last event the snapshot covers.
        seq: Seq,
        /// Underlying error.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// A stored snapshot row has a column of the wrong type.
    #[error("{projection} snapshot covering journal seq {seq} is malformed: {source}")]
    MalformedRow {
        /// The projection's name.
        projection: &'static str,
        /// The last event the snapshot covers.
        seq: Seq,
        /// Underlying error.
        #[source]
        source: rusqlite::types::FromSqlError,
    },
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Reading an event failed; a row-level error names its sequence number.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Loading the snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

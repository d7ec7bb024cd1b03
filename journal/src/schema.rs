//! Schema versions and forward migrations.
//!
//! Each component that owns tables in the shared database file (the journal,
//! the keyspace, later the projections) registers an ordered list of
//! [`Migration`]s under its own name. `schema_version` holds one row per
//! component with the highest migration applied; [`migrate`] applies the
//! missing ones in a single `BEGIN IMMEDIATE` transaction, so two processes
//! opening a fresh file at once cannot both create the tables, and a file
//! written by a *newer* keyferry is refused instead of misread.
//!
//! A journal migration may need Rust as well as SQL (projecting the events
//! already stored into tables it creates); that step runs right after its
//! SQL, in the same transaction, whoever calls [`migrate`] for the journal
//! — its own [`crate::Journal::open`] or the keyspace's store.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// One forward step of a component's schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version this migration brings the component to (1, 2, …).
    pub version: u32,
    /// SQL run as a batch inside the migration transaction.
    pub sql: &'static str,
}

/// Why a schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The file was written by a newer keyferry than this one.
    #[error(
        "{component} schema version {found} is newer than this build supports ({supported}); upgrade keyferry"
    )]
    TooNew {
        /// Component name, e.g. `journal`.
        component: &'static str,
        /// Version recorded in the file.
        found: u32,
        /// Highest version this build knows.
        supported: u32,
    },
    /// SQLite refused a statement.
    #[error("sqlite error while migrating the {component} schema: {source}")]
    Sqlite {
        /// Component name.
        component: &'static str,
        /// Underlying error.
        #[source]
        source: rusqlite::Error,
    },
}

/// Returns the version of `component` recorded in the file, 0 if none.
pub fn current_version(conn: &Connection, component: &str) -> rusqlite::Result<u32> {
    let table_exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version')",
        [],
        |r| r.get(0),
    )?;
    if !table_exists {
        return Ok(0);
    }
    let v: Option<u32> = conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.unwrap_or(0))
}

/// Applies every migration of `component` newer than the file's version.
///
/// Returns the version the file is at afterwards.
pub fn migrate(
    conn: &mut Connection,
    component: &'static str,
    migrations: &[Migration],
) -> Result<u32, SchemaError> {
    let wrap = |source| SchemaError::Sqlite { component, source };
    let supported = migrations.last().map_or(0, |m| m.version);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(wrap)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             component TEXT PRIMARY KEY,
             version INTEGER NOT NULL,
             updated_at_ms INTEGER NOT NULL
         )",
    )
    .map_err(wrap)?;
    let found = current_version(&tx, component).map_err(wrap)?;
    if found > supported {
        return Err(SchemaError::TooNew {
            component,
            found,
            supported,
        });
    }
    for m in migrations.iter().filter(|m| m.version > found) {
        tx.execute_batch(m.sql).map_err(wrap)?;
        if component == crate::migrations::COMPONENT {
            crate::migrations::after_sql(&tx, m.version).map_err(wrap)?;
        }
        tx.execute(
            "INSERT INTO schema_version(component, version, updated_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version, updated_at_ms = excluded.updated_at_ms",
            rusqlite::params![component, m.version, crate::now_ms()],
        )
        .map_err(wrap)?;
    }
    tx.commit().map_err(wrap)?;
    Ok(supported.max(found))
}

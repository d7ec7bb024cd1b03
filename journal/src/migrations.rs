//! The journal component's tables and their forward migrations.
//!
//! Run them with [`crate::schema::migrate`]`(conn, COMPONENT, MIGRATIONS)`
//! before appending: [`crate::Journal::open`] does it, and a process that
//! spawns its own writer (the keyspace) runs them next to its own tables.
//!
//! Never edit a migration that has shipped: add a new one, and a fixture
//! journal written by the old version (see `tests/fixtures/`).

use crate::schema::Migration;

/// The component name under which the journal's version is recorded in
/// `schema_version`.
pub const COMPONENT: &str = "journal";

/// The journal's migrations, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    // `seq` is a plain INTEGER PRIMARY KEY (the rowid): SQLite assigns it
    // inside the writing transaction, so several processes appending to one
    // file get distinct, increasing numbers. Rows are never deleted, so
    // rowids are never reused. No secondary index on `journal`: replay
    // reads by `seq`, and every index would slow each append.
    sql: "
        CREATE TABLE journal (
            seq      INTEGER PRIMARY KEY,
            kind     TEXT    NOT NULL,
            version  INTEGER NOT NULL,
            at_ms    INTEGER NOT NULL,
            checksum INTEGER NOT NULL,
            payload  BLOB    NOT NULL
        );
        CREATE TABLE journal_snapshots (
            id         INTEGER PRIMARY KEY,
            projection TEXT    NOT NULL,
            version    INTEGER NOT NULL,
            seq        INTEGER NOT NULL,
            at_ms      INTEGER NOT NULL,
            checksum   INTEGER NOT NULL,
            state      BLOB    NOT NULL
        );
        CREATE INDEX journal_snapshots_by_seq ON journal_snapshots(projection, version, seq);
    ",
}];

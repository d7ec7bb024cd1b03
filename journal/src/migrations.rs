//! The journal component's tables and their forward migrations.
//!
//! Run them with [`crate::schema::migrate`]`(conn, COMPONENT, MIGRATIONS)`
//! before appending: [`crate::Journal::open`] does it, and a process that
//! spawns its own writer (the keyspace) runs them next to its own tables.
//!
//! Never edit a migration that has shipped: add a new one, and a fixture
//! journal written by the old version (see `tests/fixtures/`).

use rusqlite::Connection;

use crate::projections::project_existing;
use crate::schema::Migration;

/// The component name under which the journal's version is recorded in
/// `schema_version`.
pub const COMPONENT: &str = "journal";

/// The journal's migrations, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: 2,
        // The migration registry: SQL projections of the journal, kept up
        // to date in the transaction of every append (see
        // `crate::registry`). Events already in the journal are projected
        // by `after_sql` right after this SQL, in the same migration
        // transaction.
        //
        // Counters are NOT NULL DEFAULT 0 so increments need no coalesce;
        // values not known yet (throttles, seqs, reasons) are NULL.
        // `scan_cursor` holds the u64 SCAN cursor bit-cast to SQLite's i64.
        //
        // The dirty-key table is WITHOUT ROWID: its rows are looked up by
        // (run_id, db, key) on every tracker event, and a rowid table would
        // need a second b-tree for that. The index serves "pending keys of
        // a run, oldest first" as one index range per pending state, and
        // counting keys by state without touching the table.
        //
        // `source_run_id` is the source's INFO run_id as last seen by anyone
        // (scanner or tracker); `scan_source_run_id` is the one the scan
        // cursor was taken under, which alone says whether the cursor is
        // still valid.
        sql: "
        CREATE TABLE migration_runs (
            run_id                  TEXT    PRIMARY KEY,
            source_uri              TEXT    NOT NULL DEFAULT '',
            destination             TEXT    NOT NULL DEFAULT '',
            started_at_ms           INTEGER NOT NULL,
            updated_at_ms           INTEGER NOT NULL,
            status                  TEXT    NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'paused', 'completed', 'aborted', 'failed')),
            status_reason           TEXT,
            scan_db                 INTEGER NOT NULL DEFAULT 0,
            scan_cursor             INTEGER NOT NULL DEFAULT 0,
            scan_done               INTEGER NOT NULL DEFAULT 0,
            source_run_id           TEXT,
            scan_source_run_id      TEXT,
            scanned_keys            INTEGER NOT NULL DEFAULT 0,
            migrated_keys           INTEGER NOT NULL DEFAULT 0,
            skipped_keys            INTEGER NOT NULL DEFAULT 0,
            error_keys              INTEGER NOT NULL DEFAULT 0,
            migrated_bytes          INTEGER NOT NULL DEFAULT 0,
            batches                 INTEGER NOT NULL DEFAULT 0,
            dirty_keys_seen         INTEGER NOT NULL DEFAULT 0,
            dirty_events            INTEGER NOT NULL DEFAULT 0,
            dirty_keys_applied      INTEGER NOT NULL DEFAULT 0,
            dirty_keys_deleted      INTEGER NOT NULL DEFAULT 0,
            dirty_keys_skipped      INTEGER NOT NULL DEFAULT 0,
            needs_sweep             INTEGER NOT NULL DEFAULT 0,
            last_sweep_required_seq INTEGER,
            sweep_reason            TEXT,
            max_rps                 INTEGER,
            max_concurrency         INTEGER,
            batch_keys              INTEGER,
            batch_bytes             INTEGER,
            scan_count              INTEGER,
            tracker_connected       INTEGER NOT NULL DEFAULT 0,
            tracker_stop_seq        INTEGER,
            notify_previous         TEXT,
            last_error              TEXT,
            last_checkpoint_seq     INTEGER,
            last_checkpoint_at_ms   INTEGER,
            last_seq                INTEGER NOT NULL
        );
        CREATE TABLE migration_dirty_keys (
            run_id           TEXT    NOT NULL,
            db               INTEGER NOT NULL,
            key              BLOB    NOT NULL,
            first_seen_seq   INTEGER NOT NULL,
            last_seen_seq    INTEGER NOT NULL,
            first_seen_at_ms INTEGER NOT NULL,
            last_seen_at_ms  INTEGER NOT NULL,
            events_count     INTEGER NOT NULL,
            last_event       TEXT,
            state            TEXT    NOT NULL
                CHECK (state IN ('dirty', 'deleted', 'applied', 'removed', 'skipped')),
            settled_seq      INTEGER,
            PRIMARY KEY (run_id, db, key)
        ) WITHOUT ROWID;
        CREATE INDEX migration_dirty_keys_by_state
            ON migration_dirty_keys(run_id, state, last_seen_seq);
        CREATE TABLE migration_errors (
            seq       INTEGER PRIMARY KEY,
            run_id    TEXT,
            at_ms     INTEGER NOT NULL,
            component TEXT    NOT NULL,
            severity  TEXT    NOT NULL CHECK (severity IN ('warning', 'error')),
            db        INTEGER,
            key       BLOB,
            message   TEXT    NOT NULL
        );
        CREATE INDEX migration_errors_by_run ON migration_errors(run_id, seq);
    ",
    },
    Migration {
        version: 3,
        // The job queue's projection (see `crate::jobs`), kept up to date
        // in the transaction of every append like the registry; job events
        // already in the journal are projected by `after_sql`.
        //
        // `jobs_dequeue` serves "the best queued jobs of a queue" as one
        // index range, in dequeue order (priority DESC, run_at_ms,
        // enqueued_seq), so a dequeue reads only the rows it takes plus
        // those not yet due. `jobs_reclaim` serves "leased jobs whose
        // deadline passed" the same way.
        //
        // A dedupe key is unique among the jobs still alive (queued,
        // leased, failed), not forever: once its job is done or dead, the
        // same step may be queued again. A partial UNIQUE index says
        // exactly that, and is also the index dedupe lookups use.
        sql: "
        CREATE TABLE jobs (
            job_id            TEXT    PRIMARY KEY,
            queue             TEXT    NOT NULL,
            kind              TEXT    NOT NULL DEFAULT '',
            payload           BLOB    NOT NULL,
            priority          INTEGER NOT NULL DEFAULT 0,
            run_at_ms         INTEGER NOT NULL,
            max_attempts      INTEGER NOT NULL,
            attempts          INTEGER NOT NULL DEFAULT 0,
            status            TEXT    NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'leased', 'done', 'failed', 'dead')),
            worker            TEXT,
            epoch             INTEGER NOT NULL DEFAULT 0,
            lease_deadline_ms INTEGER,
            last_error        TEXT,
            dedupe_key        TEXT,
            enqueued_seq      INTEGER NOT NULL,
            updated_seq       INTEGER NOT NULL,
            updated_at_ms     INTEGER NOT NULL
        );
        CREATE INDEX jobs_dequeue
            ON jobs(queue, status, priority DESC, run_at_ms, enqueued_seq);
        CREATE INDEX jobs_reclaim ON jobs(status, lease_deadline_ms);
        CREATE UNIQUE INDEX jobs_dedupe ON jobs(dedupe_key)
            WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'leased', 'failed');
    ",
    },
    Migration {
        version: 4,
        // Settling a key (the dirty applier, once per key) used to move its
        // entry inside an index of every state. Only pending keys are ever
        // looked up by state, so the index now holds just them: settling
        // deletes an entry, and the index stays as small as the backlog.
        sql: "
        DROP INDEX migration_dirty_keys_by_state;
        CREATE INDEX migration_dirty_keys_pending
            ON migration_dirty_keys(run_id, state, last_seen_seq)
            WHERE state IN ('dirty', 'deleted');
    ",
    },
];

/// The part of journal migration `version` that SQL alone cannot do, run by
/// [`crate::schema::migrate`] right after that migration's SQL, inside the
/// same transaction.
pub(crate) fn after_sql(conn: &Connection, version: u32) -> rusqlite::Result<()> {
    match version {
        // Events appended before the registry existed are projected now,
        // so the registry never depends on which build wrote an event.
        2 => project_existing(conn, "migration registry", "%", crate::registry::apply),
        3 => project_existing(conn, "jobs", "job%", crate::jobs::apply),
        _ => Ok(()),
    }
}

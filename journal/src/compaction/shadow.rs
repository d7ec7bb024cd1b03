//! Projection snapshots on disk: the `projection_snapshots` catalog (one
//! row per snapshot) and one shadow table per projection table holding the
//! copied rows of every snapshot, tagged with the snapshot's sequence
//! number.
//!
//! Shadow tables are created when the first snapshot is taken, from the
//! projection tables' current columns, so a table added to
//! [`PROJECTION_TABLES`] is snapshotted without a migration of its own.
//! Their columns carry no declared type: SQLite then stores every value
//! exactly as given (no affinity conversion), so a restored row is
//! identical to the copied one.

use rusqlite::{Connection, params};

use crate::event::Seq;
use crate::projection::Projection;
use crate::rebuild::Cell;
use crate::rebuild::PROJECTION_TABLES;
use crate::rebuild::tables::{Shape, column_list, quoted};
use crate::summary::Summary;

/// The shadow table of projection table `table`.
fn shadow(table: &str) -> String {
    quoted(&format!("projection_snapshot_{table}"))
}

/// Records a snapshot covering `seq`, taken from tables whose
/// [`crate::rebuild::tables::fingerprint`] is `schema`.
pub(super) fn record(conn: &Connection, seq: Seq, schema: u32) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO projection_snapshots (seq, at_ms, schema_checksum) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![seq, crate::now_ms(), schema])
    .map(drop)
}

/// The newest snapshot's sequence number, whatever its schema.
pub(super) fn latest(conn: &Connection) -> rusqlite::Result<Option<Seq>> {
    conn.prepare_cached("SELECT max(seq) FROM projection_snapshots")?
        .query_row([], |r| r.get(0))
}

/// True when the file has the snapshot catalog (its schema component was
/// prepared).
pub(super) fn has_catalog(conn: &Connection) -> rusqlite::Result<bool> {
    has_table(conn, "projection_snapshots")
}

/// Copies every projection table into its shadow under `seq`, creating the
/// shadow tables first if needed. Returns the rows copied.
pub(super) fn copy(conn: &Connection, seq: Seq) -> rusqlite::Result<u64> {
    let mut rows = 0;
    for table in PROJECTION_TABLES {
        let Some(shape) = Shape::of(conn, table)? else {
            continue;
        };
        let columns = column_list(&shape.columns);
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {shadow} (snapshot_seq INTEGER NOT NULL, {columns});
             CREATE INDEX IF NOT EXISTS {index} ON {shadow} (snapshot_seq);",
            shadow = shadow(table),
            index = quoted(&format!("projection_snapshot_{table}_by_seq")),
        ))?;
        rows += conn.execute(
            &format!(
                "INSERT INTO {} (snapshot_seq, {columns}) SELECT ?1, {columns} FROM {}",
                shadow(table),
                quoted(table)
            ),
            [seq],
        )? as u64;
    }
    Ok(rows)
}

/// Copies the rows of the snapshot `seq` from `from`'s shadow tables into
/// the projection tables of `into`, whose shape must match the snapshot's
/// (see [`usable`]). Returns the rows copied.
pub(crate) fn restore(from: &Connection, into: &Connection, seq: Seq) -> rusqlite::Result<u64> {
    let mut copied = 0;
    for table in PROJECTION_TABLES {
        let Some(shape) = Shape::of(into, table)? else {
            continue;
        };
        let columns = column_list(&shape.columns);
        let placeholders = vec!["?"; shape.columns.len()].join(", ");
        let mut insert = into.prepare(&format!(
            "INSERT INTO {} ({columns}) VALUES ({placeholders})",
            quoted(table)
        ))?;
        let mut select = from.prepare(&format!(
            "SELECT {columns} FROM {} WHERE snapshot_seq = ?1",
            shadow(table)
        ))?;
        let mut rows = select.query([seq])?;
        while let Some(row) = rows.next()? {
            let cells = (0..shape.columns.len())
                .map(|i| row.get_ref(i).map(Cell::from))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            insert.execute(rusqlite::params_from_iter(&cells))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// The sequence numbers of the snapshots that can rebuild the projections
/// of a database whose tables have fingerprint `schema`, oldest first:
/// taken from tables of the same fingerprint, with a [`Summary`] snapshot
/// at the same sequence number, and not older than `first - 1` (the events
/// after an older one were compacted away). Empty when the file has no
/// catalog (no snapshot was ever taken).
pub(crate) fn usable(
    conn: &Connection,
    schema: u32,
    first: Option<Seq>,
) -> rusqlite::Result<Vec<Seq>> {
    if !has_catalog(conn)? {
        return Ok(Vec::new());
    }
    let oldest = first.map_or(0, |f| f - 1);
    conn.prepare_cached(
        "SELECT p.seq FROM projection_snapshots p
         WHERE p.schema_checksum = ?1 AND p.seq >= ?2
           AND EXISTS (SELECT 1 FROM journal_snapshots s
                       WHERE s.projection = ?3 AND s.version = ?4 AND s.seq = p.seq)
         ORDER BY p.seq",
    )?
    .query_map(
        params![schema, oldest, Summary::NAME, Summary::VERSION],
        |r| r.get(0),
    )?
    .collect()
}

/// True when `conn` has a table named `name`.
fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
    )?
    .query_row([name], |r| r.get(0))
}

/// Deletes the snapshots older than `seq`, from the catalog and every
/// shadow table.
pub(super) fn delete_before(conn: &Connection, seq: Seq) -> rusqlite::Result<()> {
    for table in PROJECTION_TABLES {
        if has_table(conn, &format!("projection_snapshot_{table}"))? {
            conn.execute(
                &format!("DELETE FROM {} WHERE snapshot_seq < ?1", shadow(table)),
                [seq],
            )?;
        }
    }
    conn.execute("DELETE FROM projection_snapshots WHERE seq < ?1", [seq])
        .map(drop)
}

/// Deletes every snapshot and drops the shadow tables when the snapshots
/// were taken from tables whose fingerprint is not `schema` (all of them
/// then: each snapshot taken under a new schema calls this first). Their
/// columns are those of the old tables, so new copies could not go in
/// them, and no rebuild of this schema can use them.
pub(super) fn forget_other_schemas(conn: &Connection, schema: u32) -> rusqlite::Result<()> {
    let stale: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM projection_snapshots WHERE schema_checksum <> ?1)",
        )?
        .query_row([schema], |r| r.get(0))?;
    if !stale {
        return Ok(());
    }
    conn.execute("DELETE FROM projection_snapshots", [])?;
    for table in PROJECTION_TABLES {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", shadow(table)))?;
    }
    Ok(())
}

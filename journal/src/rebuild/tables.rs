//! The SQL projection tables — the one list that rebuilds, comparisons,
//! snapshots and compaction all walk — and how their shape is read from
//! SQLite rather than repeated here.

use rusqlite::Connection;

use crate::codec::checksum;
use crate::projections;
use crate::read::Entry;

/// Every table [`crate::projections::apply`] writes, in the order they are
/// rebuilt, compared and copied into snapshots.
///
/// A new projection table only needs its name added here: its columns and
/// primary key are read from SQLite, so `replay --check`,
/// projection snapshots and compaction follow without further change. Each
/// table must have a primary key using the default `BINARY` collation (rows
/// are compared in primary-key order).
pub const PROJECTION_TABLES: &[&str] = &[
    "migration_runs",
    "migration_dirty_keys",
    "migration_errors",
    "jobs",
];

/// Folds `entry` into every projection table, inside the caller's
/// transaction — the very function appends call, so a rebuild replays
/// exactly what the live appends did.
pub(crate) fn project(conn: &Connection, entry: &Entry) -> rusqlite::Result<()> {
    projections::apply(conn, entry.seq, entry.at_ms, &entry.event)
}

/// A table's columns, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Every column, in declaration order.
    pub(crate) columns: Vec<String>,
    /// The primary key's columns, in key order.
    pub(crate) key: Vec<String>,
}

impl Shape {
    /// Reads the shape of `table`, or `None` when `conn` has no such table.
    pub(crate) fn of(conn: &Connection, table: &str) -> rusqlite::Result<Option<Shape>> {
        let mut stmt =
            conn.prepare_cached("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")?;
        let mut columns = Vec::new();
        let mut key = Vec::new();
        let mut rows = stmt.query([table])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let position: i64 = row.get(1)?;
            if position > 0 {
                key.push((position, name.clone()));
            }
            columns.push(name);
        }
        if columns.is_empty() {
            return Ok(None);
        }
        key.sort();
        Ok(Some(Shape {
            columns,
            key: key.into_iter().map(|(_, name)| name).collect(),
        }))
    }

    /// The key columns first, then the others: the order in which
    /// [`crate::rebuild::compare`] selects a row.
    pub(crate) fn key_first(&self) -> Vec<&str> {
        let rest = self.columns.iter().filter(|c| !self.key.contains(c));
        self.key.iter().chain(rest).map(String::as_str).collect()
    }
}

/// `name` as an SQL identifier, quoted (names come from SQLite or from
/// [`PROJECTION_TABLES`], but quoting keeps any of them valid).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Comma-separated quoted identifiers.
pub(crate) fn column_list<S: AsRef<str>>(columns: &[S]) -> String {
    columns
        .iter()
        .map(|c| quoted(c.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A checksum of the projection tables' definitions in `conn`. A copy of
/// the tables (a projection snapshot) can be restored into a database only
/// if both have the same fingerprint: a table added, or a column added or
/// changed, makes older copies meaningless.
pub(crate) fn fingerprint(conn: &Connection) -> rusqlite::Result<u32> {
    let mut stmt = conn.prepare_cached(
        "SELECT coalesce((SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1), '')",
    )?;
    let mut definitions = Vec::with_capacity(PROJECTION_TABLES.len() * 2);
    for table in PROJECTION_TABLES {
        let sql: String = stmt.query_row([table], |r| r.get(0))?;
        definitions.push(table.as_bytes().to_vec());
        definitions.push(sql.into_bytes());
    }
    let parts: Vec<&[u8]> = definitions.iter().map(Vec::as_slice).collect();
    Ok(checksum(&parts))
}

//! [`Cell`], one SQLite value exactly as stored, for comparing and copying
//! projection rows whatever their columns hold.
//!
//! rusqlite's own `Value` insists that TEXT be valid UTF-8 and fails on
//! anything else; a tampered or corrupt row may hold any bytes, and a
//! comparison must report such a row, not fail on it. A [`Cell`] keeps TEXT
//! as bytes, and orders values the way SQLite's `ORDER BY` does, so two
//! streams sorted by SQLite can be merged in Rust.

use std::cmp::Ordering;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};

/// One SQLite value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL `NULL`.
    Null,
    /// An INTEGER.
    Integer(i64),
    /// A REAL.
    Real(f64),
    /// TEXT, as its stored bytes (not necessarily UTF-8).
    Text(Vec<u8>),
    /// A BLOB.
    Blob(Vec<u8>),
}

impl Cell {
    /// SQLite's rank of a storage class in comparisons: NULL first, then
    /// numbers (INTEGER and REAL together), TEXT, BLOB.
    fn class(&self) -> u8 {
        match self {
            Cell::Null => 0,
            Cell::Integer(_) | Cell::Real(_) => 1,
            Cell::Text(_) => 2,
            Cell::Blob(_) => 3,
        }
    }

    /// Orders two values as SQLite's `ORDER BY` does with the `BINARY`
    /// collation (the only one projection keys use): by storage class,
    /// numbers by value, TEXT and BLOB byte by byte.
    pub(crate) fn sql_cmp(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Integer(a), Cell::Integer(b)) => a.cmp(b),
            (Cell::Integer(a), Cell::Real(b)) => (*a as f64).total_cmp(b),
            (Cell::Real(a), Cell::Integer(b)) => a.total_cmp(&(*b as f64)),
            (Cell::Real(a), Cell::Real(b)) => a.total_cmp(b),
            (Cell::Text(a), Cell::Text(b)) | (Cell::Blob(a), Cell::Blob(b)) => a.cmp(b),
            _ => self.class().cmp(&other.class()),
        }
    }
}

impl From<ValueRef<'_>> for Cell {
    fn from(value: ValueRef<'_>) -> Self {
        match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Integer(i),
            ValueRef::Real(r) => Cell::Real(r),
            ValueRef::Text(t) => Cell::Text(t.to_vec()),
            ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
        }
    }
}

impl FromSql for Cell {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Cell::from(value))
    }
}

impl ToSql for Cell {
    /// Binds the value with its storage class and bytes unchanged (TEXT is
    /// bound as TEXT even when it is not UTF-8).
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Cell::Null => ValueRef::Null,
            Cell::Integer(i) => ValueRef::Integer(*i),
            Cell::Real(r) => ValueRef::Real(*r),
            Cell::Text(t) => ValueRef::Text(t),
            Cell::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_like_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (v);
             INSERT INTO t VALUES (NULL), (3), (2.5), (-1), ('b'), ('a'), (x'00'), (x'ff'), ('');",
        )
        .unwrap();
        let sorted: Vec<Cell> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut ours = sorted.clone();
        ours.reverse();
        ours.sort_by(Cell::sql_cmp);
        assert_eq!(ours, sorted);
    }

    #[test]
    fn text_that_is_not_utf8_round_trips() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v)").unwrap();
        let bad = Cell::Text(b"a\xffb".to_vec());
        conn.execute("INSERT INTO t VALUES (?1)", [&bad]).unwrap();
        let (back, class): (Cell, String) = conn
            .query_row("SELECT v, typeof(v) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((back, class.as_str()), (bad, "text"));
    }
}

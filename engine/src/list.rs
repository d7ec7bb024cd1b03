//! Lists.
//!
//! Elements sit at dense integer positions: element `i` of a list is the
//! row at `pos = list_head + i`. Pushing or popping at either end touches
//! one row and the key's `list_head`/`len` (O(log n)), and `LINDEX i` is one
//! primary-key lookup, never a scan. Inserting or removing in the middle
//! shifts the shorter side by one position; see [`shift`] for how that
//! avoids SQLite's row-by-row UNIQUE check.

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keys::{self, KeyMeta, NewRow};
use crate::keyvalue::{KeyKind, Side};
use crate::read::{View, rank, rank_range};
use crate::store::Store;
use crate::write::{Tx, Write};

impl Tx<'_> {
    /// Pushes `values` one after another at `side` (so `LPUSH a b c` leaves
    /// `c b a` at the head), creating the list if needed. Returns the new
    /// length.
    pub fn list_push(
        &mut self,
        db: Db,
        key: &[u8],
        side: Side,
        values: &[Vec<u8>],
    ) -> Result<u64, StoreError> {
        let meta = match self.lookup_kind_for_write(db, key, KeyKind::List)? {
            Some(meta) => meta,
            None if values.is_empty() => return Ok(0),
            None => {
                let row = NewRow {
                    kind: KeyKind::List,
                    expire_at_ms: None,
                    string: None,
                };
                let id = self.put_row(db, key, &row)?;
                KeyMeta {
                    id,
                    kind: KeyKind::List,
                    len: 0,
                    list_head: 0,
                    expire_at_ms: None,
                }
            }
        };
        let mut insert = self
            .conn()
            .prepare_cached("INSERT INTO lists (key_id, pos, value) VALUES (?1, ?2, ?3)")?;
        let added = values.len() as i64;
        let head = match side {
            Side::Left => {
                for (i, value) in (1..).zip(values) {
                    insert.execute(params![meta.id, meta.list_head - i, value])?;
                }
                meta.list_head - added
            }
            Side::Right => {
                let tail = meta.list_head + meta.len as i64;
                for (pos, value) in (tail..).zip(values) {
                    insert.execute(params![meta.id, pos, value])?;
                }
                meta.list_head
            }
        };
        let len = meta.len + values.len() as u64;
        keys::set_shape(self.conn(), meta.id, len, head)?;
        Ok(len)
    }

    /// Pops up to `count` elements from `side`, nearest first. A list left
    /// empty is deleted.
    pub fn list_pop(
        &mut self,
        db: Db,
        key: &[u8],
        side: Side,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::List)? else {
            return Ok(Vec::new());
        };
        let n = meta.len.min(count as u64);
        let tail = meta.list_head + meta.len as i64;
        // The popped elements occupy positions first..first+n.
        let (select, first, head) = match side {
            Side::Left => (
                "SELECT value FROM lists WHERE key_id = ?1 AND pos >= ?2 ORDER BY pos LIMIT ?3",
                meta.list_head,
                meta.list_head + n as i64,
            ),
            Side::Right => (
                "SELECT value FROM lists WHERE key_id = ?1 AND pos >= ?2 ORDER BY pos DESC LIMIT ?3",
                tail - n as i64,
                meta.list_head,
            ),
        };
        let popped = self
            .conn()
            .prepare_cached(select)?
            .query_map(params![meta.id, first, n as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<Vec<u8>>>>()?;
        self.conn()
            .prepare_cached("DELETE FROM lists WHERE key_id = ?1 AND pos >= ?2 AND pos < ?3")?
            .execute(params![meta.id, first, first + n as i64])?;
        self.resize(&meta, meta.len - n, head)?;
        Ok(popped)
    }

    /// Inserts `value` so that it becomes element `index` (`0..=len`) of
    /// list `key`. Returns the new length, `None` if the list does not
    /// exist.
    pub fn list_insert(
        &mut self,
        db: Db,
        key: &[u8],
        index: u64,
        value: &[u8],
    ) -> Result<Option<u64>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::List)? else {
            return Ok(None);
        };
        if index > meta.len {
            return Err(StoreError::IndexOutOfRange);
        }
        let at = meta.list_head + index as i64;
        let tail = meta.list_head + meta.len as i64;
        let (pos, head) = if index < meta.len - index {
            // Move the elements before it one step towards the head.
            shift(self.conn(), meta.id, meta.list_head, at - 1, -1)?;
            (at - 1, meta.list_head - 1)
        } else {
            shift(self.conn(), meta.id, at, tail - 1, 1)?;
            (at, meta.list_head)
        };
        self.conn()
            .prepare_cached("INSERT INTO lists (key_id, pos, value) VALUES (?1, ?2, ?3)")?
            .execute(params![meta.id, pos, value])?;
        keys::set_shape(self.conn(), meta.id, meta.len + 1, head)?;
        Ok(Some(meta.len + 1))
    }

    /// Removes element `index` (negative counts from the end) and returns
    /// it; `None` if there is no such element. A list left empty is
    /// deleted.
    pub fn list_remove(
        &mut self,
        db: Db,
        key: &[u8],
        index: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::List)? else {
            return Ok(None);
        };
        let Some(r) = rank(index, meta.len) else {
            return Ok(None);
        };
        let at = meta.list_head + r as i64;
        let tail = meta.list_head + meta.len as i64;
        let removed: Vec<u8> = self
            .conn()
            .prepare_cached("DELETE FROM lists WHERE key_id = ?1 AND pos = ?2 RETURNING value")?
            .query_row(params![meta.id, at], |r| r.get(0))?;
        let head = if r < meta.len - 1 - r {
            // Close the gap from the head side.
            shift(self.conn(), meta.id, meta.list_head, at - 1, 1)?;
            meta.list_head + 1
        } else {
            shift(self.conn(), meta.id, at + 1, tail - 1, -1)?;
            meta.list_head
        };
        self.resize(&meta, meta.len - 1, head)?;
        Ok(Some(removed))
    }

    /// Records a list's new shape, deleting its row once it is empty
    /// (Redis never keeps an empty list).
    fn resize(&self, meta: &KeyMeta, len: u64, head: i64) -> Result<(), StoreError> {
        if len == 0 {
            Ok(keys::delete_row(self.conn(), meta.id)?)
        } else {
            Ok(keys::set_shape(self.conn(), meta.id, len, head)?)
        }
    }
}

impl Store {
    /// `LPUSH`/`RPUSH`: see [`Tx::list_push`]. Resolves to the new length.
    pub fn list_push(&self, db: Db, key: Vec<u8>, side: Side, values: Vec<Vec<u8>>) -> Write<u64> {
        self.write(move |tx| tx.list_push(db, &key, side, &values))
    }

    /// `LPOP`/`RPOP` with a count: see [`Tx::list_pop`].
    pub fn list_pop(&self, db: Db, key: Vec<u8>, side: Side, count: usize) -> Write<Vec<Vec<u8>>> {
        self.write(move |tx| tx.list_pop(db, &key, side, count))
    }
}

/// Moves the elements at positions `first..=last` of list `id` by `delta`.
///
/// `UPDATE lists SET pos = pos + 1` fails: SQLite checks the primary key
/// row by row, so the first row moved collides with its neighbour. Instead
/// the rows first move to key id `-id` (ids are positive, so that range is
/// always empty), then back with their new positions — a uniform shift
/// cannot collide with itself, and the target slots were either vacated
/// by the first step or are the free slot beyond the range's end.
fn shift(conn: &Connection, id: i64, first: i64, last: i64, delta: i64) -> rusqlite::Result<()> {
    if first > last {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE lists SET key_id = -key_id WHERE key_id = ?1 AND pos BETWEEN ?2 AND ?3",
    )?
    .execute(params![id, first, last])?;
    conn.prepare_cached(
        "UPDATE lists SET key_id = -key_id, pos = pos + ?4 WHERE key_id = -?1 AND pos BETWEEN ?2 AND ?3",
    )?
    .execute(params![id, first, last, delta])?;
    Ok(())
}

impl View<'_> {
    /// Element `index` of list `key` (negative counts from the end).
    pub fn list_index(
        &self,
        db: Db,
        key: &[u8],
        index: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::List)? else {
            return Ok(None);
        };
        let Some(r) = rank(index, meta.len) else {
            return Ok(None);
        };
        Ok(self
            .conn()
            .prepare_cached("SELECT value FROM lists WHERE key_id = ?1 AND pos = ?2")?
            .query_row(params![meta.id, meta.list_head + r as i64], |r| r.get(0))
            .optional()?)
    }

    /// Elements `start..=stop` of list `key` (negative indexes count from the
    /// end, as in `LRANGE`). One index range: cost grows with the elements
    /// returned, not with the list.
    pub fn list_range(
        &self,
        db: Db,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::List)? else {
            return Ok(Vec::new());
        };
        let Some((first, count)) = rank_range(start, stop, meta.len) else {
            return Ok(Vec::new());
        };
        let from = meta.list_head + first as i64;
        let mut stmt = self.conn().prepare_cached(
            "SELECT value FROM lists WHERE key_id = ?1 AND pos >= ?2 AND pos < ?3 ORDER BY pos",
        )?;
        let rows = stmt.query_map(params![meta.id, from, from + count as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests;

//! Lists.
//!
//! Elements sit at dense integer positions: element `i` of a list is the
//! row at `pos = list_head + i`. Pushing or popping at either end touches
//! one row and the key's `list_head`/`len` (O(log n)), and `LINDEX i` is one
//! primary-key lookup, never a scan. Inserting or removing in the middle
//! shifts the shorter side by one position; see [`shift`] for how that
//! avoids SQLite's row-by-row UNIQUE check. `LREM` removes any number of
//! scattered elements and closes the gaps from the shorter side, one shift
//! per run of survivors ([`close_gaps`]); `LTRIM` only deletes the ends and
//! moves the head, so kept elements never move. Searches by value
//! (`LINSERT`'s pivot, `LREM`, `LPOS`) scan the list in order, as Redis
//! does.

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keys::{KeyMeta, NewRow};
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
        self.reshape(db, key, &meta, len, head)?;
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
        self.collection_reshaped(db, key, &meta, meta.len - n, head)?;
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
        self.reshape(db, key, &meta, meta.len + 1, head)?;
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
        self.collection_reshaped(db, key, &meta, meta.len - 1, head)?;
        Ok(Some(removed))
    }

    /// `LSET`: replaces element `index` (negative counts from the end).
    /// `Ok(false)` if the list does not exist; [`StoreError::IndexOutOfRange`]
    /// if it has no such element.
    pub fn list_set(
        &mut self,
        db: Db,
        key: &[u8],
        index: i64,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::List)? else {
            return Ok(false);
        };
        let r = rank(index, meta.len).ok_or(StoreError::IndexOutOfRange)?;
        self.conn()
            .prepare_cached("UPDATE lists SET value = ?3 WHERE key_id = ?1 AND pos = ?2")?
            .execute(params![meta.id, meta.list_head + r as i64, value])?;
        Ok(true)
    }

    /// `LINSERT`: inserts `value` before (or after) the first element equal
    /// to `pivot`. Returns the new length, `Some(-1)` when there is no such
    /// element, `None` when the list does not exist.
    pub fn list_insert_at_pivot(
        &mut self,
        db: Db,
        key: &[u8],
        after: bool,
        pivot: &[u8],
        value: &[u8],
    ) -> Result<Option<i64>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::List)? else {
            return Ok(None);
        };
        let found: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT pos FROM lists WHERE key_id = ?1 AND value = ?2 ORDER BY pos LIMIT 1",
            )?
            .query_row(params![meta.id, pivot], |r| r.get(0))
            .optional()?;
        let Some(pos) = found else {
            return Ok(Some(-1));
        };
        let index = (pos - meta.list_head) as u64 + u64::from(after);
        let len = self.list_insert(db, key, index, value)?;
        Ok(len.map(|n| n as i64))
    }

    /// `LREM`: removes up to `|count|` elements equal to `value`, from the
    /// head (`count > 0`), the tail (`count < 0`) or all of them (`0`).
    /// Returns how many were removed; a list left empty is deleted.
    pub fn list_remove_value(
        &mut self,
        db: Db,
        key: &[u8],
        count: i64,
        value: &[u8],
    ) -> Result<u64, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::List)? else {
            return Ok(0);
        };
        let (order, limit) = match count {
            0 => ("ASC", -1),
            n if n > 0 => ("ASC", n),
            n => ("DESC", n.checked_neg().unwrap_or(i64::MAX)),
        };
        let sql = format!(
            "SELECT pos FROM lists WHERE key_id = ?1 AND value = ?2 ORDER BY pos {order} LIMIT ?3"
        );
        let mut removed: Vec<i64> = self
            .conn()
            .prepare_cached(&sql)?
            .query_map(params![meta.id, value, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if removed.is_empty() {
            return Ok(0);
        }
        removed.sort_unstable();
        let mut delete = self
            .conn()
            .prepare_cached("DELETE FROM lists WHERE key_id = ?1 AND pos = ?2")?;
        for pos in &removed {
            delete.execute(params![meta.id, pos])?;
        }
        let head = close_gaps(self.conn(), &meta, &removed)?;
        let n = removed.len() as u64;
        self.collection_reshaped(db, key, &meta, meta.len - n, head)?;
        Ok(n)
    }

    /// `LTRIM`: keeps only elements `start..=stop` (Redis indexing); an
    /// empty range deletes the list. Positions of the kept elements do not
    /// change, only the head moves.
    pub fn list_trim(
        &mut self,
        db: Db,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<(), StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::List)? else {
            return Ok(());
        };
        let Some((first, count)) = rank_range(start, stop, meta.len) else {
            self.discard(&meta, self.shared().inline_free_limit)?;
            return Ok(());
        };
        let from = meta.list_head + first as i64;
        let to = from + count as i64;
        self.conn()
            .prepare_cached("DELETE FROM lists WHERE key_id = ?1 AND (pos < ?2 OR pos >= ?3)")?
            .execute(params![meta.id, from, to])?;
        self.collection_reshaped(db, key, &meta, count, from)
    }

    /// `LMOVE`: pops an element at `from` of `src` and pushes it at `to` of
    /// `dst` (which may be the same list), returning it; `None` when `src`
    /// does not exist. Both keys are type-checked before anything moves,
    /// and a one-element list moved onto itself keeps its row (and TTL).
    pub fn list_move(
        &mut self,
        db: Db,
        src: &[u8],
        dst: &[u8],
        from: Side,
        to: Side,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, src, KeyKind::List)? else {
            return Ok(None);
        };
        if src == dst {
            if meta.len == 1 {
                return self.view().list_index(db, src, 0);
            }
        } else {
            self.lookup_kind_for_write(db, dst, KeyKind::List)?;
        }
        let Some(value) = self.list_pop(db, src, from, 1)?.pop() else {
            return Ok(None);
        };
        self.list_push(db, dst, to, std::slice::from_ref(&value))?;
        Ok(Some(value))
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

/// Closes the gaps left by deleting the elements at `removed` (ascending
/// positions) from list `meta`, shifting whichever side is shorter, and
/// returns the new head.
fn close_gaps(conn: &Connection, meta: &KeyMeta, removed: &[i64]) -> rusqlite::Result<i64> {
    let (first, last) = (removed[0], removed[removed.len() - 1]);
    let tail = meta.list_head + meta.len as i64;
    let k = removed.len() as i64;
    if last - meta.list_head < tail - first {
        // Head side, nearest segment first so each target slot is free:
        // the run just before removed[i] moves up by k - i.
        for (i, pos) in removed.iter().enumerate().rev() {
            let below = if i == 0 {
                meta.list_head
            } else {
                removed[i - 1] + 1
            };
            shift(conn, meta.id, below, pos - 1, k - i as i64)?;
        }
        Ok(meta.list_head + k)
    } else {
        // Tail side: the run just after removed[i] moves down by i + 1.
        for (i, pos) in removed.iter().enumerate() {
            let above = removed.get(i + 1).map_or(tail - 1, |next| next - 1);
            shift(conn, meta.id, pos + 1, above, -(i as i64 + 1))?;
        }
        Ok(meta.list_head)
    }
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

impl View<'_> {
    /// `LPOS`: the indexes of elements equal to `value`. Matching starts
    /// at the `rank`-th match from the head (`rank > 0`) or the tail
    /// (`rank < 0`, never 0), returns at most `count` indexes (0: all), and
    /// compares at most `maxlen` elements from that end (0: all).
    pub fn list_positions(
        &self,
        db: Db,
        key: &[u8],
        value: &[u8],
        rank: i64,
        count: u64,
        maxlen: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::List)? else {
            return Ok(Vec::new());
        };
        let tail = meta.list_head + meta.len as i64;
        let window = if maxlen == 0 {
            meta.len
        } else {
            maxlen.min(meta.len)
        } as i64;
        let sql = if rank > 0 {
            "SELECT pos FROM lists WHERE key_id = ?1 AND value = ?2 AND pos < ?3
             ORDER BY pos LIMIT ?4 OFFSET ?5"
        } else {
            "SELECT pos FROM lists WHERE key_id = ?1 AND value = ?2 AND pos >= ?3
             ORDER BY pos DESC LIMIT ?4 OFFSET ?5"
        };
        let edge = if rank > 0 {
            meta.list_head + window
        } else {
            tail - window
        };
        let limit = if count == 0 {
            -1
        } else {
            i64::try_from(count).unwrap_or(i64::MAX)
        };
        let skip = i64::try_from(rank.unsigned_abs() - 1).unwrap_or(i64::MAX);
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map(params![meta.id, value, edge, limit, skip], |r| {
            Ok((r.get::<_, i64>(0)? - meta.list_head) as u64)
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests;

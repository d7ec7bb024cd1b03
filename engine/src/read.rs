//! Reads: a [`View`] of the keyspace at one instant.
//!
//! A view wraps either a pooled read-only connection inside a read
//! transaction ([`crate::Store::read`]: all its reads see one committed
//! snapshot) or the writer's transaction ([`crate::Tx::view`]: reads inside
//! `MULTI`/`EXEC` see the transaction's own writes). Reads of collections
//! return pages, never a whole key unless the caller asks for every page.
//! Each data type adds its reads in its own module.

use rusqlite::{OptionalExtension, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keys::KeyMeta;
use crate::keyvalue::KeyKind;

/// Read access to the keyspace at time [`View::now`].
pub struct View<'c> {
    conn: &'c rusqlite::Connection,
    now: i64,
}

impl<'c> View<'c> {
    pub(crate) fn new(conn: &'c rusqlite::Connection, now: i64) -> Self {
        Self { conn, now }
    }

    /// The connection the view reads through.
    pub fn conn(&self) -> &'c rusqlite::Connection {
        self.conn
    }

    /// The instant the view treats as "now": keys with
    /// `expire_at_ms <= now` are absent.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The value of string `key`, `None` if it does not exist.
    pub fn string_get(&self, db: Db, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT kind, value FROM keys WHERE db = ?1 AND key = ?2
                 AND (expire_at_ms IS NULL OR expire_at_ms > ?3)",
            )?
            .query_row(params![db.sql(), key, self.now], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .optional()?;
        match row {
            None => Ok(None),
            Some((code, value)) if code == KeyKind::String.code() => {
                Ok(Some(value.unwrap_or_default()))
            }
            Some(_) => Err(StoreError::WrongType),
        }
    }
}

impl View<'_> {
    /// Elements of collection `key` (fields, members, list length), which
    /// must have type `kind`; 0 if it does not exist.
    pub fn len(&self, db: Db, key: &[u8], kind: KeyKind) -> Result<u64, StoreError> {
        Ok(self.lookup_kind(db, key, kind)?.map_or(0, |m| m.len()))
    }

    /// One page of collection `meta` (none: an empty page) in its
    /// primary-key order: `sql` selects from the child table with `?1` =
    /// key id, `?2` = the inclusive lower bound from [`page_start`], `?3` =
    /// the page size.
    pub(crate) fn page<T>(
        &self,
        meta: Option<KeyMeta>,
        sql: &str,
        after: Option<&[u8]>,
        limit: usize,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let Some(meta) = meta else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![meta.id, page_start(after), limit as i64], map)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The smallest byte string sorting strictly after `after` (SQLite compares
/// BLOBs with `memcmp`), or the empty string — the smallest of all — for
/// the first page. Pages are then "elements `>= bound`", one index range.
pub(crate) fn page_start(after: Option<&[u8]>) -> Vec<u8> {
    after.map_or_else(Vec::new, |a| [a, &[0]].concat())
}

/// Redis's index normalisation for `LRANGE`/`ZRANGE`: negative indexes
/// count from the end; the result is the first rank and the number of
/// elements, or `None` for an empty range.
pub(crate) fn rank_range(start: i64, stop: i64, len: u64) -> Option<(u64, u64)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    (start <= stop).then(|| (start as u64, (stop - start + 1) as u64))
}

/// The rank of index `index` (negative counts from the end), if inside a
/// collection of `len` elements.
pub(crate) fn rank(index: i64, len: u64) -> Option<u64> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let rank = if index < 0 { len + index } else { index };
    (0..len).contains(&rank).then_some(rank as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_range_follows_redis() {
        assert_eq!(rank_range(0, -1, 5), Some((0, 5)));
        assert_eq!(rank_range(-2, -1, 5), Some((3, 2)));
        assert_eq!(rank_range(-100, 1, 5), Some((0, 2)));
        assert_eq!(rank_range(2, 100, 5), Some((2, 3)));
        assert_eq!(rank_range(3, 2, 5), None);
        assert_eq!(rank_range(5, 10, 5), None);
        assert_eq!(rank_range(0, -1, 0), None);
    }

    #[test]
    fn rank_counts_negative_indexes_from_the_end() {
        assert_eq!(rank(0, 3), Some(0));
        assert_eq!(rank(-1, 3), Some(2));
        assert_eq!(rank(3, 3), None);
        assert_eq!(rank(-4, 3), None);
    }

    #[test]
    fn page_start_sorts_right_after_the_last_element() {
        assert!(page_start(None).is_empty());
        let bound = page_start(Some(b"ab"));
        assert!(bound.as_slice() > b"ab".as_slice());
        assert!(bound.as_slice() < b"ab\x00\x00".as_slice());
    }
}

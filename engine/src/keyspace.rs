//! Whole-key operations over any type: rename, move, copy, expiry, key
//! listing and sampling, and emptying or swapping databases.
//!
//! Elements hang off the key's row id, so `RENAME` and `MOVE` re-point one
//! `keys` row whatever the key's size (O(1), expiry kept). `COPY` has to
//! duplicate the elements, but does it inside SQLite (`INSERT … SELECT`),
//! so no element passes through Rust. Key listings page through the
//! `keys` table and filter with Redis's glob matcher ([`crate::glob`]).

use rusqlite::{OptionalExtension, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::glob;
use crate::keyvalue::KeyKind;
use crate::read::View;
use crate::write::Tx;

/// A hidden database that holds one side of a `SWAPDB` for an instant:
/// `UNIQUE (db, key)` is checked row by row, so the two databases cannot
/// trade places in one statement.
const SWAPPING: i64 = -3;

/// One line of `INFO keyspace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbKeys {
    /// The database number.
    pub db: i64,
    /// Live (unexpired) keys.
    pub keys: u64,
    /// Live keys with an expiry.
    pub expires: u64,
}

/// The conditions `EXPIRE … NX|XX|GT|LT` put on the key's current
/// expiry. Redis checks them one after the other, so `XX` combines with
/// `GT` or `LT` (the parser refuses the other combinations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ExpireIf {
    /// `NX`: only if the key has no expiry.
    pub(crate) nx: bool,
    /// `XX`: only if it has one.
    pub(crate) xx: bool,
    /// `GT`: only if the new time is later (no expiry counts as infinite,
    /// so `GT` never applies to a persistent key).
    pub(crate) gt: bool,
    /// `LT`: only if the new time is earlier (a persistent key qualifies).
    pub(crate) lt: bool,
}

impl ExpireIf {
    /// Whether a key whose expiry is `current` may get expiry `when`.
    fn allows(self, current: Option<i64>, when: i64) -> bool {
        let refused = (self.nx && current.is_some())
            || (self.xx && current.is_none())
            || (self.gt && current.is_none_or(|c| when <= c))
            || (self.lt && current.is_some_and(|c| when >= c));
        !refused
    }
}

/// One page of a key scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanPage {
    /// Where the next page starts; 0 when the scan is complete.
    pub(crate) cursor: u64,
    /// The live keys of the page that passed the filters.
    pub(crate) keys: Vec<Vec<u8>>,
}

/// What to keep of the keys a scan or listing visits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyFilter<'a> {
    /// A glob pattern the key must match.
    pub(crate) pattern: Option<&'a [u8]>,
    /// A type name (as `TYPE` answers, any case) the key must have.
    pub(crate) kind: Option<&'a [u8]>,
}

impl<'a> KeyFilter<'a> {
    /// A filter on `MATCH pattern` and `TYPE kind`. The pattern `*` is no
    /// filter at all (Redis skips matching for it, so even the empty key
    /// passes).
    pub(crate) fn new(pattern: Option<&'a [u8]>, kind: Option<&'a [u8]>) -> Self {
        Self {
            pattern: pattern.filter(|p| *p != b"*"),
            kind,
        }
    }

    fn keeps(&self, key: &[u8], kind: Option<KeyKind>) -> bool {
        self.pattern.is_none_or(|p| glob::matches(p, key))
            && self
                .kind
                .is_none_or(|t| kind.is_some_and(|k| t.eq_ignore_ascii_case(k.name().as_bytes())))
    }
}

impl View<'_> {
    /// `INFO keyspace`: for each non-empty client database, in order, the
    /// number of live keys and how many of them have an expiry.
    pub fn keyspace_summary(&self) -> Result<Vec<DbKeys>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT db, count(*), count(expire_at_ms) FROM keys
                 WHERE db >= 0 AND (expire_at_ms IS NULL OR expire_at_ms > ?1)
                 GROUP BY db ORDER BY db",
        )?;
        let rows = stmt.query_map([self.now()], |r| {
            Ok(DbKeys {
                db: r.get(0)?,
                keys: r.get::<_, i64>(1)? as u64,
                expires: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Live keys in `db` (expired ones excluded), like `DBSIZE` after
    /// Redis reclaimed its expired keys.
    pub(crate) fn key_count(&self, db: Db) -> Result<u64, StoreError> {
        // Expired keys are few (the sweeper removes them), so counting them
        // through the expiry index and subtracting is cheap.
        let count: i64 = self
            .conn()
            .prepare_cached(
                "SELECT (SELECT count(*) FROM keys WHERE db = ?1)
                      - (SELECT count(*) FROM keys WHERE expire_at_ms <= ?2 AND db = ?1)",
            )?
            .query_row(params![db.sql(), self.now()], |r| r.get(0))?;
        Ok(count as u64)
    }

    /// Every live key of `db` that `filter` keeps, in byte order. A pattern
    /// starting with literal bytes reads only the keys with that prefix.
    pub(crate) fn key_list(
        &self,
        db: Db,
        filter: KeyFilter<'_>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = filter.pattern.map_or(&b""[..], glob::literal_prefix);
        let mut stmt = self.conn().prepare_cached(
            "SELECT key, kind FROM keys WHERE db = ?1 AND key >= ?2
             AND (expire_at_ms IS NULL OR expire_at_ms > ?3) ORDER BY key",
        )?;
        let mut rows = stmt.query(params![db.sql(), prefix, self.now()])?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next()? {
            let key: Vec<u8> = row.get(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            let kind = KeyKind::from_code(row.get(1)?);
            if filter.keeps(&key, kind) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// One page of `SCAN`: visits up to `count` key rows of the whole file
    /// in id order from `cursor`, and returns the live keys of `db` among
    /// them that `filter` keeps. Like Redis, `count` bounds the work, not
    /// the reply: a page may be empty while the scan goes on. Ids never
    /// change while a key lives (`RENAME`/`MOVE` keep them; new keys get
    /// higher ones), so every key present for the whole scan is returned
    /// exactly once.
    pub(crate) fn key_scan(
        &self,
        db: Db,
        cursor: u64,
        count: u64,
        filter: KeyFilter<'_>,
    ) -> Result<ScanPage, StoreError> {
        let Ok(after) = i64::try_from(cursor) else {
            return Ok(ScanPage {
                cursor: 0,
                keys: Vec::new(),
            });
        };
        let limit = i64::try_from(count).unwrap_or(i64::MAX);
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, db, key, kind, expire_at_ms FROM keys WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![after, limit])?;
        let (mut visited, mut last) = (0, after);
        let mut keys = Vec::new();
        while let Some(row) = rows.next()? {
            visited += 1;
            last = row.get(0)?;
            let expire_at_ms: Option<i64> = row.get(4)?;
            if row.get::<_, i64>(1)? != db.sql() || expire_at_ms.is_some_and(|at| at <= self.now())
            {
                continue;
            }
            let key: Vec<u8> = row.get(2)?;
            if filter.keeps(&key, KeyKind::from_code(row.get(3)?)) {
                keys.push(key);
            }
        }
        let cursor = if visited < limit { 0 } else { last as u64 };
        Ok(ScanPage { cursor, keys })
    }

    /// A random live key of `db`, `None` if it has none.
    pub(crate) fn key_random(&self, db: Db) -> Result<Option<Vec<u8>>, StoreError> {
        // A random point in the id range, then the first live key of `db`
        // at or after it (wrapping around once). Not uniform when ids are
        // clustered, which RANDOMKEY does not promise either.
        let sql = "SELECT key FROM keys WHERE db = ?1 AND id >= ?2
                   AND (expire_at_ms IS NULL OR expire_at_ms > ?3) ORDER BY id LIMIT 1";
        let (low, high): (Option<i64>, Option<i64>) = self
            .conn()
            .prepare_cached("SELECT min(id), max(id) FROM keys")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (Some(low), Some(high)) = (low, high) else {
            return Ok(None);
        };
        let start: i64 = self
            .conn()
            .prepare_cached("SELECT ?1 + abs(random() % (?2 - ?1 + 1))")?
            .query_row(params![low, high], |r| r.get(0))?;
        let mut stmt = self.conn().prepare_cached(sql)?;
        for from in [start, low] {
            let key = stmt
                .query_row(params![db.sql(), from, self.now()], |r| r.get(0))
                .optional()?;
            if key.is_some() {
                return Ok(key);
            }
        }
        Ok(None)
    }
}

impl Tx<'_> {
    /// Renames `from` to `to` in `db`, keeping its value and expiry, and
    /// replacing what `to` held unless `only_if_absent` (then nothing
    /// changes when `to` exists). `None` if `from` does not exist,
    /// otherwise whether it was renamed.
    pub(crate) fn key_rename(
        &mut self,
        db: Db,
        from: &[u8],
        to: &[u8],
        only_if_absent: bool,
    ) -> Result<Option<bool>, StoreError> {
        let Some(source) = self.lookup_for_write(db, from)? else {
            return Ok(None);
        };
        if from == to {
            return Ok(Some(!only_if_absent));
        }
        if let Some(target) = self.lookup_for_write(db, to)? {
            if only_if_absent {
                return Ok(Some(false));
            }
            self.discard(&target, self.shared().inline_free_limit)?;
        }
        self.repoint(source.id, db, to)?;
        Ok(Some(true))
    }

    /// Moves `key` from database `from` to `to` (which differ) unless `to`
    /// already has it; returns whether it moved.
    pub(crate) fn key_move(&mut self, from: Db, key: &[u8], to: Db) -> Result<bool, StoreError> {
        let Some(source) = self.lookup_for_write(from, key)? else {
            return Ok(false);
        };
        if self.lookup_for_write(to, key)?.is_some() {
            return Ok(false);
        }
        self.repoint(source.id, to, key)?;
        Ok(true)
    }

    /// Copies `from` in `from_db` to `to` in `to_db` (value and expiry),
    /// replacing what `to` held if `replace`; returns whether it copied
    /// (not when `from` is absent, nor when `to` exists without
    /// `replace`).
    pub(crate) fn key_copy(
        &mut self,
        from_db: Db,
        from: &[u8],
        to_db: Db,
        to: &[u8],
        replace: bool,
    ) -> Result<bool, StoreError> {
        let Some(source) = self.lookup_for_write(from_db, from)? else {
            return Ok(false);
        };
        if let Some(target) = self.lookup_for_write(to_db, to)? {
            if !replace {
                return Ok(false);
            }
            self.discard(&target, self.shared().inline_free_limit)?;
        }
        self.conn()
            .prepare_cached(
                "INSERT INTO keys (db, key, kind, expire_at_ms, len, list_head, value)
                 SELECT ?2, ?3, kind, expire_at_ms, len, list_head, value FROM keys WHERE id = ?1",
            )?
            .execute(params![source.id, to_db.sql(), to])?;
        let id = self.conn().last_insert_rowid();
        if let Some((table, columns)) = element_table(source.kind) {
            let sql = format!(
                "INSERT INTO {table} (key_id, {columns}) SELECT ?2, {columns} FROM {table} WHERE key_id = ?1"
            );
            self.conn()
                .prepare_cached(&sql)?
                .execute(params![source.id, id])?;
        }
        Ok(true)
    }

    /// Sets the expiry of `key` to `when` (Unix ms) if `condition` allows
    /// it; a time at or before now deletes the key. Returns whether the key
    /// exists and the condition held.
    pub(crate) fn key_expire(
        &mut self,
        db: Db,
        key: &[u8],
        when: i64,
        condition: ExpireIf,
    ) -> Result<bool, StoreError> {
        let Some(meta) = self.lookup_for_write(db, key)? else {
            return Ok(false);
        };
        if !condition.allows(meta.expire_at_ms(), when) {
            return Ok(false);
        }
        if when <= self.now() {
            self.discard(&meta, self.shared().inline_free_limit)?;
        } else {
            set_expiry(self, meta.id, Some(when))?;
        }
        Ok(true)
    }

    /// Removes the expiry of `key`; returns whether it had one.
    pub(crate) fn key_persist(&mut self, db: Db, key: &[u8]) -> Result<bool, StoreError> {
        match self.lookup_for_write(db, key)? {
            Some(meta) if meta.expire_at_ms().is_some() => {
                set_expiry(self, meta.id, None)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Deletes every key of `db`. Collections too big to free inside the
    /// write go to the trash in O(1) each; the rest is deleted with one
    /// statement per table, so the cost is that of the rows deleted.
    pub(crate) fn flush_db(&mut self, db: Db) -> Result<(), StoreError> {
        let limit = self.shared().inline_free_limit as i64;
        self.conn()
            .prepare_cached(
                "UPDATE keys SET db = ?3, key = CAST(id AS BLOB), expire_at_ms = NULL
                 WHERE db = ?1 AND len > ?2",
            )?
            .execute(params![db.sql(), limit, crate::db::TRASH])?;
        for kind in [KeyKind::Hash, KeyKind::List, KeyKind::Set, KeyKind::ZSet] {
            if let Some((table, _)) = element_table(kind) {
                let sql = format!(
                    "DELETE FROM {table} WHERE key_id IN (SELECT id FROM keys WHERE db = ?1 AND kind = ?2)"
                );
                self.conn()
                    .prepare_cached(&sql)?
                    .execute(params![db.sql(), kind.code()])?;
            }
        }
        self.conn()
            .prepare_cached("DELETE FROM keys WHERE db = ?1")?
            .execute([db.sql()])?;
        Ok(())
    }

    /// Swaps the contents of databases `a` and `b`.
    pub(crate) fn swap_db(&mut self, a: Db, b: Db) -> Result<(), StoreError> {
        if a == b {
            return Ok(());
        }
        let mut moves = self
            .conn()
            .prepare_cached("UPDATE keys SET db = ?2 WHERE db = ?1")?;
        moves.execute(params![a.sql(), SWAPPING])?;
        moves.execute(params![b.sql(), a.sql()])?;
        moves.execute(params![SWAPPING, b.sql()])?;
        Ok(())
    }

    /// Makes row `id` the key `key` of `db`.
    fn repoint(&self, id: i64, db: Db, key: &[u8]) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE keys SET db = ?2, key = ?3 WHERE id = ?1")?
            .execute(params![id, db.sql(), key])?;
        Ok(())
    }
}

fn set_expiry(tx: &Tx<'_>, id: i64, when: Option<i64>) -> Result<(), StoreError> {
    tx.conn()
        .prepare_cached("UPDATE keys SET expire_at_ms = ?2 WHERE id = ?1")?
        .execute(params![id, when])?;
    Ok(())
}

/// The child table holding elements of `kind` and its columns besides
/// `key_id`; `None` for strings, which have no elements.
fn element_table(kind: KeyKind) -> Option<(&'static str, &'static str)> {
    match kind {
        KeyKind::String => None,
        KeyKind::Hash => Some(("hashes", "field, value")),
        KeyKind::List => Some(("lists", "pos, value")),
        KeyKind::Set => Some(("sets", "member")),
        KeyKind::ZSet => Some(("zsets", "member, score")),
    }
}

#[cfg(test)]
mod tests;

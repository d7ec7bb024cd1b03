//! Key rows: finding a key, creating its row, and getting rid of it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keyvalue::KeyKind;
use crate::read::View;
use crate::schema;
use crate::trash;
use crate::write::Tx;

/// A key's row, without its contents.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMeta {
    pub(crate) id: i64,
    pub(crate) kind: KeyKind,
    pub(crate) len: u64,
    pub(crate) list_head: i64,
    pub(crate) expire_at_ms: Option<i64>,
}

impl KeyMeta {
    /// The key's type.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Elements in a collection (fields, members, list length); 0 for a
    /// string.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the key has no elements, i.e. it is a string (collections
    /// are never stored empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// When the key expires, in Unix milliseconds; `None` if it is
    /// persistent.
    pub fn expire_at_ms(&self) -> Option<i64> {
        self.expire_at_ms
    }

    fn is_expired(&self, now: i64) -> bool {
        self.expire_at_ms.is_some_and(|at| at <= now)
    }

    /// `Some(self)` if the key has type `kind`, `WrongType` otherwise.
    pub(crate) fn expect(self, kind: KeyKind) -> Result<Self, StoreError> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(StoreError::WrongType)
        }
    }
}

/// A `SELECT` of the columns [`from_row`] reads, then `$rest`.
macro_rules! select_meta {
    ($($rest:literal),*) => {
        concat!("SELECT id, kind, len, list_head, expire_at_ms", $($rest),*)
    };
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<KeyMeta> {
    let code: i64 = row.get(1)?;
    let kind = KeyKind::from_code(code)
        .ok_or_else(|| rusqlite::Error::IntegralValueOutOfRange(1, code))?;
    Ok(KeyMeta {
        id: row.get(0)?,
        kind,
        len: row.get::<_, i64>(2)? as u64,
        list_head: row.get(3)?,
        expire_at_ms: row.get(4)?,
    })
}

/// The row of `key` in database column value `db`, expired or not.
pub(crate) fn find(conn: &Connection, db: i64, key: &[u8]) -> rusqlite::Result<Option<KeyMeta>> {
    conn.prepare_cached(select_meta!(" FROM keys WHERE db = ?1 AND key = ?2"))?
        .query_row(params![db, key], from_row)
        .optional()
}

/// The row with `id` if it is still in database column value `db`.
pub(crate) fn find_by_id(conn: &Connection, id: i64, db: i64) -> rusqlite::Result<Option<KeyMeta>> {
    conn.prepare_cached(select_meta!(" FROM keys WHERE id = ?1 AND db = ?2"))?
        .query_row(params![id, db], from_row)
        .optional()
}

/// Rows whose expiry time has passed (staging leases included), oldest
/// first, together with the database they are in.
pub(crate) fn find_expired(
    conn: &Connection,
    now: i64,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, KeyMeta)>> {
    let mut stmt = conn.prepare_cached(select_meta!(
        ", db FROM keys WHERE expire_at_ms IS NOT NULL AND expire_at_ms <= ?1",
        " ORDER BY expire_at_ms LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit as i64], |row| {
        Ok((row.get(5)?, from_row(row)?))
    })?;
    rows.collect()
}

/// What a new or overwritten key row holds, apart from its elements.
pub(crate) struct NewRow<'a> {
    pub(crate) kind: KeyKind,
    pub(crate) expire_at_ms: Option<i64>,
    /// The value of a string; `None` for a collection.
    pub(crate) string: Option<&'a [u8]>,
}

/// Inserts a key row unless `key` already has one; returns the new id.
fn try_insert(
    conn: &Connection,
    db: i64,
    key: &[u8],
    row: &NewRow<'_>,
) -> rusqlite::Result<Option<i64>> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO keys (db, key, kind, expire_at_ms, value) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (db, key) DO NOTHING",
        )?
        .execute(params![
            db,
            key,
            row.kind.code(),
            row.expire_at_ms,
            row.string
        ])?;
    Ok((inserted == 1).then(|| conn.last_insert_rowid()))
}

/// Makes row `id` hold `row` as a key without elements.
fn overwrite(conn: &Connection, id: i64, row: &NewRow<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE keys SET kind = ?2, expire_at_ms = ?3, value = ?4, len = 0, list_head = 0 WHERE id = ?1",
    )?
    .execute(params![id, row.kind.code(), row.expire_at_ms, row.string])?;
    Ok(())
}

/// Records a collection's new length and list head.
pub(crate) fn set_shape(
    conn: &Connection,
    id: i64,
    len: u64,
    list_head: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE keys SET len = ?2, list_head = ?3 WHERE id = ?1")?
        .execute(params![id, len as i64, list_head])?;
    Ok(())
}

/// Deletes every element of key `meta` (nothing for a string).
fn delete_elements(conn: &Connection, meta: &KeyMeta) -> rusqlite::Result<()> {
    if let Some(children) = schema::children(meta.kind) {
        conn.prepare_cached(children.delete_all)?
            .execute([meta.id])?;
    }
    Ok(())
}

/// Deletes key row `id`, which must have no elements left.
pub(crate) fn delete_row(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM keys WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

impl View<'_> {
    /// The live key `key` in `db`: `None` if it does not exist or expired.
    pub fn lookup(&self, db: Db, key: &[u8]) -> Result<Option<KeyMeta>, StoreError> {
        let meta = find(self.conn(), db.sql(), key)?;
        Ok(meta.filter(|m| !m.is_expired(self.now())))
    }

    /// The type of `key`, `None` if it does not exist.
    pub fn key_type(&self, db: Db, key: &[u8]) -> Result<Option<KeyKind>, StoreError> {
        Ok(self.lookup(db, key)?.map(|m| m.kind))
    }

    /// The live key if it has type `kind`; `WrongType` if it has another.
    pub(crate) fn lookup_kind(
        &self,
        db: Db,
        key: &[u8],
        kind: KeyKind,
    ) -> Result<Option<KeyMeta>, StoreError> {
        self.lookup(db, key)?.map(|m| m.expect(kind)).transpose()
    }
}

impl Tx<'_> {
    /// The live key `key` in `db`. A key found expired is removed here, so
    /// the write that follows starts from "absent" and nothing of the old
    /// value can leak into the new one.
    pub fn lookup_for_write(&mut self, db: Db, key: &[u8]) -> Result<Option<KeyMeta>, StoreError> {
        match find(self.conn(), db.sql(), key)? {
            Some(meta) if meta.is_expired(self.now()) => {
                self.discard(&meta, self.shared().inline_free_limit)?;
                self.note_expired();
                Ok(None)
            }
            found => Ok(found),
        }
    }

    /// The live key if it has type `kind` (see [`Tx::lookup_for_write`]);
    /// `WrongType` if it has another.
    pub(crate) fn lookup_kind_for_write(
        &mut self,
        db: Db,
        key: &[u8],
        kind: KeyKind,
    ) -> Result<Option<KeyMeta>, StoreError> {
        self.lookup_for_write(db, key)?
            .map(|m| m.expect(kind))
            .transpose()
    }

    /// Makes `key` a fresh key holding `row` and no elements, whatever it
    /// held before, and returns its id.
    ///
    /// A new key costs one `INSERT` (the common case when importing). An
    /// existing key keeps its row and id when its old elements are few
    /// enough to delete now; a big one goes to the trash (see
    /// [`Tx::discard`]) and the key gets a new row.
    pub(crate) fn put_row(
        &mut self,
        db: Db,
        key: &[u8],
        row: &NewRow<'_>,
    ) -> Result<i64, StoreError> {
        if let Some(id) = try_insert(self.conn(), db.sql(), key, row)? {
            return Ok(id);
        }
        let old = find(self.conn(), db.sql(), key)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        if old.is_expired(self.now()) {
            self.note_expired();
        }
        if old.len > self.shared().inline_free_limit {
            trash::move_to_trash(self.conn(), old.id)?;
            let id = try_insert(self.conn(), db.sql(), key, row)?;
            return Ok(id.ok_or(rusqlite::Error::QueryReturnedNoRows)?);
        }
        delete_elements(self.conn(), &old)?;
        overwrite(self.conn(), old.id, row)?;
        Ok(old.id)
    }

    /// Removes a key: its elements are deleted now if there are at most
    /// `inline_limit` of them, otherwise the row goes to the trash and the
    /// sweeper reaps them in bounded chunks (like Redis's `UNLINK`). Either
    /// way the key is gone from its database when this returns.
    pub(crate) fn discard(&self, meta: &KeyMeta, inline_limit: u64) -> Result<(), StoreError> {
        if meta.len > inline_limit {
            trash::move_to_trash(self.conn(), meta.id)?;
            return Ok(());
        }
        delete_elements(self.conn(), meta)?;
        Ok(delete_row(self.conn(), meta.id)?)
    }
}

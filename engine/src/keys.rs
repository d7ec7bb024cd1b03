//! Key rows: finding a key, creating its row, and getting rid of it.
//!
//! Writes remember the last key row they looked up and reshaped, so that
//! the next write to the same key in the same transaction skips the
//! lookup (see [`LastRow`]).

use std::cell::RefCell;

use keyferry_journal::writer::transaction_epoch;
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

/// The key row the last write on this thread reshaped, for the next write
/// to the same key: a pipeline of `HSET`s, `SADD`s or `LPUSH`es to one
/// key commits in one transaction, and each of them looked the key up
/// again (a tenth of `HSET`'s time with one hot key).
///
/// It is used only while nothing at all can have been written since it
/// was remembered: its [`Stamp`] must still be current. Any write in
/// between, to any table, makes it stale, so its correctness does not
/// depend on knowing which statements touch `keys`.
struct LastRow {
    stamp: Stamp,
    db: i64,
    key: Vec<u8>,
    meta: KeyMeta,
}

/// When a row was read: the journal's transaction epoch (new at every
/// `BEGIN` and rollback on this thread) and the connection's count of rows
/// written, which grows with every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    epoch: u64,
    changes: u64,
}

impl Stamp {
    fn now(conn: &Connection) -> Self {
        Self {
            epoch: transaction_epoch(),
            changes: conn.total_changes(),
        }
    }
}

thread_local! {
    static LAST_ROW: RefCell<Option<LastRow>> = const { RefCell::new(None) };
}

/// The remembered row of `key` in `db`, if it is still current.
fn recall(conn: &Connection, db: i64, key: &[u8]) -> Option<KeyMeta> {
    let meta = LAST_ROW.with(|last| {
        let last = last.borrow();
        let row = last.as_ref()?;
        (row.db == db && row.key == key && row.stamp == Stamp::now(conn)).then(|| row.meta.clone())
    })?;
    // Every test runs this check: a remembered row that differs from the
    // stored one is a bug in whatever wrote in between without counting.
    debug_assert_eq!(
        find(conn, db, key).ok().flatten().as_ref(),
        Some(&meta),
        "a remembered key row went stale"
    );
    Some(meta)
}

/// Keys longer than this are not remembered: the thread keeps the buffer
/// of the longest key it remembered, and hot keys are short.
const MAX_REMEMBERED_KEY: usize = 1024;

/// Remembers that `key` in `db` is row `meta`, as of now.
fn remember(conn: &Connection, db: i64, key: &[u8], meta: &KeyMeta) {
    if key.len() > MAX_REMEMBERED_KEY {
        return;
    }
    LAST_ROW.with(|last| {
        let mut last = last.borrow_mut();
        let stamp = Stamp::now(conn);
        match last.as_mut() {
            Some(row) => {
                row.stamp = stamp;
                row.db = db;
                row.key.clear();
                row.key.extend_from_slice(key);
                row.meta.clone_from(meta);
            }
            None => {
                *last = Some(LastRow {
                    stamp,
                    db,
                    key: key.to_vec(),
                    meta: meta.clone(),
                })
            }
        }
    });
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
        if let Some(meta) = recall(self.conn(), db.sql(), key)
            && !meta.is_expired(self.now())
        {
            return Ok(Some(meta));
        }
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

    /// Records that collection `key` in `db`, looked up as `meta` by this
    /// write, now has `len` elements and its list head at `list_head`.
    /// Nothing else of its row may have changed since the lookup: the
    /// next write to `key` in this transaction reuses `meta` with the new
    /// shape instead of looking the key up again.
    pub(crate) fn reshape(
        &self,
        db: Db,
        key: &[u8],
        meta: &KeyMeta,
        len: u64,
        list_head: i64,
    ) -> Result<(), StoreError> {
        if (len, list_head) != (meta.len, meta.list_head) {
            set_shape(self.conn(), meta.id, len, list_head)?;
        }
        let reshaped = KeyMeta {
            len,
            list_head,
            ..meta.clone()
        };
        remember(self.conn(), db.sql(), key, &reshaped);
        Ok(())
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

#[cfg(test)]
mod tests {
    use keyferry_journal::writer::roll_back_to;

    use super::*;
    use crate::test_support::{b, db, store};

    /// Runs `sql` on the write's connection.
    fn run(tx: &Tx<'_>, sql: &str) -> Result<(), StoreError> {
        tx.conn().execute_batch(sql)?;
        Ok(())
    }

    #[test]
    fn a_reshaped_row_is_reused_until_anything_is_written() {
        let (_dir, store) = store();
        let (reused, after_a_write) = store
            .write(|tx| {
                tx.hash_set(db(0), b"h", vec![(b("f"), b("v"))])?;
                let reused = recall(tx.conn(), 0, b"h");
                tx.hash_set(db(0), b"other", vec![(b("f"), b("v"))])?;
                tx.hash_set(db(0), b"h", vec![(b("g"), b("v"))])?;
                run(tx, "INSERT INTO sets (key_id, member) VALUES (-1, x'00')")?;
                Ok((reused, recall(tx.conn(), 0, b"h")))
            })
            .wait()
            .unwrap();
        assert_eq!(reused.map(|m| (m.kind, m.len)), Some((KeyKind::Hash, 1)));
        assert_eq!(after_a_write, None, "any write makes the row stale");
        let next_transaction = store
            .write(|tx| Ok(recall(tx.conn(), 0, b"h")))
            .wait()
            .unwrap();
        assert_eq!(next_transaction, None);
    }

    #[test]
    fn long_keys_are_not_remembered() {
        let (_dir, store) = store();
        let long = vec![b'k'; MAX_REMEMBERED_KEY + 1];
        let remembered = store
            .write(move |tx| {
                tx.hash_set(db(0), &long, vec![(b("f"), b("v"))])?;
                Ok(recall(tx.conn(), 0, &long))
            })
            .wait()
            .unwrap();
        assert_eq!(remembered, None);
    }

    /// A row remembered inside a savepoint that is rolled back is not
    /// reused: the rolled-back key no longer exists. (Without the epoch
    /// change in `roll_back_to`, `recall`'s check panics here.)
    #[test]
    fn a_rollback_forgets_the_rows_it_undid() {
        let (_dir, store) = store();
        let len = store
            .write(|tx| {
                run(tx, "SAVEPOINT t")?;
                tx.hash_set(db(0), b"h", vec![(b("f"), b("v")), (b("g"), b("v"))])?;
                roll_back_to(tx.conn(), "t")?;
                tx.hash_set(db(0), b"h", vec![(b("x"), b("v"))])?;
                Ok(tx.lookup_for_write(db(0), b"h")?.map(|m| m.len))
            })
            .wait()
            .unwrap();
        assert_eq!(len, Some(1));
    }
}

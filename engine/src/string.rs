//! Strings, stored inline in their key's row (`keys.value`).
//!
//! `SET` of a string over a string (or over nothing) is one upsert
//! statement; only replacing another type, or an expired key, takes the
//! general path that frees old elements. Edits of part of a value
//! (`APPEND`, `SETRANGE`) and partial reads (`STRLEN`, `GETRANGE`) run as
//! SQL over the stored blob, so the value never travels through Rust.
//! SQLite's `||` yields text, so every result is cast back to a blob: its
//! `length`/`substr` must count bytes, not characters. SQLite's `substr`
//! of an empty blob is NULL, which would turn a whole concatenation into
//! NULL, so edits wrap every piece of the old value in `coalesce`.

use rusqlite::{OptionalExtension, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keys::NewRow;
use crate::keyvalue::KeyKind;
use crate::read::View;
use crate::write::Tx;

/// Redis's largest string (`proto-max-bulk-len`, 512 MiB): `APPEND` and
/// `SETRANGE` refuse to grow a value past it.
pub(crate) const MAX_STRING_LEN: u64 = 512 * 1024 * 1024;

/// What writing a string does to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The key becomes persistent (plain `SET`).
    Persist,
    /// The key keeps the expiry it had, if any (`SET … KEEPTTL`).
    Keep,
    /// The key expires at this Unix time in milliseconds.
    At(i64),
}

/// A live string's row id and byte length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StringRow {
    pub(crate) id: i64,
    pub(crate) len: u64,
}

impl View<'_> {
    /// The byte length of string `key`, `None` if it does not exist.
    pub(crate) fn string_len(&self, db: Db, key: &[u8]) -> Result<Option<u64>, StoreError> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT kind, length(value) FROM keys WHERE db = ?1 AND key = ?2
                 AND (expire_at_ms IS NULL OR expire_at_ms > ?3)",
            )?
            .query_row(params![db.sql(), key, self.now()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .optional()?;
        match row {
            None => Ok(None),
            Some((code, len)) if code == KeyKind::String.code() => {
                Ok(Some(len.unwrap_or(0) as u64))
            }
            Some(_) => Err(StoreError::WrongType),
        }
    }

    /// `count` bytes of string `key` from byte `start` (the caller clamps
    /// the range to the value); empty if the key does not exist.
    pub(crate) fn string_slice(
        &self,
        db: Db,
        key: &[u8],
        start: u64,
        count: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let slice = self
            .conn()
            .prepare_cached(
                "SELECT substr(value, ?4, ?5) FROM keys WHERE db = ?1 AND key = ?2 AND kind = ?6
                 AND (expire_at_ms IS NULL OR expire_at_ms > ?3)",
            )?
            .query_row(
                params![
                    db.sql(),
                    key,
                    self.now(),
                    start as i64 + 1,
                    count as i64,
                    KeyKind::String.code()
                ],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?;
        Ok(slice.flatten().unwrap_or_default())
    }
}

impl Tx<'_> {
    /// Makes `key` the string `value`, replacing any old value of any type,
    /// with its TTL set by `expiry`.
    pub(crate) fn string_set(
        &mut self,
        db: Db,
        key: &[u8],
        value: &[u8],
        expiry: Expiry,
    ) -> Result<(), StoreError> {
        let (at, keep) = match expiry {
            Expiry::Persist => (None, false),
            Expiry::Keep => (None, true),
            Expiry::At(at) => (Some(at), false),
        };
        // The common case, one statement: a new key, or a live string
        // overwritten. Anything else (another type whose elements must go,
        // an expired key to count) matches no row and takes the general path.
        let written = self
            .conn()
            .prepare_cached(
                "INSERT INTO keys (db, key, kind, expire_at_ms, value) VALUES (?1, ?2, 0, ?3, ?4)
                 ON CONFLICT (db, key) DO UPDATE SET value = excluded.value,
                     expire_at_ms = CASE WHEN ?5 THEN expire_at_ms ELSE excluded.expire_at_ms END
                 WHERE kind = 0 AND (expire_at_ms IS NULL OR expire_at_ms > ?6)",
            )?
            .execute(params![db.sql(), key, at, value, keep, self.now()])?;
        if written == 1 {
            return Ok(());
        }
        let old = self.lookup_for_write(db, key)?;
        let expire_at_ms = if keep {
            old.and_then(|m| m.expire_at_ms())
        } else {
            at
        };
        self.put_row(
            db,
            key,
            &NewRow {
                kind: KeyKind::String,
                expire_at_ms,
                string: Some(value),
            },
        )?;
        Ok(())
    }

    /// The value of live string `key` (an expired one is removed first),
    /// with its row id for [`Tx::string_replace`]. One statement in the
    /// common case: `INCR` and friends run on it.
    pub(crate) fn string_for_write(
        &mut self,
        db: Db,
        key: &[u8],
    ) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT id, kind, expire_at_ms, value FROM keys WHERE db = ?1 AND key = ?2",
            )?
            .query_row(params![db.sql(), key], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                ))
            })
            .optional()?;
        match row {
            None => Ok(None),
            Some((_, _, Some(at), _)) if at <= self.now() => {
                // Let the general path remove and count the expired key.
                self.lookup_for_write(db, key)?;
                Ok(None)
            }
            Some((id, code, _, value)) if code == KeyKind::String.code() => {
                Ok(Some((id, value.unwrap_or_default())))
            }
            Some(_) => Err(StoreError::WrongType),
        }
    }

    /// The row and length of live string `key`, without reading its value.
    pub(crate) fn string_len_for_write(
        &mut self,
        db: Db,
        key: &[u8],
    ) -> Result<Option<StringRow>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::String)? else {
            return Ok(None);
        };
        let len: Option<i64> = self
            .conn()
            .prepare_cached("SELECT length(value) FROM keys WHERE id = ?1")?
            .query_row([meta.id], |r| r.get(0))?;
        Ok(Some(StringRow {
            id: meta.id,
            len: len.unwrap_or(0) as u64,
        }))
    }

    /// Replaces the value of string row `id`, keeping its TTL.
    pub(crate) fn string_replace(&self, id: i64, value: &[u8]) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE keys SET value = ?2 WHERE id = ?1")?
            .execute(params![id, value])?;
        Ok(())
    }

    /// Appends `suffix` to string row `id`; returns the new length.
    pub(crate) fn string_append(&self, id: i64, suffix: &[u8]) -> Result<u64, StoreError> {
        let len: i64 = self
            .conn()
            .prepare_cached(
                "UPDATE keys SET value = CAST(coalesce(value, x'') || ?2 AS BLOB) WHERE id = ?1
                 RETURNING length(value)",
            )?
            .query_row(params![id, suffix], |r| r.get(0))?;
        Ok(len as u64)
    }

    /// Overwrites string row `id` with `bytes` from byte `offset` on,
    /// padding with zero bytes if the value was shorter than `offset`;
    /// returns the new length.
    pub(crate) fn string_write_at(
        &self,
        id: i64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, StoreError> {
        let len: i64 = self
            .conn()
            .prepare_cached(
                "UPDATE keys SET value = CAST(
                     coalesce(substr(value, 1, ?2), x'')
                     || zeroblob(max(0, ?2 - coalesce(length(value), 0))) || ?3
                     || coalesce(substr(value, ?2 + length(?3) + 1), x'') AS BLOB)
                 WHERE id = ?1 RETURNING length(value)",
            )?
            .query_row(params![id, offset as i64, bytes], |r| r.get(0))?;
        Ok(len as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{b, db, store};

    #[test]
    fn set_overwrites_any_type_and_sets_the_ttl() {
        let (_dir, store) = store();
        store
            .list_push(db(0), b("k"), crate::Side::Left, vec![b("x")])
            .wait()
            .unwrap();
        store
            .write(|tx| tx.string_set(db(0), b"k", b"v", Expiry::At(i64::MAX)))
            .wait()
            .unwrap();
        let meta = store.read(|v| v.lookup(db(0), b"k")).unwrap().unwrap();
        assert_eq!(meta.kind(), KeyKind::String);
        assert_eq!(meta.expire_at_ms(), Some(i64::MAX));
        assert_eq!(
            store.read(|v| v.string_get(db(0), b"k")).unwrap(),
            Some(b("v"))
        );
        store
            .write(|tx| tx.string_set(db(0), b"k", b"w", Expiry::Keep))
            .wait()
            .unwrap();
        let meta = store.read(|v| v.lookup(db(0), b"k")).unwrap().unwrap();
        assert_eq!(meta.expire_at_ms(), Some(i64::MAX), "KEEPTTL keeps it");
        store
            .write(|tx| tx.string_set(db(0), b"k", b"w", Expiry::Persist))
            .wait()
            .unwrap();
        let meta = store.read(|v| v.lookup(db(0), b"k")).unwrap().unwrap();
        assert_eq!(meta.expire_at_ms(), None);
    }

    #[test]
    fn an_expired_key_is_replaced_without_keeping_its_ttl() {
        let (_dir, store) = store();
        store
            .write(|tx| tx.string_set(db(0), b"k", b"old", Expiry::At(1)))
            .wait()
            .unwrap();
        store
            .write(|tx| tx.string_set(db(0), b"k", b"new", Expiry::Keep))
            .wait()
            .unwrap();
        let meta = store.read(|v| v.lookup(db(0), b"k")).unwrap().unwrap();
        assert_eq!(meta.expire_at_ms(), None);
    }

    #[test]
    fn partial_edits_count_bytes_and_keep_binary_data() {
        let (_dir, store) = store();
        let value = b"\x00\xff\xc3".to_vec();
        let (len, appended, padded) = store
            .write(move |tx| {
                tx.string_set(db(0), b"k", &value, Expiry::Persist)?;
                let row = tx.string_len_for_write(db(0), b"k")?.unwrap();
                let appended = tx.string_append(row.id, b"\xa9\x00")?;
                let padded = tx.string_write_at(row.id, 7, b"z")?;
                Ok((row.len, appended, padded))
            })
            .wait()
            .unwrap();
        assert_eq!((len, appended, padded), (3, 5, 8));
        assert_eq!(
            store.read(|v| v.string_get(db(0), b"k")).unwrap(),
            Some(b"\x00\xff\xc3\xa9\x00\x00\x00z".to_vec())
        );
        let inside = store
            .write(|tx| {
                let row = tx.string_len_for_write(db(0), b"k")?.unwrap();
                tx.string_write_at(row.id, 1, b"AB")
            })
            .wait()
            .unwrap();
        assert_eq!(inside, 8);
        assert_eq!(
            store.read(|v| v.string_get(db(0), b"k")).unwrap(),
            Some(b"\x00AB\xa9\x00\x00\x00z".to_vec())
        );
        assert_eq!(store.read(|v| v.string_len(db(0), b"k")).unwrap(), Some(8));
        assert_eq!(
            store.read(|v| v.string_slice(db(0), b"k", 1, 3)).unwrap(),
            b"AB\xa9".to_vec()
        );
        assert_eq!(store.read(|v| v.string_len(db(0), b"none")).unwrap(), None);
    }

    #[test]
    fn edits_of_an_empty_value_work() {
        let (_dir, store) = store();
        let (padded, appended) = store
            .write(|tx| {
                tx.string_set(db(0), b"k", b"", Expiry::Persist)?;
                let row = tx.string_len_for_write(db(0), b"k")?.unwrap();
                let padded = tx.string_write_at(row.id, 2, b"x")?;
                tx.string_set(db(0), b"e", b"", Expiry::Persist)?;
                let row = tx.string_len_for_write(db(0), b"e")?.unwrap();
                Ok((padded, tx.string_append(row.id, b"y")?))
            })
            .wait()
            .unwrap();
        assert_eq!((padded, appended), (3, 1));
        assert_eq!(
            store.read(|v| v.string_get(db(0), b"k")).unwrap(),
            Some(b"\x00\x00x".to_vec())
        );
        assert!(
            store
                .read(|v| v.string_slice(db(0), b"none", 0, 1))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn reads_of_another_type_are_wrongtype() {
        let (_dir, store) = store();
        store
            .list_push(db(0), b("l"), crate::Side::Left, vec![b("x")])
            .wait()
            .unwrap();
        assert!(matches!(
            store.read(|v| v.string_len(db(0), b"l")),
            Err(StoreError::WrongType)
        ));
        assert!(matches!(
            store.write(|tx| tx.string_for_write(db(0), b"l")).wait(),
            Err(StoreError::WrongType)
        ));
    }
}

//! Hashes: field → value rows in the `hashes` table, keyed by the hash's
//! key id and the field bytes.
//!
//! Writes keep `keys.len` equal to the number of fields and delete the key
//! when its last field goes. Reads touch only what the reply needs: a
//! field's length is measured in SQLite (`HSTRLEN`), `HKEYS` never reads
//! values, random fields and scan pages are fetched without loading the
//! rest of the hash.

use rusqlite::{OptionalExtension, params};

use crate::collection::{PickSql, RandomCount, pick};
use crate::db::Db;
use crate::elements;
use crate::error::StoreError;
use crate::keyvalue::{FieldValue, KeyKind, KeyValue};
use crate::read::View;
/// Re-exported for the other collection types' scans.
pub(crate) use crate::scan_cursor::SMALL_SCAN;
use crate::scan_cursor::{self, PageSql};
use crate::write::Tx;

impl View<'_> {
    /// The value of `field` in hash `key`.
    pub fn hash_get(
        &self,
        db: Db,
        key: &[u8],
        field: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Hash)? else {
            return Ok(None);
        };
        Ok(self
            .conn()
            .prepare_cached("SELECT value FROM hashes WHERE key_id = ?1 AND field = ?2")?
            .query_row(params![meta.id, field], |r| r.get(0))
            .optional()?)
    }

    /// The values of `fields` in hash `key`, `None` for each missing one
    /// (all of them when the key does not exist).
    pub fn hash_get_many(
        &self,
        db: Db,
        key: &[u8],
        fields: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Hash)? else {
            return Ok(vec![None; fields.len()]);
        };
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT value FROM hashes WHERE key_id = ?1 AND field = ?2")?;
        let mut values = Vec::with_capacity(fields.len());
        for field in fields {
            values.push(
                stmt.query_row(params![meta.id, field], |r| r.get(0))
                    .optional()?,
            );
        }
        Ok(values)
    }

    /// The byte length of `field`'s value (0 if it or the hash is
    /// missing), measured without reading the value out.
    pub fn hash_strlen(&self, db: Db, key: &[u8], field: &[u8]) -> Result<u64, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Hash)? else {
            return Ok(0);
        };
        let len: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT length(CAST(value AS BLOB)) FROM hashes WHERE key_id = ?1 AND field = ?2",
            )?
            .query_row(params![meta.id, field], |r| r.get(0))
            .optional()?;
        Ok(len.unwrap_or(0) as u64)
    }

    /// Whether hash `key` has `field`.
    pub fn hash_exists(&self, db: Db, key: &[u8], field: &[u8]) -> Result<bool, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Hash)? else {
            return Ok(false);
        };
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM hashes WHERE key_id = ?1 AND field = ?2)",
            )?
            .query_row(params![meta.id, field], |r| r.get(0))?)
    }

    /// Every field of hash `key` in byte order (`HKEYS`), values unread.
    pub fn hash_fields(&self, db: Db, key: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.hash_rows(
            db,
            key,
            "SELECT field FROM hashes WHERE key_id = ?1 ORDER BY field",
            |r| r.get(0),
        )
    }

    /// Every value of hash `key`, in the order of their fields (`HVALS`).
    pub fn hash_values(&self, db: Db, key: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.hash_rows(
            db,
            key,
            "SELECT value FROM hashes WHERE key_id = ?1 ORDER BY field",
            |r| r.get(0),
        )
    }

    /// Every field and value of hash `key`, in field order (`HGETALL`).
    pub fn hash_entries(&self, db: Db, key: &[u8]) -> Result<Vec<FieldValue>, StoreError> {
        self.hash_rows(
            db,
            key,
            "SELECT field, value FROM hashes WHERE key_id = ?1 ORDER BY field",
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Every row `sql` selects for hash `key` (`?1` = its id); none if the
    /// key does not exist.
    fn hash_rows<T>(
        &self,
        db: Db,
        key: &[u8],
        sql: &str,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Hash)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map([meta.id], map)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Up to `limit` field/value pairs of hash `key` in field order, starting
    /// after field `after` (`None`: from the first). Pass the last field
    /// returned to get the next page; a short page is the last.
    pub fn hash_scan(
        &self,
        db: Db,
        key: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<FieldValue>, StoreError> {
        self.page(
            self.lookup_kind(db, key, KeyKind::Hash)?,
            "SELECT field, value FROM hashes WHERE key_id = ?1 AND field >= ?2 ORDER BY field LIMIT ?3",
            after,
            limit,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Random fields of hash `key` with their values (`HRANDFIELD`): see
    /// [`RandomCount`]. Empty if the key does not exist.
    pub fn hash_random(
        &self,
        db: Db,
        key: &[u8],
        count: RandomCount,
    ) -> Result<Vec<FieldValue>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Hash)? else {
            return Ok(Vec::new());
        };
        const SQL: PickSql = PickSql {
            walk: "SELECT field, value FROM hashes WHERE key_id = ?1 ORDER BY field",
            from_start: "SELECT field, value FROM hashes WHERE key_id = ?1 ORDER BY field LIMIT 1 OFFSET ?2",
            from_end: "SELECT field, value FROM hashes WHERE key_id = ?1 ORDER BY field DESC LIMIT 1 OFFSET ?2",
        };
        pick(self.conn(), &meta, count, &SQL, |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// One `HSCAN` page: up to `count` pairs from where `cursor` points,
    /// and the cursor of the next page (0 when the scan is complete); see
    /// the `scan_cursor` module.
    pub fn hash_scan_cursor(
        &self,
        db: Db,
        key: &[u8],
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<FieldValue>), StoreError> {
        const SQL: PageSql = PageSql {
            from: "SELECT field, value FROM hashes WHERE key_id = ?1 AND field >= ?2 ORDER BY field LIMIT ?3",
            skip: "SELECT field, value FROM hashes WHERE key_id = ?1 ORDER BY field LIMIT ?2 OFFSET ?3",
        };
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Hash)? else {
            return Ok((0, Vec::new()));
        };
        scan_cursor::page(
            self,
            &meta,
            (db, key, "hash"),
            cursor,
            count,
            &SQL,
            |r| Ok((r.get(0)?, r.get(1)?)),
            |(field, _): &FieldValue| field.as_slice(),
        )
    }
}

impl Tx<'_> {
    /// Sets fields of hash `key` (creating it), the last value of a repeated
    /// field winning. Returns how many fields are new.
    pub fn hash_set(
        &mut self,
        db: Db,
        key: &[u8],
        pairs: Vec<FieldValue>,
    ) -> Result<u64, StoreError> {
        let meta = self.collection_for_write(db, key, KeyKind::Hash)?;
        let added = elements::append(self.conn(), meta.id, 0, &KeyValue::Hash(pairs))?;
        self.collection_resized(db, key, &meta, meta.len + added)?;
        Ok(added)
    }

    /// Sets `field` only if hash `key` lacks it; returns whether it did.
    pub fn hash_set_nx(
        &mut self,
        db: Db,
        key: &[u8],
        field: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        if self.view().hash_exists(db, key, field)? {
            return Ok(false);
        }
        Ok(self.hash_set(db, key, vec![(field.to_vec(), value.to_vec())])? == 1)
    }

    /// Removes `fields` from hash `key`; returns how many existed. A hash
    /// left without fields is deleted.
    pub fn hash_delete(
        &mut self,
        db: Db,
        key: &[u8],
        fields: &[Vec<u8>],
    ) -> Result<u64, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::Hash)? else {
            return Ok(0);
        };
        let mut delete = self
            .conn()
            .prepare_cached("DELETE FROM hashes WHERE key_id = ?1 AND field = ?2")?;
        let mut removed = 0;
        for field in fields {
            removed += delete.execute(params![meta.id, field])? as u64;
        }
        self.collection_resized(db, key, &meta, meta.len - removed)?;
        Ok(removed)
    }

    /// Replaces `field`'s value with what `update` makes of the current one
    /// (`None`: the field or hash is missing), creating the hash if needed
    /// (`HINCRBY`, `HINCRBYFLOAT`). Returns the value stored; when `update`
    /// refuses, nothing is written.
    pub fn hash_update<E>(
        &mut self,
        db: Db,
        key: &[u8],
        field: &[u8],
        update: impl FnOnce(Option<&[u8]>) -> Result<Vec<u8>, E>,
    ) -> Result<Result<Vec<u8>, E>, StoreError> {
        // WRONGTYPE comes before anything `update` could say, as in Redis.
        let current = self.view().hash_get(db, key, field)?;
        let value = match update(current.as_deref()) {
            Ok(value) => value,
            Err(refused) => return Ok(Err(refused)),
        };
        self.hash_set(db, key, vec![(field.to_vec(), value.clone())])?;
        Ok(Ok(value))
    }
}

#[cfg(test)]
mod tests;

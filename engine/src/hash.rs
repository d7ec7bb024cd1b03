//! Hash reads.

use rusqlite::{OptionalExtension, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keyvalue::{FieldValue, KeyKind};
use crate::read::View;

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
}

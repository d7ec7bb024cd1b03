//! Set reads.

use rusqlite::params;

use crate::db::Db;
use crate::error::StoreError;
use crate::keyvalue::KeyKind;
use crate::read::View;

impl View<'_> {
    /// Whether `member` is in set `key`.
    pub fn set_contains(&self, db: Db, key: &[u8], member: &[u8]) -> Result<bool, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Set)? else {
            return Ok(false);
        };
        Ok(self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM sets WHERE key_id = ?1 AND member = ?2)")?
            .query_row(params![meta.id, member], |r| r.get(0))?)
    }

    /// Up to `limit` members of set `key` in byte order, starting after
    /// `after` (`None`: from the first). Pass the last member returned to
    /// get the next page; a short page is the last.
    pub fn set_scan(
        &self,
        db: Db,
        key: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.page(
            self.lookup_kind(db, key, KeyKind::Set)?,
            "SELECT member FROM sets WHERE key_id = ?1 AND member >= ?2 ORDER BY member LIMIT ?3",
            after,
            limit,
            |r| r.get(0),
        )
    }
}

//! Reads for migration tools: what a key is, paging through a database's
//! keys, and walking a sorted set in `ZRANGE` order without offsets.
//!
//! `keyferry verify` and the migration's safety sweep compare the source
//! Redis with the destination key by key: first the cheap facts
//! ([`View::key_info`]), then the elements in chunks. Most chunked readers
//! they need already exist ([`View::hash_get_many`],
//! [`View::set_contains_many`], [`View::zset_scores`], [`View::list_range`],
//! [`View::string_get`]); this module adds the ones that did not.

use rusqlite::params;

use crate::db::Db;
use crate::error::StoreError;
use crate::keyvalue::{KeyKind, ScoredMember};
use crate::read::{View, page_start};

/// The cheap facts about a live key, as `TYPE`, `STRLEN`/`*LEN`/`*CARD`
/// and `PTTL` would tell them.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    /// The key's type.
    pub kind: KeyKind,
    /// The byte length of a string; the number of fields, members or
    /// elements of a collection.
    pub len: u64,
    /// When the key expires, in Unix milliseconds; `None` if persistent.
    pub expire_at_ms: Option<i64>,
}

impl View<'_> {
    /// The type, length and expiry of `key`; `None` if it does not exist
    /// (an expired key does not).
    pub fn key_info(&self, db: Db, key: &[u8]) -> Result<Option<KeyInfo>, StoreError> {
        let Some(meta) = self.lookup(db, key)? else {
            return Ok(None);
        };
        // A string's row keeps no length (`len` counts elements); measure
        // the value in SQLite rather than reading it out.
        let len = match meta.kind() {
            KeyKind::String => self.string_len(db, key)?.unwrap_or(0),
            _ => meta.len(),
        };
        Ok(Some(KeyInfo {
            kind: meta.kind(),
            len,
            expire_at_ms: meta.expire_at_ms(),
        }))
    }

    /// Up to `limit` live keys of `db` in byte order, starting after
    /// `after` (`None`: from the first). Pass the last key returned to get
    /// the next page; a short page is the last.
    pub fn keys_after(
        &self,
        db: Db,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT key FROM keys WHERE db = ?1 AND key >= ?2
             AND (expire_at_ms IS NULL OR expire_at_ms > ?3) ORDER BY key LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![db.sql(), page_start(after), self.now(), limit as i64],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Up to `limit` members of sorted set `key` with their scores, in
    /// `ZRANGE` order (score, then member bytes), starting right after the
    /// member `after` (`None`: from the lowest). Pass the last pair
    /// returned to get the next page; a short page is the last.
    ///
    /// Unlike [`View::zset_range`], whose cost grows with the start rank
    /// (SQLite keeps no ranks), every page is one index range, so walking
    /// a huge sorted set costs what it returns.
    pub fn zset_range_after(
        &self,
        db: Db,
        key: &[u8],
        after: Option<(f64, &[u8])>,
        limit: usize,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(Vec::new());
        };
        // "(score, member) >= (s, the smallest member after m)" is "after
        // (s, m)"; the first page starts at (-inf, empty), below every pair.
        let (score, member) = after.map_or((f64::NEG_INFINITY, None), |(s, m)| (s, Some(m)));
        let mut stmt = self.conn().prepare_cached(
            "SELECT member, score FROM zsets WHERE key_id = ?1 AND (score, member) >= (?2, ?3)
             ORDER BY score, member LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![meta.id, score, page_start(member), limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests;

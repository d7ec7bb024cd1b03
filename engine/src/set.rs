//! Sets: one row per member in the `sets` table, keyed by the set's key
//! id and the member bytes.
//!
//! Writes keep `keys.len` equal to the number of members and delete the
//! key when its last member goes. Set algebra (`SINTER`, `SUNION`,
//! `SDIFF`, their `STORE` forms, `SINTERCARD`) runs as one SQL statement
//! over the primary key: the `STORE` forms stream the result from the
//! source rows into the destination inside SQLite, so no member passes
//! through Rust, and `SINTERCARD` only counts.

use rusqlite::{params, params_from_iter};

use crate::collection::{PickSql, RandomCount, pick};
use crate::db::{Db, STAGING};
use crate::elements;
use crate::error::StoreError;
use crate::keys::KeyMeta;
use crate::keyvalue::{KeyKind, KeyValue};
use crate::read::View;
use crate::scan_cursor::{self, PageSql};
use crate::write::Tx;

/// A set-algebra operation over keys given in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Members of every set (`SINTER`); a missing key makes it empty.
    Inter,
    /// Members of any set (`SUNION`); missing keys are empty sets.
    Union,
    /// Members of the first set that no other set has (`SDIFF`).
    Diff,
}

/// The sets an operation reads, resolved: `None` when the result is empty
/// whatever the other sets hold, otherwise the SQL selecting the result's
/// members (`?1`, `?2`, … bound to the key ids in `ids`).
struct Plan {
    sql: String,
    ids: Vec<i64>,
}

impl View<'_> {
    /// Whether `member` is in set `key`.
    pub fn set_contains(&self, db: Db, key: &[u8], member: &[u8]) -> Result<bool, StoreError> {
        Ok(self.set_contains_many(db, key, &[member.to_vec()])?[0])
    }

    /// For each of `members`, whether it is in set `key` (`SMISMEMBER`).
    pub fn set_contains_many(
        &self,
        db: Db,
        key: &[u8],
        members: &[Vec<u8>],
    ) -> Result<Vec<bool>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Set)? else {
            return Ok(vec![false; members.len()]);
        };
        let mut stmt = self.conn().prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sets WHERE key_id = ?1 AND member = ?2)",
        )?;
        let mut found = Vec::with_capacity(members.len());
        for member in members {
            found.push(stmt.query_row(params![meta.id, member], |r| r.get(0))?);
        }
        Ok(found)
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

    /// Random members of set `key` (`SRANDMEMBER`): see [`RandomCount`].
    /// Empty if the key does not exist.
    pub fn set_random(
        &self,
        db: Db,
        key: &[u8],
        count: RandomCount,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Set)? else {
            return Ok(Vec::new());
        };
        self.set_pick(&meta, count)
    }

    fn set_pick(&self, meta: &KeyMeta, count: RandomCount) -> Result<Vec<Vec<u8>>, StoreError> {
        const SQL: PickSql = PickSql {
            walk: "SELECT member FROM sets WHERE key_id = ?1 ORDER BY member",
            from_start: "SELECT member FROM sets WHERE key_id = ?1 ORDER BY member LIMIT 1 OFFSET ?2",
            from_end: "SELECT member FROM sets WHERE key_id = ?1 ORDER BY member DESC LIMIT 1 OFFSET ?2",
        };
        pick(self.conn(), meta, count, &SQL, |r| r.get(0))
    }

    /// One `SSCAN` page: up to `count` members from where `cursor`
    /// points, and the next cursor (0 when done); see
    /// the `scan_cursor` module.
    pub fn set_scan_cursor(
        &self,
        db: Db,
        key: &[u8],
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<Vec<u8>>), StoreError> {
        const SQL: PageSql = PageSql {
            from: "SELECT member FROM sets WHERE key_id = ?1 AND member >= ?2 ORDER BY member LIMIT ?3",
            skip: "SELECT member FROM sets WHERE key_id = ?1 ORDER BY member LIMIT ?2 OFFSET ?3",
        };
        let Some(meta) = self.lookup_kind(db, key, KeyKind::Set)? else {
            return Ok((0, Vec::new()));
        };
        scan_cursor::page(
            self,
            &meta,
            (db, key, "set"),
            cursor,
            count,
            &SQL,
            |r| r.get(0),
            Vec::as_slice,
        )
    }

    /// The members of `op` over `keys` (`SMEMBERS` is the intersection of
    /// one set), in no particular order. `WrongType` if any key holds
    /// another type, even when an earlier key already made the result
    /// empty (Redis checks them all first).
    pub fn set_combine(
        &self,
        db: Db,
        op: SetOp,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(plan) = self.set_plan(db, op, keys)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn().prepare_cached(&plan.sql)?;
        let rows = stmt.query_map(params_from_iter(&plan.ids), |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many members the sets `keys` have in common, counting no further
    /// than `limit` (0: no limit) — `SINTERCARD`.
    pub fn set_inter_card(&self, db: Db, keys: &[Vec<u8>], limit: u64) -> Result<u64, StoreError> {
        let Some(plan) = self.set_plan(db, SetOp::Inter, keys)? else {
            return Ok(0);
        };
        let sql = format!(
            "SELECT count(*) FROM ({} LIMIT ?{})",
            plan.sql,
            plan.ids.len() + 1
        );
        let limit = if limit == 0 {
            -1
        } else {
            i64::try_from(limit).unwrap_or(i64::MAX)
        };
        let ids = plan.ids.iter().copied().chain([limit]);
        let count: i64 = self
            .conn()
            .prepare_cached(&sql)?
            .query_row(params_from_iter(ids), |r| r.get(0))?;
        Ok(count as u64)
    }

    /// Resolves `keys` (checking every type first) and builds the query.
    fn set_plan(&self, db: Db, op: SetOp, keys: &[Vec<u8>]) -> Result<Option<Plan>, StoreError> {
        let mut sets = Vec::with_capacity(keys.len());
        for key in keys {
            sets.push(self.lookup_kind(db, key, KeyKind::Set)?);
        }
        let ids = match op {
            SetOp::Inter => {
                let Some(mut sets) = sets.into_iter().collect::<Option<Vec<KeyMeta>>>() else {
                    return Ok(None);
                };
                // Walk the smallest set and probe the others.
                sets.sort_by_key(|m| m.len);
                sets.iter().map(|m| m.id).collect::<Vec<_>>()
            }
            SetOp::Union => sets.iter().flatten().map(|m| m.id).collect(),
            SetOp::Diff => match sets.split_first() {
                Some((Some(first), rest)) => [first.id]
                    .into_iter()
                    .chain(rest.iter().flatten().map(|m| m.id))
                    .collect(),
                _ => return Ok(None),
            },
        };
        if ids.is_empty() {
            return Ok(None);
        }
        Ok(Some(Plan {
            sql: plan_sql(op, ids.len()),
            ids,
        }))
    }
}

/// The SELECT of `op`'s members over `n` key ids bound to `?1..=?n`
/// (for `Inter` and `Diff`, `?1` is the set walked). The others are given
/// as a `VALUES` or `IN` list, so the statement's depth does not grow with
/// the number of keys.
fn plan_sql(op: SetOp, n: usize) -> String {
    let others =
        |sep: &str, wrap: fn(usize) -> String| (2..=n).map(wrap).collect::<Vec<_>>().join(sep);
    match op {
        SetOp::Union => format!(
            "SELECT DISTINCT member FROM sets WHERE key_id IN ({})",
            (1..=n)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ if n == 1 => "SELECT member FROM sets WHERE key_id = ?1".to_owned(),
        SetOp::Inter => format!(
            "SELECT member FROM sets s WHERE key_id = ?1 AND NOT EXISTS (
                 SELECT 1 FROM (VALUES {}) o WHERE NOT EXISTS (
                     SELECT 1 FROM sets t WHERE t.key_id = o.column1 AND t.member = s.member))",
            others(", ", |i| format!("(?{i})"))
        ),
        SetOp::Diff => format!(
            "SELECT member FROM sets s WHERE key_id = ?1 AND NOT EXISTS (
                 SELECT 1 FROM sets t WHERE t.key_id IN ({}) AND t.member = s.member)",
            others(", ", |i| format!("?{i}"))
        ),
    }
}

impl Tx<'_> {
    /// Adds `members` to set `key` (creating it); returns how many were
    /// new.
    pub fn set_add(
        &mut self,
        db: Db,
        key: &[u8],
        members: Vec<Vec<u8>>,
    ) -> Result<u64, StoreError> {
        let meta = self.collection_for_write(db, key, KeyKind::Set)?;
        let added = elements::append(self.conn(), meta.id, 0, &KeyValue::Set(members))?;
        self.collection_resized(db, key, &meta, meta.len + added)?;
        Ok(added)
    }

    /// Removes `members` from set `key`; returns how many were there. A set
    /// left empty is deleted.
    pub fn set_remove(
        &mut self,
        db: Db,
        key: &[u8],
        members: &[Vec<u8>],
    ) -> Result<u64, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::Set)? else {
            return Ok(0);
        };
        let removed = self.set_delete_members(&meta, members)?;
        self.collection_resized(db, key, &meta, meta.len - removed)?;
        Ok(removed)
    }

    fn set_delete_members(&self, meta: &KeyMeta, members: &[Vec<u8>]) -> Result<u64, StoreError> {
        let mut delete = self
            .conn()
            .prepare_cached("DELETE FROM sets WHERE key_id = ?1 AND member = ?2")?;
        let mut removed = 0;
        for member in members {
            removed += delete.execute(params![meta.id, member])? as u64;
        }
        Ok(removed)
    }

    /// Removes and returns up to `count` random distinct members of set
    /// `key` (`SPOP`); popping them all deletes the key.
    pub fn set_pop(&mut self, db: Db, key: &[u8], count: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::Set)? else {
            return Ok(Vec::new());
        };
        let popped = self.view().set_pick(&meta, RandomCount::Distinct(count))?;
        if popped.len() as u64 == meta.len {
            self.discard(&meta, self.shared().inline_free_limit)?;
        } else {
            let removed = self.set_delete_members(&meta, &popped)?;
            self.collection_resized(db, key, &meta, meta.len - removed)?;
        }
        Ok(popped)
    }

    /// Moves `member` from set `src` to set `dst` (`SMOVE`); returns
    /// whether `src` had it. A missing `src` answers `false` before any
    /// type check of `dst`, as in Redis.
    pub fn set_move(
        &mut self,
        db: Db,
        src: &[u8],
        dst: &[u8],
        member: &[u8],
    ) -> Result<bool, StoreError> {
        let Some(source) = self.lookup_for_write(db, src)? else {
            return Ok(false);
        };
        source.expect(KeyKind::Set)?;
        self.lookup_kind_for_write(db, dst, KeyKind::Set)?;
        if src == dst {
            return self.view().set_contains(db, src, member);
        }
        if self.set_remove(db, src, &[member.to_vec()])? == 0 {
            return Ok(false);
        }
        self.set_add(db, dst, vec![member.to_vec()])?;
        Ok(true)
    }

    /// Stores the result of `op` over `sources` in `dst` (`SINTERSTORE`,
    /// `SUNIONSTORE`, `SDIFFSTORE`), replacing whatever `dst` held (any
    /// type, its expiry too); an empty result deletes `dst`. Returns the
    /// result's size.
    ///
    /// The result is built in a hidden staging row straight from the
    /// source rows, then the staging row becomes `dst`: `dst` may be one
    /// of the sources, and is only replaced once the result is complete.
    pub fn set_store(
        &mut self,
        db: Db,
        op: SetOp,
        dst: &[u8],
        sources: &[Vec<u8>],
    ) -> Result<u64, StoreError> {
        let plan = self.view().set_plan(db, op, sources)?;
        let mut len = 0;
        let mut staged = None;
        if let Some(plan) = plan {
            self.conn()
                .prepare_cached("INSERT INTO keys (db, key, kind) VALUES (?1, randomblob(16), ?2)")?
                .execute(params![STAGING, KeyKind::Set.code()])?;
            let id = self.conn().last_insert_rowid();
            let sql = format!(
                "INSERT INTO sets (key_id, member) SELECT ?{}, member FROM ({})",
                plan.ids.len() + 1,
                plan.sql
            );
            len = self
                .conn()
                .prepare_cached(&sql)?
                .execute(params_from_iter(plan.ids.iter().copied().chain([id])))?
                as u64;
            staged = Some(id);
        }
        self.delete_key(db, dst)?;
        if let Some(id) = staged {
            if len == 0 {
                crate::keys::delete_row(self.conn(), id)?;
            } else {
                self.conn()
                    .prepare_cached("UPDATE keys SET db = ?2, key = ?3, len = ?4 WHERE id = ?1")?
                    .execute(params![id, db.sql(), dst, len as i64])?;
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests;

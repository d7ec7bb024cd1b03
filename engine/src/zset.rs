//! Sorted sets. Members are ordered by score, then by member bytes, as in
//! Redis; the primary key `(key_id, member)` serves `ZSCORE`, `ZSCAN` and
//! upserts, the `zsets_by_score (key_id, score, member)` index serves
//! ranks and ranges in both directions.
//!
//! SQLite keeps no ranks, so a rank (`ZRANK`, `ZRANGE` by index) costs a
//! count over the index up to it; everything else is one index range
//! (except lex ranges over several scores, which walk the set as Redis
//! does). The key row's `len` stays exact, and a sorted set left empty is
//! deleted. `ZUNION`/`ZINTER`/`ZDIFF` read their inputs whole (their
//! result may be as big), walking the smallest input and probing the
//! others where they can.

use std::cmp::Ordering;
use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::collection::{PickSql, RandomCount, pick};
use crate::db::Db;
use crate::elements;
use crate::error::StoreError;
use crate::hash::SMALL_SCAN;
use crate::keys::{self, KeyMeta, NewRow};
use crate::keyvalue::{KeyKind, KeyValue, ScoredMember};
use crate::read::{View, rank_range};
use crate::scan_cursor::{self, ScanStart};
use crate::write::Tx;

/// Scores `min..max`; each end inclusive unless marked exclusive (Redis's
/// `(` prefix).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// The lowest score.
    pub min: f64,
    /// True when `min` itself is excluded.
    pub min_exclusive: bool,
    /// The highest score.
    pub max: f64,
    /// True when `max` itself is excluded.
    pub max_exclusive: bool,
}

/// One end of a range of member bytes (`ZRANGEBYLEX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexLimit {
    /// Below every member (`-`).
    NegInf,
    /// Above every member (`+`).
    PosInf,
    /// This member and beyond (`[m`).
    Inclusive(Vec<u8>),
    /// Strictly beyond this member (`(m`).
    Exclusive(Vec<u8>),
}

/// Members from `min` to `max` in byte order. Redis defines such ranges
/// for members that share one score; over several scores the answer is
/// what Redis's walk of its order gives (see `lex_walk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    /// The lower end.
    pub min: LexLimit,
    /// The upper end.
    pub max: LexLimit,
}

/// Redis's `LIMIT offset count` on a score or lex range: a negative offset
/// selects nothing, a negative count means "all the rest".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Members skipped first.
    pub offset: i64,
    /// Members returned at most; negative: no limit.
    pub count: i64,
}

impl Limit {
    /// No limit at all.
    pub const ALL: Limit = Limit {
        offset: 0,
        count: -1,
    };
}

/// A selection of a sorted set's members, as `ZRANGE` and the
/// `ZREMRANGEBY*` commands take it.
#[derive(Debug, Clone, PartialEq)]
pub enum ZRange {
    /// Ranks `start..=stop`, negative ones counting from the end.
    Rank {
        /// The first rank.
        start: i64,
        /// The last rank.
        stop: i64,
    },
    /// Members whose score is in the range.
    Score(ScoreRange, Limit),
    /// Members in the byte range.
    Lex(LexRange, Limit),
}

/// `ZADD`'s options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZAddFlags {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// Count changed scores as well as added members.
    pub ch: bool,
    /// Add the score to the current one (`ZINCRBY`); a single pair only.
    pub incr: bool,
}

/// What `ZADD` answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZAddOutcome {
    /// Members added (plus, with `CH`, members whose score changed).
    Changed(u64),
    /// With `INCR`: the member's new score, `None` when an option
    /// prevented the update.
    Score(Option<f64>),
}

/// How `ZUNION`/`ZINTER` combine the weighted scores of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    /// Their sum.
    #[default]
    Sum,
    /// The lowest.
    Min,
    /// The highest.
    Max,
}

impl Aggregate {
    /// Combines an accumulated score with another. Redis defines
    /// `inf + -inf` as 0 rather than NaN.
    fn apply(self, acc: f64, score: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let sum = acc + score;
                if sum.is_nan() { 0.0 } else { sum }
            }
            Aggregate::Min => acc.min(score),
            Aggregate::Max => acc.max(score),
        }
    }
}

/// The set operation of `ZUNION`, `ZINTER` and `ZDIFF` (and their `STORE`
/// forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Members of any input.
    Union,
    /// Members of every input.
    Inter,
    /// Members of the first input and of no other.
    Diff,
}

/// The key row of a sorted set a command creates: persistent.
const ZSET_ROW: NewRow<'static> = NewRow {
    kind: KeyKind::ZSet,
    expire_at_ms: None,
    string: None,
};

/// The SQL of a selection: extra `WHERE` conditions over `score`/`member`
/// with their arguments, then SQLite's `LIMIT` (-1: none) and `OFFSET`.
struct Query {
    cond: String,
    args: Vec<Value>,
    limit: i64,
    offset: i64,
}

impl Query {
    /// `range` over a sorted set of `len` members; `None` when it selects
    /// nothing (so no SQL needs to run).
    fn new(range: &ZRange, len: u64) -> Option<Query> {
        let mut query = Query {
            cond: String::new(),
            args: Vec::new(),
            limit: -1,
            offset: 0,
        };
        let limit = match range {
            ZRange::Rank { start, stop } => {
                let (first, count) = rank_range(*start, *stop, len)?;
                query.offset = first as i64;
                query.limit = count as i64;
                return Some(query);
            }
            ZRange::Score(scores, limit) => {
                query.bound(
                    "score",
                    if scores.min_exclusive { ">" } else { ">=" },
                    scores.min,
                );
                query.bound(
                    "score",
                    if scores.max_exclusive { "<" } else { "<=" },
                    scores.max,
                );
                limit
            }
            ZRange::Lex(lex, limit) => {
                match &lex.min {
                    LexLimit::NegInf => {}
                    LexLimit::PosInf => return None,
                    LexLimit::Inclusive(m) => query.bound("member", ">=", m.clone()),
                    LexLimit::Exclusive(m) => query.bound("member", ">", m.clone()),
                }
                match &lex.max {
                    LexLimit::PosInf => {}
                    LexLimit::NegInf => return None,
                    LexLimit::Inclusive(m) => query.bound("member", "<=", m.clone()),
                    LexLimit::Exclusive(m) => query.bound("member", "<", m.clone()),
                }
                limit
            }
        };
        if limit.offset < 0 {
            return None;
        }
        query.offset = limit.offset;
        query.limit = if limit.count < 0 { -1 } else { limit.count };
        Some(query)
    }

    fn bound(&mut self, column: &str, op: &str, value: impl Into<Value>) {
        self.cond.push_str(&format!(" AND {column} {op} ?"));
        self.args.push(value.into());
    }

    /// The arguments for `key_id = ?`, the conditions, `LIMIT ? OFFSET ?`.
    fn params(&self, id: i64) -> Vec<Value> {
        let mut all = Vec::with_capacity(self.args.len() + 3);
        all.push(Value::Integer(id));
        all.extend(self.args.iter().cloned());
        all.push(Value::Integer(self.limit));
        all.push(Value::Integer(self.offset));
        all
    }

    /// The selected members and scores, lowest first (highest with `rev`).
    fn select(&self, conn: &Connection, id: i64, rev: bool) -> rusqlite::Result<Vec<ScoredMember>> {
        let dir = if rev { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT member, score FROM zsets WHERE key_id = ?{} ORDER BY score {dir}, member {dir} LIMIT ? OFFSET ?",
            self.cond
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(self.params(id)), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect()
    }

    /// Copies the selected members into the empty sorted set `to`
    /// (the limit counting from the lowest, or the highest with `rev`)
    /// inside SQLite, so nothing passes through memory; returns how many.
    fn copy(&self, conn: &Connection, id: i64, rev: bool, to: i64) -> rusqlite::Result<u64> {
        let dir = if rev { "DESC" } else { "ASC" };
        let sql = format!(
            "INSERT INTO zsets (key_id, member, score) SELECT {to}, member, score FROM zsets
             WHERE key_id = ?{} ORDER BY score {dir}, member {dir} LIMIT ? OFFSET ?",
            self.cond
        );
        let copied = conn
            .prepare_cached(&sql)?
            .execute(params_from_iter(self.params(id)))?;
        Ok(copied as u64)
    }

    fn count(&self, conn: &Connection, id: i64) -> rusqlite::Result<u64> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM zsets WHERE key_id = ?{} LIMIT ? OFFSET ?)",
            self.cond
        );
        conn.prepare_cached(&sql)?
            .query_row(params_from_iter(self.params(id)), |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    }

    /// Deletes the selected members (the limit counting from the lowest);
    /// returns how many.
    fn delete(&self, conn: &Connection, id: i64) -> rusqlite::Result<u64> {
        let sql = format!(
            "DELETE FROM zsets WHERE key_id = ?1 AND member IN (SELECT member FROM zsets
             WHERE key_id = ?1{} ORDER BY score, member LIMIT ? OFFSET ?)",
            self.cond
        );
        let changed = conn
            .prepare_cached(&sql)?
            .execute(params_from_iter(self.params(id)))?;
        Ok(changed as u64)
    }
}

/// Orders by score, then member bytes (Redis's order: scores are never
/// NaN, and -0 ties with 0 as C's `<` sees them).
fn by_score(a: &ScoredMember, b: &ScoredMember) -> Ordering {
    a.1.partial_cmp(&b.1)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.0.cmp(&b.0))
}

impl LexLimit {
    /// Whether `member` is on the inner side of this limit used as the
    /// minimum.
    fn admits_from_below(&self, member: &[u8]) -> bool {
        match self {
            LexLimit::NegInf => true,
            LexLimit::PosInf => false,
            LexLimit::Inclusive(m) => member >= m.as_slice(),
            LexLimit::Exclusive(m) => member > m.as_slice(),
        }
    }

    /// Whether `member` is on the inner side of this limit used as the
    /// maximum.
    fn admits_from_above(&self, member: &[u8]) -> bool {
        match self {
            LexLimit::NegInf => false,
            LexLimit::PosInf => true,
            LexLimit::Inclusive(m) => member <= m.as_slice(),
            LexLimit::Exclusive(m) => member < m.as_slice(),
        }
    }
}

impl LexRange {
    /// Redis's `zslIsInLexRange` pre-check: a range that can hold nothing.
    fn is_empty(&self) -> bool {
        match (&self.min, &self.max) {
            (LexLimit::PosInf, _) | (_, LexLimit::NegInf) => true,
            (LexLimit::NegInf, _) | (_, LexLimit::PosInf) => false,
            (LexLimit::Inclusive(a), LexLimit::Inclusive(b)) => a > b,
            (
                LexLimit::Inclusive(a) | LexLimit::Exclusive(a),
                LexLimit::Inclusive(b) | LexLimit::Exclusive(b),
            ) => a >= b,
        }
    }
}

/// Whether sorted set `id` holds more than one distinct score, so member
/// order differs from Redis's order (two index lookups).
fn mixed_scores(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT min(score) < max(score) FROM zsets WHERE key_id = ?1")?
        .query_row([id], |r| Ok(r.get::<_, Option<bool>>(0)?.unwrap_or(false)))
}

/// A lex range over a sorted set with several scores, answered the way
/// Redis walks its (score, member) order, since the SQL filter would not
/// match it there: start at the first member (last with `rev`) inside the
/// near limit, skip `offset` members unchecked, then take members while
/// they stay inside the far limit. Reads the set in order up to the end of
/// the answer.
fn lex_walk(
    conn: &Connection,
    id: i64,
    lex: &LexRange,
    limit: Limit,
    rev: bool,
) -> rusqlite::Result<Vec<ScoredMember>> {
    if lex.is_empty() || limit.offset < 0 {
        return Ok(Vec::new());
    }
    // Redis first checks the set's two ends against the range.
    let end = |dir: &str| {
        conn.prepare_cached(&format!(
            "SELECT member FROM zsets WHERE key_id = ?1 ORDER BY score {dir}, member {dir} LIMIT 1"
        ))?
        .query_row([id], |r| r.get::<_, Vec<u8>>(0))
    };
    if !lex.max.admits_from_above(&end("ASC")?) || !lex.min.admits_from_below(&end("DESC")?) {
        return Ok(Vec::new());
    }
    let above_min = |m: &[u8]| lex.min.admits_from_below(m);
    let below_max = |m: &[u8]| lex.max.admits_from_above(m);
    // The walk starts inside its near limit and stops past its far one.
    type Test<'a> = &'a dyn Fn(&[u8]) -> bool;
    let (near, far): (Test<'_>, Test<'_>) = if rev {
        (&below_max, &above_min)
    } else {
        (&above_min, &below_max)
    };
    let dir = if rev { "DESC" } else { "ASC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT member, score FROM zsets WHERE key_id = ?1 ORDER BY score {dir}, member {dir}"
    ))?;
    let mut rows = stmt.query_map([id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, f64>(1)?)))?;
    let mut first = None;
    for row in rows.by_ref() {
        let row = row?;
        if near(&row.0) {
            first = Some(row);
            break;
        }
    }
    let Some(first) = first.filter(|(m, _)| far(m)) else {
        return Ok(Vec::new());
    };
    let take = usize::try_from(limit.count).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for row in std::iter::once(Ok(first))
        .chain(rows)
        .skip(limit.offset as usize)
    {
        let row = row?;
        if out.len() == take || !far(&row.0) {
            break;
        }
        out.push(row);
    }
    Ok(out)
}

fn score_of(conn: &Connection, id: i64, member: &[u8]) -> rusqlite::Result<Option<f64>> {
    conn.prepare_cached("SELECT score FROM zsets WHERE key_id = ?1 AND member = ?2")?
        .query_row(params![id, member], |r| r.get(0))
        .optional()
}

/// One input of a set operation: a sorted set, or a plain set whose
/// members all score 1.
struct Source {
    meta: KeyMeta,
    weight: f64,
}

impl Source {
    /// The member's weighted score, if it is a member. Redis turns the
    /// NaN of `0 * inf` into 0.
    fn score(&self, conn: &Connection, member: &[u8]) -> rusqlite::Result<Option<f64>> {
        let raw = if self.meta.kind == KeyKind::ZSet {
            score_of(conn, self.meta.id, member)?
        } else {
            conn.prepare_cached("SELECT 1.0 FROM sets WHERE key_id = ?1 AND member = ?2")?
                .query_row(params![self.meta.id, member], |r| r.get(0))
                .optional()?
        };
        Ok(raw.map(|s| self.weigh(s)))
    }

    fn weigh(&self, score: f64) -> f64 {
        let weighted = score * self.weight;
        if weighted.is_nan() { 0.0 } else { weighted }
    }

    /// Every member with its weighted score.
    fn all(&self, conn: &Connection) -> rusqlite::Result<Vec<ScoredMember>> {
        let sql = if self.meta.kind == KeyKind::ZSet {
            "SELECT member, score FROM zsets WHERE key_id = ?1"
        } else {
            "SELECT member, 1.0 FROM sets WHERE key_id = ?1"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([self.meta.id], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, self.weigh(r.get(1)?)))
        })?;
        rows.collect()
    }
}

impl View<'_> {
    /// The score of `member` in sorted set `key`.
    pub fn zset_score(&self, db: Db, key: &[u8], member: &[u8]) -> Result<Option<f64>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(None);
        };
        Ok(score_of(self.conn(), meta.id, member)?)
    }

    /// The scores of `members` (`ZMSCORE`), `None` for non-members.
    pub fn zset_scores(
        &self,
        db: Db,
        key: &[u8],
        members: &[Vec<u8>],
    ) -> Result<Vec<Option<f64>>, StoreError> {
        let meta = self.lookup_kind(db, key, KeyKind::ZSet)?;
        members
            .iter()
            .map(|m| match &meta {
                Some(meta) => Ok(score_of(self.conn(), meta.id, m)?),
                None => Ok(None),
            })
            .collect()
    }

    /// The rank of `member` (0 = lowest score; with `rev`, 0 = highest).
    pub fn zset_rank(
        &self,
        db: Db,
        key: &[u8],
        member: &[u8],
        rev: bool,
    ) -> Result<Option<u64>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(None);
        };
        let Some(score) = score_of(self.conn(), meta.id, member)? else {
            return Ok(None);
        };
        let below: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM zsets WHERE key_id = ?1 AND (score, member) < (?2, ?3)",
            )?
            .query_row(params![meta.id, score, member], |r| r.get(0))?;
        let below = below as u64;
        Ok(Some(if rev { meta.len - 1 - below } else { below }))
    }

    /// Members of `range`, lowest score first (`rev`: highest first, and
    /// rank ranges count from the highest). Score and lex ranges are read
    /// from the `min` end ascending or from the `max` end descending.
    pub fn zset_select(
        &self,
        db: Db,
        key: &[u8],
        range: &ZRange,
        rev: bool,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(Vec::new());
        };
        if let ZRange::Lex(lex, limit) = range
            && mixed_scores(self.conn(), meta.id)?
        {
            return Ok(lex_walk(self.conn(), meta.id, lex, *limit, rev)?);
        }
        match Query::new(range, meta.len) {
            Some(query) => Ok(query.select(self.conn(), meta.id, rev)?),
            None => Ok(Vec::new()),
        }
    }

    /// How many members `range` selects (`ZCOUNT`, `ZLEXCOUNT`).
    pub fn zset_count(&self, db: Db, key: &[u8], range: &ZRange) -> Result<u64, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(0);
        };
        if let ZRange::Lex(lex, limit) = range
            && mixed_scores(self.conn(), meta.id)?
        {
            return Ok(lex_walk(self.conn(), meta.id, lex, *limit, false)?.len() as u64);
        }
        match Query::new(range, meta.len) {
            Some(query) => Ok(query.count(self.conn(), meta.id)?),
            None => Ok(0),
        }
    }

    /// Members ranked `start..=stop` (negative ranks count from the end,
    /// as in `ZRANGE`), lowest score first. Cost grows with `start` (SQLite
    /// keeps no ranks), so stream a whole big key with [`View::zset_scan`]
    /// or [`View::zset_range_by_score`] instead.
    pub fn zset_range(
        &self,
        db: Db,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        self.zset_select(db, key, &ZRange::Rank { start, stop }, false)
    }

    /// Up to `limit` members with `min <= score <= max`, lowest first.
    pub fn zset_range_by_score(
        &self,
        db: Db,
        key: &[u8],
        min: f64,
        max: f64,
        limit: usize,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let scores = ScoreRange {
            min,
            min_exclusive: false,
            max,
            max_exclusive: false,
        };
        let limit = Limit {
            offset: 0,
            count: i64::try_from(limit).unwrap_or(i64::MAX),
        };
        self.zset_select(db, key, &ZRange::Score(scores, limit), false)
    }

    /// Up to `limit` members and scores of sorted set `key` in member byte
    /// order, starting after member `after` (`None`: from the first). Pass
    /// the last member returned to get the next page; a short page is the
    /// last.
    pub fn zset_scan(
        &self,
        db: Db,
        key: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        self.page(
            self.lookup_kind(db, key, KeyKind::ZSet)?,
            "SELECT member, score FROM zsets WHERE key_id = ?1 AND member >= ?2 ORDER BY member LIMIT ?3",
            after,
            limit,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// One `ZSCAN` page: up to `count` members with their scores from
    /// where `cursor` points (see [`crate::scan_cursor`]), and the cursor
    /// of the next page (0 when the scan is complete). A sorted set of at
    /// most [`SMALL_SCAN`] members comes whole and in score order, as from
    /// Redis's compact encoding; bigger ones are walked in member order.
    pub fn zset_scan_cursor(
        &self,
        db: Db,
        key: &[u8],
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<ScoredMember>), StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok((0, Vec::new()));
        };
        if meta.len <= SMALL_SCAN {
            return Ok((0, self.zset_range(db, key, 0, -1)?));
        }
        let start = scan_cursor::resume(db, key, "zset", cursor);
        let mut page = match &start {
            ScanStart::Skip(n) => self
                .conn()
                .prepare_cached(
                    "SELECT member, score FROM zsets WHERE key_id = ?1 ORDER BY member LIMIT ?2 OFFSET ?3",
                )?
                .query_map(params![meta.id, count as i64 + 1, *n as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?,
            ScanStart::After(last) => self.zset_scan(db, key, Some(last), count + 1)?,
            ScanStart::Beginning => self.zset_scan(db, key, None, count + 1)?,
        };
        if page.len() <= count {
            return Ok((0, page));
        }
        page.truncate(count);
        let before = match start {
            ScanStart::Skip(n) => n,
            _ => cursor & u64::from(u32::MAX),
        };
        let (last, _) = page.last().expect("a page longer than its limit");
        let next = scan_cursor::issue(db, key, "zset", before + count as u64, last);
        Ok((next, page))
    }

    /// Random members with their scores (`ZRANDMEMBER`): see
    /// [`RandomCount`]; asking for at least every member distinct returns
    /// them highest score first, as Redis does for a small sorted set.
    /// Empty if the key does not exist.
    pub fn zset_random(
        &self,
        db: Db,
        key: &[u8],
        count: RandomCount,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(Vec::new());
        };
        // Highest first: "every member" then comes in Redis's order.
        const SQL: PickSql = PickSql {
            walk: "SELECT member, score FROM zsets WHERE key_id = ?1 ORDER BY score DESC, member DESC",
            from_start: "SELECT member, score FROM zsets WHERE key_id = ?1
                         ORDER BY score DESC, member DESC LIMIT 1 OFFSET ?2",
            from_end: "SELECT member, score FROM zsets WHERE key_id = ?1
                       ORDER BY score, member LIMIT 1 OFFSET ?2",
        };
        pick(self.conn(), &meta, count, &SQL, |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// The inputs of a set operation, with their weights (absent keys
    /// dropped); `WrongType` for a key that is neither a set nor a sorted
    /// set.
    fn zset_sources(
        &self,
        db: Db,
        keys: &[Vec<u8>],
        weights: &[f64],
    ) -> Result<Vec<Option<Source>>, StoreError> {
        keys.iter()
            .enumerate()
            .map(|(i, key)| {
                let Some(meta) = self.lookup(db, key)? else {
                    return Ok(None);
                };
                if meta.kind != KeyKind::ZSet && meta.kind != KeyKind::Set {
                    return Err(StoreError::WrongType);
                }
                let weight = weights.get(i).copied().unwrap_or(1.0);
                Ok(Some(Source { meta, weight }))
            })
            .collect()
    }

    /// `ZUNION`/`ZINTER`/`ZDIFF` of `keys` (sets count as sorted sets
    /// whose members score 1): the result in score order. `weights` (one
    /// per key, or empty for all 1) multiply each input's scores;
    /// `aggregate` combines a member's scores (`Diff` keeps the first
    /// input's score and ignores both).
    pub fn zset_combine(
        &self,
        db: Db,
        keys: &[Vec<u8>],
        weights: &[f64],
        aggregate: Aggregate,
        op: SetOp,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let sources = self.zset_sources(db, keys, weights)?;
        let conn = self.conn();
        let mut result: Vec<ScoredMember> = match op {
            SetOp::Union => {
                // Accumulated smallest input first, the order Redis sorts
                // its inputs into (it matters: `inf + -inf` counts as 0).
                let mut present: Vec<Source> = sources.into_iter().flatten().collect();
                present.sort_by_key(|s| s.meta.len);
                let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
                let mut order: Vec<Vec<u8>> = Vec::new();
                for source in &present {
                    for (member, score) in source.all(conn)? {
                        match acc.get_mut(&member) {
                            Some(total) => *total = aggregate.apply(*total, score),
                            None => {
                                acc.insert(member.clone(), score);
                                order.push(member);
                            }
                        }
                    }
                }
                order
                    .into_iter()
                    .map(|m| {
                        let score = acc[&m];
                        (m, score)
                    })
                    .collect()
            }
            SetOp::Inter => {
                let Some(present) = sources.into_iter().collect::<Option<Vec<Source>>>() else {
                    return Ok(Vec::new());
                };
                let mut present = present;
                // Walk the smallest input, probe the others (Redis's order).
                present.sort_by_key(|s| s.meta.len);
                let (first, rest) = present.split_first().expect("at least one key");
                let mut out = Vec::new();
                'members: for (member, score) in first.all(conn)? {
                    let mut total = score;
                    for other in rest {
                        match other.score(conn, &member)? {
                            Some(s) => total = aggregate.apply(total, s),
                            None => continue 'members,
                        }
                    }
                    out.push((member, total));
                }
                out
            }
            SetOp::Diff => {
                let mut sources = sources.into_iter();
                let Some(Some(first)) = sources.next() else {
                    return Ok(Vec::new());
                };
                let first = Source {
                    weight: 1.0,
                    ..first
                };
                let rest: Vec<Source> = sources.flatten().collect();
                let mut out = Vec::new();
                'diff: for (member, score) in first.all(conn)? {
                    for other in &rest {
                        if other.score(conn, &member)?.is_some() {
                            continue 'diff;
                        }
                    }
                    out.push((member, score));
                }
                out
            }
        };
        result.sort_by(by_score);
        Ok(result)
    }

    /// `ZINTERCARD`: how many members all of `keys` share, counting stops
    /// at `limit` (0: no limit).
    pub fn zset_inter_card(&self, db: Db, keys: &[Vec<u8>], limit: u64) -> Result<u64, StoreError> {
        let Some(mut sources) = self
            .zset_sources(db, keys, &[])?
            .into_iter()
            .collect::<Option<Vec<Source>>>()
        else {
            return Ok(0);
        };
        sources.sort_by_key(|s| s.meta.len);
        let (first, rest) = sources.split_first().expect("at least one key");
        let conn = self.conn();
        let mut found = 0;
        'members: for (member, _) in first.all(conn)? {
            for other in rest {
                if other.score(conn, &member)?.is_none() {
                    continue 'members;
                }
            }
            found += 1;
            if found == limit {
                break;
            }
        }
        Ok(found)
    }
}

impl Tx<'_> {
    /// `ZADD` (and `ZINCRBY` with `flags.incr`): applies `pairs` of score
    /// and member in order under `flags`. A missing key is created unless
    /// `XX`. An increment that would give NaN (`inf + -inf`) fails with
    /// [`StoreError::NanScore`] before anything was written: an increment
    /// comes alone (one pair), parsed scores are never NaN, so only a
    /// member that already exists in a live key can make one, and nothing
    /// was created or deleted to find it. That is why `ZADD` and `ZINCRBY`
    /// run without a savepoint ([`crate::command::Undo`]).
    pub fn zset_add(
        &mut self,
        db: Db,
        key: &[u8],
        flags: ZAddFlags,
        pairs: &[(f64, Vec<u8>)],
    ) -> Result<ZAddOutcome, StoreError> {
        let nothing = if flags.incr {
            ZAddOutcome::Score(None)
        } else {
            ZAddOutcome::Changed(0)
        };
        if flags.xx && self.view().lookup_kind(db, key, KeyKind::ZSet)?.is_none() {
            return Ok(nothing);
        }
        let meta = self.collection_for_write(db, key, KeyKind::ZSet)?;
        let conn = self.conn();
        let (mut added, mut updated) = (0u64, 0u64);
        let mut last_score = None;
        for (score, member) in pairs {
            match score_of(conn, meta.id, member)? {
                Some(current) => {
                    if flags.nx {
                        continue;
                    }
                    let new = if flags.incr { current + score } else { *score };
                    if new.is_nan() {
                        return Err(StoreError::NanScore);
                    }
                    if (flags.lt && new >= current) || (flags.gt && new <= current) {
                        continue;
                    }
                    if new != current {
                        conn.prepare_cached(
                            "UPDATE zsets SET score = ?3 WHERE key_id = ?1 AND member = ?2",
                        )?
                        .execute(params![meta.id, member, new])?;
                        updated += 1;
                    }
                    last_score = Some(new);
                }
                None => {
                    if flags.xx {
                        continue;
                    }
                    conn.prepare_cached(
                        "INSERT INTO zsets (key_id, member, score) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![meta.id, member, score])?;
                    added += 1;
                    last_score = Some(*score);
                }
            }
        }
        self.collection_resized(db, key, &meta, meta.len + added)?;
        Ok(if flags.incr {
            ZAddOutcome::Score(last_score)
        } else if flags.ch {
            ZAddOutcome::Changed(added + updated)
        } else {
            ZAddOutcome::Changed(added)
        })
    }

    /// `ZREM`: removes `members`, returns how many were members.
    pub fn zset_remove(
        &mut self,
        db: Db,
        key: &[u8],
        members: &[Vec<u8>],
    ) -> Result<u64, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::ZSet)? else {
            return Ok(0);
        };
        let removed = self.zset_delete_members(meta.id, members.iter().map(Vec::as_slice))?;
        self.collection_resized(db, key, &meta, meta.len - removed)?;
        Ok(removed)
    }

    /// `ZREMRANGEBYRANK`/`BYSCORE`/`BYLEX`: removes the members `range`
    /// selects, returns how many.
    pub fn zset_remove_range(
        &mut self,
        db: Db,
        key: &[u8],
        range: &ZRange,
    ) -> Result<u64, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::ZSet)? else {
            return Ok(0);
        };
        let removed = if let ZRange::Lex(lex, limit) = range
            && mixed_scores(self.conn(), meta.id)?
        {
            let doomed = lex_walk(self.conn(), meta.id, lex, *limit, false)?;
            self.zset_delete_members(meta.id, doomed.iter().map(|(m, _)| m.as_slice()))?
        } else {
            match Query::new(range, meta.len) {
                Some(query) => query.delete(self.conn(), meta.id)?,
                None => 0,
            }
        };
        self.collection_resized(db, key, &meta, meta.len - removed)?;
        Ok(removed)
    }

    /// `ZPOPMIN`/`ZPOPMAX` (`max`): removes and returns up to `count`
    /// members from the low or high end, nearest first.
    pub fn zset_pop(
        &mut self,
        db: Db,
        key: &[u8],
        max: bool,
        count: u64,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let Some(meta) = self.lookup_kind_for_write(db, key, KeyKind::ZSet)? else {
            return Ok(Vec::new());
        };
        let count = count.min(meta.len);
        if count == 0 {
            return Ok(Vec::new());
        }
        let range = ZRange::Rank {
            start: 0,
            stop: count as i64 - 1,
        };
        let Some(query) = Query::new(&range, meta.len) else {
            return Ok(Vec::new());
        };
        let popped = query.select(self.conn(), meta.id, max)?;
        self.zset_delete_members(meta.id, popped.iter().map(|(m, _)| m.as_slice()))?;
        self.collection_resized(db, key, &meta, meta.len - popped.len() as u64)?;
        Ok(popped)
    }

    /// `ZRANGESTORE`: makes `dst` a sorted set (no TTL) of the members of
    /// `src` that `range` selects (see [`View::zset_select`]), whatever
    /// `dst` held; an empty selection deletes `dst`. Returns the new
    /// cardinality. Unless `dst` is `src` (or the range is a lex walk), the
    /// members are copied inside SQLite, so a big range costs no memory.
    pub fn zset_store_range(
        &mut self,
        db: Db,
        dst: &[u8],
        src: &[u8],
        range: &ZRange,
        rev: bool,
    ) -> Result<u64, StoreError> {
        let Some(meta) = self.view().lookup_kind(db, src, KeyKind::ZSet)? else {
            return self.zset_store(db, dst, Vec::new());
        };
        if dst == src || matches!(range, ZRange::Lex(..)) && mixed_scores(self.conn(), meta.id)? {
            let members = self.view().zset_select(db, src, range, rev)?;
            return self.zset_store(db, dst, members);
        }
        let Some(query) = Query::new(range, meta.len) else {
            return self.zset_store(db, dst, Vec::new());
        };
        let id = self.put_row(db, dst, &ZSET_ROW)?;
        let len = query.copy(self.conn(), meta.id, rev, id)?;
        if len == 0 {
            keys::delete_row(self.conn(), id)?;
        } else {
            keys::set_shape(self.conn(), id, len, 0)?;
        }
        Ok(len)
    }

    /// Makes `key` a sorted set of exactly `members` (no TTL), whatever it
    /// held; no members deletes it (`ZRANGESTORE`, `Z*STORE`). Returns the
    /// new cardinality.
    pub fn zset_store(
        &mut self,
        db: Db,
        key: &[u8],
        members: Vec<ScoredMember>,
    ) -> Result<u64, StoreError> {
        if members.is_empty() {
            self.delete_key(db, key)?;
            return Ok(0);
        }
        let id = self.put_row(db, key, &ZSET_ROW)?;
        let len = elements::append(self.conn(), id, 0, &KeyValue::ZSet(members))?;
        keys::set_shape(self.conn(), id, len, 0)?;
        Ok(len)
    }

    /// Deletes `members` of sorted set `id` (the caller fixes `len`);
    /// returns how many were members.
    fn zset_delete_members<'m>(
        &self,
        id: i64,
        members: impl Iterator<Item = &'m [u8]>,
    ) -> Result<u64, StoreError> {
        let mut delete = self
            .conn()
            .prepare_cached("DELETE FROM zsets WHERE key_id = ?1 AND member = ?2")?;
        let mut removed = 0;
        for member in members {
            removed += delete.execute(params![id, member])? as u64;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;

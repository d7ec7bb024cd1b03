//! What collections share: creating a collection's key row on first
//! write, keeping `keys.len` (and a list's head) exact as elements come and
//! go (deleting the key once it is empty, as Redis does), and picking
//! random elements of hashes and sets without loading the whole
//! collection.
//!
//! Random picks (`HRANDFIELD`, `SRANDMEMBER`, `SPOP`) choose element
//! *positions* first — uniformly, from the exact `len` in the key row —
//! and then fetch them in one ordered pass over the collection that stops
//! at the last chosen position. Memory is bounded by the number of
//! elements the reply holds, never by the collection's size.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Statement, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keys::{self, KeyMeta, NewRow};
use crate::keyvalue::KeyKind;
use crate::write::Tx;

impl Tx<'_> {
    /// The live collection `key` of type `kind`, created (empty, `len` 0,
    /// persistent) if it does not exist. The caller adds elements and then
    /// records the new length with [`Tx::collection_resized`].
    pub(crate) fn collection_for_write(
        &mut self,
        db: Db,
        key: &[u8],
        kind: KeyKind,
    ) -> Result<KeyMeta, StoreError> {
        if let Some(meta) = self.lookup_kind_for_write(db, key, kind)? {
            return Ok(meta);
        }
        let row = NewRow {
            kind,
            expire_at_ms: None,
            string: None,
        };
        let id = self.put_row(db, key, &row)?;
        Ok(KeyMeta {
            id,
            kind,
            len: 0,
            list_head: 0,
            expire_at_ms: None,
        })
    }

    /// Records that collection `key` in `db` (a hash, set or sorted set),
    /// looked up as `meta` by this write, now has `len` elements (see
    /// [`Tx::collection_reshaped`]).
    pub(crate) fn collection_resized(
        &self,
        db: Db,
        key: &[u8],
        meta: &KeyMeta,
        len: u64,
    ) -> Result<(), StoreError> {
        self.collection_reshaped(db, key, meta, len, meta.list_head)
    }

    /// Records that collection `key` in `db`, looked up as `meta` by this
    /// write, now has `len` elements and its list head at `list_head`; at
    /// 0 its key row is deleted, because Redis never keeps an empty
    /// collection. See [`Tx::reshape`].
    pub(crate) fn collection_reshaped(
        &self,
        db: Db,
        key: &[u8],
        meta: &KeyMeta,
        len: u64,
        list_head: i64,
    ) -> Result<(), StoreError> {
        if len == 0 {
            return Ok(keys::delete_row(self.conn(), meta.id)?);
        }
        self.reshape(db, key, meta, len, list_head)
    }
}

/// How many random elements to pick, in Redis's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomCount {
    /// Up to this many distinct elements (a non-negative `count`); asking
    /// for at least the whole collection returns all of it.
    Distinct(u64),
    /// Exactly this many elements, repeats allowed (a negative `count`).
    WithRepeats(u64),
}

/// A small, fast PRNG (SplitMix64) seeded per use from the standard
/// library's per-process random keys and a counter: random choices need to
/// be unpredictable enough for sampling, not cryptographic.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Self {
        static DRAWS: AtomicU64 = AtomicU64::new(0);
        let draw = DRAWS.fetch_add(1, Ordering::Relaxed);
        Rng(RandomState::new().hash_one(draw))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias
    /// (Lemire's multiply-and-reject).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}

/// The positions (`0..len`, `len > 0`) of the elements to return for
/// `count`, in the order they should be returned. Distinct picks are
/// chosen with Floyd's algorithm (memory grows with the picks, not with
/// `len`) and then shuffled, because Redis returns them in no particular
/// order. A distinct count of `len` or more yields every position in order.
pub(crate) fn random_positions(len: u64, count: RandomCount, rng: &mut Rng) -> Vec<u64> {
    match count {
        RandomCount::WithRepeats(n) => (0..n).map(|_| rng.below(len)).collect(),
        RandomCount::Distinct(n) if n >= len => (0..len).collect(),
        RandomCount::Distinct(n) => {
            let mut chosen = HashSet::with_capacity(n as usize);
            let mut order = Vec::with_capacity(n as usize);
            for j in len - n..len {
                let t = rng.below(j + 1);
                let pick = if chosen.insert(t) { t } else { j };
                chosen.insert(pick);
                order.push(pick);
            }
            for i in (1..order.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            order
        }
    }
}

/// The statements that read a collection's elements in one fixed order,
/// for [`pick`].
pub(crate) struct PickSql {
    /// Every element in order; `?1` is the key id.
    pub(crate) walk: &'static str,
    /// The element `?2` places from the start (`LIMIT 1 OFFSET ?2`).
    pub(crate) from_start: &'static str,
    /// The element `?2` places from the end (the same order reversed).
    pub(crate) from_end: &'static str,
}

/// Up to this many picks are read one by one with `OFFSET` (SQLite skips
/// the rows before it internally, from whichever end is nearer); more are
/// read in one walk over the collection.
const FEW_PICKS: usize = 16;

/// Random elements of collection `meta` for `count` (see
/// [`random_positions`]), read with `sql` and mapped with `map`.
pub(crate) fn pick<T: Clone>(
    conn: &rusqlite::Connection,
    meta: &KeyMeta,
    count: RandomCount,
    sql: &PickSql,
    mut map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let positions = random_positions(meta.len(), count, &mut Rng::new());
    if positions.len() > FEW_PICKS {
        let mut walk = conn.prepare_cached(sql.walk)?;
        return fetch_positions(&mut walk, meta.id, &positions, map);
    }
    let mut picked = Vec::with_capacity(positions.len());
    for p in positions {
        let from_end = meta.len() - 1 - p;
        let (stmt, offset) = if p <= from_end {
            (sql.from_start, p)
        } else {
            (sql.from_end, from_end)
        };
        picked.push(
            conn.prepare_cached(stmt)?
                .query_row(params![meta.id, offset as i64], &mut map)?,
        );
    }
    Ok(picked)
}

/// Reads the rows at `positions` (in the statement's order, counting from
/// 0) from `stmt`, which must select collection `id`'s elements in a
/// stable order with `?1` = key id. Returns them in the order of
/// `positions`; a position chosen twice yields the row twice. Stops reading
/// after the last position wanted.
pub(crate) fn fetch_positions<T: Clone>(
    stmt: &mut Statement<'_>,
    id: i64,
    positions: &[u64],
    mut map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut wanted: Vec<(u64, usize)> = positions.iter().copied().zip(0..).collect();
    wanted.sort_unstable();
    let mut out: Vec<Option<T>> = vec![None; positions.len()];
    let mut next = wanted.iter().peekable();
    let mut rows = stmt.query(params![id])?;
    let mut position = 0u64;
    while next.peek().is_some() {
        let Some(row) = rows.next()? else { break };
        if next.peek().is_some_and(|(p, _)| *p == position) {
            let value = map(row)?;
            while let Some((_, slot)) = next.next_if(|(p, _)| *p == position) {
                out[*slot] = Some(value.clone());
            }
        }
        position += 1;
    }
    // Positions come from the exact `len` in the key row, so every one is
    // found; a short read would mean `len` is wrong, and then returning
    // fewer elements beats inventing some.
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new();
        let mut seen = [false; 5];
        for _ in 0..1000 {
            seen[rng.below(5) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn distinct_positions_are_distinct_and_in_range() {
        let mut rng = Rng::new();
        for (len, n) in [(10, 3), (10, 9), (1000, 999), (5, 1)] {
            let picks = random_positions(len, RandomCount::Distinct(n), &mut rng);
            assert_eq!(picks.len() as u64, n);
            let unique: HashSet<u64> = picks.iter().copied().collect();
            assert_eq!(unique.len() as u64, n, "{picks:?}");
            assert!(picks.iter().all(|p| *p < len));
        }
        assert_eq!(
            random_positions(3, RandomCount::Distinct(7), &mut rng),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn repeated_positions_have_the_exact_count() {
        let mut rng = Rng::new();
        let picks = random_positions(2, RandomCount::WithRepeats(50), &mut rng);
        assert_eq!(picks.len(), 50);
        assert!(picks.contains(&0) && picks.contains(&1));
    }
}

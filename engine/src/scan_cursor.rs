//! Cursors for `HSCAN`/`SSCAN` (usable by any scan over a collection kept
//! in byte order).
//!
//! Redis's cursor is an opaque unsigned 64-bit number; ours must say where
//! the next page starts, which for elements in byte order is "after
//! element X" — a byte string that does not fit in 64 bits. So the
//! process keeps a small ring of recent resume points (the last element
//! returned, and which key it belongs to), and the cursor names a slot of
//! that ring plus a tag that proves the slot was not reused since. It also
//! carries how many elements came before it: when the slot is gone (ring
//! wrapped, server restarted) the scan resumes at that ordinal instead.
//! Resuming after the element guarantees Redis's promise (every element
//! present for the whole scan is returned) even while others are added or
//! removed; the ordinal fallback may repeat or, if elements before it were
//! deleted meanwhile, skip some, but it always makes progress and ends.
//!
//! Layout: bits 46..64 tag (never 0, so a live cursor is never 0), bits
//! 32..46 slot, bits 0..32 ordinal (saturating).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{LazyLock, Mutex, PoisonError};

use rusqlite::params;

use crate::db::Db;
use crate::error::StoreError;
use crate::keys::KeyMeta;
use crate::read::{View, page_start};

const SLOT_BITS: u32 = 14;
const SLOTS: usize = 1 << SLOT_BITS;
const TAG_BITS: u32 = 64 - 32 - SLOT_BITS;

/// Where a scan continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanStart {
    /// At the first element (cursor 0, or a cursor this process never
    /// issued that carries no ordinal).
    Beginning,
    /// Right after this element.
    After(Vec<u8>),
    /// After skipping this many elements (a cursor whose slot is gone).
    Skip(u64),
}

struct Slot {
    tag: u64,
    owner: u64,
    last: Vec<u8>,
}

struct Ring {
    slots: Vec<Option<Slot>>,
    issued: u64,
}

static RING: LazyLock<Mutex<Ring>> = LazyLock::new(|| {
    Mutex::new(Ring {
        slots: (0..SLOTS).map(|_| None).collect(),
        issued: 0,
    })
});

/// Identifies the scanned collection, so a cursor from another key (or
/// another scan command's key type) is not trusted.
fn owner(db: Db, key: &[u8], kind: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (db.index(), key, kind).hash(&mut h);
    h.finish()
}

/// The cursor that continues a scan of `key` after element `last`, which
/// was element number `ordinal` (1-based: the count returned so far).
pub(crate) fn issue(db: Db, key: &[u8], kind: &str, ordinal: u64, last: &[u8]) -> u64 {
    let mut ring = RING.lock().unwrap_or_else(PoisonError::into_inner);
    let n = ring.issued;
    ring.issued += 1;
    let slot = (n % SLOTS as u64) as usize;
    let tag = (n / SLOTS as u64) % ((1 << TAG_BITS) - 1) + 1;
    ring.slots[slot] = Some(Slot {
        tag,
        owner: owner(db, key, kind),
        last: last.to_vec(),
    });
    (tag << (32 + SLOT_BITS)) | ((slot as u64) << 32) | ordinal.min(u64::from(u32::MAX))
}

/// Where the scan of `key` named by `cursor` continues.
pub(crate) fn resume(db: Db, key: &[u8], kind: &str, cursor: u64) -> ScanStart {
    let ordinal = cursor & u64::from(u32::MAX);
    let slot = ((cursor >> 32) & (SLOTS as u64 - 1)) as usize;
    let tag = cursor >> (32 + SLOT_BITS);
    let ring = RING.lock().unwrap_or_else(PoisonError::into_inner);
    match &ring.slots[slot] {
        Some(s) if tag != 0 && s.tag == tag && s.owner == owner(db, key, kind) => {
            ScanStart::After(s.last.clone())
        }
        _ if ordinal == 0 => ScanStart::Beginning,
        _ => ScanStart::Skip(ordinal),
    }
}

/// Collections with at most this many elements are scanned in one page,
/// as Redis does for its small (listpack, intset) encodings.
pub(crate) const SMALL_SCAN: u64 = 128;

/// The statements that read one scan page of a collection in byte order
/// of its elements, both selecting the element name first.
pub(crate) struct PageSql {
    /// `?1` key id, `?2` inclusive lower bound, `?3` limit.
    pub(crate) from: &'static str,
    /// `?1` key id, `?2` limit, `?3` elements to skip.
    pub(crate) skip: &'static str,
}

/// One page of a `*SCAN` over collection `meta` (`key` in `db`, of type
/// `kind`): up to `count` elements from where `cursor` points (a
/// collection of at most [`SMALL_SCAN`] elements comes whole), and the
/// cursor of the next page, 0 when the scan is complete. `name` gives an
/// element's name, the column the collection is ordered by.
#[allow(clippy::too_many_arguments)]
pub(crate) fn page<T>(
    view: &View<'_>,
    meta: &KeyMeta,
    (db, key, kind): (Db, &[u8], &str),
    cursor: u64,
    count: usize,
    sql: &PageSql,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    name: impl Fn(&T) -> &[u8],
) -> Result<(u64, Vec<T>), StoreError> {
    let limit = if meta.len() <= SMALL_SCAN {
        SMALL_SCAN as usize
    } else {
        count
    };
    // One element more than the page tells whether another page follows.
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    let start = resume(db, key, kind, cursor);
    let (before, mut stmt, bound): (u64, _, rusqlite::types::Value) = match &start {
        ScanStart::Skip(n) => (
            *n,
            view.conn().prepare_cached(sql.skip)?,
            (*n as i64).into(),
        ),
        ScanStart::After(last) => (
            cursor & u64::from(u32::MAX),
            view.conn().prepare_cached(sql.from)?,
            page_start(Some(last)).into(),
        ),
        ScanStart::Beginning => (
            0,
            view.conn().prepare_cached(sql.from)?,
            page_start(None).into(),
        ),
    };
    let (a, b): (rusqlite::types::Value, rusqlite::types::Value) = match start {
        ScanStart::Skip(_) => (fetch.into(), bound),
        _ => (bound, fetch.into()),
    };
    let rows = stmt.query_map(params![meta.id, a, b], map)?;
    let mut page = rows.collect::<rusqlite::Result<Vec<T>>>()?;
    if page.len() <= limit {
        return Ok((0, page));
    }
    page.truncate(limit);
    let last = name(page.last().expect("a page longer than its limit"));
    let next = issue(db, key, kind, before + limit as u64, last);
    Ok((next, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db0() -> Db {
        Db::new(0).unwrap()
    }

    #[test]
    fn a_cursor_resumes_after_its_element_for_its_own_key_only() {
        let cursor = issue(db0(), b"k", "hash", 10, b"field");
        assert_ne!(cursor, 0);
        assert_eq!(
            resume(db0(), b"k", "hash", cursor),
            ScanStart::After(b"field".to_vec())
        );
        assert_eq!(resume(db0(), b"other", "hash", cursor), ScanStart::Skip(10));
        assert_eq!(resume(db0(), b"k", "set", cursor), ScanStart::Skip(10));
    }

    #[test]
    fn unknown_cursors_fall_back_to_their_ordinal() {
        assert_eq!(resume(db0(), b"k", "hash", 0), ScanStart::Beginning);
        assert_eq!(resume(db0(), b"k", "hash", 17), ScanStart::Skip(17));
        assert_eq!(resume(db0(), b"k", "hash", 1 << 40), ScanStart::Beginning);
    }
}

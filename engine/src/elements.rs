//! Writing collection elements into the child tables.

use rusqlite::{Connection, params};

use crate::error::StoreError;
use crate::keyvalue::{KeyKind, KeyValue};

/// Adds `elements` to collection `id` and returns how many new elements it
/// gained (a repeated field or member replaces the old value or score and
/// is not counted twice). List elements go to positions `next_pos`,
/// `next_pos + 1`, … (the tail).
pub(crate) fn append(
    conn: &Connection,
    id: i64,
    next_pos: i64,
    elements: &KeyValue,
) -> Result<u64, StoreError> {
    let mut added = 0;
    match elements {
        KeyValue::String(_) => return Err(StoreError::NotStageable(KeyKind::String)),
        KeyValue::Hash(pairs) => {
            let mut insert =
                conn.prepare_cached("INSERT INTO hashes (key_id, field, value) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?;
            let update = "UPDATE hashes SET value = ?3 WHERE key_id = ?1 AND field = ?2";
            for (field, value) in pairs {
                added += upsert(conn, &mut insert, update, params![id, field, value])?;
            }
        }
        KeyValue::List(items) => {
            let mut insert =
                conn.prepare_cached("INSERT INTO lists (key_id, pos, value) VALUES (?1, ?2, ?3)")?;
            for (pos, value) in (next_pos..).zip(items) {
                insert.execute(params![id, pos, value])?;
            }
            added = items.len() as u64;
        }
        KeyValue::Set(members) => {
            let mut insert = conn.prepare_cached(
                "INSERT INTO sets (key_id, member) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?;
            for member in members {
                added += insert.execute(params![id, member])? as u64;
            }
        }
        KeyValue::ZSet(members) => {
            let mut insert =
                conn.prepare_cached("INSERT INTO zsets (key_id, member, score) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?;
            let update = "UPDATE zsets SET score = ?3 WHERE key_id = ?1 AND member = ?2";
            for (member, score) in members {
                if score.is_nan() {
                    return Err(StoreError::NanScore);
                }
                added += upsert(conn, &mut insert, update, params![id, member, score])?;
            }
        }
    }
    Ok(added)
}

/// Inserts a row, or updates it with `update` when its primary key already
/// exists. Returns 1 for a new row, 0 for an update. (A single `ON
/// CONFLICT DO UPDATE` would report one change either way, losing the
/// count.) `update` is only fetched from the statement cache when needed:
/// a one-field `HSET` of a new field then costs one cache lookup, not two.
fn upsert(
    conn: &Connection,
    insert: &mut rusqlite::CachedStatement<'_>,
    update: &str,
    row: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<u64> {
    if insert.execute(row)? == 1 {
        return Ok(1);
    }
    conn.prepare_cached(update)?.execute(row)?;
    Ok(0)
}

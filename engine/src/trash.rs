//! Lazy freeing of big keys.
//!
//! Deleting a 10M-member set row by row would hold the write lock for
//! seconds. Instead its `keys` row moves to the hidden [`TRASH`] database
//! (one row update: the key is gone from its database at once, and its id
//! stays taken so no new key can inherit its elements), and the sweeper
//! deletes its elements a bounded chunk per transaction. The row itself is
//! deleted only after its last element.

use rusqlite::{Connection, OptionalExtension};

use crate::db::TRASH;
use crate::keys;
use crate::keyvalue::KeyKind;
use crate::schema;

/// Moves key row `id` to the trash. Its `key` becomes its id (unique among
/// trash rows) and any expiry is cleared (the sweeper must not expire it
/// twice).
pub(crate) fn move_to_trash(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE keys SET db = ?2, key = CAST(id AS BLOB), expire_at_ms = NULL WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, TRASH])?;
    Ok(())
}

/// The oldest trashed key, by id and kind code: the next one to reap.
pub(crate) fn first(conn: &Connection) -> rusqlite::Result<Option<(i64, i64)>> {
    conn.prepare_cached("SELECT id, kind FROM keys WHERE db = ?1 ORDER BY id LIMIT 1")?
        .query_row([TRASH], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Deletes up to `budget` elements of trashed keys, and the rows of keys
/// left empty. Returns how many elements were deleted.
pub(crate) fn reap(conn: &Connection, budget: u64) -> rusqlite::Result<u64> {
    let mut reaped = 0;
    while reaped < budget {
        let Some((id, code)) = first(conn)? else {
            break;
        };
        let want = budget - reaped;
        let deleted = match KeyKind::from_code(code).and_then(schema::children) {
            Some(children) => conn
                .prepare_cached(children.delete_some)?
                .execute(rusqlite::params![id, want as i64])? as u64,
            None => 0,
        };
        reaped += deleted;
        if deleted < want {
            keys::delete_row(conn, id)?;
        }
    }
    Ok(reaped)
}

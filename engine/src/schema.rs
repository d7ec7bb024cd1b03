//! The keyspace tables (see `docs/storage.md` for the reasoning).
//!
//! One `keys` row per key holds its identity, type, expiry, element count
//! and, for strings, the value itself. Collection elements live in one child
//! table per type, keyed by the key's integer `id` rather than its bytes:
//! child rows stay small, and a key can be renamed, moved to another
//! database or swapped for a staged copy by updating one row.

use keyferry_journal::schema::Migration;

use crate::keyvalue::KeyKind;

/// The component name under which `schema_version` records this schema.
pub const COMPONENT: &str = "keyspace";

/// The keyspace schema's forward migrations, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
        CREATE TABLE keys (
            id           INTEGER PRIMARY KEY,
            db           INTEGER NOT NULL,
            key          BLOB    NOT NULL,
            kind         INTEGER NOT NULL,
            expire_at_ms INTEGER,
            len          INTEGER NOT NULL DEFAULT 0,
            list_head    INTEGER NOT NULL DEFAULT 0,
            value        BLOB,
            UNIQUE (db, key)
        );
        CREATE INDEX keys_by_expiry ON keys (expire_at_ms) WHERE expire_at_ms IS NOT NULL;
        CREATE TABLE hashes (
            key_id INTEGER NOT NULL,
            field  BLOB    NOT NULL,
            value  BLOB    NOT NULL,
            PRIMARY KEY (key_id, field)
        ) WITHOUT ROWID;
        CREATE TABLE sets (
            key_id INTEGER NOT NULL,
            member BLOB    NOT NULL,
            PRIMARY KEY (key_id, member)
        ) WITHOUT ROWID;
        CREATE TABLE zsets (
            key_id INTEGER NOT NULL,
            member BLOB    NOT NULL,
            score  REAL    NOT NULL,
            PRIMARY KEY (key_id, member)
        ) WITHOUT ROWID;
        CREATE INDEX zsets_by_score ON zsets (key_id, score, member);
        CREATE TABLE lists (
            key_id INTEGER NOT NULL,
            pos    INTEGER NOT NULL,
            value  BLOB    NOT NULL,
            PRIMARY KEY (key_id, pos)
        ) WITHOUT ROWID;
    ",
}];

/// Statements that free a collection's elements, one set per child table.
pub(crate) struct Children {
    /// Deletes every element of key `?1`.
    pub(crate) delete_all: &'static str,
    /// Deletes at most `?2` elements of key `?1`.
    pub(crate) delete_some: &'static str,
}

macro_rules! children {
    ($table:literal, $column:literal) => {
        Children {
            delete_all: concat!("DELETE FROM ", $table, " WHERE key_id = ?1"),
            delete_some: concat!(
                "DELETE FROM ",
                $table,
                " WHERE key_id = ?1 AND ",
                $column,
                " IN (SELECT ",
                $column,
                " FROM ",
                $table,
                " WHERE key_id = ?1 LIMIT ?2)"
            ),
        }
    };
}

/// The child table holding elements of `kind`, `None` for strings.
pub(crate) fn children(kind: KeyKind) -> Option<&'static Children> {
    const HASH: Children = children!("hashes", "field");
    const LIST: Children = children!("lists", "pos");
    const SET: Children = children!("sets", "member");
    const ZSET: Children = children!("zsets", "member");
    match kind {
        KeyKind::String => None,
        KeyKind::Hash => Some(&HASH),
        KeyKind::List => Some(&LIST),
        KeyKind::Set => Some(&SET),
        KeyKind::ZSet => Some(&ZSET),
    }
}

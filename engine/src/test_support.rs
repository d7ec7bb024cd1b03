//! Helpers shared by the unit tests.

use std::path::Path;

use tempfile::TempDir;

use crate::db::Db;
use crate::expiry::SweeperConfig;
use crate::keyvalue::{FieldValue, ScoredMember};
use crate::store::{Store, StoreConfig};

/// A store in a fresh temporary directory, without a background sweeper
/// (tests call `sweep_once` when they want one) so that nothing changes
/// behind a test's back.
pub(crate) fn store() -> (TempDir, Store) {
    store_with(StoreConfig {
        sweeper: SweeperConfig {
            interval: None,
            ..SweeperConfig::default()
        },
        ..StoreConfig::default()
    })
}

/// A store with `config` in a fresh temporary directory.
pub(crate) fn store_with(config: StoreConfig) -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("keyferry.db"), config).expect("open store");
    (dir, store)
}

/// Database `n`.
pub(crate) fn db(n: i64) -> Db {
    Db::new(n).expect("valid db")
}

/// Rows of `table` (all databases, hidden ones included), counted through
/// a separate connection: what is physically stored, not what reads show.
pub(crate) fn rows(path: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

/// Shorthand for a byte vector.
pub(crate) fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Every field of hash `key`, read in pages of `page` so pagination is
/// exercised too.
pub(crate) fn hash_all(store: &Store, db: Db, key: &[u8], page: usize) -> Vec<FieldValue> {
    let mut all: Vec<FieldValue> = Vec::new();
    loop {
        let after = all.last().map(|(f, _)| f.clone());
        let chunk = store
            .read(|v| v.hash_scan(db, key, after.as_deref(), page))
            .expect("hash_scan");
        let done = chunk.len() < page;
        all.extend(chunk);
        if done {
            return all;
        }
    }
}

/// Every member of set `key`, in pages of `page`.
pub(crate) fn set_all(store: &Store, db: Db, key: &[u8], page: usize) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    loop {
        let after = all.last().cloned();
        let chunk = store
            .read(|v| v.set_scan(db, key, after.as_deref(), page))
            .expect("set_scan");
        let done = chunk.len() < page;
        all.extend(chunk);
        if done {
            return all;
        }
    }
}

/// Every member of sorted set `key` with its score, in score order.
pub(crate) fn zset_all(store: &Store, db: Db, key: &[u8]) -> Vec<ScoredMember> {
    store
        .read(|v| v.zset_range(db, key, 0, -1))
        .expect("zset_range")
}

/// Every element of list `key`.
pub(crate) fn list_all(store: &Store, db: Db, key: &[u8]) -> Vec<Vec<u8>> {
    store
        .read(|v| v.list_range(db, key, 0, -1))
        .expect("list_range")
}

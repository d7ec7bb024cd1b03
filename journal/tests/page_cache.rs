//! keyferry's page cache (`journal/src/page_cache.rs`) under the B-tree
//! rebalancing that makes SQLite renumber pages through a temporary
//! number. Its own test binary: the page cache can only be chosen before
//! SQLite initialises, so this process must open a keyferry connection
//! before anything else touches SQLite.

use keyferry_journal::Durability;
use keyferry_journal::connection::{open_ro, open_rw, page_cache_installed};
use rusqlite::Connection;

fn totals(conn: &Connection) -> (i64, i64) {
    conn.query_row(
        "SELECT count(*), coalesce(sum(length(v)), 0) FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("totals")
}

/// Random-key inserts split leaves in every transaction (the renumbering
/// case); every other transaction is rolled back after splitting, so the
/// cache must also forget renumbered pages correctly. Readers and the
/// writer itself must see exactly the committed rows, and the file must
/// check clean.
#[test]
fn rebalancing_commits_and_rollbacks_keep_the_cache_right() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pcache.sqlite");
    let conn = open_rw(&path, Durability::Normal).expect("open");
    assert!(
        page_cache_installed(),
        "the first keyferry connection of a process installs the page cache"
    );
    conn.execute_batch("CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
        .expect("schema");
    let reader = open_ro(&path).expect("open ro");
    let mut committed = (0, 0);
    for round in 0..40 {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for _ in 0..200 {
            conn.execute("INSERT INTO t VALUES (randomblob(16), randomblob(100))", [])
                .expect("insert");
        }
        if round % 2 == 0 {
            conn.execute_batch("COMMIT").expect("commit");
            committed = (committed.0 + 200, committed.1 + 200 * 100);
        } else {
            conn.execute_batch("ROLLBACK").expect("rollback");
        }
        assert_eq!(totals(&conn), committed, "writer after round {round}");
        assert_eq!(totals(&reader), committed, "reader after round {round}");
    }
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
}

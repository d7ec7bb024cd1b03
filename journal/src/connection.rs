//! Opening SQLite connections with the settings every keyferry connection
//! shares (WAL, busy timeout, durability).

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a committed transaction survives a
    /// process crash but may be lost on power failure (like Redis
    /// `appendfsync everysec`).
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before it is answered.
    Full,
}

/// How long a connection waits on another process's lock before giving up
/// with `SQLITE_BUSY`. Long enough to ride out another process's short write
/// transaction, short enough that a stuck peer surfaces as an error.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) a read-write connection to `path` configured
/// for WAL mode and the requested durability.
pub fn open_rw(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode is persistent in the file; setting it on every open is
    // cheap and makes a file created by an older build WAL as well.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Savepoint journals (one per writer job) stay in memory instead of
    // spilling to a temp file once a job changed more than a few pages.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    tune(&conn, WRITER_MMAP_BYTES)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Opens a read-only connection to an existing database at `path`.
///
/// Readers never block the writer in WAL mode; each statement sees the last
/// committed state as of its first step.
pub fn open_ro(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    tune(&conn, READER_MMAP_BYTES)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Whether this process uses keyferry's page cache (see `page_cache.rs`):
/// false when something initialised SQLite before keyferry opened its
/// first connection, which costs speed, not correctness.
pub fn page_cache_installed() -> bool {
    crate::page_cache::install()
}

/// Opens `path` through keyferry's VFS and page cache when they are
/// available (see `wal_writes` and `page_cache`), else SQLite's defaults.
fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    crate::page_cache::install();
    if crate::wal_writes::register() {
        Connection::open_with_flags_and_vfs(path, flags, crate::wal_writes::NAME)
    } else {
        Connection::open_with_flags(path, flags)
    }
}

/// WAL pages after which a commit checkpoints (copies the WAL back into the
/// database). Larger than SQLite's 1000: a hot page rewritten by many
/// commits is then copied back once rather than many times, at the price
/// of a WAL of up to ~16 MiB between checkpoints.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;

/// Page cache per connection, in KiB (SQLite's negative-means-KiB form).
/// Random-key writes touch a different B-tree leaf each; with SQLite's
/// 2 MiB default most of them were re-read from the OS on every write.
const CACHE_KIB: i64 = 64 * 1024;

/// Memory-mapped I/O window of read-only connections: reads of pages not in
/// the cache become memory accesses instead of `pread` calls. Bounded;
/// pages outside it are read normally.
const READER_MMAP_BYTES: i64 = 1 << 30;

/// Read-write connections map nothing. With a mapping, SQLite looks every
/// page up in the WAL index before its own page cache (`getPageMMap` calls
/// `walFindFrame` first), and the index keeps one hash chain per page
/// within each 4096-frame segment: a page that many commits rewrote (a hot
/// counter's leaf, a busy collection's key row) has a chain as long as that
/// count, walked on every access. The writer's pages are nearly all in its
/// own cache, which a lookup without the mapping finds first. Measured with
/// redis-benchmark (`INCR` of one key, -c 50 -P 1): 69-79k ops/s mapped,
/// 124-128k not; random keys and the migration benches unchanged.
const WRITER_MMAP_BYTES: i64 = 0;

/// Settings every connection shares beyond its open flags: a stable query
/// planner, the page cache, and a memory-mapped window of `mmap_bytes`.
fn tune(conn: &Connection, mmap_bytes: i64) -> rusqlite::Result<()> {
    // Query planner stability: SQLite 3.54 plans `LIMIT ?` with the value
    // bound at prepare time and marks the statement stale whenever that
    // parameter is bound again, so every run of a cached statement with a
    // `LIMIT ?` (list pops and ranges, scans, sweeps) was parsed and
    // planned anew. With QPSG a plan never depends on bound values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.pragma_update(None, "mmap_size", mmap_bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// A cached statement with `LIMIT ?` keeps its plan when run with a
    /// different limit each time: without the planner-stability setting,
    /// SQLite re-prepares it on every such run.
    #[test]
    fn a_bound_limit_does_not_re_prepare_the_statement() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_rw(&dir.path().join("qpsg.sqlite"), Durability::Normal).expect("open");
        conn.execute_batch(
            "CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
        )
        .expect("schema");
        let sql = "SELECT x FROM t ORDER BY x LIMIT ?1";
        for limit in [1, 2, 3, 1] {
            let mut stmt = conn.prepare_cached(sql).expect("prepare");
            let rows: Vec<i64> = stmt
                .query_map([limit], |row| row.get(0))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert_eq!(rows.len(), limit as usize);
        }
        let stmt = conn.prepare_cached(sql).expect("prepare");
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
    }

    fn mmap_size(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA mmap_size", [], |row| row.get(0))
            .expect("mmap_size")
    }

    /// The writer finds its pages in its own cache, never through the WAL
    /// index first (see [`WRITER_MMAP_BYTES`]); readers keep the mapping.
    #[test]
    fn writers_map_nothing_and_readers_map_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mmap.sqlite");
        let writer = open_rw(&path, Durability::Normal).expect("open rw");
        let reader = open_ro(&path).expect("open ro");
        assert_eq!(mmap_size(&writer), 0);
        assert_eq!(mmap_size(&reader), READER_MMAP_BYTES);
    }
}

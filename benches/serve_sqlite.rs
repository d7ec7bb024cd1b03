//! Raw SQLite doing the storage work of each `redis-benchmark` test that
//! `scripts/bench_serve.sh` runs, with no server, no protocol and no
//! keyferry engine: the floor `keyferry serve` is measured against, next to
//! `redis-server`, in the same run.
//!
//! ```text
//! cargo bench --bench serve_sqlite -- [REQUESTS] [BATCH]   (defaults 100000, 20)
//! ```
//!
//! One thread and one connection, opened as keyferry opens its own
//! (`open_rw`: WAL, `synchronous=NORMAL`, keyferry's VFS and page cache),
//! with the least schema each command needs: one `WITHOUT ROWID` table per
//! type, keyed by what the command looks up, and for sorted sets the score
//! index as well (what `ZRANGE` needs). No key rows, types, lengths or
//! expiry: a server needs those, the floor does not.
//!
//! Each test gets a fresh database, first filled with REQUESTS random
//! writes of its type (keys drawn from a 1,000,000 range, named as
//! redis-benchmark names them), as `bench_serve.sh` pre-populates its
//! servers, and checkpointed. Then it runs REQUESTS operations on random
//! keys from that range, the one statement the command needs at least,
//! BATCH writes per transaction (`keyferry serve` commits about 20 commands
//! per transaction at `-c 50 -P 1`). A `get` is one statement in its own
//! read transaction, as a server's reads are. Checkpoints run as SQLite
//! runs them by default, inside the commit that fills the WAL (every 4000
//! pages, keyferry's setting): this is what one thread gets from SQLite.
//! `keyferry serve` checkpoints on a thread of its own, so it can beat
//! this floor where writing pages dominates.
//!
//! `SERVE_SQLITE_TESTS=zadd,set` runs only those tests, and
//! `SERVE_SQLITE_CHECKPOINTS=off` leaves checkpoints out of the timed part
//! (the WAL then grows through the whole test): the cost of the writes
//! alone, as a server that checkpoints on another thread pays it.
//!
//! Output: one line per test, `TEST OPS_PER_SEC`, which `bench_serve.sh`
//! reads.

use std::time::Instant;

use keyferry_journal::connection::{Durability, open_rw};
use rusqlite::{Connection, params};

/// redis-benchmark's `-r`: keys are drawn from this many.
const RANGE: u64 = 1_000_000;

/// redis-benchmark's default value (`-d 3`).
const VALUE: &[u8] = b"xxx";

/// Keys an `MSET` of redis-benchmark sets at once.
const MSET_KEYS: usize = 10;

const SCHEMA: &str = "
    CREATE TABLE strings (key BLOB PRIMARY KEY, value) WITHOUT ROWID;
    CREATE TABLE lists (key BLOB, pos INTEGER, value BLOB, PRIMARY KEY (key, pos)) WITHOUT ROWID;
    CREATE TABLE hashes (key BLOB, field BLOB, value BLOB, PRIMARY KEY (key, field)) WITHOUT ROWID;
    CREATE TABLE sets (key BLOB, member BLOB, PRIMARY KEY (key, member)) WITHOUT ROWID;
    CREATE TABLE zsets (key BLOB, member BLOB, score REAL, PRIMARY KEY (key, member)) WITHOUT ROWID;
    CREATE INDEX zsets_by_score ON zsets (key, score, member);
";

/// A small PRNG (xorshift64*): the numbers only need to spread keys.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    /// `prefix` and a random number as redis-benchmark writes
    /// `__rand_int__`: twelve digits, zero-padded.
    fn name(&mut self, prefix: &str) -> Vec<u8> {
        format!("{prefix}{:012}", self.below(RANGE)).into_bytes()
    }
}

/// What one operation of a test does, given the connection, the random
/// source and the operation's number.
type Op = fn(&Connection, &mut Rng, u64) -> rusqlite::Result<()>;

fn set(conn: &Connection, rng: &mut Rng, _: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO strings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![rng.name("key:"), VALUE])
    .map(drop)
}

fn get(conn: &Connection, rng: &mut Rng, _: u64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("SELECT value FROM strings WHERE key = ?1")?;
    let mut rows = stmt.query([rng.name("key:")])?;
    while let Some(row) = rows.next()? {
        let _: Vec<u8> = row.get(0)?;
    }
    Ok(())
}

fn incr(conn: &Connection, rng: &mut Rng, _: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO strings (key, value) VALUES (?1, 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
    )?
    .execute([rng.name("counter:")])
    .map(drop)
}

/// Every push goes to the head of one list, one position lower each time
/// (the floor knows the head; a server has to look it up).
fn lpush(conn: &Connection, _: &mut Rng, i: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO lists (key, pos, value) VALUES ('mylist', ?1, ?2)")?
        .execute(params![-(i as i64), VALUE])
        .map(drop)
}

fn hset(conn: &Connection, rng: &mut Rng, _: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO hashes (key, field, value) VALUES ('myhash', ?1, ?2)
         ON CONFLICT (key, field) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![rng.name("element:"), VALUE])
    .map(drop)
}

fn sadd(conn: &Connection, rng: &mut Rng, _: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sets (key, member) VALUES ('myset', ?1) ON CONFLICT DO NOTHING",
    )?
    .execute([rng.name("element:")])
    .map(drop)
}

fn zadd(conn: &Connection, rng: &mut Rng, _: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO zsets (key, member, score) VALUES ('myzset', ?1, ?2)
         ON CONFLICT (key, member) DO UPDATE SET score = excluded.score",
    )?
    .execute(params![rng.name("element:"), rng.below(RANGE) as f64])
    .map(drop)
}

fn mset(conn: &Connection, rng: &mut Rng, i: u64) -> rusqlite::Result<()> {
    for _ in 0..MSET_KEYS {
        set(conn, rng, i)?;
    }
    Ok(())
}

/// One test: redis-benchmark's name, what an operation does, whether it
/// writes, and the write that pre-populates its table.
struct Test {
    name: &'static str,
    op: Op,
    write: bool,
    fill: Op,
}

const TESTS: &[Test] = &[
    Test {
        name: "get",
        op: get,
        write: false,
        fill: set,
    },
    Test {
        name: "set",
        op: set,
        write: true,
        fill: set,
    },
    Test {
        name: "incr",
        op: incr,
        write: true,
        fill: incr,
    },
    Test {
        name: "lpush",
        op: lpush,
        write: true,
        fill: lpush,
    },
    Test {
        name: "hset",
        op: hset,
        write: true,
        fill: hset,
    },
    Test {
        name: "sadd",
        op: sadd,
        write: true,
        fill: sadd,
    },
    Test {
        name: "zadd",
        op: zadd,
        write: true,
        fill: zadd,
    },
    Test {
        name: "mset",
        op: mset,
        write: true,
        fill: set,
    },
];

/// Runs `op` `n` times, writes `batch` per transaction; returns ops/s.
fn run(
    conn: &Connection,
    rng: &mut Rng,
    op: Op,
    write: bool,
    n: u64,
    batch: u64,
    first: u64,
) -> f64 {
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let end = if write { (i + batch).min(n) } else { i + 1 };
        if write {
            conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        }
        for j in i..end {
            op(conn, rng, first + j).expect("operation");
        }
        if write {
            conn.execute_batch("COMMIT").expect("commit");
        }
        i = end;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse::<u64>().expect("REQUESTS and BATCH are numbers"));
    let requests = args.next().unwrap_or(100_000);
    let batch = args.next().unwrap_or(20).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let only = std::env::var("SERVE_SQLITE_TESTS").unwrap_or_default();
    let checkpoints = std::env::var("SERVE_SQLITE_CHECKPOINTS").map_or(true, |v| v != "off");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for test in TESTS
        .iter()
        .filter(|t| only.is_empty() || only.split(',').any(|name| name == t.name))
    {
        let path = dir.path().join(format!("{}.sqlite", test.name));
        let conn = open_rw(&path, Durability::Normal).expect("open");
        conn.execute_batch(SCHEMA).expect("schema");
        // Pre-populated as bench_serve.sh does: pipelines of 16 from 50
        // clients, so up to 800 writes per transaction.
        run(&conn, &mut rng, test.fill, true, requests, 16 * 50, 0);
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        if !checkpoints {
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .expect("checkpoints off");
        }
        let rate = run(
            &conn, &mut rng, test.op, test.write, requests, batch, requests,
        );
        println!("{} {rate:.0}", test.name);
    }
}

//! Keyspace `import_key` throughput for small strings, measured next to a
//! raw-rusqlite baseline doing the same inserts in the same run.
//!
//! ```text
//! cargo bench --bench keyspace_import
//! ```
//!
//! The store imports 100,000 new string keys (16-byte values) two ways,
//! each with every write outstanding at once so that the group-committing
//! writer batches them into transactions of `BATCH` keys:
//!
//! - one key per write: `Store::import_key` per key — each key is its own
//!   writer job and so runs in its own savepoint (its own rollback unit);
//! - `PAGE` keys per write: `Store::write` running `Tx::import_key` for a
//!   page of keys, as the bulk scanner imports a `SCAN` page together with
//!   its checkpoint event.
//!
//! The baselines insert the same keys and values with plain prepared
//! statements, `BATCH` rows per `BEGIN IMMEDIATE … COMMIT`, on a connection
//! with the same settings: once into the keyspace's own `keys` table (the
//! target: ≥ 60% of this), once more into it with a `SAVEPOINT`/`RELEASE`
//! around every row (what one key per write costs SQLite alone, without
//! the writer's queueing), and once into a minimal `(db, key) → value`
//! table `WITHOUT ROWID` (the cheapest layout there is, for perspective).

use std::path::Path;
use std::time::{Duration, Instant};

use keyferry_engine::{Db, KeyValue, Store, StoreConfig, Write, schema};
use keyferry_journal::WriterConfig;
use keyferry_journal::connection::{Durability, open_rw};
use keyferry_journal::schema::migrate;

const KEYS: usize = 100_000;
const BATCH: usize = 1_000;
/// Keys per write in the paged run.
const PAGE: usize = 100;
/// Best of this many runs, which filters out a cold page cache or a
/// scheduler hiccup on a busy machine.
const ROUNDS: usize = 3;

fn key(i: usize) -> Vec<u8> {
    format!("user:{i:010}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i:010}").into_bytes()
}

/// Best (shortest) of [`ROUNDS`] runs of `run`, which gets the round number.
fn best(mut run: impl FnMut(usize) -> Duration) -> Duration {
    (0..ROUNDS).map(&mut run).min().expect("at least one round")
}

fn report(label: &str, elapsed: Duration, baseline: Duration) {
    let rate = KEYS as f64 / elapsed.as_secs_f64();
    let ratio = baseline.as_secs_f64() / elapsed.as_secs_f64();
    println!("  {label:<52} {rate:>10.0} keys/s   ratio vs raw keys table: {ratio:.2}");
}

/// Imports every key into a fresh store in `dir`, `per_write` keys per
/// writer job, submitting every job before waiting for any.
fn store_import(dir: &Path, name: &str, per_write: usize) -> Duration {
    let config = StoreConfig {
        writer: WriterConfig {
            max_batch_jobs: BATCH / per_write,
            ..WriterConfig::default()
        },
        ..StoreConfig::default()
    };
    let store = Store::open(&dir.join(name), config).expect("open store");
    let db = Db::new(0).expect("db 0");
    let started = Instant::now();
    let writes: Vec<Write<_>> = if per_write == 1 {
        (0..KEYS)
            .map(|i| store.import_key(db, key(i), KeyValue::String(value(i)), None, vec![]))
            .collect()
    } else {
        (0..KEYS / per_write)
            .map(|page| {
                store.write(move |tx| {
                    for i in page * per_write..(page + 1) * per_write {
                        tx.import_key(db, &key(i), &KeyValue::String(value(i)), None)?;
                    }
                    Ok(Vec::new())
                })
            })
            .collect()
    };
    for write in writes {
        write.wait().expect("import");
    }
    let elapsed = started.elapsed();
    store.shutdown();
    elapsed
}

/// Inserts every key with `insert` (bound to db, key, value), `BATCH` rows
/// per transaction, into a fresh file in `dir` prepared by `create`;
/// `savepoints` wraps each row in its own savepoint.
fn raw_insert(
    dir: &Path,
    name: &str,
    create: impl FnOnce(&mut rusqlite::Connection),
    insert: &str,
    savepoints: bool,
) -> Duration {
    let mut conn = open_rw(&dir.join(name), Durability::Normal).expect("open raw");
    create(&mut conn);
    let started = Instant::now();
    for batch in (0..KEYS).collect::<Vec<_>>().chunks(BATCH) {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let mut stmt = conn.prepare_cached(insert).expect("prepare");
        let mut savepoint = conn.prepare_cached("SAVEPOINT row").expect("prepare");
        let mut release = conn.prepare_cached("RELEASE row").expect("prepare");
        for &i in batch {
            if savepoints {
                savepoint.execute([]).expect("savepoint");
            }
            stmt.execute(rusqlite::params![0, key(i), value(i)])
                .expect("insert");
            if savepoints {
                release.execute([]).expect("release");
            }
        }
        drop((stmt, savepoint, release));
        conn.execute_batch("COMMIT").expect("commit");
    }
    started.elapsed()
}

fn raw_keys_table(dir: &Path, name: &str, savepoints: bool) -> Duration {
    raw_insert(
        dir,
        name,
        |conn| {
            migrate(conn, schema::COMPONENT, schema::MIGRATIONS).expect("keyspace schema");
        },
        "INSERT INTO keys (db, key, kind, expire_at_ms, value) VALUES (?1, ?2, 0, NULL, ?3)",
        savepoints,
    )
}

fn raw_minimal_table(dir: &Path, round: usize) -> Duration {
    raw_insert(
        dir,
        &format!("raw-kv-{round}.sqlite"),
        |conn| {
            conn.execute_batch(
                "CREATE TABLE kv (db INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (db, key)) WITHOUT ROWID",
            )
            .expect("create");
        },
        "INSERT INTO kv (db, key, value) VALUES (?1, ?2, ?3)",
        false,
    )
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    println!(
        "keyspace import_key: {KEYS} small string keys, {BATCH} per transaction, best of {ROUNDS}"
    );
    let raw = best(|round| raw_keys_table(dir, &format!("raw-keys-{round}.sqlite"), false));
    let raw_savepoints = best(|round| raw_keys_table(dir, &format!("raw-sp-{round}.sqlite"), true));
    let minimal = best(|round| raw_minimal_table(dir, round));
    let single = best(|round| store_import(dir, &format!("store-single-{round}.sqlite"), 1));
    let paged = best(|round| store_import(dir, &format!("store-paged-{round}.sqlite"), PAGE));
    report("raw rusqlite, keyspace `keys` table (baseline)", raw, raw);
    report(
        "raw rusqlite, keys table, a savepoint per row",
        raw_savepoints,
        raw,
    );
    report("raw rusqlite, minimal kv table WITHOUT ROWID", minimal, raw);
    report("Store::import_key, 1 key per write", single, raw);
    report(
        &format!("Tx::import_key, {PAGE} keys per write"),
        paged,
        raw,
    );
    for (label, elapsed) in [("1 key per write", single), ("paged", paged)] {
        let ratio = raw.as_secs_f64() / elapsed.as_secs_f64();
        let verdict = if ratio >= 0.6 { "met" } else { "NOT met" };
        println!("target >= 0.60 x raw keys-table baseline, {label}: {ratio:.2} ({verdict})");
    }
}

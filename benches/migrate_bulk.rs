//! Migration throughput from a live redis-server into a fresh SQLite file,
//! measured next to raw baselines doing the same work in the same run.
//!
//! ```text
//! cargo bench --bench migrate_bulk -- [N] [ROUNDS]     (default N = 200000, ROUNDS = 1)
//! ```
//!
//! The bench starts its own `redis-server` (no persistence) on a free
//! loopback port and loads N small string keys (16-byte keys, 32-byte
//! values) with pipelined `MSET`s. Then, all in this run:
//!
//! - **keyferry bulk**: the bulk step run as `keyferry bulk` runs it
//!   (`steps::run_step`: a job leased to this process, the scanner actor
//!   under a supervisor, every batch fenced by the lease), with the CLI's
//!   default settings, into a fresh temp file; keys/s and MB/s (key +
//!   value bytes, as the scanner counts them);
//! - **baseline A, Redis reads**: the same keys read with the redis crate,
//!   page by page in SCAN order (`SCAN … COUNT 1000`, then one pipeline of
//!   `TYPE`/`PTTL`/`GET` for the page), one page at a time, nothing written;
//! - **baseline B, raw SQLite**: the rows baseline A read, in the same SCAN
//!   order, inserted with rusqlite into a minimal `(db, key, value,
//!   expire_at_ms)` table (primary key `(db, key)`, `WITHOUT ROWID`),
//!   1000 rows per `BEGIN IMMEDIATE … COMMIT`, WAL, `synchronous=NORMAL`
//!   (the same connection settings as keyferry's);
//! - the ratio of keyferry to the slower baseline (target ≥ 0.5×, aiming at
//!   250k keys/s);
//! - **apply-dirty**: min(N/2, 100k) of the imported keys (every other one
//!   in SCAN order) are marked dirty with `KeyDirtied` events, appended in
//!   batches of 1000, and `applier::drain(.., Mode::UntilEmpty)` re-reads
//!   and replaces them (target ≥ 100k keys/s); then the same keys are
//!   marked again and applied by the `apply-dirty` step, as the CLI runs
//!   it;
//! - **mixed**: the source is flushed and refilled with N/10 keys across
//!   databases 0 and 1 — hashes, sets, zsets and lists of 10–200 elements
//!   and strings with TTLs, a fifth each — and copied again by the bulk
//!   scanner, next to baseline A reading them (`TYPE`/`PTTL` pipeline, then
//!   a `GET`/`HGETALL`/`SMEMBERS`/`ZRANGE … WITHSCORES`/`LRANGE` pipeline per
//!   page).
//!
//! With ROUNDS > 1 every timed step is repeated and the best run kept.
//!
//! The scanner and applier run with `Settings::default()` (what the CLI
//! uses without flags); `MIGRATE_BULK_SCAN_COUNT`, `MIGRATE_BULK_BATCH_KEYS`
//! and `MIGRATE_BULK_CONCURRENCY` override them (as `--scan-count`,
//! `--batch-keys`, `--max-concurrency` would) to see what a throttle buys.
//!
//! Profiling one phase: `MIGRATE_BULK_PROFILE=PHASE PERF_CTL_FIFO=ctl.fifo
//! perf record -D -1 --control fifo:ctl.fifo …` records only while PHASE
//! (`reads`, `raw`, `bulk`, `mark`, `apply`, `apply-step`, `mixed`) runs: the bench
//! writes `enable`/`disable` to perf's control FIFO around it.
//!
//! Output: a markdown table (rows start with `|`, which
//! `scripts/bench_migrate.sh` collects) and a one-line summary.

use std::time::{Duration, Instant};

use keyferry_actors::migration::applier::{self, Mode};
use keyferry_actors::migration::steps::{
    self, StepKind, StepOutcome, StepSettings, StepSpec, Worker,
};
use keyferry_actors::migration::{Run, Settings};
use keyferry_actors::source::{FetchLimits, Source, SourceUri};
use keyferry_engine::{Store, StoreConfig};
use keyferry_journal::connection::open_rw;
use keyferry_journal::{Durability, Event};
use keyferry_testkit::RedisServer;
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

const DEFAULT_KEYS: usize = 200_000;
/// Rows per transaction in the raw SQLite baseline, keys per `MSET` when
/// loading, and events per batch when marking keys dirty.
const BATCH: usize = 1_000;
/// Most keys marked dirty for the apply-dirty measurement.
const MAX_DIRTY: usize = 100_000;
/// Targets from issue 5.
const TARGET_RATIO: f64 = 0.5;
const AIM_KEYS_PER_SEC: f64 = 250_000.0;
const TARGET_APPLY_PER_SEC: f64 = 100_000.0;

/// One key read from the source: key, value, remaining TTL.
type Row = (Vec<u8>, Vec<u8>, Option<i64>);

fn string_key(i: usize) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

fn string_value(i: usize) -> Vec<u8> {
    format!(
        "value:{i:012}:{:013}",
        i.wrapping_mul(2_654_435_761) % 10_000_000_000_000
    )
    .into_bytes()
}

/// A measured step: keys handled, bytes, how long it took.
#[derive(Clone, Copy)]
struct Measured {
    keys: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Measured {
    fn keys_per_sec(&self) -> f64 {
        self.keys as f64 / self.elapsed.as_secs_f64()
    }

    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// The scanner's and applier's settings: the defaults, or the overrides
/// from the environment (see the module docs and [`step_settings`]).
fn settings() -> Settings {
    step_settings().settings()
}

/// Tells perf (see the module docs) that `phase` starts (`on`) or ended.
fn profile(phase: &str, on: bool) {
    let wanted = std::env::var("MIGRATE_BULK_PROFILE").is_ok_and(|p| p == phase);
    if let (true, Some(fifo)) = (wanted, std::env::var_os("PERF_CTL_FIFO")) {
        use std::io::Write as _;
        let mut ctl = std::fs::OpenOptions::new()
            .write(true)
            .open(fifo)
            .expect("perf control FIFO");
        ctl.write_all(if on { b"enable\n" } else { b"disable\n" })
            .expect("perf control");
    }
}

/// Keeps the shorter of `best` and `m`.
fn keep_best(best: &mut Option<Measured>, m: Measured) {
    if best.is_none_or(|b| m.elapsed < b.elapsed) {
        *best = Some(m);
    }
}

/// A markdown table row.
fn row(what: &str, m: Option<Measured>, result: &str, target: &str) {
    let (keys, secs, kps, mbps) = match m {
        Some(m) => (
            m.keys.to_string(),
            format!("{:.2}", m.elapsed.as_secs_f64()),
            format!("{:.0}", m.keys_per_sec()),
            if m.bytes == 0 {
                String::new()
            } else {
                format!("{:.1}", m.mb_per_sec())
            },
        ),
        None => Default::default(),
    };
    println!("| {what} | {keys} | {secs} | {kps} | {mbps} | {result} | {target} |");
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

async fn connect(url: &str, db: u32) -> MultiplexedConnection {
    redis::Client::open(format!("{url}/{db}"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the bench redis-server")
}

/// Loads `n` string keys into database 0 with pipelined MSETs.
async fn load_strings(conn: &mut MultiplexedConnection, n: usize) {
    let mut start = 0;
    while start < n {
        let mut pipe = redis::pipe();
        // Ten MSETs of BATCH keys per round trip.
        for _ in 0..10 {
            if start >= n {
                break;
            }
            let end = (start + BATCH).min(n);
            let mut cmd = redis::cmd("MSET");
            for i in start..end {
                cmd.arg(string_key(i)).arg(string_value(i));
            }
            pipe.add_command(cmd).ignore();
            start = end;
        }
        pipe.query_async::<()>(conn).await.expect("MSET");
    }
}

/// The kind of mixed key `i` is, and its element count (10..=200).
fn mixed_shape(i: usize) -> (usize, usize) {
    (i % 5, 10 + (i.wrapping_mul(7_919) >> 3) % 191)
}

/// Loads `n` mixed keys, alternating databases 0 and 1.
async fn load_mixed(url: &str, n: usize) {
    let mut conns = [connect(url, 0).await, connect(url, 1).await];
    let mut pipes = [redis::pipe(), redis::pipe()];
    let mut queued = 0;
    for i in 0..n {
        let db = i % 2;
        let (kind, len) = mixed_shape(i);
        let key = format!("mixed:{kind}:{i:010}");
        let pipe = &mut pipes[db];
        match kind {
            0 => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key)
                    .arg(format!("string-value-{i:020}"))
                    .arg("EX")
                    .arg(3_600 + i % 3_600);
                pipe.add_command(cmd).ignore();
            }
            1 => {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(&key);
                for j in 0..len {
                    cmd.arg(format!("field:{j:04}"))
                        .arg(format!("value:{i}:{j:06}"));
                }
                pipe.add_command(cmd).ignore();
            }
            2 => {
                let mut cmd = redis::cmd("SADD");
                cmd.arg(&key);
                for j in 0..len {
                    cmd.arg(format!("member:{i}:{j:06}"));
                }
                pipe.add_command(cmd).ignore();
            }
            3 => {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(&key);
                for j in 0..len {
                    cmd.arg(j as f64 * 1.5).arg(format!("member:{i}:{j:06}"));
                }
                pipe.add_command(cmd).ignore();
            }
            _ => {
                let mut cmd = redis::cmd("RPUSH");
                cmd.arg(&key);
                for j in 0..len {
                    cmd.arg(format!("item:{i}:{j:06}"));
                }
                pipe.add_command(cmd).ignore();
            }
        }
        queued += 1;
        if queued == BATCH || i + 1 == n {
            for (conn, pipe) in conns.iter_mut().zip(pipes.iter_mut()) {
                pipe.query_async::<()>(conn).await.expect("load mixed");
                *pipe = redis::pipe();
            }
            queued = 0;
        }
    }
}

fn bytes_of(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

fn type_of(v: &Value) -> String {
    match v {
        Value::SimpleString(s) => s.clone(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a TYPE reply, got {other:?}"),
    }
}

fn ttl_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(ms) if *ms >= 0 => Some(*ms),
        Value::Int(_) => None,
        other => panic!("expected a PTTL reply, got {other:?}"),
    }
}

async fn scan_page(
    conn: &mut MultiplexedConnection,
    cursor: u64,
    count: u32,
) -> (u64, Vec<Vec<u8>>) {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .expect("SCAN")
}

/// Baseline A for strings: SCAN, then one pipeline of TYPE/PTTL/GET per
/// page. Returns the rows read, in SCAN order.
async fn read_strings(url: &str, scan_count: u32) -> (Measured, Vec<Row>) {
    let mut conn = connect(url, 0).await;
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut bytes = 0u64;
    let mut cursor = 0;
    loop {
        let (next, keys) = scan_page(&mut conn, cursor, scan_count).await;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("TYPE")
                    .arg(key)
                    .cmd("PTTL")
                    .arg(key)
                    .cmd("GET")
                    .arg(key);
            }
            let replies: Vec<Value> = pipe.query_async(&mut conn).await.expect("pipeline");
            for (key, r) in keys.into_iter().zip(replies.chunks_exact(3)) {
                assert_eq!(type_of(&r[0]), "string");
                let value = bytes_of(&r[2]);
                bytes += (key.len() + value.len()) as u64;
                rows.push((key, value, ttl_of(&r[1])));
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let elapsed = started.elapsed();
    (
        Measured {
            keys: rows.len() as u64,
            bytes,
            elapsed,
        },
        rows,
    )
}

/// Baseline A for the mixed set: per page, a TYPE/PTTL pipeline, then one
/// read per key by its type; databases 0 and 1.
async fn read_mixed(url: &str, scan_count: u32) -> Measured {
    let started = Instant::now();
    let mut keys_read = 0u64;
    let mut bytes = 0u64;
    for db in 0..2 {
        let mut conn = connect(url, db).await;
        let mut cursor = 0;
        loop {
            let (next, keys) = scan_page(&mut conn, cursor, scan_count).await;
            if !keys.is_empty() {
                let mut probe = redis::pipe();
                for key in &keys {
                    probe.cmd("TYPE").arg(key).cmd("PTTL").arg(key);
                }
                let probed: Vec<Value> = probe.query_async(&mut conn).await.expect("probe");
                let mut read = redis::pipe();
                let mut kinds = Vec::with_capacity(keys.len());
                for (key, p) in keys.iter().zip(probed.chunks_exact(2)) {
                    let kind = type_of(&p[0]);
                    let _ttl = ttl_of(&p[1]);
                    match kind.as_str() {
                        "string" => read.cmd("GET").arg(key),
                        "hash" => read.cmd("HGETALL").arg(key),
                        "set" => read.cmd("SMEMBERS").arg(key),
                        "zset" => read.cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES"),
                        "list" => read.cmd("LRANGE").arg(key).arg(0).arg(-1),
                        other => panic!("unexpected type {other}"),
                    };
                    kinds.push(kind);
                }
                let values: Vec<Value> = read.query_async(&mut conn).await.expect("read");
                for ((key, kind), value) in keys.iter().zip(&kinds).zip(&values) {
                    bytes += key.len() as u64 + value_bytes(kind, value);
                    keys_read += 1;
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    Measured {
        keys: keys_read,
        bytes,
        elapsed: started.elapsed(),
    }
}

/// Payload bytes of a read reply, counted like the scanner does (strings'
/// lengths, plus 8 per zset score instead of its text).
fn value_bytes(kind: &str, v: &Value) -> u64 {
    match v {
        Value::BulkString(b) => b.len() as u64,
        Value::Array(items) if kind == "zset" => items
            .chunks_exact(2)
            .map(|pair| bytes_of(&pair[0]).len() as u64 + 8)
            .sum(),
        Value::Array(items) => items.iter().map(|i| bytes_of(i).len() as u64).sum(),
        Value::Map(pairs) => pairs
            .iter()
            .map(|(f, v)| (bytes_of(f).len() + bytes_of(v).len()) as u64)
            .sum(),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Baseline B: `rows` inserted raw, BATCH per transaction.
fn raw_sqlite(dir: &std::path::Path, round: usize, rows: &[Row]) -> Measured {
    let mut conn =
        open_rw(&dir.join(format!("raw-{round}.sqlite")), Durability::Normal).expect("open raw");
    conn.execute_batch(
        "CREATE TABLE kv (db INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
         expire_at_ms INTEGER, PRIMARY KEY (db, key)) WITHOUT ROWID",
    )
    .expect("create");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let started = Instant::now();
    let mut bytes = 0u64;
    for batch in rows.chunks(BATCH) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO kv (db, key, value, expire_at_ms) VALUES (0, ?1, ?2, ?3)",
                )
                .expect("prepare");
            for (key, value, ttl) in batch {
                insert
                    .execute(rusqlite::params![key, value, ttl.map(|t| now_ms + t)])
                    .expect("insert");
                bytes += (key.len() + value.len()) as u64;
            }
        }
        tx.commit().expect("commit");
    }
    Measured {
        keys: rows.len() as u64,
        bytes,
        elapsed: started.elapsed(),
    }
}

/// Opens a fresh store in `dir`.
fn open_store(dir: &std::path::Path, name: &str) -> Store {
    Store::open(&dir.join(name), StoreConfig::default()).expect("open store")
}

/// The step settings for `keyferry bulk` / `apply-dirty` with the
/// overrides from the environment given as flags.
fn step_settings() -> StepSettings {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    StepSettings {
        scan_count: var("MIGRATE_BULK_SCAN_COUNT"),
        batch_keys: var("MIGRATE_BULK_BATCH_KEYS"),
        max_concurrency: var("MIGRATE_BULK_CONCURRENCY"),
        ..StepSettings::default()
    }
}

/// Runs one migration step of `run_id` on `store` the way the CLI's
/// `keyferry bulk` / `keyferry apply-dirty` do: claimed as a job, leased to
/// this process, its actor under a supervisor. Returns how long it took
/// and what it did.
async fn keyferry_step(
    url: &str,
    store: &Store,
    run_id: &str,
    kind: StepKind,
) -> (Duration, StepOutcome) {
    let uri: SourceUri = url.parse().expect("source uri");
    let source = Source::new(uri, None).expect("source");
    let spec = StepSpec {
        settings: step_settings(),
        ..StepSpec::new(kind, run_id, &source)
    };
    // A closed stop channel never stops the step.
    let stop = watch::channel(false).1;
    let started = Instant::now();
    let outcome = steps::run_step(store, source, spec, &Worker::this_process(), stop)
        .await
        .unwrap_or_else(|e| panic!("{kind:?} step: {e}"));
    (started.elapsed(), outcome)
}

/// keyferry bulk (see [`keyferry_step`]) into `store`. Returns the
/// measurement and the run.
async fn keyferry_bulk(url: &str, store: Store, run_id: &str) -> (Measured, Run) {
    let (elapsed, outcome) = keyferry_step(url, &store, run_id, StepKind::Bulk).await;
    let StepOutcome::Bulk(counters) = outcome else {
        panic!("a bulk step ended with {outcome:?}");
    };
    let run = Run {
        id: run_id.to_string(),
        source: Source::new(url.parse().expect("source uri"), None).expect("source"),
        store,
    };
    (
        Measured {
            keys: counters.migrated_keys,
            bytes: counters.migrated_bytes,
            elapsed,
        },
        run,
    )
}

/// Marks `keys` dirty in `run`: KeyDirtied events, BATCH per write, all
/// submitted before any is awaited (as the tracker pipelines its batches).
async fn mark_dirty(run: &Run, keys: &[Vec<u8>]) -> Measured {
    let started = Instant::now();
    let writes: Vec<_> = keys
        .chunks(BATCH)
        .map(|chunk| {
            let events: Vec<Event> = chunk
                .iter()
                .map(|key| Event::KeyDirtied {
                    run_id: run.id.clone(),
                    db: 0,
                    key: key.clone(),
                    event: "set".into(),
                })
                .collect();
            run.store.write(move |tx| tx.append_events(&events))
        })
        .collect();
    for write in writes {
        write.await.expect("mark dirty");
    }
    Measured {
        keys: keys.len() as u64,
        bytes: 0,
        elapsed: started.elapsed(),
    }
}

/// What the apply-dirty phase measured.
struct ApplyDirty {
    marking: Measured,
    /// `applier::drain(.., Mode::UntilEmpty)`.
    drain: Measured,
    /// The same keys marked again, applied by the `apply-dirty` step (the
    /// CLI's path: a leased job running the applier actor).
    step: Measured,
}

/// Marks `keys` dirty in `run` and times `applier::drain` until nothing is
/// pending; then marks them again and times the `apply-dirty` step.
async fn apply_dirty(url: &str, run: &Run, keys: &[Vec<u8>]) -> ApplyDirty {
    let count = keys.len() as u64;
    profile("mark", true);
    let marking = mark_dirty(run, keys).await;
    profile("mark", false);
    profile("apply", true);
    let started = Instant::now();
    let applied = applier::drain(run, settings(), &FetchLimits::default(), Mode::UntilEmpty)
        .await
        .expect("drain");
    let drain = Measured {
        keys: applied.applied + applied.deleted,
        bytes: 0,
        elapsed: started.elapsed(),
    };
    profile("apply", false);
    assert_eq!(
        applied.applied, count,
        "every dirty key re-imported: {applied:?}"
    );

    mark_dirty(run, keys).await;
    profile("apply-step", true);
    let (elapsed, outcome) = keyferry_step(url, &run.store, &run.id, StepKind::ApplyDirty).await;
    profile("apply-step", false);
    let StepOutcome::Applied(applied) = outcome else {
        panic!("an apply-dirty step ended with {outcome:?}");
    };
    assert_eq!(
        applied.applied, count,
        "every dirty key re-imported: {applied:?}"
    );
    ApplyDirty {
        marking,
        drain,
        step: Measured {
            keys: applied.applied + applied.deleted,
            bytes: 0,
            elapsed,
        },
    }
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse::<usize>().ok());
    let n = numbers.next().unwrap_or(DEFAULT_KEYS).max(10);
    let rounds = numbers.next().unwrap_or(1).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path().to_path_buf();
    let scan_count = settings().scan_count;
    runtime.block_on(async move {
        let mut conn = connect(&url, 0).await;
        let load = Instant::now();
        load_strings(&mut conn, n).await;
        eprintln!("loaded {n} string keys in {:.1} s", load.elapsed().as_secs_f64());

        let mut rows = Vec::new();
        let mut reads = None;
        for _ in 0..rounds {
            profile("reads", true);
            let (m, read) = read_strings(&url, scan_count).await;
            profile("reads", false);
            keep_best(&mut reads, m);
            rows = read;
        }
        let reads = reads.expect("a round");
        assert_eq!(rows.len(), n, "SCAN returned every key exactly once");
        eprintln!("baseline A (reads): {:.0} keys/s", reads.keys_per_sec());
        let mut raw = None;
        for round in 0..rounds {
            profile("raw", true);
            keep_best(&mut raw, raw_sqlite(&dir, round, &rows));
            profile("raw", false);
        }
        let raw = raw.expect("a round");
        eprintln!("baseline B (raw SQLite): {:.0} keys/s", raw.keys_per_sec());
        let mut kf = None;
        let mut last_run = None;
        for round in 0..rounds {
            if let Some(previous) = last_run.take() {
                let previous: Run = previous;
                previous.store.shutdown();
            }
            let store = open_store(&dir, &format!("kf-{round}.sqlite"));
            profile("bulk", true);
            let (m, run) = keyferry_bulk(&url, store, &format!("bench-{round}")).await;
            profile("bulk", false);
            keep_best(&mut kf, m);
            last_run = Some(run);
        }
        let kf = kf.expect("a round");
        assert_eq!(kf.keys, n as u64, "keyferry migrated every key");
        eprintln!("keyferry bulk: {:.0} keys/s", kf.keys_per_sec());

        let dirty_n = (n / 2).min(MAX_DIRTY);
        let run = last_run.expect("a keyferry run");
        let dirty: Vec<Vec<u8>> = rows.iter().step_by(2).take(dirty_n).map(|r| r.0.clone()).collect();
        let applied = apply_dirty(&url, &run, &dirty).await;
        eprintln!(
            "apply-dirty: {:.0} keys/s (drain), {:.0} keys/s (step)",
            applied.drain.keys_per_sec(),
            applied.step.keys_per_sec()
        );
        run.store.shutdown();
        drop(rows);

        let mixed_n = n / 10;
        redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await.expect("FLUSHALL");
        let load = Instant::now();
        load_mixed(&url, mixed_n).await;
        eprintln!("loaded {mixed_n} mixed keys in {:.1} s", load.elapsed().as_secs_f64());
        let mut mixed_reads = None;
        let mut mixed_kf = None;
        for round in 0..rounds {
            keep_best(&mut mixed_reads, read_mixed(&url, scan_count).await);
            let store = open_store(&dir, &format!("kf-mixed-{round}.sqlite"));
            profile("mixed", true);
            let (m, run) = keyferry_bulk(&url, store, &format!("bench-mixed-{round}")).await;
            profile("mixed", false);
            run.store.shutdown();
            keep_best(&mut mixed_kf, m);
        }
        let (mixed_reads, mixed_kf) = (mixed_reads.expect("a round"), mixed_kf.expect("a round"));
        eprintln!("keyferry bulk, mixed: {:.0} keys/s", mixed_kf.keys_per_sec());
        assert_eq!(mixed_kf.keys, mixed_n as u64, "keyferry migrated every mixed key");

        let slower = if reads.elapsed > raw.elapsed { reads } else { raw };
        let slower_name = if reads.elapsed > raw.elapsed { "Redis reads" } else { "raw SQLite" };
        let ratio = slower.elapsed.as_secs_f64() / kf.elapsed.as_secs_f64();
        let mixed_ratio = mixed_reads.elapsed.as_secs_f64() / mixed_kf.elapsed.as_secs_f64();
        let apply_rate = applied.drain.keys_per_sec();

        println!();
        println!(
            "migrate_bulk: {n} string keys (16-byte keys, 32-byte values) + {mixed_n} mixed keys, \
             local redis-server; keyferry settings: scan count {}, batch keys {}, max concurrency {}; \
             baselines: SCAN COUNT {scan_count}, {BATCH} rows/transaction; best of {rounds}; {} cores",
            settings().scan_count,
            settings().batch_keys,
            settings().max_concurrency,
            std::thread::available_parallelism().map_or(0, |p| p.get())
        );
        println!();
        println!("| measurement | keys | seconds | keys/s | MB/s | result | target |");
        println!("|---|---:|---:|---:|---:|---|---|");
        row("baseline A: Redis reads (SCAN + pipelined TYPE/PTTL/GET)", Some(reads), "", "");
        row("baseline B: raw SQLite inserts, same rows, same order", Some(raw), "", "");
        row(
            "**keyferry bulk, small strings**",
            Some(kf),
            &format!(
                "{:.2}× Redis reads, {:.2}× raw SQLite",
                reads.elapsed.as_secs_f64() / kf.elapsed.as_secs_f64(),
                raw.elapsed.as_secs_f64() / kf.elapsed.as_secs_f64()
            ),
            &format!(
                "≥ {TARGET_RATIO}× ({}); aim 250k keys/s ({})",
                verdict(ratio >= TARGET_RATIO),
                verdict(kf.keys_per_sec() >= AIM_KEYS_PER_SEC)
            ),
        );
        row("baseline A: Redis reads, mixed (TYPE/PTTL, then read by type)", Some(mixed_reads), "", "");
        row(
            "**keyferry bulk, mixed** (hash/set/zset/list of 10–200, strings with TTL; dbs 0–1)",
            Some(mixed_kf),
            &format!("{mixed_ratio:.2}× Redis reads"),
            "",
        );
        row("mark dirty (KeyDirtied events, 1000 per write)", Some(applied.marking), "", "");
        row(
            "**keyferry apply-dirty** (`applier::drain`, until empty)",
            Some(applied.drain),
            "",
            &format!("≥ 100k keys/s ({})", verdict(apply_rate >= TARGET_APPLY_PER_SEC)),
        );
        let step_rate = applied.step.keys_per_sec();
        row(
            "keyferry apply-dirty step (the CLI's leased job, same keys again)",
            Some(applied.step),
            "",
            &format!("≥ 100k keys/s ({})", verdict(step_rate >= TARGET_APPLY_PER_SEC)),
        );
        println!();
        println!(
            "summary: bulk {:.0} keys/s = {ratio:.2}× the slower baseline ({slower_name}, {:.0} keys/s) [target ≥ {TARGET_RATIO}: {}]; \
             mixed {:.0} keys/s, {:.1} MB/s; apply-dirty {apply_rate:.0} keys/s [target ≥ 100k: {}]",
            kf.keys_per_sec(),
            slower.keys_per_sec(),
            verdict(ratio >= TARGET_RATIO),
            mixed_kf.keys_per_sec(),
            mixed_kf.mb_per_sec(),
            verdict(apply_rate >= TARGET_APPLY_PER_SEC),
        );
    });
    drop(server);
}

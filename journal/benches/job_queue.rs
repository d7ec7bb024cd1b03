//! Job queue throughput: enqueue, then dequeue + ack in batches through the
//! journal's group-commit writer, next to a raw-rusqlite baseline running
//! the same SQL on the same table without the journal, in the same run.
//!
//! ```text
//! cargo bench -p keyferry-journal --bench job_queue -- [JOBS] [WORKERS] [ROUNDS]
//!     (defaults: JOBS = 100000, WORKERS = 4, ROUNDS = 3)
//! ```
//!
//! Each measurement starts from a fresh file (WAL, `synchronous=NORMAL`,
//! keyferry's connection settings) holding JOBS queued jobs, enqueued
//! 1,000 per transaction (their rate is reported too). Then:
//!
//! - **keyferry, 1 worker**: one loop of `dequeue_in` (100 jobs, one writer
//!   job) then `ack_many_in` (those 100, one writer job), each awaited
//!   before the next: two commits per 100 jobs, no overlap;
//! - **keyferry, WORKERS workers**: that loop on WORKERS threads sharing
//!   the writer, which groups their jobs into common transactions — how an
//!   actor pool runs;
//! - **raw SQLite**: one connection doing exactly what the journal's path
//!   does to the `jobs` table — select the due batch, update each row to
//!   leased, read each back, commit; then for each job check the lease and
//!   update it to done, commit — without journal rows, encoding or
//!   checksums: the cost floor of the projection alone.
//!
//! Every job is checked to be done at the end of each run. Each
//! measurement is repeated ROUNDS times and the best kept (a busy machine
//! only ever makes a run slower). Target (issue 6): dequeue + ack ≥ 20k
//! jobs/s with batching.

use std::time::{Duration, Instant};

use keyferry_journal::connection::open_rw;
use keyferry_journal::jobs::{self, JobStatus, NewJob};
use keyferry_journal::schema::migrate;
use keyferry_journal::{COMPONENT, Durability, Journal, MIGRATIONS, WriterConfig, WriterHandle};
use rusqlite::{Connection, TransactionBehavior, params};

const DEFAULT_JOBS: usize = 100_000;
const DEFAULT_WORKERS: usize = 4;
const DEFAULT_ROUNDS: usize = 3;
/// Jobs per dequeue and per ack batch.
const BATCH: usize = 100;
/// Jobs per enqueue transaction.
const ENQUEUE_BATCH: usize = 1_000;
const QUEUE: &str = "bench";
const LEASE_MS: u64 = 60_000;
const TARGET_JOBS_PER_SEC: f64 = 20_000.0;

/// A typical migration-step payload: a JSON description with a source URI
/// (without password).
const PAYLOAD: &[u8] = br#"{"run_id":"bench","source":"redis://10.0.0.1:6379/0","db":0}"#;

fn new_job(i: usize) -> NewJob {
    NewJob {
        job_id: format!("job-{i:08}"),
        queue: QUEUE.into(),
        kind: "bench".into(),
        payload: PAYLOAD.to_vec(),
        priority: (i % 3) as i32,
        run_at_ms: 0,
        max_attempts: 3,
        dedupe_key: None,
    }
}

/// Parses the `n`-th free argument (cargo passes `--bench` first).
fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .nth(n)
        .map(|a| a.parse().expect("a number"))
        .unwrap_or(default)
}

/// A fresh journal file holding `jobs` queued jobs, and the enqueue rate.
fn journal_with_jobs(
    dir: &tempfile::TempDir,
    jobs: usize,
) -> (keyferry_journal::Writer, Journal, f64) {
    let path = dir.path().join("journal.sqlite");
    let (writer, journal) =
        Journal::open(&path, Durability::Normal, WriterConfig::default()).expect("open");
    let handle = journal.writer();
    let started = Instant::now();
    // Pipelined: every batch submitted, then all awaited.
    let pending: Vec<_> = (0..jobs)
        .step_by(ENQUEUE_BATCH)
        .map(|from| {
            handle.submit(move |c| {
                (from..(from + ENQUEUE_BATCH).min(jobs))
                    .try_for_each(|i| jobs::enqueue_in(c, new_job(i)).map(drop))
            })
        })
        .collect();
    for p in pending {
        p.wait().expect("enqueue");
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    (writer, journal, rate)
}

/// One worker's loop: dequeue a batch, ack it, until the queue is empty.
/// Returns the jobs it acked.
fn work(handle: &WriterHandle, worker: String) -> usize {
    let now = keyferry_journal::now_ms();
    let mut done = 0;
    loop {
        let me = worker.clone();
        let leased = handle
            .submit(move |c| jobs::dequeue_in(c, QUEUE, &me, LEASE_MS, now, BATCH))
            .wait()
            .expect("dequeue");
        if leased.is_empty() {
            return done;
        }
        let me = worker.clone();
        let acked = handle
            .submit(move |c| {
                let acks: Vec<(&str, &str, u64)> = leased
                    .iter()
                    .map(|j| (j.job_id.as_str(), me.as_str(), j.epoch))
                    .collect();
                jobs::ack_many_in(c, &acks)
            })
            .wait()
            .expect("ack");
        assert!(acked.iter().all(Result::is_ok), "every lease held");
        done += acked.len();
    }
}

/// Dequeue + ack of `jobs` jobs by `workers` threads sharing one writer:
/// (enqueue jobs/s, dequeue + ack jobs/s).
fn keyferry(jobs: usize, workers: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (writer, journal, enqueue_rate) = journal_with_jobs(&dir, jobs);
    let started = Instant::now();
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let handle = journal.writer();
            std::thread::spawn(move || work(&handle, format!("bench-worker-{w}")))
        })
        .collect();
    let done: usize = threads.into_iter().map(|t| t.join().expect("worker")).sum();
    let elapsed = started.elapsed();
    assert_eq!(done, jobs);
    let counts = journal
        .writer()
        .submit(jobs::jobs_by_status)
        .wait()
        .expect("counts");
    assert!(
        counts.contains(&(JobStatus::Done, jobs as u64)),
        "{counts:?}"
    );
    writer.shutdown();
    (enqueue_rate, jobs as f64 / elapsed.as_secs_f64())
}

/// The baseline: the same `jobs` table and SQL on one raw connection.
struct Raw {
    conn: Connection,
}

impl Raw {
    fn open(dir: &tempfile::TempDir) -> Raw {
        let mut conn = open_rw(&dir.path().join("raw.sqlite"), Durability::Normal).expect("open");
        // The journal's own migrations: the very same table and indexes.
        migrate(&mut conn, COMPONENT, MIGRATIONS).expect("migrate");
        Raw { conn }
    }

    fn enqueue(&mut self, jobs: usize) {
        let now = keyferry_journal::now_ms();
        for from in (0..jobs).step_by(ENQUEUE_BATCH) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .expect("begin");
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO jobs (job_id, enqueued_seq, updated_seq, updated_at_ms, queue,
                         kind, payload, priority, run_at_ms, max_attempts, dedupe_key)
                     VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT DO NOTHING",
                )
                .expect("prepare");
            for i in from..(from + ENQUEUE_BATCH).min(jobs) {
                let j = new_job(i);
                insert
                    .execute(params![
                        j.job_id,
                        i as i64 + 1,
                        now,
                        j.queue,
                        j.kind,
                        j.payload,
                        j.priority,
                        j.run_at_ms,
                        j.max_attempts,
                        j.dedupe_key
                    ])
                    .expect("insert");
            }
            drop(insert);
            tx.commit().expect("commit");
        }
    }

    /// Leases a batch and returns `(job_id, epoch)` of each, read back.
    fn dequeue(&mut self, worker: &str, now: i64) -> Vec<(String, i64)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        let due: Vec<(String, i64, i64)> = tx
            .prepare_cached(
                "SELECT job_id, epoch, attempts FROM jobs
                 WHERE queue = ?1 AND status = 'queued' AND run_at_ms <= ?2
                 ORDER BY priority DESC, run_at_ms, enqueued_seq LIMIT ?3",
            )
            .expect("prepare")
            .query_map(params![QUEUE, now, BATCH as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("select")
            .collect::<Result<_, _>>()
            .expect("rows");
        let mut out = Vec::with_capacity(due.len());
        for (job_id, epoch, attempts) in &due {
            tx.prepare_cached(
                "UPDATE jobs SET status = 'leased', worker = ?4, epoch = ?5,
                     lease_deadline_ms = ?6, attempts = ?7, updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'queued' AND epoch < ?5",
            )
            .expect("prepare")
            .execute(params![
                job_id,
                0,
                now,
                worker,
                epoch + 1,
                now + LEASE_MS as i64,
                attempts + 1
            ])
            .expect("update");
        }
        for (job_id, ..) in &due {
            // Read back every column, as the journal's dequeue returns
            // whole jobs.
            let row: (String, i64) = tx
                .prepare_cached(
                    "SELECT job_id, queue, kind, payload, priority, run_at_ms, max_attempts,
                         attempts, status, worker, epoch, lease_deadline_ms, last_error,
                         dedupe_key, enqueued_seq, updated_seq, updated_at_ms
                     FROM jobs WHERE job_id = ?1",
                )
                .expect("prepare")
                .query_row([job_id], |r| {
                    let _payload: Vec<u8> = r.get(3)?;
                    Ok((r.get(0)?, r.get(10)?))
                })
                .expect("read back");
            out.push(row);
        }
        tx.commit().expect("commit");
        out
    }

    /// Acks a batch: checks each lease, then marks it done.
    fn ack(&mut self, worker: &str, leased: &[(String, i64)]) {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        for (job_id, epoch) in leased {
            let (status, holder, current): (String, Option<String>, i64) = tx
                .prepare_cached(
                    "SELECT status, worker, epoch, attempts, max_attempts FROM jobs
                     WHERE job_id = ?1",
                )
                .expect("prepare")
                .query_row([job_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .expect("lease state");
            assert!(status == "leased" && holder.as_deref() == Some(worker) && current == *epoch);
            tx.prepare_cached(
                "UPDATE jobs SET status = 'done', lease_deadline_ms = NULL,
                     updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'leased' AND worker = ?4 AND epoch = ?5",
            )
            .expect("prepare")
            .execute(params![job_id, 0, 0, worker, epoch])
            .expect("update");
        }
        tx.commit().expect("commit");
    }
}

/// The raw baseline: (enqueue jobs/s, dequeue + ack jobs/s).
fn raw(jobs: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut raw = Raw::open(&dir);
    let started = Instant::now();
    raw.enqueue(jobs);
    let enqueue_rate = jobs as f64 / started.elapsed().as_secs_f64();
    let now = keyferry_journal::now_ms();
    let started = Instant::now();
    let mut done = 0;
    loop {
        let leased = raw.dequeue("raw-worker", now);
        if leased.is_empty() {
            break;
        }
        raw.ack("raw-worker", &leased);
        done += leased.len();
    }
    let elapsed = started.elapsed();
    assert_eq!(done, jobs);
    (enqueue_rate, jobs as f64 / elapsed.as_secs_f64())
}

/// The best (highest) of `rounds` runs of `measure`, field by field.
fn best(rounds: usize, measure: impl Fn() -> (f64, f64)) -> (f64, f64) {
    (0..rounds)
        .map(|_| measure())
        .fold((0.0, 0.0), |(a, b), (x, y)| (a.max(x), b.max(y)))
}

fn main() {
    let jobs = arg(0, DEFAULT_JOBS);
    let workers = arg(1, DEFAULT_WORKERS).max(1);
    let rounds = arg(2, DEFAULT_ROUNDS).max(1);
    println!(
        "job_queue: {jobs} jobs, batches of {BATCH}, {workers} workers, best of {rounds} rounds"
    );
    let started = Instant::now();
    let one = best(rounds, || keyferry(jobs, 1));
    let many = best(rounds, || keyferry(jobs, workers));
    let base = best(rounds, || raw(jobs));
    println!();
    println!("| measurement | enqueue jobs/s | dequeue+ack jobs/s | vs raw |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, (enq, deq): (f64, f64)| {
        println!(
            "| {name} | {enq:.0} | {deq:.0} | {:.2}× |",
            deq / base.1.max(f64::MIN_POSITIVE)
        );
    };
    row("keyferry, 1 worker", one);
    row(&format!("keyferry, {workers} workers"), many);
    row("raw SQLite (no journal), 1 connection", base);
    let headline = one.1.max(many.1);
    println!();
    println!(
        "dequeue+ack: {headline:.0} jobs/s (target ≥ {TARGET_JOBS_PER_SEC:.0}: {}), {:.2}× raw SQLite; bench took {:.1?}",
        if headline >= TARGET_JOBS_PER_SEC {
            "met"
        } else {
            "NOT met"
        },
        headline / base.1,
        Duration::from_secs_f64(started.elapsed().as_secs_f64()),
    );
}

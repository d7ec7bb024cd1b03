//! The group-commit writer: batching, isolation of failing and panicking
//! work, and shutdown.

use std::sync::mpsc;
use std::time::Duration;

use keyferry_journal::connection::{open_ro, open_rw};
use keyferry_journal::{Durability, Isolation, Pending, WriteError, Writer, WriterConfig};
use rusqlite::Connection;
use tempfile::TempDir;

/// A writer on a fresh file with one table `t(job TEXT)`. Batches may stay
/// open long, so a gated first job cannot split them by time.
fn writer() -> (TempDir, Writer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = open_rw(&dir.path().join("w.sqlite"), Durability::Normal).expect("open");
    conn.execute_batch("CREATE TABLE t (job TEXT NOT NULL)")
        .expect("table");
    let config = WriterConfig {
        max_batch_duration: Duration::from_secs(30),
        ..WriterConfig::default()
    };
    (dir, Writer::spawn(conn, config).expect("spawn"))
}

fn reader(dir: &TempDir) -> Connection {
    open_ro(&dir.path().join("w.sqlite")).expect("reader")
}

fn committed_jobs(dir: &TempDir) -> Vec<String> {
    let conn = reader(dir);
    let mut stmt = conn
        .prepare("SELECT job FROM t ORDER BY rowid")
        .expect("select");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn insert(conn: &Connection, job: &str) -> rusqlite::Result<()> {
    conn.execute("INSERT INTO t (job) VALUES (?1)", [job])
        .map(drop)
}

/// Submits a job that blocks the writer until the returned sender is
/// dropped or sent to, so the jobs submitted meanwhile queue up behind it
/// and land in its batch.
fn gate(writer: &Writer) -> (mpsc::Sender<()>, Pending<(), rusqlite::Error>) {
    let (open, wait) = mpsc::channel::<()>();
    let pending = writer.handle().submit(move |conn| {
        let _ = wait.recv();
        insert(conn, "gate")
    });
    (open, pending)
}

#[test]
fn group_commit_puts_queued_callers_in_one_transaction() {
    let (dir, writer) = writer();
    let (open, gate) = gate(&writer);
    let path = dir.path().join("w.sqlite");
    let second = writer.handle().submit(|conn| insert(conn, "second"));
    // The last job looks from outside: had the earlier jobs committed on
    // their own, a reader would see them. It sees nothing, so they are
    // still in the transaction this job runs in.
    let last = writer.handle().submit(move |conn| {
        insert(conn, "last")?;
        open_ro(&path)?.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
    });
    open.send(()).expect("release gate");
    gate.wait().expect("gate");
    second.wait().expect("second");
    assert_eq!(
        last.wait().expect("last"),
        0,
        "earlier jobs of the batch were not yet committed"
    );
    assert_eq!(committed_jobs(&dir), ["gate", "second", "last"]);
}

#[test]
fn failing_job_rolls_back_only_itself() {
    let (dir, writer) = writer();
    let (open, gate) = gate(&writer);
    let failing = writer.handle().submit(|conn| {
        insert(conn, "failing")?;
        Err::<(), _>(rusqlite::Error::InvalidQuery)
    });
    let after = writer.handle().submit(|conn| insert(conn, "after"));
    open.send(()).expect("release gate");
    gate.wait().expect("gate");
    assert!(matches!(
        failing.wait(),
        Err(WriteError::Op(rusqlite::Error::InvalidQuery))
    ));
    after.wait().expect("after");
    assert_eq!(committed_jobs(&dir), ["gate", "after"]);
}

#[test]
fn panicking_job_rolls_back_only_itself_and_writer_survives() {
    let (dir, writer) = writer();
    let (open, gate) = gate(&writer);
    let panicking = writer.handle().submit(|conn| -> rusqlite::Result<()> {
        insert(conn, "panicking")?;
        panic!("job exploded");
    });
    open.send(()).expect("release gate");
    gate.wait().expect("gate");
    match panicking.wait() {
        Err(WriteError::Panicked(message)) => {
            assert!(message.contains("job exploded"), "{message}")
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    writer
        .handle()
        .submit(|conn| insert(conn, "later"))
        .wait()
        .expect("writer still serves");
    assert_eq!(committed_jobs(&dir), ["gate", "later"]);
}

#[test]
fn submitting_after_shutdown_fails_with_writer_gone() {
    let (dir, writer) = writer();
    let handle = writer.handle();
    let queued = handle.submit(|conn| insert(conn, "queued"));
    writer.shutdown();
    queued.wait().expect("work queued before shutdown commits");
    let late = handle.submit(|conn| insert(conn, "late"));
    assert!(matches!(late.wait(), Err(WriteError::WriterGone)));
    assert_eq!(committed_jobs(&dir), ["queued"]);
}

#[test]
fn unisolated_job_that_fails_before_writing_leaves_its_batch_alone() {
    let (dir, writer) = writer();
    let (open, gate) = gate(&writer);
    let refused = writer
        .handle()
        .submit_with(Isolation::NoneWhenFailureWritesNothing, |_conn| {
            Err::<(), _>(rusqlite::Error::InvalidQuery)
        });
    let after = writer
        .handle()
        .submit_with(Isolation::NoneWhenFailureWritesNothing, |conn| {
            insert(conn, "after")
        });
    open.send(()).expect("release gate");
    gate.wait().expect("gate");
    assert!(matches!(refused.wait(), Err(WriteError::Op(_))));
    after.wait().expect("after");
    assert_eq!(committed_jobs(&dir), ["gate", "after"]);
}

#[test]
fn unisolated_job_that_fails_after_writing_fails_its_whole_batch() {
    let (dir, writer) = writer();
    let (open, gate) = gate(&writer);
    let broken = writer
        .handle()
        .submit_with(Isolation::NoneWhenFailureWritesNothing, |conn| {
            insert(conn, "half-done")?;
            Err::<(), _>(rusqlite::Error::InvalidQuery)
        });
    open.send(()).expect("release gate");
    // Nobody in the batch may be told "committed": nothing was.
    assert!(matches!(gate.wait(), Err(WriteError::Transaction(_))));
    assert!(matches!(broken.wait(), Err(WriteError::Transaction(_))));
    assert!(committed_jobs(&dir).is_empty());
    // The writer carries on with the next batch.
    writer
        .handle()
        .submit(|conn| insert(conn, "next"))
        .wait()
        .expect("next");
    assert_eq!(committed_jobs(&dir), ["next"]);
}

#[test]
fn after_commit_hooks_learn_whether_their_job_committed() {
    use keyferry_journal::writer::after_commit;
    let (_dir, writer) = writer();
    let (told, heard) = mpsc::channel::<(&str, bool)>();
    let hook = |name: &'static str| {
        let told = told.clone();
        Box::new(move |committed| told.send((name, committed)).unwrap())
    };
    let (ok_hook, failed_hook) = (hook("kept"), hook("failed"));
    let kept = writer.handle().submit(move |conn| {
        after_commit(ok_hook);
        insert(conn, "kept")
    });
    let failed: Pending<(), &str> = writer.handle().submit(move |_| {
        after_commit(failed_hook);
        Err("refused")
    });
    kept.wait().expect("kept commits");
    assert!(failed.wait().is_err());
    let mut heard: Vec<_> = heard.try_iter().collect();
    heard.sort();
    assert_eq!(heard, [("failed", false), ("kept", true)]);
}

/// Runs a job that records `name` through `run_now_if_idle` and answers
/// the thread it ran on.
fn run_now_if_idle(writer: &Writer, name: &'static str) -> std::thread::ThreadId {
    writer
        .handle()
        .run_now_if_idle(Isolation::Savepoint, move |conn| {
            insert(conn, name)?;
            Ok::<_, rusqlite::Error>(std::thread::current().id())
        })
        .wait()
        .expect(name)
}

fn writer_idle_after(durability: Durability, idle: Duration) -> (TempDir, Writer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = open_rw(&dir.path().join("w.sqlite"), durability).expect("open");
    conn.execute_batch("CREATE TABLE t (job TEXT NOT NULL)")
        .expect("table");
    let config = WriterConfig {
        inline_after_idle: Some(idle),
        ..WriterConfig::default()
    };
    (dir, Writer::spawn(conn, config).expect("spawn"))
}

#[test]
fn an_idle_writer_lets_the_caller_run_a_job_itself_then_batches_again() {
    let (dir, writer) = writer_idle_after(Durability::Normal, Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(300));
    let caller = std::thread::current().id();
    assert_eq!(run_now_if_idle(&writer, "alone"), caller);
    // A batch just ended (the caller's own): the next job goes to the
    // writer thread, where group commit happens.
    assert_ne!(run_now_if_idle(&writer, "right after"), caller);
    assert_eq!(committed_jobs(&dir), ["alone", "right after"]);
}

#[test]
fn a_job_never_overtakes_queued_work() {
    let (dir, writer) = writer();
    std::thread::sleep(Duration::from_millis(5));
    let (open, gate) = gate(&writer);
    let handle = writer.handle();
    let later = std::thread::spawn(move || {
        handle
            .run_now_if_idle(Isolation::Savepoint, |conn| insert(conn, "later"))
            .wait()
    });
    // Still blocked behind the gate, whichever thread it is queued on.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!later.is_finished());
    open.send(()).expect("release gate");
    gate.wait().expect("gate");
    later.join().expect("thread").expect("later");
    assert_eq!(committed_jobs(&dir), ["gate", "later"]);
}

#[test]
fn commits_that_fsync_never_run_on_the_caller() {
    let (dir, writer) = writer_idle_after(Durability::Full, Duration::from_micros(1));
    std::thread::sleep(Duration::from_millis(5));
    assert_ne!(
        run_now_if_idle(&writer, "durable"),
        std::thread::current().id()
    );
    assert_eq!(committed_jobs(&dir), ["durable"]);
}

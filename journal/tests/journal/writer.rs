//! The group-commit writer: batching, isolation of failing and panicking
//! work, and shutdown.

use std::sync::mpsc;
use std::time::Duration;

use keyferry_journal::connection::{open_ro, open_rw};
use keyferry_journal::{Cost, Durability, Isolation, Pending, WriteError, Writer, WriterConfig};
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
    // Hooks run right after the callers were answered: wait for them.
    let mut heard: Vec<_> = (0..2)
        .map(|_| heard.recv_timeout(Duration::from_secs(5)).expect("hook"))
        .collect();
    heard.sort();
    assert_eq!(heard, [("failed", false), ("kept", true)]);
}

/// A writer with the given durability, on a file with table `t`.
fn writer_with(durability: Durability) -> (TempDir, Writer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = open_rw(&dir.path().join("w.sqlite"), durability).expect("open");
    conn.execute_batch("CREATE TABLE t (job TEXT NOT NULL)")
        .expect("table");
    (
        dir,
        Writer::spawn(conn, WriterConfig::default()).expect("spawn"),
    )
}

/// A single-threaded runtime, as one I/O thread of `keyferry serve`.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Submits, through `submit_local`, a job that records `name` and answers
/// the thread it ran on and what a separate reader saw of `t` meanwhile.
fn local(
    writer: &Writer,
    cost: Cost,
    name: &'static str,
    dir: &TempDir,
) -> Pending<(std::thread::ThreadId, i64), rusqlite::Error> {
    let reader = reader(dir);
    writer
        .handle()
        .submit_local(Isolation::Savepoint, cost, move |conn| {
            insert(conn, name)?;
            let seen: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
            Ok((std::thread::current().id(), seen))
        })
}

#[test]
fn local_jobs_of_one_turn_commit_together_on_the_runtime_thread() {
    let (dir, writer) = writer_with(Durability::Normal);
    let ran = runtime().block_on(async {
        // Three tasks submit in the same turn of the runtime.
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let job = local(&writer, Cost::Fast, name, &dir);
                tokio::spawn(async move { job.await.expect(name) })
            })
            .collect();
        let mut ran = Vec::new();
        for task in tasks {
            ran.push(task.await.expect("task"));
        }
        ran
    });
    let here = std::thread::current().id();
    // All on this (the runtime's) thread, and none saw another commit:
    // one transaction.
    assert_eq!(ran, [(here, 0), (here, 0), (here, 0)]);
    assert_eq!(committed_jobs(&dir), ["a", "b", "c"]);
}

#[test]
fn a_slow_job_and_the_rest_of_its_turn_go_to_the_writer_thread_and_the_next_turn_waits() {
    let (dir, writer) = writer_with(Durability::Normal);
    let ran = runtime().block_on(async {
        let turn = [
            local(&writer, Cost::Fast, "fast", &dir),
            local(&writer, Cost::Slow, "slow", &dir),
            local(&writer, Cost::Fast, "fast after slow", &dir),
        ];
        let mut ran = Vec::new();
        for job in turn {
            ran.push(job.await.expect("job"));
        }
        let next = local(&writer, Cost::Fast, "next turn", &dir);
        ran.push(next.await.expect("next turn"));
        ran
    });
    let here = std::thread::current().id();
    assert_eq!(ran[0], (here, 0));
    assert_ne!(ran[1].0, here);
    assert_eq!(ran[2].0, ran[1].0);
    // Back here once the writer thread answered (it saw all three).
    assert_eq!(ran[3], (here, 3));
    assert_eq!(
        committed_jobs(&dir),
        ["fast", "slow", "fast after slow", "next turn"]
    );
}

/// While the writer thread holds the connection, a turn's jobs go to it;
/// the turns after that commit here again.
#[test]
fn local_jobs_wait_for_a_busy_writer_then_commit_here_again() {
    let (dir, writer) = writer();
    let (running, started) = mpsc::channel();
    let (open, wait) = mpsc::channel::<()>();
    let gate = writer.handle().submit(move |conn| {
        running.send(()).expect("test waits");
        let _ = wait.recv();
        insert(conn, "gate")
    });
    started.recv().expect("gate running");
    let here = std::thread::current().id();
    let (later, after) = runtime().block_on(async {
        let later = tokio::spawn(local(&writer, Cost::Fast, "later", &dir));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!later.is_finished(), "ran before the gate's batch");
        open.send(()).expect("release gate");
        let later = later.await.expect("task").expect("later");
        let after = local(&writer, Cost::Fast, "after the gate", &dir)
            .await
            .expect("after the gate");
        (later, after)
    });
    gate.wait().expect("gate");
    assert_ne!(later.0, here);
    assert_eq!(after.0, here);
    assert_eq!(committed_jobs(&dir), ["gate", "later", "after the gate"]);
}

#[test]
fn local_jobs_run_on_the_writer_thread_outside_a_runtime_or_when_commits_fsync() {
    let here = std::thread::current().id();
    let (dir, writer) = writer_with(Durability::Normal);
    let outside = local(&writer, Cost::Fast, "outside", &dir)
        .wait()
        .expect("outside");
    assert_ne!(outside.0, here);
    let (dir, writer) = writer_with(Durability::Full);
    let durable = runtime()
        .block_on(local(&writer, Cost::Fast, "durable", &dir))
        .expect("durable");
    assert_ne!(durable.0, here);
    assert_eq!(committed_jobs(&dir), ["durable"]);
}

/// A committer that dies (here: an after-commit hook panics) must not
/// leave the queue believing a committer is still coming.
#[test]
fn local_jobs_still_commit_after_a_hook_panicked() {
    use keyferry_journal::writer::after_commit;
    let (dir, writer) = writer_with(Durability::Normal);
    runtime().block_on(async {
        let first = writer
            .handle()
            .submit_local(Isolation::Savepoint, Cost::Fast, |conn| {
                after_commit(Box::new(|_| panic!("a hook that panics")));
                insert(conn, "first")
            });
        first.await.expect("first commits before its hook runs");
        // Let the committer finish dying.
        tokio::task::yield_now().await;
        let second = local(&writer, Cost::Fast, "second", &dir);
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("a committer ran the next job")
            .expect("second");
    });
    assert_eq!(committed_jobs(&dir), ["first", "second"]);
}

//! The job queue's operations and projection: every transition, fencing,
//! exclusive leases under concurrent dequeues, backoff and dead-lettering,
//! dedupe, dequeue order, fresh rows, and rebuilding the table from the
//! journal.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior};

use super::*;
use crate::connection::{open_ro, open_rw};
use crate::read::Entries;
use crate::schema::migrate;
use crate::{
    COMPONENT, Durability, Journal, MIGRATIONS, Projection, Summary, WriterConfig, WriterHandle,
    projections,
};

const LEASE_MS: u64 = 30_000;
const NOW: i64 = 1_700_000_000_000;

/// A fresh in-memory database with the journal's tables.
fn db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory db");
    migrate(&mut conn, COMPONENT, MIGRATIONS).expect("migrate");
    conn
}

/// Runs `op` in a `BEGIN IMMEDIATE` transaction, committed only if it
/// succeeds — as the writer runs a job.
fn tx<R>(
    conn: &mut Connection,
    op: impl FnOnce(&Connection) -> Result<R, JobError>,
) -> Result<R, JobError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = op(&tx)?;
    tx.commit()?;
    Ok(out)
}

fn new_job(job_id: &str) -> NewJob {
    NewJob {
        job_id: job_id.into(),
        queue: "q".into(),
        kind: "bulk".into(),
        payload: b"redis://127.0.0.1:6379/0\0\xff".to_vec(),
        priority: 0,
        run_at_ms: 0,
        max_attempts: 3,
        dedupe_key: None,
    }
}

fn enqueue(conn: &mut Connection, new: NewJob) -> Job {
    tx(conn, |c| enqueue_in(c, new)).expect("enqueue")
}

fn dequeue(conn: &mut Connection, worker: &str, now_ms: i64, limit: usize) -> Vec<Job> {
    tx(conn, |c| {
        dequeue_in(c, "q", worker, LEASE_MS, now_ms, limit)
    })
    .expect("dequeue")
}

fn get(conn: &Connection, job_id: &str) -> Job {
    job(conn, job_id).expect("query").expect("job exists")
}

/// The kinds of the journal's events, in order.
fn kinds(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT kind FROM journal ORDER BY seq")
        .expect("select")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn enqueue_stores_every_field() {
    let mut conn = db();
    let mut new = new_job("a");
    new.priority = -3;
    new.run_at_ms = NOW;
    new.dedupe_key = Some("bulk:run-1".into());
    let job = enqueue(&mut conn, new.clone());
    assert_eq!(
        job,
        Job {
            job_id: "a".into(),
            queue: "q".into(),
            kind: "bulk".into(),
            payload: new.payload,
            priority: -3,
            run_at_ms: NOW,
            max_attempts: 3,
            attempts: 0,
            status: JobStatus::Queued,
            worker: None,
            epoch: 0,
            lease_deadline_ms: None,
            last_error: None,
            dedupe_key: Some("bulk:run-1".into()),
            enqueued_seq: 1,
            updated_seq: 1,
            updated_at_ms: job.updated_at_ms,
        }
    );
    assert_eq!(kinds(&conn), ["job_enqueued"]);
    assert!(matches!(
        tx(&mut conn, |c| enqueue_in(c, new_job("a"))),
        Err(JobError::AlreadyExists { job_id }) if job_id == "a"
    ));
}

#[test]
fn dequeue_returns_the_job_as_it_is_after_the_dequeue() {
    let mut conn = db();
    enqueue(&mut conn, new_job("a"));
    let got = dequeue(&mut conn, "w-1", NOW, 10);
    // The pre-update row said queued, attempt 0, no worker, epoch 0: each
    // of these assertions fails if that stale row were returned.
    assert_eq!(got.len(), 1);
    let job = &got[0];
    assert_eq!(job.status, JobStatus::Leased);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.worker.as_deref(), Some("w-1"));
    assert_eq!(job.epoch, 1);
    assert_eq!(job.lease_deadline_ms, Some(NOW + LEASE_MS as i64));
    assert_eq!(job.updated_seq, 2);
    assert_eq!(*job, get(&conn, "a"), "exactly the stored row");
    assert!(dequeue(&mut conn, "w-2", NOW, 10).is_empty(), "leased once");
}

#[test]
fn every_transition() {
    let mut conn = db();
    enqueue(&mut conn, new_job("a"));
    let leased = dequeue(&mut conn, "w", NOW, 1).remove(0);

    let beat = tx(&mut conn, |c| {
        heartbeat_in(c, "a", "w", leased.epoch, 60_000, NOW + 10)
    })
    .expect("heartbeat");
    assert_eq!(beat.lease_deadline_ms, Some(NOW + 60_010));
    assert_eq!((beat.status, beat.epoch), (JobStatus::Leased, 1));

    // Failed → retried: queued again after the backoff, attempts kept.
    let retried = tx(&mut conn, |c| {
        fail_in(c, "a", "w", 1, "boom", NOW + 20, &Backoff::default())
    })
    .expect("fail");
    assert_eq!(retried.status, JobStatus::Queued);
    assert_eq!(retried.run_at_ms, NOW + 20 + 1_000);
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.worker, None);
    assert_eq!(retried.lease_deadline_ms, None);
    assert_eq!(retried.last_error.as_deref(), Some("boom"));
    assert!(
        dequeue(&mut conn, "w", NOW + 20, 1).is_empty(),
        "not due before its backoff ran out"
    );

    // Leased again (attempt 2, epoch 2), the lease runs out, reclaimed.
    let second = dequeue(&mut conn, "w", NOW + 1_020, 1).remove(0);
    assert_eq!((second.attempts, second.epoch), (2, 2));
    let deadline = second.lease_deadline_ms.expect("deadline");
    let none = tx(&mut conn, |c| reclaim_expired_in(c, deadline - 1, 10)).expect("reclaim");
    assert!(none.is_empty(), "a running lease is not reclaimed");
    let reclaimed = tx(&mut conn, |c| reclaim_expired_in(c, deadline, 10)).expect("reclaim");
    assert_eq!(reclaimed, ["a"]);
    let queued = get(&conn, "a");
    assert_eq!(
        (queued.status, queued.worker, queued.lease_deadline_ms),
        (JobStatus::Queued, None, None)
    );
    assert_eq!((queued.attempts, queued.epoch), (2, 2), "both kept");

    // Leased a third time and acked.
    let third = dequeue(&mut conn, "w2", deadline, 1).remove(0);
    assert_eq!((third.attempts, third.epoch), (3, 3));
    tx(&mut conn, |c| ack_in(c, "a", "w2", 3)).expect("ack");
    let done = get(&conn, "a");
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(done.worker.as_deref(), Some("w2"), "who finished it");
    assert_eq!(done.lease_deadline_ms, None);
    assert!(matches!(
        tx(&mut conn, |c| lease_in(c, "a", "w", LEASE_MS, NOW)),
        Err(JobError::NotLeasable {
            status: JobStatus::Done,
            ..
        })
    ));

    assert_eq!(
        kinds(&conn),
        [
            "job_enqueued",
            "job_leased",
            "job_heartbeat",
            "job_failed",
            "job_retried",
            "job_leased",
            "job_lease_expired",
            "job_leased",
            "job_acked",
        ]
    );
}

#[test]
fn fencing_rejects_an_old_epoch_after_reclaim_and_re_lease() {
    let mut conn = db();
    enqueue(&mut conn, new_job("a"));
    let old = dequeue(&mut conn, "w-old", NOW, 1).remove(0);
    let later = NOW + LEASE_MS as i64;
    tx(&mut conn, |c| reclaim_expired_in(c, later, 10)).expect("reclaim");
    let new = tx(&mut conn, |c| lease_in(c, "a", "w-new", LEASE_MS, later)).expect("re-lease");
    assert_eq!(new.epoch, old.epoch + 1);
    let events = kinds(&conn).len();

    let lost = |e: Result<(), JobError>| match e {
        Err(JobError::LeaseLost {
            job_id,
            status,
            holder,
            epoch,
        }) => {
            assert_eq!(job_id, "a");
            assert_eq!(status, JobStatus::Leased);
            assert_eq!(holder.as_deref(), Some("w-new"));
            assert_eq!(epoch, 2);
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    };
    lost(tx(&mut conn, |c| check_lease_in(c, "a", "w-old", 1)));
    lost(tx(&mut conn, |c| ack_in(c, "a", "w-old", 1)));
    lost(tx(&mut conn, |c| {
        heartbeat_in(c, "a", "w-old", 1, LEASE_MS, later).map(drop)
    }));
    lost(tx(&mut conn, |c| {
        fail_in(c, "a", "w-old", 1, "late", later, &Backoff::default()).map(drop)
    }));
    // The right worker with a stale epoch is fenced off too.
    lost(tx(&mut conn, |c| ack_in(c, "a", "w-new", 1)));
    assert_eq!(kinds(&conn).len(), events, "nothing appended");

    tx(&mut conn, |c| check_lease_in(c, "a", "w-new", 2)).expect("the holder passes");
    tx(&mut conn, |c| ack_in(c, "a", "w-new", 2)).expect("the holder acks");
    let err = tx(&mut conn, |c| ack_in(c, "a", "w-new", 2)).expect_err("acked once");
    assert!(
        matches!(
            &err,
            JobError::LeaseLost {
                status: JobStatus::Done,
                holder: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        tx(&mut conn, |c| check_lease_in(c, "nope", "w", 1)),
        Err(JobError::NotFound { .. })
    ));
}

#[test]
fn lease_of_a_held_job_names_the_holder_and_takes_over_an_expired_one() {
    let mut conn = db();
    enqueue(&mut conn, new_job("bulk:run-1"));
    let first = tx(&mut conn, |c| {
        lease_in(c, "bulk:run-1", "host-a:pid-1", LEASE_MS, NOW)
    })
    .expect("lease");
    assert_eq!((first.status, first.epoch), (JobStatus::Leased, 1));

    let err = tx(&mut conn, |c| {
        lease_in(c, "bulk:run-1", "host-b:pid-2", LEASE_MS, NOW + 1)
    })
    .expect_err("held");
    assert!(
        matches!(&err, JobError::Held { holder, deadline_ms, .. }
            if holder == "host-a:pid-1" && *deadline_ms == NOW + LEASE_MS as i64),
        "{err:?}"
    );
    assert!(err.to_string().contains("held by host-a:pid-1"), "{err}");

    // The holder died: once its lease ran out the job can be resumed.
    let taken = tx(&mut conn, |c| {
        lease_in(
            c,
            "bulk:run-1",
            "host-b:pid-2",
            LEASE_MS,
            NOW + LEASE_MS as i64,
        )
    })
    .expect("take over");
    assert_eq!(taken.worker.as_deref(), Some("host-b:pid-2"));
    assert_eq!((taken.epoch, taken.attempts), (2, 2));
    assert_eq!(
        kinds(&conn)[1..],
        ["job_leased", "job_lease_expired", "job_leased"]
    );
    assert!(matches!(
        tx(&mut conn, |c| lease_in(c, "nope", "w", LEASE_MS, NOW)),
        Err(JobError::NotFound { .. })
    ));
}

#[test]
fn backoff_grows_exponentially_up_to_its_cap() {
    let backoff = Backoff::default();
    let secs: Vec<u64> = (1..=12).map(|a| backoff.delay(a).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(300));
    let custom = Backoff {
        base: Duration::from_millis(100),
        factor: 3,
        cap: Duration::from_secs(1),
    };
    let ms: Vec<u128> = (1..=4).map(|a| custom.delay(a).as_millis()).collect();
    assert_eq!(ms, [100, 300, 900, 1_000]);
}

#[test]
fn failures_retry_with_backoff_then_dead_letter() {
    let mut conn = db();
    enqueue(&mut conn, new_job("a"));
    let backoff = Backoff::default();
    let mut now = NOW;
    for attempt in 1..=3 {
        let job = dequeue(&mut conn, "w", now, 1).remove(0);
        assert_eq!(job.attempts, attempt);
        let after = tx(&mut conn, |c| {
            fail_in(
                c,
                "a",
                "w",
                job.epoch,
                &format!("err {attempt}"),
                now,
                &backoff,
            )
        })
        .expect("fail");
        if attempt < 3 {
            assert_eq!(after.status, JobStatus::Queued);
            assert_eq!(
                after.run_at_ms,
                now + backoff.delay(attempt).as_millis() as i64
            );
            now = after.run_at_ms;
        } else {
            assert_eq!(after.status, JobStatus::Dead);
            assert_eq!(after.attempts, 3);
            assert_eq!(after.last_error.as_deref(), Some("err 3"));
        }
    }
    assert!(dequeue(&mut conn, "w", i64::MAX, 10).is_empty());
    assert_eq!(
        kinds(&conn).last().map(String::as_str),
        Some("job_dead_lettered")
    );
}

#[test]
fn dedupe_returns_the_alive_job_until_it_is_done() {
    let mut conn = db();
    let keyed = |id: &str| NewJob {
        dedupe_key: Some("bulk:run-1".into()),
        ..new_job(id)
    };
    let first = enqueue(&mut conn, keyed("a"));
    let again = enqueue(&mut conn, keyed("b"));
    assert_eq!(again, first, "the existing job, unchanged");
    let leased = dequeue(&mut conn, "w", NOW, 1).remove(0);
    assert_eq!(
        enqueue(&mut conn, keyed("b")).job_id,
        "a",
        "leased is alive"
    );
    assert_eq!(kinds(&conn), ["job_enqueued", "job_leased"]);

    tx(&mut conn, |c| ack_in(c, "a", "w", leased.epoch)).expect("ack");
    let next = enqueue(&mut conn, keyed("b"));
    assert_eq!(
        (next.job_id.as_str(), next.status),
        ("b", JobStatus::Queued),
        "the key is free once its job is done"
    );
    // Rows without a key never collide.
    enqueue(&mut conn, new_job("c"));
    enqueue(&mut conn, new_job("d"));
}

#[test]
fn dequeue_order_is_priority_then_run_at_then_age() {
    let mut conn = db();
    for (id, priority, run_at_ms) in [
        ("low-old", 0, 0),
        ("high-late", 5, NOW - 10),
        ("low-new", 0, 0),
        ("high-early", 5, NOW - 20),
        ("future", 100, NOW + 1),
        ("negative", -1, 0),
    ] {
        enqueue(
            &mut conn,
            NewJob {
                priority,
                run_at_ms,
                ..new_job(id)
            },
        );
    }
    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
    assert_eq!(
        ids(dequeue(&mut conn, "w", NOW, 3)),
        ["high-early", "high-late", "low-old"]
    );
    assert_eq!(
        ids(dequeue(&mut conn, "w", NOW, 10)),
        ["low-new", "negative"],
        "the job not due yet stays"
    );
    assert_eq!(ids(dequeue(&mut conn, "w", NOW + 1, 10)), ["future"]);
    // Another queue's jobs are never taken.
    enqueue(
        &mut conn,
        NewJob {
            queue: "other".into(),
            ..new_job("elsewhere")
        },
    );
    assert!(dequeue(&mut conn, "w", NOW, 10).is_empty());
}

#[test]
fn ack_many_reports_each_job() {
    let mut conn = db();
    for id in ["a", "b", "c"] {
        enqueue(&mut conn, new_job(id));
    }
    let leased = dequeue(&mut conn, "w", NOW, 3);
    assert_eq!(leased.len(), 3);
    let outcomes = tx(&mut conn, |c| {
        ack_many_in(
            c,
            &[
                ("a", "w", 1),
                ("b", "w", 7),
                ("a", "w", 1),
                ("nope", "w", 1),
                ("c", "w", 1),
            ],
        )
    })
    .expect("batch");
    let summary: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            Ok(()) => "ok",
            Err(JobError::LeaseLost { .. }) => "lost",
            Err(JobError::NotFound { .. }) => "missing",
            Err(_) => "other",
        })
        .collect();
    assert_eq!(summary, ["ok", "lost", "lost", "missing", "ok"]);
    assert_eq!(get(&conn, "b").status, JobStatus::Leased);
    assert_eq!(
        jobs_by_status(&conn).expect("counts"),
        [
            (JobStatus::Queued, 0),
            (JobStatus::Leased, 1),
            (JobStatus::Done, 2),
            (JobStatus::Failed, 0),
            (JobStatus::Dead, 0),
        ]
    );
}

#[test]
fn list_filters_by_queue_and_status() {
    let mut conn = db();
    for id in ["a", "b", "c"] {
        enqueue(&mut conn, new_job(id));
    }
    enqueue(
        &mut conn,
        NewJob {
            queue: "other".into(),
            ..new_job("x")
        },
    );
    dequeue(&mut conn, "w", NOW, 1);
    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
    assert_eq!(
        ids(list(&conn, None, None, 10).expect("list")),
        ["a", "b", "c", "x"]
    );
    assert_eq!(
        ids(list(&conn, Some("q"), Some(JobStatus::Queued), 10).expect("list")),
        ["b", "c"]
    );
    assert_eq!(
        ids(list(&conn, None, Some(JobStatus::Leased), 10).expect("list")),
        ["a"]
    );
    assert_eq!(
        ids(list(&conn, Some("other"), None, 10).expect("list")),
        ["x"]
    );
    assert_eq!(ids(list(&conn, None, None, 2).expect("list")), ["a", "b"]);
}

/// The plan SQLite chose for `sql`, one line per step.
fn plan(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("explain")
        .query_map(params, |r| r.get::<_, String>(3))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows")
        .join("\n")
}

#[test]
fn dequeue_and_reclaim_are_index_range_scans() {
    let conn = db();
    let dequeue = plan(&conn, DUE_SQL, rusqlite::params!["q", NOW, 10]);
    assert_eq!(
        dequeue, "SEARCH jobs USING INDEX jobs_dequeue (queue=? AND status=?)",
        "one index range, in ORDER BY order (no temp b-tree)"
    );
    let reclaim = plan(&conn, EXPIRED_SQL, rusqlite::params![NOW, 10]);
    assert_eq!(
        reclaim,
        "SEARCH jobs USING INDEX jobs_reclaim (status=? AND lease_deadline_ms<?)"
    );
    let dedupe = plan(
        &conn,
        "SELECT job_id FROM jobs WHERE dedupe_key = ?1 AND status IN ('queued', 'leased', 'failed')",
        rusqlite::params!["k"],
    );
    assert!(dedupe.contains("USING INDEX jobs_dedupe"), "{dedupe}");
}

#[test]
fn concurrent_dequeues_lease_every_job_exactly_once() {
    const JOBS: usize = 600;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.sqlite");
    let mut conn = open_rw(&path, Durability::Normal).expect("open");
    migrate(&mut conn, COMPONENT, MIGRATIONS).expect("migrate");
    tx(&mut conn, |c| {
        (0..JOBS).try_for_each(|i| enqueue_in(c, new_job(&format!("job-{i:04}"))).map(drop))
    })
    .expect("enqueue");

    // Two workers, each with its own WAL connection (busy timeout set by
    // open_rw) and BEGIN IMMEDIATE transactions, race for small batches.
    let workers: Vec<_> = ["w-1", "w-2"]
        .into_iter()
        .map(|worker| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut conn = open_rw(&path, Durability::Normal).expect("open");
                let mut got = Vec::new();
                loop {
                    let batch = dequeue_batch(&mut conn, worker);
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|j| (j.job_id, j.worker, j.epoch)));
                }
            })
        })
        .collect();
    let mut leased: HashMap<String, Vec<String>> = HashMap::new();
    for worker in workers {
        for (job_id, holder, epoch) in worker.join().expect("worker") {
            assert_eq!(epoch, 1);
            leased
                .entry(job_id)
                .or_default()
                .push(holder.expect("holder"));
        }
    }
    assert_eq!(leased.len(), JOBS, "every job leased");
    assert!(
        leased.values().all(|holders| holders.len() == 1),
        "no job leased twice"
    );
    let by_worker = |w: &str| leased.values().filter(|h| h[0] == w).count();
    assert_eq!(by_worker("w-1") + by_worker("w-2"), JOBS);
    let journal_leases: i64 = conn
        .query_row(
            "SELECT count(*) FROM journal WHERE kind = 'job_leased'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(journal_leases as usize, JOBS, "one lease event per job");
}

fn dequeue_batch(conn: &mut Connection, worker: &str) -> Vec<Job> {
    // Yield between batches so both threads get turns on two cores.
    std::thread::yield_now();
    tx(conn, |c| dequeue_in(c, "q", worker, LEASE_MS, NOW, 7)).expect("dequeue")
}

/// Every row of the `jobs` table, by job id, column by column.
fn dump(conn: &Connection) -> Vec<Vec<Value>> {
    let mut stmt = conn
        .prepare("SELECT * FROM jobs ORDER BY job_id")
        .expect("select");
    let columns = stmt.column_count();
    stmt.query_map([], |r| (0..columns).map(|i| r.get(i)).collect())
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Runs `op` as a writer job and waits for its commit.
fn write(
    handle: &WriterHandle,
    op: impl FnOnce(&Connection) -> Result<(), JobError> + Send + 'static,
) {
    handle.submit(op).wait().expect("write");
}

#[test]
fn rebuilding_from_the_journal_gives_identical_rows_and_summary_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.sqlite");
    let (writer, journal) =
        Journal::open(&path, Durability::Normal, WriterConfig::default()).expect("open");
    let handle = journal.writer();
    write(&handle, |c| {
        for i in 0..20 {
            let mut new = new_job(&format!("j{i:02}"));
            new.priority = i % 3;
            new.max_attempts = 2;
            new.dedupe_key = (i % 5 == 0).then(|| format!("step-{i}"));
            enqueue_in(c, new)?;
        }
        Ok(())
    });
    write(&handle, |c| {
        let jobs = dequeue_in(c, "q", "w-1", LEASE_MS, NOW, 12)?;
        let acks: Vec<(&str, &str, u64)> = jobs[..4]
            .iter()
            .map(|j| (j.job_id.as_str(), "w-1", j.epoch))
            .collect();
        ack_many_in(c, &acks)?;
        for j in &jobs[4..8] {
            fail_in(
                c,
                &j.job_id,
                "w-1",
                j.epoch,
                "boom",
                NOW,
                &Backoff::default(),
            )?;
        }
        heartbeat_in(c, &jobs[8].job_id, "w-1", 1, LEASE_MS, NOW + 5)?;
        Ok(())
    });
    write(&handle, |c| {
        reclaim_expired_in(c, NOW + 2 * LEASE_MS as i64, 100)?;
        for j in dequeue_in(c, "q", "w-2", LEASE_MS, NOW + 3_000_000, 100)? {
            if j.attempts == 2 {
                fail_in(
                    c,
                    &j.job_id,
                    "w-2",
                    j.epoch,
                    "again",
                    NOW,
                    &Backoff::default(),
                )?;
            }
        }
        enqueue_in(c, new_job("late")).map(drop)
    });
    writer.shutdown();

    let entries: Vec<_> = Entries::new(open_ro(&path).expect("reader"), 1, i64::MAX)
        .collect::<Result<_, _>>()
        .expect("clean journal");
    let mut rebuilt = db();
    let tx = rebuilt.transaction().expect("tx");
    for entry in &entries {
        projections::apply(&tx, entry.seq, entry.at_ms, &entry.event).expect("apply");
    }
    tx.commit().expect("commit");
    let stored = open_ro(&path).expect("reader");
    let rows = dump(&stored);
    assert_eq!(rows.len(), 21);
    assert_eq!(
        rows,
        dump(&rebuilt),
        "the table is the journal's projection"
    );

    // The summary, counting transitions, agrees with the table.
    let mut summary = Summary::default();
    for entry in &entries {
        summary.apply(entry.seq, &entry.event);
    }
    let summary = summary.jobs;
    let counts = jobs_by_status(&stored).expect("counts");
    assert_eq!(
        counts,
        [
            (JobStatus::Queued, summary.queued),
            (JobStatus::Leased, summary.leased),
            (JobStatus::Done, summary.done),
            (JobStatus::Failed, summary.failed),
            (JobStatus::Dead, summary.dead),
        ]
    );
    assert!(summary.dead > 0 && summary.done > 0 && summary.queued > 0 && summary.leased > 0);
}

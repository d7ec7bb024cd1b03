//! The migration registry is written in the transaction of every append,
//! whichever path appended: it commits and rolls back with the journal
//! rows, does not depend on how events were batched, and is exactly what
//! re-applying the journal into an empty file gives (`replay --check`).

use keyferry_journal::connection::open_ro;
use keyferry_journal::schema::migrate;
use keyferry_journal::writer::WriteError;
use keyferry_journal::{
    COMPONENT, Counters, Entry, Event, JournalError, MIGRATIONS, RunStatus, Severity, append_in,
    jobs, projections, registry,
};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::TempJournal;
use crate::samples::BINARY_KEY;

/// The projection tables (the registry's and the job queue's), each with
/// the order that makes its dump stable.
const TABLES: &[(&str, &str)] = &[
    ("migration_runs", "run_id"),
    ("migration_dirty_keys", "run_id, db, key"),
    ("migration_errors", "seq"),
    ("jobs", "job_id"),
];

/// Every projection row, table by table, column by column.
pub(crate) fn dump(conn: &Connection) -> Vec<(String, Vec<Vec<Value>>)> {
    dump_with(conn, |_| false)
}

/// Like [`dump`], with the columns holding append times (`at_ms`,
/// `*_at_ms`) nulled: appends made at different moments stamp different
/// times.
fn dump_without_times(conn: &Connection) -> Vec<(String, Vec<Vec<Value>>)> {
    dump_with(conn, |column| {
        column == "at_ms" || column.ends_with("_at_ms")
    })
}

fn dump_with(conn: &Connection, skip: impl Fn(&str) -> bool) -> Vec<(String, Vec<Vec<Value>>)> {
    TABLES
        .iter()
        .map(|(table, order)| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
                .expect("select");
            let skipped: Vec<bool> = stmt.column_names().map(&skip).collect();
            let rows = stmt
                .query_map([], |r| {
                    (0..skipped.len())
                        .map(|i| {
                            if skipped[i] {
                                Ok(Value::Null)
                            } else {
                                r.get(i)
                            }
                        })
                        .collect()
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            (table.to_string(), rows)
        })
        .collect()
}

/// The projections rebuilt by applying `entries`, in order, to an empty
/// database — what `keyferry replay --check` compares with.
pub(crate) fn rebuilt(entries: &[Entry]) -> Connection {
    let mut conn = Connection::open_in_memory().expect("fresh db");
    migrate(&mut conn, COMPONENT, MIGRATIONS).expect("migrate");
    let tx = conn.transaction().expect("tx");
    for entry in entries {
        projections::apply(&tx, entry.seq, entry.at_ms, &entry.event).expect("apply");
    }
    tx.commit().expect("commit");
    conn
}

/// A run's life touching every registry rule, and its bulk step's job.
fn workload() -> Vec<Event> {
    let run = || "run-a".to_string();
    let key = |k: &[u8]| k.to_vec();
    vec![
        Event::KeyDirtied {
            run_id: run(),
            db: 0,
            key: key(b"early"),
            event: "set".into(),
        },
        Event::RunStarted {
            run_id: run(),
            source: "redis://h:6379".into(),
            destination: "/d.sqlite".into(),
        },
        Event::ThrottlesChanged {
            run_id: run(),
            max_rps: Some(100),
            max_concurrency: None,
            batch_keys: Some(64),
            batch_bytes: None,
            scan_count: None,
        },
        Event::NotificationsChanged {
            run_id: run(),
            previous: String::new(),
            applied: "KEA".into(),
        },
        Event::TrackerState {
            run_id: run(),
            connected: true,
            source_run_id: "src".into(),
        },
        Event::BatchCommitted {
            run_id: run(),
            db: 0,
            keys: 10,
            bytes: 1000,
        },
        Event::Checkpoint {
            run_id: run(),
            source_run_id: "src".into(),
            cursor: 17,
            counters: Counters {
                scanned_keys: 10,
                migrated_keys: 10,
                ..Counters::default()
            },
            db: 0,
            done: false,
        },
        Event::KeyDirtied {
            run_id: run(),
            db: 1,
            key: BINARY_KEY.to_vec(),
            event: "hset".into(),
        },
        Event::KeyDeleted {
            run_id: run(),
            db: 0,
            key: key(b"early"),
            event: "del".into(),
        },
        Event::KeyMarkedApplied {
            run_id: run(),
            db: 1,
            key: BINARY_KEY.to_vec(),
            through_seq: 8,
        },
        Event::KeyMarkedSkipped {
            run_id: run(),
            db: 2,
            key: key(b"stream"),
            through_seq: 3,
            reason: "stream".into(),
        },
        Event::SweepRequired {
            run_id: run(),
            reason: "tracker disconnected".into(),
        },
        Event::ErrorRecorded {
            run_id: Some(run()),
            component: "tracker".into(),
            severity: Severity::Error,
            message: "connection reset".into(),
            db: Some(1),
            key: Some(BINARY_KEY.to_vec()),
        },
        Event::ErrorRecorded {
            run_id: None,
            component: "supervisor".into(),
            severity: Severity::Warning,
            message: "slow".into(),
            db: None,
            key: None,
        },
        Event::TrackerStopRequested { run_id: run() },
        Event::RunStatusChanged {
            run_id: run(),
            status: RunStatus::Paused,
            reason: Some("operator".into()),
        },
        // The run's bulk step as a job (the `jobs` projection).
        Event::JobEnqueued {
            job_id: "bulk:run-a".into(),
            queue: "steps".into(),
            payload: b"redis://h:6379".to_vec(),
            max_attempts: 3,
            run_at_ms: 0,
            kind: "bulk".into(),
            priority: 1,
            dedupe_key: Some("bulk:run-a".into()),
        },
        Event::JobLeased {
            job_id: "bulk:run-a".into(),
            worker: "host:1".into(),
            epoch: 1,
            deadline_ms: 30_000,
            attempt: 1,
        },
        Event::JobHeartbeat {
            job_id: "bulk:run-a".into(),
            worker: "host:1".into(),
            epoch: 1,
            deadline_ms: 60_000,
        },
    ]
}

#[test]
fn appends_project_in_their_own_transaction() {
    let t = TempJournal::new();
    let seqs = t.journal.append(workload()).wait().expect("append");
    let conn = open_ro(t.journal.path()).expect("reader");
    let run = registry::run(&conn, "run-a")
        .expect("query")
        .expect("run projected");
    let last_of_run = workload()
        .iter()
        .rposition(|e| e.run_id().is_some())
        .expect("run events");
    assert_eq!(run.last_seq, seqs[last_of_run]);
    assert_eq!(run.status, RunStatus::Paused);
    assert!(run.needs_sweep);
    assert_eq!(run.notify_previous.as_deref(), Some(""));
    let pending = registry::pending(&conn, "run-a", 10).expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].key.as_slice(), pending[0].state),
        (&b"early"[..], registry::PendingState::Deleted)
    );
    assert_eq!(
        registry::recent_errors(&conn, "run-a", 10)
            .expect("errors")
            .len(),
        1
    );
    let step = jobs::job(&conn, "bulk:run-a")
        .expect("query")
        .expect("job projected");
    assert_eq!(step.status, jobs::JobStatus::Leased);
    assert_eq!(
        (step.worker.as_deref(), step.lease_deadline_ms),
        (Some("host:1"), Some(60_000))
    );
    assert_eq!(step.updated_seq, *seqs.last().expect("seqs"));
}

#[test]
fn a_rolled_back_append_leaves_no_row_and_no_projection() {
    let t = TempJournal::new();
    t.journal
        .append(vec![Event::RunStarted {
            run_id: "run-a".into(),
            source: "redis://h:1".into(),
            destination: "/d".into(),
        }])
        .wait()
        .expect("append");
    let conn = open_ro(t.journal.path()).expect("reader");
    let before = dump(&conn);

    let failed = t
        .journal
        .writer()
        .submit(|conn| -> Result<(), JournalError> {
            append_in(conn, &workload())?;
            // The work the events describe failed after they were
            // appended: the whole job rolls back.
            Err(JournalError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
        })
        .wait();
    assert!(matches!(failed, Err(WriteError::Op(_))), "{failed:?}");
    assert_eq!(t.journal.last_seq().expect("last seq"), 1, "no journal row");
    assert_eq!(dump(&conn), before, "no projection change");

    // The next append projects normally.
    t.journal.append(workload()).wait().expect("append");
    assert_eq!(dump(&conn), dump(&rebuilt(&t.read_all())));
}

#[test]
fn batching_does_not_change_the_projection() {
    let batched = TempJournal::new();
    batched.journal.append(workload()).wait().expect("batch");

    let one_by_one = TempJournal::new();
    for event in workload() {
        one_by_one
            .journal
            .append(vec![event])
            .wait()
            .expect("single");
    }

    let in_job = TempJournal::new();
    in_job
        .journal
        .writer()
        .submit(|conn| {
            let events = workload();
            let (first, rest) = events.split_at(5);
            append_in(conn, first)?;
            append_in(conn, rest)
        })
        .wait()
        .expect("append_in");

    let registries: Vec<_> = [&batched, &one_by_one, &in_job]
        .iter()
        .map(|t| open_ro(t.journal.path()).expect("reader"))
        .collect();
    let expected = dump_without_times(&registries[0]);
    assert!(
        expected.iter().all(|(_, rows)| !rows.is_empty()),
        "every table has rows: {expected:?}"
    );
    for conn in &registries[1..] {
        assert_eq!(dump_without_times(conn), expected);
    }
}

#[test]
fn applying_the_journal_into_an_empty_file_rebuilds_the_registry() {
    let t = TempJournal::new();
    t.journal.append(workload()).wait().expect("append");
    for event in workload().into_iter().rev() {
        // The same events again, reversed and one by one: marks before
        // the events they settle, resumed runs, repeated errors.
        t.journal.append(vec![event]).wait().expect("append");
    }
    let live = open_ro(t.journal.path()).expect("reader");
    assert_eq!(dump(&live), dump(&rebuilt(&t.read_all())));
}

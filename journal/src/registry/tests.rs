//! The projection rules, one event at a time, on an in-memory database;
//! and the queries over what they wrote.
//!
//! Events are applied directly with chosen sequence numbers and times, so
//! every expected value is exact. The append paths (same transaction,
//! rollback, batches, rebuild) are tested in `tests/journal/registry.rs`.

use rusqlite::Connection;

use super::*;
use crate::event::{Counters, RunStatus};
use crate::migrations::{COMPONENT, MIGRATIONS};
use crate::schema::migrate;

const RUN: &str = "run-1";

fn registry() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory db");
    migrate(&mut conn, COMPONENT, MIGRATIONS).expect("migrate");
    conn
}

/// Applies `event` as journal row `seq`, appended at time `seq * 10`.
fn at(conn: &Connection, seq: Seq, event: Event) {
    apply(conn, seq, seq * 10, &event).expect("apply");
}

fn run_row(conn: &Connection) -> RunRow {
    run(conn, RUN).expect("query").expect("run exists")
}

fn dirtied(db: u32, key: &[u8]) -> Event {
    Event::KeyDirtied {
        run_id: RUN.into(),
        db,
        key: key.to_vec(),
        event: "hset".into(),
    }
}

fn deleted(db: u32, key: &[u8]) -> Event {
    Event::KeyDeleted {
        run_id: RUN.into(),
        db,
        key: key.to_vec(),
        event: "expired".into(),
    }
}

fn applied(db: u32, key: &[u8], through_seq: Seq) -> Event {
    Event::KeyMarkedApplied {
        run_id: RUN.into(),
        db,
        key: key.to_vec(),
        through_seq,
    }
}

fn started(source: &str) -> Event {
    Event::RunStarted {
        run_id: RUN.into(),
        source: source.into(),
        destination: "/d.sqlite".into(),
    }
}

/// One key's registry row, as the tests look at it.
#[derive(Debug, PartialEq)]
struct KeyRow {
    first_seen_seq: Seq,
    last_seen_seq: Seq,
    first_seen_at_ms: i64,
    last_seen_at_ms: i64,
    events_count: i64,
    last_event: Option<String>,
    state: String,
    settled_seq: Option<Seq>,
}

fn key_row(conn: &Connection, db: u32, key: &[u8]) -> KeyRow {
    conn.query_row(
        "SELECT first_seen_seq, last_seen_seq, first_seen_at_ms, last_seen_at_ms,
             events_count, last_event, state, settled_seq
         FROM migration_dirty_keys WHERE run_id = ?1 AND db = ?2 AND key = ?3",
        rusqlite::params![RUN, db, key],
        |r| {
            Ok(KeyRow {
                first_seen_seq: r.get(0)?,
                last_seen_seq: r.get(1)?,
                first_seen_at_ms: r.get(2)?,
                last_seen_at_ms: r.get(3)?,
                events_count: r.get(4)?,
                last_event: r.get(5)?,
                state: r.get(6)?,
                settled_seq: r.get(7)?,
            })
        },
    )
    .expect("key row")
}

fn state_of(conn: &Connection, db: u32, key: &[u8]) -> String {
    key_row(conn, db, key).state
}

#[test]
fn run_started_creates_the_run_and_restarting_resumes_it() {
    let conn = registry();
    at(&conn, 1, started("redis://h:1"));
    let row = run_row(&conn);
    assert_eq!(
        (
            row.source_uri.as_str(),
            row.destination.as_str(),
            row.status,
            row.started_at_ms,
            row.updated_at_ms,
            row.last_seq
        ),
        ("redis://h:1", "/d.sqlite", RunStatus::Running, 10, 10, 1)
    );

    at(
        &conn,
        2,
        Event::BatchCommitted {
            run_id: RUN.into(),
            db: 0,
            keys: 5,
            bytes: 50,
        },
    );
    at(
        &conn,
        3,
        Event::RunStatusChanged {
            run_id: RUN.into(),
            status: RunStatus::Failed,
            reason: Some("source unreachable".into()),
        },
    );
    let row = run_row(&conn);
    assert_eq!(row.status, RunStatus::Failed);
    assert_eq!(row.status_reason.as_deref(), Some("source unreachable"));

    at(&conn, 4, started("redis://h:2"));
    let row = run_row(&conn);
    assert_eq!((row.status, row.status_reason), (RunStatus::Running, None));
    assert_eq!(row.source_uri, "redis://h:2");
    assert_eq!(row.batches, 1, "a resumed run keeps its counters");
    assert_eq!(row.started_at_ms, 10, "and its start");
    assert_eq!((row.updated_at_ms, row.last_seq), (40, 4));
}

#[test]
fn checkpoints_set_cumulative_counters_and_the_scan_position() {
    let conn = registry();
    let checkpoint = |cursor, scanned, db, done| Event::Checkpoint {
        run_id: RUN.into(),
        source_run_id: "src-a".into(),
        cursor,
        counters: Counters {
            scanned_keys: scanned,
            migrated_keys: scanned - 1,
            skipped_keys: 1,
            error_keys: 0,
            migrated_bytes: scanned * 100,
        },
        db,
        done,
    };
    at(&conn, 1, checkpoint(u64::MAX, 10, 0, false));
    let row = run_row(&conn);
    assert_eq!(row.scan_cursor, u64::MAX, "cursor round-trips bit for bit");
    assert_eq!((row.scan_db, row.scan_done), (0, false));
    assert_eq!(row.counters.scanned_keys, 10);

    at(&conn, 2, checkpoint(0, 25, 15, true));
    let row = run_row(&conn);
    assert_eq!(
        row.counters,
        Counters {
            scanned_keys: 25,
            migrated_keys: 24,
            skipped_keys: 1,
            error_keys: 0,
            migrated_bytes: 2500
        },
        "counters are set, not added"
    );
    assert_eq!((row.scan_db, row.scan_cursor, row.scan_done), (15, 0, true));
    assert_eq!(row.source_run_id.as_deref(), Some("src-a"));
    assert_eq!(row.scan_source_run_id.as_deref(), Some("src-a"));
    assert_eq!(
        (row.last_checkpoint_seq, row.last_checkpoint_at_ms),
        (Some(2), Some(20))
    );
}

#[test]
fn tracker_events_make_keys_pending_and_count_distinct_keys() {
    let conn = registry();
    at(&conn, 1, dirtied(0, b"a"));
    at(&conn, 2, dirtied(0, b"a"));
    at(&conn, 3, dirtied(1, b"a"));
    assert_eq!(
        key_row(&conn, 0, b"a"),
        KeyRow {
            first_seen_seq: 1,
            last_seen_seq: 2,
            first_seen_at_ms: 10,
            last_seen_at_ms: 20,
            events_count: 2,
            last_event: Some("hset".into()),
            state: "dirty".into(),
            settled_seq: None,
        }
    );
    let row = run_row(&conn);
    assert_eq!(
        (row.dirty_keys_seen, row.dirty_events),
        (2, 3),
        "the same key in another database is another key"
    );
}

#[test]
fn delete_after_write_is_deleted_and_write_after_delete_is_dirty() {
    let conn = registry();
    at(&conn, 1, dirtied(0, b"k"));
    at(&conn, 2, deleted(0, b"k"));
    let row = key_row(&conn, 0, b"k");
    assert_eq!(
        (row.state.as_str(), row.last_event.as_deref()),
        ("deleted", Some("expired"))
    );
    at(&conn, 3, dirtied(0, b"k"));
    assert_eq!(state_of(&conn, 0, b"k"), "dirty");
    assert_eq!(run_row(&conn).dirty_keys_seen, 1);
}

#[test]
fn a_key_dirtied_again_while_being_applied_stays_dirty() {
    let conn = registry();
    at(&conn, 1, dirtied(0, b"k"));
    // The applier read the key as of seq 1; the tracker records seq 2
    // before the applier marks it.
    at(&conn, 2, dirtied(0, b"k"));
    at(&conn, 3, applied(0, b"k", 1));
    let row = key_row(&conn, 0, b"k");
    assert_eq!((row.state.as_str(), row.settled_seq), ("dirty", None));

    at(&conn, 4, applied(0, b"k", 2));
    let row = key_row(&conn, 0, b"k");
    assert_eq!((row.state.as_str(), row.settled_seq), ("applied", Some(2)));
    assert_eq!(row.last_seen_seq, 2, "settling is not seeing");
    assert_eq!(run_row(&conn).dirty_keys_applied, 2, "every mark counts");
}

#[test]
fn marks_settle_keys_as_applied_removed_or_skipped() {
    let conn = registry();
    at(&conn, 1, dirtied(0, b"a"));
    at(&conn, 2, deleted(0, b"b"));
    at(&conn, 3, dirtied(0, b"c"));
    at(&conn, 4, applied(0, b"a", 1));
    at(
        &conn,
        5,
        Event::KeyMarkedDeleted {
            run_id: RUN.into(),
            db: 0,
            key: b"b".to_vec(),
            through_seq: 2,
        },
    );
    at(
        &conn,
        6,
        Event::KeyMarkedSkipped {
            run_id: RUN.into(),
            db: 0,
            key: b"c".to_vec(),
            through_seq: 3,
            reason: "stream".into(),
        },
    );
    let states: Vec<_> = [&b"a"[..], b"b", b"c"]
        .iter()
        .map(|k| state_of(&conn, 0, k))
        .collect();
    assert_eq!(states, ["applied", "removed", "skipped"]);
    let row = run_row(&conn);
    assert_eq!(
        (
            row.dirty_keys_applied,
            row.dirty_keys_deleted,
            row.dirty_keys_skipped
        ),
        (1, 1, 1)
    );
    assert_eq!(pending_count(&conn, RUN).expect("count"), 0);
}

#[test]
fn a_mark_without_a_row_inserts_the_key_settled() {
    let conn = registry();
    at(&conn, 5, applied(3, b"new", 4));
    assert_eq!(
        key_row(&conn, 3, b"new"),
        KeyRow {
            first_seen_seq: 4,
            last_seen_seq: 4,
            first_seen_at_ms: 50,
            last_seen_at_ms: 50,
            events_count: 0,
            last_event: None,
            state: "applied".into(),
            settled_seq: Some(4),
        }
    );
    assert!(is_tracked(&conn, RUN, 3, b"new").expect("tracked"));
    assert_eq!(run_row(&conn).dirty_keys_seen, 0, "no tracker event yet");

    at(&conn, 6, dirtied(3, b"new"));
    let row = key_row(&conn, 3, b"new");
    assert_eq!((row.state.as_str(), row.events_count), ("dirty", 1));
    assert_eq!(run_row(&conn).dirty_keys_seen, 1);
}

#[test]
fn events_of_an_unknown_run_create_it_lazily() {
    let conn = registry();
    // The tracker started before the bulk scanner's RunStarted.
    at(&conn, 1, dirtied(0, b"k"));
    let row = run_row(&conn);
    assert_eq!(
        (
            row.status,
            row.source_uri.as_str(),
            row.started_at_ms,
            row.dirty_events
        ),
        (RunStatus::Running, "", 10, 1)
    );
    at(&conn, 2, started("redis://h:1"));
    let row = run_row(&conn);
    assert_eq!(row.source_uri, "redis://h:1");
    assert_eq!((row.dirty_events, row.started_at_ms), (1, 10));

    for (seq, event) in [
        (3, Event::TrackerStopRequested { run_id: "b".into() }),
        (
            4,
            Event::ErrorRecorded {
                run_id: Some("c".into()),
                component: "tracker".into(),
                severity: Severity::Error,
                message: "boom".into(),
                db: None,
                key: None,
            },
        ),
    ] {
        at(&conn, seq, event);
    }
    let ids: Vec<_> = runs(&conn)
        .expect("runs")
        .into_iter()
        .map(|r| (r.run_id, r.last_seq))
        .collect();
    assert_eq!(
        ids,
        [("run-1".to_string(), 2), ("b".into(), 3), ("c".into(), 4)],
        "oldest first"
    );
    assert_eq!(
        run(&conn, "c")
            .expect("q")
            .expect("c")
            .last_error
            .as_deref(),
        Some("boom")
    );
}

#[test]
fn errors_are_stored_and_only_errors_set_last_error() {
    let conn = registry();
    let error = |run_id: Option<&str>, severity, message: &str| Event::ErrorRecorded {
        run_id: run_id.map(str::to_owned),
        component: "bulk-scanner".into(),
        severity,
        message: message.into(),
        db: Some(2),
        key: Some(b"\0\xff".to_vec()),
    };
    at(&conn, 1, error(Some(RUN), Severity::Error, "first"));
    at(&conn, 2, error(Some(RUN), Severity::Warning, "warned"));
    at(&conn, 3, error(None, Severity::Error, "no run"));
    at(&conn, 4, error(Some(RUN), Severity::Error, "second"));

    assert_eq!(run_row(&conn).last_error.as_deref(), Some("second"));
    let recent = recent_errors(&conn, RUN, 2).expect("errors");
    assert_eq!(
        recent,
        [
            ErrorRow {
                seq: 4,
                run_id: Some(RUN.into()),
                at_ms: 40,
                component: "bulk-scanner".into(),
                severity: Severity::Error,
                db: Some(2),
                key: Some(b"\0\xff".to_vec()),
                message: "second".into(),
            },
            ErrorRow {
                seq: 2,
                run_id: Some(RUN.into()),
                at_ms: 20,
                component: "bulk-scanner".into(),
                severity: Severity::Warning,
                db: Some(2),
                key: Some(b"\0\xff".to_vec()),
                message: "warned".into(),
            },
        ],
        "newest first, limited"
    );
    let (all, runs_count): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM migration_errors),
                    (SELECT count(*) FROM migration_runs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    assert_eq!(
        (all, runs_count),
        (4, 1),
        "an error of no run is kept, and creates no run"
    );
}

#[test]
fn a_sweep_clears_only_the_needs_recorded_before_it_began() {
    let conn = registry();
    let required = |reason: &str| Event::SweepRequired {
        run_id: RUN.into(),
        reason: reason.into(),
    };
    let completed = |started_seq| Event::SweepCompleted {
        run_id: RUN.into(),
        started_seq,
    };
    let sweep = |conn: &Connection| {
        let row = run_row(conn);
        (
            row.needs_sweep,
            row.last_sweep_required_seq,
            row.sweep_reason,
        )
    };
    at(&conn, 1, started("redis://h:1"));
    assert_eq!(sweep(&conn), (false, None, None));

    at(&conn, 2, completed(1));
    assert_eq!(sweep(&conn), (false, None, None), "a sweep with no need");

    // A sweep began at seq 3; the tracker lost events at seq 4.
    at(&conn, 4, required("disconnected"));
    at(&conn, 5, completed(3));
    assert_eq!(
        sweep(&conn),
        (true, Some(4), Some("disconnected".into())),
        "the need came after the sweep began"
    );

    at(&conn, 6, completed(4));
    assert_eq!(sweep(&conn), (false, Some(4), None));

    at(&conn, 7, required("FLUSHALL"));
    at(&conn, 8, required("source restarted"));
    at(&conn, 9, completed(7));
    assert_eq!(
        sweep(&conn),
        (true, Some(8), Some("source restarted".into()))
    );
}

#[test]
fn throttles_change_only_the_given_fields() {
    let conn = registry();
    let set = |max_rps, batch_bytes, scan_count| Event::ThrottlesChanged {
        run_id: RUN.into(),
        max_rps,
        max_concurrency: None,
        batch_keys: None,
        batch_bytes,
        scan_count,
    };
    at(&conn, 1, set(Some(100), Some(1 << 40), None));
    at(&conn, 2, set(None, None, Some(1000)));
    at(&conn, 3, set(Some(200), None, None));
    assert_eq!(
        run_row(&conn).throttles,
        Throttles {
            max_rps: Some(200),
            max_concurrency: None,
            batch_keys: None,
            batch_bytes: Some(1 << 40),
            scan_count: Some(1000),
        }
    );
}

#[test]
fn tracker_and_notification_state() {
    let conn = registry();
    at(
        &conn,
        1,
        Event::TrackerState {
            run_id: RUN.into(),
            connected: true,
            source_run_id: "src-a".into(),
        },
    );
    at(
        &conn,
        2,
        Event::TrackerState {
            run_id: RUN.into(),
            connected: false,
            source_run_id: String::new(),
        },
    );
    let row = run_row(&conn);
    assert!(!row.tracker_connected);
    assert_eq!(
        row.source_run_id.as_deref(),
        Some("src-a"),
        "an empty id keeps the known one"
    );
    assert_eq!(row.scan_source_run_id, None, "only checkpoints set it");

    at(&conn, 3, Event::TrackerStopRequested { run_id: RUN.into() });
    assert_eq!(run_row(&conn).tracker_stop_seq, Some(3));

    let changed = |previous: &str, applied: &str| Event::NotificationsChanged {
        run_id: RUN.into(),
        previous: previous.into(),
        applied: applied.into(),
    };
    at(&conn, 4, changed("", "KEA"));
    // A restarted tracker changing the tool's own setting again must not
    // make it the one to restore.
    at(&conn, 5, changed("KEA", "KEA$"));
    assert_eq!(run_row(&conn).notify_previous.as_deref(), Some(""));
    at(
        &conn,
        6,
        Event::NotificationsRestored { run_id: RUN.into() },
    );
    assert_eq!(run_row(&conn).notify_previous, None);
    at(&conn, 7, changed("Ex", "KEA"));
    assert_eq!(run_row(&conn).notify_previous.as_deref(), Some("Ex"));
}

#[test]
fn events_of_no_run_change_nothing() {
    let conn = registry();
    at(
        &conn,
        1,
        Event::JobEnqueued {
            job_id: "j".into(),
            queue: "q".into(),
            payload: vec![],
            max_attempts: 1,
            run_at_ms: 0,
            kind: String::new(),
            priority: 0,
            dedupe_key: None,
        },
    );
    at(
        &conn,
        2,
        Event::SnapshotTaken {
            projection: "summary".into(),
            covers_seq: 1,
        },
    );
    assert!(runs(&conn).expect("runs").is_empty());
}

#[test]
fn pending_keys_come_oldest_first_whatever_their_state() {
    let conn = registry();
    at(&conn, 1, dirtied(0, b"a"));
    at(&conn, 2, deleted(0, b"b"));
    at(&conn, 3, dirtied(5, b"c"));
    at(&conn, 4, deleted(0, b"d"));
    at(&conn, 5, dirtied(0, b"a")); // a is now the newest
    at(&conn, 6, dirtied(0, b"e"));
    at(&conn, 7, applied(0, b"e", 6));
    // Another run's keys are not this run's.
    apply(&conn, 8, 80, &{
        let mut e = dirtied(0, b"x");
        if let Event::KeyDirtied { run_id, .. } = &mut e {
            *run_id = "other".into();
        }
        e
    })
    .expect("apply");

    let keys: Vec<_> = pending(&conn, RUN, 10)
        .expect("pending")
        .into_iter()
        .map(|p| (p.db, p.key, p.last_seen_seq, p.state))
        .collect();
    assert_eq!(
        keys,
        [
            (0, b"b".to_vec(), 2, PendingState::Deleted),
            (5, b"c".to_vec(), 3, PendingState::Dirty),
            (0, b"d".to_vec(), 4, PendingState::Deleted),
            (0, b"a".to_vec(), 5, PendingState::Dirty),
        ]
    );
    let first_two: Vec<_> = pending(&conn, RUN, 2)
        .expect("pending")
        .into_iter()
        .map(|p| p.last_seen_seq)
        .collect();
    assert_eq!(first_two, [2, 3]);
    let after_three: Vec<_> = pending_after(&conn, RUN, 3, 10)
        .expect("pending")
        .into_iter()
        .map(|p| p.last_seen_seq)
        .collect();
    assert_eq!(after_three, [4, 5], "pages on after a sequence number");
    assert!(is_pending(&conn, RUN, 0, b"b").expect("pending"));
    assert!(!is_pending(&conn, RUN, 0, b"e").expect("settled"));
    assert!(!is_pending(&conn, RUN, 9, b"b").expect("unknown"));
    assert!(pending(&conn, RUN, 0).expect("pending").is_empty());
    assert_eq!(pending_count(&conn, RUN).expect("count"), 4);
    assert_eq!(
        state_counts(&conn, RUN).expect("counts"),
        [
            ("applied".to_string(), 1),
            ("deleted".into(), 2),
            ("dirty".into(), 2)
        ]
    );
    assert!(is_tracked(&conn, RUN, 0, b"e").expect("tracked"));
    assert!(!is_tracked(&conn, RUN, 1, b"e").expect("tracked"));
    assert!(!is_tracked(&conn, RUN, 0, b"x").expect("tracked"));
    assert!(run(&conn, "nope").expect("query").is_none());
}

#[test]
fn pending_keys_are_read_from_the_index_without_sorting_them_all() {
    let conn = registry();
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", query::PENDING_SQL))
        .expect("plan")
        .query_map(rusqlite::params!["r", 0, 10], |r| r.get(3))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("plan rows");
    let plan = plan.join("\n");
    let searches = plan
        .lines()
        .filter(|l| l.contains("SEARCH migration_dirty_keys USING COVERING INDEX migration_dirty_keys_pending (run_id=? AND state=? AND last_seen_seq>?)"))
        .count();
    assert_eq!(searches, 2, "one index range per pending state:\n{plan}");
    // The merge sorts at most `limit` rows per arm; the table itself is
    // never scanned.
    assert!(!plan.contains("SCAN migration_dirty_keys"), "{plan}");
}

#[test]
fn an_unknown_stored_status_is_an_error_not_a_guess() {
    let conn = registry();
    at(&conn, 1, started("redis://h:1"));
    conn.execute_batch(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE migration_runs SET status = 'sleeping';",
    )
    .expect("tamper");
    let err = run(&conn, RUN).expect_err("unknown status");
    assert!(err.to_string().contains("sleeping"), "{err}");
}

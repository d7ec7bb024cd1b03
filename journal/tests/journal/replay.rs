//! Replay: snapshot + tail equals replay from the first event, at any
//! target sequence number; the summary projection counts what happened.

use keyferry_journal::{Counters, Event, Journal, RunStatus, Severity, Summary};

use crate::TempJournal;

/// A deterministic mix of every kind of activity, `n` events long.
fn workload(start: u64, n: u64) -> Vec<Event> {
    (start..start + n)
        .map(|i| {
            let run_id = format!("run-{}", i % 3);
            let job_id = format!("job-{}", i / 7);
            let key = i.to_be_bytes().to_vec();
            match i % 7 {
                0 => Event::KeyDirtied {
                    run_id,
                    db: (i % 16) as u32,
                    key,
                    event: "set".into(),
                },
                1 => Event::KeyDeleted {
                    run_id,
                    db: 0,
                    key,
                    event: "del".into(),
                },
                2 => Event::KeyMarkedApplied {
                    run_id,
                    db: 0,
                    key,
                    through_seq: i as i64,
                },
                3 => Event::Checkpoint {
                    run_id,
                    source_run_id: "src".into(),
                    cursor: i,
                    counters: Counters {
                        scanned_keys: i,
                        ..Counters::default()
                    },
                    db: (i % 16) as u32,
                    done: false,
                },
                4 => Event::JobEnqueued {
                    job_id,
                    queue: "q".into(),
                    payload: vec![],
                    max_attempts: 3,
                    run_at_ms: 0,
                    kind: String::new(),
                    priority: 0,
                    dedupe_key: None,
                },
                5 => Event::JobLeased {
                    job_id,
                    worker: "w".into(),
                    epoch: i,
                    deadline_ms: 0,
                    attempt: 1,
                },
                _ if i % 2 == 0 => Event::JobAcked {
                    job_id,
                    worker: "w".into(),
                    epoch: i,
                },
                _ => Event::ActorRestarted {
                    actor: format!("actor-{}", i % 4),
                    attempt: 1,
                    reason: "boom".into(),
                    backoff_ms: 10,
                    gave_up: false,
                },
            }
        })
        .collect()
}

fn append(journal: &Journal, events: Vec<Event>) {
    journal.append(events).wait().expect("append");
}

#[test]
fn snapshot_plus_tail_equals_replay_from_start() {
    let t = TempJournal::new();
    append(&t.journal, workload(0, 3000));
    let at_snapshot = t.journal.replay::<Summary>(None).expect("replay");
    assert_eq!((at_snapshot.seq, at_snapshot.snapshot_seq), (3000, None));
    t.journal
        .save_snapshot(&at_snapshot.state, at_snapshot.seq)
        .wait()
        .expect("snapshot");
    append(&t.journal, workload(3000, 1500));

    let fast = t
        .journal
        .replay::<Summary>(None)
        .expect("replay with snapshot");
    let slow = t
        .journal
        .replay_from_start::<Summary>(None)
        .expect("replay from start");
    assert_eq!(fast.snapshot_seq, Some(3000));
    assert_eq!(
        fast.applied, 1501,
        "only the tail (SnapshotTaken included) is read"
    );
    assert_eq!(fast.seq, slow.seq);
    assert_eq!(fast.state, slow.state);
    assert_eq!(slow.state.snapshots, 1);
}

#[test]
fn replay_until_a_sequence_number() {
    let t = TempJournal::new();
    append(&t.journal, workload(0, 1000));
    let first = t.journal.replay::<Summary>(Some(400)).expect("replay");
    t.journal
        .save_snapshot(&first.state, first.seq)
        .wait()
        .expect("snapshot");
    append(&t.journal, workload(1000, 1000));

    for until in [1, 399, 400, 401, 1000, 1001, 1500, 2001] {
        let fast = t.journal.replay::<Summary>(Some(until)).expect("replay");
        let slow = t
            .journal
            .replay_from_start::<Summary>(Some(until))
            .expect("replay from start");
        assert_eq!(fast.seq, until, "replay stops exactly at {until}");
        assert_eq!(fast.state, slow.state, "until {until}");
        assert_eq!(fast.state.events, until as u64);
        let expected_snapshot = (until >= 400).then_some(400);
        assert_eq!(fast.snapshot_seq, expected_snapshot, "until {until}");
    }
    // Past the end: stops at the last event.
    assert_eq!(
        t.journal
            .replay::<Summary>(Some(10_000))
            .expect("replay")
            .seq,
        2001
    );
}

#[test]
fn summary_counts_runs_jobs_and_restarts() {
    let t = TempJournal::new();
    let job = |id: &str| id.to_string();
    let w = || "w".to_string();
    append(
        &t.journal,
        vec![
            Event::RunStarted {
                run_id: "r".into(),
                source: "redis://h:1".into(),
                destination: "/d".into(),
            },
            Event::BatchCommitted {
                run_id: "r".into(),
                db: 0,
                keys: 10,
                bytes: 100,
            },
            Event::BatchCommitted {
                run_id: "r".into(),
                db: 1,
                keys: 5,
                bytes: 50,
            },
            Event::Checkpoint {
                run_id: "r".into(),
                source_run_id: "s".into(),
                cursor: 42,
                counters: Counters::default(),
                db: 2,
                done: false,
            },
            Event::KeyDirtied {
                run_id: "r".into(),
                db: 0,
                key: b"a".to_vec(),
                event: "set".into(),
            },
            Event::KeyDeleted {
                run_id: "r".into(),
                db: 0,
                key: b"b".to_vec(),
                event: "expired".into(),
            },
            Event::ErrorRecorded {
                run_id: Some("r".into()),
                component: "bulk".into(),
                severity: Severity::Error,
                message: "x".into(),
                db: None,
                key: None,
            },
            Event::RunStatusChanged {
                run_id: "r".into(),
                status: RunStatus::Completed,
                reason: None,
            },
            Event::JobEnqueued {
                job_id: job("a"),
                queue: "q".into(),
                payload: vec![],
                max_attempts: 2,
                run_at_ms: 0,
                kind: String::new(),
                priority: 0,
                dedupe_key: None,
            },
            Event::JobEnqueued {
                job_id: job("b"),
                queue: "q".into(),
                payload: vec![],
                max_attempts: 2,
                run_at_ms: 0,
                kind: String::new(),
                priority: 0,
                dedupe_key: None,
            },
            Event::JobEnqueued {
                job_id: job("c"),
                queue: "q".into(),
                payload: vec![],
                max_attempts: 1,
                run_at_ms: 0,
                kind: String::new(),
                priority: 0,
                dedupe_key: None,
            },
            Event::JobLeased {
                job_id: job("a"),
                worker: w(),
                epoch: 1,
                deadline_ms: 0,
                attempt: 1,
            },
            Event::JobLeased {
                job_id: job("b"),
                worker: w(),
                epoch: 1,
                deadline_ms: 0,
                attempt: 1,
            },
            Event::JobLeased {
                job_id: job("c"),
                worker: w(),
                epoch: 1,
                deadline_ms: 0,
                attempt: 1,
            },
            Event::JobAcked {
                job_id: job("a"),
                worker: w(),
                epoch: 1,
            },
            Event::JobFailed {
                job_id: job("b"),
                worker: w(),
                epoch: 1,
                attempt: 1,
                error: "e".into(),
            },
            Event::JobRetried {
                job_id: job("b"),
                next_attempt: 2,
                run_at_ms: 0,
            },
            Event::JobFailed {
                job_id: job("c"),
                worker: w(),
                epoch: 1,
                attempt: 1,
                error: "e".into(),
            },
            Event::JobDeadLettered {
                job_id: job("c"),
                attempts: 1,
                error: "e".into(),
            },
            Event::ActorRestarted {
                actor: "bulk".into(),
                attempt: 1,
                reason: "p1".into(),
                backoff_ms: 1,
                gave_up: false,
            },
            Event::ActorRestarted {
                actor: "bulk".into(),
                attempt: 2,
                reason: "p2".into(),
                backoff_ms: 2,
                gave_up: true,
            },
        ],
    );
    let s = t.journal.replay::<Summary>(None).expect("replay").state;
    let run = &s.runs["r"];
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!((run.batches, run.batch_keys, run.batch_bytes), (2, 15, 150));
    assert_eq!(
        run.checkpoint.as_ref().map(|c| (c.seq, c.cursor, c.db)),
        Some((4, 42, 2))
    );
    assert_eq!((run.keys_dirtied, run.keys_deleted, run.errors), (1, 1, 1));
    assert_eq!((s.errors, s.warnings), (1, 0));
    let j = s.jobs;
    assert_eq!(
        (j.queued, j.leased, j.done, j.failed, j.dead),
        (1, 0, 1, 0, 1)
    );
    let bulk = &s.restarts["bulk"];
    assert_eq!(
        (bulk.restarts, bulk.gave_up, bulk.last_reason.as_str()),
        (1, true, "p2")
    );
}

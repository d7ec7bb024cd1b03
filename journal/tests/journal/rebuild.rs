//! Rebuilding the projections from the journal (`keyferry replay`): the
//! rebuilt tables equal the stored ones, from the first event or from a
//! projection snapshot, at the last event or any earlier one; tampering is
//! named by table, key and column; compaction keeps the newest row and the
//! snapshots needed to replay what is left; a rebuild reads the journal a
//! page at a time and sees one state while others append.

use keyferry_journal::compaction::{self, SnapshotPolicy, Taken};
use keyferry_journal::connection::open_ro;
use keyferry_journal::rebuild::{
    Cell, Difference, DifferenceKind, JournalView, RebuildError, RebuildOptions, Rebuilt, Start,
    compare,
};
use keyferry_journal::{Counters, Event, Projection, Seq, Severity, Summary};

use crate::TempJournal;
use crate::samples::{BINARY_KEY, every_kind};

/// `n` events of a migration with a job queue beside it, numbered from
/// `start`: keys dirtied, deleted and settled (some settled before being
/// dirtied again), checkpoints, batches, errors on binary keys, and jobs
/// enqueued, leased, heartbeaten and acked.
fn activity(start: u64, n: u64) -> Vec<Event> {
    (start..start + n)
        .map(|i| {
            let run_id = format!("run-{}", (i / 8) % 2);
            let key = if i % 11 == 0 {
                BINARY_KEY.to_vec()
            } else {
                format!("key:{}", i % 40).into_bytes()
            };
            let job_id = format!("job-{}", i / 8);
            match i % 8 {
                0 => Event::JobEnqueued {
                    job_id,
                    queue: "steps".into(),
                    payload: i.to_be_bytes().to_vec(),
                    max_attempts: 3,
                    run_at_ms: 0,
                    kind: "bulk".into(),
                    priority: (i % 3) as i32,
                    dedupe_key: None,
                },
                1 => Event::KeyDirtied {
                    run_id,
                    db: (i % 16) as u32,
                    key,
                    event: "hset".into(),
                },
                2 => Event::JobLeased {
                    job_id,
                    worker: "w1".into(),
                    epoch: 1,
                    deadline_ms: 1_000,
                    attempt: 1,
                },
                3 => Event::KeyMarkedApplied {
                    run_id,
                    db: (i % 16) as u32,
                    key,
                    // Half settle everything seen so far, half an older
                    // event (and stay pending).
                    through_seq: if i % 16 == 3 { i64::MAX } else { 1 },
                },
                4 => Event::Checkpoint {
                    run_id,
                    source_run_id: "src".into(),
                    cursor: i,
                    counters: Counters {
                        scanned_keys: i,
                        migrated_keys: i / 2,
                        ..Counters::default()
                    },
                    db: 0,
                    done: false,
                },
                5 => Event::KeyDeleted {
                    run_id,
                    db: 0,
                    key,
                    event: "expired".into(),
                },
                6 if i % 3 == 0 => Event::ErrorRecorded {
                    run_id: Some(run_id),
                    component: "bulk".into(),
                    severity: Severity::Error,
                    message: format!("cannot import #{i}"),
                    db: Some(0),
                    key: Some(key),
                },
                6 => Event::BatchCommitted {
                    run_id,
                    db: 0,
                    keys: 10,
                    bytes: 100,
                },
                _ => Event::JobAcked {
                    job_id,
                    worker: "w1".into(),
                    epoch: 1,
                },
            }
        })
        .collect()
}

impl TempJournal {
    /// Appends `events` in batches of 500; returns the last seq.
    fn append(&self, events: Vec<Event>) -> Seq {
        let mut last = 0;
        for batch in events.chunks(500) {
            let seqs = self.journal.append(batch.to_vec()).wait().expect("append");
            last = *seqs.last().expect("a seq per event");
        }
        last
    }

    /// Takes a projection snapshot through the writer.
    fn snapshot(&self) -> Taken {
        compaction::prepare(&mut self.raw()).expect("prepare");
        self.journal
            .writer()
            .submit(compaction::take_snapshot)
            .wait()
            .expect("snapshot")
            .expect("the journal is not empty")
    }

    fn view(&self) -> JournalView {
        JournalView::open(self.journal.path()).expect("view")
    }

    fn count(&self) -> i64 {
        self.raw()
            .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
            .expect("count")
    }
}

fn rebuild(view: &JournalView, until: Option<Seq>, start: Start) -> Rebuilt {
    view.rebuild(RebuildOptions { until, start })
        .expect("rebuild")
}

/// Asserts that `rebuilt` holds exactly the projection rows of `stored`.
fn assert_same(stored: &rusqlite::Connection, rebuilt: &rusqlite::Connection) {
    let comparison = compare(stored, rebuilt, 10).expect("compare");
    assert!(
        comparison.is_clean(),
        "{} differences: {:#?}",
        comparison.total,
        comparison.differences
    );
    assert_eq!(comparison.tables, 4);
    assert!(comparison.rows > 100, "{comparison:?}");
}

#[test]
fn rebuilt_projections_equal_the_stored_ones() {
    let t = TempJournal::new();
    t.append(every_kind());
    let last = t.append(activity(0, 3000));
    let view = t.view();
    assert_eq!(view.bounds().last, last);
    assert_eq!(view.bounds().earliest(), Some(0));

    let rebuilt = rebuild(&view, None, Start::FirstEvent);
    assert_same(view.conn(), &rebuilt.conn);
    assert_eq!(
        (
            rebuilt.summary.seq,
            rebuilt.summary.snapshot_seq,
            rebuilt.summary.applied
        ),
        (last, None, last as u64)
    );
    let replayed = t
        .journal
        .replay_from_start::<Summary>(None)
        .expect("replay");
    assert_eq!(rebuilt.summary.state, replayed.state);
}

#[test]
fn a_rebuild_from_a_snapshot_equals_one_from_the_first_event() {
    let t = TempJournal::new();
    t.append(activity(0, 2000));
    let taken = t.snapshot();
    assert_eq!(taken.seq, 2000);
    assert!(taken.rows > 40, "{taken:?}");
    let last = t.append(activity(2000, 700));

    let view = t.view();
    assert_eq!(view.bounds().snapshots, vec![2000]);
    let fast = rebuild(&view, None, Start::LatestSnapshot);
    let slow = rebuild(&view, None, Start::FirstEvent);
    assert_eq!(fast.summary.snapshot_seq, Some(2000));
    assert_eq!(
        fast.summary.applied,
        (last - 2000) as u64,
        "the tail only, the SnapshotTaken event included"
    );
    assert_same(view.conn(), &fast.conn);
    assert_same(&slow.conn, &fast.conn);
    assert_eq!(fast.summary.state, slow.summary.state);
    assert_eq!(
        fast.summary.state,
        t.journal.replay::<Summary>(None).expect("replay").state
    );
}

#[test]
fn until_rebuilds_the_state_right_after_that_event() {
    let t = TempJournal::new();
    let until = t.append(activity(0, 1500));
    // The stored state right after `until`, copied aside.
    let prefix = t.journal.path().with_extension("prefix");
    t.raw()
        .execute("VACUUM INTO ?1", [prefix.to_str().expect("utf-8 path")])
        .expect("copy");
    t.append(activity(1500, 1500));
    t.snapshot();
    t.append(activity(3000, 100));

    let view = t.view();
    let prefix = open_ro(&prefix).expect("prefix");
    for start in [Start::FirstEvent, Start::LatestSnapshot] {
        let rebuilt = rebuild(&view, Some(until), start);
        assert_eq!(rebuilt.summary.seq, until);
        assert_eq!(
            rebuilt.summary.snapshot_seq, None,
            "the snapshot is after {until}"
        );
        assert_same(&prefix, &rebuilt.conn);
        assert!(
            !compare(view.conn(), &rebuilt.conn, 0)
                .expect("compare")
                .is_clean()
        );
    }
    // Past the end means the end.
    let rebuilt = rebuild(&view, Some(1 << 40), Start::FirstEvent);
    assert_eq!(rebuilt.summary.seq, view.bounds().last);
}

#[test]
fn tampered_rows_are_named_by_table_key_and_column() {
    let t = TempJournal::new();
    t.append(every_kind());
    t.append(activity(0, 500));
    let raw = t.raw();
    let migrated: i64 = raw
        .query_row(
            "SELECT migrated_keys FROM migration_runs WHERE run_id = 'run-1'",
            [],
            |r| r.get(0),
        )
        .expect("run-1");
    raw.execute(
        "UPDATE migration_runs SET migrated_keys = migrated_keys + 1 WHERE run_id = 'run-1'",
        [],
    )
    .expect("tamper");
    let deleted = raw
        .execute(
            "DELETE FROM migration_dirty_keys WHERE run_id = 'run-0' AND key = ?1",
            [BINARY_KEY],
        )
        .expect("tamper");
    assert!(deleted > 0);
    raw.execute(
        "INSERT INTO migration_errors (seq, at_ms, component, severity, message)
         VALUES (1000000, 0, 'x', 'error', 'made up')",
        [],
    )
    .expect("tamper");

    let view = t.view();
    let rebuilt = rebuild(&view, None, Start::FirstEvent);
    let comparison = compare(view.conn(), &rebuilt.conn, 100).expect("compare");
    let text = |s: &str| Cell::Text(s.as_bytes().to_vec());
    let runs = Difference {
        table: "migration_runs",
        key: vec![("run_id".into(), text("run-1"))],
        kind: DifferenceKind::Column {
            column: "migrated_keys".into(),
            stored: Cell::Integer(migrated + 1),
            rebuilt: Cell::Integer(migrated),
        },
    };
    assert!(
        comparison.differences.contains(&runs),
        "{:#?}",
        comparison.differences
    );
    let missing: Vec<&Difference> = comparison
        .differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::MissingRow)
        .collect();
    assert_eq!(missing.len(), deleted);
    assert!(missing.iter().all(|d| d.table == "migration_dirty_keys"
        && d.key[0] == ("run_id".into(), text("run-0"))
        && d.key[2] == ("key".into(), Cell::Blob(BINARY_KEY.to_vec()))));
    let extra = Difference {
        table: "migration_errors",
        key: vec![("seq".into(), Cell::Integer(1_000_000))],
        kind: DifferenceKind::ExtraRow,
    };
    assert!(comparison.differences.contains(&extra));
    assert_eq!(comparison.total, 2 + deleted as u64);

    let first_two = compare(view.conn(), &rebuilt.conn, 2).expect("compare");
    assert_eq!(first_two.differences.len(), 2);
    assert_eq!(first_two.total, comparison.total);
}

#[test]
fn compaction_keeps_the_snapshot_to_replay_from_and_the_newest_row() {
    let t = TempJournal::new();
    t.append(activity(0, 3000));
    t.snapshot();
    t.append(activity(3000, 1000));
    let second = t.snapshot();
    let last = t.append(activity(4000, 500));
    let raw = t.raw();

    let compacted = compaction::compact(&raw, Seq::MAX).expect("compact");
    // Rows before the latest snapshot go; while the journal was complete,
    // only that snapshot was kept.
    assert_eq!(compacted.first, Some(second.seq));
    assert_eq!(compacted.deleted, second.seq as u64 - 1);

    let view = t.view();
    assert_eq!(view.bounds().first, Some(second.seq));
    assert_eq!(view.bounds().snapshots, vec![second.seq]);
    assert_eq!(view.bounds().earliest(), Some(second.seq));
    let rebuilt = rebuild(&view, None, Start::FirstEvent);
    assert_eq!(rebuilt.summary.snapshot_seq, Some(second.seq));
    assert_same(view.conn(), &rebuilt.conn);
    assert_eq!(rebuilt.summary.seq, last);

    let before = view.rebuild(RebuildOptions {
        until: Some(second.seq - 1),
        start: Start::FirstEvent,
    });
    match before {
        Err(e @ RebuildError::BeforeEarliest { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&format!("earliest available sequence is {}", second.seq)),
                "{message}"
            );
        }
        other => panic!("expected BeforeEarliest, got {:?}", other.err()),
    }
    drop(view);

    // Even a snapshot claiming to cover the newest row leaves that row:
    // its number must never be handed out again.
    raw.execute("UPDATE projection_snapshots SET seq = ?1", [last])
        .expect("tamper");
    raw.execute("UPDATE journal_snapshots SET seq = ?1", [last])
        .expect("tamper");
    compaction::compact(&raw, Seq::MAX).expect("compact");
    assert_eq!(t.count(), 1);
    let next = t.append(activity(0, 1));
    assert_eq!(next, last + 1);
}

#[test]
fn maintenance_snapshots_compacts_and_keeps_start_up_replay_exact() {
    let t = TempJournal::new();
    let policy = SnapshotPolicy {
        every_events: 1000,
        retain_events: Some(1500),
    };
    // The summary as the journal's events say, folded here as they are
    // appended (before maintenance may compact them away).
    let mut expected = Summary::default();
    let mut read = 0;
    let mut fold = |t: &TempJournal, expected: &mut Summary| {
        for entry in t.journal.read_from(read + 1).expect("reader") {
            let entry = entry.expect("entry");
            expected.apply(entry.seq, &entry.event);
            read = entry.seq;
        }
    };
    let mut snapshots = 0;
    let mut deleted = 0;
    for round in 0..12 {
        t.append(activity(round * 400, 400));
        fold(&t, &mut expected);
        let done = compaction::maintain(&t.journal, &policy).expect("maintain");
        snapshots += u64::from(done.snapshot.is_some());
        deleted += done.deleted;
    }
    fold(&t, &mut expected);
    assert_eq!(snapshots, 4, "one per 1000 events");
    assert!(deleted > 0);
    assert_eq!(t.count() as u64 + deleted, read as u64);
    assert!(t.count() >= 1500, "{} rows kept", t.count());

    let start_up = t.journal.replay::<Summary>(None).expect("replay");
    assert!(start_up.snapshot_seq.is_some());
    assert_eq!(start_up.state, expected);

    let view = t.view();
    let earliest = view.bounds().earliest().expect("a snapshot to start from");
    assert!(view.bounds().compacted_before().is_some());
    assert_same(view.conn(), &rebuild(&view, None, Start::FirstEvent).conn);
    let oldest = rebuild(&view, Some(earliest), Start::FirstEvent);
    assert_eq!(oldest.summary.seq, earliest);
    assert!(matches!(
        view.rebuild(RebuildOptions {
            until: Some(earliest - 1),
            start: Start::FirstEvent
        }),
        Err(RebuildError::BeforeEarliest { earliest: e, .. }) if e == Some(earliest)
    ));
}

#[test]
fn a_rebuild_pages_through_the_journal_and_sees_one_state() {
    let t = TempJournal::new();
    // Several pages of the reader (1,024 rows each), and a page boundary
    // that is not a batch boundary.
    let last = t.append(activity(0, 5_555));
    let view = t.view();
    // Appended after the view opened: not part of its state.
    t.append(activity(5_555, 2_000));

    let rebuilt = rebuild(&view, None, Start::FirstEvent);
    assert_eq!(view.bounds().last, last);
    assert_eq!(rebuilt.summary.seq, last);
    assert_eq!(rebuilt.summary.applied, last as u64);
    assert_same(view.conn(), &rebuilt.conn);
    drop(view);
    assert!(
        !compare(t.view().conn(), &rebuilt.conn, 0)
            .expect("compare")
            .is_clean()
    );
}

#[test]
fn a_missing_file_is_refused_not_created() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("missing.sqlite");
    assert!(matches!(
        JournalView::open(&path),
        Err(RebuildError::NoSuchFile(p)) if p == path
    ));
    assert!(!path.exists());
}

//! Start-up state rebuild on a long journal with periodic snapshots, next
//! to rebuilds from the first event for comparison.
//!
//! ```text
//! cargo bench -p keyferry-journal --bench startup_rebuild               # 1M events
//! cargo bench -p keyferry-journal --bench startup_rebuild -- 10000000   # 10M events
//! ```
//!
//! The journal is a migration's: tracker events on a bounded key space
//! (100,000 distinct dirty keys over 4 runs), their settlements, batches and
//! checkpoints, a job's lifecycle every 1,000 events, a warning every
//! 100,000 and an actor restart every million. It is written with raw
//! batched inserts through [`append_in`] (which also projects every event
//! into the SQL tables), 100,000 events per transaction, with a projection
//! snapshot ([`compaction::take_snapshot`]) every 100,000 events — the
//! default [`compaction::SnapshotPolicy`] — except after the last batch:
//! start-up then reads the longest tail the policy leaves (the worst case,
//! right before the next snapshot is due).
//!
//! What a restart rebuilds: the SQL projections (runs, dirty keys, errors,
//! jobs) are written in the transaction of every append, so a restarted
//! process reads them as they are and rebuilds nothing. The in-memory state
//! actors load is the [`Summary`] projection, replayed from its latest
//! snapshot plus the events after it: that is the start-up time, measured
//! here including opening the journal. Target (issue 6): ≤ 1 s at 10M
//! events.
//!
//! For comparison: the summary replayed from the first event (what
//! start-up would cost without snapshots), and `keyferry replay`'s rebuild
//! of every projection into a temporary database, from the latest snapshot
//! and from the first event.

use std::path::Path;
use std::time::{Duration, Instant};

use keyferry_journal::compaction;
use keyferry_journal::connection::open_rw;
use keyferry_journal::rebuild::{JournalView, RebuildOptions, Start};
use keyferry_journal::schema::migrate;
use keyferry_journal::{
    COMPONENT, Counters, Durability, Event, Journal, MIGRATIONS, Severity, Summary, WriterConfig,
    append_in,
};
use rusqlite::TransactionBehavior;

/// Events when no count is given on the command line.
const DEFAULT_EVENTS: u64 = 1_000_000;
/// Events per write transaction, and between snapshots.
const BATCH: u64 = 100_000;
/// Distinct keys per run.
const KEYS: u64 = 25_000;
/// Each start-up measurement is repeated and the best run reported.
const ROUNDS: usize = 3;

/// The `i`-th event of the journal.
fn event(i: u64) -> Event {
    let run_id = format!("run-{}", i % 4);
    let key_no = (i / 4) % KEYS;
    let key = format!("user:{key_no:08}:profile").into_bytes();
    let db = (key_no % 16) as u32;
    let job_id = format!("job-{}", i / 1000);
    match (i % 1_000_000, i % 100_000, i % 1000, i % 10) {
        (0, ..) => Event::ActorRestarted {
            actor: "bulk-scanner".into(),
            attempt: 1,
            reason: "source went away".into(),
            backoff_ms: 100,
            gave_up: false,
        },
        (_, 0, ..) => Event::ErrorRecorded {
            run_id: Some(run_id),
            component: "tracker".into(),
            severity: Severity::Warning,
            message: "reconnected".into(),
            db: None,
            key: None,
        },
        (_, _, 1, _) => Event::JobEnqueued {
            job_id,
            queue: "steps".into(),
            payload: Vec::new(),
            max_attempts: 3,
            run_at_ms: 0,
            kind: "apply-dirty".into(),
            priority: 0,
            dedupe_key: None,
        },
        (_, _, 2, _) => Event::JobLeased {
            job_id,
            worker: "w".into(),
            epoch: 1,
            deadline_ms: i64::MAX,
            attempt: 1,
        },
        (_, _, 3, _) => Event::JobAcked {
            job_id,
            worker: "w".into(),
            epoch: 1,
        },
        (.., 0..=4) => Event::KeyDirtied {
            run_id,
            db,
            key,
            event: "hset".into(),
        },
        (.., 5..=7) => Event::KeyMarkedApplied {
            run_id,
            db,
            key,
            through_seq: i64::MAX,
        },
        (.., 8) => Event::BatchCommitted {
            run_id,
            db,
            keys: 500,
            bytes: 64_000,
        },
        _ => Event::Checkpoint {
            run_id,
            source_run_id: "abc".into(),
            cursor: i,
            counters: Counters {
                scanned_keys: i,
                migrated_keys: i,
                ..Counters::default()
            },
            db,
            done: false,
        },
    }
}

/// Writes `events` events to a new journal at `path`, a snapshot after
/// every [`BATCH`] but the last.
fn generate(path: &Path, events: u64) -> rusqlite::Result<()> {
    let mut conn = open_rw(path, Durability::Normal)?;
    migrate(&mut conn, COMPONENT, MIGRATIONS).expect("journal schema");
    compaction::prepare(&mut conn).expect("snapshot schema");
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let n = BATCH.min(events - written);
        let batch: Vec<Event> = (written..written + n).map(event).collect();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        append_in(&tx, &batch).expect("append");
        // No snapshot after the last batch: start-up then replays the
        // longest tail the policy allows (a snapshot would be due next).
        if written + n < events {
            compaction::take_snapshot(&tx).expect("snapshot");
        }
        tx.commit()?;
        written += n;
        if written % 1_000_000 == 0 {
            println!(
                "  … {written} events written ({:.0} events/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn best(mut run: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS)
        .map(|_| run())
        .min()
        .expect("at least one round")
}

fn seconds(d: Duration) -> String {
    format!("{:>9.3} s", d.as_secs_f64())
}

fn main() {
    let events = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map_or(DEFAULT_EVENTS, |arg| {
            arg.parse().expect("the argument is a number of events")
        });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.sqlite");
    println!("startup_rebuild: {events} events, a snapshot every {BATCH}");
    let started = Instant::now();
    generate(&path, events).expect("generate");
    let file_mb = std::fs::metadata(&path).map_or(0, |m| m.len()) / 1_000_000;
    println!(
        "  journal written in {:.1} s ({file_mb} MB)\n",
        started.elapsed().as_secs_f64()
    );

    println!("start-up: the SQL projections are stored with every append (nothing to rebuild);");
    println!("the in-memory summary is its latest snapshot plus the tail:");
    let mut tail = 0;
    let startup = best(|| {
        let started = Instant::now();
        let (writer, journal) = Journal::open(&path, Durability::Normal, WriterConfig::default())
            .expect("open journal");
        let replayed = journal.replay::<Summary>(None).expect("replay");
        let elapsed = started.elapsed();
        tail = replayed.applied;
        assert!(replayed.snapshot_seq.is_some() || events <= BATCH);
        writer.shutdown();
        elapsed
    });
    println!(
        "  {:<58} {}   ({tail} tail events)",
        "open + summary from latest snapshot",
        seconds(startup)
    );

    println!("\nfor comparison, rebuilds from the first event and keyferry replay's:");
    let (writer, journal) =
        Journal::open(&path, Durability::Normal, WriterConfig::default()).expect("open journal");
    let started = Instant::now();
    let scratch = journal
        .replay_from_start::<Summary>(None)
        .expect("replay from start");
    let from_start = started.elapsed();
    writer.shutdown();
    println!(
        "  {:<58} {}   ({:.0} events/s)",
        "summary from the first event",
        seconds(from_start),
        scratch.applied as f64 / from_start.as_secs_f64()
    );
    let view = JournalView::open(&path).expect("view");
    for (label, start) in [
        (
            "every projection (SQL + summary) from the latest snapshot",
            Start::LatestSnapshot,
        ),
        (
            "every projection (SQL + summary) from the first event",
            Start::FirstEvent,
        ),
    ] {
        let started = Instant::now();
        let rebuilt = view
            .rebuild(RebuildOptions { until: None, start })
            .expect("rebuild");
        let elapsed = started.elapsed();
        assert_eq!(rebuilt.summary.state, scratch.state);
        println!(
            "  {label:<58} {}   ({} events applied)",
            seconds(elapsed),
            rebuilt.summary.applied
        );
    }
}

//! Restart simulation: record a journal from a real migration (tracker,
//! a bulk copy killed midway and taken over, pre-deltas, final delta, all
//! as separate processes with leased step jobs), then rebuild the state
//! from many prefixes of it — each the state a crash right after that
//! event would leave — and check the invariants every prefix must keep:
//! - counters never go backwards from one prefix to the next;
//! - a key is never both settled and pending at the same seq (a settled
//!   row's settlement covers its latest tracker event; a pending row's
//!   does not);
//! - a job is never leased to two workers at once, and its lease epochs
//!   only grow;
//! - every leased job is eventually acked, failed or reclaimed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyferry_journal::rebuild::{JournalView, RebuildOptions, Start};
use keyferry_testkit::dataset::{Mutator, Scale, populate};
use keyferry_testkit::{KillOnDrop, RedisServer};
use rusqlite::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_keyferry");

fn keyferry(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .args(args)
        .env("KEYFERRY_LEASE_MS", "1000")
        .stdin(Stdio::null())
        .output()
        .expect("run keyferry");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scalar(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Records a journal from a real migration with a crash in it.
fn record_migration(dest: &Path) {
    let source = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    let keys = 1500;
    populate(
        source.port(),
        21,
        Scale {
            keys_per_db: keys,
            big: 3000,
        },
    );
    let (from, to) = (source.url(), dest.to_str().unwrap().to_string());
    let run = [
        "--run-id",
        "sim",
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
    ];
    let mut tracker = KillOnDrop::spawn(
        Command::new(BIN)
            .args([&["tracker", "start"][..], &run[..]].concat())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(dest.exists()
        && Connection::open(dest)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM migration_runs WHERE tracker_connected = 1",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .unwrap_or(0)
            == 1)
    {
        assert!(Instant::now() < deadline, "the tracker never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mutator = Mutator::start(source.port(), 22, keys);
    // A bulk copy killed midway, then taken over by `--resume`.
    let mut bulk = KillOnDrop::spawn(
        Command::new(BIN)
            .args(
                [
                    &[
                        "bulk",
                        "--scan-count",
                        "50",
                        "--max-concurrency",
                        "1",
                        "--max-rps",
                        "3000",
                    ][..],
                    &run[..],
                ]
                .concat(),
            )
            .env("KEYFERRY_LEASE_MS", "1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    bulk.kill().unwrap();
    bulk.wait().unwrap();
    keyferry(&[&["bulk", "--resume"][..], &run[..]].concat());
    keyferry(&[&["apply-dirty"][..], &run[..]].concat());
    mutator.stop();
    std::thread::sleep(Duration::from_millis(300));
    keyferry(&[&["apply-dirty", "--sweep"][..], &run[..]].concat());
    keyferry(&["tracker", "stop", "--run-id", "sim", "--to", &to]);
    assert!(tracker.wait().unwrap().success());
}

/// The counters of run `sim` in a rebuilt state, by name.
fn counters(conn: &Connection) -> BTreeMap<&'static str, i64> {
    const COLUMNS: [&str; 9] = [
        "scanned_keys",
        "migrated_keys",
        "skipped_keys",
        "migrated_bytes",
        "batches",
        "dirty_keys_seen",
        "dirty_events",
        "dirty_keys_applied",
        "dirty_keys_deleted",
    ];
    COLUMNS
        .iter()
        .map(|c| {
            let v = conn
                .query_row(
                    &format!("SELECT {c} FROM migration_runs WHERE run_id = 'sim'"),
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            (*c, v)
        })
        .collect()
}

#[test]
fn every_prefix_of_a_recorded_migration_rebuilds_a_consistent_state() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest.sqlite");
    record_migration(&dest);
    let view = JournalView::open(&dest).unwrap();
    let last = scalar(view.conn(), "SELECT MAX(seq) FROM journal");
    let first = scalar(view.conn(), "SELECT MIN(seq) FROM journal");
    assert!(last > 200, "too short a journal to simulate: {last}");
    // The job events happened: the killed bulk's lease was taken over.
    assert!(
        scalar(
            view.conn(),
            "SELECT COUNT(*) FROM journal WHERE kind = 'job_leased'"
        ) >= 3
    );

    // Prefixes: evenly spread, plus every job event (where the lease
    // invariants change).
    let mut prefixes: Vec<i64> = (0..24).map(|i| first + (last - first) * i / 23).collect();
    let mut job_seqs = view
        .conn()
        .prepare("SELECT seq FROM journal WHERE kind LIKE 'job_%'")
        .unwrap()
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    prefixes.append(&mut job_seqs);
    prefixes.sort_unstable();
    prefixes.dedup();

    let mut previous: Option<BTreeMap<&str, i64>> = None;
    let mut epochs: BTreeMap<String, i64> = BTreeMap::new();
    for &until in &prefixes {
        let rebuilt = view
            .rebuild(RebuildOptions {
                until: Some(until),
                start: Start::FirstEvent,
            })
            .unwrap();
        let conn = &rebuilt.conn;
        let now = counters(conn);
        if let Some(before) = &previous {
            for (name, value) in &now {
                assert!(
                    value >= &before[name],
                    "{name} went backwards at seq {until}: {} → {value}",
                    before[name]
                );
            }
        }
        previous = Some(now);
        let contradictions = scalar(
            conn,
            "SELECT COUNT(*) FROM migration_dirty_keys WHERE
               (state IN ('applied', 'removed', 'skipped') AND settled_seq < last_seen_seq)
            OR (state IN ('dirty', 'deleted') AND settled_seq IS NOT NULL AND settled_seq >= last_seen_seq)",
        );
        assert_eq!(
            contradictions, 0,
            "a key both settled and pending at seq {until}"
        );
        let leased_without_holder = scalar(
            conn,
            "SELECT COUNT(*) FROM jobs WHERE status = 'leased' AND (worker IS NULL OR lease_deadline_ms IS NULL)",
        );
        assert_eq!(
            leased_without_holder, 0,
            "a leased job without a holder at seq {until}"
        );
        let mut rows = conn.prepare("SELECT job_id, epoch FROM jobs").unwrap();
        for row in rows
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
        {
            let (job, epoch) = row.unwrap();
            let seen = epochs.entry(job.clone()).or_insert(epoch);
            assert!(
                epoch >= *seen,
                "job {job}'s epoch went backwards at seq {until}"
            );
            *seen = epoch;
        }
    }

    // No job was ever leased while already leased: between two leases of a
    // job there is an ack, a failure or a reclaim.
    let mut events = view
        .conn()
        .prepare("SELECT seq, kind FROM journal WHERE kind LIKE 'job_%' ORDER BY seq")
        .unwrap();
    let rows: Vec<(i64, String)> = events
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(events);
    let rebuilt = view.rebuild(RebuildOptions::default()).unwrap();
    let mut held: BTreeMap<String, bool> = BTreeMap::new();
    for (seq, kind) in rows {
        let job: String = view
            .conn()
            .query_row("SELECT payload FROM journal WHERE seq = ?1", [seq], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .map(|payload| job_id_of(&payload))
            .unwrap();
        let leased = held.entry(job.clone()).or_default();
        match kind.as_str() {
            "job_leased" => {
                assert!(!*leased, "job {job} leased twice (seq {seq})");
                *leased = true;
            }
            "job_acked" | "job_failed" | "job_lease_expired" => *leased = false,
            _ => {}
        }
    }
    // Every lease ended: acked, failed or reclaimed.
    assert!(
        held.values().all(|leased| !leased),
        "a lease never ended: {held:?}"
    );
    let still_leased = scalar(
        &rebuilt.conn,
        "SELECT COUNT(*) FROM jobs WHERE status = 'leased'",
    );
    assert_eq!(still_leased, 0);
    eprintln!(
        "{} prefixes of {} events checked",
        prefixes.len(),
        last - first + 1
    );
}

/// The `job_id` of a job event's payload (MessagePack, named fields).
fn job_id_of(payload: &[u8]) -> String {
    let event: keyferry_journal::Event = rmp_serde::from_slice(payload).expect("a job event");
    match event {
        keyferry_journal::Event::JobLeased { job_id, .. }
        | keyferry_journal::Event::JobAcked { job_id, .. }
        | keyferry_journal::Event::JobFailed { job_id, .. }
        | keyferry_journal::Event::JobLeaseExpired { job_id, .. }
        | keyferry_journal::Event::JobEnqueued { job_id, .. }
        | keyferry_journal::Event::JobHeartbeat { job_id, .. }
        | keyferry_journal::Event::JobRetried { job_id, .. }
        | keyferry_journal::Event::JobDeadLettered { job_id, .. } => job_id,
        other => panic!("not a job event: {other:?}"),
    }
}

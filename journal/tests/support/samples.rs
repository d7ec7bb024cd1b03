//! Sample events shared by the tests and the fixture generator.
//!
//! [`written_by_v1`], [`written_by_v2`] and [`written_by_v3`] are frozen:
//! each is exactly what `fixtures/journal_vN.sqlite` holds, and the fixture
//! tests decode those files and compare. When a field is added to an event
//! (with `#[serde(default)]`), add its default value to each; when a new
//! event kind or field is added, add a `written_by_vN` for the new schema
//! version (and its fixture) using it, and point [`every_kind`] at it.

use keyferry_journal::{Counters, Event, RunStatus, Severity};

/// A key no string type could hold: CR LF, NUL and invalid UTF-8.
pub const BINARY_KEY: &[u8] = b"user:\r\n\0\xff\xfe:1";

/// One event of every kind: the newest fixture's events.
pub fn every_kind() -> Vec<Event> {
    written_by_v3()
}

/// The events of the schema v3 fixture journal, in order: v2's, then a
/// migration step's job using the fields v3 added to `JobEnqueued` (kind,
/// priority, dedupe key), through its whole life.
pub fn written_by_v3() -> Vec<Event> {
    let step = || "bulk:run-1".to_string();
    let worker = || "host-a:4242".to_string();
    let mut events = written_by_v2();
    events.extend([
        Event::JobEnqueued {
            job_id: step(),
            queue: "steps".into(),
            payload: b"{\"source\":\"redis://127.0.0.1:6379/0\"}".to_vec(),
            max_attempts: 5,
            run_at_ms: 1_700_000_100_000,
            kind: "bulk".into(),
            priority: 7,
            dedupe_key: Some(step()),
        },
        Event::JobLeased {
            job_id: step(),
            worker: worker(),
            epoch: 1,
            deadline_ms: 1_700_000_130_000,
            attempt: 1,
        },
        Event::JobAcked {
            job_id: step(),
            worker: worker(),
            epoch: 1,
        },
    ]);
    events
}

/// The events of the schema v2 fixture journal, in order: v1's, then the
/// kinds v2 added and a checkpoint using the fields it added.
pub fn written_by_v2() -> Vec<Event> {
    let run = || "run-1".to_string();
    let mut events = written_by_v1();
    events.extend([
        Event::SweepRequired {
            run_id: run(),
            reason: "tracker disconnected".into(),
        },
        Event::SweepCompleted {
            run_id: run(),
            started_seq: 21,
        },
        Event::ThrottlesChanged {
            run_id: run(),
            max_rps: Some(5000),
            max_concurrency: None,
            batch_keys: Some(512),
            batch_bytes: Some(8 << 20),
            scan_count: None,
        },
        Event::TrackerStopRequested { run_id: run() },
        Event::TrackerState {
            run_id: run(),
            connected: true,
            source_run_id: "7d0f9b2c".into(),
        },
        Event::NotificationsChanged {
            run_id: run(),
            previous: String::new(),
            applied: "KEA".into(),
        },
        Event::NotificationsRestored { run_id: run() },
        Event::KeyMarkedSkipped {
            run_id: run(),
            db: 7,
            key: BINARY_KEY.to_vec(),
            through_seq: 0,
            reason: "stream".into(),
        },
        Event::Checkpoint {
            run_id: run(),
            source_run_id: "7d0f9b2c".into(),
            cursor: 0,
            counters: Counters {
                scanned_keys: 20,
                migrated_keys: 17,
                skipped_keys: 2,
                error_keys: 1,
                migrated_bytes: 8192,
            },
            db: 15,
            done: true,
        },
    ]);
    events
}

/// The events of the schema v1 fixture journal, in order.
pub fn written_by_v1() -> Vec<Event> {
    let run = || "run-1".to_string();
    vec![
        Event::RunStarted {
            run_id: run(),
            source: "redis://127.0.0.1:6379/0".into(),
            destination: "/var/lib/keyferry/data.sqlite".into(),
        },
        Event::RunStatusChanged {
            run_id: run(),
            status: RunStatus::Paused,
            reason: Some("operator".into()),
        },
        Event::Checkpoint {
            run_id: run(),
            source_run_id: "7d0f9b2c".into(),
            cursor: u64::MAX,
            counters: Counters {
                scanned_keys: 10,
                migrated_keys: 8,
                skipped_keys: 1,
                error_keys: 1,
                migrated_bytes: 4096,
            },
            // Not in the v1 rows: decoded from their defaults.
            db: 0,
            done: false,
        },
        Event::BatchCommitted {
            run_id: run(),
            db: 3,
            keys: 8,
            bytes: 4096,
        },
        Event::KeyDirtied {
            run_id: run(),
            db: 15,
            key: BINARY_KEY.to_vec(),
            event: "hset".into(),
        },
        Event::KeyDeleted {
            run_id: run(),
            db: 0,
            key: Vec::new(),
            event: "expired".into(),
        },
        Event::KeyMarkedApplied {
            run_id: run(),
            db: 15,
            key: BINARY_KEY.to_vec(),
            through_seq: 5,
        },
        Event::KeyMarkedDeleted {
            run_id: run(),
            db: 0,
            key: Vec::new(),
            through_seq: 6,
        },
        Event::ErrorRecorded {
            run_id: Some(run()),
            component: "bulk-scanner".into(),
            severity: Severity::Error,
            message: "WRONGTYPE on HSCAN".into(),
            db: Some(2),
            key: Some(BINARY_KEY.to_vec()),
        },
        Event::ErrorRecorded {
            run_id: None,
            component: "tracker".into(),
            severity: Severity::Warning,
            message: "reconnected; sweep required".into(),
            db: None,
            key: None,
        },
        Event::JobEnqueued {
            job_id: "job-1".into(),
            queue: "migrate".into(),
            payload: vec![0, 1, 2, 255],
            max_attempts: 3,
            run_at_ms: 1_700_000_000_000,
            // Not in the v1 and v2 rows: decoded from their defaults.
            kind: String::new(),
            priority: 0,
            dedupe_key: None,
        },
        Event::JobLeased {
            job_id: "job-1".into(),
            worker: "w-1".into(),
            epoch: 1,
            deadline_ms: 1_700_000_030_000,
            attempt: 1,
        },
        Event::JobHeartbeat {
            job_id: "job-1".into(),
            worker: "w-1".into(),
            epoch: 1,
            deadline_ms: 1_700_000_060_000,
        },
        Event::JobFailed {
            job_id: "job-1".into(),
            worker: "w-1".into(),
            epoch: 1,
            attempt: 1,
            error: "connection reset".into(),
        },
        Event::JobRetried {
            job_id: "job-1".into(),
            next_attempt: 2,
            run_at_ms: 1_700_000_090_000,
        },
        Event::JobLeaseExpired {
            job_id: "job-2".into(),
            worker: "w-2".into(),
            epoch: 4,
        },
        Event::JobAcked {
            job_id: "job-1".into(),
            worker: "w-1".into(),
            epoch: 2,
        },
        Event::JobDeadLettered {
            job_id: "job-3".into(),
            attempts: 3,
            error: "timeout".into(),
        },
        Event::ActorRestarted {
            actor: "bulk-scanner".into(),
            attempt: 2,
            reason: "panicked at 'boom'".into(),
            backoff_ms: 200,
            gave_up: false,
        },
        Event::SnapshotTaken {
            projection: "summary".into(),
            covers_seq: 19,
        },
    ]
}

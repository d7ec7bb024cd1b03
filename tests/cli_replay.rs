//! `keyferry replay` run as a binary on a destination file holding real
//! journal events (appended through the engine's store, as the actors do):
//! the summary, `--check` passing and then naming tampered rows, `--until`
//! showing a prefix, `--json`, compacted journals and missing files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keyferry_engine::{Store, StoreConfig};
use keyferry_journal::compaction;
use keyferry_journal::connection::open_rw;
use keyferry_journal::{Counters, Durability, Event, Seq, Severity};
use rusqlite::TransactionBehavior;
use serde_json::Value;

/// A key no string type could hold.
const BINARY_KEY: &[u8] = b"user:\r\n\0\xff:1";

fn keyferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyferry"))
        .args(args)
        .output()
        .expect("run keyferry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of the `name:` line of a text report.
fn field<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} line in:\n{report}"))
        .trim_start()
}

/// `keyferry replay --db PATH ARGS…`.
fn replay(path: &Path, args: &[&str]) -> Output {
    keyferry(&[&["replay", "--db", path.to_str().unwrap()][..], args].concat())
}

/// `keyferry replay --db PATH --json ARGS…`, which must succeed, parsed.
fn replay_json(path: &Path, args: &[&str]) -> Value {
    let out = replay(path, &[&["--json"][..], args].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn append(store: &Store, events: Vec<Event>) -> Seq {
    let seqs = store
        .write(move |tx| tx.append_events(&events))
        .wait()
        .unwrap();
    *seqs.last().unwrap()
}

/// The events of run `run_id`'s bulk scan so far: started, one batch
/// checkpointed with its counters.
fn bulk(run_id: &str, migrated: u64) -> Vec<Event> {
    vec![
        Event::RunStarted {
            run_id: run_id.into(),
            source: "redis://127.0.0.1:6379/0".into(),
            destination: "dest.db".into(),
        },
        Event::BatchCommitted {
            run_id: run_id.into(),
            db: 0,
            keys: migrated,
            bytes: migrated * 10,
        },
        Event::Checkpoint {
            run_id: run_id.into(),
            source_run_id: "abc".into(),
            cursor: 77,
            counters: Counters {
                scanned_keys: migrated + 2,
                migrated_keys: migrated,
                skipped_keys: 2,
                error_keys: 0,
                migrated_bytes: migrated * 10,
            },
            db: 0,
            done: false,
        },
    ]
}

/// A destination file: run `run-1`'s scan (the first write, ending at the
/// returned seq), then its tracker and applier at work on binary keys, an
/// error and a warning, a job through its lifecycle, supervisor restarts,
/// and a second run.
fn destination(dir: &Path) -> (PathBuf, Seq) {
    let path = dir.join("dest.db");
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let run = || "run-1".to_string();
    let first = append(&store, bulk("run-1", 40));
    let key = |name: &[u8]| [BINARY_KEY, name].concat();
    append(
        &store,
        vec![
            Event::KeyDirtied {
                run_id: run(),
                db: 3,
                key: key(b"a"),
                event: "hset".into(),
            },
            Event::KeyDirtied {
                run_id: run(),
                db: 3,
                key: key(b"b"),
                event: "set".into(),
            },
            Event::KeyDeleted {
                run_id: run(),
                db: 3,
                key: key(b"c"),
                event: "expired".into(),
            },
            Event::KeyMarkedApplied {
                run_id: run(),
                db: 3,
                key: key(b"b"),
                through_seq: Seq::MAX,
            },
            Event::ErrorRecorded {
                run_id: Some(run()),
                component: "bulk".into(),
                severity: Severity::Error,
                message: "cannot import".into(),
                db: Some(3),
                key: Some(key(b"d")),
            },
            Event::ErrorRecorded {
                run_id: Some(run()),
                component: "tracker".into(),
                severity: Severity::Warning,
                message: "reconnected".into(),
                db: None,
                key: None,
            },
            Event::SweepRequired {
                run_id: run(),
                reason: "tracker reconnected".into(),
            },
            Event::JobEnqueued {
                job_id: "job-1".into(),
                queue: "steps".into(),
                payload: b"{}".to_vec(),
                max_attempts: 3,
                run_at_ms: 0,
                kind: "bulk".into(),
                priority: 0,
                dedupe_key: Some("bulk:run-1".into()),
            },
            Event::JobLeased {
                job_id: "job-1".into(),
                worker: "w1".into(),
                epoch: 1,
                deadline_ms: i64::MAX,
                attempt: 1,
            },
            Event::JobEnqueued {
                job_id: "job-2".into(),
                queue: "steps".into(),
                payload: Vec::new(),
                max_attempts: 3,
                run_at_ms: 0,
                kind: "verify".into(),
                priority: 0,
                dedupe_key: None,
            },
            Event::ActorRestarted {
                actor: "bulk-scanner".into(),
                attempt: 1,
                reason: "source went away".into(),
                backoff_ms: 100,
                gave_up: false,
            },
            Event::ActorRestarted {
                actor: "bulk-scanner".into(),
                attempt: 2,
                reason: "source went away".into(),
                backoff_ms: 200,
                gave_up: false,
            },
        ],
    );
    append(&store, bulk("run-2", 5));
    store.shutdown();
    (path, first)
}

#[test]
fn check_passes_on_a_journal_and_the_summary_tells_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = destination(dir.path());
    let out = replay(&path, &["--check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let last = field(&stdout, "events")
        .strip_prefix("seq 1..=")
        .expect("every event")
        .to_string();
    assert_eq!(
        field(&stdout, "replayed"),
        format!("through seq {last} (the last event)")
    );
    assert_eq!(field(&stdout, "started from"), "the first event");
    assert_eq!(field(&stdout, "applied"), format!("{last} events"));
    assert_eq!(field(&stdout, "snapshots"), "none");
    assert_eq!(field(&stdout, "errors"), "1 errors, 1 warnings");
    assert_eq!(
        field(&stdout, "jobs"),
        "queued 1, leased 1, done 0, failed 0, dead 0"
    );
    assert_eq!(
        field(&stdout, "restarts"),
        "bulk-scanner 2 (last: source went away)"
    );
    assert_eq!(field(&stdout, "runs"), "2");
    assert!(
        field(&stdout, "check")
            .starts_with("ok: the stored projections equal the rebuilt ones (4 tables, "),
        "{stdout}"
    );
    for expected in [
        "\n  run-1: running; scanned 42, migrated 40, skipped 2, errors 0, 400 bytes in 1 batches; \
         dirty backlog 2 (applied 1, deleted 1, dirty 1); 1 errors, 1 warnings; last event 10; \
         needs a sweep\n",
        "\n  run-2: running; scanned 7, migrated 5, skipped 2, errors 0, 50 bytes in 1 batches; \
         dirty backlog 0; 0 errors, 0 warnings; last event ",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
}

#[test]
fn check_names_a_tampered_counter_and_a_missing_dirty_key() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = destination(dir.path());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE migration_runs SET migrated_keys = migrated_keys + 1 WHERE run_id = 'run-1'",
        [],
    )
    .unwrap();
    let key = [BINARY_KEY, b"a"].concat();
    assert_eq!(
        conn.execute(
            "DELETE FROM migration_dirty_keys WHERE run_id = 'run-1' AND key = ?1",
            [&key]
        )
        .unwrap(),
        1
    );
    drop(conn);

    let out = replay(&path, &["--check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        text(&out.stderr).contains(
            "keyferry replay: 2 difference(s) between the rebuilt and the stored projections"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(
        field(&stdout, "check")
            .starts_with("2 difference(s) between the stored and the rebuilt projections"),
        "{stdout}"
    );
    for expected in [
        "\n  migration_runs run_id=\"run-1\": migrated_keys is 41 in the file, 40 rebuilt",
        "\n  migration_dirty_keys run_id=\"run-1\" db=3 key=\"user:\\r\\n\\x00\\xff:1a\": \
         row missing from the file\n",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }

    let out = replay(&path, &["--check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = &json["check"];
    assert_eq!(check["ok"], false);
    assert_eq!(check["difference_count"], 2);
    assert_eq!(
        check["differences"][0],
        serde_json::json!({"table": "migration_runs", "key": {"run_id": "run-1"},
                           "kind": "column", "column": "migrated_keys",
                           "stored": 41, "rebuilt": 40})
    );
    assert_eq!(
        check["differences"][1],
        serde_json::json!({"table": "migration_dirty_keys",
                           "key": {"run_id": "run-1", "db": 3, "key": "user:\\r\\n\\x00\\xff:1a"},
                           "kind": "missing_row"})
    );
}

#[test]
fn until_shows_the_state_right_after_that_event() {
    let dir = tempfile::tempdir().unwrap();
    let (path, first) = destination(dir.path());
    let json = replay_json(&path, &["--until", &first.to_string()]);
    assert_eq!(json["until"], first);
    assert_eq!(json["replayed_through"], first);
    assert_eq!(json["events_applied"], first);
    assert!(json["last_seq"].as_i64().unwrap() > first);
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "run-2 started later: {runs:?}");
    assert_eq!(runs[0]["run_id"], "run-1");
    assert_eq!(runs[0]["migrated_keys"], 40);
    assert_eq!(runs[0]["dirty_pending"], 0);
    assert_eq!(json["errors"], 0);
    assert_eq!(json["restarts"], serde_json::json!({}));
    assert_eq!(json["jobs"]["queued"], 0);

    let out = replay(&path, &["--until", &first.to_string()]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert_eq!(
        field(&stdout, "replayed"),
        format!(
            "through seq {first} (--until {first}: the state a crash right after it leaves; \
             the journal goes on to {})",
            json["last_seq"]
        )
    );

    // The stored projections are those of the last event: checking an
    // earlier state against them is refused, saying why.
    let out = replay(&path, &["--check", "--until", &first.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--check compares the rebuilt projections with the stored ones"),
        "{}",
        text(&out.stderr)
    );
    let last = json["last_seq"].as_i64().unwrap().to_string();
    assert!(
        replay(&path, &["--check", "--until", &last])
            .status
            .success()
    );
}

#[test]
fn json_is_one_object_with_stable_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = destination(dir.path());
    let json = replay_json(&path, &["--check"]);
    let last = json["last_seq"].as_i64().unwrap();
    assert_eq!(json["db"], path.to_str().unwrap());
    assert_eq!(json["first_seq"], 1);
    assert_eq!(json["compacted_before"], Value::Null);
    assert_eq!(json["earliest_seq"], 0);
    assert_eq!(json["snapshots"], serde_json::json!([]));
    assert_eq!(json["until"], Value::Null);
    assert_eq!(json["replayed_through"], last);
    assert_eq!(json["snapshot_seq"], Value::Null);
    assert_eq!(json["events_applied"], last);
    assert_eq!(
        json["jobs"],
        serde_json::json!({"queued": 1, "leased": 1, "done": 0, "failed": 0, "dead": 0})
    );
    assert_eq!(
        json["restarts"],
        serde_json::json!({"bulk-scanner": {"restarts": 2, "gave_up": false,
                                            "last_reason": "source went away"}})
    );
    assert_eq!(
        (json["errors"].clone(), json["warnings"].clone()),
        (1.into(), 1.into())
    );
    let run = &json["runs"][0];
    assert_eq!(run["run_id"], "run-1");
    assert_eq!(run["status"], "running");
    assert_eq!(run["scanned_keys"], 42);
    assert_eq!(run["skipped_keys"], 2);
    assert_eq!(run["migrated_bytes"], 400);
    assert_eq!(run["batches"], 1);
    assert_eq!(run["dirty_pending"], 2);
    assert_eq!(
        run["dirty_states"],
        serde_json::json!({"applied": 1, "deleted": 1, "dirty": 1})
    );
    assert_eq!(run["needs_sweep"], true);
    assert_eq!(run["tracker_connected"], false);
    assert_eq!(
        (run["errors"].clone(), run["warnings"].clone()),
        (1.into(), 1.into())
    );
    let check = &json["check"];
    assert_eq!(check["ok"], true);
    assert_eq!(check["tables"], 4);
    assert_eq!(check["difference_count"], 0);
    assert_eq!(check["differences"], serde_json::json!([]));
}

#[test]
fn a_compacted_journal_replays_from_its_snapshot_and_names_the_earliest_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (path, first) = destination(dir.path());
    let mut conn = open_rw(&path, Durability::Normal).unwrap();
    compaction::prepare(&mut conn).unwrap();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let taken = compaction::take_snapshot(&tx).unwrap().unwrap();
    tx.commit().unwrap();
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    append(&store, bulk("run-3", 9));
    store.shutdown();
    let compacted = compaction::compact(&conn, Seq::MAX).unwrap();
    assert_eq!(compacted.first, Some(taken.seq));
    drop(conn);

    let json = replay_json(&path, &["--check"]);
    assert_eq!(json["first_seq"], taken.seq);
    assert_eq!(json["compacted_before"], taken.seq);
    assert_eq!(json["earliest_seq"], taken.seq);
    assert_eq!(json["snapshots"], serde_json::json!([taken.seq]));
    assert_eq!(json["snapshot_seq"], taken.seq);
    assert_eq!(json["check"]["ok"], true);
    assert_eq!(json["runs"].as_array().unwrap().len(), 3);

    let out = replay(&path, &["--until", &first.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot replay until seq {first}: the events before seq {0} were compacted away; \
             the earliest available sequence is {0}",
            taken.seq
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.db");
    let out = replay(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("no such file {}", path.display())),
        "{}",
        text(&out.stderr)
    );
    assert!(!path.exists());
}

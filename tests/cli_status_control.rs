//! `keyferry status` and `keyferry control` run as a binary on a
//! destination file whose run was given some state by appending journal
//! events directly (the migration steps themselves are tested elsewhere):
//! the text and JSON reports, unknown runs and files, and every control
//! action as status then shows it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keyferry_engine::{Store, StoreConfig};
use keyferry_journal::{Counters, Event, Severity};
use serde_json::Value;

const RUN: &str = "run-1";

fn keyferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyferry"))
        .args(args)
        .output()
        .expect("run keyferry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `keyferry status --run-id RUN --to PATH --json`, parsed.
fn status_json(path: &Path) -> Value {
    let out = keyferry(&[
        "status",
        "--run-id",
        RUN,
        "--to",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `keyferry control --run-id RUN --to PATH ARGS…`.
fn control(path: &Path, args: &[&str]) -> Output {
    let to = path.to_str().unwrap();
    keyferry(&[&["control", "--run-id", RUN, "--to", to][..], args].concat())
}

fn append(store: &Store, events: Vec<Event>) {
    store
        .write(move |tx| tx.append_events(&events))
        .wait()
        .unwrap();
}

/// A destination file holding run [`RUN`] mid-way: started, checkpointed
/// in db 2, two keys pending (one dirty, one deleted) and one applied, a
/// sweep required, the tracker connected, throttles set, and an error on
/// a binary key.
fn destination_with_a_run(dir: &Path) -> PathBuf {
    let path = dir.join("dest.db");
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let run_id = || RUN.to_string();
    let dirtied = |key: &[u8]| Event::KeyDirtied {
        run_id: run_id(),
        db: 0,
        key: key.to_vec(),
        event: "set".into(),
    };
    append(
        &store,
        vec![Event::RunStarted {
            run_id: run_id(),
            source: "redis://127.0.0.1:6379/0".into(),
            destination: path.display().to_string(),
        }],
    );
    // Some time between the run's start and its checkpoint, for the rate.
    std::thread::sleep(std::time::Duration::from_millis(20));
    append(
        &store,
        vec![
            Event::Checkpoint {
                run_id: run_id(),
                source_run_id: "abc".into(),
                cursor: 12345,
                counters: Counters {
                    scanned_keys: 100,
                    migrated_keys: 90,
                    skipped_keys: 7,
                    error_keys: 3,
                    migrated_bytes: 4096,
                },
                db: 2,
                done: false,
            },
            Event::BatchCommitted {
                run_id: run_id(),
                db: 2,
                keys: 90,
                bytes: 4096,
            },
            dirtied(b"a"),
            dirtied(b"b"),
            Event::KeyDeleted {
                run_id: run_id(),
                db: 0,
                key: b"c".to_vec(),
                event: "del".into(),
            },
            Event::KeyMarkedApplied {
                run_id: run_id(),
                db: 0,
                key: b"b".to_vec(),
                through_seq: i64::MAX,
            },
            Event::SweepRequired {
                run_id: run_id(),
                reason: "tracker reconnected".into(),
            },
            Event::TrackerState {
                run_id: run_id(),
                connected: true,
                source_run_id: "abc".into(),
            },
            Event::ThrottlesChanged {
                run_id: run_id(),
                max_rps: Some(500),
                max_concurrency: None,
                batch_keys: None,
                batch_bytes: Some(1 << 20),
                scan_count: None,
            },
            Event::ErrorRecorded {
                run_id: Some(run_id()),
                component: "bulk".into(),
                severity: Severity::Error,
                message: "cannot import".into(),
                db: Some(2),
                key: Some(b"bin\r\n\xff".to_vec()),
            },
        ],
    );
    path
}

#[test]
fn status_reports_a_runs_state_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = destination_with_a_run(dir.path());
    let json = status_json(&path);
    assert_eq!(json["run_id"], RUN);
    assert_eq!(json["status"], "running");
    assert_eq!(json["source_uri"], "redis://127.0.0.1:6379/0");
    assert_eq!(json["scanned_keys"], 100);
    assert_eq!(json["migrated_keys"], 90);
    assert_eq!(json["skipped_keys"], 7);
    assert_eq!(json["error_keys"], 3);
    assert_eq!(json["migrated_bytes"], 4096);
    assert_eq!(json["batches"], 1);
    assert_eq!(json["scan_db"], 2);
    assert_eq!(json["scan_cursor"], "12345");
    assert_eq!(json["scan_done"], false);
    // 90 keys over the ≥ 20 ms from the start to the checkpoint.
    let rate = json["keys_per_second"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 90.0 / 0.02, "{rate}");
    assert!(json["bytes_per_second"].as_f64().unwrap() > rate);
    assert_eq!(json["dirty_pending"], 2);
    assert_eq!(
        json["dirty_states"],
        serde_json::json!({"dirty": 1, "deleted": 1, "applied": 1, "removed": 0, "skipped": 0})
    );
    assert_eq!(json["dirty_keys_seen"], 3);
    assert_eq!(json["needs_sweep"], true);
    assert_eq!(json["sweep_reason"], "tracker reconnected");
    assert_eq!(json["tracker_connected"], true);
    assert_eq!(
        json["throttles"],
        serde_json::json!({"max_rps": 500, "max_concurrency": null, "batch_keys": null,
                           "batch_bytes": 1048576, "scan_count": null})
    );
    assert_eq!(json["last_error"], "cannot import");
    assert!(json["last_checkpoint_seq"].is_i64());
    assert!(
        json["last_checkpoint_at_ms"].as_i64().unwrap() >= json["started_at_ms"].as_i64().unwrap()
    );
    let errors = json["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0]["key"], "bin\\r\\n\\xff",
        "escaped as Redis shows keys"
    );
    assert_eq!(errors[0]["db"], 2);
    assert_eq!(errors[0]["severity"], "error");
    assert_eq!(errors[0]["component"], "bulk");
}

#[test]
fn status_text_is_aligned_name_value_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = destination_with_a_run(dir.path());
    let out = keyferry(&["status", "--run-id", RUN, "--to", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} line in\n{stdout}"))
    };
    assert!(line("status").ends_with(" running"), "{stdout}");
    assert!(line("cursor").ends_with(" db 2 cursor 12345"), "{stdout}");
    assert!(line("dirty backlog").contains("2 pending"), "{stdout}");
    assert!(
        line("needs sweep").ends_with("yes (tracker reconnected)"),
        "{stdout}"
    );
    assert!(line("tracker").ends_with(" connected"), "{stdout}");
    assert!(
        line("rate").contains("keys/s") && line("rate").contains("MB/s"),
        "{stdout}"
    );
    assert!(line("last checkpoint").contains(" UTC (seq "), "{stdout}");
    assert!(line("throttles").contains("max_rps 500"), "{stdout}");
    assert!(
        stdout.contains("db 2 \"bin\\r\\n\\xff\": cannot import"),
        "{stdout}"
    );
    // Every value starts in the same column.
    let columns: Vec<usize> = stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| {
            let colon = l.find(':').unwrap();
            colon + 1 + l[colon + 1..].len() - l[colon + 1..].trim_start().len()
        })
        .collect();
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{stdout}");
}

#[test]
fn unknown_runs_and_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = destination_with_a_run(dir.path());
    let to = path.to_str().unwrap();
    let out = keyferry(&["status", "--run-id", "nope", "--to", to]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("no run nope in {to}")),
        "{}",
        text(&out.stderr)
    );
    let out = keyferry(&["control", "--run-id", "nope", "--to", to, "pause"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no run nope"),
        "{}",
        text(&out.stderr)
    );
    let missing = dir.path().join("missing.db");
    for args in [
        &["status", "--run-id", RUN, "--to", missing.to_str().unwrap()][..],
        &[
            "control",
            "--run-id",
            RUN,
            "--to",
            missing.to_str().unwrap(),
            "abort",
        ],
    ] {
        let out = keyferry(args);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("no such destination file"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!missing.exists(), "status and control never create a file");
}

#[test]
fn control_actions_show_in_status_and_an_aborted_run_stays_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let path = destination_with_a_run(dir.path());
    let ok = |args: &[&str], says: &str| {
        let out = control(&path, args);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(stdout.contains(says), "{args:?}: {stdout}");
    };

    ok(&["pause"], "paused run run-1 (was running)");
    let json = status_json(&path);
    assert_eq!(json["status"], "paused");
    assert_eq!(json["status_reason"], "keyferry control");
    ok(&["pause"], "run run-1 is already paused");

    ok(&["resume"], "resumed run run-1 (was paused)");
    assert_eq!(status_json(&path)["status"], "running");

    ok(
        &[
            "set",
            "--max-rps",
            "7",
            "--scan-count",
            "9",
            "--batch-keys",
            "11",
        ],
        "set max_rps 7, batch_keys 11, scan_count 9 on run run-1",
    );
    ok(&["set", "--max-concurrency", "3"], "set max_concurrency 3");
    assert_eq!(
        status_json(&path)["throttles"],
        serde_json::json!({"max_rps": 7, "max_concurrency": 3, "batch_keys": 11,
                           "batch_bytes": 1048576, "scan_count": 9})
    );

    ok(&["abort"], "aborted run run-1 (was running)");
    assert_eq!(status_json(&path)["status"], "aborted");
    for refused in [&["resume"][..], &["pause"], &["set", "--max-rps", "1"]] {
        let out = control(&path, refused);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{refused:?}: {stderr}");
        assert!(
            stderr.contains("run run-1 is aborted"),
            "{refused:?}: {stderr}"
        );
    }
    assert!(text(&control(&path, &["resume"]).stderr).contains("an aborted run stays aborted"));
    assert_eq!(status_json(&path)["status"], "aborted");
    assert_eq!(status_json(&path)["throttles"]["max_rps"], 7);
}

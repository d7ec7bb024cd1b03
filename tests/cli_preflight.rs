//! `keyferry preflight` run as a binary against a real redis-server: key
//! counts per database, the sampled types, unsupported streams, whether
//! the notification flags cover the tracker, an unreachable source and an
//! unwritable destination, in JSON and in text.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use keyferry_testkit::{RedisServer, free_port};
use serde_json::Value;

fn keyferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyferry"))
        .arg("preflight")
        .args(args)
        .env_remove("KEYFERRY_SOURCE_PASSWORD")
        .output()
        .expect("run keyferry preflight")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs preflight with `--json` and parses the one object it prints.
fn preflight_json(from: &str, to: &Path) -> (Output, Value) {
    let out = keyferry(&["--from", from, "--to", to.to_str().unwrap(), "--json"]);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (out, json)
}

/// A redis-server holding all five types in db 0, two strings (one with a
/// TTL, one with a binary key) and a stream in db 3, with
/// `notify-keyspace-events` set to `flags`.
fn populated_source(flags: &str) -> RedisServer {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    for argv in [
        &["SET", "s", "value"][..],
        &["HSET", "h", "f", "v"],
        &["RPUSH", "l", "a", "b"],
        &["SADD", "set", "m"],
        &["ZADD", "z", "1", "m"],
        &["SELECT", "3"],
        &["SET", "ttl", "v", "EX", "1000"],
        &["XADD", "events", "*", "f", "v"],
        &["CONFIG", "SET", "notify-keyspace-events", flags],
    ] {
        redis::cmd(argv[0]).arg(&argv[1..]).exec(&mut conn).unwrap();
    }
    redis::cmd("SET")
        .arg(&b"bin\r\n\0\xff"[..])
        .arg("v")
        .exec(&mut conn)
        .unwrap();
    server
}

fn warnings(json: &Value) -> Vec<String> {
    json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn json_reports_databases_types_streams_and_missing_notifications() {
    let server = populated_source("");
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("k.db");
    let (out, json) = preflight_json(&server.url(), &to);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json["reachable"], true);
    assert_eq!(json["cluster_enabled"], false);
    assert_eq!(json["config_allowed"], true);
    assert_eq!(
        json["databases"],
        serde_json::json!([
            {"db": 0, "keys": 5, "expires": 0},
            {"db": 3, "keys": 3, "expires": 1},
        ])
    );
    assert_eq!(json["total_keys"], 8);
    let sample = &json["sample"];
    assert_eq!(sample["keys_sampled"], 8);
    for (kind, count) in [
        ("string", 3),
        ("hash", 1),
        ("list", 1),
        ("set", 1),
        ("zset", 1),
        ("stream", 1),
        ("other", 0),
    ] {
        assert_eq!(sample["by_type"][kind]["count"], count, "{kind}: {sample}");
    }
    assert!(sample["by_type"]["hash"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(sample["unsupported_keys_estimated"], 1);
    assert_eq!(json["notify_keyspace_events"], "");
    assert_eq!(json["notifications_cover_tracker"], false);
    assert_eq!(json["notifications_missing"], "Eg$lshzxe");
    let warnings = warnings(&json);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("tracker will refuse to start unless --enable-notifications")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("1 keys of unsupported types (stream)")),
        "{warnings:?}"
    );
    assert!(json["estimated_destination_bytes"].as_u64().unwrap() > 0);
    assert!(json["recommended"]["scan_count"].as_u64().unwrap() > 0);
    assert_eq!(json["destination"]["writable"], true);
    assert_eq!(json["destination"]["exists"], false);
    assert_eq!(json["problems"], serde_json::json!([]));
    assert!(!to.exists(), "preflight must not create the destination");
}

#[test]
fn kea_covers_the_tracker() {
    let server = populated_source("KEA");
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = preflight_json(&server.url(), &dir.path().join("k.db"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json["notifications_cover_tracker"], true);
    assert_eq!(json["notifications_missing"], "");
    let warnings = warnings(&json);
    assert!(
        !warnings.iter().any(|w| w.contains("tracker")),
        "{warnings:?}"
    );
}

#[test]
fn text_report_states_the_key_facts() {
    let server = populated_source("");
    let dir = tempfile::tempdir().unwrap();
    let out = keyferry(&[
        "--from",
        &server.url(),
        "--to",
        dir.path().join("k.db").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for fact in [
        "reachable",
        "redis version",
        "8 in all: db0 5 (0 with TTL), db3 3 (1 with TTL)",
        "stream (skipped)",
        "the tracker lacks \"Eg$lshzxe\"",
        "tracker will refuse to start unless --enable-notifications",
        "--scan-count",
        "new file, writable",
        "verdict: ready, with the warnings above",
    ] {
        assert!(stdout.contains(fact), "{fact:?} missing from:\n{stdout}");
    }
}

#[test]
fn an_unreachable_source_fails_fast_without_the_password() {
    let port = free_port();
    let from = format!("redis://admin:s3cret-pw@127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (out, json) = preflight_json(&from, &dir.path().join("k.db"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["reachable"], false);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    for output in [&stdout, &stderr] {
        assert!(!output.contains("s3cret"), "password leaked: {output}");
        assert!(!output.contains("panicked"), "{output}");
    }

    let out = keyferry(&[
        "--from",
        &from,
        "--to",
        dir.path().join("k.db").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("verdict: blocked"), "{stdout}");
    assert!(!stdout.contains("s3cret") && !text(&out.stderr).contains("s3cret"));
}

#[test]
fn an_unwritable_destination_blocks() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = preflight_json(&server.url(), &dir.path().join("missing/k.db"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["reachable"], true);
    assert_eq!(json["destination"]["writable"], false);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is not writable"), "{stderr}");
}

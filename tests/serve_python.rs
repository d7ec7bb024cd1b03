//! A real client library end to end: `tests/python/e2e.py` drives
//! `keyferry serve` with redis-py (plain commands, pipelines, MULTI/EXEC
//! with WATCH, pub/sub, RESP2 and RESP3). The same script first runs
//! against a real `redis-server`, which proves the script itself right.

use std::path::Path;
use std::process::Command;

use keyferry_testkit::{KeyferryServe, RedisServer};

/// Runs the script against `port`; panics with its output on failure.
fn run_script(port: u16, server: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/e2e.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .output()
        .expect("run python3 (install it, and redis-py: `pip install redis`)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'redis'"),
        "redis-py is missing: `pip install redis`"
    );
    assert!(
        out.status.success(),
        "redis-py against {server} failed:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "RESP2 ok\nRESP3 ok\n");
}

#[test]
fn redis_py_works_end_to_end() {
    let redis = RedisServer::start();
    run_script(redis.port(), "redis-server");
    let keyferry = KeyferryServe::start(Path::new(env!("CARGO_BIN_EXE_keyferry")), &[]);
    run_script(keyferry.port(), "keyferry serve");
}

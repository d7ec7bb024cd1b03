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

/// The job-queue script (`tests/python/queue_workers.py`) with `jobs`
/// jobs against `port`.
fn run_queue(port: u16, jobs: usize, server: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/queue_workers.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(jobs.to_string())
        .output()
        .expect("run python3");
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "the job queue against {server} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Worker processes on a queue with BRPOP and BLMOVE (reliable queue), a
/// worker killed mid-job and its job recovered: every job done exactly
/// once. `KEYFERRY_QUEUE_JOBS` jobs: 2,000 by default to keep the suite
/// quick, the full size is `KEYFERRY_QUEUE_JOBS=10000` (about 5 s). The
/// script is first proven against `redis-server` with a tenth of them.
#[test]
fn job_queue_workers_with_brpop_and_blmove() {
    let jobs: usize = std::env::var("KEYFERRY_QUEUE_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let redis = RedisServer::start();
    run_queue(redis.port(), (jobs / 10).max(100), "redis-server");
    let keyferry = KeyferryServe::start(Path::new(env!("CARGO_BIN_EXE_keyferry")), &[]);
    run_queue(keyferry.port(), jobs, "keyferry serve");
}

#[test]
fn redis_py_works_end_to_end() {
    let redis = RedisServer::start();
    run_script(redis.port(), "redis-server");
    let keyferry = KeyferryServe::start(Path::new(env!("CARGO_BIN_EXE_keyferry")), &[]);
    run_script(keyferry.port(), "keyferry serve");
}

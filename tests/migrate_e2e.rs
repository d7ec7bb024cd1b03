//! End-to-end migrations against real redis-servers, judged by a full
//! comparison the tests make themselves (every key, type, value, TTL
//! within 1 s; `testkit::dataset::keyspace_diff`), never by `keyferry
//! verify`. The destination is read through `keyferry serve`, so a
//! migrated file is proven to serve as-is.
//!
//! Sizes are small for CI; `KEYFERRY_MIGRATE_KEYS` and
//! `KEYFERRY_MIGRATE_BIG` raise them (the acceptance run uses 1M members).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use keyferry_testkit::dataset::{Mutator, Scale, keyspace_diff, populate};
use keyferry_testkit::resp::cmd;
use keyferry_testkit::{KeyferryServe, KillOnDrop, RawClient, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_keyferry");

fn scale() -> Scale {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Scale {
        keys_per_db: env("KEYFERRY_MIGRATE_KEYS", 3000),
        big: env("KEYFERRY_MIGRATE_BIG", 20_000),
    }
}

/// A source with keyspace notifications on, as the tracker needs.
fn source() -> RedisServer {
    RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"])
}

fn keyferry(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run keyferry")
}

fn spawn(args: &[&str]) -> KillOnDrop {
    KillOnDrop::spawn(
        Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start keyferry")
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Serves the destination and compares it with the source; then checks
/// that the journal rebuilds exactly the projections stored beside it.
fn assert_identical(source: &RedisServer, destination: &Path) {
    let replay = keyferry(&["replay", "--db", destination.to_str().unwrap(), "--check"]);
    assert_ok(&replay, "replay --check");
    keyferry_testkit::dataset::assert_served_identical(Path::new(BIN), source.port(), destination);
}

/// One value from the destination file, read with SQL.
fn try_query<T: rusqlite::types::FromSql>(destination: &Path, sql: &str) -> rusqlite::Result<T> {
    let conn = rusqlite::Connection::open(destination)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.query_row(sql, [], |r| r.get(0))
}

fn query<T: rusqlite::types::FromSql>(destination: &Path, sql: &str) -> T {
    try_query(destination, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Polls `condition` for up to 20 s.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`query`] for polling a file another process is creating: `None` while
/// the file or its tables do not exist yet (the process creates the file,
/// then its schema in a transaction of its own).
fn poll_query(destination: &Path, sql: &str) -> Option<i64> {
    if !destination.exists() {
        return None;
    }
    match try_query(destination, sql) {
        Ok(value) => Some(value),
        Err(e) if e.to_string().starts_with("no such table") => None,
        Err(e) => panic!("{sql}: {e}"),
    }
}

fn tracker_connected(destination: &Path, run: &str) -> bool {
    poll_query(
        destination,
        &format!(
            "SELECT COUNT(*) FROM migration_runs WHERE run_id = '{run}' AND tracker_connected = 1"
        ),
    ) == Some(1)
}

fn destination(dir: &tempfile::TempDir) -> (PathBuf, String) {
    let path = dir.path().join("dest.sqlite");
    let shown = path.to_str().expect("utf-8 temp path").to_string();
    (path, shown)
}

#[test]
fn migrate_with_auto_cutover_under_concurrent_writes_loses_nothing() {
    let source = source();
    let scale = scale();
    populate(source.port(), 1, scale);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let mutator = Mutator::start(source.port(), 2, scale.keys_per_db);
    // The switch command moves "the application": it ends the mutator's
    // connection while writes are paused, as a proxy switch would.
    let switch = format!(
        "redis-cli -p {} CLIENT KILL ID {}",
        source.port(),
        mutator.client_id()
    );
    let out = keyferry(&[
        "migrate",
        "--from",
        &source.url(),
        "--to",
        &dest_arg,
        "--run-id",
        "e2e",
        "--cutover",
        "auto",
        "--switch-cmd",
        &switch,
    ]);
    let ops = mutator.stop();
    assert_ok(&out, "migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let freeze_ms: u64 = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("freeze: ")?
                .strip_suffix(" ms")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no freeze line in {stdout}"));
    assert!(stdout.contains("switched: true"), "{stdout}");
    assert!(ops > 0, "the mutator never wrote");
    // Writes really overlapped the bulk copy: the tracker recorded some
    // between its first and last checkpoint.
    let during_bulk: i64 = query(
        &dest,
        "SELECT COUNT(*) FROM journal WHERE kind IN ('key_dirtied', 'key_deleted')
           AND seq > (SELECT MIN(seq) FROM journal WHERE kind = 'checkpoint')
           AND seq < (SELECT MAX(seq) FROM journal WHERE kind = 'checkpoint')",
    );
    assert!(during_bulk > 0, "no write overlapped the bulk copy");
    let status: String = query(
        &dest,
        "SELECT status FROM migration_runs WHERE run_id = 'e2e'",
    );
    assert_eq!(status, "completed");
    assert_identical(&source, &dest);
    eprintln!("freeze {freeze_ms} ms, {ops} concurrent writes, {during_bulk} during the bulk copy");
}

#[test]
fn a_killed_tracker_connection_is_recorded_swept_and_repaired() {
    let source = source();
    let scale = Scale {
        keys_per_db: 1500,
        big: 3000,
    };
    populate(source.port(), 3, scale);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let from = source.url();
    let run = [
        "--run-id",
        "kill",
        "--from",
        from.as_str(),
        "--to",
        dest_arg.as_str(),
    ];
    let mut tracker = spawn(&[&["tracker", "start"][..], &run[..]].concat());
    wait_until("the tracker to connect", || {
        tracker_connected(&dest, "kill")
    });
    let mutator = Mutator::start(source.port(), 4, scale.keys_per_db);
    assert_ok(&keyferry(&[&["bulk"][..], &run[..]].concat()), "bulk");
    // Writes keep landing while the subscription is down (killed three
    // times over ~300 ms): their events are lost for good, and the keys
    // they changed were already copied, so only the sweep can repair them.
    let mut admin = RawClient::connect(source.port()).unwrap();
    for _ in 0..3 {
        wait_until("the tracker to connect", || {
            tracker_connected(&dest, "kill")
        });
        let killed = cmd(&mut admin, &["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert_eq!(killed, b":1\r\n", "one subscriber killed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ok(
        &keyferry(&[&["apply-dirty"][..], &run[..]].concat()),
        "pre-delta",
    );
    wait_until("the tracker to reconnect", || {
        tracker_connected(&dest, "kill")
    });
    mutator.stop();
    // Freeze: give the tracker a moment for the last notifications.
    std::thread::sleep(Duration::from_millis(500));
    assert_ok(
        &keyferry(&[&["apply-dirty"][..], &run[..]].concat()),
        "final delta",
    );
    let needs_sweep: i64 = query(
        &dest,
        "SELECT needs_sweep FROM migration_runs WHERE run_id = 'kill'",
    );
    assert_eq!(needs_sweep, 1, "a disconnect must require a sweep");
    let warnings: i64 = query(
        &dest,
        "SELECT COUNT(*) FROM migration_errors WHERE run_id = 'kill' AND severity = 'warning'
           AND message LIKE '%disconnected%'",
    );
    assert!(
        warnings >= 3,
        "each disconnect must be recorded as a warning"
    );
    {
        // Without the sweep the destination is stale: this is what the
        // sweep is for (and proves the comparison can fail).
        let served = KeyferryServe::serve_file(Path::new(BIN), &dest);
        let stale = keyspace_diff(source.port(), served.port(), 1_000);
        assert!(!stale.is_empty(), "the lost events left no stale key");
    }
    let out = keyferry(&[&["apply-dirty", "--sweep"][..], &run[..]].concat());
    assert_ok(&out, "apply-dirty --sweep");
    let needs_sweep: i64 = query(
        &dest,
        "SELECT needs_sweep FROM migration_runs WHERE run_id = 'kill'",
    );
    assert_eq!(needs_sweep, 0, "the sweep must clear the need");
    assert_ok(
        &keyferry(&["tracker", "stop", "--run-id", "kill", "--to", &dest_arg]),
        "tracker stop",
    );
    let status = tracker.wait().expect("tracker exit");
    assert!(status.success(), "tracker exited with {status}");
    assert_identical(&source, &dest);
}

#[test]
fn a_bulk_copy_killed_midway_resumes_to_an_identical_keyspace() {
    let source = source();
    let scale = Scale {
        keys_per_db: 3000,
        big: 5000,
    };
    populate(source.port(), 5, scale);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let from = source.url();
    let run = [
        "--run-id",
        "resume",
        "--from",
        from.as_str(),
        "--to",
        dest_arg.as_str(),
    ];
    // Throttled so that it is surely still running when killed.
    let mut bulk = spawn(
        &[
            &[
                "bulk",
                "--scan-count",
                "100",
                "--max-concurrency",
                "1",
                "--max-rps",
                "4000",
            ][..],
            &run[..],
        ]
        .concat(),
    );
    wait_until("a checkpoint", || {
        poll_query(
            &dest,
            "SELECT COUNT(*) FROM migration_runs WHERE migrated_keys > 0 AND scan_done = 0",
        ) == Some(1)
    });
    bulk.kill().expect("kill -9 the bulk copy");
    bulk.wait().expect("reap");
    let done: i64 = query(&dest, "SELECT scan_done FROM migration_runs");
    assert_eq!(done, 0, "killed before it finished");
    // Starting over silently would surprise: it must ask for --resume.
    let refused = keyferry(&[&["bulk"][..], &run[..]].concat());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--resume"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_ok(
        &keyferry(&[&["bulk", "--resume"][..], &run[..]].concat()),
        "bulk --resume",
    );
    assert_identical(&source, &dest);
}

#[test]
fn the_tracker_refuses_without_notifications_and_restores_what_it_enabled() {
    let source = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let from = source.url();
    let run = [
        "--run-id",
        "notify",
        "--from",
        from.as_str(),
        "--to",
        dest_arg.as_str(),
    ];
    let refused = keyferry(&[&["tracker", "start"][..], &run[..]].concat());
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("notify-keyspace-events") && stderr.contains("--enable-notifications"),
        "{stderr}"
    );
    let mut tracker = spawn(
        &[
            &["tracker", "start", "--enable-notifications"][..],
            &run[..],
        ]
        .concat(),
    );
    wait_until("the tracker to connect", || {
        tracker_connected(&dest, "notify")
    });
    let mut admin = RawClient::connect(source.port()).unwrap();
    let enabled = cmd(&mut admin, &["CONFIG", "GET", "notify-keyspace-events"]);
    assert!(
        String::from_utf8_lossy(&enabled).contains('E'),
        "{}",
        String::from_utf8_lossy(&enabled)
    );
    assert_ok(
        &keyferry(&["tracker", "stop", "--run-id", "notify", "--to", &dest_arg]),
        "tracker stop",
    );
    assert!(tracker.wait().unwrap().success());
    let restored = cmd(&mut admin, &["CONFIG", "GET", "notify-keyspace-events"]);
    assert_eq!(
        restored,
        b"*2\r\n$22\r\nnotify-keyspace-events\r\n$0\r\n\r\n"
    );
}

#[test]
fn a_tracker_whose_source_went_away_still_stops_when_asked() {
    let source = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let from = source.url();
    let mut tracker = spawn(&[
        "tracker",
        "start",
        "--enable-notifications",
        "--run-id",
        "gone",
        "--from",
        from.as_str(),
        "--to",
        dest_arg.as_str(),
    ]);
    wait_until("the tracker to connect", || {
        tracker_connected(&dest, "gone")
    });
    drop(source);
    wait_until("the tracker to notice", || {
        !tracker_connected(&dest, "gone")
    });
    assert_ok(
        &keyferry(&["tracker", "stop", "--run-id", "gone", "--to", &dest_arg]),
        "tracker stop",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = tracker.try_wait().expect("poll the tracker") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = tracker.kill();
            panic!("the tracker did not stop within 20 s of `tracker stop`");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let warned: i64 = query(
        &dest,
        "SELECT COUNT(*) FROM migration_errors
         WHERE run_id = 'gone' AND message LIKE 'stopped without restoring%'",
    );
    assert_eq!(warned, 1);
}

#[test]
fn migrate_with_manual_cutover_waits_for_the_operator() {
    use std::io::{BufRead, BufReader};
    let source = source();
    let scale = Scale {
        keys_per_db: 1000,
        big: 2000,
    };
    populate(source.port(), 7, scale);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let mutator = Mutator::start(source.port(), 8, scale.keys_per_db);
    let mut migrate = spawn(&[
        "migrate",
        "--from",
        &source.url(),
        "--to",
        &dest_arg,
        "--run-id",
        "manual",
        "--cutover",
        "manual",
    ]);
    let stderr = migrate.stderr.take().expect("piped stderr");
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ready for cutover") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(60))
        .expect("migrate announces that it is ready for the cutover");
    // It waits: still running a while after announcing.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        migrate.try_wait().unwrap().is_none(),
        "migrate did not wait"
    );
    // The operator freezes writes, then gives the go-ahead.
    mutator.stop();
    let status = Command::new("kill")
        .args(["-USR1", &migrate.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = migrate.wait_with_output().expect("migrate exits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let status: String = query(
        &dest,
        "SELECT status FROM migration_runs WHERE run_id = 'manual'",
    );
    assert_eq!(status, "completed");
    assert_identical(&source, &dest);
}

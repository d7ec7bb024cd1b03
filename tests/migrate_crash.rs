//! Crash test: `kill -9` a `keyferry migrate` at random points while the
//! source takes writes, restart it each time on the same file and run id,
//! let the last one finish, and prove by a full comparison that nothing
//! was lost or duplicated.
//!
//! Each kill's phase is read from the journal's last event (tracker,
//! bulk batch, checkpoint, apply-dirty, sweep, cutover) and printed, and
//! the test asserts the kills did not all land in one phase. CI runs 20
//! kills on a small data set; `KEYFERRY_CRASH_KILLS` and
//! `KEYFERRY_MIGRATE_KEYS` raise both (`scripts/crash_migrate.sh`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use keyferry_testkit::dataset::{Mutator, Scale, populate};
use keyferry_testkit::{KillOnDrop, RedisServer, SeededRng};

const BIN: &str = env!("CARGO_BIN_EXE_keyferry");

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The phase a kill landed in: during the scan, the kind of the last bulk
/// event (tracker events interleave with everything, so they only count
/// when nothing else happened); after it, the last applier, sweep or
/// cutover event.
fn phase(destination: &Path) -> String {
    if !destination.exists() {
        return "start-up".into();
    }
    let conn = rusqlite::Connection::open(destination).expect("open the destination");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let last_of = |kinds: &str| -> Option<String> {
        conn.query_row(
            &format!("SELECT kind FROM journal WHERE kind IN ({kinds}) ORDER BY seq DESC LIMIT 1"),
            [],
            |r| r.get(0),
        )
        .ok()
    };
    let scan_done: bool = conn
        .query_row(
            "SELECT scan_done FROM migration_runs WHERE run_id = 'crash'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(false);
    let kind = if scan_done {
        last_of(
            "'key_marked_applied', 'key_marked_deleted', 'key_marked_skipped', 'sweep_required', \
             'sweep_completed', 'tracker_stop_requested', 'run_status_changed', 'checkpoint'",
        )
    } else {
        last_of("'batch_committed', 'checkpoint'")
    };
    match kind.as_deref() {
        None => "tracker",
        // A window's last batch carries its checkpoint, in one transaction.
        Some("batch_committed") => "bulk batch",
        Some("checkpoint") if !scan_done => "bulk batch + checkpoint",
        Some("checkpoint") => "bulk finished",
        Some("key_marked_applied" | "key_marked_deleted" | "key_marked_skipped") => "apply-dirty",
        Some("sweep_required" | "sweep_completed") => "sweep",
        Some(_) => "cutover",
    }
    .to_string()
}

#[test]
fn migrate_killed_at_random_points_still_ends_identical() {
    let kills = env_or("KEYFERRY_CRASH_KILLS", 20);
    let keys = env_or("KEYFERRY_MIGRATE_KEYS", 4000);
    let source = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    populate(
        source.port(),
        11,
        Scale {
            keys_per_db: keys,
            big: 5000,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest.sqlite");
    let dest_arg = dest.to_str().unwrap().to_string();
    let mutator = Mutator::start(source.port(), 12, keys);
    let from = source.url();
    let migrate = |switch: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "migrate",
            "--from",
            &from,
            "--to",
            &dest_arg,
            "--run-id",
            "crash",
            "--cutover",
            "auto",
            "--switch-cmd",
            switch,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };
    // The run exists before the first `migrate` (a tracker started and
    // stopped, as an operator might), throttled so that the copy spans many
    // kills instead of finishing before the first.
    let mut tracker = KillOnDrop::spawn(
        Command::new(BIN)
            .args([
                "tracker", "start", "--run-id", "crash", "--from", &from, "--to", &dest_arg,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let control = |args: &[&str]| {
        Command::new(BIN)
            .args(
                [
                    &["control", "--run-id", "crash", "--to", &dest_arg][..],
                    args,
                ]
                .concat(),
            )
            .output()
            .unwrap()
            .status
            .success()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(dest.exists() && control(&["set", "--max-rps", "4000", "--scan-count", "100"])) {
        assert!(
            std::time::Instant::now() < deadline,
            "the run was never created"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopped = Command::new(BIN)
        .args(["tracker", "stop", "--run-id", "crash", "--to", &dest_arg])
        .status()
        .unwrap();
    assert!(stopped.success() && tracker.wait().unwrap().success());
    let mut rng = SeededRng::new(13);
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    for kill in 0..kills {
        // `false` as the switch command: should a run get that far before
        // its kill, the cutover fails and unpauses, and the next run goes
        // on live.
        let mut child = KillOnDrop::spawn(&mut migrate("false")).expect("start migrate");
        std::thread::sleep(Duration::from_millis(150 + rng.below(900) as u64));
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let phase = phase(&dest);
        eprintln!("kill {kill}: {phase}");
        *phases.entry(phase).or_default() += 1;
    }
    eprintln!("kills by phase: {phases:?}");
    assert!(
        phases.len() >= 2,
        "every kill landed in one phase: {phases:?}"
    );
    // Full speed for the last run, which finishes the migration.
    assert!(control(&[
        "set",
        "--max-rps",
        "10000000",
        "--scan-count",
        "1000"
    ]));
    // The last run finishes; its switch command moves "the application"
    // (ends the mutator's connection) while writes are paused.
    let switch = format!(
        "redis-cli -p {} CLIENT KILL ID {}",
        source.port(),
        mutator.client_id()
    );
    let out = migrate(&switch).output().expect("run migrate");
    mutator.stop();
    assert!(
        out.status.success(),
        "final migrate failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let replay = Command::new(BIN)
        .args(["replay", "--db", &dest_arg, "--check"])
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "replay --check after the crashes:\n{}{}",
        String::from_utf8_lossy(&replay.stdout),
        String::from_utf8_lossy(&replay.stderr)
    );
    eprintln!("comparing after {kills} kills");
    keyferry_testkit::dataset::assert_served_identical(Path::new(BIN), source.port(), &dest);
}

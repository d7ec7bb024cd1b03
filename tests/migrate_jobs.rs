//! Migration steps as leased jobs, end to end, against real redis-servers:
//! one step of a run runs in one process at a time (a second `keyferry
//! bulk` fails naming the holder), a stalled holder is taken over once its
//! lease expires and is then fenced out, and the job dequeuer runs queued
//! steps nobody holds — but leaves queued, and says why, a step whose
//! source wants a password it does not have. Destinations are judged by a
//! full comparison with the source (`keyspace_diff`) through `keyferry
//! serve`, never by keyferry's own verify.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use keyferry_actors::jobs::{self, DequeuerOptions};
use keyferry_actors::migration::steps::{self, StepKind, StepSpec};
use keyferry_actors::source::{Source, SourceUri};
use keyferry_actors::supervisor::{RestartPolicy, Supervisor};
use keyferry_engine::{Store, StoreConfig};
use keyferry_testkit::dataset::{Scale, populate};
use keyferry_testkit::{KillOnDrop, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_keyferry");

/// Short leases, so that a stalled holder's expires within the test.
const LEASE_MS: &str = "1500";

fn scale() -> Scale {
    Scale {
        keys_per_db: 1000,
        big: 2000,
    }
}

/// A populated source with keyspace notifications on.
fn populated_source(seed: u64) -> RedisServer {
    let source = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    populate(source.port(), seed, scale());
    source
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("KEYFERRY_LEASE_MS", LEASE_MS)
        .stdin(Stdio::null());
    cmd
}

fn keyferry(args: &[&str]) -> Output {
    command(args).output().expect("run keyferry")
}

fn spawn(args: &[&str]) -> KillOnDrop {
    KillOnDrop::spawn(command(args).stdout(Stdio::piped()).stderr(Stdio::piped()))
        .expect("start keyferry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Asserts `out` failed with exit 1 naming `holder` as the step's runner.
fn assert_refused_naming(out: &Output, holder: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is running in {holder} (lease until")),
        "{stderr}"
    );
}

/// The worker id keyferry gives process `child`: `hostname:pid`.
fn holder(child: &Child) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    format!("{}:{}", host.trim(), child.id())
}

/// A bulk copy of run `run` into `dest`, with `extra` flags.
fn bulk_args<'a>(run: &'a str, from: &'a str, dest: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [
        &["bulk", "--run-id", run, "--from", from, "--to", dest][..],
        extra,
    ]
    .concat()
}

/// Throttled so that it surely still runs while the test looks at it.
const SLOW: [&str; 6] = [
    "--scan-count",
    "100",
    "--max-concurrency",
    "1",
    "--max-rps",
    "4000",
];

fn try_query<T: rusqlite::types::FromSql>(dest: &Path, sql: &str) -> rusqlite::Result<T> {
    let conn = rusqlite::Connection::open(dest)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.query_row(sql, [], |r| r.get(0))
}

fn query<T: rusqlite::types::FromSql>(dest: &Path, sql: &str) -> T {
    try_query(dest, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Polls `condition` for up to 20 s.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The bulk copy has committed a checkpoint and is not done (false while
/// the file or its tables are still being created).
fn midway(dest: &Path) -> bool {
    dest.exists()
        && try_query::<i64>(
            dest,
            "SELECT COUNT(*) FROM migration_runs WHERE migrated_keys > 0 AND scan_done = 0",
        )
        .is_ok_and(|n| n == 1)
}

fn destination(dir: &tempfile::TempDir) -> (PathBuf, String) {
    let path = dir.path().join("dest.sqlite");
    let shown = path.to_str().expect("utf-8 temp path").to_string();
    (path, shown)
}

/// Serves the destination and compares it with the source.
fn assert_identical(source: &RedisServer, dest: &Path) {
    keyferry_testkit::dataset::assert_served_identical(Path::new(BIN), source.port(), dest);
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Stops `child` (SIGSTOP) at a moment it holds no write lock on `dest`
/// (the others must not wait on a frozen transaction) and its lease has at
/// least 1 s left (so that the test can still see it held).
fn freeze_between_writes(child: &Child, dest: &Path) {
    let conn = rusqlite::Connection::open(dest).expect("open the destination");
    loop {
        signal(child, "-STOP");
        let unlocked = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK").is_ok();
        let deadline: rusqlite::Result<i64> =
            conn.query_row("SELECT lease_deadline_ms FROM jobs", [], |r| r.get(0));
        if unlocked && deadline.is_ok_and(|d| d - now_ms() >= 1000) {
            return;
        }
        signal(child, "-CONT");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_bulk_for_a_running_run_fails_at_once_naming_the_holder() {
    let source = populated_source(11);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let from = source.url();
    let first = spawn(&bulk_args("twice", &from, &dest_arg, &SLOW));
    wait_until("a checkpoint", || midway(&dest));

    let started = Instant::now();
    let second = keyferry(&bulk_args(
        "twice",
        &from,
        &dest_arg,
        &["--max-rps", "99999"],
    ));
    assert_refused_naming(&second, &holder(&first));
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
    let resumed = keyferry(&bulk_args("twice", &from, &dest_arg, &["--resume"]));
    assert_refused_naming(&resumed, &holder(&first));
    // The refused commands changed nothing: the first keeps its throttle.
    assert_eq!(
        query::<i64>(
            &dest,
            "SELECT max_rps FROM migration_runs WHERE run_id = 'twice'"
        ),
        4000
    );

    let out = first.wait_with_output().expect("the first bulk ends");
    assert_ok(&out, "the first bulk");
    assert_eq!(
        query::<String>(&dest, "SELECT group_concat(status) FROM jobs"),
        "done",
        "one job, done by the first"
    );
    assert_identical(&source, &dest);
}

#[test]
fn a_stalled_holder_is_taken_over_when_its_lease_expires_and_is_fenced_out() {
    let source = populated_source(12);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir);
    let from = source.url();
    let stalled = spawn(&bulk_args("stall", &from, &dest_arg, &SLOW));
    wait_until("a checkpoint", || midway(&dest));
    // Alive but silent (a frozen VM, a stop-the-world pause): only its
    // lease running out can tell — unlike a holder that is gone, which is
    // taken over at once (migrate_e2e resumes right after a kill -9).
    freeze_between_writes(&stalled, &dest);

    let refused = keyferry(&bulk_args("stall", &from, &dest_arg, &["--resume"]));
    assert_refused_naming(&refused, &holder(&stalled));

    let deadline_ms: i64 = query(&dest, "SELECT lease_deadline_ms FROM jobs");
    let left = u64::try_from(deadline_ms - now_ms()).unwrap_or(0);
    assert!(
        left <= 1500,
        "the lease is KEYFERRY_LEASE_MS long: {left} ms left"
    );
    std::thread::sleep(Duration::from_millis(left + 50));
    let taken_over = keyferry(&bulk_args(
        "stall",
        &from,
        &dest_arg,
        &["--resume", "--max-rps", "1000000"],
    ));
    assert_ok(&taken_over, "bulk --resume after the lease expired");
    assert_identical(&source, &dest);

    // The stalled holder wakes up: its writes are fenced, it stops. Its
    // supervisor may still journal the restart of the scanner that failed
    // on the lost lease: a record of what happened, not a step write.
    let journal_rows: i64 = query(&dest, "SELECT MAX(seq) FROM journal");
    signal(&stalled, "-CONT");
    let out = stalled.wait_with_output().expect("the stalled bulk ends");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lost its lease"), "{stderr}");
    assert_eq!(
        query::<i64>(
            &dest,
            &format!(
                "SELECT COUNT(*) FROM journal WHERE seq > {journal_rows} AND kind != 'actor_restarted'"
            )
        ),
        0,
        "the stalled holder wrote nothing more"
    );
    assert_eq!(
        query::<String>(&dest, "SELECT status || ' ' || epoch FROM jobs"),
        "done 2"
    );
    assert_identical(&source, &dest);
}

/// A step spec for run `run` reading `url`, which carries no password.
fn bulk_spec(run: &str, url: &str) -> StepSpec {
    let uri: SourceUri = url.parse().expect("source uri");
    StepSpec::new(
        StepKind::Bulk,
        run,
        &Source::new(uri, None).expect("source"),
    )
}

/// Starts a dequeuer on `store` under a supervisor, as `keyferry serve`
/// runs it.
async fn dequeuer(store: &Store, source_password: Option<&str>) -> Supervisor {
    let options = DequeuerOptions {
        tick: Duration::from_millis(100),
        source_password: source_password.map(str::to_string),
        ..DequeuerOptions::default()
    };
    Supervisor::start(
        vec![jobs::child_spec(store.clone(), options)],
        RestartPolicy::default(),
        store.journal().clone(),
    )
    .await
    .expect("supervisor")
}

/// Polls `condition` for up to 20 s without blocking the runtime.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dequeuer_runs_queued_steps_but_leaves_one_it_cannot_log_in_for() {
    assert!(
        std::env::var_os("KEYFERRY_SOURCE_PASSWORD").is_none(),
        "this test needs a process without a source password"
    );
    let open = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    populate(
        open.port(),
        13,
        Scale {
            keys_per_db: 300,
            big: 1000,
        },
    );
    let locked = RedisServer::start_with_args(&["--requirepass", "pw"]);
    let dir = tempfile::tempdir().unwrap();
    let (dest, _) = destination(&dir);
    let store = Store::open(&dest, StoreConfig::default()).expect("open the destination");
    for spec in [
        bulk_spec("open", &open.url()),
        bulk_spec("locked", &locked.url()),
    ] {
        steps::enqueue(&store, &spec).await.expect("enqueue");
    }
    let status = |run: &str| {
        query::<String>(
            &dest,
            &format!("SELECT status || ' ' || attempts FROM jobs WHERE dedupe_key = 'bulk:{run}'"),
        )
    };
    let warnings = || {
        query::<i64>(
            &dest,
            "SELECT COUNT(*) FROM migration_errors WHERE run_id = 'locked' AND severity = 'warning'
               AND message LIKE '%stays queued%NOAUTH%'",
        )
    };

    let running = dequeuer(&store, None).await;
    eventually("the open step to be done", || status("open") == "done 1").await;
    eventually("the warning about the locked step", || warnings() == 1).await;
    // Ticks go on: the job stays queued, no attempt used, said once.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(status("locked"), "queued 0");
    assert_eq!(warnings(), 1);
    running.stop().await;

    // A process with the credential runs it.
    let running = dequeuer(&store, Some("pw")).await;
    eventually("the locked step to be done", || {
        status("locked") == "done 1"
    })
    .await;
    running.stop().await;
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .expect("shut down");
    assert_identical(&open, &dest);
}

//! The embedding API (`keyferry::embed`) against real redis-servers: a
//! migration with an automatic cutover copies keys of every type, its
//! status and progress go from running to completed, and the file is then
//! served on the test's own listener (read back with the `redis` crate,
//! behind `requirepass`); a manual cutover is paused, resumed, throttled
//! and released through its handle, and picks up writes made meanwhile;
//! abort, refused requests and start-up errors come back typed.
//!
//! The examples (`examples/embed_serve.rs`, `examples/migrate_from_code.rs`)
//! drive these same calls; `cargo test` builds them.

use std::future::Future;
use std::time::Duration;

use keyferry::embed::{
    Config, ControlError, Cutover, Db, Keyferry, MigrationError, MigrationHandle, MigrationSpec,
    MigrationStatus, RunStatus, ServeOptions, Throttles,
};
use keyferry_testkit::{RedisServer, free_port};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// Far above what any step here takes: a hang fails instead of stalling.
const PATIENCE: Duration = Duration::from_secs(10);

/// A source with keyspace notifications on, as the tracker needs.
fn source() -> RedisServer {
    RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"])
}

async fn connect(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Awaits `future`, failing the test after [`PATIENCE`].
async fn soon<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PATIENCE:?}"))
}

/// A fresh engine on a file in its own temp dir (kept alive with it).
async fn open() -> (TempDir, Keyferry) {
    let dir = tempfile::tempdir().unwrap();
    let keyferry = Keyferry::open(Config::new(dir.path().join("kf.sqlite")))
        .await
        .unwrap();
    (dir, keyferry)
}

/// Waits until the handle's progress satisfies `ok`.
async fn progress_until(
    handle: &MigrationHandle,
    what: &str,
    ok: impl FnMut(&MigrationStatus) -> bool,
) {
    let mut progress = handle.progress();
    soon(what, progress.wait_for(ok))
        .await
        .unwrap_or_else(|_| panic!("the migration ended before {what}"));
}

/// One key of each type in db 0, a key with a TTL, and one in db 3.
async fn populate(url: &str) {
    let mut conn = connect(url).await;
    redis::pipe()
        .set("s", "string value")
        .hset_multiple("h", &[("f1", "v1"), ("f2", "v2")])
        .rpush("l", &["a", "b", "c"])
        .sadd("st", &["x", "y"])
        .zadd_multiple("z", &[(1.5, "one"), (2.5, "two")])
        .set_ex("ttl", "expiring", 100)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let mut db3 = connect(&format!("{url}/3")).await;
    let () = db3.set("other", "in db 3").await.unwrap();
}

/// Reads back what [`populate`] wrote, through `url`.
async fn assert_populated(url: &str) {
    let mut conn = connect(url).await;
    let s: String = conn.get("s").await.unwrap();
    assert_eq!(s, "string value");
    let mut h: Vec<(String, String)> = conn.hgetall("h").await.unwrap();
    h.sort();
    assert_eq!(h, [("f1".into(), "v1".into()), ("f2".into(), "v2".into())]);
    let l: Vec<String> = conn.lrange("l", 0, -1).await.unwrap();
    assert_eq!(l, ["a", "b", "c"]);
    let mut st: Vec<String> = conn.smembers("st").await.unwrap();
    st.sort();
    assert_eq!(st, ["x", "y"]);
    let z: Vec<(String, f64)> = conn.zrange_withscores("z", 0, -1).await.unwrap();
    assert_eq!(z, [("one".into(), 1.5), ("two".into(), 2.5)]);
    let ttl: i64 = conn.ttl("ttl").await.unwrap();
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    let mut db3 = connect(&format!("{url}/3")).await;
    let other: String = db3.get("other").await.unwrap();
    assert_eq!(other, "in db 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_cutover_migrates_every_type_and_the_file_serves_it() {
    let source = source();
    populate(&source.url()).await;
    let (_dir, keyferry) = open().await;

    let migration = keyferry
        .start_migration(MigrationSpec::new(
            "auto",
            source.url(),
            Cutover::Auto {
                switch_cmd: Some("true".into()),
            },
        ))
        .await
        .unwrap();
    // Recorded before start_migration returned.
    let started = migration.status().unwrap().status;
    assert!(
        matches!(started, RunStatus::Running | RunStatus::Completed),
        "{started:?}"
    );
    assert!(matches!(
        migration.cutover_now(),
        Err(ControlError::AutomaticCutover(_))
    ));

    // Every value progress publishes, until the channel closes.
    let mut progress = migration.progress();
    let watcher = tokio::spawn(async move {
        let mut seen = vec![progress.borrow_and_update().clone()];
        while progress.changed().await.is_ok() {
            seen.push(progress.borrow_and_update().clone());
        }
        seen
    });
    let report = soon("the migration", migration.wait()).await.unwrap();
    assert!(report.switched);
    assert!(report.freeze.is_some());
    assert_eq!(report.sample_mismatches, 0);

    let seen = soon("progress to close", watcher).await.unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.status, RunStatus::Completed, "{seen:#?}");
    assert!(last.scan_done);
    assert_eq!(last.counters.migrated_keys, 7, "{last:#?}");
    assert_eq!(last.pending_keys, 0);
    assert!(!last.tracker_connected, "the tracker stops at the end");
    // Counters never go backwards between published values.
    for pair in seen.windows(2) {
        assert!(pair[0].counters.migrated_keys <= pair[1].counters.migrated_keys);
    }

    // Serve the file on our own listener, behind a password.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = keyferry.serve(
        listener,
        ServeOptions::default().requirepass("pw"),
        async move {
            let _ = stopped.await;
        },
    );
    let clients = async move {
        let mut anonymous = connect(&format!("redis://127.0.0.1:{port}")).await;
        let refused = anonymous.get::<_, String>("s").await.unwrap_err();
        assert!(refused.to_string().contains("NOAUTH"), "{refused}");
        assert_populated(&format!("redis://:pw@127.0.0.1:{port}")).await;
        stop.send(()).unwrap();
    };
    let (served, ()) = soon("serving", async { tokio::join!(serving, clients) }).await;
    served.unwrap();
    // The listener was closed by the graceful shutdown.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    keyferry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_cutover_is_paused_resumed_throttled_and_released() {
    let source = source();
    populate(&source.url()).await;
    let (_dir, keyferry) = open().await;
    let migration = keyferry
        .start_migration(MigrationSpec::new("manual", source.url(), Cutover::Manual))
        .await
        .unwrap();
    progress_until(&migration, "the bulk copy and the tracker", |s| {
        s.scan_done && s.tracker_connected
    })
    .await;

    // Written after the bulk copy: only the tracker can bring these.
    let mut conn = connect(&source.url()).await;
    let () = conn.set("late", "after the scan").await.unwrap();
    let () = conn.del("s").await.unwrap();

    migration.pause().await.unwrap();
    assert_eq!(migration.status().unwrap().status, RunStatus::Paused);
    progress_until(&migration, "progress to show the pause", |s| {
        s.status == RunStatus::Paused
    })
    .await;
    // Pausing a paused run changes nothing and is no error.
    migration.pause().await.unwrap();

    migration.resume().await.unwrap();
    let status = migration.status().unwrap();
    assert_eq!(status.status, RunStatus::Running);
    assert_eq!(status.reason.as_deref(), Some("keyferry embedding API"));

    let throttles = Throttles {
        max_rps: Some(5000),
        batch_keys: Some(100),
        ..Throttles::default()
    };
    migration.set_throttles(throttles).await.unwrap();
    assert_eq!(migration.status().unwrap().throttles, throttles);
    let zero = Throttles {
        scan_count: Some(0),
        ..Throttles::default()
    };
    assert!(matches!(
        migration.set_throttles(zero).await,
        Err(ControlError::Refused {
            status: RunStatus::Running,
            ..
        })
    ));

    migration.cutover_now().unwrap();
    let run = migration.progress();
    let report = soon("the cutover", migration.wait()).await.unwrap();
    assert_eq!(
        report.freeze, None,
        "a manual cutover freezes nothing itself"
    );
    let last = run.borrow().clone();
    assert_eq!(last.status, RunStatus::Completed);
    // Live or in the final delta, the two writes were applied.
    assert!(last.dirty_keys_applied >= 1, "{last:#?}");
    assert!(last.dirty_keys_deleted >= 1, "{last:#?}");

    let store = keyferry.store();
    let db0 = Db::new(0).unwrap();
    let late = store.read(|view| view.string_get(db0, b"late")).unwrap();
    assert_eq!(late.as_deref(), Some(&b"after the scan"[..]));
    let deleted = store.read(|view| view.string_get(db0, b"s")).unwrap();
    assert_eq!(deleted, None);
    keyferry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_run_ends_its_wait_and_refuses_to_resume() {
    let source = source();
    populate(&source.url()).await;
    let (_dir, keyferry) = open().await;
    let migration = keyferry
        .start_migration(MigrationSpec::new("abort", source.url(), Cutover::Manual))
        .await
        .unwrap();
    let progress: watch::Receiver<MigrationStatus> = migration.progress();
    // The same run id cannot run twice at once.
    let again = keyferry
        .start_migration(MigrationSpec::new("abort", source.url(), Cutover::Manual))
        .await;
    assert!(matches!(again, Err(MigrationError::AlreadyRunning(id)) if id == "abort"));

    migration.abort().await.unwrap();
    // Aborting again is no error; resuming is refused.
    migration.abort().await.unwrap();
    assert!(matches!(
        migration.resume().await,
        Err(ControlError::Refused {
            status: RunStatus::Aborted,
            ..
        })
    ));
    // Waiting for a manual cutover that never comes does not hang.
    let ended = soon("the aborted run", migration.wait()).await;
    assert!(
        matches!(&ended, Err(MigrationError::Aborted(id)) if id == "abort"),
        "{ended:?}"
    );
    assert_eq!(progress.borrow().status, RunStatus::Aborted);
    keyferry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_switch_command_live_sync_runs_until_stopped() {
    let source = source();
    populate(&source.url()).await;
    let (_dir, keyferry) = open().await;
    let auto = || Cutover::Auto { switch_cmd: None };
    let stopped = keyferry
        .start_migration(MigrationSpec::new("stopped", source.url(), auto()))
        .await
        .unwrap();
    // Armed early: live sync ends as soon as it begins.
    stopped.stop_live_sync();
    let report = soon("stop_live_sync", stopped.wait()).await.unwrap();
    assert!(report.freeze.is_some());
    assert!(!report.switched);

    // The engine's shutdown ends another one's live sync the same way.
    let syncing = keyferry
        .start_migration(MigrationSpec::new("syncing", source.url(), auto()))
        .await
        .unwrap();
    let waited = tokio::spawn(syncing.wait());
    soon("the shutdown", keyferry.shutdown()).await;
    let report = waited.await.unwrap().unwrap();
    assert!(report.freeze.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_interrupts_a_run_waiting_for_its_cutover() {
    let source = source();
    populate(&source.url()).await;
    let (dir, keyferry) = open().await;
    let migration = keyferry
        .start_migration(MigrationSpec::new("waiting", source.url(), Cutover::Manual))
        .await
        .unwrap();
    progress_until(&migration, "the bulk copy", |s| s.scan_done).await;
    let waited = tokio::spawn(migration.wait());
    soon("the shutdown", keyferry.shutdown()).await;
    let ended = waited.await.unwrap();
    assert!(
        matches!(&ended, Err(MigrationError::Interrupted(id)) if id == "waiting"),
        "{ended:?}"
    );

    // The run is still in the file, and resumes under the same id.
    let keyferry = Keyferry::open(Config::new(dir.path().join("kf.sqlite")))
        .await
        .unwrap();
    let resumed = keyferry
        .start_migration(MigrationSpec::new("waiting", source.url(), Cutover::Manual))
        .await
        .unwrap();
    assert_eq!(resumed.status().unwrap().counters.migrated_keys, 7);
    resumed.cutover_now().unwrap();
    soon("the resumed run", resumed.wait()).await.unwrap();
    keyferry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_are_typed() {
    let (_dir, keyferry) = open().await;
    let bad_uri = keyferry
        .start_migration(MigrationSpec::new(
            "bad",
            "http://127.0.0.1",
            Cutover::Manual,
        ))
        .await;
    assert!(matches!(bad_uri, Err(MigrationError::InvalidUri(_))));

    let nobody = format!("redis://127.0.0.1:{}", free_port());
    let unreachable = soon(
        "an unreachable source",
        keyferry.start_migration(MigrationSpec::new("gone", nobody, Cutover::Manual)),
    )
    .await;
    assert!(
        matches!(unreachable, Err(MigrationError::Failed(_))),
        "{unreachable:?}"
    );

    // A source without notifications is refused, naming the flags.
    let quiet = RedisServer::start();
    let refused = keyferry
        .start_migration(MigrationSpec::new("quiet", quiet.url(), Cutover::Manual))
        .await;
    let Err(MigrationError::Failed(e)) = refused else {
        panic!("{refused:?}")
    };
    assert!(e.to_string().contains("notify-keyspace-events"), "{e}");
    keyferry.shutdown().await;
}

fn job(id: &str, priority: i32, dedupe: Option<&str>) -> keyferry::embed::NewJob {
    keyferry::embed::NewJob {
        job_id: id.into(),
        queue: "work".into(),
        kind: "test".into(),
        payload: id.as_bytes().to_vec(),
        priority,
        run_at_ms: 0,
        max_attempts: 2,
        dedupe_key: dedupe.map(str::to_string),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_queue_orders_leases_fences_and_backs_off_retries() {
    use keyferry::embed::{JobError, JobStatus};
    let (_dir, engine) = open().await;
    for (id, priority) in [("low", 0), ("high", 5), ("mid", 1)] {
        engine
            .enqueue(job(id, priority, None))
            .await
            .unwrap()
            .unwrap();
    }
    // A second enqueue under an alive dedupe key returns the first job.
    let first = engine
        .enqueue(job("d1", 0, Some("step:a")))
        .await
        .unwrap()
        .unwrap();
    let again = engine
        .enqueue(job("d2", 0, Some("step:a")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.job_id, first.job_id);

    let lease = Duration::from_secs(30);
    let leased = engine
        .dequeue("work", "w1", lease, 2)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = leased.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, ["high", "mid"], "best priority first");
    // Returned as it is after the dequeue, not the stale queued row.
    assert!(leased.iter().all(|j| j.status == JobStatus::Leased
        && j.attempts == 1
        && j.worker.as_deref() == Some("w1")));

    let high = &leased[0];
    // Fencing: a wrong epoch or worker cannot ack.
    let stale = engine
        .ack(vec![("high".into(), "w1".into(), high.epoch + 1)])
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(stale[0], Err(JobError::LeaseLost { .. })),
        "{stale:?}"
    );
    let ok = engine
        .ack(vec![("high".into(), "w1".into(), high.epoch)])
        .await
        .unwrap()
        .unwrap();
    assert!(ok[0].is_ok());
    assert_eq!(engine.job("high").unwrap().unwrap().status, JobStatus::Done);

    // Failing: queued again, but only after its backoff.
    let mid = &leased[1];
    let retried = engine
        .fail("mid", "w1", mid.epoch, "boom")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.status, JobStatus::Queued);
    assert!(retried.run_at_ms > keyferry_journal::now_ms(), "backoff");
    let again = engine
        .dequeue("work", "w2", lease, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(
        again.iter().all(|j| j.job_id != "mid"),
        "not before its backoff"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_never_lease_one_job_twice() {
    let (_dir, engine) = open().await;
    let engine = std::sync::Arc::new(engine);
    for i in 0..300 {
        engine
            .enqueue(job(&format!("j{i}"), 0, None))
            .await
            .unwrap()
            .unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..4 {
        let engine = std::sync::Arc::clone(&engine);
        workers.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let batch = engine
                    .dequeue("work", &worker, Duration::from_secs(30), 7)
                    .await
                    .unwrap()
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                let acks = batch
                    .iter()
                    .map(|j| (j.job_id.clone(), worker.clone(), j.epoch))
                    .collect();
                let verdicts = engine.ack(acks).await.unwrap().unwrap();
                assert!(verdicts.iter().all(Result::is_ok));
                mine.extend(batch.into_iter().map(|j| j.job_id));
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let unique: std::collections::BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 300, "every job processed once");
    assert_eq!(unique.len(), 300, "no job leased twice");
    std::sync::Arc::into_inner(engine).unwrap().shutdown().await;
}

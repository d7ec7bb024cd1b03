//! Step jobs without a source: the payload format, fencing of a worker
//! whose lease was taken over, heartbeats, giving a lease back, and
//! recognising a holder that is gone.

use std::time::Duration;

use keyferry_engine::{Db, KeyValue, Store, StoreConfig, StoreError};
use keyferry_journal::jobs::{self, JobError, JobStatus};
use keyferry_journal::{Backoff, Event, now_ms};

use super::super::batch::{self, Fuse, Item, Written};
use super::*;

/// A source that is never connected to, with a password that must not
/// reach the payload.
fn source() -> Source {
    let uri = "redis://:s3cret@127.0.0.1:1/2".parse().expect("uri");
    Source::new(uri, None).expect("source")
}

fn worker(id: &str) -> Worker {
    Worker {
        id: id.to_string(),
        lease: Duration::from_secs(30),
        backoff: Backoff::default(),
    }
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("steps.db"), StoreConfig::default()).expect("open store")
}

/// Leases the step's job to `worker` now, as a claim or the dequeuer does.
async fn lease(store: &Store, job_id: &str, worker: &Worker) -> Result<Lease, StoreError> {
    let (id, w) = (job_id.to_string(), worker.clone());
    let job = store
        .write(move |tx| Ok(lease_in(tx.conn(), &id, &w, now_ms())?))
        .await?;
    Ok(Lease::new(&job, &worker.id))
}

/// Expires every lease as if `ahead` had passed (the holder stalled).
async fn reclaim_as_if_later(store: &Store, ahead: Duration) {
    let later = now_ms() + i64::try_from(ahead.as_millis()).expect("small");
    store
        .write(move |tx| Ok(jobs::reclaim_expired_in(tx.conn(), later, 10)?))
        .await
        .expect("reclaim");
}

/// One string key, put by a batch of `fuse`'s step.
async fn put(store: &Store, fuse: &Fuse, key: &[u8]) -> Result<Written, StoreError> {
    let item = Item::Put {
        key: key.to_vec(),
        value: KeyValue::String(b"v".to_vec()),
        expire_at_ms: None,
        mark: None,
    };
    let finish = |written: Written| {
        vec![Event::BatchCommitted {
            run_id: "r".into(),
            db: 0,
            keys: written.applied,
            bytes: 1,
        }]
    };
    batch::submit(store, Db::new(0).unwrap(), vec![item], None, fuse, finish).await
}

fn value(store: &Store, key: &[u8]) -> Option<Vec<u8>> {
    store
        .read(|view| view.string_get(Db::new(0).unwrap(), key))
        .expect("read")
}

fn row(store: &Store, job_id: &str) -> jobs::Job {
    store
        .read(|view| Ok(jobs::job(view.conn(), job_id)?))
        .expect("read")
        .expect("job")
}

fn batches(store: &Store) -> i64 {
    store
        .read(|view| {
            Ok(view.conn().query_row(
                "SELECT count(*) FROM journal WHERE kind = 'batch_committed'",
                [],
                |r| r.get(0),
            )?)
        })
        .expect("count")
}

#[test]
fn payloads_round_trip_without_the_password_and_tolerate_other_versions_fields() {
    let spec = StepSpec {
        settings: StepSettings {
            max_rps: Some(10),
            ttl_mode: crate::migration::TtlMode::Drop,
            ..StepSettings::default()
        },
        resume: true,
        ..StepSpec::new(StepKind::ApplyDirty, "r1", &source())
    };
    let payload = spec.to_payload();
    let text = String::from_utf8(payload.clone()).expect("json");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains(r#""version":1"#), "{text}");
    assert!(text.contains(r#""kind":"apply-dirty""#), "{text}");
    assert_eq!(StepSpec::from_payload(&payload).expect("decode"), spec);
    assert_eq!(spec.dedupe_key(), "apply-dirty:r1");

    // Missing optional fields take their defaults; unknown ones are
    // ignored; a missing version is the first.
    let minimal = br#"{"kind":"bulk","run_id":"r2","source_uri":"redis://h:1","added_later":[1]}"#;
    let decoded = StepSpec::from_payload(minimal).expect("tolerant");
    assert_eq!(
        (decoded.kind, decoded.resume, decoded.sample_percent),
        (StepKind::Bulk, false, 100.0)
    );
    assert_eq!(decoded.settings, StepSettings::default());

    let newer = br#"{"version":2,"kind":"bulk","run_id":"r2","source_uri":"redis://h:1"}"#;
    assert!(matches!(
        StepSpec::from_payload(newer),
        Err(PayloadError::Newer { found: 2 })
    ));
    assert!(matches!(
        StepSpec::from_payload(b"[]"),
        Err(PayloadError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_worker_whose_lease_was_taken_over_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let spec = StepSpec::new(StepKind::Bulk, "r", &source());
    let job = enqueue(&store, &spec).await.expect("enqueue");
    let (a, b) = (worker("host-a:1"), worker("host-b:2"));
    let stale = lease(&store, &job.job_id, &a).await.expect("a leases");
    let a_fuse = Fuse::new(Some(stale.clone()));
    put(&store, &a_fuse, b"before")
        .await
        .expect("a writes while it holds the lease");

    // A stalls past its lease: the job is reclaimed and B leases it.
    reclaim_as_if_later(&store, Duration::from_secs(60)).await;
    let current = lease(&store, &job.job_id, &b).await.expect("b leases");
    assert_eq!(row(&store, &job.job_id).epoch, 2, "a new epoch");

    // A's next batch is fenced: refused in its own transaction.
    let refused = put(&store, &a_fuse, b"after").await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Job(JobError::LeaseLost { ref holder, .. })) if holder.as_deref() == Some("host-b:2")
        ),
        "{refused:?}"
    );
    assert!(stale.lost_reason().is_some(), "A learns it lost the lease");
    assert_eq!(value(&store, b"after"), None, "no key written");
    assert_eq!(batches(&store), 1, "no batch recorded");
    // Its fuse is blown too: what A had queued behind fails as well.
    assert!(matches!(
        put(&store, &a_fuse, b"later").await,
        Err(StoreError::Cancelled(_))
    ));
    // And it cannot settle the job: ack, fail and release are fenced.
    assert!(stale.ack(&store).await.is_err());
    assert!(stale.release(&store).await.is_err());

    // B, the holder, writes.
    put(&store, &Fuse::new(Some(current)), b"after")
        .await
        .expect("b writes");
    assert_eq!(value(&store, b"after").as_deref(), Some(&b"v"[..]));
    store.shutdown();
}

#[tokio::test]
async fn a_heartbeat_finds_a_lost_lease_and_a_released_one_is_taken_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let spec = StepSpec::new(StepKind::Sweep, "r", &source());
    let job = enqueue(&store, &spec).await.expect("enqueue");
    let (a, b) = (worker("host-a:1"), worker("host-b:2"));

    // A gives its lease back: B may take the job at once, with no attempt
    // used up by A's interruption beyond its own lease.
    let released = lease(&store, &job.job_id, &a).await.expect("a leases");
    released.release(&store).await.expect("release");
    let taken = lease(&store, &job.job_id, &b).await.expect("b takes it");

    // B's heartbeats renew its lease ...
    let leased = row(&store, &job.job_id);
    let beating = taken.keep_alive(store.clone(), Duration::from_millis(150));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let renewed = row(&store, &job.job_id);
    assert_eq!(
        (renewed.status, renewed.worker.as_deref(), renewed.epoch),
        (JobStatus::Leased, Some("host-b:2"), leased.epoch)
    );
    assert!(
        renewed.updated_seq > leased.updated_seq,
        "a heartbeat was appended"
    );
    // ... until the job is taken from it; then the next heartbeat says so.
    reclaim_as_if_later(&store, Duration::from_secs(60)).await;
    let reason = tokio::time::timeout(Duration::from_secs(5), taken.lost())
        .await
        .expect("the heartbeat noticed");
    assert!(reason.contains("lost"), "{reason}");
    tokio::time::timeout(Duration::from_secs(5), beating)
        .await
        .expect("the heartbeat stops")
        .expect("no panic");
    store.shutdown();
}

#[tokio::test]
async fn a_claim_names_a_live_holder_and_refuses_a_restart_without_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let spec = StepSpec::new(StepKind::Bulk, "r", &source());
    let first = claim(&store, &spec, &worker("host-a:1"))
        .await
        .expect("claimed");
    match claim(&store, &spec, &worker("host-b:2")).await {
        Err(StepError::Held { holder, .. }) => assert_eq!(holder, "host-a:1"),
        other => panic!("expected Held, got {other:?}"),
    }
    // Once the run has a checkpoint, only a resume continues it — and a
    // refused claim leaves nothing behind (no new lease, no throttles).
    store
        .write(|tx| {
            tx.append_events(&[Event::Checkpoint {
                run_id: "r".into(),
                source_run_id: "s".into(),
                db: 0,
                cursor: 7,
                done: false,
                counters: Counters::default(),
            }])
        })
        .await
        .expect("checkpoint");
    first.ack(&store).await.expect("ack");
    let throttled = StepSpec {
        settings: StepSettings {
            max_rps: Some(5),
            ..StepSettings::default()
        },
        ..spec.clone()
    };
    let refused = claim(&store, &throttled, &worker("host-b:2")).await;
    assert!(
        matches!(&refused, Err(StepError::Refused(why)) if why.contains("--resume")),
        "{refused:?}"
    );
    let (jobs, max_rps) = store
        .read(|view| {
            let jobs = jobs::list(view.conn(), Some(QUEUE), None, 10)?.len();
            let row = registry::run(view.conn(), "r")?.expect("run");
            Ok((jobs, row.throttles.max_rps))
        })
        .expect("read");
    assert_eq!((jobs, max_rps), (1, None));
    let resumed = StepSpec {
        resume: true,
        ..throttled
    };
    claim(&store, &resumed, &worker("host-b:2"))
        .await
        .expect("a resume is admitted");
    store.shutdown();
}

#[test]
fn only_a_holder_of_this_host_whose_process_is_gone_counts_as_gone() {
    let me = Worker::this_process();
    let (host, pid) = me.id.rsplit_once(':').expect("hostname:pid");
    assert_eq!(pid, std::process::id().to_string());
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("reap");
    assert!(worker::is_gone(&format!("{host}:{dead}")));
    assert!(!worker::is_gone(&me.id), "this process");
    assert!(!worker::is_gone(&format!("{host}:1")), "a live process");
    assert!(
        !worker::is_gone(&format!("elsewhere-{host}:{dead}")),
        "another host"
    );
    assert!(!worker::is_gone("not a worker id"));
}

#[tokio::test]
async fn a_bulk_job_of_an_aborted_run_is_done_without_reviving_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .write(|tx| {
            tx.append_events(&[Event::RunStatusChanged {
                run_id: "r".into(),
                status: RunStatus::Aborted,
                reason: Some("operator".into()),
            }])
        })
        .await
        .expect("abort");
    let spec = StepSpec::new(StepKind::Bulk, "r", &source());
    // The source is never reached: the step ends before its actor starts.
    let (_keep, stop) = watch::channel(false);
    let ended = run_step(&store, source(), spec, &worker("host-a:1"), stop).await;
    assert!(matches!(ended, Err(StepError::Aborted(_))), "{ended:?}");
    let (status, job) = store
        .read(|view| {
            let run = registry::run(view.conn(), "r")?.expect("run");
            let job = jobs::list(view.conn(), Some(QUEUE), None, 1)?.remove(0);
            Ok((run.status, job.status))
        })
        .expect("read");
    assert_eq!((status, job), (RunStatus::Aborted, JobStatus::Done));
    store.shutdown();
}

//! The supervisor against real actors and a real journal file: restarts
//! with growing backoff, the intensity limit, failed start-ups, normal
//! stops, graceful shutdown, and the restart metrics.
//!
//! Timing is checked by order and lower bounds only (a restart never comes
//! before its backoff), never by upper bounds that a loaded CI would break.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyferry_actors::supervisor::{ChildSpec, FailedActor, RestartPolicy, Supervisor};
use keyferry_journal::{Durability, Event, Journal, Writer, WriterConfig};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

/// Where a [`Flaky`] child fails.
#[derive(Clone, Copy)]
enum FailIn {
    /// Its start-up returns an error (the spawn itself fails).
    PreStart,
    /// It panics right after starting.
    PostStart,
    /// It never fails, and stops itself normally right after starting.
    Nowhere,
}

/// What every instance of a [`Flaky`] child shares with the test.
#[derive(Clone, Default)]
struct Probe {
    starts: Arc<Mutex<Vec<Instant>>>,
    stopped_gracefully: Arc<AtomicBool>,
}

impl Probe {
    fn starts(&self) -> Vec<Instant> {
        self.starts.lock().unwrap().clone()
    }
}

/// A child whose first `failures` starts fail in `fail_in`.
struct Flaky {
    probe: Probe,
    fail_in: FailIn,
    failures: usize,
}

impl Flaky {
    /// Records a start; returns whether this one must fail.
    fn record_start(&self) -> bool {
        let mut starts = self.probe.starts.lock().unwrap();
        starts.push(Instant::now());
        starts.len() <= self.failures
    }
}

impl Actor for Flaky {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        match self.fail_in {
            FailIn::PreStart if self.record_start() => Err("no source yet".into()),
            _ => Ok(()),
        }
    }

    async fn post_start(&self, myself: ActorRef<()>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match self.fail_in {
            FailIn::PostStart if self.record_start() => panic!("crash on start"),
            FailIn::Nowhere => {
                self.record_start();
                myself.stop(Some("done".into()));
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<()>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        self.probe.stopped_gracefully.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn flaky(probe: &Probe, fail_in: FailIn, failures: usize) -> ChildSpec {
    let probe = probe.clone();
    ChildSpec::new("flaky", move |spawner| {
        spawner.spawn(
            Flaky {
                probe: probe.clone(),
                fail_in,
                failures,
            },
            (),
        )
    })
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        base_backoff: Duration::from_millis(20),
        factor: 2,
        max_backoff: Duration::from_millis(50),
        max_restarts: 3,
        window: Duration::from_secs(600),
    }
}

/// A journal in a fresh temp file; keep all three alive for the test.
fn journal() -> (tempfile::TempDir, Writer, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, journal) = Journal::open(
        &dir.path().join("j.db"),
        Durability::Normal,
        WriterConfig::default(),
    )
    .unwrap();
    (dir, writer, journal)
}

/// The `ActorRestarted` events in the journal, as
/// `(actor, attempt, reason, backoff_ms, gave_up)`.
fn restarts(journal: &Journal) -> Vec<(String, u32, String, u64, bool)> {
    journal
        .read_from(1)
        .unwrap()
        .map(|entry| entry.unwrap().event)
        .filter_map(|event| match event {
            Event::ActorRestarted {
                actor,
                attempt,
                reason,
                backoff_ms,
                gave_up,
            } => Some((actor, attempt, reason, backoff_ms, gave_up)),
            _ => None,
        })
        .collect()
}

/// Polls `done` until it holds, failing the test after a generous timeout.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Counter values by metric name and `actor` label.
type ActorCounters = HashMap<(String, String), u64>;

/// Runs `test` on a current-thread runtime with a local metrics recorder,
/// which sees every metric the actors record (they all run on this
/// thread), and returns the counters labelled with an actor.
fn with_metrics(test: impl AsyncFnOnce()) -> ActorCounters {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test())
    });
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let key = key.key();
            let actor = key
                .labels()
                .find(|l| l.key() == "actor")?
                .value()
                .to_string();
            match value {
                DebugValue::Counter(n) => Some(((key.name().to_string(), actor), n)),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn panicking_child_is_restarted_with_growing_backoff_until_the_limit() {
    let probe = Probe::default();
    let metrics = with_metrics(async || {
        let (_dir, _writer, journal) = journal();
        let supervisor = Supervisor::start(
            vec![flaky(&probe, FailIn::PostStart, usize::MAX)],
            policy(),
            journal.clone(),
        )
        .await
        .unwrap();
        eventually("the supervisor to give up", || {
            !supervisor.failed_actors().is_empty()
        })
        .await;

        let crash = "crash on start".to_string();
        let events = restarts(&journal);
        assert_eq!(
            events,
            [
                ("flaky".into(), 1, crash.clone(), 20, false),
                ("flaky".into(), 2, crash.clone(), 40, false),
                ("flaky".into(), 3, crash.clone(), 50, false),
                ("flaky".into(), 4, crash.clone(), 0, true),
            ]
        );
        assert_eq!(
            supervisor.failed_actors(),
            [FailedActor {
                name: "flaky".into(),
                reason: crash,
                restarts: 3
            }]
        );

        // The first start plus three restarts, each at least its backoff
        // after the previous start.
        let starts = probe.starts();
        assert_eq!(starts.len(), 4);
        for (pair, event) in starts.windows(2).zip(&events) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(event.3),
                "restart came before its backoff"
            );
        }

        // Given up means given up: no start after several maximal backoffs.
        tokio::time::sleep(policy().max_backoff * 4).await;
        assert_eq!(probe.starts().len(), 4);
        supervisor.stop().await;
    });

    let counter = |name: &str| {
        metrics
            .get(&(name.to_string(), "flaky".to_string()))
            .copied()
    };
    assert_eq!(counter("keyferry_actor_restarts_total"), Some(3));
    assert_eq!(counter("keyferry_actor_gave_up_total"), Some(1));
}

#[tokio::test]
async fn recovered_child_keeps_running_and_stops_gracefully() {
    let (_dir, _writer, journal) = journal();
    let probe = Probe::default();
    let supervisor = Supervisor::start(
        vec![flaky(&probe, FailIn::PostStart, 1)],
        policy(),
        journal.clone(),
    )
    .await
    .unwrap();
    eventually("the restart", || probe.starts().len() == 2).await;
    assert_eq!(
        restarts(&journal),
        [("flaky".into(), 1, "crash on start".into(), 20, false)]
    );
    assert!(supervisor.failed_actors().is_empty());
    assert!(!probe.stopped_gracefully.load(Ordering::SeqCst));

    supervisor.stop().await;
    assert!(
        probe.stopped_gracefully.load(Ordering::SeqCst),
        "the running child's post_stop did not run"
    );
}

#[tokio::test]
async fn failed_start_up_is_retried_like_a_crash() {
    let (_dir, _writer, journal) = journal();
    let probe = Probe::default();
    let supervisor = Supervisor::start(
        vec![flaky(&probe, FailIn::PreStart, 2)],
        policy(),
        journal.clone(),
    )
    .await
    .expect("a child's failed start-up must not fail the supervisor");
    eventually("the third start", || probe.starts().len() == 3).await;
    let reason = "no source yet".to_string();
    eventually("both restarts to be journaled", || {
        restarts(&journal).len() == 2
    })
    .await;
    assert_eq!(
        restarts(&journal),
        [
            ("flaky".into(), 1, reason.clone(), 20, false),
            ("flaky".into(), 2, reason, 40, false)
        ]
    );
    supervisor.stop().await;
    assert!(probe.stopped_gracefully.load(Ordering::SeqCst));
}

#[tokio::test]
async fn child_that_stops_normally_is_not_restarted() {
    let (_dir, _writer, journal) = journal();
    let probe = Probe::default();
    let supervisor = Supervisor::start(
        vec![flaky(&probe, FailIn::Nowhere, 0)],
        policy(),
        journal.clone(),
    )
    .await
    .unwrap();
    eventually("the child to stop", || {
        probe.stopped_gracefully.load(Ordering::SeqCst)
    })
    .await;
    // Long enough for a (wrong) restart after the base backoff to show.
    tokio::time::sleep(policy().base_backoff * 5).await;
    assert_eq!(probe.starts().len(), 1);
    assert!(restarts(&journal).is_empty());
    supervisor.stop().await;
}

#[tokio::test]
async fn children_fail_and_restart_independently() {
    let (_dir, _writer, journal) = journal();
    let (steady, crashing) = (Probe::default(), Probe::default());
    let steady_spec = {
        let probe = steady.clone();
        ChildSpec::new("steady", move |s| {
            s.spawn(
                Flaky {
                    probe: probe.clone(),
                    fail_in: FailIn::PostStart,
                    failures: 0,
                },
                (),
            )
        })
    };
    let supervisor = Supervisor::start(
        vec![steady_spec, flaky(&crashing, FailIn::PostStart, 2)],
        policy(),
        journal.clone(),
    )
    .await
    .unwrap();
    eventually("the crashing child's recovery", || {
        crashing.starts().len() == 3
    })
    .await;
    // One-for-one: the sibling was neither stopped nor restarted.
    assert_eq!(steady.starts().len(), 1);
    assert!(!steady.stopped_gracefully.load(Ordering::SeqCst));
    assert!(restarts(&journal).iter().all(|event| event.0 == "flaky"));
    supervisor.stop().await;
    assert!(steady.stopped_gracefully.load(Ordering::SeqCst));
}

#[tokio::test]
async fn restarts_journaled_by_an_earlier_process_count_toward_the_limit() {
    let (_dir, _writer, journal) = journal();
    // A previous process restarted "flaky" three times a moment ago (and
    // an unrelated actor too, which must not count).
    let earlier = |actor: &str, attempt| Event::ActorRestarted {
        actor: actor.into(),
        attempt,
        reason: "crashed before".into(),
        backoff_ms: 20,
        gave_up: false,
    };
    journal
        .append(vec![
            earlier("flaky", 1),
            earlier("flaky", 2),
            earlier("flaky", 3),
            earlier("other", 1),
        ])
        .await
        .unwrap();
    let probe = Probe::default();
    let supervisor = Supervisor::start(
        vec![flaky(&probe, FailIn::PostStart, 10)],
        policy(),
        journal.clone(),
    )
    .await
    .unwrap();
    // The limit is 3 per window: the first failure in this process is the
    // fourth, so the supervisor gives up without restarting it.
    eventually("the give-up", || !supervisor.failed_actors().is_empty()).await;
    assert_eq!(
        probe.starts().len(),
        1,
        "restarted despite the journaled history"
    );
    let last = restarts(&journal).pop().unwrap();
    assert_eq!((last.0.as_str(), last.1, last.4), ("flaky", 4, true));
    supervisor.stop().await;
}

//! `keyferry migrate`: the whole migration in one process — tracker, bulk
//! copy, live pre-deltas, sweeps when the run needs them, and the cutover.
//!
//! The tracker, the scanner and a live applier run as supervised actors,
//! so one that fails is restarted and carries on from the registry. The
//! cutover itself is a short sequence run here:
//! 1. `CLIENT PAUSE <budget> WRITE` (auto) or the operator's go-ahead
//!    (manual: they froze writes themselves);
//! 2. fence the tracker (every notification sent before the pause is
//!    committed), stop the live applier, apply the final delta;
//! 3. sweep if the run needs it (only if a gap was not already swept
//!    before the freeze), verify a random sample;
//! 4. run `--switch-cmd` while still paused;
//! 5. `CLIENT UNPAUSE` — on every path, failures included, and long
//!    before the pause's own expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyferry_engine::Db;
use keyferry_journal::{Counters, Event, RunStatus};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use super::applier::{self, Applied, ApplierConfig, Mode};
use super::steps::{self, StepError, StepKind, StepOutcome, StepSpec, Worker};
use super::sweep::sweep;
use super::tracker::{self, Fence, TrackerConfig};
use super::{MigrationError, Run, Settings};
use crate::compare::{CompareOptions, Outcome, compare_keys};
use crate::source::FetchLimits;
use crate::source::info::{self, Channels};
use crate::supervisor::{RestartPolicy, Supervisor};

/// The longest source writes stay paused. `CLIENT PAUSE` is given this
/// budget and keyferry unpauses well before it runs out.
const PAUSE_BUDGET: Duration = Duration::from_secs(10);
/// Pre-deltas stop once fewer keys than this are pending: the final delta
/// then fits comfortably inside the freeze.
const SMALL_BACKLOG: u64 = 2_000;
/// How long the tracker may take to pass a fence.
const FENCE_TIMEOUT: Duration = Duration::from_secs(3);
/// Keys compared with the source during the freeze.
const VERIFY_SAMPLE: usize = 200;

/// How the cutover happens.
pub enum Cutover {
    /// The operator freezes writes; the future resolves when they say so.
    Manual(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
    /// keyferry pauses source writes itself.
    Auto {
        /// Shell command that moves clients, run while paused.
        switch_cmd: Option<String>,
    },
}

/// Everything `migrate` needs.
pub struct MigrateConfig {
    /// The run.
    pub run: Run,
    /// Throttles for the scanner and applier.
    pub settings: Settings,
    /// Chunking of collections.
    pub limits: FetchLimits,
    /// Notification channels.
    pub channels: Channels,
    /// Whether the tracker may turn notifications on.
    pub enable_notifications: bool,
    /// The cutover.
    pub cutover: Cutover,
    /// Turns `true` to stop live sync (SIGINT).
    pub shutdown: watch::Receiver<bool>,
}

/// What the migration did.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    /// How long source writes were frozen (auto cutover).
    pub freeze: Option<Duration>,
    /// Keys applied in the final delta.
    pub final_delta: Applied,
    /// Sample keys that differed after the final delta.
    pub sample_mismatches: u64,
    /// Whether the switch command ran and succeeded.
    pub switched: bool,
}

/// Runs the whole migration (see the module docs).
pub async fn migrate(config: MigrateConfig) -> Result<MigrateReport, MigrationError> {
    let MigrateConfig {
        run,
        settings,
        limits,
        channels,
        enable_notifications,
        cutover,
        mut shutdown,
    } = config;
    if let Cutover::Auto { .. } = &cutover {
        let mut conn = run.source.connect(0).await?;
        let version = info::info(&mut conn, "server")
            .await
            .map_err(|e| run.source.command_error(e))?
            .version()
            .unwrap_or((0, 0, 0));
        if !info::supports_client_pause_write(version) {
            return Err(MigrationError::Refused(format!(
                "--cutover auto needs CLIENT PAUSE … WRITE (Redis ≥ 6.2); the source is {}.{}.{}",
                version.0, version.1, version.2
            )));
        }
    }
    tracker::prepare(&run, channels, enable_notifications).await?;

    let (fence_tx, fence_rx) = mpsc::unbounded_channel();
    let tracker_stopped = Arc::new(watch::Sender::new(false));
    let (live_stop_tx, live_stop) = watch::channel(false);
    let live_done = Arc::new(watch::Sender::new(None));
    let children = vec![
        tracker::child_spec(TrackerConfig {
            run: run.clone(),
            channels,
            fences: Arc::new(Mutex::new(fence_rx)),
            stopped: Arc::clone(&tracker_stopped),
        }),
        applier::child_spec(ApplierConfig {
            run: run.clone(),
            settings: settings.clone(),
            limits: limits.clone(),
            mode: Mode::Live(live_stop),
            done: Arc::clone(&live_done),
        }),
    ];
    let supervisor = Supervisor::start(
        children,
        RestartPolicy::default(),
        run.store.journal().clone(),
    )
    .await
    .map_err(|e| MigrationError::Refused(e.to_string()))?;

    let parts = Frozen {
        run: &run,
        settings: &settings,
        limits: &limits,
        fences: &fence_tx,
        live_stop: &live_stop_tx,
        supervisor: &supervisor,
        live_done: &live_done,
    };
    let result = async {
        // `shutdown` ends live sync, not the copy: the bulk step gets a
        // closed stop channel, which never stops it.
        let counters = bulk_step(&run, watch::channel(false).1).await?;
        tracing::info!(run = %run.id, ?counters, "bulk copy done; catching up");
        catch_up(&run, &settings).await?;
        let mut report = match cutover {
            Cutover::Manual(go) => {
                tracing::info!(run = %run.id, "caught up; waiting for the operator to freeze writes");
                tokio::select! {
                    _ = go => {}
                    aborted = until_aborted(&run) => return Err(aborted),
                }
                finish_delta(&parts).await?
            }
            Cutover::Auto { switch_cmd } => auto_cutover(&parts, switch_cmd).await?,
        };
        if report.switched || report.freeze.is_none() {
            stop_tracker(&run, &supervisor, &tracker_stopped).await?;
            run.record(vec![Event::RunStatusChanged {
                run_id: run.id.clone(),
                status: RunStatus::Completed,
                reason: Some("cutover complete".into()),
            }])
            .await?;
        } else {
            // No switch command: live sync until stopped.
            let (stop_tx, stop) = watch::channel(false);
            let sync = {
                let (run, settings, limits) = (run.clone(), settings.clone(), limits.clone());
                tokio::spawn(async move { applier::drain(&run, settings, &limits, Mode::Live(stop)).await })
            };
            let mut lag = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    // The live applier ends on an abort too (its control
                    // says so); the tracker stops on it by itself.
                    aborted = until_aborted(&run) => {
                        let _ = stop_tx.send(true);
                        let _ = sync.await;
                        return Err(aborted);
                    }
                    _ = lag.tick() => {
                        let pending = run.pending()?;
                        tracing::info!(run = %run.id, pending, "live sync: keys waiting to be applied");
                    }
                }
            }
            let _ = stop_tx.send(true);
            let applied = sync.await.map_err(|e| MigrationError::Refused(e.to_string()))??;
            report.final_delta.applied += applied.applied;
            stop_tracker(&run, &supervisor, &tracker_stopped).await?;
        }
        Ok(report)
    }
    .await;
    supervisor.stop().await;
    // Whatever happened, put the source's notification setting back.
    tracker::restore_notifications(&run).await?;
    result
}

/// Live pre-deltas: sweeps while the run needs one, and waits until the
/// live applier has the backlog small.
async fn catch_up(run: &Run, settings: &Settings) -> Result<(), MigrationError> {
    loop {
        if let Some(stopped) = stopped_by_operator(run)? {
            return Err(stopped);
        }
        let row = run
            .row()?
            .ok_or_else(|| MigrationError::UnknownRun(run.id.clone()))?;
        if row.needs_sweep {
            tracing::info!(run = %run.id, reason = ?row.sweep_reason, "sweeping before the cutover");
            sweep(run, settings).await?;
            continue;
        }
        if run.pending()? < SMALL_BACKLOG {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the frozen part of a cutover works with: the run, its throttles,
/// the tracker's fence channel and the live applier to stop.
struct Frozen<'a> {
    run: &'a Run,
    settings: &'a Settings,
    limits: &'a FetchLimits,
    fences: &'a mpsc::UnboundedSender<Fence>,
    live_stop: &'a watch::Sender<bool>,
    supervisor: &'a Supervisor,
    live_done: &'a Arc<watch::Sender<Option<Result<Applied, String>>>>,
}

/// The auto cutover: pause, final delta, verify, switch, unpause.
async fn auto_cutover(
    parts: &Frozen<'_>,
    switch_cmd: Option<String>,
) -> Result<MigrateReport, MigrationError> {
    let run = parts.run;
    let mut conn = run.source.connect(0).await?;
    let paused_at = Instant::now();
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(PAUSE_BUDGET.as_millis() as u64)
        .arg("WRITE")
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| run.source.command_error(e))?;
    let frozen = async {
        let mut report = finish_delta(parts).await?;
        if report.sample_mismatches > 0 {
            return Err(MigrationError::Refused(format!(
                "{} of the sampled keys still differ after the final delta; not switching",
                report.sample_mismatches
            )));
        }
        if let Some(cmd) = &switch_cmd {
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .status()
                .await;
            match status {
                Ok(status) if status.success() => report.switched = true,
                Ok(status) => {
                    return Err(MigrationError::Refused(format!(
                        "--switch-cmd exited with {status}"
                    )));
                }
                Err(e) => {
                    return Err(MigrationError::Refused(format!(
                        "--switch-cmd could not run: {e}"
                    )));
                }
            }
        }
        if paused_at.elapsed() >= PAUSE_BUDGET {
            return Err(MigrationError::Refused(
                "the freeze outlasted its budget; the source unpaused itself meanwhile".into(),
            ));
        }
        Ok(report)
    }
    .await;
    let unpaused = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| run.source.command_error(e));
    let freeze = paused_at.elapsed();
    tracing::info!(run = %run.id, freeze_ms = freeze.as_millis() as u64, "source writes unpaused");
    let mut report = frozen?;
    unpaused?;
    report.freeze = Some(freeze);
    Ok(report)
}

/// With writes frozen: fence the tracker, stop the live applier, apply
/// what is left, sweep if needed, and verify a sample.
async fn finish_delta(parts: &Frozen<'_>) -> Result<MigrateReport, MigrationError> {
    let Frozen {
        run,
        settings,
        limits,
        fences,
        live_stop,
        supervisor,
        live_done,
    } = *parts;
    let (reply, fenced) = oneshot::channel();
    fences
        .send(Fence { reply })
        .map_err(|_| MigrationError::Refused("the tracker is gone".into()))?;
    // A tracker that is gone (stopped, given up on) never answers: bound
    // the wait rather than hold source writes paused.
    let through = tokio::time::timeout(FENCE_TIMEOUT, fenced)
        .await
        .map_err(|_| MigrationError::Refused("the tracker did not pass the fence in time".into()))?
        .map_err(|_| MigrationError::Refused("the tracker stopped before the fence".into()))?
        .map_err(MigrationError::Refused)?;
    tracing::info!(run = %run.id, through, "tracker fenced");
    let _ = live_stop.send(true);
    wait_for(supervisor, applier::NAME, live_done).await?;
    let mut final_delta = applier::drain(run, settings.clone(), limits, Mode::UntilEmpty).await?;
    if run.row()?.is_some_and(|row| row.needs_sweep) {
        sweep(run, settings).await?;
        let more = applier::drain(run, settings.clone(), limits, Mode::UntilEmpty).await?;
        final_delta.applied += more.applied;
        final_delta.deleted += more.deleted;
    }
    let sample_mismatches = verify_sample(run).await?;
    Ok(MigrateReport {
        freeze: None,
        final_delta,
        sample_mismatches,
        switched: false,
    })
}

/// Compares random source keys (`RANDOMKEY`) of every non-empty database
/// with the destination; returns how many differ.
async fn verify_sample(run: &Run) -> Result<u64, MigrationError> {
    let mut conn = run.source.connect(0).await?;
    let keyspace = info::info(&mut conn, "keyspace")
        .await
        .map_err(|e| run.source.command_error(e))?
        .keyspace();
    let per_db = VERIFY_SAMPLE / keyspace.len().max(1);
    let mut mismatches = 0;
    for stats in keyspace {
        let Ok(db) = Db::new(i64::from(stats.db)) else {
            continue;
        };
        let mut conn = run.source.connect(stats.db).await?;
        let mut pipe = redis::pipe();
        for _ in 0..per_db.max(1) {
            pipe.cmd("RANDOMKEY");
        }
        let keys: Vec<Option<Vec<u8>>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| run.source.command_error(e))?;
        let keys: Vec<Vec<u8>> = keys.into_iter().flatten().collect();
        for compared in
            compare_keys(&mut conn, &run.store, db, &keys, &CompareOptions::default()).await?
        {
            if !matches!(
                compared.outcome,
                Outcome::Same | Outcome::Unsupported { .. }
            ) {
                tracing::warn!(run = %run.id, db = stats.db, outcome = ?compared.outcome, "sample key differs");
                mismatches += 1;
            }
        }
    }
    Ok(mismatches)
}

/// Asks the tracker to stop (as `tracker stop` would) and waits for it.
async fn stop_tracker(
    run: &Run,
    supervisor: &Supervisor,
    stopped: &Arc<watch::Sender<bool>>,
) -> Result<(), MigrationError> {
    run.record(vec![Event::TrackerStopRequested {
        run_id: run.id.clone(),
    }])
    .await?;
    let mut rx = stopped.subscribe();
    loop {
        if *rx.borrow_and_update() {
            return Ok(());
        }
        if supervisor
            .failed_actors()
            .iter()
            .any(|a| a.name == tracker::NAME)
        {
            return Ok(());
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
}

/// Waits until the actor `name` reports an outcome on `done`, or the
/// supervisor gives up on it.
async fn wait_for<T: Clone>(
    supervisor: &Supervisor,
    name: &str,
    done: &Arc<watch::Sender<Option<Result<T, String>>>>,
) -> Result<T, MigrationError> {
    let mut rx = done.subscribe();
    loop {
        if let Some(outcome) = rx.borrow_and_update().clone() {
            return outcome.map_err(MigrationError::Refused);
        }
        if let Some(failed) = supervisor
            .failed_actors()
            .into_iter()
            .find(|a| a.name == name)
        {
            return Err(MigrationError::Refused(format!(
                "{name} failed {} times and was given up on: {}",
                failed.restarts, failed.reason
            )));
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
}

/// `Aborted` once an operator aborted the run (or it failed), else `None`.
fn stopped_by_operator(run: &Run) -> Result<Option<MigrationError>, MigrationError> {
    Ok(run
        .row()?
        .filter(|row| matches!(row.status, RunStatus::Aborted | RunStatus::Failed))
        .map(|_| MigrationError::Aborted(run.id.clone())))
}

/// Resolves with `Aborted` once the run is aborted; polls its row.
async fn until_aborted(run: &Run) -> MigrationError {
    loop {
        match stopped_by_operator(run) {
            Ok(Some(aborted)) => return aborted,
            Ok(None) | Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The bulk copy, run as the run's leased `bulk` step job (so no other
/// process runs it at the same time, and a crashed `migrate`'s copy is
/// taken over where it stopped). When another live process holds the step
/// — a `keyferry serve` that picked the job up after a crash, say — this
/// waits for it to finish, or for its lease to lapse and takes over.
async fn bulk_step(run: &Run, stop: watch::Receiver<bool>) -> Result<Counters, MigrationError> {
    let mut spec = StepSpec::new(StepKind::Bulk, run.id.clone(), &run.source);
    spec.resume = true;
    let worker = Worker::this_process();
    loop {
        match steps::run_step(
            &run.store,
            run.source.clone(),
            spec.clone(),
            &worker,
            stop.clone(),
        )
        .await
        {
            Ok(StepOutcome::Bulk(counters)) => return Ok(counters),
            Ok(other) => {
                return Err(MigrationError::Refused(format!(
                    "the bulk step ended with {other:?}"
                )));
            }
            Err(StepError::Held { holder, .. }) => {
                if let Some(row) = run.row()?
                    && row.scan_done
                {
                    tracing::info!(run = %run.id, holder, "the bulk copy was finished by another process");
                    return Ok(row.counters);
                }
                tracing::info!(run = %run.id, holder, "another process runs the bulk copy; waiting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(StepError::Aborted { .. }) => return Err(MigrationError::Aborted(run.id.clone())),
            Err(e) => return Err(MigrationError::Refused(e.to_string())),
        }
    }
}

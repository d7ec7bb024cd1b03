//! Live migrations started from code: [`Keyferry::start_migration`] runs
//! the same orchestrator as `keyferry migrate` (tracker, bulk copy, live
//! pre-deltas, cutover) as a task of its own, and the [`MigrationHandle`]
//! it returns steers and watches it.
//!
//! Steering goes through the journal, not through the task: pause, resume,
//! abort and throttles are events appended by
//! `keyferry_actors::migration::control` — the function `keyferry control`
//! uses — and the run's actors poll its row. So a run started here can be
//! steered by `keyferry control` from another process, and the other way
//! round, with the same rules.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyferry_actors::migration::orchestrator::{self, MigrateConfig};
use keyferry_actors::migration::{
    self as actors, ControlRequest, ControlVerdict, Controlled, Run, Settings,
};
use keyferry_actors::source::info::Channels;
use keyferry_actors::source::{FetchLimits, Source, SourceError, SourceUri, UriError};
use keyferry_engine::{Store, StoreError};
use keyferry_journal::registry::{self, Throttles};
use keyferry_journal::{Counters, RunStatus};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::{Keyferry, MigrateReport};

/// How often a running migration's [`MigrationHandle::progress`] is
/// refreshed from its row. Two small indexed reads; a user watching a
/// progress bar notices a quarter second no more than a pause taking
/// effect (the actors poll every 200 ms).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How often the run's row is looked for while the run starts
/// ([`Keyferry::start_migration`] returns once it is there).
const STARTUP_POLL: Duration = Duration::from_millis(10);

/// How long [`Keyferry::shutdown`] lets migrations end before interrupting
/// them: long enough for a live sync to stop or an auto cutover's freeze
/// to finish (typically about a second), short enough not to hold a
/// process's exit hostage to a bulk copy, which resumes anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Who changed a run's status, as recorded in `RunStatusChanged`.
const REASON: &str = "keyferry embedding API";

/// How a migration switches over to keyferry once it caught up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cutover {
    /// You freeze writes on the source yourself, then call
    /// [`MigrationHandle::cutover_now`]; the final delta is applied and
    /// the run completes.
    Manual,
    /// keyferry freezes source writes itself (`CLIENT PAUSE … WRITE`,
    /// Redis ≥ 6.2), applies the final delta, verifies a sample, runs
    /// `switch_cmd` (`sh -c`) while still frozen, and unpauses.
    ///
    /// With a `switch_cmd` that succeeds the run completes. Without one,
    /// nobody moved the clients: the run stays in live sync after the
    /// freeze, applying the source's writes as they happen, until
    /// [`MigrationHandle::stop_live_sync`] (or [`Keyferry::shutdown`]).
    Auto {
        /// Shell command that points clients at keyferry.
        switch_cmd: Option<String>,
    },
}

/// What [`Keyferry::start_migration`] migrates, and how.
#[derive(Debug, Clone)]
pub struct MigrationSpec {
    run_id: String,
    source_uri: String,
    password: Option<String>,
    cutover: Cutover,
    settings: Settings,
    channels: Channels,
    enable_notifications: bool,
}

impl MigrationSpec {
    /// Migrate the Redis at `source_uri`
    /// (`redis://[user:pass@]host[:port][/db]`, or `rediss://` for TLS) as
    /// run `run_id`, cutting over as `cutover` says; default throttles,
    /// keyevent notifications, which the source must already emit (see
    /// [`MigrationSpec::enable_notifications`]).
    ///
    /// A run id already known to the file resumes that run from its last
    /// checkpoint.
    pub fn new(run_id: impl Into<String>, source_uri: impl Into<String>, cutover: Cutover) -> Self {
        MigrationSpec {
            run_id: run_id.into(),
            source_uri: source_uri.into(),
            password: None,
            cutover,
            settings: Settings::default(),
            channels: Channels::default(),
            enable_notifications: false,
        }
    }

    /// The source's password, used when the URI carries none (the URI's
    /// own wins, as on the command line). Without either, the
    /// `KEYFERRY_SOURCE_PASSWORD` environment variable is used if set.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The throttles and TTL handling to start with; throttles change
    /// while the run goes on through [`MigrationHandle::set_throttles`].
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Which notifications the tracker subscribes to.
    pub fn channels(mut self, channels: Channels) -> Self {
        self.channels = channels;
        self
    }

    /// Lets the tracker turn on the source's `notify-keyspace-events` when
    /// it lacks what the tracker needs (and put the old value back when
    /// the run ends). Off by default: starting then fails with
    /// [`MigrationError::Failed`] naming the missing flags.
    pub fn enable_notifications(mut self, enable: bool) -> Self {
        self.enable_notifications = enable;
        self
    }
}

/// A run as its row in the file says: what `keyferry status` shows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// Running, paused, completed, aborted or failed.
    pub status: RunStatus,
    /// Why it entered that status, when known (e.g. who paused it, the
    /// error it failed with).
    pub reason: Option<String>,
    /// The bulk copy's counters, as of its latest checkpoint.
    pub counters: Counters,
    /// Whether the bulk copy has scanned every database.
    pub scan_done: bool,
    /// Keys written or deleted on the source and not yet applied.
    pub pending_keys: u64,
    /// Keys the dirty applier re-imported.
    pub dirty_keys_applied: u64,
    /// Keys the dirty applier deleted.
    pub dirty_keys_deleted: u64,
    /// Whether a safety sweep is due (the tracker lost events, or the
    /// source was flushed or restarted); the run sweeps before cutting
    /// over.
    pub needs_sweep: bool,
    /// Whether the tracker is subscribed to the source right now.
    pub tracker_connected: bool,
    /// Throttles set at run time (`None`: the start settings apply).
    pub throttles: Throttles,
    /// The run's latest error, if any.
    pub last_error: Option<String>,
}

impl MigrationStatus {
    /// Reads run `run_id`'s row and pending count in one read transaction,
    /// so the two agree; `None` when the file has no such run.
    fn read(store: &Store, run_id: &str) -> Result<Option<MigrationStatus>, StoreError> {
        store.read(|view| {
            let Some(row) = registry::run(view.conn(), run_id)? else {
                return Ok(None);
            };
            Ok(Some(MigrationStatus {
                status: row.status,
                reason: row.status_reason,
                counters: row.counters,
                scan_done: row.scan_done,
                pending_keys: registry::pending_count(view.conn(), run_id)?,
                dirty_keys_applied: row.dirty_keys_applied,
                dirty_keys_deleted: row.dirty_keys_deleted,
                needs_sweep: row.needs_sweep,
                tracker_connected: row.tracker_connected,
                throttles: row.throttles,
                last_error: row.last_error,
            }))
        })
    }

    /// A run the file has not recorded yet: what progress shows until its
    /// first read (which [`Keyferry::start_migration`] waits for).
    fn starting() -> MigrationStatus {
        MigrationStatus {
            status: RunStatus::Running,
            reason: None,
            counters: Counters::default(),
            scan_done: false,
            pending_keys: 0,
            dirty_keys_applied: 0,
            dirty_keys_deleted: 0,
            needs_sweep: false,
            tracker_connected: false,
            throttles: Throttles::default(),
            last_error: None,
        }
    }
}

/// Why a migration could not start, or did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The source URI does not parse.
    #[error("invalid source URI: {0}")]
    InvalidUri(#[from] UriError),
    /// The source's credentials could not be set up (e.g. the CA file
    /// named by `KEYFERRY_SOURCE_CA_FILE` is unreadable).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A migration with this run id is already running in this process.
    #[error("run {0} is already running in this process")]
    AlreadyRunning(String),
    /// The run was aborted ([`MigrationHandle::abort`] or
    /// `keyferry control … abort`).
    #[error("run {0} was aborted")]
    Aborted(String),
    /// The migration failed: the source is unreachable or refused a
    /// command, lacks notifications, is too old for an auto cutover, the
    /// destination failed, the final verification found differences, the
    /// switch command failed…
    #[error(transparent)]
    Failed(#[from] actors::MigrationError),
    /// [`Keyferry::shutdown`] interrupted the migration. Start it again
    /// with the same run id to resume from its last checkpoint.
    #[error("run {0} was interrupted by the engine's shutdown")]
    Interrupted(String),
}

/// Why steering or reading a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The run's status forbids the request (e.g. resuming an aborted
    /// run); nothing was recorded.
    #[error("run {run_id} is {}: {why}", status.as_str())]
    Refused {
        /// The run.
        run_id: String,
        /// Its status.
        status: RunStatus,
        /// What cannot be done, and what to do instead.
        why: &'static str,
    },
    /// The file has no such run any more (someone replaced the file).
    #[error("no run {0} in the database file")]
    UnknownRun(String),
    /// [`MigrationHandle::cutover_now`] on a run with an automatic
    /// cutover.
    #[error("run {0} cuts over automatically")]
    AutomaticCutover(String),
    /// The database file refused the read or write (or the engine was
    /// shut down).
    #[error("database file: {0}")]
    Store(#[from] StoreError),
}

/// A running migration, as [`Keyferry`] tracks it for its shutdown.
struct Running {
    run_id: String,
    /// Ends live sync (the orchestrator's stop signal).
    stop: watch::Sender<bool>,
    /// True while the orchestrator does nothing but wait for
    /// [`MigrationHandle::cutover_now`]: nothing is half-done then, so a
    /// shutdown interrupts it at once rather than after a grace.
    awaiting_cutover: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// The migrations started through one [`Keyferry`]. Dropping it interrupts
/// those still running: their tasks must not outlive the engine whose
/// store they write.
#[derive(Default)]
pub(super) struct Migrations(Mutex<Vec<Running>>);

impl Migrations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        // Every critical section only pushes, retains or drains: a panic
        // inside one cannot leave the list half-updated.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks every running migration to stop, waits up to
    /// [`SHUTDOWN_GRACE`] for them, then interrupts the rest.
    pub(super) async fn stop(&self) {
        let running = std::mem::take(&mut *self.lock());
        for migration in &running {
            migration.stop.send_replace(true);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut migration in running {
            if migration.awaiting_cutover.load(Ordering::Acquire) {
                migration.task.abort();
            }
            if tokio::time::timeout_at(deadline, &mut migration.task)
                .await
                .is_err()
            {
                tracing::warn!(
                    run = %migration.run_id,
                    "interrupting a migration that did not stop in time; it resumes from its last checkpoint"
                );
                migration.task.abort();
                // Its result is the cancellation we asked for.
                let _ = migration.task.await;
            }
        }
    }
}

impl Drop for Migrations {
    fn drop(&mut self) {
        for migration in self.lock().iter() {
            migration.task.abort();
        }
    }
}

impl Keyferry {
    /// Starts migrating a live Redis into this engine's file (see
    /// [`MigrationSpec`] and [`Cutover`]), as `keyferry migrate` does.
    ///
    /// Awaits the run's start: the source answered, its notifications and
    /// (for [`Cutover::Auto`]) version were checked, and the run is
    /// recorded in the file, so [`MigrationHandle::status`] answers at
    /// once. The copy itself goes on in a task of its own; await
    /// [`MigrationHandle::wait`] for its end. Dropping the handle does not
    /// stop it (only [`MigrationHandle::abort`] or [`Keyferry::shutdown`]
    /// do). Cancelling this future leaves the migration starting in the
    /// background, still stopped by [`Keyferry::shutdown`].
    ///
    /// # Errors
    /// - [`MigrationError::InvalidUri`], [`MigrationError::Source`]: the
    ///   URI or credentials are unusable; nothing was started.
    /// - [`MigrationError::AlreadyRunning`]: this run id is running here.
    /// - [`MigrationError::Failed`]: the run could not start (source
    ///   unreachable, notifications off, source too old…).
    pub async fn start_migration(
        &self,
        spec: MigrationSpec,
    ) -> Result<MigrationHandle, MigrationError> {
        let MigrationSpec {
            run_id,
            source_uri,
            password,
            cutover,
            settings,
            channels,
            enable_notifications,
        } = spec;
        let mut uri: SourceUri = source_uri.parse()?;
        uri.password = uri.password.or(password);
        let run = Run {
            id: run_id.clone(),
            source: Source::new(uri, None)?,
            store: self.store().clone(),
        };
        let progress = watch::Sender::new(MigrationStatus::starting());
        let watching = progress.subscribe();
        let stop = watch::Sender::new(false);
        let awaiting_cutover = Arc::new(AtomicBool::new(false));
        let (go, cutover) = match cutover {
            Cutover::Manual => {
                let (go, released) = watch::channel(false);
                let awaiting = Arc::clone(&awaiting_cutover);
                (
                    Some(go),
                    orchestrator::Cutover::Manual(Box::pin(go_ahead(released, awaiting))),
                )
            }
            Cutover::Auto { switch_cmd } => (None, orchestrator::Cutover::Auto { switch_cmd }),
        };
        let config = MigrateConfig {
            run: run.clone(),
            settings,
            limits: FetchLimits::default(),
            channels,
            enable_notifications,
            cutover,
            shutdown: stop.subscribe(),
        };
        let (started_tx, started) = oneshot::channel();
        let (outcome_tx, mut outcome) = oneshot::channel();
        {
            let mut migrations = self.migrations.lock();
            migrations.retain(|m| !m.task.is_finished());
            if migrations.iter().any(|m| m.run_id == run_id) {
                return Err(MigrationError::AlreadyRunning(run_id));
            }
            let publisher = Publisher {
                run,
                progress,
                started: Some(started_tx),
            };
            let task = tokio::spawn(drive(publisher, config, outcome_tx));
            migrations.push(Running {
                run_id: run_id.clone(),
                stop: stop.clone(),
                awaiting_cutover,
                task,
            });
        }
        if started.await.is_err() {
            // The task ended before the run was recorded. A run that
            // completed was recorded, so the outcome is an error — or
            // missing, if shutdown interrupted the task.
            return Err(match (&mut outcome).await {
                Ok(Err(e)) => MigrationError::Failed(e),
                _ => MigrationError::Interrupted(run_id),
            });
        }
        Ok(MigrationHandle {
            progress: watching,
            store: self.store().clone(),
            run_id,
            go,
            stop,
            outcome,
        })
    }
}

/// Resolves when [`MigrationHandle::cutover_now`] releases the manual
/// cutover; `awaiting` is true while it waits.
async fn go_ahead(mut released: watch::Receiver<bool>, awaiting: Arc<AtomicBool>) {
    awaiting.store(true, Ordering::Release);
    if released.wait_for(|&go| go).await.is_err() {
        // The handle was dropped without releasing: that is no go-ahead.
        // The run still ends by an abort or the engine's shutdown.
        std::future::pending::<()>().await;
    }
    awaiting.store(false, Ordering::Release);
}

/// Runs one migration to its end, publishing its progress, then a final
/// status, then the outcome.
async fn drive(
    mut publisher: Publisher,
    config: MigrateConfig,
    outcome: oneshot::Sender<Result<MigrateReport, actors::MigrationError>>,
) {
    // The orchestrator ends by itself on every path, an abort included,
    // and puts the source's notification setting back on its way out.
    let result = watch_over(&mut publisher, config).await;
    publisher.publish();
    // The handle may be gone; the run's end is in the file regardless.
    let _ = outcome.send(result);
}

/// Runs the orchestrator while publishing progress; returns its result.
async fn watch_over(
    publisher: &mut Publisher,
    config: MigrateConfig,
) -> Result<MigrateReport, actors::MigrationError> {
    let migration = orchestrator::migrate(config);
    tokio::pin!(migration);
    loop {
        tokio::select! {
            result = &mut migration => return result,
            () = tokio::time::sleep(publisher.period()) => publisher.publish(),
        }
    }
}

/// Publishes a run's status from its row to the handle's progress.
struct Publisher {
    run: Run,
    progress: watch::Sender<MigrationStatus>,
    /// Told once the run is recorded ([`Keyferry::start_migration`] waits
    /// for it); `None` after.
    started: Option<oneshot::Sender<()>>,
}

impl Publisher {
    /// How long until the next read: [`STARTUP_POLL`] until the run is
    /// recorded, [`PROGRESS_EVERY`] after.
    fn period(&self) -> Duration {
        if self.started.is_some() {
            STARTUP_POLL
        } else {
            PROGRESS_EVERY
        }
    }

    /// Reads the run's status and publishes it if it changed. A failed
    /// read is skipped (logged): the next one retries, and progress is
    /// advisory.
    fn publish(&mut self) {
        match MigrationStatus::read(&self.run.store, &self.run.id) {
            Ok(Some(status)) => {
                self.progress.send_if_modified(|current| {
                    let changed = *current != status;
                    *current = status;
                    changed
                });
                if let Some(started) = self.started.take() {
                    let _ = started.send(());
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(run = %self.run.id, error = %e, "cannot read the run's progress");
            }
        }
    }
}

/// Steers and watches one migration started by
/// [`Keyferry::start_migration`].
///
/// Pause, resume, abort and throttles are recorded in the file's journal
/// (as `keyferry control` does) once the run's state allows them; the
/// run's actors pick them up within a fraction of a second. They work
/// while the run is live; [`MigrationHandle::wait`] consumes the handle.
pub struct MigrationHandle {
    run_id: String,
    store: Store,
    progress: watch::Receiver<MigrationStatus>,
    /// Releases a manual cutover; `None` for an automatic one.
    go: Option<watch::Sender<bool>>,
    stop: watch::Sender<bool>,
    outcome: oneshot::Receiver<Result<MigrateReport, actors::MigrationError>>,
}

impl std::fmt::Debug for MigrationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationHandle")
            .field("run_id", &self.run_id)
            .field("manual_cutover", &self.go.is_some())
            .finish_non_exhaustive()
    }
}

impl MigrationHandle {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Pauses the run where it is: the bulk copy and the appliers wait
    /// (the tracker keeps recording the source's writes). Awaits the
    /// event's commit; the actors notice it within 200 ms. A run already
    /// paused stays so (`Ok`, nothing recorded).
    ///
    /// # Errors
    /// [`ControlError::Refused`] unless the run is running or paused;
    /// [`ControlError::Store`] if the file refused the write.
    pub async fn pause(&self) -> Result<(), ControlError> {
        self.control(ControlRequest::Pause).await
    }

    /// Resumes a paused run. Awaits the event's commit. A running run
    /// stays so (`Ok`, nothing recorded).
    ///
    /// # Errors
    /// [`ControlError::Refused`] for a run that ended (a failed run is
    /// resumed by starting it again with the same run id);
    /// [`ControlError::Store`] if the file refused the write.
    pub async fn resume(&self) -> Result<(), ControlError> {
        self.control(ControlRequest::Resume).await
    }

    /// Aborts the run for good. Awaits the event's commit; every phase of
    /// the migration (a waiting manual cutover included) notices within
    /// about 200 ms and [`MigrationHandle::wait`] then answers
    /// [`MigrationError::Aborted`]. Aborting an aborted run does nothing.
    /// The data already copied stays in the file.
    ///
    /// # Errors
    /// [`ControlError::Refused`] for a completed run;
    /// [`ControlError::Store`] if the file refused the write.
    pub async fn abort(&self) -> Result<(), ControlError> {
        self.control(ControlRequest::Abort).await
    }

    /// Changes the throttles given (`Some`) while the run goes on; the
    /// others keep their value. Awaits the event's commit; the actors use
    /// the new values from their next batch.
    ///
    /// # Errors
    /// [`ControlError::Refused`] for a run that ended or a throttle of 0;
    /// [`ControlError::Store`] if the file refused the write.
    pub async fn set_throttles(&self, throttles: Throttles) -> Result<(), ControlError> {
        self.control(ControlRequest::Set(throttles)).await
    }

    /// The run's status now, read from the file (a read-only connection,
    /// which never waits for the writer).
    ///
    /// # Errors
    /// [`ControlError::Store`] if the read failed (or the engine was shut
    /// down); [`ControlError::UnknownRun`] if the run vanished from it.
    pub fn status(&self) -> Result<MigrationStatus, ControlError> {
        MigrationStatus::read(&self.store, &self.run_id)?
            .ok_or_else(|| ControlError::UnknownRun(self.run_id.clone()))
    }

    /// The run's status, refreshed every 250 ms while the migration runs
    /// (a new value is only published when something changed), then once
    /// more when it ends. After that final value the sender is gone:
    /// [`watch::Receiver::changed`] answers an error, which is the cue to
    /// call [`MigrationHandle::wait`]. Each call gives an independent
    /// receiver.
    pub fn progress(&self) -> watch::Receiver<MigrationStatus> {
        self.progress.clone()
    }

    /// Releases a [`Cutover::Manual`]: call it once writes to the source
    /// are frozen. The run then fences the tracker, applies the final
    /// delta, verifies a sample and completes; [`MigrationHandle::wait`]
    /// reports it. Calling it before the run caught up means "cut over as
    /// soon as it has"; calling it again does nothing.
    ///
    /// # Errors
    /// [`ControlError::AutomaticCutover`] for a [`Cutover::Auto`] run.
    pub fn cutover_now(&self) -> Result<(), ControlError> {
        let go = self
            .go
            .as_ref()
            .ok_or_else(|| ControlError::AutomaticCutover(self.run_id.clone()))?;
        go.send_replace(true);
        Ok(())
    }

    /// Ends the live sync of a [`Cutover::Auto`] run without a switch
    /// command: the applier stops, then the tracker, and
    /// [`MigrationHandle::wait`] returns the report. Called before the
    /// cutover, the live sync ends as soon as it begins; for other runs it
    /// does nothing.
    pub fn stop_live_sync(&self) {
        self.stop.send_replace(true);
    }

    /// Awaits the end of the migration and reports it: for a completed
    /// run, how long source writes were frozen, the final delta, sample
    /// mismatches and whether the switch command ran. Cancelling this
    /// future does not stop the migration (but the report is lost).
    ///
    /// # Errors
    /// [`MigrationError::Aborted`] if the run was aborted;
    /// [`MigrationError::Interrupted`] if [`Keyferry::shutdown`] stopped
    /// it; [`MigrationError::Failed`] for anything else that ended it.
    pub async fn wait(self) -> Result<MigrateReport, MigrationError> {
        match self.outcome.await {
            Ok(Ok(report)) => Ok(report),
            // The orchestrator reports an abort as whichever step noticed
            // it failing; the run's status says what happened.
            Ok(Err(_)) if self.progress.borrow().status == RunStatus::Aborted => {
                Err(MigrationError::Aborted(self.run_id))
            }
            Ok(Err(e)) => Err(MigrationError::Failed(e)),
            Err(_) => Err(MigrationError::Interrupted(self.run_id)),
        }
    }

    /// Records `request` through the function `keyferry control` uses.
    async fn control(&self, request: ControlRequest) -> Result<(), ControlError> {
        let Controlled { was, verdict } =
            actors::control(&self.store, &self.run_id, request, REASON)
                .await?
                .ok_or_else(|| ControlError::UnknownRun(self.run_id.clone()))?;
        match verdict {
            ControlVerdict::Recorded | ControlVerdict::Unchanged => Ok(()),
            ControlVerdict::Refused(why) => Err(ControlError::Refused {
                run_id: self.run_id.clone(),
                status: was,
                why,
            }),
        }
    }
}

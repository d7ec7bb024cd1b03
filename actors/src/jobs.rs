//! The job dequeuer actor: the part of a long-running process (`keyferry
//! serve`, an embedding program) that keeps the journal's job queue
//! moving.
//!
//! Every tick (250 ms by default) it
//! 1. reclaims expired leases (`keyferry_journal::jobs::reclaim_expired_in`):
//!    a step whose process died is queued again;
//! 2. sets the `keyferry_jobs{state}` gauge from the jobs per status;
//! 3. when it runs migration steps and none is running here, takes the
//!    next due step job of the [`QUEUE`] that nobody holds and runs it
//!    ([`crate::migration::steps`]), one at a time, in a task of its own
//!    so that ticks go on while it runs. A step taken over after a crash
//!    resumes from its run's checkpoint.
//!
//! **Missing credentials.** Jobs store source URIs without passwords; the
//! process that runs one brings its own ([`DequeuerOptions::source_password`],
//! else `KEYFERRY_SOURCE_PASSWORD`). Before leasing a job the dequeuer logs
//! in to its source; when the source answers `NOAUTH` or `WRONGPASS`, the
//! job is *not leased*: it stays queued, with its attempts untouched, for a
//! process that has the credential (or for this one once it has it, looked
//! at again every [`PROBE_AGAIN`]). Why is said once per job: a warning
//! recorded on the run (`keyferry status` shows it) and a log line. Not
//! leasing, rather than failing the attempt, keeps a process without the
//! credential from using up a job's attempts and dead-lettering it.
//! A source that cannot be reached at all is different: the step is run
//! and fails, and the queue's backoff retries it.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use keyferry_engine::{Store, StoreError};
use keyferry_journal::jobs::{self, Job, JobError, JobStatus};
use keyferry_journal::{Severity, now_ms};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::migration::Run;
use crate::migration::steps::{self, Lease, QUEUE, StepSpec, Worker, lease_in};
use crate::source::Source;
use crate::supervisor::ChildSpec;

/// The child's name in logs, journal events and metric labels.
pub const NAME: &str = "job_dequeuer";

/// How often the dequeuer looks at the queue by default.
pub const DEFAULT_TICK: Duration = Duration::from_millis(250);

/// How long a job left queued (no credential, unreadable payload) is left
/// alone before it is looked at again.
pub const PROBE_AGAIN: Duration = Duration::from_secs(5);

/// Most expired leases reclaimed, and most queued jobs considered, per
/// tick: bounded work, the rest waits for the next tick.
const PER_TICK: usize = 100;

/// How long a stopping dequeuer waits for its running step to give its
/// lease back (the supervisor kills it after 10 s in any case).
const STEP_STOP_TIMEOUT: Duration = Duration::from_secs(8);

/// How a dequeuer works.
#[derive(Clone)]
pub struct DequeuerOptions {
    /// Whether it runs migration steps (otherwise it only reclaims expired
    /// leases and reports metrics).
    pub run_migration_steps: bool,
    /// How often it looks at the queue.
    pub tick: Duration,
    /// Who it runs steps as.
    pub worker: Worker,
    /// The password for job sources whose URI has none; `None` falls back
    /// to `KEYFERRY_SOURCE_PASSWORD`.
    pub source_password: Option<String>,
}

impl Default for DequeuerOptions {
    /// Runs migration steps as [`Worker::this_process`], ticking every
    /// [`DEFAULT_TICK`], with the password from the environment.
    fn default() -> Self {
        DequeuerOptions {
            run_migration_steps: true,
            tick: DEFAULT_TICK,
            worker: Worker::this_process(),
            source_password: None,
        }
    }
}

impl std::fmt::Debug for DequeuerOptions {
    // By hand: the password must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DequeuerOptions")
            .field("run_migration_steps", &self.run_migration_steps)
            .field("tick", &self.tick)
            .field("worker", &self.worker)
            .field(
                "source_password",
                &self.source_password.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// The supervisor's child spec for a dequeuer working on `store`.
pub fn child_spec(store: Store, options: DequeuerOptions) -> ChildSpec {
    ChildSpec::new(NAME, move |spawner| {
        let args = (store.clone(), options.clone());
        async move { spawner.spawn(Dequeuer, args).await }
    })
}

/// The dequeuer actor.
pub struct Dequeuer;

/// Its only message: look at the queue.
pub struct Tick;

/// Its state.
pub struct State {
    store: Store,
    options: DequeuerOptions,
    /// The step running here, if any.
    running: Option<Running>,
    /// Jobs left queued on purpose, and when to look at them again.
    parked: HashMap<String, Instant>,
}

/// A step job running in its own task.
struct Running {
    job_id: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Actor for Dequeuer {
    type Msg = Tick;
    type State = State;
    type Arguments = (Store, DequeuerOptions);

    async fn pre_start(
        &self,
        myself: ActorRef<Tick>,
        (store, options): (Store, DequeuerOptions),
    ) -> Result<State, ActorProcessingErr> {
        myself.send_message(Tick)?;
        Ok(State {
            store,
            options,
            running: None,
            parked: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Tick>,
        _: Tick,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        // Reclaiming is a write, and the writer is shared with everything
        // else: only when some job is leased at all (rarely, on an idle
        // server) is there a lease that could have run out.
        if state.report()? > 0 {
            state.reclaim().await?;
        }
        if state.options.run_migration_steps {
            state.running.take_if(|r| r.task.is_finished());
            if state.running.is_none() {
                state.start_next().await?;
            }
        }
        myself.send_after(state.options.tick, || Tick);
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<Tick>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(running) = state.running.take() {
            // The step gives its lease back when stopped, so another
            // process (or this one, restarted) can take it at once.
            running.stop.send_replace(true);
            if tokio::time::timeout(STEP_STOP_TIMEOUT, running.task)
                .await
                .is_err()
            {
                tracing::warn!(job = %running.job_id, "the step did not stop in time; its lease will expire");
            }
        }
        Ok(())
    }
}

impl State {
    /// Queues again the jobs whose lease ran out.
    async fn reclaim(&self) -> Result<(), StoreError> {
        let reclaimed = self
            .store
            .write(|tx| Ok(jobs::reclaim_expired_in(tx.conn(), now_ms(), PER_TICK)?))
            .await?;
        for job_id in reclaimed {
            tracing::info!(job = %job_id, "reclaimed a job whose lease expired");
        }
        Ok(())
    }

    /// Sets the `keyferry_jobs{state}` gauge; returns how many jobs are
    /// leased.
    fn report(&self) -> Result<u64, StoreError> {
        let counts = self
            .store
            .read(|view| Ok(jobs::jobs_by_status(view.conn())?))?;
        let mut leased = 0;
        for (status, count) in counts {
            metrics::gauge!("keyferry_jobs", "state" => status.as_str()).set(count as f64);
            if status == JobStatus::Leased {
                leased = count;
            }
        }
        Ok(leased)
    }

    /// Starts the next due step job that nobody holds and this process can
    /// run, if any.
    async fn start_next(&mut self) -> Result<(), StoreError> {
        let queued = self.store.read(|view| {
            Ok(jobs::list(
                view.conn(),
                Some(QUEUE),
                Some(JobStatus::Queued),
                PER_TICK,
            )?)
        })?;
        self.parked
            .retain(|job_id, _| queued.iter().any(|j| &j.job_id == job_id));
        let now = now_ms();
        let mut due: Vec<Job> = queued.into_iter().filter(|j| j.run_at_ms <= now).collect();
        // The queue's own dequeue order.
        due.sort_by_key(|j| (Reverse(j.priority), j.run_at_ms, j.enqueued_seq));
        for job in due {
            if self
                .parked
                .get(&job.job_id)
                .is_some_and(|until| Instant::now() < *until)
            {
                continue;
            }
            let Some((spec, source)) = self.runnable(&job).await? else {
                continue;
            };
            if self.start(&job, spec, source).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The step `job` describes and its source, or `None` (the job parked)
    /// when this process cannot run it.
    async fn runnable(&mut self, job: &Job) -> Result<Option<(StepSpec, Source)>, StoreError> {
        let spec = match StepSpec::from_payload(&job.payload) {
            Ok(spec) => spec,
            Err(e) => {
                self.park(
                    job,
                    || tracing::warn!(job = %job.job_id, "left queued: {e}"),
                );
                return Ok(None);
            }
        };
        let source = match spec.source(self.options.source_password.as_deref()) {
            Ok(source) => source,
            Err(e) => {
                self.park(
                    job,
                    || tracing::warn!(job = %job.job_id, "left queued: {e}"),
                );
                return Ok(None);
            }
        };
        let Some(refusal) = credential_refused(&source).await else {
            self.parked.remove(&job.job_id);
            return Ok(Some((spec, source)));
        };
        if self.park(job, || ()) {
            let message = format!(
                "{} job {} stays queued: this process cannot log in to the source {} ({refusal}); \
                 the job keeps no password, so run it where the credential is (set {})",
                spec.kind,
                job.job_id,
                source.redacted(),
                crate::source::PASSWORD_ENV,
            );
            let run = Run {
                id: spec.run_id.clone(),
                source,
                store: self.store.clone(),
            };
            // `record_error` logs it too.
            if let Err(e) = run
                .record_error(NAME, Severity::Warning, message, None)
                .await
            {
                tracing::warn!(job = %job.job_id, error = %e, "could not record why a job stays queued");
            }
        }
        Ok(None)
    }

    /// Leaves `job` queued until [`PROBE_AGAIN`] from now; runs `first`
    /// and returns `true` the first time.
    fn park(&mut self, job: &Job, first: impl FnOnce()) -> bool {
        let until = Instant::now() + PROBE_AGAIN;
        let fresh = self.parked.insert(job.job_id.clone(), until).is_none();
        if fresh {
            first();
        }
        fresh
    }

    /// Leases `job` and runs its step in a task. Returns `false` when
    /// another process leased it first.
    async fn start(
        &mut self,
        job: &Job,
        spec: StepSpec,
        source: Source,
    ) -> Result<bool, StoreError> {
        let (job_id, worker) = (job.job_id.clone(), self.options.worker.clone());
        let leased = self
            .store
            .write(move |tx| Ok(lease_in(tx.conn(), &job_id, &worker, now_ms())?))
            .await;
        let leased = match leased {
            Ok(leased) => leased,
            Err(StoreError::Job(JobError::Held { .. } | JobError::NotLeasable { .. })) => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let worker = self.options.worker.clone();
        let lease = Lease::new(&leased, &worker.id);
        let store = self.store.clone();
        let (stop, stopped) = watch::channel(false);
        tracing::info!(job = %leased.job_id, run = %spec.run_id, kind = %spec.kind, attempt = leased.attempts, "running a step job");
        let task = tokio::spawn(async move {
            let job_id = lease.job_id().to_string();
            match steps::execute(&store, source, &spec, lease, &worker, stopped).await {
                Ok(outcome) => tracing::info!(job = %job_id, ?outcome, "step job done"),
                Err(e) => tracing::warn!(job = %job_id, "step job ended: {e}"),
            }
        });
        self.running = Some(Running {
            job_id: leased.job_id,
            stop,
            task,
        });
        Ok(true)
    }
}

/// Logs in to `source` (connect and `PING`) and returns the source's
/// refusal when it wants a credential this process lacks (`NOAUTH`,
/// `WRONGPASS`). Any other failure is the step's to meet and retry.
async fn credential_refused(source: &Source) -> Option<String> {
    let answered = async {
        let mut conn = source.connect(source.default_db()).await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| source.command_error(e))
    }
    .await;
    let error = answered.err()?.to_string();
    // The server's refusals, and the client's own AUTH failure
    // (`ErrorKind::AuthenticationFailed`).
    ["NOAUTH", "WRONGPASS", "AuthenticationFailed"]
        .iter()
        .any(|sign| error.contains(sign))
        .then_some(error)
}

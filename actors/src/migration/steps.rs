//! Migration steps (bulk, apply-dirty, sweep, verify) run as jobs of the
//! journal's job queue (`keyferry_journal::jobs`), so that one step of a
//! run is executed by one process at a time, and a step whose process died
//! is taken over and resumes from its run's checkpoint.
//!
//! A step is claimed ([`run_step`], what `keyferry bulk` and `keyferry
//! apply-dirty` do) in one write transaction: its job is enqueued with the
//! dedupe key `<kind>:<run_id>` — which finds the job already queued or
//! leased for that step, if any — and leased to the worker; a job leased
//! by a live worker is refused with [`StepError::Held`], naming it. A job
//! nobody holds is taken: one that waits after a crash, or whose holder's
//! lease expired, or whose holder ran on this host and is gone. The job
//! dequeuer ([`crate::jobs`]) takes queued jobs the same way.
//!
//! While the step runs, a heartbeat renews its lease every third of the
//! lease, and every write of the step checks in its own transaction that
//! the lease is still held at its epoch (fencing, see the `batch` module):
//! a worker that stalled past its lease and was taken over writes nothing
//! more, and stops as soon as it finds out ([`StepError::LeaseLost`]).
//!
//! How the job is settled:
//!
//! | the step …                       | the job                                  |
//! |----------------------------------|------------------------------------------|
//! | finished                         | acked                                    |
//! | found its run aborted            | acked (nothing left to do), `Aborted`    |
//! | failed                           | failed: retried after a backoff, dead-lettered after [`MAX_ATTEMPTS`] |
//! | was stopped (signal, shutdown)   | lease given back, no attempt used up     |
//! | lost its lease                   | left to its new holder                   |

mod lease;
mod spec;
#[cfg(test)]
mod tests;
mod worker;

use std::future::Future;
use std::sync::Arc;

use keyferry_engine::{Store, StoreError, Write};
use keyferry_journal::jobs::{self, Job, JobError, JobStatus};
use keyferry_journal::{Counters, RunStatus, Severity, now_ms, registry};
use tokio::sync::watch;

use super::applier::{self, Applied, ApplierConfig, Mode};
use super::bulk::{self, BulkConfig};
use super::sweep::{SweepReport, sweep_fenced};
use super::{MigrationError, Run};
use crate::source::{FetchLimits, Source};
use crate::supervisor::{ChildSpec, RestartPolicy, Supervisor};
use crate::verify::{VerifyOptions, VerifyReport, verify};

pub(crate) use lease::{Lease, lease_in};
pub use spec::{PAYLOAD_VERSION, PayloadError, SpecSourceError, StepKind, StepSettings, StepSpec};
pub use worker::{DEFAULT_LEASE, LEASE_ENV, Worker};

/// The job queue migration steps wait in.
pub const QUEUE: &str = "migration";

/// Attempts a step job gets before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;

/// What a finished step did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The bulk copy's counters.
    Bulk(Counters),
    /// The dirty keys applied.
    Applied(Applied),
    /// What the sweep found.
    Swept(SweepReport),
    /// The verification's report (mismatches are in it, not an error);
    /// boxed, being many times the size of the others.
    Verified(Box<VerifyReport>),
}

/// Why a step did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// Another live worker holds the step's lease; nothing was written.
    #[error(
        "{kind} of run {run_id} is running in {holder} (lease until {}); wait for it, or let its lease expire",
        worker::clock(*.deadline_ms)
    )]
    Held {
        /// The step.
        kind: StepKind,
        /// Its run.
        run_id: String,
        /// The worker holding it (`hostname:pid`).
        holder: String,
        /// When its lease ends unless renewed (ms since the epoch).
        deadline_ms: i64,
    },
    /// The step refuses to start, for the reason given (a bulk copy with a
    /// checkpoint and no resume, a run the file does not have); nothing
    /// was written.
    #[error("{0}")]
    Refused(String),
    /// Another worker took the job over (this one stalled past its lease):
    /// this one stopped, and none of its writes after that committed.
    #[error(
        "{kind} of run {run_id} lost its lease ({reason}): another worker took it over, and this one wrote nothing more"
    )]
    LeaseLost {
        /// The step.
        kind: StepKind,
        /// Its run.
        run_id: String,
        /// What the fencing check found.
        reason: String,
    },
    /// The step was stopped (a signal, a shutdown) and gave its lease
    /// back; what it committed stays.
    #[error(
        "{kind} of run {run_id} was interrupted; run the same command{} to continue it",
        if *.kind == StepKind::Bulk { " with --resume" } else { "" }
    )]
    Interrupted {
        /// The step.
        kind: StepKind,
        /// Its run.
        run_id: String,
    },
    /// The run was aborted (`keyferry control … abort`); its job is done.
    #[error("run {0} was aborted")]
    Aborted(String),
    /// The attempt failed; the job is queued again or dead-lettered.
    #[error(
        "{kind} of run {run_id} failed (attempt {attempt} of {max_attempts}): {error}; {}",
        retry_note(*.retry_at_ms)
    )]
    Failed {
        /// The step.
        kind: StepKind,
        /// Its run.
        run_id: String,
        /// What went wrong.
        error: String,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// Attempts allowed.
        max_attempts: u32,
        /// When the job may be retried (ms since the epoch); `None` once
        /// it was dead-lettered.
        retry_at_ms: Option<i64>,
    },
    /// The destination refused a read or write of the job itself.
    #[error("destination: {0}")]
    Store(#[from] StoreError),
}

/// What happens after a failed attempt, for [`StepError::Failed`].
fn retry_note(retry_at_ms: Option<i64>) -> String {
    match retry_at_ms {
        Some(at) => format!("it is queued again for {}", worker::clock(at)),
        None => "it is out of attempts and dead-lettered".to_string(),
    }
}

/// Enqueues `spec` as a job nobody holds yet (for a job dequeuer to run),
/// or finds the step's job already queued or leased (compare `job_id`s).
pub fn enqueue(store: &Store, spec: &StepSpec) -> Write<Job> {
    let new = spec.new_job(now_ms());
    store.write(move |tx| Ok(jobs::enqueue_in(tx.conn(), new)?))
}

/// Claims the step `spec` for `worker` (see the module docs) and runs it
/// with `source`, until it ends or `stop` turns `true` (a closed `stop`
/// never stops it).
pub async fn run_step(
    store: &Store,
    source: Source,
    spec: StepSpec,
    worker: &Worker,
    stop: watch::Receiver<bool>,
) -> Result<StepOutcome, StepError> {
    let lease = claim(store, &spec, worker).await?;
    execute(store, source, &spec, lease, worker, stop).await
}

/// Enqueues (or finds) the step's job and leases it to `worker`, then
/// checks that the step may start and records its explicit throttles —
/// all in one transaction.
async fn claim(store: &Store, spec: &StepSpec, worker: &Worker) -> Result<Lease, StepError> {
    let new = spec.new_job(now_ms());
    let (admitted, claimant) = (spec.clone(), worker.clone());
    let destination = store.path().display().to_string();
    let claimed = store
        .write(move |tx| {
            let conn = tx.conn();
            let job = jobs::enqueue_in(conn, new)?;
            let job = lease_in(conn, &job.job_id, &claimant, now_ms())?;
            // Admission comes after the lease so that a running step is
            // reported as running, not with the refusal a restart would
            // get. A refusal must undo the enqueue and the lease, which
            // only an error does: it travels as `Cancelled`, the one
            // error this write makes of its own.
            let row = registry::run(conn, &admitted.run_id)?;
            admitted
                .admit(row.as_ref(), &destination)
                .map_err(StoreError::Cancelled)?;
            let throttles: Vec<_> = admitted
                .settings
                .event(&admitted.run_id)
                .into_iter()
                .collect();
            tx.append_events(&throttles)?;
            Ok(job)
        })
        .await;
    match claimed {
        Ok(job) => Ok(Lease::new(&job, &worker.id)),
        Err(StoreError::Job(JobError::Held {
            holder,
            deadline_ms,
            ..
        })) => Err(StepError::Held {
            kind: spec.kind,
            run_id: spec.run_id.clone(),
            holder,
            deadline_ms,
        }),
        Err(StoreError::Cancelled(reason)) => Err(StepError::Refused(reason)),
        Err(e) => Err(e.into()),
    }
}

/// Runs the step `spec` under `lease` (already held by `worker`): keeps the
/// lease alive, runs the step's actor or function, and settles the job
/// (see the module docs).
pub(crate) async fn execute(
    store: &Store,
    source: Source,
    spec: &StepSpec,
    lease: Lease,
    worker: &Worker,
    stop: watch::Receiver<bool>,
) -> Result<StepOutcome, StepError> {
    let heartbeat = lease.keep_alive(store.clone(), worker.lease);
    let run = Run {
        id: spec.run_id.clone(),
        source,
        store: store.clone(),
    };
    let mut halt = Halt {
        stop,
        lease: lease.clone(),
    };
    let ended = perform(&run, spec, &lease, &mut halt).await;
    heartbeat.abort();
    settle(store, spec, &lease, worker, ended).await
}

/// How a step ended early.
enum Ended {
    /// Asked to stop.
    Stopped,
    /// Its lease was found lost.
    LeaseLost(String),
    /// Its run was aborted.
    Aborted,
    /// It failed.
    Failed(String),
}

impl From<MigrationError> for Ended {
    fn from(e: MigrationError) -> Self {
        match e {
            MigrationError::Aborted(_) => Ended::Aborted,
            other => Ended::Failed(other.to_string()),
        }
    }
}

impl From<StoreError> for Ended {
    fn from(e: StoreError) -> Self {
        Ended::Failed(format!("destination: {e}"))
    }
}

/// What stops a running step besides its own end: `stop`, or its lease
/// found lost.
struct Halt {
    stop: watch::Receiver<bool>,
    lease: Lease,
}

impl Halt {
    /// Resolves once the step must stop, with why.
    async fn wait(&mut self) -> Ended {
        let stopped = async {
            // A closed channel can never say stop.
            if self.stop.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            reason = self.lease.lost() => Ended::LeaseLost(reason),
            () = stopped => Ended::Stopped,
        }
    }

    /// Runs `work` unless the step must stop first (dropping `work`, whose
    /// writes are whole transactions).
    async fn race<T, E: Into<Ended>>(
        &mut self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Ended> {
        tokio::select! {
            result = work => result.map_err(Into::into),
            ended = self.wait() => Err(ended),
        }
    }
}

/// The step's own work.
async fn perform(
    run: &Run,
    spec: &StepSpec,
    lease: &Lease,
    halt: &mut Halt,
) -> Result<StepOutcome, Ended> {
    let settings = spec.settings.settings();
    let limits = FetchLimits::default();
    match spec.kind {
        StepKind::Bulk => {
            start_bulk(run, lease).await?;
            let done = Arc::new(watch::Sender::new(None));
            let config = BulkConfig {
                run: run.clone(),
                settings,
                limits,
                done: Arc::clone(&done),
            };
            let child = bulk::leased_child_spec(config, lease.clone());
            supervise(run, child, bulk::NAME, &done, halt)
                .await
                .map(StepOutcome::Bulk)
        }
        StepKind::ApplyDirty => {
            let done = Arc::new(watch::Sender::new(None));
            let config = ApplierConfig {
                run: run.clone(),
                settings,
                limits,
                mode: Mode::UntilEmpty,
                done: Arc::clone(&done),
            };
            let child = applier::leased_child_spec(config, lease.clone());
            supervise(run, child, applier::NAME, &done, halt)
                .await
                .map(StepOutcome::Applied)
        }
        StepKind::Sweep => halt
            .race(sweep_fenced(run, &settings, Some(lease.clone())))
            .await
            .map(StepOutcome::Swept),
        StepKind::Verify => halt
            .race(verified(run, spec.sample_percent))
            .await
            .map(|report| StepOutcome::Verified(Box::new(report))),
    }
}

/// Records the start (or resumption) of the bulk copy, fenced — unless
/// the run was aborted meanwhile: a job taken over after a crash must not
/// bring an aborted run back to life.
async fn start_bulk(run: &Run, lease: &Lease) -> Result<(), Ended> {
    let (lease, run_id, started) = (lease.clone(), run.id.clone(), bulk::started(run));
    let resumed = run
        .store
        .write(move |tx| {
            lease.check_in(tx.conn())?;
            let row = registry::run(tx.conn(), &run_id)?;
            if row.is_some_and(|row| row.status == RunStatus::Aborted) {
                return Ok(false);
            }
            tx.append_events(&[started])?;
            Ok(true)
        })
        .await?;
    if resumed { Ok(()) } else { Err(Ended::Aborted) }
}

/// Verifies `sample_percent` of the run's keys. Mismatches are recorded as
/// a warning on the run: a verification run as a job has nobody reading
/// its report but `keyferry status`.
async fn verified(run: &Run, sample_percent: f64) -> Result<VerifyReport, Ended> {
    let report = verify(
        &run.source,
        &run.store,
        sample_percent,
        &VerifyOptions::default(),
    )
    .await
    .map_err(|e| Ended::Failed(e.to_string()))?;
    if !report.is_clean() {
        let message = format!(
            "verify found {} mismatch(es) in a {}% sample",
            report.mismatches, report.sample_percent
        );
        run.record_error("verify", Severity::Warning, message, None)
            .await?;
    }
    Ok(report)
}

/// Runs one actor under a supervisor until it reports on `done`, the
/// supervisor gives up on it, or `halt` stops it; then stops the
/// supervisor (the actor finishes the message it is handling).
async fn supervise<T: Clone>(
    run: &Run,
    child: ChildSpec,
    name: &str,
    done: &watch::Sender<Option<Result<T, String>>>,
    halt: &mut Halt,
) -> Result<T, Ended> {
    let supervisor = Supervisor::start(
        vec![child],
        RestartPolicy::default(),
        run.store.journal().clone(),
    )
    .await
    .map_err(|e| Ended::Failed(e.to_string()))?;
    let mut rx = done.subscribe();
    let outcome = loop {
        if let Some(outcome) = rx.borrow_and_update().clone() {
            // The scanner and the applier report only an aborted run as an
            // error here; any other failure is the supervisor's to retry.
            break outcome.map_err(|_| Ended::Aborted);
        }
        if let Some(failed) = supervisor
            .failed_actors()
            .into_iter()
            .find(|a| a.name == name)
        {
            break Err(Ended::Failed(format!(
                "{name} failed for good: {}",
                failed.reason
            )));
        }
        tokio::select! {
            _ = rx.changed() => {}
            ended = halt.wait() => break Err(ended),
            // The supervisor's give-ups are not signalled: look again.
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
        }
    };
    supervisor.stop().await;
    outcome
}

/// Settles the job after the step `ended` (the module's table).
async fn settle(
    store: &Store,
    spec: &StepSpec,
    lease: &Lease,
    worker: &Worker,
    ended: Result<StepOutcome, Ended>,
) -> Result<StepOutcome, StepError> {
    let (kind, run_id) = (spec.kind, spec.run_id.clone());
    let lost = |reason: String| StepError::LeaseLost {
        kind,
        run_id: run_id.clone(),
        reason,
    };
    // Whatever the step made of it, a lost lease means the job is someone
    // else's now: nothing more is written for it here.
    if let Some(reason) = lease.lost_reason() {
        return Err(lost(reason));
    }
    // A settlement refused by the fencing check is a lost lease too.
    let refused = |e: StoreError| lease.lost_reason().map_or(StepError::Store(e), lost);
    match ended {
        Ok(outcome) => {
            lease.ack(store).await.map_err(refused)?;
            Ok(outcome)
        }
        Err(Ended::Aborted) => {
            lease.ack(store).await.map_err(refused)?;
            Err(StepError::Aborted(run_id.clone()))
        }
        Err(Ended::Stopped) => {
            lease.release(store).await.map_err(refused)?;
            Err(StepError::Interrupted {
                kind,
                run_id: run_id.clone(),
            })
        }
        Err(Ended::LeaseLost(reason)) => Err(lost(reason)),
        Err(Ended::Failed(error)) => {
            let job = lease
                .fail(store, worker, error.clone())
                .await
                .map_err(refused)?;
            Err(StepError::Failed {
                kind,
                run_id: run_id.clone(),
                error,
                attempt: job.attempts,
                max_attempts: job.max_attempts,
                retry_at_ms: (job.status == JobStatus::Queued).then_some(job.run_at_ms),
            })
        }
    }
}

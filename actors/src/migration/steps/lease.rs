//! A step's job lease: the fencing token its writes carry, the heartbeat
//! that renews it, and how the step settles its job (ack, fail, or give the
//! lease back).
//!
//! Whoever first learns that the lease is lost — a heartbeat, or a write's
//! fencing check — marks it lost on the shared [`Lease`], and the step
//! stops: nothing it would still write could commit.

use std::sync::Arc;
use std::time::Duration;

use keyferry_engine::{Store, StoreError};
use keyferry_journal::jobs::{self, Job, JobError};
use keyferry_journal::now_ms;
use rusqlite::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::worker::{self, Worker};

/// The lease a step runs under: its job, its holder, and the epoch that
/// fences its writes. Cheap to clone; the clones share whether it was
/// found lost.
///
/// Public only because the scanner's and applier's actor arguments carry
/// it; nothing outside this crate can make one.
#[derive(Clone)]
pub struct Lease(Arc<Inner>);

struct Inner {
    job_id: String,
    worker: String,
    epoch: u64,
    /// Why the lease was lost, once it was.
    lost: watch::Sender<Option<String>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Inner {
            job_id,
            worker,
            epoch,
            ..
        } = &*self.0;
        write!(f, "Lease({job_id} by {worker} at epoch {epoch})")
    }
}

impl Lease {
    /// The lease `worker` holds on `job`, as leasing returned it.
    pub(crate) fn new(job: &Job, worker: &str) -> Lease {
        Lease(Arc::new(Inner {
            job_id: job.job_id.clone(),
            worker: worker.to_string(),
            epoch: job.epoch,
            lost: watch::Sender::new(None),
        }))
    }

    /// The leased job.
    pub(crate) fn job_id(&self) -> &str {
        &self.0.job_id
    }

    /// The fencing check, inside the caller's write transaction: fails
    /// with [`JobError::LeaseLost`] (and marks the lease lost) once the
    /// job is no longer leased to this worker at this epoch.
    pub(crate) fn check_in(&self, conn: &Connection) -> Result<(), StoreError> {
        let Inner {
            job_id,
            worker,
            epoch,
            ..
        } = &*self.0;
        jobs::check_lease_in(conn, job_id, worker, *epoch).map_err(|e| self.refused(e))
    }

    /// Marks the lease lost when `error` says so, and hands it on.
    fn refused(&self, error: JobError) -> StoreError {
        if matches!(
            error,
            JobError::LeaseLost { .. } | JobError::NotFound { .. }
        ) {
            self.0.lost.send_replace(Some(error.to_string()));
        }
        StoreError::Job(error)
    }

    /// Why the lease was lost, if it was.
    pub(crate) fn lost_reason(&self) -> Option<String> {
        self.0.lost.borrow().clone()
    }

    /// Resolves once the lease is lost, with why.
    pub(crate) async fn lost(&self) -> String {
        let mut rx = self.0.lost.subscribe();
        // The sender lives in `self`, so the channel never closes here.
        let reason = rx
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    }

    /// Runs `op` on the leased job in a write transaction of `store`.
    async fn write<R: Send + 'static>(
        &self,
        store: &Store,
        op: impl FnOnce(&Connection, &str, &str, u64) -> Result<R, JobError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let lease = self.clone();
        store
            .write(move |tx| {
                let Inner {
                    job_id,
                    worker,
                    epoch,
                    ..
                } = &*lease.0;
                op(tx.conn(), job_id, worker, *epoch).map_err(|e| lease.refused(e))
            })
            .await
    }

    /// Starts renewing the lease for `length` every third of it, until the
    /// returned task is aborted or the lease is found lost. A heartbeat
    /// that fails for another reason (a busy file) is retried at the next
    /// tick: the lease outlives two of them.
    pub(crate) fn keep_alive(&self, store: Store, length: Duration) -> JoinHandle<()> {
        let lease = self.clone();
        let ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval((length / 3).max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let beat = lease
                    .write(&store, move |conn, job_id, worker, epoch| {
                        jobs::heartbeat_in(conn, job_id, worker, epoch, ms, now_ms())
                    })
                    .await;
                match beat {
                    Ok(_) => {}
                    Err(_) if lease.lost_reason().is_some() => return,
                    Err(e) => {
                        tracing::warn!(job = %lease.job_id(), error = %e, "lease heartbeat failed; retrying at the next one")
                    }
                }
            }
        })
    }

    /// Marks the job done.
    pub(crate) async fn ack(&self, store: &Store) -> Result<(), StoreError> {
        self.write(store, jobs::ack_in).await
    }

    /// Records that this attempt failed with `error`: the job is queued
    /// again after `worker`'s backoff, or dead-lettered when out of
    /// attempts. Returns the job after it.
    pub(crate) async fn fail(
        &self,
        store: &Store,
        worker: &Worker,
        error: String,
    ) -> Result<Job, StoreError> {
        let backoff = worker.backoff;
        self.write(store, move |conn, job_id, worker, epoch| {
            jobs::fail_in(conn, job_id, worker, epoch, &error, now_ms(), &backoff)
        })
        .await
    }

    /// Gives the lease back without using up an attempt (the step was
    /// interrupted, not failed): it is renewed to end now, so anyone may
    /// take the job at once and the dequeuers' reclaim queues it again.
    pub(crate) async fn release(&self, store: &Store) -> Result<(), StoreError> {
        self.write(store, |conn, job_id, worker, epoch| {
            jobs::heartbeat_in(conn, job_id, worker, epoch, 0, now_ms()).map(drop)
        })
        .await
    }
}

/// Leases job `job_id` to `worker` (see [`jobs::lease_in`]) at `now`,
/// taking over at once a lease whose holder ran on this host and is gone
/// ([`worker::is_gone`]): the lease is taken as of the holder's deadline,
/// and shortened by as much, so that ours still ends a lease from now.
pub(crate) fn lease_in(
    conn: &Connection,
    job_id: &str,
    worker: &Worker,
    now: i64,
) -> Result<Job, JobError> {
    let length = worker.lease_ms();
    match jobs::lease_in(conn, job_id, &worker.id, length, now) {
        Err(JobError::Held {
            holder,
            deadline_ms,
            ..
        }) if worker::is_gone(&holder) => {
            // Debug only: this write may still be rolled back (a refused
            // claim), and the taking over is in the journal anyway.
            tracing::debug!(job = job_id, %holder, "the lease holder's process is gone: taking its job over");
            let early = u64::try_from(deadline_ms.saturating_sub(now)).unwrap_or(0);
            jobs::lease_in(
                conn,
                job_id,
                &worker.id,
                length.saturating_sub(early),
                deadline_ms,
            )
        }
        other => other,
    }
}

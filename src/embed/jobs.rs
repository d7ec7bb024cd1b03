//! The durable job queue through the handle: enqueue, dequeue under a
//! lease, heartbeat, ack and fail — each one short write transaction that
//! appends its journal event, updates the `jobs` projection and checks the
//! lease (fencing) atomically (`keyferry_journal::jobs`).
//!
//! Every method resolves once its transaction committed. The outer
//! `Result` is the store's (the file could not be written); the inner one
//! is the queue's verdict (e.g. [`JobError::LeaseLost`] for a worker whose
//! lease was reclaimed: it must stop working on the job).

use std::time::Duration;

use keyferry_journal::jobs::{self, Backoff, Job, JobError, NewJob};

use super::Keyferry;
use keyferry_engine::StoreError;

/// A queue operation's outcome: the store's error outside, the queue's
/// inside.
pub type JobResult<T> = Result<Result<T, JobError>, StoreError>;

impl Keyferry {
    /// Adds a job (or returns the alive job with the same dedupe key).
    pub async fn enqueue(&self, job: NewJob) -> JobResult<Job> {
        self.store()
            .write(move |tx| Ok(jobs::enqueue_in(tx.conn(), job)))
            .await
    }

    /// Leases up to `limit` ready jobs of `queue` to `worker` for `lease`,
    /// best priority first, then oldest; first reclaims leases that ran out.
    /// Each job is returned as it is *after* the dequeue (leased, attempt
    /// counted, new epoch): pass its `epoch` to every later call.
    pub async fn dequeue(
        &self,
        queue: &str,
        worker: &str,
        lease: Duration,
        limit: usize,
    ) -> JobResult<Vec<Job>> {
        let (queue, worker) = (queue.to_string(), worker.to_string());
        let lease_ms = lease.as_millis() as u64;
        self.store()
            .write(move |tx| {
                let now = keyferry_journal::now_ms();
                Ok(
                    jobs::reclaim_expired_in(tx.conn(), now, usize::MAX).and_then(|_| {
                        jobs::dequeue_in(tx.conn(), &queue, &worker, lease_ms, now, limit)
                    }),
                )
            })
            .await
    }

    /// Extends the lease of a job `worker` holds at `epoch`.
    pub async fn heartbeat(
        &self,
        job_id: &str,
        worker: &str,
        epoch: u64,
        lease: Duration,
    ) -> JobResult<Job> {
        let (job_id, worker) = (job_id.to_string(), worker.to_string());
        let lease_ms = lease.as_millis() as u64;
        self.store()
            .write(move |tx| {
                Ok(jobs::heartbeat_in(
                    tx.conn(),
                    &job_id,
                    &worker,
                    epoch,
                    lease_ms,
                    keyferry_journal::now_ms(),
                ))
            })
            .await
    }

    /// Marks jobs done; one verdict per `(job_id, worker, epoch)`, all in one
    /// transaction (batching is what makes a worker fast).
    pub async fn ack(
        &self,
        acks: Vec<(String, String, u64)>,
    ) -> JobResult<Vec<Result<(), JobError>>> {
        self.store()
            .write(move |tx| {
                let refs: Vec<(&str, &str, u64)> = acks
                    .iter()
                    .map(|(j, w, e)| (j.as_str(), w.as_str(), *e))
                    .collect();
                Ok(jobs::ack_many_in(tx.conn(), &refs))
            })
            .await
    }

    /// Records a failed attempt: the job is retried after an exponential
    /// backoff, or dead-lettered once out of attempts. Returns it as it is
    /// afterwards.
    pub async fn fail(
        &self,
        job_id: &str,
        worker: &str,
        epoch: u64,
        error: &str,
    ) -> JobResult<Job> {
        let (job_id, worker, error) = (job_id.to_string(), worker.to_string(), error.to_string());
        self.store()
            .write(move |tx| {
                Ok(jobs::fail_in(
                    tx.conn(),
                    &job_id,
                    &worker,
                    epoch,
                    &error,
                    keyferry_journal::now_ms(),
                    &Backoff::default(),
                ))
            })
            .await
    }

    /// The job as stored now, if it exists.
    pub fn job(&self, job_id: &str) -> Result<Option<Job>, StoreError> {
        let job_id = job_id.to_string();
        self.store()
            .read(move |view| Ok(jobs::job(view.conn(), &job_id)?))
    }
}

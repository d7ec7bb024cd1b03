//! The durable job queue: jobs live in the journal as events, and the
//! `jobs` table (journal schema v3) is their projection for queries.
//!
//! A job is enqueued, leased by a worker for a while (its *lease*, renewed
//! by heartbeats), then acked, or failed and retried after an exponential
//! [`Backoff`] until it runs out of attempts and is dead-lettered. A lease
//! that runs out without an ack is reclaimed: the job is queued again.
//!
//! Every operation here is a function `…_in(conn, …)` that runs inside the
//! caller's write transaction — a closure given to
//! [`crate::WriterHandle::submit`], or the engine's own transaction — and
//! does three things there: reads the job's row, checks that the change is
//! allowed, and appends the events with [`crate::append_in`], whose
//! projection ([`apply`]) updates the row. SQLite runs one write
//! transaction at a time, across processes too, so the check and the change
//! are atomic: two workers can never lease the same job, and a decision is
//! never taken on a row another transaction is changing. Callers keep these
//! transactions short (one batch each), as every writer of the shared file
//! must.
//!
//! **Fencing.** Every lease carries an epoch, one more than the job's
//! previous one. Heartbeat, ack and fail — and any step write, through
//! [`check_lease_in`] in the transaction of that write — first check that
//! the job is still leased by this worker *at this epoch*: a worker whose
//! lease expired and was reclaimed (and maybe re-leased) gets
//! [`JobError::LeaseLost`] and writes nothing. A lease whose deadline passed
//! but that nobody reclaimed yet still holds: nobody else can have leased
//! the job in between.
//!
//! Operations return jobs as they are *after* the change, read back from
//! the table once the projection has run — never a row read before it (a
//! dequeue that returned the pre-update row is the bug this queue's
//! ancestor shipped).

mod project;
mod query;
#[cfg(test)]
mod tests;

use std::time::Duration;

use rusqlite::{Connection, params};

use crate::append::append_in;
use crate::error::JournalError;
use crate::event::Event;

pub use project::apply;
pub use query::{Job, JobStatus, job, jobs_by_status, list};
use query::{LeaseState, alive_with_dedupe_key, epoch_at, lease_state, sql_int};

/// Why a job operation did not happen.
///
/// Every variant but [`JobError::Sqlite`] and [`JobError::Journal`] is
/// decided before anything is appended. After those two the operation may
/// have written part of its work: roll the transaction back (the writer
/// does so for a job that returns an error, with its savepoint).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// No job has this id.
    #[error("job {job_id} does not exist")]
    NotFound {
        /// The job asked for.
        job_id: String,
    },
    /// A job with this id exists already (enqueue).
    #[error("job {job_id} already exists")]
    AlreadyExists {
        /// The job.
        job_id: String,
    },
    /// Fencing: the caller's worker and epoch no longer hold the job's
    /// lease (it expired and was reclaimed, maybe re-leased, or the job
    /// was acked or failed meanwhile). The caller must stop working on it.
    #[error(
        "lease on job {job_id} lost: it is {status} at epoch {epoch}{}",
        holder.as_deref().map(|h| format!(", held by {h}")).unwrap_or_default()
    )]
    LeaseLost {
        /// The job.
        job_id: String,
        /// Its status now.
        status: JobStatus,
        /// Who holds its lease now, if it is leased.
        holder: Option<String>,
        /// Its epoch now (the latest lease's).
        epoch: u64,
    },
    /// The job is leased by a worker whose lease is still running (a second
    /// `keyferry bulk` for a run whose first is alive).
    #[error(
        "job {job_id} is held by {holder} until {deadline_ms} ms since the epoch; it can be taken over once that lease expires"
    )]
    Held {
        /// The job.
        job_id: String,
        /// The worker holding it.
        holder: String,
        /// When its lease ends unless renewed (ms since the epoch).
        deadline_ms: i64,
    },
    /// The job is done or dead (or failed): there is nothing to lease.
    #[error(
        "job {job_id} is {status}; only a queued job, or one whose lease expired, can be leased"
    )]
    NotLeasable {
        /// The job.
        job_id: String,
        /// Its status.
        status: JobStatus,
    },
    /// SQLite failed reading the `jobs` table.
    #[error("jobs sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Appending the job's events failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A job to enqueue ([`enqueue_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Unique job id, never reused (even once the job is done).
    pub job_id: String,
    /// The queue it waits in.
    pub queue: String,
    /// What it does (`bulk`, `apply-dirty`, `verify`, `sweep`, or an
    /// embedder's own kind).
    pub kind: String,
    /// Opaque description for the worker. Never put a password here: store
    /// URIs without them.
    pub payload: Vec<u8>,
    /// Dequeue order within the queue: higher first.
    pub priority: i32,
    /// Not to be dequeued before this time (ms since the epoch).
    pub run_at_ms: i64,
    /// Attempts allowed before the job is dead-lettered. The first attempt
    /// is always made, even with 0.
    pub max_attempts: u32,
    /// When set, at most one alive job (queued or leased) has this key: see
    /// [`enqueue_in`].
    pub dedupe_key: Option<String>,
}

/// How long a failed job waits before its next attempt: `base` after the
/// first failure, multiplied by `factor` after each further one, never
/// more than `cap`. The default is 1 s, ×2, at most 5 min (1 s, 2 s, 4 s, …,
/// 256 s, then 300 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub base: Duration,
    /// Growth per further failure.
    pub factor: u32,
    /// Longest wait.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            factor: 2,
            cap: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait after attempt `attempt` (1 for the first) failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let mut delay = self.base.min(self.cap);
        // At most ~30 doublings before any realistic cap is reached: the
        // loop stops there rather than at `attempt`, which may be huge.
        for _ in 1..attempt {
            if delay >= self.cap {
                break;
            }
            delay = delay.saturating_mul(self.factor).min(self.cap);
        }
        delay
    }
}

/// `now_ms + ms`, saturating: a huge lease or backoff means "forever", not
/// an overflow.
fn after(now_ms: i64, ms: u128) -> i64 {
    now_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The job `job_id` as it is now, which the caller knows exists (it just
/// changed it in this transaction).
fn reread(conn: &Connection, job_id: &str) -> Result<Job, JobError> {
    job(conn, job_id)?.ok_or_else(|| JobError::NotFound {
        job_id: job_id.to_owned(),
    })
}

/// Enqueues `new`, appending a [`Event::JobEnqueued`], and returns its row.
///
/// With a `dedupe_key` that an alive job (queued or leased) already has,
/// nothing is appended and that job is returned instead — compare
/// `job_id`s to tell. Migration steps use `bulk:<run_id>` and the like, so
/// two processes cannot queue the same step twice. Once that job is done or
/// dead, the key is free again.
///
/// # Errors
/// [`JobError::AlreadyExists`] when a job (alive or not) has `job_id`.
pub fn enqueue_in(conn: &Connection, new: NewJob) -> Result<Job, JobError> {
    if let Some(key) = &new.dedupe_key
        && let Some(existing) = alive_with_dedupe_key(conn, key)?
    {
        return Ok(existing);
    }
    if lease_state(conn, &new.job_id)?.is_some() {
        return Err(JobError::AlreadyExists { job_id: new.job_id });
    }
    let NewJob {
        job_id,
        queue,
        kind,
        payload,
        priority,
        run_at_ms,
        max_attempts,
        dedupe_key,
    } = new;
    append_in(
        conn,
        &[Event::JobEnqueued {
            job_id: job_id.clone(),
            queue,
            payload,
            max_attempts,
            run_at_ms,
            kind,
            priority,
            dedupe_key,
        }],
    )?;
    reread(conn, &job_id)
}

/// The queued jobs of a queue that are due, in dequeue order: best priority
/// first, then earliest `run_at_ms`, then oldest. One range of the
/// `jobs_dequeue` index, read in its order (no sort); jobs not due yet are
/// skipped while walking it.
const DUE_SQL: &str = "SELECT job_id, epoch, attempts FROM jobs
     WHERE queue = ?1 AND status = 'queued' AND run_at_ms <= ?2
     ORDER BY priority DESC, run_at_ms, enqueued_seq
     LIMIT ?3";

/// The [`Event::JobLeased`] that gives a job at `epoch` after `attempts`
/// attempts to `worker` for `lease_ms` from `now_ms`.
fn leased(
    job_id: String,
    epoch: u64,
    attempts: u32,
    worker: &str,
    lease_ms: u64,
    now_ms: i64,
) -> Event {
    Event::JobLeased {
        job_id,
        worker: worker.to_owned(),
        epoch: epoch + 1,
        deadline_ms: after(now_ms, lease_ms.into()),
        attempt: attempts.saturating_add(1),
    }
}

/// Leases up to `limit` due jobs of `queue` (`run_at_ms <= now_ms`) to
/// `worker` for `lease_ms`, best priority first, then oldest, appending a
/// [`Event::JobLeased`] for each, and returns them as they are after the
/// dequeue: leased, attempts incremented, with their worker, new epoch and
/// deadline.
///
/// Leases that ran out are not taken here: [`reclaim_expired_in`] queues
/// them again first.
pub fn dequeue_in(
    conn: &Connection,
    queue: &str,
    worker: &str,
    lease_ms: u64,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<Job>, JobError> {
    // The statement is finished (and reset by its cache) before the
    // appends: a statement left mid-step would keep a read snapshot.
    let due = conn
        .prepare_cached(DUE_SQL)?
        .query_map(params![queue, now_ms, sql_int(limit)], |row| {
            Ok((row.get::<_, String>(0)?, epoch_at(row, 1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let events: Vec<Event> = due
        .iter()
        .map(|(job_id, epoch, attempts)| {
            leased(job_id.clone(), *epoch, *attempts, worker, lease_ms, now_ms)
        })
        .collect();
    append_in(conn, &events)?;
    // Re-read after the projection ran: the rows selected above are the
    // jobs as they were before the dequeue.
    due.iter()
        .map(|(job_id, ..)| reread(conn, job_id))
        .collect()
}

/// Leases the job `job_id` to `worker` for `lease_ms`, whatever its queue,
/// priority or `run_at_ms` (the caller asks for this job, now: e.g.
/// `keyferry bulk --resume` for its run's step). A lease that ran out
/// (deadline ≤ `now_ms`) is expired first ([`Event::JobLeaseExpired`]), so
/// a dead holder's job can be resumed. Returns the job as leased.
///
/// # Errors
/// [`JobError::Held`] naming the holder while another lease runs;
/// [`JobError::NotLeasable`] for a done or dead job; [`JobError::NotFound`].
pub fn lease_in(
    conn: &Connection,
    job_id: &str,
    worker: &str,
    lease_ms: u64,
    now_ms: i64,
) -> Result<Job, JobError> {
    let current = reread(conn, job_id)?;
    let mut events = Vec::with_capacity(2);
    match (current.status, &current.worker, current.lease_deadline_ms) {
        (JobStatus::Queued, _, _) => {}
        (JobStatus::Leased, Some(holder), Some(deadline_ms)) if deadline_ms > now_ms => {
            return Err(JobError::Held {
                job_id: current.job_id,
                holder: holder.clone(),
                deadline_ms,
            });
        }
        (JobStatus::Leased, Some(holder), _) => events.push(Event::JobLeaseExpired {
            job_id: current.job_id.clone(),
            worker: holder.clone(),
            epoch: current.epoch,
        }),
        (status, _, _) => {
            return Err(JobError::NotLeasable {
                job_id: current.job_id,
                status,
            });
        }
    }
    events.push(leased(
        current.job_id,
        current.epoch,
        current.attempts,
        worker,
        lease_ms,
        now_ms,
    ));
    append_in(conn, &events)?;
    reread(conn, job_id)
}

/// The fencing check: the job is leased by `worker` at `epoch`. Returns
/// what the caller needs to go on.
fn held(conn: &Connection, job_id: &str, worker: &str, epoch: u64) -> Result<LeaseState, JobError> {
    let state = lease_state(conn, job_id)?.ok_or_else(|| JobError::NotFound {
        job_id: job_id.to_owned(),
    })?;
    let leased = state.status == JobStatus::Leased;
    if leased && state.epoch == epoch && state.worker.as_deref() == Some(worker) {
        return Ok(state);
    }
    Err(JobError::LeaseLost {
        job_id: job_id.to_owned(),
        status: state.status,
        holder: state.worker.filter(|_| leased),
        epoch: state.epoch,
    })
}

/// Checks, inside the caller's transaction, that job `job_id` is still
/// leased by `worker` at `epoch`, appending nothing. A step's data write
/// calls it in its own transaction, so a worker whose lease was reclaimed
/// cannot write.
///
/// # Errors
/// [`JobError::LeaseLost`], or [`JobError::NotFound`].
pub fn check_lease_in(
    conn: &Connection,
    job_id: &str,
    worker: &str,
    epoch: u64,
) -> Result<(), JobError> {
    held(conn, job_id, worker, epoch).map(drop)
}

/// Extends the lease of `worker` at `epoch` on `job_id` to `now_ms +
/// lease_ms`, appending a [`Event::JobHeartbeat`]. Returns the job after it.
///
/// # Errors
/// [`JobError::LeaseLost`], or [`JobError::NotFound`].
pub fn heartbeat_in(
    conn: &Connection,
    job_id: &str,
    worker: &str,
    epoch: u64,
    lease_ms: u64,
    now_ms: i64,
) -> Result<Job, JobError> {
    held(conn, job_id, worker, epoch)?;
    append_in(
        conn,
        &[Event::JobHeartbeat {
            job_id: job_id.to_owned(),
            worker: worker.to_owned(),
            epoch,
            deadline_ms: after(now_ms, lease_ms.into()),
        }],
    )?;
    reread(conn, job_id)
}

/// Marks `job_id` done, appending a [`Event::JobAcked`], if `worker` still
/// holds it at `epoch`.
///
/// # Errors
/// [`JobError::LeaseLost`], or [`JobError::NotFound`].
pub fn ack_in(conn: &Connection, job_id: &str, worker: &str, epoch: u64) -> Result<(), JobError> {
    held(conn, job_id, worker, epoch)?;
    append_in(
        conn,
        &[Event::JobAcked {
            job_id: job_id.to_owned(),
            worker: worker.to_owned(),
            epoch,
        }],
    )?;
    Ok(())
}

/// Acks many jobs, each `(job_id, worker, epoch)` as [`ack_in`], and returns
/// each one's outcome in order. A job whose lease was lost (or that does
/// not exist) is reported in its slot and the others are still acked.
///
/// # Errors
/// Only SQLite and journal failures, which fail the whole batch: roll the
/// transaction (or the writer job's savepoint) back.
pub fn ack_many_in(
    conn: &Connection,
    acks: &[(&str, &str, u64)],
) -> Result<Vec<Result<(), JobError>>, JobError> {
    acks.iter()
        .map(
            |&(job_id, worker, epoch)| match ack_in(conn, job_id, worker, epoch) {
                Err(e @ (JobError::Sqlite(_) | JobError::Journal(_))) => Err(e),
                outcome => Ok(outcome),
            },
        )
        .collect()
}

/// Records that `worker`'s attempt at `job_id` (at `epoch`) failed with
/// `error`: appends a [`Event::JobFailed`], then a [`Event::JobRetried`]
/// due `backoff.delay(attempt)` after `now_ms` while attempts remain, or a
/// [`Event::JobDeadLettered`] once `max_attempts` were made. Returns the
/// job after it (queued again, or dead).
///
/// # Errors
/// [`JobError::LeaseLost`], or [`JobError::NotFound`].
pub fn fail_in(
    conn: &Connection,
    job_id: &str,
    worker: &str,
    epoch: u64,
    error: &str,
    now_ms: i64,
    backoff: &Backoff,
) -> Result<Job, JobError> {
    let state = held(conn, job_id, worker, epoch)?;
    let attempt = state.attempts;
    let then = if attempt < state.max_attempts {
        Event::JobRetried {
            job_id: job_id.to_owned(),
            next_attempt: attempt + 1,
            run_at_ms: after(now_ms, backoff.delay(attempt).as_millis()),
        }
    } else {
        Event::JobDeadLettered {
            job_id: job_id.to_owned(),
            attempts: attempt,
            error: error.to_owned(),
        }
    };
    append_in(
        conn,
        &[
            Event::JobFailed {
                job_id: job_id.to_owned(),
                worker: worker.to_owned(),
                epoch,
                attempt,
                error: error.to_owned(),
            },
            then,
        ],
    )?;
    reread(conn, job_id)
}

/// Leased jobs whose lease ran out, longest expired first: one range of the
/// `jobs_reclaim` index.
const EXPIRED_SQL: &str = "SELECT job_id, worker, epoch FROM jobs
     WHERE status = 'leased' AND lease_deadline_ms <= ?1
     ORDER BY lease_deadline_ms
     LIMIT ?2";

/// Queues again up to `limit` jobs whose lease ran out (deadline ≤
/// `now_ms`), appending a [`Event::JobLeaseExpired`] for each, and returns
/// their ids. Their holders lose the lease (see fencing, above).
pub fn reclaim_expired_in(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<String>, JobError> {
    let expired = conn
        .prepare_cached(EXPIRED_SQL)?
        .query_map(params![now_ms, sql_int(limit)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                epoch_at(row, 2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let events: Vec<Event> = expired
        .iter()
        .map(|(job_id, worker, epoch)| Event::JobLeaseExpired {
            job_id: job_id.clone(),
            worker: worker.clone(),
            epoch: *epoch,
        })
        .collect();
    append_in(conn, &events)?;
    Ok(expired.into_iter().map(|(job_id, ..)| job_id).collect())
}

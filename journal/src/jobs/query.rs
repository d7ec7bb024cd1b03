//! Reading the `jobs` table: typed rows for workers, `keyferry status` and
//! `replay`.
//!
//! Every query takes a plain [`Connection`], so it works on a read-only
//! connection and inside a writer job alike (where it sees the job's own
//! uncommitted writes, which is how the operations return rows as they are
//! after their own events). Statements are cached and run to completion, so
//! none is left holding a read snapshot.

use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use crate::event::Seq;
use crate::registry::named;

/// Where a job is in its life (see the state machine on [`crate::Event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting to be leased (new, retried or reclaimed).
    Queued,
    /// Leased by a worker.
    Leased,
    /// Acked: finished for good.
    Done,
    /// Its attempt failed. Only between a `JobFailed` and the `JobRetried`
    /// or `JobDeadLettered` that [`crate::jobs::fail_in`] appends with it,
    /// so never seen outside that transaction unless someone appended a
    /// `JobFailed` alone.
    Failed,
    /// Out of attempts, set aside.
    Dead,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Leased,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Dead,
    ];

    /// The status's stable lower-case name, as stored in the `status`
    /// column.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Leased => "leased",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
        }
    }

    /// The status named `name` (see [`JobStatus::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromSql for JobStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        named(value, "job status", JobStatus::from_name)
    }
}

impl ToSql for JobStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// An epoch or a limit as SQLite stores integers. Neither approaches
/// `i64::MAX`; saturating keeps an absurd one from failing the statement.
pub(crate) fn sql_int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Reads column `idx` of `row` as an epoch (stored by [`sql_int`], so never
/// negative unless the row was tampered with).
pub(crate) fn epoch_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let stored: i64 = row.get(idx)?;
    u64::try_from(stored)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

/// One row of the `jobs` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Unique job id.
    pub job_id: String,
    /// The queue it waits in.
    pub queue: String,
    /// What it does (`bulk`, `apply-dirty`, `verify`, `sweep`, …).
    pub kind: String,
    /// Opaque description for the worker (URIs without passwords).
    pub payload: Vec<u8>,
    /// Dequeue order within the queue: higher first.
    pub priority: i32,
    /// Not to be dequeued before this time (ms since the epoch).
    pub run_at_ms: i64,
    /// Attempts allowed before it is dead-lettered.
    pub max_attempts: u32,
    /// Attempts begun (leases taken), the current one included.
    pub attempts: u32,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Who holds the lease while leased; who made the last attempt once
    /// done, failed or dead; `None` while queued.
    pub worker: Option<String>,
    /// Fencing token of the latest lease (0 before the first): only the
    /// holder of this epoch may heartbeat, ack, fail or write for the job.
    pub epoch: u64,
    /// When the lease ends unless renewed (ms since the epoch), while
    /// leased.
    pub lease_deadline_ms: Option<i64>,
    /// The latest failure.
    pub last_error: Option<String>,
    /// Its dedupe key, if it was enqueued with one.
    pub dedupe_key: Option<String>,
    /// The journal row that enqueued it.
    pub enqueued_seq: Seq,
    /// The journal row that last changed it.
    pub updated_seq: Seq,
    /// When that row was appended (ms since the epoch).
    pub updated_at_ms: i64,
}

/// The columns [`from_row`] reads, in its order.
const COLUMNS: &str = "job_id, queue, kind, payload, priority, run_at_ms, max_attempts, attempts,
     status, worker, epoch, lease_deadline_ms, last_error, dedupe_key, enqueued_seq,
     updated_seq, updated_at_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        job_id: row.get(0)?,
        queue: row.get(1)?,
        kind: row.get(2)?,
        payload: row.get(3)?,
        priority: row.get(4)?,
        run_at_ms: row.get(5)?,
        max_attempts: row.get(6)?,
        attempts: row.get(7)?,
        status: row.get(8)?,
        worker: row.get(9)?,
        epoch: epoch_at(row, 10)?,
        lease_deadline_ms: row.get(11)?,
        last_error: row.get(12)?,
        dedupe_key: row.get(13)?,
        enqueued_seq: row.get(14)?,
        updated_seq: row.get(15)?,
        updated_at_ms: row.get(16)?,
    })
}

/// The job `job_id`, if it exists.
pub fn job(conn: &Connection, job_id: &str) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"))?
        .query_row([job_id], from_row)
        .optional()
}

/// The alive job (queued, leased or failed) enqueued with `dedupe_key`, if
/// any. The condition repeats the `jobs_dedupe` index's own, word for word,
/// which is what lets SQLite use that partial index.
pub(crate) fn alive_with_dedupe_key(
    conn: &Connection,
    dedupe_key: &str,
) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs
         WHERE dedupe_key = ?1 AND status IN ('queued', 'leased', 'failed')"
    ))?
    .query_row([dedupe_key], from_row)
    .optional()
}

/// Up to `limit` jobs, oldest enqueued first, of queue `queue` and status
/// `status` when given (all of them when `None`).
pub fn list(
    conn: &Connection,
    queue: Option<&str>,
    status: Option<JobStatus>,
    limit: usize,
) -> rusqlite::Result<Vec<Job>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs
         WHERE (?1 IS NULL OR queue = ?1) AND (?2 IS NULL OR status = ?2)
         ORDER BY enqueued_seq LIMIT ?3"
    ))?
    .query_map(params![queue, status, sql_int(limit)], from_row)?
    .collect()
}

/// How many jobs are in each status: every status of [`JobStatus::ALL`],
/// in that order, zeros included (a gauge that drops to zero must be told
/// so).
pub fn jobs_by_status(conn: &Connection) -> rusqlite::Result<Vec<(JobStatus, u64)>> {
    let mut counts: Vec<(JobStatus, u64)> = JobStatus::ALL.iter().map(|&s| (s, 0)).collect();
    // Counted from the `jobs_reclaim` index, whose first column is the
    // status: the table itself is not read.
    let mut stmt = conn.prepare_cached("SELECT status, count(*) FROM jobs GROUP BY status")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (status, n): (JobStatus, i64) = (row.get(0)?, row.get(1)?);
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
            slot.1 = u64::try_from(n).unwrap_or_default();
        }
    }
    Ok(counts)
}

/// What the fencing check needs to know about a job: far less than a
/// [`Job`] (no payload), since acks are the hot path.
#[derive(Debug)]
pub(crate) struct LeaseState {
    pub(crate) status: JobStatus,
    pub(crate) worker: Option<String>,
    pub(crate) epoch: u64,
    pub(crate) attempts: u32,
    pub(crate) max_attempts: u32,
}

/// The lease state of job `job_id`, if it exists.
pub(crate) fn lease_state(conn: &Connection, job_id: &str) -> rusqlite::Result<Option<LeaseState>> {
    conn.prepare_cached(
        "SELECT status, worker, epoch, attempts, max_attempts FROM jobs WHERE job_id = ?1",
    )?
    .query_row([job_id], |row| {
        Ok(LeaseState {
            status: row.get(0)?,
            worker: row.get(1)?,
            epoch: epoch_at(row, 2)?,
            attempts: row.get(3)?,
            max_attempts: row.get(4)?,
        })
    })
    .optional()
}

//! The `jobs` table as a projection of the job events.
//!
//! Each event moves one row along the state machine documented on
//! [`Event`], and only from the state that machine says it leaves: a lease
//! only of a queued job with a newer epoch, a heartbeat, ack, failure or
//! expiry only of the lease (worker and epoch) it names, a retry or a
//! dead-lettering only of a failed job. The operations in [`crate::jobs`]
//! only ever append events that fit; one that does not (appended raw, or
//! in a journal written before the table existed) changes nothing and is
//! logged. Either way the table is a pure function of the events in order,
//! so re-applying them into an empty file rebuilds it exactly.

use rusqlite::{Connection, params};

use super::query::sql_int;
use crate::event::{Event, Seq};

/// Projects the event `event`, stored as journal row `seq` at `at_ms`, into
/// the `jobs` table, inside the caller's transaction.
///
/// Events must be applied in sequence order. Events other than job events
/// change nothing.
pub fn apply(conn: &Connection, seq: Seq, at_ms: i64, event: &Event) -> rusqlite::Result<()> {
    // ?1 is always the job, ?2 and ?3 the journal row and its time.
    let update = |sql: &str, rest: &[&dyn rusqlite::ToSql], job_id: &str| {
        let mut all: Vec<&dyn rusqlite::ToSql> = vec![&job_id, &seq, &at_ms];
        all.extend_from_slice(rest);
        conn.prepare_cached(sql)?.execute(all.as_slice())
    };
    let (job_id, changed) = match event {
        Event::JobEnqueued {
            job_id,
            queue,
            payload,
            max_attempts,
            run_at_ms,
            kind,
            priority,
            dedupe_key,
        } => (
            job_id,
            // A job id or alive dedupe key already taken leaves the first
            // job alone (`DO NOTHING` covers every uniqueness constraint).
            update(
                "INSERT INTO jobs (job_id, enqueued_seq, updated_seq, updated_at_ms, queue, kind,
                     payload, priority, run_at_ms, max_attempts, dedupe_key)
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT DO NOTHING",
                params![
                    queue,
                    kind,
                    payload,
                    priority,
                    run_at_ms,
                    max_attempts,
                    dedupe_key
                ],
                job_id,
            )?,
        ),
        Event::JobLeased {
            job_id,
            worker,
            epoch,
            deadline_ms,
            attempt,
        } => (
            job_id,
            update(
                "UPDATE jobs SET status = 'leased', worker = ?4, epoch = ?5,
                     lease_deadline_ms = ?6, attempts = ?7,
                     updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'queued' AND epoch < ?5",
                params![worker, sql_int(*epoch), deadline_ms, attempt],
                job_id,
            )?,
        ),
        Event::JobHeartbeat {
            job_id,
            worker,
            epoch,
            deadline_ms,
        } => (
            job_id,
            update(
                "UPDATE jobs SET lease_deadline_ms = ?6, updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'leased' AND worker = ?4 AND epoch = ?5",
                params![worker, sql_int(*epoch), deadline_ms],
                job_id,
            )?,
        ),
        Event::JobAcked {
            job_id,
            worker,
            epoch,
        } => (
            job_id,
            update(
                "UPDATE jobs SET status = 'done', lease_deadline_ms = NULL,
                     updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'leased' AND worker = ?4 AND epoch = ?5",
                params![worker, sql_int(*epoch)],
                job_id,
            )?,
        ),
        Event::JobFailed {
            job_id,
            worker,
            epoch,
            error,
            ..
        } => (
            job_id,
            update(
                "UPDATE jobs SET status = 'failed', lease_deadline_ms = NULL, last_error = ?6,
                     updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'leased' AND worker = ?4 AND epoch = ?5",
                params![worker, sql_int(*epoch), error],
                job_id,
            )?,
        ),
        Event::JobRetried {
            job_id, run_at_ms, ..
        } => (
            job_id,
            // The attempt count stays: the next lease increments it.
            update(
                "UPDATE jobs SET status = 'queued', run_at_ms = ?4, worker = NULL,
                     updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'failed'",
                params![run_at_ms],
                job_id,
            )?,
        ),
        Event::JobDeadLettered { job_id, error, .. } => (
            job_id,
            update(
                "UPDATE jobs SET status = 'dead', last_error = ?4,
                     updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'failed'",
                params![error],
                job_id,
            )?,
        ),
        Event::JobLeaseExpired {
            job_id,
            worker,
            epoch,
        } => (
            job_id,
            // The epoch stays, so the next lease's is higher than any the
            // expired holder may still present.
            update(
                "UPDATE jobs SET status = 'queued', worker = NULL, lease_deadline_ms = NULL,
                     updated_seq = ?2, updated_at_ms = ?3
                 WHERE job_id = ?1 AND status = 'leased' AND worker = ?4 AND epoch = ?5",
                params![worker, sql_int(*epoch)],
                job_id,
            )?,
        ),
        _ => return Ok(()),
    };
    if changed == 0 {
        tracing::warn!(
            seq,
            kind = event.kind(),
            job_id = job_id.as_str(),
            "job event does not fit the job's state; the jobs table ignores it"
        );
    }
    Ok(())
}

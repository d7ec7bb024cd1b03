//! Running a job on the caller's thread while the writer is idle.
//!
//! Handing a job to the writer thread and getting its answer back costs two
//! thread wake-ups. When the machine is idle each of them is tens of
//! microseconds (on a VM, the sleeping CPU has to be woken as well), which
//! is more than the commit itself: a lone `RPUSH` that wakes a client
//! blocked in `BLPOP` spent most of its latency in them. So when nothing is
//! queued for the writer and no batch ended within
//! [`WriterConfig::inline_after_idle`], [`WriterHandle::run_now_if_idle`]
//! locks the connection and runs the job itself, in a transaction of its
//! own. Under load, batches end more often than that and every job goes to
//! the writer thread, whose group commit is what load needs; a caller that
//! just ran a job inline has itself just ended a batch, so its next job
//! queues too.
//!
//! Never with `synchronous=FULL`: the commit's fsync would hold the caller
//! (typically an async runtime's thread) for milliseconds. And never when
//! another process holds SQLite's write lock: the caller does not wait for
//! it, the writer thread does.
//!
//! [`WriterConfig::inline_after_idle`]: super::WriterConfig::inline_after_idle
//! [`WriterHandle::run_now_if_idle`]: super::WriterHandle::run_now_if_idle

use std::sync::TryLockError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Job, Shared, run_batch};
use crate::connection::BUSY_TIMEOUT;

/// When the writer last ended a batch, and how long after that a caller may
/// run a job itself.
pub(super) struct Idle {
    epoch: Instant,
    /// Microseconds after `epoch` at which the last batch ended.
    last_batch_us: AtomicU64,
    /// `None` when jobs never run inline.
    after_us: Option<u64>,
}

impl Idle {
    /// For the writer connection `conn`, with `after` from the writer's
    /// configuration.
    pub(super) fn new(conn: &Connection, after: Option<Duration>) -> Self {
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA: from FULL on, commits fsync.
        let commit_fsyncs = conn
            .pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
            .map_or(true, |level| level >= 2);
        Self {
            epoch: Instant::now(),
            last_batch_us: AtomicU64::new(0),
            after_us: after
                .filter(|_| !commit_fsyncs)
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        }
    }

    /// Records that a batch just ended.
    pub(super) fn ended_batch(&self) {
        self.last_batch_us.store(self.now_us(), Ordering::Release);
    }

    fn long_enough(&self) -> bool {
        self.after_us.is_some_and(|after| {
            self.now_us()
                .saturating_sub(self.last_batch_us.load(Ordering::Acquire))
                >= after
        })
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Runs `job` on this thread if the writer is idle (see the module docs),
/// answering it before returning; otherwise gives it back to be queued.
///
/// Order is kept: a caller whose earlier job is still queued finds
/// `queued` non-zero, and a batch the writer thread is running holds the
/// connection's lock.
pub(super) fn try_run(shared: &Shared, job: Job) -> Option<Job> {
    if shared.queued.load(Ordering::SeqCst) != 0 || !shared.idle.long_enough() {
        return Some(job);
    }
    let guard = match shared.conn.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return Some(job),
    };
    let Some(conn) = guard.as_ref() else {
        // Shut down: queued, it fails like any late job.
        return Some(job);
    };
    if begin_without_waiting(conn).is_err() {
        return Some(job);
    }
    run_batch(conn, job, None);
    shared.idle.ended_batch();
    None
}

/// `BEGIN IMMEDIATE`, failing at once instead of waiting when another
/// process holds the write lock.
fn begin_without_waiting(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let begun = conn.execute_batch("BEGIN IMMEDIATE");
    conn.busy_timeout(BUSY_TIMEOUT)?;
    begun
}

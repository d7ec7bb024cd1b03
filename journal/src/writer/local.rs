//! Group commits run on the caller's async runtime.
//!
//! Handing each command to the writer thread and its answer back costs two
//! cross-CPU wake-ups per group commit: a futex to wake the writer, and an
//! eventfd write to wake the runtime's I/O driver. On this project's 2-core
//! VM those were 15% of the writer thread's time and 12% of the runtime
//! thread's, and the three busy threads (runtime, writer, and a local
//! client) took turns on two cores instead of running side by side.
//!
//! So `keyferry serve` submits its commands with
//! [`WriterHandle::submit_local`]. The jobs queue in the writer's shared
//! state, and the first one spawns a committer task on the current runtime.
//! A spawned task runs after the tasks already in the runtime's queue, so
//! every connection the runtime found ready in this turn queues its
//! commands first; the committer then runs them all in one transaction on
//! the runtime's own thread, and answers them: Redis's event loop, with a
//! group commit per turn. Answers reach their tasks on the same thread,
//! without a wake-up across CPUs.
//!
//! The writer thread still runs a job when running it here would be wrong
//! or would stall the runtime:
//! - the writer thread has work queued or a batch running: this job goes
//!   behind it, so that jobs of one client keep their order;
//! - another process holds SQLite's write lock: the writer thread waits for
//!   it, the runtime does not;
//! - commits fsync (`synchronous=FULL`): milliseconds per commit;
//! - the job is [`Cost::Slow`] (it may scan a database): it, and every job
//!   queued after it, go to the writer thread in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Job, Msg, Shared, WriterHandle, run_batch};
use crate::connection::BUSY_TIMEOUT;

/// How long a job submitted with [`WriterHandle::submit_local`] may hold
/// the runtime's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Bounded whatever the keyspace holds (Redis's `fast` commands): may
    /// run on the runtime's thread.
    Fast,
    /// May take long (scans, big deletes): runs on the writer thread.
    Slow,
}

/// Jobs waiting for the committer, and whether one is scheduled.
pub(super) struct LocalQueue {
    jobs: Mutex<VecDeque<(Job, Cost)>>,
    /// A committer task exists and will look at `jobs` again before it
    /// ends.
    scheduled: AtomicBool,
    /// Commits may run on a runtime's thread (they do not fsync).
    allowed: bool,
}

impl LocalQueue {
    /// For the writer connection `conn`, and the writer's configuration.
    pub(super) fn new(conn: &Connection, enabled: bool) -> Self {
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA: from FULL on, commits fsync.
        let commit_fsyncs = conn
            .pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
            .map_or(true, |level| level >= 2);
        Self {
            jobs: Mutex::new(VecDeque::new()),
            scheduled: AtomicBool::new(false),
            allowed: enabled && !commit_fsyncs,
        }
    }

    /// Queues `job`; `true` when the caller must spawn the committer.
    fn push(&self, job: Job, cost: Cost) -> bool {
        self.lock().push_back((job, cost));
        !self.scheduled.swap(true, Ordering::SeqCst)
    }

    fn take(&self) -> VecDeque<(Job, Cost)> {
        std::mem::take(&mut *self.lock())
    }

    /// Called by a committer that is done: `true` if it must go on,
    /// because jobs arrived after it took the queue and nobody else was
    /// scheduled for them.
    fn go_on(&self) -> bool {
        self.scheduled.store(false, Ordering::SeqCst);
        !self.lock().is_empty() && !self.scheduled.swap(true, Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Job, Cost)>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl WriterHandle {
    /// Like [`WriterHandle::submit_with`], but the job is committed on the
    /// current tokio runtime's thread, in one transaction with every other
    /// job submitted this way during the same turn of the runtime, when the
    /// writer thread is free (see `writer/local.rs`); otherwise it is
    /// queued for the writer thread as usual. Outside a runtime it is
    /// always queued.
    ///
    /// Jobs submitted with `submit_local` run in the order they were
    /// submitted, among themselves and after every job submitted earlier
    /// through [`WriterHandle::submit_with`].
    pub fn submit_local<R, E, F>(
        &self,
        isolation: super::Isolation,
        cost: Cost,
        op: F,
    ) -> super::Pending<R, E>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    {
        let (job, pending) = super::job(isolation, op);
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if self.shared.local.allowed => {
                if self.shared.local.push(job, cost) {
                    runtime.spawn(commit(self.clone()));
                }
            }
            _ => self.hand_over(job),
        }
        pending
    }
}

/// The committer task: see the module docs.
async fn commit(writer: WriterHandle) {
    loop {
        let jobs = writer.shared.local.take();
        run(&writer, jobs);
        if !writer.shared.local.go_on() {
            return;
        }
    }
}

/// Runs the leading fast jobs of `jobs` here in one transaction if the
/// writer thread is free, and hands the rest to it in order.
fn run(writer: &WriterHandle, jobs: VecDeque<(Job, Cost)>) {
    let mut jobs = jobs.into_iter().peekable();
    let shared = &writer.shared;
    if shared.queued.load(Ordering::SeqCst) == 0
        && jobs.peek().is_some_and(|(_, cost)| *cost == Cost::Fast)
    {
        run_here(shared, &mut jobs);
    }
    for (job, _) in jobs {
        writer.hand_over(job);
    }
    if shared.checkpointer.as_ref().is_some_and(|c| c.due()) {
        // Only the writer thread runs the catch-up checkpoint.
        let _ = writer.tx.send(Msg::CatchUp);
    }
}

/// Runs fast jobs from the front of `jobs` in one transaction on this
/// thread, unless the connection is busy (a batch of the writer thread, or
/// another process's write lock).
fn run_here(shared: &Shared, jobs: &mut std::iter::Peekable<impl Iterator<Item = (Job, Cost)>>) {
    let guard = match shared.conn.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    // Shut down: queued, the jobs fail like any late job.
    let Some(conn) = guard.as_ref() else { return };
    if begin_without_waiting(conn).is_err() {
        return;
    }
    let (first, _) = jobs.next().expect("checked: a fast job leads");
    let limits = &shared.limits;
    let started = Instant::now();
    let mut ran = 1;
    run_batch(conn, first, || {
        if ran >= limits.max_batch_jobs || started.elapsed() >= limits.max_batch_duration {
            return None;
        }
        ran += 1;
        jobs.next_if(|(_, cost)| *cost == Cost::Fast)
            .map(|(job, _)| job)
    });
}

/// `BEGIN IMMEDIATE`, failing at once instead of waiting when another
/// process holds the write lock.
fn begin_without_waiting(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let begun = conn.execute_batch("BEGIN IMMEDIATE");
    conn.busy_timeout(BUSY_TIMEOUT)?;
    begun
}

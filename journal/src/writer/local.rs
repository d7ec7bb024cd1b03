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
//! The writer thread still runs a job when running it here would stall the
//! runtime:
//! - the job is [`Cost::Slow`] (it may scan a database): it and every job
//!   of its turn after it;
//! - the writer thread is running a batch of its own (other work of the
//!   process, or its catch-up checkpoint), or another process holds
//!   SQLite's write lock: the writer thread waits for the connection, the
//!   runtime does not; this turn's jobs go to it;
//! - commits fsync (`synchronous=FULL`): milliseconds per commit.
//!
//! Jobs of one client keep their order: while jobs of this queue are with
//! the writer thread, the committer waits (asynchronously) until they were
//! answered, and the jobs queued meanwhile wait with it, then commit here
//! in one batch. So it comes back here as soon as it can, rather than
//! handing over every job while the writer thread has any: under steady
//! load the writer thread's queue need never empty again, and one catch-up
//! checkpoint could keep the server on the slower hand-over path for as
//! long as the load lasts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;

use super::{Isolation, Job, Msg, Pending, Ran, Shared, Work, WriterHandle, run_batch, run_cached};
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
    /// Jobs of this queue handed to the writer thread and not answered
    /// yet: until they are, the committer runs nothing itself.
    handed: Arc<Handed>,
}

/// A count of handed-over jobs, and a signal when it drops to zero.
#[derive(Default)]
struct Handed {
    count: AtomicUsize,
    drained: Notify,
}

impl Handed {
    /// Resolves once no handed-over job is left unanswered.
    async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one handed-over job until it is dropped: answered, rejected, or
/// never run because the writer stopped.
struct HandedGuard(Arc<Handed>);

impl HandedGuard {
    fn new(handed: &Arc<Handed>) -> Self {
        handed.count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(handed))
    }
}

impl Drop for HandedGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_one();
        }
    }
}

/// A job of the local queue handed to the writer thread.
struct Handover {
    job: Job,
    guard: HandedGuard,
}

impl Work for Handover {
    fn isolation(&self) -> Isolation {
        self.job.isolation()
    }

    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let Handover { job, guard } = *self;
        let ran = job.run(conn);
        let deliver = ran.deliver;
        Ran {
            ok: ran.ok,
            deliver: Box::new(move |committed| {
                deliver(committed);
                drop(guard);
            }),
        }
    }

    fn reject(self: Box<Self>, error: Arc<rusqlite::Error>) {
        self.job.reject(error);
    }
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
            handed: Arc::default(),
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
    /// because jobs are queued and nobody else is scheduled for them.
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
    /// writer connection is free (see `writer/local.rs`); otherwise it is
    /// handed to the writer thread. Outside a runtime it always is.
    ///
    /// Jobs submitted with `submit_local` run in the order they were
    /// submitted. Relative to jobs submitted otherwise they are ordered
    /// only by when they commit.
    pub fn submit_local<R, E, F>(&self, isolation: Isolation, cost: Cost, op: F) -> Pending<R, E>
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
    let local = &writer.shared.local;
    let committing = Committing(local);
    loop {
        // Jobs this queue handed to the writer thread come first.
        local.handed.drained().await;
        run(&writer, local.take());
        if !local.go_on() {
            // `go_on` let go of `scheduled`; a new committer may own it.
            std::mem::forget(committing);
            return;
        }
        // More to do: let the connections have their turn first.
        tokio::task::yield_now().await;
    }
}

/// Lets go of `scheduled` when a committer ends other than through
/// `go_on`: a panic (in an after-commit hook) or its runtime dropping it.
/// Otherwise no job would ever spawn a committer again.
struct Committing<'a>(&'a LocalQueue);

impl Drop for Committing<'_> {
    fn drop(&mut self) {
        self.0.scheduled.store(false, Ordering::SeqCst);
    }
}

/// Runs the leading fast jobs of `jobs` here in one transaction, and hands
/// the rest to the writer thread in order: from the first slow job on, or
/// all of them when the connection is busy. The committer's next round
/// waits for those (see the module docs).
fn run(writer: &WriterHandle, jobs: VecDeque<(Job, Cost)>) {
    let shared = &writer.shared;
    let mut jobs = jobs.into_iter().peekable();
    if jobs.peek().is_some_and(|(_, cost)| *cost == Cost::Fast) {
        // When it cannot (the writer thread or another process holds the
        // connection) the writer thread gets this turn's fast jobs too.
        run_here(shared, &mut jobs);
    }
    // All of the rest, not just the leading slow job: waiting for each
    // slow job before handing over the next would allow one `EXEC` per
    // round trip between the threads.
    for (job, _) in jobs {
        hand_over(writer, job);
    }
    if shared.checkpointer.as_ref().is_some_and(|c| c.due()) {
        // Only the writer thread runs the catch-up checkpoint.
        let _ = writer.tx.send(Msg::CatchUp);
    }
}

fn hand_over(writer: &WriterHandle, job: Job) {
    let guard = HandedGuard::new(&writer.shared.local.handed);
    writer.hand_over(Box::new(Handover { job, guard }));
}

/// Runs fast jobs from the front of `jobs` in one transaction on this
/// thread, unless the connection is busy (a batch of the writer thread,
/// its catch-up checkpoint, or another process's write lock).
fn run_here(shared: &Shared, jobs: &mut std::iter::Peekable<impl Iterator<Item = (Job, Cost)>>) {
    let guard = match shared.conn.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    // Shut down: handed over, the jobs fail like any late job.
    let Some(conn) = guard.as_ref() else {
        return;
    };
    if begin_without_waiting(conn).is_err() {
        return;
    }
    let (first, _) = jobs.next().expect("checked: a fast job leads");
    let answers = run_batch(conn, first, &shared.limits, || {
        jobs.next_if(|(_, cost)| *cost == Cost::Fast)
            .map(|(job, _)| job)
    });
    drop(guard);
    answers.deliver();
}

/// `BEGIN IMMEDIATE`, failing at once instead of waiting when another
/// process holds the write lock.
fn begin_without_waiting(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let begun = run_cached(conn, "BEGIN IMMEDIATE");
    conn.busy_timeout(BUSY_TIMEOUT)?;
    begun
}

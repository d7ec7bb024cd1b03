//! The single group-committing writer.
//!
//! SQLite allows one writer at a time, and a transaction's cost is dominated
//! by its commit (WAL append + optional fsync), not by the rows in it. So all
//! writes of a process go through one thread that owns the read-write
//! connection: callers send it closures over a crossbeam channel; the thread
//! opens a `BEGIN IMMEDIATE` transaction, runs every closure that is already
//! queued (up to a size and a time cap), commits once, and only then answers
//! each caller. Under load many commands share one commit (group commit);
//! when idle a lone command commits immediately, so latency stays low.
//!
//! Each closure runs inside its own `SAVEPOINT`: a closure that fails (or
//! panics) is rolled back alone and the rest of the batch still commits,
//! which is also how a failing command inside `EXEC` undoes only itself.
//!
//! `BEGIN IMMEDIATE`, not a deferred `BEGIN`: a deferred transaction that
//! later upgrades to a write lock can fail with `SQLITE_BUSY_SNAPSHOT`
//! without the busy handler ever running when another process committed in
//! between.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::checkpointer::Checkpointer;
pub use crate::checkpointer::WalPolicy;

mod local;

pub use local::Cost;

/// Work to run on the writer thread once a job's fate is known: `true`
/// when its transaction committed, `false` when the job failed or its
/// transaction did not commit.
pub type AfterCommit = Box<dyn FnOnce(bool) + Send>;

thread_local! {
    /// The [`after_commit`] hooks of the batch being run on this thread
    /// (the writer thread, or a runtime's: see `writer/local.rs`).
    static AFTER_COMMIT: RefCell<Vec<AfterCommit>> = const { RefCell::new(Vec::new()) };
}

/// Registers `hook` from inside a job: the writer calls it right after the
/// batch's `COMMIT` and its callers were answered, or with `false` if the
/// job fails or the batch does not commit. Only meaningful inside a job
/// (on the thread running its batch); elsewhere the hook is never called.
///
/// After the answers, not before: on a runtime's thread (see
/// `writer/local.rs`) the task woken last runs first, so a client a hook
/// serves (a blocked `BLPOP`) gets its reply out before the caller whose
/// push served it, as Redis sends them.
pub fn after_commit(hook: AfterCommit) {
    AFTER_COMMIT.with(|hooks| hooks.borrow_mut().push(hook));
}

thread_local! {
    /// See [`transaction_epoch`].
    static EPOCH: Cell<u64> = const { Cell::new(0) };
}

/// A number that changes whenever this thread begins a write transaction
/// or rolls any part of one back. While it stays the same, the
/// connection's `total_changes` only grows, by one for every row written,
/// and nothing else can change the database under the transaction: a row
/// read when both had the values they have now is still as it was read.
/// That lets a job reuse what an earlier job of its batch read (the
/// engine's key-row cache). Jobs that undo a savepoint of their own do it
/// with [`roll_back_to`], which starts a new epoch.
pub fn transaction_epoch() -> u64 {
    EPOCH.with(Cell::get)
}

/// Starts a new [`transaction_epoch`] on this thread.
fn new_epoch() {
    EPOCH.with(|epoch| epoch.set(epoch.get().wrapping_add(1)));
}

/// Undoes everything written since `SAVEPOINT {savepoint}` and ends that
/// savepoint (`ROLLBACK TO`, then `RELEASE`), starting a new
/// [`transaction_epoch`]: what was read before may have been undone.
pub fn roll_back_to(conn: &Connection, savepoint: &str) -> rusqlite::Result<()> {
    new_epoch();
    run_cached(conn, &format!("ROLLBACK TO {savepoint}"))?;
    run_cached(conn, &format!("RELEASE {savepoint}"))
}

/// Calls and forgets the hooks registered since the `mark`-th.
fn run_hooks_from(mark: usize, committed: bool) {
    let hooks: Vec<AfterCommit> =
        AFTER_COMMIT.with(|hooks| hooks.borrow_mut().drain(mark..).collect());
    for hook in hooks {
        hook(committed);
    }
}

fn hooks_len() -> usize {
    AFTER_COMMIT.with(|hooks| hooks.borrow().len())
}

/// Tuning of the group commit.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most closures committed in one transaction.
    pub max_batch_jobs: usize,
    /// Longest a transaction stays open collecting work. Caps the time other
    /// processes wait on SQLite's write lock (its busy handler is unfair, so
    /// long transactions starve them).
    pub max_batch_duration: Duration,
    /// Whether [`WriterHandle::submit_local`] may commit on the caller's
    /// runtime (see `writer/local.rs`); when false its jobs go to the
    /// writer thread like any other.
    pub local_batches: bool,
    /// When the WAL is checkpointed.
    pub wal: WalPolicy,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch_jobs: 4096,
            max_batch_duration: Duration::from_millis(20),
            local_batches: true,
            wal: WalPolicy::default(),
        }
    }
}

/// Why a submitted write did not take effect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError<E> {
    /// The closure itself returned an error; its savepoint was rolled back.
    #[error(transparent)]
    Op(E),
    /// The transaction could not begin or commit; nothing of it was written.
    #[error("transaction failed: {0}")]
    Transaction(Arc<rusqlite::Error>),
    /// The closure panicked; its savepoint was rolled back.
    #[error("write panicked: {0}")]
    Panicked(String),
    /// The writer thread has shut down.
    #[error("the database writer has stopped")]
    WriterGone,
}

/// What a job tells the writer once it ran: whether to keep its savepoint,
/// and how to answer its caller after the commit.
struct Ran {
    ok: bool,
    deliver: Box<dyn FnOnce(Result<(), Arc<rusqlite::Error>>) + Send>,
}

/// A queued unit of work: either run inside the batch, or rejected unrun
/// when no transaction could be opened for it.
trait Work: Send {
    fn isolation(&self) -> Isolation;
    fn run(self: Box<Self>, conn: &Connection) -> Ran;
    fn reject(self: Box<Self>, error: Arc<rusqlite::Error>);
}

type Job = Box<dyn Work>;

type Reply<R, E> = oneshot::Sender<Result<R, WriteError<E>>>;

/// A caller's closure and the channel its answer goes back on.
struct Submitted<F, R, E> {
    op: F,
    reply: Reply<R, E>,
    isolation: Isolation,
}

/// How a job is isolated from the rest of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// The job runs inside its own `SAVEPOINT`: if it fails, everything it
    /// wrote is rolled back and the rest of the batch commits.
    Savepoint,
    /// No savepoint: the job promises to write nothing when it fails (it
    /// validates before its first write). A savepoint re-journals every
    /// page the job touches, a quarter of the cost of a one-row write; hot
    /// paths that can keep the promise skip it. The writer checks the
    /// promise with SQLite's change counter; a job that breaks it fails its
    /// whole batch (rolled back, every caller told) rather than commit a
    /// half-done write.
    NoneWhenFailureWritesNothing,
}

impl<F, R, E> Work for Submitted<F, R, E>
where
    R: Send + 'static,
    E: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
{
    fn isolation(&self) -> Isolation {
        self.isolation
    }

    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let Submitted { op, reply, .. } = *self;
        let outcome = match catch_unwind(AssertUnwindSafe(|| op(conn))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(WriteError::Op(e)),
            Err(panic) => Err(WriteError::Panicked(panic_message(&panic))),
        };
        Ran {
            ok: outcome.is_ok(),
            deliver: Box::new(move |committed| {
                let answer = match committed {
                    Ok(()) => outcome,
                    Err(e) => Err(WriteError::Transaction(e)),
                };
                // The caller may have gone away (client disconnected): the
                // write still happened, there is just nobody left to tell.
                let _ = reply.send(answer);
            }),
        }
    }

    fn reject(self: Box<Self>, error: Arc<rusqlite::Error>) {
        let _ = self.reply.send(Err(WriteError::Transaction(error)));
    }
}

enum Msg {
    Job(Job),
    /// A batch run on a caller's runtime left the WAL due for the writer's
    /// catch-up checkpoint, which only the writer thread runs.
    CatchUp,
    Shutdown,
}

/// What the writer thread and its handles share.
struct Shared {
    /// The read-write connection: locked by the writer thread for each
    /// batch, and by a committer running a batch on a caller's runtime
    /// (`writer/local.rs`). `None` once the writer has shut down.
    conn: Mutex<Option<Connection>>,
    /// Jobs submitted with [`WriterHandle::submit_local`] not run yet.
    local: local::LocalQueue,
    /// How large a batch may grow.
    limits: BatchLimits,
    checkpointer: Option<Checkpointer>,
}

impl Shared {
    fn lock_conn(&self) -> MutexGuard<'_, Option<Connection>> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A write whose transaction has not been answered yet.
///
/// Await it from async code, or call [`Pending::wait`] from a plain thread.
#[must_use = "a write is only known to be durable once its Pending resolves"]
pub struct Pending<R, E> {
    rx: oneshot::Receiver<Result<R, WriteError<E>>>,
}

impl<R, E> Pending<R, E> {
    /// A write that failed before it could be submitted (e.g. its input
    /// did not encode), answered like any other failed write.
    pub(crate) fn failed(error: E) -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(WriteError::Op(error)));
        Pending { rx }
    }

    /// Blocks the current thread until the write committed (or failed).
    ///
    /// Must not be called from inside an async runtime; await instead.
    pub fn wait(self) -> Result<R, WriteError<E>> {
        self.rx
            .blocking_recv()
            .unwrap_or(Err(WriteError::WriterGone))
    }
}

impl<R, E> Future for Pending<R, E> {
    type Output = Result<R, WriteError<E>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(WriteError::WriterGone)))
    }
}

/// A cheap, cloneable way to submit work to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl WriterHandle {
    /// Queues `op` to run inside the next transaction and returns a
    /// [`Pending`] that resolves once that transaction committed.
    ///
    /// `op` runs on the writer thread inside its own savepoint and must not
    /// begin, commit or roll back transactions itself. Returning `Err` rolls
    /// back everything `op` did and nothing else.
    pub fn submit<R, E, F>(&self, op: F) -> Pending<R, E>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    {
        self.submit_with(Isolation::Savepoint, op)
    }

    /// Like [`WriterHandle::submit`], with the job's [`Isolation`] chosen by
    /// the caller.
    pub fn submit_with<R, E, F>(&self, isolation: Isolation, op: F) -> Pending<R, E>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    {
        let (job, pending) = job(isolation, op);
        self.hand_over(job);
        pending
    }

    fn hand_over(&self, job: Job) {
        // If the writer is gone the job is dropped with its reply sender, and
        // the Pending resolves to WriterGone.
        let _ = self.tx.send(Msg::Job(job));
    }
}

/// `op` as a job, and the [`Pending`] its answer resolves.
fn job<R, E, F>(isolation: Isolation, op: F) -> (Job, Pending<R, E>)
where
    R: Send + 'static,
    E: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
{
    let (reply, rx) = oneshot::channel();
    let job = Submitted {
        op,
        reply,
        isolation,
    };
    (Box::new(job), Pending { rx })
}

/// The writer thread and the connection it owns.
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`, which must be a read-write
    /// connection (see [`crate::connection::open_rw`]).
    pub fn spawn(mut conn: Connection, config: WriterConfig) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let checkpointer = Checkpointer::attach(&mut conn, config.wal);
        let shared = Arc::new(Shared {
            local: local::LocalQueue::new(&conn, config.local_batches),
            limits: BatchLimits {
                max_batch_jobs: config.max_batch_jobs,
                max_batch_duration: config.max_batch_duration,
            },
            conn: Mutex::new(Some(conn)),
            checkpointer,
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("keyferry-writer".into())
            .spawn(move || run(&thread_shared, &rx))?;
        Ok(Self {
            handle: WriterHandle { tx, shared },
            thread: Some(thread),
        })
    }

    /// A handle for submitting work.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Commits everything already queued, then stops the thread and closes
    /// the connection. Work submitted afterwards fails with
    /// [`WriteError::WriterGone`].
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.handle.tx.send(Msg::Shutdown);
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn run(shared: &Shared, rx: &Receiver<Msg>) {
    let mut shutdown = false;
    while !shutdown {
        let first = match rx.recv() {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::CatchUp) => {
                if let (Some(checkpointer), Some(conn)) =
                    (&shared.checkpointer, shared.lock_conn().as_ref())
                {
                    checkpointer.catch_up(conn);
                }
                continue;
            }
            Ok(Msg::Shutdown) | Err(_) => break,
        };
        let guard = shared.lock_conn();
        let conn = guard
            .as_ref()
            .expect("only this thread closes the connection");
        let answers = match run_cached(conn, "BEGIN IMMEDIATE") {
            Ok(()) => run_batch(conn, first, &shared.limits, || {
                loop {
                    match rx.try_recv() {
                        Ok(Msg::Job(job)) => return Some(job),
                        // The catch-up follows every batch anyway.
                        Ok(Msg::CatchUp) => {}
                        Ok(Msg::Shutdown) => {
                            shutdown = true;
                            return None;
                        }
                        Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return None,
                    }
                }
            }),
            Err(e) => {
                let e = Arc::new(e);
                metrics::counter!("keyferry_writer_transaction_errors_total").increment(1);
                tracing::warn!(error = %e, "could not begin a write transaction");
                // Nothing was written; the caller gets the error and may retry.
                first.reject(e);
                Answers::none()
            }
        };
        // The connection is free before anyone hears back: a caller that
        // answers with its next job (a committer, see `writer/local.rs`)
        // finds it unlocked.
        drop(guard);
        answers.deliver();
        if let Some(checkpointer) = &shared.checkpointer
            && checkpointer.due()
            && let Some(conn) = shared.lock_conn().as_ref()
        {
            checkpointer.catch_up(conn);
        }
    }
    // The checkpointer's connection closes before the writer's: the last
    // connection to close removes the WAL.
    if let Some(checkpointer) = &shared.checkpointer {
        checkpointer.stop();
    }
    drop(shared.lock_conn().take());
}

/// How large a batch may grow (from [`WriterConfig`]).
struct BatchLimits {
    max_batch_jobs: usize,
    max_batch_duration: Duration,
}

/// Runs `first`, then the jobs `more` yields while the batch is within
/// `limits`, inside the transaction the caller began, and commits (or
/// rolls back a poisoned batch). Returns the answers, for the caller to
/// deliver once it let go of the connection.
fn run_batch(
    conn: &Connection,
    first: Job,
    limits: &BatchLimits,
    mut more: impl FnMut() -> Option<Job>,
) -> Answers {
    // A new transaction: nothing read in an earlier one may be reused.
    new_epoch();
    let started = Instant::now();
    let mut delivered = Vec::with_capacity(16);
    let mut poisoned = None;
    run_job(conn, first, &mut delivered, &mut poisoned);
    while poisoned.is_none()
        && delivered.len() < limits.max_batch_jobs
        && started.elapsed() < limits.max_batch_duration
        && let Some(job) = more()
    {
        run_job(conn, job, &mut delivered, &mut poisoned);
    }
    let commit_started = Instant::now();
    let committed = match poisoned.map_or_else(|| run_cached(conn, "COMMIT"), Err) {
        Ok(()) => Ok(()),
        Err(e) => {
            // A failed COMMIT (disk full, I/O error) may leave the
            // transaction open, and a poisoned batch must not commit at
            // all: roll back so the next batch starts clean.
            let _ = conn.execute_batch("ROLLBACK");
            new_epoch();
            metrics::counter!("keyferry_writer_transaction_errors_total").increment(1);
            tracing::error!(error = %e, "write transaction failed to commit");
            Err(Arc::new(e))
        }
    };
    metrics::histogram!("keyferry_writer_commit_seconds")
        .record(commit_started.elapsed().as_secs_f64());
    metrics::histogram!("keyferry_writer_batch_jobs").record(delivered.len() as f64);
    metrics::counter!("keyferry_writer_transactions_total").increment(1);
    Answers {
        delivered,
        committed,
    }
}

/// What a batch owes its callers once it committed or failed.
#[must_use = "callers wait for their answers"]
struct Answers {
    delivered: Vec<Ran>,
    committed: Result<(), Arc<rusqlite::Error>>,
}

impl Answers {
    /// Nothing to answer (the batch never began).
    fn none() -> Self {
        Self {
            delivered: Vec::new(),
            committed: Ok(()),
        }
    }

    /// Answers every caller, then runs the batch's after-commit hooks on
    /// this thread (see [`after_commit`] for why in that order).
    fn deliver(self) {
        for ran in self.delivered {
            (ran.deliver)(self.committed.clone());
        }
        run_hooks_from(0, self.committed.is_ok());
    }
}

/// Runs `job` isolated as it asked, keeping its effects only if it
/// succeeded, and queues its answer in `delivered`.
///
/// The savepoint statements are prepared once and cached: with one small
/// command per job, re-parsing them was a fifth of the writer's time. If a
/// failed job's writes cannot be undone (its savepoint does not roll back,
/// or an unisolated job wrote before failing), they would commit with the
/// batch, so the whole batch is `poisoned`: it is rolled back and every
/// caller in it gets the error.
fn run_job(
    conn: &Connection,
    job: Job,
    delivered: &mut Vec<Ran>,
    poisoned: &mut Option<rusqlite::Error>,
) {
    let hooks_before = hooks_len();
    if job.isolation() == Isolation::NoneWhenFailureWritesNothing {
        let changes_before = conn.total_changes();
        let ran = job.run(conn);
        if !ran.ok {
            run_hooks_from(hooks_before, false);
        }
        if !ran.ok && conn.total_changes() != changes_before {
            tracing::error!("an unisolated write failed after writing; failing the batch");
            *poisoned = Some(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("a failed write left changes behind; the batch was rolled back".into()),
            ));
        }
        delivered.push(ran);
        return;
    }
    if let Err(e) = run_cached(conn, "SAVEPOINT job") {
        // Without a savepoint the job cannot be isolated: refuse to run it.
        let e = Arc::new(e);
        delivered.push(Ran {
            ok: false,
            deliver: Box::new(move |_| job.reject(e)),
        });
        return;
    }
    let ran = job.run(conn);
    let ended = if ran.ok {
        run_cached(conn, "RELEASE job")
    } else {
        run_hooks_from(hooks_before, false);
        roll_back_to(conn, "job")
    };
    if let Err(e) = ended {
        tracing::error!(error = %e, "could not end a job savepoint; failing the batch");
        *poisoned = Some(e);
    }
    delivered.push(ran);
}

/// Runs a statement without parameters or rows (`BEGIN IMMEDIATE`,
/// `COMMIT`, savepoints) through the connection's statement cache, so it
/// is parsed once rather than for every batch or job.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

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

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// Tuning of the group commit.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most closures committed in one transaction.
    pub max_batch_jobs: usize,
    /// Longest a transaction stays open collecting work. Caps the time other
    /// processes wait on SQLite's write lock (its busy handler is unfair, so
    /// long transactions starve them).
    pub max_batch_duration: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch_jobs: 4096,
            max_batch_duration: Duration::from_millis(20),
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
    fn run(self: Box<Self>, conn: &Connection) -> Ran;
    fn reject(self: Box<Self>, error: Arc<rusqlite::Error>);
}

type Job = Box<dyn Work>;

type Reply<R, E> = oneshot::Sender<Result<R, WriteError<E>>>;

/// A caller's closure and the channel its answer goes back on.
struct Submitted<F, R, E> {
    op: F,
    reply: Reply<R, E>,
}

impl<F, R, E> Work for Submitted<F, R, E>
where
    R: Send + 'static,
    E: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let Submitted { op, reply } = *self;
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
    Shutdown,
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
        let (reply, rx) = oneshot::channel();
        // If the writer is gone the job is dropped with its reply sender, and
        // the Pending resolves to WriterGone.
        let _ = self.tx.send(Msg::Job(Box::new(Submitted { op, reply })));
        Pending { rx }
    }
}

/// The writer thread and the connection it owns.
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`, which must be a read-write
    /// connection (see [`crate::connection::open_rw`]).
    pub fn spawn(conn: Connection, config: WriterConfig) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("keyferry-writer".into())
            .spawn(move || run(conn, rx, config))?;
        Ok(Self {
            handle: WriterHandle { tx },
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

fn run(conn: Connection, rx: Receiver<Msg>, config: WriterConfig) {
    loop {
        let first = match rx.recv() {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::Shutdown) | Err(_) => return,
        };
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = Arc::new(e);
            metrics::counter!("keyferry_writer_transaction_errors_total").increment(1);
            tracing::warn!(error = %e, "could not begin a write transaction");
            // Nothing was written; the caller gets the error and may retry.
            first.reject(e);
            continue;
        }
        let started = Instant::now();
        let mut delivered = Vec::with_capacity(16);
        let mut shutdown = false;
        delivered.push(run_in_savepoint(&conn, first));
        while delivered.len() < config.max_batch_jobs
            && started.elapsed() < config.max_batch_duration
        {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => delivered.push(run_in_savepoint(&conn, job)),
                Ok(Msg::Shutdown) => {
                    shutdown = true;
                    break;
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        let commit_started = Instant::now();
        let committed = match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => {
                // A failed COMMIT (disk full, I/O error) may leave the
                // transaction open; roll it back so the next batch starts clean.
                let _ = conn.execute_batch("ROLLBACK");
                metrics::counter!("keyferry_writer_transaction_errors_total").increment(1);
                tracing::error!(error = %e, "write transaction failed to commit");
                Err(Arc::new(e))
            }
        };
        metrics::histogram!("keyferry_writer_commit_seconds")
            .record(commit_started.elapsed().as_secs_f64());
        metrics::histogram!("keyferry_writer_batch_jobs").record(delivered.len() as f64);
        metrics::counter!("keyferry_writer_transactions_total").increment(1);
        for ran in delivered {
            (ran.deliver)(committed.clone());
        }
        if shutdown {
            return;
        }
    }
}

/// Runs `job` inside a savepoint, keeping its effects only if it succeeded.
fn run_in_savepoint(conn: &Connection, job: Job) -> Ran {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        // Without a savepoint the job cannot be isolated: refuse to run it.
        let e = Arc::new(e);
        return Ran {
            ok: false,
            deliver: Box::new(move |_| job.reject(e)),
        };
    }
    let ran = job.run(conn);
    let end = if ran.ok {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "could not end a job savepoint");
    }
    ran
}

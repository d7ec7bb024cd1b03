//! The write path: every keyspace write is a closure over a [`Tx`] that the
//! process's single group-committing writer runs inside its transaction.
//!
//! A [`Write`] resolves once that transaction committed. Effects that must
//! only be reported for committed work (the expired-keys counter) travel
//! back with the result and are recorded when the [`Write`] resolves, so a
//! rolled-back write never inflates a metric.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use keyferry_journal::event::{Event, Seq};
use keyferry_journal::writer::{Cost, Isolation, Pending, WriterHandle};
use rusqlite::Connection;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::read::View;

/// What every write needs, shared by the store, its staged keys and its
/// sweeper. Owns no thread, so it may be dropped anywhere (even on the
/// writer thread, inside a finished job).
pub(crate) struct Shared {
    pub(crate) writer: WriterHandle,
    pub(crate) clock: Clock,
    /// Collections with more elements than this are freed lazily (moved to
    /// the trash and reaped in chunks) instead of inside the write.
    pub(crate) inline_free_limit: u64,
    /// How long a staged key lives without an append before the sweeper
    /// treats it as abandoned.
    pub(crate) staging_lease_ms: i64,
}

impl Shared {
    /// Queues `op` to run in the writer's next transaction, inside its own
    /// savepoint.
    pub(crate) fn write<R, F>(self: &Arc<Self>, op: F) -> Write<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.write_with(Isolation::Savepoint, op)
    }

    /// Queues `op` with the given isolation (see [`Isolation`]).
    pub(crate) fn write_with<R, F>(self: &Arc<Self>, isolation: Isolation, op: F) -> Write<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(isolation, None, op)
    }

    /// Like [`Shared::write_with`], but committed on the caller's runtime
    /// when it can be (see `WriterHandle::submit_local`).
    pub(crate) fn write_local<R, F>(
        self: &Arc<Self>,
        isolation: Isolation,
        cost: Cost,
        op: F,
    ) -> Write<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(isolation, Some(cost), op)
    }

    /// Submits `op` to the writer thread, or with `local` set through
    /// `WriterHandle::submit_local`.
    fn submit<R, F>(self: &Arc<Self>, isolation: Isolation, local: Option<Cost>, op: F) -> Write<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(self);
        let job = move |conn: &Connection| {
            let mut tx = Tx {
                conn,
                now: shared.clock.now(),
                expired: 0,
                shared: &shared,
            };
            let value = op(&mut tx)?;
            Ok((value, tx.expired))
        };
        let pending = match local {
            Some(cost) => self.writer.submit_local(isolation, cost, job),
            None => self.writer.submit_with(isolation, job),
        };
        Write { pending }
    }
}

/// A write in progress inside the writer's transaction.
///
/// Keyspace operations are methods on `Tx` (see `import_key`, `list_push`,
/// …) so that several of them, plus journal events, can be combined in one
/// atomic [`crate::Store::write`].
pub struct Tx<'c> {
    conn: &'c Connection,
    now: i64,
    expired: u64,
    shared: &'c Shared,
}

impl<'c> Tx<'c> {
    /// The connection, inside the transaction. Do not begin, commit or roll
    /// back on it: return an error to undo this write.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// The time this write runs at, in Unix milliseconds. Keys with
    /// `expire_at_ms <= now` are absent.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Reads that see this transaction's own writes.
    pub fn view(&self) -> View<'c> {
        View::new(self.conn, self.now)
    }

    /// Appends journal events in this transaction: they commit if and only
    /// if the rest of the write does.
    pub fn append_events(&self, events: &[Event]) -> Result<Vec<Seq>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        Ok(keyferry_journal::append_in(self.conn, events)?)
    }

    /// Counts a key this write found expired and removed.
    pub(crate) fn note_expired(&mut self) {
        self.expired += 1;
    }

    pub(crate) fn shared(&self) -> &'c Shared {
        self.shared
    }
}

/// A write whose transaction has not committed yet.
///
/// Await it from async code, or [`Write::wait`] from a plain thread.
/// Dropping it does not cancel the write.
#[must_use = "a write is only known to be durable once it resolves"]
pub struct Write<R> {
    pending: Pending<(R, u64), StoreError>,
}

impl<R> Write<R> {
    /// Blocks until the write committed or failed. Must not be called from
    /// inside an async runtime: await the `Write` there instead.
    pub fn wait(self) -> Result<R, StoreError> {
        finish(self.pending.wait())
    }
}

impl<R> Future for Write<R> {
    type Output = Result<R, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.pending).poll(cx).map(finish)
    }
}

fn finish<R>(
    outcome: Result<(R, u64), keyferry_journal::writer::WriteError<StoreError>>,
) -> Result<R, StoreError> {
    let (value, expired) = outcome?;
    if expired > 0 {
        metrics::counter!("keyferry_expired_keys_total").increment(expired);
    }
    Ok(value)
}

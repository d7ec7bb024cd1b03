//! Active expiry: a background sweeper doing bounded work per tick.
//!
//! Reads already treat a key whose `expire_at_ms <= now` as absent (lazy
//! expiry), and writes remove such a key before touching it; the sweeper
//! reclaims the space of expired keys nobody touches. Each tick is one
//! writer job that removes at most `max_expired_per_tick` expired keys
//! (big collections go to the trash in O(1)) and deletes at most
//! `max_reaped_per_tick` elements of trashed keys, so the write lock is
//! never held for long. A tick that hit a limit is followed by another at
//! once, so a backlog drains quickly; otherwise the sweeper sleeps.
//!
//! Before each tick the sweeper asks a read-only connection of its own
//! whether anything is due: an idle server then runs no write transaction
//! ten times a second, which woke the writer thread and held up whichever
//! client write arrived during it (a visible share of the wake latency's
//! 99th percentile).

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use keyferry_journal::connection::open_ro;
use rusqlite::Connection;

use crate::db::STAGING;
use crate::error::StoreError;
use crate::keys;
use crate::store::Store;
use crate::trash;
use crate::write::{Shared, Tx, Write};

/// How the sweeper paces itself.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// Pause between ticks; `None` runs no background sweeper (call
    /// [`Store::sweep_once`] instead).
    pub interval: Option<Duration>,
    /// Most expired keys removed per tick.
    pub max_expired_per_tick: usize,
    /// Most elements of trashed keys deleted per tick.
    pub max_reaped_per_tick: u64,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_millis(100)),
            max_expired_per_tick: 200,
            max_reaped_per_tick: 5_000,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired keys removed.
    pub expired: u64,
    /// Abandoned staged imports (lease ran out) dropped.
    pub abandoned_staging: u64,
    /// Elements of trashed keys deleted.
    pub reaped: u64,
}

impl SweepReport {
    /// Whether the tick stopped at a limit, so more work is probably left.
    fn hit_limit(&self, config: &SweeperConfig) -> bool {
        self.expired + self.abandoned_staging >= config.max_expired_per_tick as u64
            || self.reaped >= config.max_reaped_per_tick
    }
}

impl Tx<'_> {
    /// One bounded sweep (see the module docs).
    pub fn sweep(&mut self, config: &SweeperConfig) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for (db, meta) in keys::find_expired(self.conn(), self.now(), config.max_expired_per_tick)?
        {
            // Inline limit 0: a collection of any size goes to the trash, so
            // the tick's cost is bounded by the key count alone.
            self.discard(&meta, 0)?;
            if db == STAGING {
                report.abandoned_staging += 1;
            } else {
                self.note_expired();
                report.expired += 1;
            }
        }
        report.reaped = trash::reap(self.conn(), config.max_reaped_per_tick)?;
        Ok(report)
    }
}

impl Store {
    /// Runs one sweeper tick now, with this store's limits.
    pub fn sweep_once(&self) -> Write<SweepReport> {
        sweep_once(self.shared(), self.sweeper_config().clone())
    }
}

fn sweep_once(shared: &Arc<Shared>, config: SweeperConfig) -> Write<SweepReport> {
    shared.write(move |tx| tx.sweep(&config))
}

/// Whether a sweep at `now` would find anything to do: an expired key (or
/// abandoned staged import), or a trashed key to reap. The sweep's own
/// queries, asked for one row.
fn work_due(reader: &Connection, now: i64) -> rusqlite::Result<bool> {
    Ok(!keys::find_expired(reader, now, 1)?.is_empty() || trash::first(reader)?.is_some())
}

/// The background sweeper thread; stops when dropped.
pub(crate) struct Sweeper {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts a sweeper ticking every `interval` on the database at `path`.
    pub(crate) fn spawn(
        shared: Arc<Shared>,
        path: PathBuf,
        config: SweeperConfig,
        interval: Duration,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("keyferry-sweeper".into())
            .spawn(move || {
                // Without it every tick is a write, as if work were due.
                let reader = open_ro(&path)
                    .inspect_err(
                        |error| tracing::warn!(%error, "the sweeper checks for work by writing"),
                    )
                    .ok();
                loop {
                    let due = reader
                        .as_ref()
                        .is_none_or(|reader| work_due(reader, shared.clock.now()).unwrap_or(true));
                    let swept = if due {
                        sweep_once(&shared, config.clone()).wait()
                    } else {
                        Ok(SweepReport::default())
                    };
                    let pause = match swept {
                        Ok(report) if report.hit_limit(&config) => Duration::ZERO,
                        Ok(_) => interval,
                        Err(StoreError::Closed) => return,
                        Err(error) => {
                            tracing::warn!(%error, "expiry sweep failed; retrying next tick");
                            interval
                        }
                    };
                    match stopped.recv_timeout(pause) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        // Dropping the sender disconnects the channel, which wakes the
        // thread from its pause; a tick in progress finishes first.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests;

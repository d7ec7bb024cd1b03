//! A small pool of read-only connections.
//!
//! In WAL mode readers never block the writer or each other, so reads run on
//! their own connections, opened on demand and kept for reuse (each keeps
//! its cache of prepared statements warm). The pool never limits how many
//! readers run at once; it only caps how many idle ones it keeps.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use keyferry_journal::connection::open_ro;
use rusqlite::Connection;

/// Idle read-only connections to one database file.
pub(crate) struct ReaderPool {
    path: PathBuf,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`ReaderPool::clear`]: a reader finishing afterwards closes
    /// its connection instead of keeping it.
    closed: AtomicBool,
}

impl ReaderPool {
    pub(crate) fn new(path: PathBuf, max_idle: usize) -> Self {
        Self {
            path,
            max_idle,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// An idle connection, or a new one: for a reader that keeps it over
    /// several calls and then hands it to [`ReaderPool::give_back`].
    pub(crate) fn take(&self) -> rusqlite::Result<Connection> {
        match self.lock().pop() {
            Some(conn) => Ok(conn),
            None => open_ro(&self.path),
        }
    }

    /// Keeps `conn` for the next reader if it is clean (no transaction
    /// left open) and the pool has room and is not cleared; else closes it.
    pub(crate) fn give_back(&self, conn: Connection) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle
            && conn.is_autocommit()
            && !self.closed.load(Ordering::Acquire)
        {
            idle.push(conn);
        }
    }

    /// Closes every idle connection; readers still running close theirs
    /// when they finish.
    pub(crate) fn clear(&self) {
        self.closed.store(true, Ordering::Release);
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The vector is always valid, even if a holder panicked.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

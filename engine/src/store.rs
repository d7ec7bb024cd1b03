//! [`Store`]: the keyspace in one SQLite file, its single writer, its
//! readers and its sweeper.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyferry_journal::connection::{Durability, open_rw};
use keyferry_journal::schema::migrate;
use keyferry_journal::{Cost, Isolation, Journal, Writer, WriterConfig};

use crate::clock::Clock;
use crate::error::{OpenError, StoreError};
use crate::expiry::{Sweeper, SweeperConfig};
use crate::pool::ReaderPool;
use crate::read::View;
use crate::schema;
use crate::write::{Shared, Tx, Write};

/// How to open a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Whether each commit is fsynced.
    pub durability: Durability,
    /// Group-commit tuning of the writer.
    pub writer: WriterConfig,
    /// Active expiry pacing.
    pub sweeper: SweeperConfig,
    /// Idle read-only connections kept for reuse.
    pub max_idle_readers: usize,
    /// A replaced or deleted collection with more elements than this is
    /// freed lazily by the sweeper instead of inside the write.
    pub inline_free_limit: u64,
    /// How long a staged import may go without an append before it counts
    /// as abandoned and the sweeper drops it.
    pub staging_lease: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Normal,
            writer: WriterConfig::default(),
            sweeper: SweeperConfig::default(),
            max_idle_readers: 8,
            inline_free_limit: 1_000,
            staging_lease: Duration::from_secs(3600),
        }
    }
}

/// The keyspace store. Cheap to clone; clones share one writer, one reader
/// pool and one sweeper.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    owner: Arc<Owner>,
}

/// The parts that own threads and connections; stopped by
/// [`Store::shutdown`] or when the last clone is dropped.
struct Owner {
    path: PathBuf,
    journal: Journal,
    readers: ReaderPool,
    sweeper_config: SweeperConfig,
    closed: AtomicBool,
    sweeper: Mutex<Option<Sweeper>>,
    writer: Mutex<Option<Writer>>,
}

/// Begins a read transaction on `conn`. Cached statements rather than
/// `Connection::transaction`, which parses `BEGIN` and `ROLLBACK` anew on
/// every read.
fn begin_read(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("BEGIN")?.execute([]).map(drop)
}

/// Ends the read transaction on `conn`, releasing its snapshot so that the
/// WAL can be checkpointed past it.
fn end_read(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("COMMIT")?.execute([]).map(drop)
}

/// A read transaction kept open for several reads, such as the reads of
/// one client's pipeline: they all see one committed state, and the
/// transaction's begin and end (a shared-memory lock taken and released
/// with `fcntl` calls, a third of a `GET`) are paid once rather than per
/// read. It sees nothing committed after it began, so its holder must drop
/// it before a read that has to see a later write, and should not keep it
/// long: while it is open the WAL cannot be checkpointed past it.
/// Dropping it ends the transaction.
pub struct Snapshot {
    /// In a mutex only so that a snapshot can be shared (`Sync`), as a
    /// server's per-client state must be; one holder uses it at a time.
    conn: Mutex<Option<rusqlite::Connection>>,
    store: Store,
}

impl Snapshot {
    /// Runs `op` in the snapshot, as [`Store::read`] runs it in a fresh
    /// one; `now` (for expiry) is the time of this call.
    pub fn read<R>(
        &self,
        op: impl FnOnce(&View<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let conn = conn.as_ref().expect("only `end` takes it");
        op(&View::new(conn, self.store.shared.clock.now()))
    }

    /// Ends the read transaction and returns the connection to the pool,
    /// unless a read panicked: that connection is closed, whatever state
    /// it was left in. A connection whose transaction did not end is
    /// closed by `give_back`, which ends it too.
    fn end(&mut self) -> rusqlite::Result<()> {
        let conn = self.conn.get_mut().unwrap_or_else(PoisonError::into_inner);
        let Some(conn) = conn.take() else {
            return Ok(());
        };
        if std::thread::panicking() {
            return Ok(());
        }
        let ended = end_read(&conn);
        self.store.owner.readers.give_back(conn);
        ended
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`: brings the
    /// journal's and keyspace's tables up to date, starts the process's one
    /// writer with a journal attached to it, and starts the sweeper.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Store, OpenError> {
        let mut conn = open_rw(path, config.durability)?;
        migrate(
            &mut conn,
            keyferry_journal::COMPONENT,
            keyferry_journal::MIGRATIONS,
        )?;
        migrate(&mut conn, schema::COMPONENT, schema::MIGRATIONS)?;
        let writer = Writer::spawn(conn, config.writer)?;
        let shared = Arc::new(Shared {
            writer: writer.handle(),
            clock: Clock::default(),
            inline_free_limit: config.inline_free_limit,
            staging_lease_ms: i64::try_from(config.staging_lease.as_millis()).unwrap_or(i64::MAX),
        });
        let sweeper = match config.sweeper.interval {
            Some(interval) => Some(Sweeper::spawn(
                Arc::clone(&shared),
                path.to_path_buf(),
                config.sweeper.clone(),
                interval,
            )?),
            None => None,
        };
        let owner = Owner {
            path: path.to_path_buf(),
            journal: Journal::attach(path, writer.handle()),
            readers: ReaderPool::new(path.to_path_buf(), config.max_idle_readers),
            sweeper_config: config.sweeper,
            closed: AtomicBool::new(false),
            sweeper: Mutex::new(sweeper),
            writer: Mutex::new(Some(writer)),
        };
        Ok(Store {
            shared,
            owner: Arc::new(owner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.owner.path
    }

    /// The journal, appending through this store's writer.
    pub fn journal(&self) -> &Journal {
        &self.owner.journal
    }

    /// Runs `op` in the writer's next transaction (inside its own
    /// savepoint: returning an error undoes exactly what `op` wrote,
    /// journal events included). Resolves once committed.
    ///
    /// `op` runs on the writer thread: it must not block on other writes,
    /// nor own the last clone of this `Store` (dropping it there would
    /// make the writer wait for itself).
    pub fn write<R, F>(&self, op: F) -> Write<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.shared.write(op)
    }

    /// Like [`Store::write`] with the job's [`Isolation`] chosen by the
    /// caller: [`Isolation::NoneWhenFailureWritesNothing`] skips the
    /// savepoint for an `op` that validates everything before its first
    /// write (if it breaks that promise, its whole batch fails instead of
    /// committing half of it).
    pub fn write_with<R, F>(&self, isolation: Isolation, op: F) -> Write<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.shared.write_with(isolation, op)
    }

    /// Like [`Store::write_with`], but committed on the current tokio
    /// runtime's thread together with the other writes submitted this way
    /// in the same turn of the runtime, when the writer thread is free and
    /// `cost` is [`Cost::Fast`] (see `WriterHandle::submit_local`);
    /// otherwise queued like any write. For a server's commands: group
    /// commit without a hand-over to the writer thread and back.
    pub fn write_local<R, F>(&self, isolation: Isolation, cost: Cost, op: F) -> Write<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.shared.write_local(isolation, cost, op)
    }

    /// Runs `op` on a read-only connection inside one read transaction, so
    /// all its reads see the same committed state: every write that
    /// resolved before the call, and nothing uncommitted.
    pub fn read<R>(
        &self,
        op: impl FnOnce(&View<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut snapshot = self.snapshot()?;
        let result = snapshot.read(op);
        snapshot.end()?;
        result
    }

    /// Opens a read transaction to run several reads in (see [`Snapshot`]).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        if self.owner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let conn = self.owner.readers.take()?;
        if let Err(e) = begin_read(&conn) {
            self.owner.readers.give_back(conn);
            return Err(e.into());
        }
        Ok(Snapshot {
            conn: Mutex::new(Some(conn)),
            store: self.clone(),
        })
    }

    /// Stops the sweeper, commits everything already submitted, and closes
    /// the writer and the idle readers. Later reads and writes fail with
    /// [`StoreError::Closed`].
    pub fn shutdown(&self) {
        self.owner.shutdown();
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn sweeper_config(&self) -> &SweeperConfig {
        &self.owner.sweeper_config
    }
}

impl Owner {
    fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        drop(
            self.sweeper
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        // Readers first, the writer last: the last connection to close
        // checkpoints the WAL and deletes it only if it can write, and the
        // readers are read-only.
        self.readers.clear();
        if let Some(writer) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            writer.shutdown();
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use keyferry_journal::Event;

    use super::*;
    use crate::keyvalue::KeyValue;
    use crate::test_support::{b, db, store};

    #[test]
    fn data_and_journal_survive_a_reopen() {
        let (dir, store) = store();
        let event = Event::BatchCommitted {
            run_id: "r".into(),
            db: 0,
            keys: 1,
            bytes: 1,
        };
        store
            .import_key(
                db(5),
                b("k"),
                KeyValue::String(b("v")),
                None,
                vec![event.clone()],
            )
            .wait()
            .unwrap();
        store.shutdown();
        let reopened = Store::open(store.path(), StoreConfig::default()).unwrap();
        assert_eq!(
            reopened.read(|v| v.string_get(db(5), b"k")).unwrap(),
            Some(b("v"))
        );
        let logged: Vec<Event> = reopened
            .journal()
            .read_from(0)
            .unwrap()
            .map(|e| e.unwrap().event)
            .collect();
        assert_eq!(logged, vec![event]);
        reopened.shutdown();
        drop(dir);
    }

    #[test]
    fn a_snapshot_reads_one_state_and_ends_when_dropped() {
        let (_dir, store) = store();
        let set = |value: &'static str| {
            store
                .write(move |tx| {
                    tx.string_set(
                        db(0),
                        b"k",
                        value.as_bytes(),
                        crate::string::Expiry::Persist,
                    )
                })
                .wait()
                .unwrap()
        };
        set("old");
        let snapshot = store.snapshot().unwrap();
        let get = |s: &Snapshot| s.read(|v| v.string_get(db(0), b"k")).unwrap();
        assert_eq!(get(&snapshot), Some(b("old")));
        set("new");
        assert_eq!(get(&snapshot), Some(b("old")), "a later commit is not seen");
        assert_eq!(
            store.read(|v| v.string_get(db(0), b"k")).unwrap(),
            Some(b("new"))
        );
        drop(snapshot);
        // Its connection went back to the pool with the transaction ended:
        // the next snapshot sees the new value.
        assert_eq!(get(&store.snapshot().unwrap()), Some(b("new")));
        store.shutdown();
        assert!(matches!(store.snapshot(), Err(StoreError::Closed)));
    }

    #[test]
    fn a_shut_down_store_refuses_reads_and_writes() {
        let (_dir, store) = store();
        store.shutdown();
        assert!(matches!(
            store.read(|v| v.string_get(db(0), b"k")),
            Err(StoreError::Closed)
        ));
        let write = store
            .import_key(db(0), b("k"), KeyValue::String(b("v")), None, vec![])
            .wait();
        assert!(matches!(write, Err(StoreError::Closed)));
    }
}

//! [`Engine`]: the keyspace store and the supervision tree as one handle,
//! the seed of the embedding API.

use std::path::PathBuf;

use std::sync::Arc;

use keyferry_engine::blocking::WaitQueues;
use keyferry_engine::{OpenError, Store, StoreConfig};
use keyferry_journal::Durability;
use keyferry_journal::compaction::SnapshotPolicy;

use crate::jobs::{self, DequeuerOptions};
use crate::supervisor::{FailedActor, RestartPolicy, Supervisor, SupervisorError};
use crate::{maintenance, waiters};

/// How to open an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The SQLite file (created if missing).
    pub db: PathBuf,
    /// Whether each commit is fsynced.
    pub durability: Durability,
    /// How the supervisor restarts failed actors.
    pub restart_policy: RestartPolicy,
    /// When the journal is snapshotted and compacted.
    pub snapshot_policy: SnapshotPolicy,
    /// The job dequeuer: reclaims expired leases and runs queued migration
    /// steps nobody holds.
    pub dequeuer: DequeuerOptions,
}

impl EngineConfig {
    /// The defaults for the file `db`: normal durability and the default
    /// restart policy.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            durability: Durability::default(),
            restart_policy: RestartPolicy::default(),
            snapshot_policy: SnapshotPolicy::default(),
            dequeuer: DequeuerOptions::default(),
        }
    }
}

/// Why an engine could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The database file could not be opened or upgraded.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The supervision tree could not start.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
}

/// A keyferry engine: one database file, its single writer, and the
/// supervised actors working on it.
pub struct Engine {
    store: Store,
    durability: Durability,
    waits: Arc<WaitQueues>,
    supervisor: Supervisor,
}

impl Engine {
    /// Opens the database (creating and migrating it as needed) and starts
    /// the supervision tree.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let EngineConfig {
            db,
            durability,
            restart_policy,
            snapshot_policy,
            dequeuer,
        } = config;
        let store_config = StoreConfig {
            durability,
            ..StoreConfig::default()
        };
        // Opening runs migrations and may wait on another process's write
        // lock: keep it off the async workers.
        let store = blocking(move || Store::open(&db, store_config)).await?;
        // The engine's own actors: blocked clients' timers, journal
        // snapshots and compaction, and the job dequeuer (which runs queued
        // migration steps nobody holds). A migration's tracker, scanner and
        // applier run under their own supervisor (`migration::orchestrator`
        // or one CLI step).
        let waits = Arc::new(WaitQueues::default());
        let children = vec![
            waiters::child_spec(Arc::clone(&waits)),
            maintenance::child_spec(store.journal().clone(), snapshot_policy),
            jobs::child_spec(store.clone(), dequeuer),
        ];
        match Supervisor::start(children, restart_policy, store.journal().clone()).await {
            Ok(supervisor) => Ok(Engine {
                store,
                durability,
                waits,
                supervisor,
            }),
            Err(e) => {
                blocking(move || store.shutdown()).await;
                Err(e.into())
            }
        }
    }

    /// The keyspace store: what the RESP server runs commands on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether each commit is fsynced, as opened: other connections to
    /// the same file (e.g. the server's WAL checkpoints) must match it.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The wait queues of blocked clients (`BLPOP` and friends), whose
    /// timeouts the supervised waiter registry actor fires.
    pub fn waits(&self) -> &Arc<WaitQueues> {
        &self.waits
    }

    /// The actors the supervisor gave up restarting (see
    /// [`RestartPolicy`]); empty while everything is healthy.
    pub fn failed_actors(&self) -> Vec<FailedActor> {
        self.supervisor.failed_actors()
    }

    /// Stops the actors (each finishes what it is doing), then commits
    /// everything already submitted and closes the database.
    pub async fn shutdown(self) {
        let Engine {
            store, supervisor, ..
        } = self;
        supervisor.stop().await;
        // Joins the writer and sweeper threads.
        blocking(move || store.shutdown()).await;
    }
}

/// Runs blocking work on tokio's blocking pool, re-raising its panic here.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        // A blocking task is only cancelled when the runtime shuts down,
        // which cannot happen while this future is being polled; so the
        // error is a panic.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

//! [`Engine`]: the keyspace store and the supervision tree as one handle,
//! the seed of the embedding API.

use std::path::PathBuf;

use std::sync::Arc;

use keyferry_engine::blocking::WaitQueues;
use keyferry_engine::{OpenError, Store, StoreConfig};
use keyferry_journal::Durability;

use crate::supervisor::{FailedActor, RestartPolicy, Supervisor, SupervisorError};
use crate::waiters;

/// How to open an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The SQLite file (created if missing).
    pub db: PathBuf,
    /// Whether each commit is fsynced.
    pub durability: Durability,
    /// How the supervisor restarts failed actors.
    pub restart_policy: RestartPolicy,
}

impl EngineConfig {
    /// The defaults for the file `db`: normal durability and the default
    /// restart policy.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            durability: Durability::default(),
            restart_policy: RestartPolicy::default(),
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
        } = config;
        let store_config = StoreConfig {
            durability,
            ..StoreConfig::default()
        };
        // Opening runs migrations and may wait on another process's write
        // lock: keep it off the async workers.
        let store = blocking(move || Store::open(&db, store_config)).await?;
        // The tracker, scanner, applier and job dequeuer join the tree
        // here as their issues land.
        let waits = Arc::new(WaitQueues::default());
        let children = vec![waiters::child_spec(Arc::clone(&waits))];
        match Supervisor::start(children, restart_policy, store.journal().clone()).await {
            Ok(supervisor) => Ok(Engine {
                store,
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

//! The handle API for Rust programs that embed keyferry: open an engine
//! in-process, serve it over RESP on your own listener, and run live
//! migrations from a source Redis — all through typed async methods,
//! with no actor messages in sight.
//!
//! ```no_run
//! use keyferry::embed::{Config, Cutover, Keyferry, MigrationSpec};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let keyferry = Keyferry::open(Config::new("data.sqlite")).await?;
//! let migration = keyferry
//!     .start_migration(MigrationSpec::new(
//!         "run-1",
//!         "redis://127.0.0.1:6379",
//!         Cutover::Auto { switch_cmd: Some("true".into()) },
//!     ))
//!     .await?;
//! let report = migration.wait().await?;
//! println!("frozen for {:?}", report.freeze);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6380").await?;
//! keyferry
//!     .serve(listener, Default::default(), async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! keyferry.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! A [`Keyferry`] is one SQLite file with its single group-committing
//! writer and the supervised actors working on it (the same engine
//! `keyferry serve` runs). Migrations ([`Keyferry::start_migration`]) are
//! steered through a [`MigrationHandle`]; they record every state change in
//! the file's journal, exactly as the `keyferry migrate` and
//! `keyferry control` commands do, so those commands (from another
//! process) and this API see and steer the same runs. The guide is
//! `docs/embedding.md`.
//!
//! Every method needs a tokio runtime (multi-threaded or not): the engine's
//! actors and the server's connections are tokio tasks.

mod jobs;
mod migration;
mod serve;

use std::path::PathBuf;

use keyferry_actors::{Engine, EngineConfig, EngineError};

pub use jobs::JobResult;
pub use keyferry_actors::migration::applier::Applied;
pub use keyferry_actors::migration::orchestrator::MigrateReport;
pub use keyferry_actors::migration::{Settings, TtlMode};
pub use keyferry_actors::source::info::Channels;
pub use keyferry_actors::{Durability, FailedActor, RestartPolicy};
pub use keyferry_engine::{Db, KeyValue, Store, StoreError};
pub use keyferry_journal::jobs::{Backoff, Job, JobError, JobStatus, NewJob};
pub use keyferry_journal::registry::Throttles;
pub use keyferry_journal::{Counters, RunStatus};
pub use migration::{
    ControlError, Cutover, MigrationError, MigrationHandle, MigrationSpec, MigrationStatus,
};
pub use serve::{ServeError, ServeOptions};

/// How to open a [`Keyferry`]: the database file and, optionally, its
/// durability and the actors' restart policy.
#[derive(Debug, Clone)]
pub struct Config {
    engine: EngineConfig,
}

impl Config {
    /// The defaults for the file `db` (created if missing): normal
    /// durability (a commit survives a process crash, not a power loss,
    /// like Redis's `appendfsync everysec`) and the default restart policy.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Config {
            engine: EngineConfig::new(db),
        }
    }

    /// Sets whether each commit is fsynced ([`Durability::Full`]) or not.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.engine.durability = durability;
        self
    }

    /// Sets how the supervisor restarts the engine's actors when they fail.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.engine.restart_policy = policy;
        self
    }
}

/// Why [`Keyferry::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database file could not be opened or brought up to date, or the
    /// supervision tree could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// An open keyferry engine: one database file, its writer, the supervised
/// actors, and the migrations started through it.
///
/// Not `Clone`: share it as `Arc<Keyferry>` (e.g. to [`Keyferry::serve`]
/// from a spawned task) and unwrap it again for [`Keyferry::shutdown`].
pub struct Keyferry {
    engine: Engine,
    migrations: migration::Migrations,
}

impl std::fmt::Debug for Keyferry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyferry")
            .field("db", &self.store().path())
            .finish_non_exhaustive()
    }
}

impl Keyferry {
    /// Opens (creating and upgrading as needed) the database file and
    /// starts the supervision tree.
    ///
    /// Awaits the file's opening on tokio's blocking pool (it may wait for
    /// another process's write lock) and the actors' start-up.
    ///
    /// # Errors
    /// [`OpenError::Engine`] when the file cannot be opened or migrated
    /// (wrong permissions, not a keyferry file, a newer schema) or the
    /// actors cannot start.
    pub async fn open(config: Config) -> Result<Keyferry, OpenError> {
        Ok(Keyferry {
            engine: Engine::open(config.engine).await?,
            migrations: migration::Migrations::default(),
        })
    }

    /// The keyspace store, for reading and seeding data in-process (see
    /// [`Store::read`], [`Store::import_key`], [`Store::write`]).
    ///
    /// Writes made through it commit like any other, but a running
    /// [`Keyferry::serve`] does not hear of them: clients blocked in
    /// `BLPOP` and friends are not woken and `WATCH` does not see the key
    /// change. Seed data before serving, or write through a client while
    /// serving.
    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// The actors the supervisor gave up restarting (see
    /// [`RestartPolicy`]); empty while everything is healthy.
    pub fn failed_actors(&self) -> Vec<FailedActor> {
        self.engine.failed_actors()
    }

    /// Stops everything and closes the file:
    /// 1. asks every migration still running to stop (one in live sync
    ///    ends it cleanly) and waits up to a few seconds for them; those
    ///    still running after that are interrupted — each resumes from its
    ///    last checkpoint when started again with the same run id, and
    ///    their handles' [`MigrationHandle::wait`] answers
    ///    [`MigrationError::Interrupted`];
    /// 2. stops the actors (each finishes what it is doing);
    /// 3. commits everything already submitted and closes the database.
    ///
    /// Any [`Keyferry::serve`] has ended by then (it borrows `self`).
    /// Dropping a `Keyferry` instead interrupts its migrations and stops its
    /// actors without waiting for them.
    pub async fn shutdown(self) {
        self.migrations.stop().await;
        self.engine.shutdown().await;
    }
}

//! `keyferry serve`: opens the engine on a database file and answers Redis
//! clients on a TCP port until SIGINT or SIGTERM.
//!
//! Shutdown is graceful: the listener closes first, every connection
//! finishes and answers the commands it already read, then the engine stops
//! its actors and closes the database, and the process exits 0.
//!
//! The serving itself (`serve_engine`: accept loop, connections, WAL
//! checkpoints, drain) takes an open engine, a bound listener and a
//! shutdown signal, so an embedding program (`crate::embed`) runs the same
//! server on its own listener and stops it with its own future.

mod checkpoint;
mod commands;
mod connection;
mod hand_over;
mod pubsub;
mod session;
mod state;
mod transaction;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keyferry_actors::{Durability, Engine, EngineConfig, EngineError};
use keyferry_journal::compaction::SnapshotPolicy;
use metrics_exporter_prometheus::BuildError;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use self::state::Server;
use crate::cli::{DurabilityArg, ServeArgs};
use crate::shutdown::{Shutdown, ShutdownSignal, trigger_on_signals};
use crate::telemetry::serve_metrics;

/// How long connections get to finish their in-flight commands once
/// shutdown starts; the rest are dropped after it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to pause accepting after `accept` fails (typically out of file
/// descriptors), instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why `serve` could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The tokio runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// The SIGINT/SIGTERM handlers could not be installed.
    #[error("cannot watch for SIGINT and SIGTERM: {0}")]
    Signals(#[source] io::Error),
    /// The metrics endpoint could not start.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: BuildError,
    },
    /// The engine could not open the database.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `KEYFERRY_JOURNAL_RETENTION` is not a number of events.
    #[error("{0}")]
    Retention(keyferry_journal::compaction::CompactionError),
}

/// Threads for the sockets: one core fewer than the machine has, leaving a
/// core for the checkpointer, the writer thread's own work and local
/// clients. The socket threads also commit their clients' writes
/// (`journal/src/writer/local.rs`). Measured on 2 cores with
/// redis-benchmark (-c 50, -P 1): one thread served SET at 81-84k ops/s
/// and HSET at 72-74k; two threads, contending with redis-benchmark and
/// waking each other, 66-72k and 59-61k.
fn io_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Runs `keyferry serve` to completion on a new multi-threaded runtime.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads())
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let shutdown = Shutdown::new();
    let signal = shutdown.signal();
    trigger_on_signals(shutdown).map_err(ServeError::Signals)?;
    // Bind before opening the database: a port in use fails fast, without
    // touching the file.
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    if let Some(addr) = args.metrics_addr {
        serve_metrics(addr).map_err(|source| ServeError::Metrics { addr, source })?;
    }
    let durability = match args.durability {
        DurabilityArg::Normal => Durability::Normal,
        DurabilityArg::Full => Durability::Full,
    };
    // KEYFERRY_JOURNAL_RETENTION: how many journal events to keep.
    let snapshot_policy = SnapshotPolicy::from_env().map_err(ServeError::Retention)?;
    let engine = Engine::open(EngineConfig {
        durability,
        snapshot_policy,
        ..EngineConfig::new(&args.db)
    })
    .await?;
    // The bound address, not the requested one: `--port 0` picks a port.
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, db = %args.db.display(), "serving");
    serve_engine(&engine, listener, bound, args.requirepass, signal).await;
    engine.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Answers Redis clients of `engine` on `listener` (bound to `addr`, which
/// `INFO` and `CLIENT LIST` report) until `signal` fires, truncating the
/// WAL meanwhile; then waits for the open connections as
/// [`accept_until_shutdown`] does. The engine stays open: `keyferry serve`
/// and embedding programs (`crate::embed`) close it themselves.
pub(crate) async fn serve_engine(
    engine: &Engine,
    listener: TcpListener,
    addr: SocketAddr,
    requirepass: Option<String>,
    signal: ShutdownSignal,
) {
    let checkpoints = tokio::spawn(checkpoint::run(
        engine.store().path().to_path_buf(),
        engine.durability(),
        signal.clone(),
    ));
    let server = Arc::new(Server::new(
        engine.store().clone(),
        Arc::clone(engine.waits()),
        addr,
        requirepass,
    ));
    accept_until_shutdown(listener, Arc::clone(&server), signal).await;
    drop(server);
    // Its connection must close before the engine's, so the last one to
    // close removes the WAL.
    if let Err(e) = checkpoints.await {
        tracing::error!(error = %e, "the WAL checkpoint task failed");
    }
}

/// Accepts connections until `signal` fires, then waits (up to
/// [`DRAIN_TIMEOUT`]) for the open ones to finish.
async fn accept_until_shutdown(
    listener: TcpListener,
    server: Arc<Server>,
    mut signal: ShutdownSignal,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = signal.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "client connected");
                    if server.clients.count() as u64 >= server.config.maxclients.load(Ordering::Relaxed) {
                        server.clients.rejected.fetch_add(1, Ordering::Relaxed);
                        connections.spawn(refuse(stream));
                    } else {
                        connections.spawn(connection::serve(stream, Arc::clone(&server), signal.clone()));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(done) = connections.join_next(), if !connections.is_empty() => log_connection_end(done),
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(done) = connections.join_next().await {
            log_connection_end(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "dropping connections that did not finish in time"
        );
        connections.abort_all();
    }
}

/// Answers a connection over `maxclients` with Redis's error and closes it.
async fn refuse(mut stream: TcpStream) -> io::Result<()> {
    stream
        .write_all(b"-ERR max number of clients reached\r\n")
        .await?;
    stream.shutdown().await
}

fn log_connection_end(done: Result<io::Result<()>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        // Resets and broken pipes are the client's business.
        Ok(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
        Err(e) => tracing::error!(error = %e, "connection task failed"),
    }
}

//! What every migration subcommand does before and after its work: build
//! the runtime, resolve the source's password, open the destination,
//! serve metrics, turn SIGINT/SIGTERM into a stop, and shut the store down
//! so everything submitted is committed before the process exits.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use keyferry_actors::migration::{Run, Settings, TtlMode, throttles_event};
use keyferry_actors::source::Source;
use keyferry_engine::{Store, StoreConfig};
use keyferry_journal::Event;
use tokio::sync::watch;

use crate::cli::{SourceArgs, Throttles, TtlMode as TtlModeArg};
use crate::telemetry::serve_metrics;

/// Runs `work` on a fresh multi-threaded runtime, with metrics on
/// `metrics_addr` if given.
pub fn block_on<T>(
    metrics_addr: Option<SocketAddr>,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        if let Some(addr) = metrics_addr {
            serve_metrics(addr).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        }
        work.await
    })
}

/// Opens the destination file (creating it) off the async workers.
pub async fn open_store(path: &Path) -> Result<Store, String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || Store::open(&owned, StoreConfig::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Opens an existing destination file: steps that only steer a run must
/// not create an empty file by mistake.
pub async fn open_existing_store(path: &Path) -> Result<Store, String> {
    if !path.exists() {
        return Err(format!("no such destination file: {}", path.display()));
    }
    open_store(path).await
}

/// The source, with its password resolved.
pub fn source(args: SourceArgs) -> Result<Source, String> {
    Source::new(args.from, args.from_password_file.as_deref()).map_err(|e| e.to_string())
}

/// The source, once it answered: steps that write check this before they
/// create the destination file or start actors that would retry.
pub async fn reachable_source(args: SourceArgs) -> Result<Source, String> {
    let source = source(args)?;
    source.connect(0).await.map_err(|e| e.to_string())?;
    Ok(source)
}

/// The run `id` on `store` reading from `source`.
pub fn run(id: String, source: Source, store: Store) -> Run {
    Run { id, source, store }
}

/// The step's settings from its flags (unset flags keep the defaults; the
/// run's recorded throttles override both).
pub fn settings(throttles: &Throttles) -> Settings {
    let defaults = Settings::default();
    Settings {
        scan_count: throttles
            .scan_count
            .map_or(defaults.scan_count, |n| n.get()),
        max_concurrency: throttles
            .max_concurrency
            .map_or(defaults.max_concurrency, |n| n.get()),
        max_rps: throttles.max_rps.map(|n| n.get()).or(defaults.max_rps),
        batch_keys: throttles
            .batch_keys
            .map_or(defaults.batch_keys, |n| n.get()),
        batch_bytes: throttles.batch_bytes.unwrap_or(defaults.batch_bytes),
        ttl_mode: match throttles.ttl_mode {
            Some(TtlModeArg::Drop) => TtlMode::Drop,
            _ => TtlMode::Preserve,
        },
    }
}

/// The event recording the throttles given on the command line, if any.
pub fn recorded_throttles(run_id: &str, throttles: &Throttles) -> Option<Event> {
    throttles_event(
        run_id,
        throttles.scan_count.map(|n| n.get()),
        throttles.max_concurrency.map(|n| n.get()),
        throttles.max_rps.map(|n| n.get()),
        throttles.batch_keys.map(|n| n.get()),
        throttles.batch_bytes,
    )
}

/// A receiver that turns `true` on the first SIGINT or SIGTERM.
pub fn stop_on_signals() -> Result<watch::Receiver<bool>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Commits everything submitted and closes the file.
pub async fn close(store: Store) {
    let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
}

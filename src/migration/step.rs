//! What every migration subcommand does before and after its work: build
//! the runtime, resolve the source's password, open the destination,
//! serve metrics, turn SIGINT/SIGTERM into a stop, run a step as a job of
//! this process, and shut the store down so everything submitted is
//! committed before the process exits.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;

use keyferry_actors::migration::steps::{self, StepOutcome, StepSettings, StepSpec, Worker};
use keyferry_actors::migration::{Run, TtlMode};
use keyferry_actors::source::Source;
use keyferry_engine::{Store, StoreConfig};
use tokio::sync::watch;

use super::progress;
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

/// Opens an existing destination file (see
/// [`super::output::open_destination`]) off the async workers: steps that
/// work on a run must not create an empty file by mistake.
pub async fn open_existing_store(path: &Path) -> Result<Store, String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || super::output::open_destination(&owned))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
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

/// The step's settings from its flags: the throttles given (recorded on
/// the run when the step starts, so they win over older ones) and the TTL
/// mode.
pub fn step_settings(throttles: &Throttles) -> StepSettings {
    StepSettings {
        scan_count: throttles.scan_count.map(|n| n.get()),
        max_concurrency: throttles.max_concurrency.map(|n| n.get()),
        max_rps: throttles.max_rps.map(|n| n.get()),
        batch_keys: throttles.batch_keys.map(|n| n.get()),
        batch_bytes: throttles.batch_bytes,
        ttl_mode: match throttles.ttl_mode {
            Some(TtlModeArg::Drop) => TtlMode::Drop,
            _ => TtlMode::Preserve,
        },
    }
}

/// Runs the step `spec` as a job leased to this process
/// ([`steps::run_step`]), printing progress to stderr, until it ends or a
/// signal stops it (it then gives its lease back; its last committed batch
/// is where it continues). Returns the run id with what the step did.
pub async fn run_step(
    store: &Store,
    source: Source,
    spec: StepSpec,
) -> Result<(String, StepOutcome), String> {
    let stop = stop_on_signals()?;
    let run_id = spec.run_id.clone();
    let progress = progress::report(Run {
        id: run_id.clone(),
        source: source.clone(),
        store: store.clone(),
    });
    let outcome = steps::run_step(store, source, spec, &Worker::this_process(), stop).await;
    progress.abort();
    if std::io::stderr().is_terminal() {
        // Ends the progress line, which is redrawn in place there.
        eprintln!();
    }
    outcome
        .map(|outcome| (run_id, outcome))
        .map_err(|e| e.to_string())
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

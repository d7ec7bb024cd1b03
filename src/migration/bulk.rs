//! `keyferry bulk` and `keyferry apply-dirty`.

use std::sync::Arc;

use keyferry_actors::migration::Run;
use keyferry_actors::migration::applier::{self, ApplierConfig, Mode};
use keyferry_actors::migration::bulk::{self, BulkConfig};
use keyferry_actors::migration::sweep::sweep;
use keyferry_actors::source::FetchLimits;
use keyferry_actors::supervisor::{ChildSpec, RestartPolicy, Supervisor};
use tokio::sync::watch;

use super::{progress, step};
use crate::cli::{ApplyDirtyArgs, BulkArgs};

/// `bulk`: copies every key, resumable with `--resume`.
pub fn bulk(args: BulkArgs) -> Result<(), String> {
    step::block_on(args.throttles.metrics_addr, async move {
        let source = step::reachable_source(args.source).await?;
        let store = step::open_store(&args.run.to).await?;
        let run = step::run(args.run.run_id, source, store.clone());
        let settings = step::settings(&args.throttles);
        let outcome = async {
            bulk::prepare(
                &run,
                args.resume,
                step::recorded_throttles(&run.id, &args.throttles),
            )
            .await
            .map_err(|e| e.to_string())?;
            let done = Arc::new(watch::Sender::new(None));
            let spec = bulk::child_spec(BulkConfig {
                run: run.clone(),
                settings,
                limits: FetchLimits::default(),
                done: Arc::clone(&done),
            });
            let counters = supervise(&run, spec, bulk::NAME, &done).await?;
            println!(
                "bulk copy of run {} done: {} scanned, {} migrated, {} skipped, {} bytes",
                run.id,
                counters.scanned_keys,
                counters.migrated_keys,
                counters.skipped_keys,
                counters.migrated_bytes
            );
            Ok(())
        }
        .await;
        step::close(store).await;
        outcome
    })
}

/// `apply-dirty`: applies the run's pending keys until none is left.
pub fn apply_dirty(args: ApplyDirtyArgs) -> Result<(), String> {
    step::block_on(args.throttles.metrics_addr, async move {
        let source = step::reachable_source(args.source).await?;
        let store = step::open_existing_store(&args.run.to).await?;
        let run = step::run(args.run.run_id, source, store.clone());
        let settings = step::settings(&args.throttles);
        let outcome = async {
            if run.row().map_err(|e| e.to_string())?.is_none() {
                return Err(format!("no run {} in {}", run.id, args.run.to.display()));
            }
            if let Some(event) = step::recorded_throttles(&run.id, &args.throttles) {
                run.record(vec![event]).await.map_err(|e| e.to_string())?;
            }
            if args.sweep {
                let report = sweep(&run, &settings).await.map_err(|e| e.to_string())?;
                println!(
                    "sweep of run {}: {} keys compared, {} marked dirty, {} marked deleted",
                    run.id, report.compared, report.dirtied, report.deleted
                );
            }
            let done = Arc::new(watch::Sender::new(None));
            let spec = applier::child_spec(ApplierConfig {
                run: run.clone(),
                settings,
                limits: FetchLimits::default(),
                mode: Mode::UntilEmpty,
                done: Arc::clone(&done),
            });
            let applied = supervise(&run, spec, applier::NAME, &done).await?;
            println!(
                "run {}: {} keys applied, {} deleted, {} skipped",
                run.id, applied.applied, applied.deleted, applied.skipped
            );
            Ok(())
        }
        .await;
        step::close(store).await;
        outcome
    })
}

/// Runs one supervised actor until it reports on `done`, the supervisor
/// gives up on it, or a signal stops it (its last committed batch is the
/// point to resume from).
async fn supervise<T: Clone>(
    run: &Run,
    spec: ChildSpec,
    name: &str,
    done: &Arc<watch::Sender<Option<Result<T, String>>>>,
) -> Result<T, String> {
    let mut signals = step::stop_on_signals()?;
    let supervisor = Supervisor::start(
        vec![spec],
        RestartPolicy::default(),
        run.store.journal().clone(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let progress = progress::report(run.clone());
    let mut rx = done.subscribe();
    let outcome = loop {
        if let Some(outcome) = rx.borrow_and_update().clone() {
            break outcome;
        }
        if let Some(failed) = supervisor
            .failed_actors()
            .into_iter()
            .find(|a| a.name == name)
        {
            break Err(format!("{name} failed for good: {}", failed.reason));
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = signals.changed() => break Err("interrupted; continue with the same command (bulk: add --resume)".to_string()),
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
        }
    };
    progress.abort();
    supervisor.stop().await;
    eprintln!();
    outcome
}

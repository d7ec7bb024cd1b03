//! `keyferry bulk` and `keyferry apply-dirty` (with `--sweep`, a sweep
//! first). Each step runs as a job of the destination's job queue
//! (`keyferry_actors::migration::steps`): leased to this process while it
//! runs, so a second command for the same step of the same run fails at
//! once naming the process that runs it, and a step whose process died is
//! continued by the next command (bulk: `--resume`) or by a `keyferry
//! serve` on the file.

use keyferry_actors::migration::steps::{StepKind, StepOutcome, StepSpec};

use super::step;
use crate::cli::{ApplyDirtyArgs, BulkArgs};

/// `bulk`: copies every key, resumable with `--resume`.
pub fn bulk(args: BulkArgs) -> Result<(), String> {
    step::block_on(args.throttles.metrics_addr, async move {
        let source = step::reachable_source(args.source).await?;
        let store = step::open_store(&args.run.to).await?;
        let spec = StepSpec {
            settings: step::step_settings(&args.throttles),
            resume: args.resume,
            ..StepSpec::new(StepKind::Bulk, args.run.run_id, &source)
        };
        let outcome = step::run_step(&store, source, spec).await;
        step::close(store).await;
        outcome.map(|(run_id, outcome)| print(&run_id, &outcome))
    })
}

/// `apply-dirty`: applies the run's pending keys until none is left, after
/// a sweep with `--sweep`.
pub fn apply_dirty(args: ApplyDirtyArgs) -> Result<(), String> {
    step::block_on(args.throttles.metrics_addr, async move {
        let source = step::reachable_source(args.source).await?;
        let store = step::open_existing_store(&args.run.to).await?;
        let spec = |kind| StepSpec {
            settings: step::step_settings(&args.throttles),
            ..StepSpec::new(kind, args.run.run_id.clone(), &source)
        };
        let steps = if args.sweep {
            vec![spec(StepKind::Sweep), spec(StepKind::ApplyDirty)]
        } else {
            vec![spec(StepKind::ApplyDirty)]
        };
        let mut outcome = Ok(());
        for spec in steps {
            match step::run_step(&store, source.clone(), spec).await {
                Ok((run_id, done)) => print(&run_id, &done),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        step::close(store).await;
        outcome
    })
}

/// Prints what a step did.
fn print(run_id: &str, outcome: &StepOutcome) {
    match outcome {
        StepOutcome::Bulk(counters) => println!(
            "bulk copy of run {run_id} done: {} scanned, {} migrated, {} skipped, {} bytes",
            counters.scanned_keys,
            counters.migrated_keys,
            counters.skipped_keys,
            counters.migrated_bytes
        ),
        StepOutcome::Applied(applied) => println!(
            "run {run_id}: {} keys applied, {} deleted, {} skipped",
            applied.applied, applied.deleted, applied.skipped
        ),
        StepOutcome::Swept(report) => println!(
            "sweep of run {run_id}: {} keys compared, {} marked dirty, {} marked deleted",
            report.compared, report.dirtied, report.deleted
        ),
        StepOutcome::Verified(report) => println!(
            "verify of run {run_id}: {} keys checked, {} mismatch(es)",
            report.checked_keys, report.mismatches
        ),
    }
}

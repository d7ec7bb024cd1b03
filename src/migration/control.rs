//! `keyferry control --run-id ID --to PATH pause|resume|abort|set …`:
//! steers a run, possibly running in other processes, by appending an
//! event to its destination's journal. The run's steps poll their row of
//! the registry and obey (see `keyferry_actors::migration`).
//!
//! What each action does to a run in each state, and why the check and
//! the append share one write transaction, is decided in one place shared
//! with the embedding API: `keyferry_actors::migration::control`.
//! "Unchanged" exits 0 and records nothing; "refused" exits 1.

use keyferry_actors::migration::{self, ControlRequest, ControlVerdict, Controlled};
use keyferry_journal::RunStatus;
use keyferry_journal::registry::Throttles;

pub use super::output::CommandError;
use super::output::open_destination;
use crate::cli::{ControlAction, ControlArgs, SetArgs};

/// Who changed the status, as recorded in `RunStatusChanged`'s reason.
const REASON: &str = "keyferry control";

/// Runs `keyferry control`: prints what it did, or fails (exit 1) for an
/// unknown run or a refused action.
pub fn run(args: ControlArgs) -> Result<(), CommandError> {
    let store = open_destination(&args.run.to)?;
    let request = request(&args.action);
    let Controlled { was, verdict } = migration::control(&store, &args.run.run_id, request, REASON)
        .wait()?
        .ok_or_else(|| CommandError::unknown_run(&args.run))?;
    let run_id = &args.run.run_id;
    match verdict {
        ControlVerdict::Recorded => println!("{}", done(request, run_id, was)),
        ControlVerdict::Unchanged => println!("run {run_id} is already {}", was.as_str()),
        ControlVerdict::Refused(why) => {
            return Err(CommandError::Refused {
                run_id: run_id.clone(),
                status: was,
                why,
            });
        }
    }
    Ok(())
}

/// The request `action` makes.
fn request(action: &ControlAction) -> ControlRequest {
    match action {
        ControlAction::Pause => ControlRequest::Pause,
        ControlAction::Resume => ControlRequest::Resume,
        ControlAction::Abort => ControlRequest::Abort,
        ControlAction::Set(SetArgs {
            max_rps,
            max_concurrency,
            batch_keys,
            scan_count,
        }) => ControlRequest::Set(Throttles {
            max_rps: max_rps.map(|n| n.get()),
            max_concurrency: max_concurrency.map(|n| n.get()),
            batch_keys: batch_keys.map(|n| n.get()),
            batch_bytes: None,
            scan_count: scan_count.map(|n| n.get()),
        }),
    }
}

/// What recording `request` did to run `run_id`, which was `was`.
fn done(request: ControlRequest, run_id: &str, was: RunStatus) -> String {
    let was = was.as_str();
    match request {
        ControlRequest::Pause => format!("paused run {run_id} (was {was})"),
        ControlRequest::Resume => format!("resumed run {run_id} (was {was})"),
        ControlRequest::Abort => format!("aborted run {run_id} (was {was})"),
        ControlRequest::Set(Throttles {
            max_rps,
            max_concurrency,
            batch_keys,
            scan_count,
            ..
        }) => {
            let set: Vec<String> = [
                ("max_rps", max_rps),
                ("max_concurrency", max_concurrency),
                ("batch_keys", batch_keys),
                ("scan_count", scan_count),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name} {v}")))
            .collect();
            format!("set {} on run {run_id}", set.join(", "))
        }
    }
}

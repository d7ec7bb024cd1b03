//! `keyferry control --run-id ID --to PATH pause|resume|abort|set …`:
//! steers a run, possibly running in other processes, by appending an
//! event to its destination's journal. The run's steps poll their row of
//! the registry and obey (see `keyferry_actors::migration`).
//!
//! The run's state is checked and the event appended in one write
//! transaction, so two operators (or an operator and a finishing step)
//! cannot interleave: an aborted run, for instance, can never be resumed
//! by a `resume` that read its state just before the abort committed.
//!
//! | action   | running      | paused      | failed       | aborted  | completed |
//! |----------|--------------|-------------|--------------|----------|-----------|
//! | `pause`  | paused       | (unchanged) | refused      | refused  | refused   |
//! | `resume` | (unchanged)  | running     | refused      | refused  | refused   |
//! | `abort`  | aborted      | aborted     | aborted      | (unchanged) | refused |
//! | `set`    | throttles    | throttles   | throttles    | refused  | refused   |
//!
//! A failed run is restarted by its step (e.g. `keyferry bulk --resume`),
//! not by `resume`, which would only claim it runs. "Unchanged" exits 0
//! and records nothing; "refused" exits 1.

use keyferry_journal::registry::{self, RunRow};
use keyferry_journal::{Event, RunStatus};

pub use super::output::CommandError;
use super::output::open_destination;
use crate::cli::{ControlAction, ControlArgs, SetArgs};

/// Who changed the status, as recorded in `RunStatusChanged`'s reason.
const REASON: &str = "keyferry control";

/// Runs `keyferry control`: prints what it did, or fails (exit 1) for an
/// unknown run or a refused action.
pub fn run(args: ControlArgs) -> Result<(), CommandError> {
    let store = open_destination(&args.run.to)?;
    let request = Request::from(&args.action);
    let run_id = args.run.run_id.clone();
    let decided = store
        .write(move |tx| {
            let Some(row) = registry::run(tx.conn(), &run_id)? else {
                return Ok(None);
            };
            let verdict = request.verdict(&row);
            if let Verdict::Record(event) = &verdict {
                tx.append_events(std::slice::from_ref(event))?;
            }
            Ok(Some((row.status, verdict)))
        })
        .wait()?;
    let (was, verdict) = decided.ok_or_else(|| CommandError::unknown_run(&args.run))?;
    let run_id = &args.run.run_id;
    match verdict {
        Verdict::Record(_) => println!("{}", request.done(run_id, was)),
        Verdict::Unchanged => println!("run {run_id} is already {}", was.as_str()),
        Verdict::Refuse(why) => {
            return Err(CommandError::Refused {
                run_id: run_id.clone(),
                status: was,
                why,
            });
        }
    }
    Ok(())
}

/// The action, owned, so it can move into the writer's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Pause,
    Resume,
    Abort,
    Set {
        max_rps: Option<u32>,
        max_concurrency: Option<u32>,
        batch_keys: Option<u32>,
        scan_count: Option<u32>,
    },
}

impl From<&ControlAction> for Request {
    fn from(action: &ControlAction) -> Self {
        match action {
            ControlAction::Pause => Request::Pause,
            ControlAction::Resume => Request::Resume,
            ControlAction::Abort => Request::Abort,
            ControlAction::Set(SetArgs {
                max_rps,
                max_concurrency,
                batch_keys,
                scan_count,
            }) => Request::Set {
                max_rps: max_rps.map(|n| n.get()),
                max_concurrency: max_concurrency.map(|n| n.get()),
                batch_keys: batch_keys.map(|n| n.get()),
                scan_count: scan_count.map(|n| n.get()),
            },
        }
    }
}

/// What a request does to a run in a given state.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// Record this event.
    Record(Event),
    /// The run already is where the request would take it.
    Unchanged,
    /// The run's state forbids the request, for this reason.
    Refuse(&'static str),
}

impl Request {
    /// The verdict on this request for `row` (the module's table).
    fn verdict(self, row: &RunRow) -> Verdict {
        use RunStatus::{Aborted, Failed, Paused, Running};
        let status = |status| {
            Verdict::Record(Event::RunStatusChanged {
                run_id: row.run_id.clone(),
                status,
                reason: Some(REASON.to_string()),
            })
        };
        match (self, row.status) {
            (Request::Pause, Running) => status(Paused),
            (Request::Pause, Paused) | (Request::Resume, Running) | (Request::Abort, Aborted) => {
                Verdict::Unchanged
            }
            (Request::Pause, _) => Verdict::Refuse("only a running run can be paused"),
            (Request::Resume, Paused) => status(Running),
            (Request::Resume, Aborted) => Verdict::Refuse("an aborted run stays aborted"),
            (Request::Resume, Failed) => Verdict::Refuse(
                "restart its step instead (e.g. keyferry bulk --resume), which resumes the run",
            ),
            (Request::Resume, _) => Verdict::Refuse("only a paused run can be resumed"),
            (Request::Abort, Running | Paused | Failed) => status(Aborted),
            (Request::Abort, _) => Verdict::Refuse("a finished run cannot be aborted"),
            (
                Request::Set {
                    max_rps,
                    max_concurrency,
                    batch_keys,
                    scan_count,
                },
                Running | Paused | Failed,
            ) => Verdict::Record(Event::ThrottlesChanged {
                run_id: row.run_id.clone(),
                max_rps,
                max_concurrency,
                batch_keys,
                batch_bytes: None,
                scan_count,
            }),
            (Request::Set { .. }, _) => Verdict::Refuse("an ended run has nothing to throttle"),
        }
    }

    /// What recording this request did to run `run_id`, which was `was`.
    fn done(self, run_id: &str, was: RunStatus) -> String {
        let was = was.as_str();
        match self {
            Request::Pause => format!("paused run {run_id} (was {was})"),
            Request::Resume => format!("resumed run {run_id} (was {was})"),
            Request::Abort => format!("aborted run {run_id} (was {was})"),
            Request::Set {
                max_rps,
                max_concurrency,
                batch_keys,
                scan_count,
            } => {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: RunStatus) -> RunRow {
        RunRow {
            run_id: "r1".into(),
            source_uri: String::new(),
            destination: String::new(),
            started_at_ms: 0,
            updated_at_ms: 0,
            status,
            status_reason: None,
            scan_db: 0,
            scan_cursor: 0,
            scan_done: false,
            source_run_id: None,
            scan_source_run_id: None,
            counters: Default::default(),
            batches: 0,
            dirty_keys_seen: 0,
            dirty_events: 0,
            dirty_keys_applied: 0,
            dirty_keys_deleted: 0,
            dirty_keys_skipped: 0,
            needs_sweep: false,
            last_sweep_required_seq: None,
            sweep_reason: None,
            throttles: Default::default(),
            tracker_connected: false,
            tracker_stop_seq: None,
            notify_previous: None,
            last_error: None,
            last_checkpoint_seq: None,
            last_checkpoint_at_ms: None,
            last_seq: 1,
        }
    }

    /// The module's table, as `R`ecord / `U`nchanged / `X` refused.
    #[test]
    fn verdicts_follow_the_table() {
        use RunStatus::{Aborted, Completed, Failed, Paused, Running};
        let set = Request::Set {
            max_rps: Some(5),
            max_concurrency: None,
            batch_keys: None,
            scan_count: None,
        };
        let table = [
            (Request::Pause, "RUXXX"),
            (Request::Resume, "URXXX"),
            (Request::Abort, "RRRUX"),
            (set, "RRRXX"),
        ];
        for (request, expected) in table {
            let got: String = [Running, Paused, Failed, Aborted, Completed]
                .into_iter()
                .map(|status| match request.verdict(&row(status)) {
                    Verdict::Record(_) => 'R',
                    Verdict::Unchanged => 'U',
                    Verdict::Refuse(_) => 'X',
                })
                .collect();
            assert_eq!(got, expected, "{request:?}");
        }
    }
}

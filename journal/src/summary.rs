//! [`Summary`], the projection behind `keyferry status` and `replay`:
//! per-run status and counters, dirty-key registry counts, sweep and tracker
//! state, jobs by state and restarts per actor.
//!
//! It keeps aggregates only — nothing per key or per job — so its memory and
//! its snapshots stay small however long the journal grows. Jobs can be
//! counted by state without remembering each job because every job event
//! implies the state it leaves (see [`Event`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Counters, Event, RunStatus, Seq, Severity};
use crate::projection::Projection;

/// Aggregate state of everything the journal records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Events applied.
    pub events: u64,
    /// Migration runs by run id.
    pub runs: BTreeMap<String, RunSummary>,
    /// Jobs by state.
    pub jobs: JobCounts,
    /// Restarts by actor name.
    pub restarts: BTreeMap<String, ActorRestarts>,
    /// Errors recorded, all runs and components together.
    pub errors: u64,
    /// Warnings recorded, all runs and components together.
    pub warnings: u64,
    /// Snapshots taken.
    pub snapshots: u64,
}

/// What is known about one migration run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Its current state.
    pub status: RunStatus,
    /// Source URI (without password).
    pub source: String,
    /// Destination path.
    pub destination: String,
    /// The latest checkpoint, if any.
    pub checkpoint: Option<CheckpointSummary>,
    /// Batches committed.
    pub batches: u64,
    /// Keys in committed batches.
    pub batch_keys: u64,
    /// Bytes in committed batches.
    pub batch_bytes: u64,
    /// `KeyDirtied` events recorded (a key dirtied twice counts twice).
    pub keys_dirtied: u64,
    /// `KeyDeleted` events recorded.
    pub keys_deleted: u64,
    /// Keys the dirty applier re-imported.
    pub marked_applied: u64,
    /// Keys the dirty applier deleted.
    pub marked_deleted: u64,
    /// Errors recorded for this run.
    pub errors: u64,
    /// Warnings recorded for this run.
    pub warnings: u64,
    /// Keys the dirty applier set aside as unsupported.
    #[serde(default)]
    pub marked_skipped: u64,
    /// Safety sweeps required (`SweepRequired` events).
    #[serde(default)]
    pub sweeps_required: u64,
    /// Safety sweeps completed.
    #[serde(default)]
    pub sweeps_completed: u64,
    /// Sequence number of the latest `SweepRequired`.
    #[serde(default)]
    pub last_sweep_required_seq: Option<Seq>,
    /// True while a sweep is required and none that began after the need
    /// was recorded has completed.
    #[serde(default)]
    pub needs_sweep: bool,
    /// True while the tracker is connected to the source.
    #[serde(default)]
    pub tracker_connected: bool,
    /// The source's `notify-keyspace-events` to restore, while the tool's
    /// change is in force.
    #[serde(default)]
    pub notify_previous: Option<String>,
}

/// A run's latest checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    /// The checkpoint event's sequence number.
    pub seq: Seq,
    /// The source's `run_id` when the cursor was taken.
    pub source_run_id: String,
    /// The `SCAN` cursor to resume from.
    pub cursor: u64,
    /// Cumulative counters.
    pub counters: Counters,
    /// The database `cursor` belongs to.
    #[serde(default)]
    pub db: u32,
    /// True once every database was scanned.
    #[serde(default)]
    pub done: bool,
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Waiting to be leased (new, retried or reclaimed).
    pub queued: u64,
    /// Leased by a worker.
    pub leased: u64,
    /// Acked.
    pub done: u64,
    /// Failed, awaiting a retry or dead-lettering.
    pub failed: u64,
    /// Out of attempts.
    pub dead: u64,
}

/// Restarts of one supervised actor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActorRestarts {
    /// Restarts performed.
    pub restarts: u64,
    /// True once the supervisor gave up on it.
    pub gave_up: bool,
    /// Why it failed last.
    pub last_reason: String,
}

/// The value under `key`, inserted with its default on first mention.
/// Looks up by `&str` first so the hot path (a known key) never allocates.
fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl Summary {
    /// The run `run_id`, created on first mention: events of a run whose
    /// `RunStarted` is missing must still be counted, not dropped.
    fn run(&mut self, run_id: &str) -> &mut RunSummary {
        slot(&mut self.runs, run_id)
    }

    fn record_error(&mut self, run_id: Option<&str>, severity: Severity) {
        let is_error = severity == Severity::Error;
        let count = |errors: &mut u64, warnings: &mut u64| {
            if is_error {
                *errors += 1
            } else {
                *warnings += 1
            }
        };
        count(&mut self.errors, &mut self.warnings);
        if let Some(id) = run_id {
            let run = self.run(id);
            count(&mut run.errors, &mut run.warnings);
        }
    }
}

/// Moves one job from state `from` to state `to`.
fn transition(from: &mut u64, to: &mut u64) {
    *from = from.saturating_sub(1);
    *to += 1;
}

impl Projection for Summary {
    const NAME: &'static str = "summary";
    const VERSION: u32 = 1;

    fn apply(&mut self, seq: Seq, event: &Event) {
        self.events += 1;
        let jobs = &mut self.jobs;
        match event {
            Event::RunStarted {
                run_id,
                source,
                destination,
            } => {
                let run = self.run(run_id);
                run.status = RunStatus::Running;
                run.source.clone_from(source);
                run.destination.clone_from(destination);
            }
            Event::RunStatusChanged { run_id, status, .. } => self.run(run_id).status = *status,
            Event::Checkpoint {
                run_id,
                source_run_id,
                cursor,
                counters,
                db,
                done,
            } => {
                self.run(run_id).checkpoint = Some(CheckpointSummary {
                    seq,
                    source_run_id: source_run_id.clone(),
                    cursor: *cursor,
                    counters: *counters,
                    db: *db,
                    done: *done,
                });
            }
            Event::BatchCommitted {
                run_id,
                keys,
                bytes,
                ..
            } => {
                let run = self.run(run_id);
                run.batches += 1;
                run.batch_keys += keys;
                run.batch_bytes += bytes;
            }
            Event::KeyDirtied { run_id, .. } => self.run(run_id).keys_dirtied += 1,
            Event::KeyDeleted { run_id, .. } => self.run(run_id).keys_deleted += 1,
            Event::KeyMarkedApplied { run_id, .. } => self.run(run_id).marked_applied += 1,
            Event::KeyMarkedDeleted { run_id, .. } => self.run(run_id).marked_deleted += 1,
            Event::ErrorRecorded {
                run_id, severity, ..
            } => self.record_error(run_id.as_deref(), *severity),
            Event::JobEnqueued { .. } => jobs.queued += 1,
            Event::JobLeased { .. } => transition(&mut jobs.queued, &mut jobs.leased),
            Event::JobAcked { .. } => transition(&mut jobs.leased, &mut jobs.done),
            Event::JobFailed { .. } => transition(&mut jobs.leased, &mut jobs.failed),
            Event::JobRetried { .. } => transition(&mut jobs.failed, &mut jobs.queued),
            Event::JobDeadLettered { .. } => transition(&mut jobs.failed, &mut jobs.dead),
            Event::JobLeaseExpired { .. } => transition(&mut jobs.leased, &mut jobs.queued),
            Event::JobHeartbeat { .. } => {}
            Event::ActorRestarted {
                actor,
                reason,
                gave_up,
                ..
            } => {
                let restarts = slot(&mut self.restarts, actor);
                if *gave_up {
                    restarts.gave_up = true;
                } else {
                    restarts.restarts += 1;
                }
                restarts.last_reason.clone_from(reason);
            }
            Event::SnapshotTaken { .. } => self.snapshots += 1,
            Event::KeyMarkedSkipped { run_id, .. } => self.run(run_id).marked_skipped += 1,
            Event::SweepRequired { run_id, .. } => {
                let run = self.run(run_id);
                run.sweeps_required += 1;
                run.last_sweep_required_seq = Some(seq);
                run.needs_sweep = true;
            }
            Event::SweepCompleted {
                run_id,
                started_seq,
            } => {
                let run = self.run(run_id);
                run.sweeps_completed += 1;
                // A need recorded after the sweep began still stands.
                if run
                    .last_sweep_required_seq
                    .is_none_or(|s| s <= *started_seq)
                {
                    run.needs_sweep = false;
                }
            }
            Event::TrackerState {
                run_id, connected, ..
            } => self.run(run_id).tracker_connected = *connected,
            Event::NotificationsChanged {
                run_id, previous, ..
            } => {
                // The first unrestored setting is the one to restore, as in
                // the registry.
                let pending = &mut self.run(run_id).notify_previous;
                if pending.is_none() {
                    *pending = Some(previous.clone());
                }
            }
            Event::NotificationsRestored { run_id } => self.run(run_id).notify_previous = None,
            Event::ThrottlesChanged { run_id, .. } | Event::TrackerStopRequested { run_id } => {
                // Mentioned, so the run exists; their effect is the
                // registry's business (status), not a summary's.
                self.run(run_id);
            }
        }
    }
}

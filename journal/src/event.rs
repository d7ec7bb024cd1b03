//! The typed events the journal records.
//!
//! Payloads are encoded with `rmp_serde::to_vec_named`, so every field is
//! stored under its name: reordering fields in a variant can never silently
//! swap two values, and a field added later with `#[serde(default)]` decodes
//! from older rows. Never use `skip_serializing_if` here (it breaks
//! positional decoders and hides data); never rename a variant or a field
//! without a schema migration and a fixture journal from the old version.
//!
//! Keys are arbitrary bytes (NUL, `\r\n`, invalid UTF-8): they are stored as
//! MessagePack `bin` through `serde_bytes`, never as strings, and never as an
//! array of small integers (which would triple their size).

use serde::{Deserialize, Serialize};

/// A journal sequence number, assigned by SQLite (`INTEGER PRIMARY KEY`).
pub type Seq = i64;

/// The version of the event encoding written by this build. Stored in every
/// row so a later build can tell which rules to decode it with.
pub const EVENT_VERSION: u32 = 1;

/// The lifecycle state of a migration run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RunStatus {
    /// Working (scanning, tracking or applying).
    #[default]
    Running,
    /// Paused by `keyferry control … pause`; resumes where it stopped.
    Paused,
    /// Finished successfully.
    Completed,
    /// Stopped by `keyferry control … abort`.
    Aborted,
    /// Stopped by an error it could not recover from.
    Failed,
}

impl RunStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Paused,
        RunStatus::Completed,
        RunStatus::Aborted,
        RunStatus::Failed,
    ];

    /// The status's stable lower-case name, as stored in the registry's
    /// `status` column and shown by `keyferry status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Completed => "completed",
            RunStatus::Aborted => "aborted",
            RunStatus::Failed => "failed",
        }
    }

    /// The status named `name` (see [`RunStatus::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// How bad a recorded error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Severity {
    /// Work continued, but an operator should know (e.g. the tracker
    /// reconnected and the run needs a safety sweep).
    Warning,
    /// An operation failed (e.g. a key could not be imported).
    Error,
}

impl Severity {
    /// The severity's stable lower-case name, as stored in the registry's
    /// `severity` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// The severity named `name` (see [`Severity::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<Severity> {
        [Severity::Warning, Severity::Error]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Progress counters of a run, as of a checkpoint. Cumulative since the run
/// started, so the latest checkpoint alone tells the whole story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Keys returned by `SCAN`.
    pub scanned_keys: u64,
    /// Keys written to the destination.
    pub migrated_keys: u64,
    /// Keys skipped (vanished or expired between `SCAN` and the read).
    pub skipped_keys: u64,
    /// Keys that failed to import.
    pub error_keys: u64,
    /// Bytes of keys and values written to the destination.
    pub migrated_bytes: u64,
}

/// Every state change an actor can record.
///
/// Job events follow one state machine, which lets projections count jobs
/// by state without remembering every job: `JobEnqueued` → queued;
/// `JobLeased` queued → leased; `JobAcked` leased → done; `JobFailed`
/// leased → failed; `JobRetried` failed → queued; `JobDeadLettered`
/// failed → dead; `JobLeaseExpired` leased → queued. `JobHeartbeat` keeps a
/// job leased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// A migration run began.
    RunStarted {
        /// Operator-chosen run id (`--run-id`).
        run_id: String,
        /// Source URI with any password removed.
        source: String,
        /// Destination SQLite path.
        destination: String,
    },
    /// A run changed state (paused, resumed, finished, aborted, failed).
    RunStatusChanged {
        /// The run.
        run_id: String,
        /// Its new state.
        status: RunStatus,
        /// Why, when there is something to say (error text, operator).
        reason: Option<String>,
    },
    /// The bulk scanner's resumable position, committed with the data it
    /// covers.
    Checkpoint {
        /// The run.
        run_id: String,
        /// `run_id` reported by the source's `INFO`: a different one means
        /// the source restarted and `cursor` is no longer valid.
        source_run_id: String,
        /// The `SCAN` cursor to continue from, in database `db` (0 once
        /// that database's scan finished).
        cursor: u64,
        /// Cumulative counters up to this checkpoint.
        counters: Counters,
        /// The logical database `cursor` belongs to: the scan walks
        /// databases 0..15 in order. Absent from rows written before it
        /// existed, which only ever scanned database 0.
        #[serde(default)]
        db: u32,
        /// True once the scan of every database finished: nothing is left
        /// to resume. Absent (false) from rows written before it existed.
        #[serde(default)]
        done: bool,
    },
    /// A batch of keys was imported (in the same transaction as this event).
    BatchCommitted {
        /// The run.
        run_id: String,
        /// Logical database (0..15).
        db: u32,
        /// Keys in the batch.
        keys: u64,
        /// Bytes of keys and values in the batch.
        bytes: u64,
    },
    /// The tracker saw a write to a key: it must be (re)applied.
    KeyDirtied {
        /// The run.
        run_id: String,
        /// Logical database (0..15).
        db: u32,
        /// The key, as raw bytes.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// The keyspace event name (`set`, `hset`, …, or unknown ones).
        event: String,
    },
    /// The tracker saw a key disappear (`del`, `expired`, `evicted`,
    /// `rename_from`, `move_from`): it must be deleted at the destination.
    KeyDeleted {
        /// The run.
        run_id: String,
        /// Logical database (0..15).
        db: u32,
        /// The key, as raw bytes.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// The keyspace event name.
        event: String,
    },
    /// The dirty applier re-read a dirty key and replaced it at the
    /// destination.
    KeyMarkedApplied {
        /// The run.
        run_id: String,
        /// Logical database (0..15).
        db: u32,
        /// The key, as raw bytes.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// Registry events up to this sequence number are settled; a later
        /// `KeyDirtied` makes the key dirty again.
        through_seq: Seq,
    },
    /// The dirty applier deleted a key at the destination.
    KeyMarkedDeleted {
        /// The run.
        run_id: String,
        /// Logical database (0..15).
        db: u32,
        /// The key, as raw bytes.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// Registry events up to this sequence number are settled.
        through_seq: Seq,
    },
    /// Something went wrong, or deserves an operator's attention.
    ErrorRecorded {
        /// The run it belongs to, if any.
        run_id: Option<String>,
        /// The actor or component that saw it, e.g. `tracker`.
        component: String,
        /// How bad it is.
        severity: Severity,
        /// Human-readable description (never contains a password).
        message: String,
        /// Logical database of the key involved, if any.
        db: Option<u32>,
        /// The key involved, if any.
        #[serde(with = "serde_bytes")]
        key: Option<Vec<u8>>,
    },
    /// A job was added to a queue.
    JobEnqueued {
        /// Unique job id.
        job_id: String,
        /// Queue name.
        queue: String,
        /// Opaque job description for the worker (URIs without passwords).
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// Attempts allowed before the job is dead-lettered.
        max_attempts: u32,
        /// Not to be leased before this time (ms since the epoch).
        run_at_ms: i64,
        /// What the job does (`bulk`, `apply-dirty`, `verify`, `sweep`, or
        /// an embedder's own kind). Empty in rows written before it existed.
        #[serde(default)]
        kind: String,
        /// Dequeue order within the queue: higher first. 0 in rows written
        /// before it existed.
        #[serde(default)]
        priority: i32,
        /// At most one job with this key is alive (not done or dead) at a
        /// time: enqueueing a second one returns the first instead (e.g.
        /// `bulk:<run_id>`, so two processes cannot queue the same step).
        /// `None` in rows written before it existed.
        #[serde(default)]
        dedupe_key: Option<String>,
    },
    /// A worker took a job under a lease.
    JobLeased {
        /// The job.
        job_id: String,
        /// Who holds the lease.
        worker: String,
        /// Fencing token: increases with every lease of this job, so a
        /// worker whose lease expired cannot ack or fail it any more.
        epoch: u64,
        /// The lease ends at this time (ms since the epoch) unless renewed.
        deadline_ms: i64,
        /// Which attempt this is (1 for the first).
        attempt: u32,
    },
    /// A worker renewed its lease.
    JobHeartbeat {
        /// The job.
        job_id: String,
        /// Who holds the lease.
        worker: String,
        /// The lease's fencing token.
        epoch: u64,
        /// The new end of the lease (ms since the epoch).
        deadline_ms: i64,
    },
    /// A worker finished a job.
    JobAcked {
        /// The job.
        job_id: String,
        /// Who held the lease.
        worker: String,
        /// The lease's fencing token.
        epoch: u64,
    },
    /// An attempt of a job failed.
    JobFailed {
        /// The job.
        job_id: String,
        /// Who held the lease.
        worker: String,
        /// The lease's fencing token.
        epoch: u64,
        /// Which attempt failed.
        attempt: u32,
        /// Why.
        error: String,
    },
    /// A failed job was put back in its queue.
    JobRetried {
        /// The job.
        job_id: String,
        /// The attempt it will make next.
        next_attempt: u32,
        /// Not to be leased before this time (backoff; ms since the epoch).
        run_at_ms: i64,
    },
    /// A failed job ran out of attempts and was set aside.
    JobDeadLettered {
        /// The job.
        job_id: String,
        /// Attempts it made.
        attempts: u32,
        /// The last failure.
        error: String,
    },
    /// A lease ran out without an ack; the job is queued again.
    JobLeaseExpired {
        /// The job.
        job_id: String,
        /// Who held the lease.
        worker: String,
        /// The expired lease's fencing token.
        epoch: u64,
    },
    /// A supervised actor failed and was restarted (or given up on).
    ActorRestarted {
        /// Name of the actor, e.g. `bulk-scanner`.
        actor: String,
        /// How many restarts this actor had inside the intensity window,
        /// this one included.
        attempt: u32,
        /// Why it failed (panic message or error).
        reason: String,
        /// Backoff waited before the restart, in milliseconds.
        backoff_ms: u64,
        /// True when the intensity limit was exceeded and the supervisor
        /// stopped restarting this actor.
        gave_up: bool,
    },
    /// A projection's state was saved, so replay can start after
    /// `covers_seq` instead of from the first event.
    SnapshotTaken {
        /// The projection's name.
        projection: String,
        /// The last event the snapshot includes.
        covers_seq: Seq,
    },
    /// The run needs a safety sweep (a full comparison pass): the tracker
    /// was disconnected or its buffer overflowed, the source ran
    /// `FLUSHDB`/`FLUSHALL`/`SWAPDB` (which emit no per-key event), or the
    /// source restarted. Writes may have been missed.
    SweepRequired {
        /// The run.
        run_id: String,
        /// What made the sweep necessary, for operators.
        reason: String,
    },
    /// A safety sweep finished. It began when the journal's last sequence
    /// number was `started_seq`, so it covers only the needs recorded up to
    /// there: a [`Event::SweepRequired`] after `started_seq` still stands.
    SweepCompleted {
        /// The run.
        run_id: String,
        /// The journal's last sequence number when the sweep began.
        started_seq: Seq,
    },
    /// `keyferry control … set` changed a run's throttles. Only the `Some`
    /// fields change; `None` leaves a throttle as it was.
    ThrottlesChanged {
        /// The run.
        run_id: String,
        /// Most source requests per second.
        max_rps: Option<u32>,
        /// Most source requests in flight at once.
        max_concurrency: Option<u32>,
        /// Most keys per imported batch (one transaction).
        batch_keys: Option<u32>,
        /// Most key and value bytes per imported batch.
        batch_bytes: Option<u64>,
        /// The `COUNT` hint given to `SCAN`.
        scan_count: Option<u32>,
    },
    /// `keyferry tracker stop` asked the run's tracker (possibly in another
    /// process) to stop.
    TrackerStopRequested {
        /// The run.
        run_id: String,
    },
    /// The run's tracker connected to, or lost, the source.
    TrackerState {
        /// The run.
        run_id: String,
        /// True when it is subscribed and receiving notifications.
        connected: bool,
        /// `run_id` reported by the source's `INFO` (empty when unknown,
        /// e.g. on a disconnect).
        source_run_id: String,
    },
    /// The tool changed the source's `notify-keyspace-events`. Recorded so
    /// that `previous` is restored at the end, even after a crash.
    NotificationsChanged {
        /// The run.
        run_id: String,
        /// The setting before the change, to restore.
        previous: String,
        /// The setting the tool applied.
        applied: String,
    },
    /// The source's `notify-keyspace-events` was set back to what
    /// [`Event::NotificationsChanged`] recorded.
    NotificationsRestored {
        /// The run.
        run_id: String,
    },
    /// The dirty applier found the key to be of a type it cannot migrate
    /// (a stream, a module type) and set it aside.
    KeyMarkedSkipped {
        /// The run.
        run_id: String,
        /// Logical database (0..15).
        db: u32,
        /// The key, as raw bytes.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// Registry events up to this sequence number are settled.
        through_seq: Seq,
        /// Why it was skipped (e.g. `stream`).
        reason: String,
    },
}

impl Event {
    /// Every value [`Event::kind`] can return, for metrics labels and
    /// queries by kind.
    pub const KINDS: &'static [&'static str] = &[
        "run_started",
        "run_status_changed",
        "checkpoint",
        "batch_committed",
        "key_dirtied",
        "key_deleted",
        "key_marked_applied",
        "key_marked_deleted",
        "error_recorded",
        "job_enqueued",
        "job_leased",
        "job_heartbeat",
        "job_acked",
        "job_failed",
        "job_retried",
        "job_dead_lettered",
        "job_lease_expired",
        "actor_restarted",
        "snapshot_taken",
        "sweep_required",
        "sweep_completed",
        "throttles_changed",
        "tracker_stop_requested",
        "tracker_state",
        "notifications_changed",
        "notifications_restored",
        "key_marked_skipped",
    ];

    /// The migration run the event belongs to, if it belongs to one.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Event::RunStarted { run_id, .. }
            | Event::RunStatusChanged { run_id, .. }
            | Event::Checkpoint { run_id, .. }
            | Event::BatchCommitted { run_id, .. }
            | Event::KeyDirtied { run_id, .. }
            | Event::KeyDeleted { run_id, .. }
            | Event::KeyMarkedApplied { run_id, .. }
            | Event::KeyMarkedDeleted { run_id, .. }
            | Event::SweepRequired { run_id, .. }
            | Event::SweepCompleted { run_id, .. }
            | Event::ThrottlesChanged { run_id, .. }
            | Event::TrackerStopRequested { run_id }
            | Event::TrackerState { run_id, .. }
            | Event::NotificationsChanged { run_id, .. }
            | Event::NotificationsRestored { run_id }
            | Event::KeyMarkedSkipped { run_id, .. } => Some(run_id),
            Event::ErrorRecorded { run_id, .. } => run_id.as_deref(),
            Event::JobEnqueued { .. }
            | Event::JobLeased { .. }
            | Event::JobHeartbeat { .. }
            | Event::JobAcked { .. }
            | Event::JobFailed { .. }
            | Event::JobRetried { .. }
            | Event::JobDeadLettered { .. }
            | Event::JobLeaseExpired { .. }
            | Event::ActorRestarted { .. }
            | Event::SnapshotTaken { .. } => None,
        }
    }

    /// The event's kind, stored in the journal's `kind` column so rows can
    /// be selected without decoding their payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::RunStatusChanged { .. } => "run_status_changed",
            Event::Checkpoint { .. } => "checkpoint",
            Event::BatchCommitted { .. } => "batch_committed",
            Event::KeyDirtied { .. } => "key_dirtied",
            Event::KeyDeleted { .. } => "key_deleted",
            Event::KeyMarkedApplied { .. } => "key_marked_applied",
            Event::KeyMarkedDeleted { .. } => "key_marked_deleted",
            Event::ErrorRecorded { .. } => "error_recorded",
            Event::JobEnqueued { .. } => "job_enqueued",
            Event::JobLeased { .. } => "job_leased",
            Event::JobHeartbeat { .. } => "job_heartbeat",
            Event::JobAcked { .. } => "job_acked",
            Event::JobFailed { .. } => "job_failed",
            Event::JobRetried { .. } => "job_retried",
            Event::JobDeadLettered { .. } => "job_dead_lettered",
            Event::JobLeaseExpired { .. } => "job_lease_expired",
            Event::ActorRestarted { .. } => "actor_restarted",
            Event::SnapshotTaken { .. } => "snapshot_taken",
            Event::SweepRequired { .. } => "sweep_required",
            Event::SweepCompleted { .. } => "sweep_completed",
            Event::ThrottlesChanged { .. } => "throttles_changed",
            Event::TrackerStopRequested { .. } => "tracker_stop_requested",
            Event::TrackerState { .. } => "tracker_state",
            Event::NotificationsChanged { .. } => "notifications_changed",
            Event::NotificationsRestored { .. } => "notifications_restored",
            Event::KeyMarkedSkipped { .. } => "key_marked_skipped",
        }
    }
}

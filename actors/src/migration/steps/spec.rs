//! What a step job is — its kind, run, source and settings — and how that
//! is stored as the job's payload.
//!
//! The payload is one JSON object, for example:
//!
//! ```json
//! {"version":1,"kind":"bulk","run_id":"r1","source_uri":"redis://127.0.0.1:6379",
//!  "settings":{"scan_count":100,"max_concurrency":null,"max_rps":4000,
//!              "batch_keys":null,"batch_bytes":null,"ttl_mode":"preserve"},
//!  "resume":false,"sample_percent":100.0}
//! ```
//!
//! - `version` is [`PAYLOAD_VERSION`]. A payload of a newer version is
//!   refused ([`PayloadError::Newer`]), so an older keyferry leaves that
//!   job to the newer one that queued it rather than guess.
//! - Within a version the format is tolerant: every field but `kind`,
//!   `run_id` and `source_uri` has a default when missing, and unknown
//!   fields are ignored, so an optional field can be added without a new
//!   version.
//! - `source_uri` never holds a password ([`Source::without_password`]):
//!   the process that runs the job brings its own credential.
//! - `settings` holds only the throttles given explicitly (`null`: the
//!   default, or what `keyferry control set` recorded on the run).

use std::fmt;

use keyferry_journal::registry::RunRow;
use keyferry_journal::{Event, NewJob};
use serde::{Deserialize, Serialize};

use super::super::{Settings, TtlMode, bulk, throttles_event};
use super::{MAX_ATTEMPTS, QUEUE};
use crate::source::{Source, SourceError, SourceUri, UriError};

/// The payload version this build writes and the newest it reads.
pub const PAYLOAD_VERSION: u32 = 1;

/// Which migration step a job runs. Also the job's `kind` and the first
/// part of its dedupe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// The bulk copy (`keyferry bulk`).
    Bulk,
    /// Draining the dirty keys (`keyferry apply-dirty`).
    ApplyDirty,
    /// The safety sweep (`keyferry apply-dirty --sweep`).
    Sweep,
    /// Comparing a sample with the source (`keyferry verify`).
    Verify,
}

impl StepKind {
    /// The kind's stable name: `bulk`, `apply-dirty`, `sweep`, `verify`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Bulk => "bulk",
            StepKind::ApplyDirty => "apply-dirty",
            StepKind::Sweep => "sweep",
            StepKind::Verify => "verify",
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The throttles given explicitly for a step (`None`: not given) and its
/// TTL handling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepSettings {
    /// Keys asked for per `SCAN` call.
    pub scan_count: Option<u32>,
    /// Pages or batches read from the source at once.
    pub max_concurrency: Option<u32>,
    /// Most source commands per second.
    pub max_rps: Option<u32>,
    /// Most keys per destination transaction.
    pub batch_keys: Option<u32>,
    /// Most bytes per destination transaction.
    pub batch_bytes: Option<u64>,
    /// What happens to source TTLs.
    pub ttl_mode: TtlMode,
}

impl StepSettings {
    /// The settings to work with: the defaults with the given throttles
    /// laid over them (the run's recorded throttles go over both, as the
    /// step runs).
    pub fn settings(&self) -> Settings {
        let defaults = Settings::default();
        Settings {
            scan_count: self.scan_count.unwrap_or(defaults.scan_count),
            max_concurrency: self.max_concurrency.unwrap_or(defaults.max_concurrency),
            max_rps: self.max_rps.or(defaults.max_rps),
            batch_keys: self.batch_keys.unwrap_or(defaults.batch_keys),
            batch_bytes: self.batch_bytes.unwrap_or(defaults.batch_bytes),
            ttl_mode: self.ttl_mode,
        }
    }

    /// The event recording the given throttles on run `run_id`, if any was
    /// given: they then win over older ones and show in `status`.
    pub(crate) fn event(&self, run_id: &str) -> Option<Event> {
        throttles_event(
            run_id,
            self.scan_count,
            self.max_concurrency,
            self.max_rps,
            self.batch_keys,
            self.batch_bytes,
        )
    }
}

/// One step of one run, as a job describes it (see the module docs for
/// its payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// The step.
    pub kind: StepKind,
    /// The run it works for.
    pub run_id: String,
    /// The source, without password.
    pub source_uri: String,
    /// Explicit throttles and TTL handling.
    #[serde(default)]
    pub settings: StepSettings,
    /// `bulk --resume`: continue a run that has a checkpoint. Only checked
    /// when a command claims the step; a job taken over after a crash
    /// always continues from its run's checkpoint, which is its progress.
    #[serde(default)]
    pub resume: bool,
    /// For [`StepKind::Verify`]: the share of keys compared, in percent.
    #[serde(default = "full_sample")]
    pub sample_percent: f64,
}

fn full_sample() -> f64 {
    100.0
}

/// The payload as stored: the spec and its version.
#[derive(Serialize)]
struct Stored<'a> {
    version: u32,
    #[serde(flatten)]
    spec: &'a StepSpec,
}

/// The payload as read: a missing version is the first one.
#[derive(Deserialize)]
struct Read {
    #[serde(default = "first_version")]
    version: u32,
    #[serde(flatten)]
    spec: StepSpec,
}

fn first_version() -> u32 {
    1
}

/// Why a job's payload is not a step this build can run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload is not a step's JSON object.
    #[error("the step payload is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
    /// The payload was written by a newer keyferry.
    #[error(
        "the step payload has version {found}, newer than this keyferry's {PAYLOAD_VERSION}: a newer keyferry must run it"
    )]
    Newer {
        /// Its version.
        found: u32,
    },
}

/// Why a step's source cannot be built from its spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecSourceError {
    /// The stored URI does not parse.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The credential or CA file could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl StepSpec {
    /// A step of `kind` for run `run_id` reading `source` (stored without
    /// its password), with no explicit settings, no resume and a full
    /// sample.
    pub fn new(kind: StepKind, run_id: impl Into<String>, source: &Source) -> StepSpec {
        StepSpec {
            kind,
            run_id: run_id.into(),
            source_uri: source.without_password(),
            settings: StepSettings::default(),
            resume: false,
            sample_percent: full_sample(),
        }
    }

    /// `<kind>:<run_id>`: at most one alive job of a step per run.
    pub fn dedupe_key(&self) -> String {
        format!("{}:{}", self.kind, self.run_id)
    }

    /// The job payload (see the module docs).
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(&Stored {
            version: PAYLOAD_VERSION,
            spec: self,
        })
        .expect("a step spec always serializes")
    }

    /// The spec in a job payload.
    pub fn from_payload(payload: &[u8]) -> Result<StepSpec, PayloadError> {
        let read: Read = serde_json::from_slice(payload)?;
        if read.version > PAYLOAD_VERSION {
            return Err(PayloadError::Newer {
                found: read.version,
            });
        }
        Ok(read.spec)
    }

    /// The source to read, with `password` when given, else whatever
    /// [`Source::new`] finds (`KEYFERRY_SOURCE_PASSWORD`).
    pub fn source(&self, password: Option<&str>) -> Result<Source, SpecSourceError> {
        let mut uri: SourceUri = self.source_uri.parse()?;
        uri.password = password.map(str::to_string);
        Ok(Source::new(uri, None)?)
    }

    /// The job to enqueue for this step at `now_ms`. Job ids are never
    /// reused, so the id adds the time and this process to the dedupe key.
    pub(crate) fn new_job(&self, now_ms: i64) -> NewJob {
        // Job ids are never reused, even once a job is done: the time and
        // pid tell processes apart, the counter two enqueues of one
        // process within a millisecond.
        static ENQUEUED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = ENQUEUED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dedupe_key = self.dedupe_key();
        NewJob {
            job_id: format!("{dedupe_key}:{now_ms}:{}:{nth}", std::process::id()),
            queue: QUEUE.to_string(),
            kind: self.kind.as_str().to_string(),
            payload: self.to_payload(),
            priority: 0,
            run_at_ms: now_ms,
            max_attempts: MAX_ATTEMPTS,
            dedupe_key: Some(dedupe_key),
        }
    }

    /// Whether a command may start this step on a run whose row is `row`,
    /// in the file at `destination`: a bulk copy with a checkpoint needs
    /// `resume`; every other step needs an existing run.
    pub(crate) fn admit(&self, row: Option<&RunRow>, destination: &str) -> Result<(), String> {
        match (self.kind, row) {
            (StepKind::Bulk, row) => {
                bulk::refuse_restart(row, &self.run_id, self.resume).map_err(|e| e.to_string())
            }
            (_, None) => Err(format!("no run {} in {destination}", self.run_id)),
            (_, Some(_)) => Ok(()),
        }
    }
}

//! Preflight: what a migration from this source into this destination will
//! meet, checked before anything is written.
//!
//! [`preflight`] connects, reads `INFO`, the notification flags and a
//! bounded sample of keys (their types and `MEMORY USAGE`), looks at the
//! destination path, and returns a [`PreflightReport`]: facts, estimates,
//! recommended throttles, blocking `problems` and non-blocking `warnings`.
//! It never writes to the source or creates the destination.
//!
//! An unreachable source is a finding, not an error: the report says so
//! (`reachable: false` plus a problem), so `--json` always prints one
//! object. [`PreflightError`] is for a source that answered and then failed
//! a command preflight cannot do without.

mod destination;
mod estimate;
mod sample;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde::Serialize;

use crate::source::info::{self, Channels, DbStats, Info};
use crate::source::{Source, SourceError};

pub use destination::Destination;
pub use estimate::{
    ASSUMED_BYTES_PER_SECOND, ASSUMED_KEYS_PER_SECOND, Recommended, SQLITE_OVERHEAD_FACTOR,
    human_bytes,
};
pub use sample::{Sample, TypeBreakdown, TypeSample};

/// How long the first reply may take before the source counts as
/// unreachable (connecting has its own timeout in [`Source::connect`]).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The flags to ask a provider for when keyferry cannot set them itself.
const RECOMMENDED_FLAGS: &str = "KEA";

/// How much preflight samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreflightOptions {
    /// Most keys sampled in one database.
    pub keys_per_db: usize,
    /// Most keys sampled in all databases together; shared evenly, so
    /// every database with keys is sampled.
    pub max_keys: usize,
}

impl Default for PreflightOptions {
    /// 1000 keys per database, 5000 in all: two pipelined round trips per
    /// database, well under a second even on a remote source.
    fn default() -> Self {
        PreflightOptions {
            keys_per_db: 1000,
            max_keys: 5000,
        }
    }
}

/// Why preflight could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreflightError {
    /// The source answered at first, then a command failed.
    #[error("preflight could not {step}: {source}")]
    Source {
        /// What preflight was doing, e.g. "sample database 3".
        step: String,
        /// The failure, source address masked.
        #[source]
        source: SourceError,
    },
}

/// Everything preflight found. Serialized as `keyferry preflight --json`:
/// the field names are a stable contract.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    /// The source address, password masked.
    pub source: String,
    /// Whether the source accepted a connection and answered `INFO`.
    pub reachable: bool,
    /// `redis_version` from `INFO`.
    pub redis_version: Option<String>,
    /// Round trip of one `PING`, in milliseconds.
    pub round_trip_ms: Option<f64>,
    /// Whether the source runs in cluster mode (not supported: blocking).
    pub cluster_enabled: bool,
    /// Whether the source lets us read `CONFIG` (managed services often
    /// refuse it).
    pub config_allowed: bool,
    /// Whether the source has `CLIENT PAUSE … WRITE` (Redis ≥ 6.2), which
    /// `--cutover auto` needs.
    pub client_pause_write: bool,
    /// The source's `notify-keyspace-events`, when it lets us read it.
    pub notify_keyspace_events: Option<String>,
    /// Whether those flags give the tracker (keyevent channels) every
    /// event it needs.
    pub notifications_cover_tracker: bool,
    /// The flag letters missing for the tracker; `None` when the flags
    /// could not be read.
    pub notifications_missing: Option<String>,
    /// `maxmemory_policy` from `INFO`.
    pub maxmemory_policy: Option<String>,
    /// Databases holding keys, from `INFO keyspace`.
    pub databases: Vec<DbStats>,
    /// Keys in all databases.
    pub total_keys: u64,
    /// The sampled keys.
    pub sample: Sample,
    /// Estimated size of the destination file: the sample's mean
    /// `MEMORY USAGE` times the key count (or `used_memory_dataset` when
    /// MEMORY USAGE is refused), times [`SQLITE_OVERHEAD_FACTOR`].
    pub estimated_destination_bytes: Option<u64>,
    /// Estimated duration of the bulk import at the assumed rates in
    /// `assumed_rate` (not measured: the sample reads no values).
    pub estimated_bulk_seconds: Option<u64>,
    /// The rates `estimated_bulk_seconds` assumes.
    pub assumed_rate: AssumedRate,
    /// Throttles suggested for `bulk` and `apply-dirty`.
    pub recommended: Option<Recommended>,
    /// The destination file.
    pub destination: Destination,
    /// What stops a migration; the command exits 1 when there is any.
    pub problems: Vec<String>,
    /// What works differently than hoped, without stopping a migration.
    pub warnings: Vec<String>,
}

/// The conservative import rates estimates assume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AssumedRate {
    /// Keys per second.
    pub keys_per_second: u64,
    /// Bytes (of source memory) per second.
    pub bytes_per_second: u64,
}

impl PreflightReport {
    /// Whether a problem stops the migration.
    pub fn is_blocked(&self) -> bool {
        !self.problems.is_empty()
    }

    /// A report with the destination checked and nothing known of the
    /// source yet.
    fn new(source: &Source, destination: Destination) -> Self {
        PreflightReport {
            source: source.redacted(),
            reachable: false,
            redis_version: None,
            round_trip_ms: None,
            cluster_enabled: false,
            config_allowed: false,
            client_pause_write: false,
            notify_keyspace_events: None,
            notifications_cover_tracker: false,
            notifications_missing: None,
            maxmemory_policy: None,
            databases: Vec::new(),
            total_keys: 0,
            sample: Sample::default(),
            estimated_destination_bytes: None,
            estimated_bulk_seconds: None,
            assumed_rate: AssumedRate {
                keys_per_second: ASSUMED_KEYS_PER_SECOND,
                bytes_per_second: ASSUMED_BYTES_PER_SECOND,
            },
            recommended: None,
            destination,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Checks `source` and `destination` for a migration.
pub async fn preflight(
    source: &Source,
    destination: &Path,
    options: &PreflightOptions,
) -> Result<PreflightReport, PreflightError> {
    let (checked, unwritable) = destination::inspect(destination);
    let mut report = PreflightReport::new(source, checked);
    if let Some(why) = unwritable {
        report.problems.push(format!(
            "the destination {} is not writable: {why}",
            destination.display()
        ));
    }
    let (mut conn, info) = match probe(source).await {
        Ok(probed) => probed,
        Err(error) => {
            report.problems.insert(0, error.to_string());
            return Ok(report);
        }
    };
    report.reachable = true;
    let started = Instant::now();
    redis::cmd("PING")
        .query_async::<()>(&mut conn)
        .await
        .map_err(failed(source, "PING"))?;
    let round_trip = started.elapsed();
    // Microseconds are all a round trip measured once can tell.
    report.round_trip_ms = Some(round_trip.as_micros() as f64 / 1000.0);
    report_server(&mut report, &info);
    let flags = info::notify_flags(&mut conn)
        .await
        .map_err(failed(source, "read notify-keyspace-events"))?;
    report_notifications(&mut report, flags);

    report.databases = info.keyspace();
    report.total_keys = report.databases.iter().map(|db| db.keys).sum();
    report.sample = sample::sample(source, &report.databases, options).await?;
    report_estimates(&mut report, &info, round_trip);
    Ok(report)
}

/// Turns a failed command of `step` into a [`PreflightError`].
fn failed<E: std::fmt::Display>(
    source: &Source,
    step: impl Into<String>,
) -> impl FnOnce(E) -> PreflightError {
    move |error| PreflightError::Source {
        step: step.into(),
        source: source.command_error(error),
    }
}

/// Connects to database 0 and reads `INFO default`, within
/// [`PROBE_TIMEOUT`] for the reply.
async fn probe(source: &Source) -> Result<(MultiplexedConnection, Info), SourceError> {
    let mut conn = source.connect(0).await?;
    match tokio::time::timeout(PROBE_TIMEOUT, info::info(&mut conn, "default")).await {
        Ok(Ok(info)) => Ok((conn, info)),
        Ok(Err(error)) => Err(source.command_error(error)),
        Err(_) => Err(source.command_error(format!("no reply to INFO within {PROBE_TIMEOUT:?}"))),
    }
}

/// Version, cluster mode, CLIENT PAUSE and eviction.
fn report_server(report: &mut PreflightReport, info: &Info) {
    report.redis_version = info.get("redis_version").map(str::to_string);
    report.cluster_enabled = info.cluster_enabled();
    if report.cluster_enabled {
        report.problems.push(
            "the source runs in cluster mode: a connection sees only this node's keys, in \
             database 0, and a cluster needs a SCAN of every node; cluster sources are not \
             supported"
                .to_string(),
        );
    }
    report.client_pause_write = info
        .version()
        .is_some_and(info::supports_client_pause_write);
    if !report.client_pause_write {
        report.warnings.push(format!(
            "the source (Redis {}) has no CLIENT PAUSE ... WRITE (Redis 6.2 and later): \
             --cutover auto is unavailable, use --cutover manual",
            report
                .redis_version
                .as_deref()
                .unwrap_or("of unknown version")
        ));
    }
    report.maxmemory_policy = info.get("maxmemory_policy").map(str::to_string);
    let maxmemory = info.get("maxmemory").and_then(|m| m.parse::<u64>().ok());
    if let (Some(policy), Some(limit @ 1..)) = (&report.maxmemory_policy, maxmemory)
        && policy != "noeviction"
    {
        report.warnings.push(format!(
            "maxmemory-policy is {policy} with maxmemory {}: the source may evict keys during \
             the migration, and evicted keys are deleted from the destination too",
            human_bytes(limit)
        ));
    }
}

/// What `notify-keyspace-events` means for the tracker.
fn report_notifications(report: &mut PreflightReport, flags: Option<String>) {
    report.config_allowed = flags.is_some();
    match &flags {
        None => report.warnings.push(format!(
            "the source refuses CONFIG (a managed Redis?): keyferry can neither check nor set \
             notify-keyspace-events; set it to \"{RECOMMENDED_FLAGS}\" in the provider's \
             console before starting the tracker. --cutover auto may still work if the \
             provider allows CLIENT PAUSE"
        )),
        Some(current) => {
            let coverage = info::notification_coverage(current, Channels::Keyevent);
            report.notifications_cover_tracker = coverage.is_covered();
            if !coverage.is_covered() {
                report.warnings.push(format!(
                    "notify-keyspace-events is \"{current}\", which lacks \"{}\": the tracker \
                     will refuse to start unless --enable-notifications is given (it sets \
                     \"{}\" and restores \"{current}\" at the end)",
                    coverage.missing,
                    info::flags_to_enable(current, Channels::Keyevent)
                ));
            }
            report.notifications_missing = Some(coverage.missing);
        }
    }
    report.notify_keyspace_events = flags;
}

/// Unsupported keys, sizes, durations and throttles, from the sample.
fn report_estimates(report: &mut PreflightReport, info: &Info, round_trip: Duration) {
    let sample = &report.sample;
    if sample.unsupported_keys_estimated > 0 {
        let kinds = (sample.by_type.stream.count > 0)
            .then_some("stream")
            .into_iter()
            .chain(sample.module_types.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ");
        report.warnings.push(format!(
            "about {} keys of unsupported types ({kinds}) will be skipped",
            sample.unsupported_keys_estimated
        ));
    }
    let memory = sample.estimated_memory_bytes.or_else(|| {
        report.warnings.push(
            "the source refuses MEMORY USAGE: sizes are estimated from INFO \
             used_memory_dataset"
                .into(),
        );
        // The data alone: used_memory also counts the server's own
        // overhead (about 1 MB on an empty server), which would skew the
        // mean key size of a small source.
        info.get("used_memory_dataset")?.parse().ok()
    });
    report.estimated_destination_bytes = memory.map(estimate::destination_bytes);
    report.estimated_bulk_seconds = Some(estimate::bulk_seconds(report.total_keys, memory));
    let mean_key_bytes = memory
        .zip(std::num::NonZeroU64::new(report.total_keys))
        .map(|(bytes, keys)| bytes / keys);
    report.recommended = Some(estimate::recommend(mean_key_bytes, round_trip));
    if let (Some(needed), Some(free)) = (
        report.estimated_destination_bytes,
        report.destination.free_bytes,
    ) && needed > free
    {
        report.warnings.push(format!(
            "the destination's file system has {} free, about {} may be needed",
            human_bytes(free),
            human_bytes(needed)
        ));
    }
}

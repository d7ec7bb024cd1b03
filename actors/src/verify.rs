//! `keyferry verify`: compares a sample of the source's keys with the
//! destination and reports every kind of difference, with examples.
//!
//! Two passes per logical database (0..15):
//!
//! - **Source side**: `SCAN` the database; each key is chosen with
//!   probability `sample_percent / 100` (by a keyed hash, see `sample.rs`)
//!   and the chosen keys of a page are compared with [`compare_keys`] —
//!   existence, type, length, TTL within tolerance, then values.
//! - **Destination side**: page through the destination's keys in byte
//!   order, choose them the same way, and ask the source `EXISTS` for the
//!   chosen ones (one pipeline per page): a key the source lacks is extra.
//!   Choosing before asking keeps the load on a production source in
//!   proportion to the sample.
//!
//! Verify only reads: it records nothing in the journal and changes
//! neither side. It is meant for a frozen or quiet source; on a live one,
//! a key written between the two sides' reads shows up as a difference,
//! and a key `SCAN` returns twice (Redis may, while it rehashes) is
//! checked twice.

mod escape;
mod sample;
#[cfg(test)]
mod tests;

use keyferry_engine::{Db, Store, StoreError};
use redis::aio::MultiplexedConnection;
use serde::Serialize;

use crate::compare::{CompareError, CompareOptions, KeyComparison, Outcome, compare_keys};
use crate::source::{Source, SourceError, scan_page};

pub use escape::escape_bytes;
use sample::Sampler;

/// How [`verify`] works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The `COUNT` hint of each `SCAN`, and the size of each page of
    /// destination keys (0 counts as 1).
    pub page_keys: u32,
    /// How keys are compared (TTL tolerance, value chunks).
    pub compare: CompareOptions,
    /// Most example keys kept per kind of finding.
    pub max_examples: usize,
}

impl Default for VerifyOptions {
    /// Pages of 1000 keys, [`CompareOptions::default`] (TTLs within one
    /// second, values compared), 20 examples per kind.
    fn default() -> Self {
        Self {
            page_keys: 1000,
            compare: CompareOptions::default(),
            max_examples: 20,
        }
    }
}

/// What [`verify`] found. Serialized (for `keyferry verify --json`) with
/// these field names, which are stable:
///
/// - `sample_percent`: the share of keys chosen, in percent.
/// - `source_keys_scanned`: keys `SCAN` returned, over every database.
/// - `checked_keys`: source keys chosen and compared (unsupported ones
///   included).
/// - `destination_keys_scanned`: destination keys paged through.
/// - `destination_keys_checked`: destination keys chosen and looked up at
///   the source.
/// - `same`: checked source keys that matched.
/// - `mismatches`: the sum of the six mismatch counts below; 0 means clean.
/// - `missing`, `extra`, `type_mismatches`, `length_mismatches`,
///   `ttl_mismatches`, `value_mismatches`: the differences, each a
///   [`Finding`]; `unsupported`: source keys of a type keyferry does not
///   migrate (streams, modules), skipped and not counted as mismatches.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The share of keys chosen, in percent.
    pub sample_percent: f64,
    /// Keys `SCAN` returned.
    pub source_keys_scanned: u64,
    /// Source keys chosen and compared.
    pub checked_keys: u64,
    /// Destination keys paged through.
    pub destination_keys_scanned: u64,
    /// Destination keys chosen and looked up at the source.
    pub destination_keys_checked: u64,
    /// Checked source keys that matched.
    pub same: u64,
    /// Total of the mismatch counts (`unsupported` excluded).
    pub mismatches: u64,
    /// Keys the source has and the destination lacks.
    pub missing: Finding,
    /// Keys the destination has and the source lacks.
    pub extra: Finding,
    /// Keys of different types.
    pub type_mismatches: Finding,
    /// Keys of the same type and different lengths.
    pub length_mismatches: Finding,
    /// Keys whose times to live differ by more than the tolerance.
    pub ttl_mismatches: Finding,
    /// Keys whose values differ.
    pub value_mismatches: Finding,
    /// Source keys of a type keyferry does not migrate (not mismatches).
    pub unsupported: Finding,
}

/// One kind of finding: how many keys, and the first few of them.
/// Serialized as `count` and `examples`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How many keys.
    pub count: u64,
    /// Up to [`VerifyOptions::max_examples`] of them, in the order found.
    pub examples: Vec<Example>,
}

/// A key behind a finding. Serialized as `db`, `key` and `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    /// Its logical database.
    pub db: u32,
    /// The key escaped as Redis shows keys ([`escape_bytes`]), without
    /// surrounding quotes.
    pub key: String,
    /// What differs, e.g. `source 3, destination 4` (empty for a missing
    /// or extra key).
    pub detail: String,
}

impl VerifyReport {
    /// True when no mismatch was found (unsupported keys do not count).
    pub fn is_clean(&self) -> bool {
        self.mismatches == 0
    }

    /// Counts one compared key of `db` under its outcome, keeping it as an
    /// example while its kind has fewer than `max_examples`.
    fn tally(&mut self, db: u32, compared: KeyComparison, max_examples: usize) {
        if !matches!(
            compared.outcome,
            Outcome::Same | Outcome::Unsupported { .. }
        ) {
            self.mismatches += 1;
        }
        let (finding, detail) = match compared.outcome {
            Outcome::Same => {
                self.same += 1;
                return;
            }
            Outcome::Unsupported { type_name } => (&mut self.unsupported, type_name),
            Outcome::MissingAtDestination => (&mut self.missing, String::new()),
            Outcome::ExtraAtDestination => (&mut self.extra, String::new()),
            Outcome::TypeMismatch {
                source,
                destination,
            } => (
                &mut self.type_mismatches,
                format!("source {source}, destination {destination}"),
            ),
            Outcome::LengthMismatch {
                source,
                destination,
            } => (
                &mut self.length_mismatches,
                format!("source {source}, destination {destination}"),
            ),
            Outcome::TtlMismatch {
                source_ms,
                destination_ms,
            } => (
                &mut self.ttl_mismatches,
                format!(
                    "source {}, destination {}",
                    show_ttl(source_ms),
                    show_ttl(destination_ms)
                ),
            ),
            Outcome::ValueMismatch { detail } => (&mut self.value_mismatches, detail),
        };
        finding.count += 1;
        if finding.examples.len() < max_examples {
            finding.examples.push(Example {
                db,
                key: escape_bytes(&compared.key),
                detail,
            });
        }
    }
}

/// A remaining time to live for a message.
fn show_ttl(ttl_ms: Option<i64>) -> String {
    ttl_ms.map_or_else(|| "no ttl".to_string(), |ms| format!("ttl {ms} ms"))
}

/// Why a verification could not be completed (a mismatch is not an
/// error: it is in the report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The sample is not a percentage in `(0, 100]`.
    #[error("the sample must be more than 0 and at most 100 percent, not {0}")]
    Sample(f64),
    /// The source could not be reached or refused a command.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Comparing keys failed.
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// Reading the destination failed.
    #[error("destination: {0}")]
    Destination(#[from] StoreError),
    /// The blocking task reading the destination panicked or was
    /// cancelled.
    #[error("destination read task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Compares about `sample_percent` percent of the keys of `source` and
/// `store`, over every logical database (see the module docs). Only
/// fails when a side cannot be read; differences are in the report.
pub async fn verify(
    source: &Source,
    store: &Store,
    sample_percent: f64,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let mut verifier = Verifier {
        source,
        store,
        sampler: Sampler::new(sample_percent).ok_or(VerifyError::Sample(sample_percent))?,
        options,
        report: VerifyReport {
            sample_percent,
            ..VerifyReport::default()
        },
    };
    for db in Db::all() {
        let mut conn = source.connect(u32::from(db.index())).await?;
        verifier.source_side(&mut conn, db).await?;
        verifier.destination_side(&mut conn, db).await?;
    }
    Ok(verifier.report)
}

/// One verification in progress.
struct Verifier<'a> {
    source: &'a Source,
    store: &'a Store,
    sampler: Sampler,
    options: &'a VerifyOptions,
    report: VerifyReport,
}

impl Verifier<'_> {
    /// The source-side pass over `db` (`conn` is bound to it): `SCAN`,
    /// choose, compare.
    async fn source_side(
        &mut self,
        conn: &mut MultiplexedConnection,
        db: Db,
    ) -> Result<(), VerifyError> {
        let mut cursor = 0;
        loop {
            let (next, keys) = scan_page(conn, cursor, self.options.page_keys.max(1))
                .await
                .map_err(|e| self.source.command_error(e))?;
            self.report.source_keys_scanned += keys.len() as u64;
            let chosen = self.choose(db, keys);
            if !chosen.is_empty() {
                self.report.checked_keys += chosen.len() as u64;
                let compared =
                    compare_keys(conn, self.store, db, &chosen, &self.options.compare).await?;
                for comparison in compared {
                    self.tally(db, comparison);
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }

    /// The destination-side pass over `db`: page through its keys, choose,
    /// and report the chosen ones the source lacks as extra.
    async fn destination_side(
        &mut self,
        conn: &mut MultiplexedConnection,
        db: Db,
    ) -> Result<(), VerifyError> {
        let limit = self.options.page_keys.max(1) as usize;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let store = self.store.clone();
            let start = after.take();
            // SQLite reads block: keep them off the runtime's workers.
            let page = tokio::task::spawn_blocking(move || {
                store.read(|view| view.keys_after(db, start.as_deref(), limit))
            })
            .await??;
            self.report.destination_keys_scanned += page.len() as u64;
            // A short page is the last one.
            if page.len() == limit {
                after = page.last().cloned();
            }
            let chosen = self.choose(db, page);
            self.report.destination_keys_checked += chosen.len() as u64;
            if !chosen.is_empty() {
                let mut pipe = redis::pipe();
                for key in &chosen {
                    pipe.cmd("EXISTS").arg(key);
                }
                let exists: Vec<bool> = pipe
                    .query_async(conn)
                    .await
                    .map_err(|e| self.source.command_error(e))?;
                for (key, exists) in chosen.into_iter().zip(exists) {
                    if !exists {
                        let outcome = Outcome::ExtraAtDestination;
                        self.tally(db, KeyComparison { key, outcome });
                    }
                }
            }
            if after.is_none() {
                return Ok(());
            }
        }
    }

    /// The keys of `db` the sample takes.
    fn choose(&self, db: Db, keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        keys.into_iter()
            .filter(|key| self.sampler.chooses(db, key))
            .collect()
    }

    /// Counts one compared key of `db` in the report.
    fn tally(&mut self, db: Db, comparison: KeyComparison) {
        self.report
            .tally(u32::from(db.index()), comparison, self.options.max_examples);
    }
}

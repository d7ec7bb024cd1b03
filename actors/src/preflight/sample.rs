//! The key sample: a bounded number of keys per database, their types and
//! `MEMORY USAGE`, extrapolated to each database's key count.
//!
//! Keys come from the first `SCAN` pages of each database. SCAN walks the
//! hash table in bucket order, which is unrelated to when or how a key was
//! written, so its first keys are as good a sample as any and cost one
//! round trip per page (`RANDOMKEY` would cost one per key).

use std::collections::BTreeSet;

use redis::aio::MultiplexedConnection;
use serde::Serialize;

use super::{PreflightError, PreflightOptions, failed};
use crate::source::info::{DbStats, is_refusal};
use crate::source::{Source, scan_page};

/// Keys asked for per `SCAN` page while sampling.
const SCAN_COUNT: u32 = 1000;

/// What the sampled keys were.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Keys sampled (keys that vanished between SCAN and TYPE excluded).
    pub keys_sampled: u64,
    /// False when the source refused `MEMORY USAGE` (then no `bytes`).
    pub memory_usage_allowed: bool,
    /// Sampled keys per type.
    pub by_type: TypeBreakdown,
    /// The module types seen (counted in `by_type.other`), by name.
    pub module_types: Vec<String>,
    /// Streams and module-type keys in the whole source, extrapolated from
    /// each database's sample: the bulk import skips them.
    pub unsupported_keys_estimated: u64,
    /// `MEMORY USAGE` of all keys, extrapolated from each database's
    /// sample; `None` when MEMORY USAGE is refused.
    pub estimated_memory_bytes: Option<u64>,
}

/// Sampled keys per Redis type.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypeBreakdown {
    /// Strings.
    pub string: TypeSample,
    /// Hashes.
    pub hash: TypeSample,
    /// Lists.
    pub list: TypeSample,
    /// Sets.
    pub set: TypeSample,
    /// Sorted sets.
    pub zset: TypeSample,
    /// Streams (not migrated).
    pub stream: TypeSample,
    /// Module types (not migrated).
    pub other: TypeSample,
}

/// The sampled keys of one type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TypeSample {
    /// How many.
    pub count: u64,
    /// Their total `MEMORY USAGE`; `None` when none was measured.
    pub bytes: Option<u64>,
}

impl TypeSample {
    fn add(&mut self, bytes: Option<u64>) {
        self.count += 1;
        if let Some(bytes) = bytes {
            *self.bytes.get_or_insert(0) += bytes;
        }
    }
}

impl TypeBreakdown {
    /// The entry for a `TYPE` reply, and whether the import skips it.
    fn entry(&mut self, redis_type: &str) -> (&mut TypeSample, bool) {
        match redis_type {
            "string" => (&mut self.string, false),
            "hash" => (&mut self.hash, false),
            "list" => (&mut self.list, false),
            "set" => (&mut self.set, false),
            "zset" => (&mut self.zset, false),
            "stream" => (&mut self.stream, true),
            _ => (&mut self.other, true),
        }
    }
}

/// Samples every database in `dbs`, sharing `options.max_keys` evenly so
/// that each is represented.
pub(super) async fn sample(
    source: &Source,
    dbs: &[DbStats],
    options: &PreflightOptions,
) -> Result<Sample, PreflightError> {
    let per_db = options
        .keys_per_db
        .min(options.max_keys / dbs.len().max(1))
        .max(1);
    let mut sample = Sample {
        memory_usage_allowed: true,
        ..Sample::default()
    };
    let mut module_types = BTreeSet::new();
    let mut memory_total = 0;
    for stats in dbs {
        let step = format!("sample database {}", stats.db);
        let mut conn = source
            .connect(stats.db)
            .await
            .map_err(|source| PreflightError::Source {
                step: step.clone(),
                source,
            })?;
        let keys = scan_keys(&mut conn, per_db)
            .await
            .map_err(failed(source, step.as_str()))?;
        let types: Vec<String> = per_key(&keys, &["TYPE"])
            .query_async(&mut conn)
            .await
            .map_err(failed(source, step.as_str()))?;
        let sizes = if sample.memory_usage_allowed {
            memory_usage(&mut conn, &keys)
                .await
                .map_err(failed(source, step.as_str()))?
        } else {
            None
        };
        sample.memory_usage_allowed = sizes.is_some();
        let sizes = sizes.unwrap_or_else(|| vec![None; keys.len()]);

        let (mut sampled, mut unsupported, mut bytes) = (0, 0, 0);
        // "none": the key expired or was deleted after SCAN returned it.
        for (redis_type, size) in types.iter().zip(sizes).filter(|(t, _)| *t != "none") {
            let (entry, skipped) = sample.by_type.entry(redis_type);
            entry.add(size);
            if redis_type != "stream" && skipped {
                module_types.insert(redis_type.clone());
            }
            sampled += 1;
            unsupported += u64::from(skipped);
            bytes += size.unwrap_or(0);
        }
        sample.keys_sampled += sampled;
        sample.unsupported_keys_estimated += extrapolate(unsupported, sampled, stats.keys);
        memory_total += extrapolate(bytes, sampled, stats.keys);
    }
    sample.module_types = module_types.into_iter().collect();
    sample.estimated_memory_bytes = sample.memory_usage_allowed.then_some(memory_total);
    Ok(sample)
}

/// Up to `limit` keys from the first SCAN pages of `conn`'s database.
async fn scan_keys(
    conn: &mut MultiplexedConnection,
    limit: usize,
) -> Result<Vec<Vec<u8>>, redis::RedisError> {
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, page) = scan_page(conn, cursor, SCAN_COUNT).await?;
        keys.extend(page);
        cursor = next;
        if cursor == 0 || keys.len() >= limit {
            break;
        }
    }
    keys.truncate(limit);
    Ok(keys)
}

/// The command `words` followed by each key in turn, as one pipeline.
fn per_key(keys: &[Vec<u8>], words: &[&str]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for key in keys {
        let mut cmd = redis::Cmd::new();
        cmd.arg(words).arg(key);
        pipe.add_command(cmd);
    }
    pipe
}

/// `MEMORY USAGE` of each key (`None` for a key that vanished), or `None`
/// when the source refuses the command (managed services may).
async fn memory_usage(
    conn: &mut MultiplexedConnection,
    keys: &[Vec<u8>],
) -> Result<Option<Vec<Option<u64>>>, redis::RedisError> {
    match per_key(keys, &["MEMORY", "USAGE"]).query_async(conn).await {
        Ok(sizes) => Ok(Some(sizes)),
        Err(error) if is_refusal(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// `part` of `sampled` keys scaled to `total` keys, rounded to nearest
/// (exact when the whole database was sampled).
pub(super) fn extrapolate(part: u64, sampled: u64, total: u64) -> u64 {
    if sampled == 0 {
        return 0;
    }
    let scaled =
        (u128::from(part) * u128::from(total) + u128::from(sampled / 2)) / u128::from(sampled);
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

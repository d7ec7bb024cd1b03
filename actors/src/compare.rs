//! Comparing keys of the source Redis with the destination store, cheap
//! checks first.
//!
//! `keyferry verify` compares a sample of keys this way, and the
//! migration's safety sweep compares every key (marking each one that
//! differs dirty) and then pages through the destination for keys the
//! source no longer has ([`destination_keys_missing_at_source`]).
//!
//! A page of keys costs a constant number of round trips to the source,
//! whatever its size: one pipeline of `TYPE` + `PTTL` for every key, then
//! one of the type's length command (`STRLEN`, `HLEN`, `LLEN`, `SCARD`,
//! `ZCARD`) — which command is only known once `TYPE` has answered. The
//! destination answers the same questions from one read transaction. Only
//! keys that agree on all of that have their values compared (see
//! [`values`]), in chunks, so memory stays bounded whatever a key's size.
//!
//! The source keeps changing while it is compared: a key that changed
//! under the comparison is reported as differing, which is what the sweep
//! needs (it is re-read and re-applied).

mod values;

use keyferry_engine::{Db, KeyInfo, KeyKind, Store, StoreError, View};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, Value};

/// Reported for a source key whose type changed between two commands of
/// one comparison.
const CHANGED_TYPE: &str = "the source key changed type while it was compared";

/// How [`compare_keys`] compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareOptions {
    /// How far the remaining times to live may differ, in milliseconds:
    /// the two sides are asked a moment apart.
    pub ttl_tolerance_ms: i64,
    /// Elements read per key and round trip when values are compared (0
    /// counts as 1).
    pub chunk: usize,
    /// Whether the values of keys that pass the cheap checks (type,
    /// length, expiry) are compared too.
    pub check_values: bool,
}

impl Default for CompareOptions {
    /// A one-second TTL tolerance, chunks of 1000 elements, values
    /// compared.
    fn default() -> Self {
        Self {
            ttl_tolerance_ms: 1000,
            chunk: 1000,
            check_values: true,
        }
    }
}

/// The verdict on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyComparison {
    /// The key.
    pub key: Vec<u8>,
    /// How the destination's copy compares with the source's.
    pub outcome: Outcome,
}

/// How a key at the destination compares with the source. Lengths are
/// byte lengths for strings and element counts for collections; times to
/// live are the remaining milliseconds, `None` for a persistent key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Both sides agree, or neither has the key (it vanished meanwhile).
    Same,
    /// The source has the key, the destination does not.
    MissingAtDestination,
    /// The destination has the key, the source does not.
    ExtraAtDestination,
    /// The key has different types (names as `TYPE` answers).
    TypeMismatch {
        /// The source's type.
        source: String,
        /// The destination's type.
        destination: String,
    },
    /// Same type, different lengths.
    LengthMismatch {
        /// The source's length.
        source: u64,
        /// The destination's length.
        destination: u64,
    },
    /// The times to live differ by more than the tolerance, or only one
    /// side has one.
    TtlMismatch {
        /// The source's remaining time to live.
        source_ms: Option<i64>,
        /// The destination's remaining time to live.
        destination_ms: Option<i64>,
    },
    /// Type, length and expiry agree but the values differ; `detail` says
    /// where first (bytes escaped, never decoded as UTF-8).
    ValueMismatch {
        /// The first difference found.
        detail: String,
    },
    /// The source holds a type keyferry does not migrate (e.g. `stream`).
    Unsupported {
        /// The type `TYPE` names.
        type_name: String,
    },
}

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// The source refused a command or the connection failed.
    #[error("source: {0}")]
    Source(#[from] redis::RedisError),
    /// The source answered something its command never answers.
    #[error("unexpected reply from the source to {command}: expected {expected}")]
    UnexpectedReply {
        /// The command.
        command: &'static str,
        /// What it should have answered.
        expected: &'static str,
    },
    /// Reading the destination failed.
    #[error("destination: {0}")]
    Destination(#[from] StoreError),
    /// The blocking task reading the destination panicked or was
    /// cancelled.
    #[error("destination read task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Compares `keys` of database `db`: `conn` is the source, bound to `db`;
/// `store` the destination. Returns one verdict per key, in order.
///
/// Cheap checks come first (existence, type, length, expiry within
/// `opts.ttl_tolerance_ms`); with `opts.check_values`, the values of keys
/// that pass them are compared in chunks of `opts.chunk` elements: a
/// string whole, a hash or set by scanning the source and looking each
/// field or member up at the destination (lengths being equal, finding
/// every source element proves equality), a sorted set or list by walking
/// both sides in the same order.
pub async fn compare_keys(
    conn: &mut MultiplexedConnection,
    store: &Store,
    db: Db,
    keys: &[Vec<u8>],
    opts: &CompareOptions,
) -> Result<Vec<KeyComparison>, CompareError> {
    let sources = source_facts(conn, keys).await?;
    let owned = keys.to_vec();
    let (now, destinations) = read_destination(store, move |view| {
        let infos = owned
            .iter()
            .map(|key| view.key_info(db, key))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((view.now(), infos))
    })
    .await?;
    let mut outcomes: Vec<Option<Outcome>> = sources
        .iter()
        .zip(&destinations)
        .map(|(source, destination)| {
            cheap_outcome(source, destination.as_ref(), now, opts.ttl_tolerance_ms)
        })
        .collect();
    if opts.check_values {
        // Keys that passed the cheap checks; an empty string needs no more.
        let (slots, walks): (Vec<usize>, Vec<values::Walk>) = sources
            .iter()
            .enumerate()
            .filter_map(|(i, source)| match source.kind {
                SourceKind::Known(kind) if outcomes[i].is_none() && source.len > 0 => Some((
                    i,
                    values::Walk {
                        key: keys[i].clone(),
                        kind,
                        len: source.len,
                    },
                )),
                _ => None,
            })
            .unzip();
        let details = values::compare(conn, store, db, walks, opts.chunk.max(1)).await?;
        for (slot, detail) in slots.into_iter().zip(details) {
            outcomes[slot] = detail.map(|detail| Outcome::ValueMismatch { detail });
        }
    }
    Ok(keys
        .iter()
        .zip(outcomes)
        .map(|(key, outcome)| KeyComparison {
            key: key.clone(),
            outcome: outcome.unwrap_or(Outcome::Same),
        })
        .collect())
}

/// One page of the destination's keys in `db` (byte order, after `after`,
/// at most `limit` of them; 0 counts as 1) checked against the source
/// with one pipeline of `EXISTS`. Returns the keys the source does not
/// have, and where the next page starts (`None` after the last page).
pub async fn destination_keys_missing_at_source(
    conn: &mut MultiplexedConnection,
    store: &Store,
    db: Db,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<(Vec<Vec<u8>>, Option<Vec<u8>>), CompareError> {
    let limit = limit.max(1);
    let after = after.map(<[u8]>::to_vec);
    let page = read_destination(store, move |view| {
        view.keys_after(db, after.as_deref(), limit)
    })
    .await?;
    let next = if page.len() == limit {
        page.last().cloned()
    } else {
        None
    };
    let mut pipe = redis::pipe();
    for key in &page {
        pipe.cmd("EXISTS").arg(key);
    }
    let exists: Vec<bool> = pipe.query_async(conn).await?;
    let extra = page
        .into_iter()
        .zip(exists)
        .filter_map(|(key, exists)| (!exists).then_some(key))
        .collect();
    Ok((extra, next))
}

/// What the source holds under a key, as `TYPE` names it.
#[derive(Debug, Clone, PartialEq)]
enum SourceKind {
    /// No such key (or it vanished while being looked at).
    Absent,
    /// One of the types keyferry migrates.
    Known(KeyKind),
    /// A type keyferry does not migrate.
    Other(String),
    /// The key changed type between `TYPE` and its length command.
    ChangedType,
}

/// What the source said about a key in the cheap round trips.
#[derive(Debug, Clone, PartialEq)]
struct SourceKey {
    kind: SourceKind,
    /// Remaining time to live in ms, `None` if persistent.
    ttl_ms: Option<i64>,
    /// Byte length or element count (0 unless the kind is known).
    len: u64,
}

/// Asks the source for the type, time to live and length of every key:
/// two pipelined round trips, whatever the number of keys.
async fn source_facts(
    conn: &mut MultiplexedConnection,
    keys: &[Vec<u8>],
) -> Result<Vec<SourceKey>, CompareError> {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("TYPE").arg(key).cmd("PTTL").arg(key);
    }
    // The client folds the flat list of replies into (TYPE, PTTL) pairs.
    let typed: Vec<(String, i64)> = pipe.query_async(conn).await?;
    let mut facts: Vec<SourceKey> = typed
        .into_iter()
        .map(|(name, pttl)| SourceKey {
            // PTTL -2: the key went away between the two commands.
            kind: if pttl == -2 {
                SourceKind::Absent
            } else {
                kind_named(&name)
            },
            ttl_ms: (pttl >= 0).then_some(pttl),
            len: 0,
        })
        .collect();
    let known: Vec<(usize, KeyKind)> = facts
        .iter()
        .enumerate()
        .filter_map(|(i, fact)| match fact.kind {
            SourceKind::Known(kind) => Some((i, kind)),
            _ => None,
        })
        .collect();
    let cmds = known
        .iter()
        .map(|&(i, kind)| {
            let mut cmd = redis::cmd(length_command(kind));
            cmd.arg(&keys[i]);
            cmd
        })
        .collect();
    let lengths = query_each(conn, cmds).await?;
    for ((i, kind), reply) in known.into_iter().zip(lengths) {
        let fact = &mut facts[i];
        match reply {
            Err(TypeChanged) => fact.kind = SourceKind::ChangedType,
            Ok(value) => {
                fact.len = decode(value, length_command(kind), "an integer")?;
                // A collection is never empty: it was deleted meanwhile.
                if fact.len == 0 && kind != KeyKind::String {
                    fact.kind = SourceKind::Absent;
                }
            }
        }
    }
    Ok(facts)
}

/// The kind `TYPE` calls `name` ("none" for a missing key).
fn kind_named(name: &str) -> SourceKind {
    if name == "none" {
        return SourceKind::Absent;
    }
    [
        KeyKind::String,
        KeyKind::Hash,
        KeyKind::List,
        KeyKind::Set,
        KeyKind::ZSet,
    ]
    .into_iter()
    .find(|kind| kind.name() == name)
    .map_or_else(|| SourceKind::Other(name.to_string()), SourceKind::Known)
}

/// The command that measures a key of `kind`.
fn length_command(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::String => "STRLEN",
        KeyKind::Hash => "HLEN",
        KeyKind::List => "LLEN",
        KeyKind::Set => "SCARD",
        KeyKind::ZSet => "ZCARD",
    }
}

/// The verdict of the cheap checks: `None` when they all agree (the values
/// may still differ). `now` is the destination's clock when `destination`
/// was read.
fn cheap_outcome(
    source: &SourceKey,
    destination: Option<&KeyInfo>,
    now: i64,
    ttl_tolerance_ms: i64,
) -> Option<Outcome> {
    let (kind, destination) = match (&source.kind, destination) {
        (SourceKind::Known(kind), Some(destination)) => (*kind, destination),
        (SourceKind::Absent, None) => return Some(Outcome::Same),
        (SourceKind::Absent, Some(_)) => return Some(Outcome::ExtraAtDestination),
        (SourceKind::Other(name), _) => {
            return Some(Outcome::Unsupported {
                type_name: name.clone(),
            });
        }
        (SourceKind::ChangedType, _) => {
            return Some(Outcome::ValueMismatch {
                detail: CHANGED_TYPE.to_string(),
            });
        }
        (SourceKind::Known(_), None) => return Some(Outcome::MissingAtDestination),
    };
    if kind != destination.kind {
        return Some(Outcome::TypeMismatch {
            source: kind.name().to_string(),
            destination: destination.kind.name().to_string(),
        });
    }
    if source.len != destination.len {
        return Some(Outcome::LengthMismatch {
            source: source.len,
            destination: destination.len,
        });
    }
    let destination_ms = destination.expire_at_ms.map(|at| at - now);
    let ttl_agrees = match (source.ttl_ms, destination_ms) {
        (None, None) => true,
        (Some(a), Some(b)) => a.abs_diff(b) <= u64::try_from(ttl_tolerance_ms).unwrap_or(0),
        _ => false,
    };
    (!ttl_agrees).then_some(Outcome::TtlMismatch {
        source_ms: source.ttl_ms,
        destination_ms,
    })
}

/// A source reply of `WRONGTYPE`: the key changed type after the command
/// for it was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TypeChanged;

/// Sends `cmds` in one pipeline and returns each reply, a key's
/// `WRONGTYPE` as [`TypeChanged`]. (`Pipeline::query_async` would fail the
/// whole page on one key that changed type under it.) Other errors fail
/// the call.
async fn query_each(
    conn: &mut MultiplexedConnection,
    cmds: Vec<Cmd>,
) -> Result<Vec<Result<Value, TypeChanged>>, CompareError> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let count = cmds.len();
    let mut pipe = redis::pipe();
    for cmd in cmds {
        pipe.add_command(cmd);
    }
    let replies = conn.send_packed_commands(&pipe, 0, count).await?;
    replies
        .into_iter()
        .map(|reply| match reply {
            Value::ServerError(error) if error.code() == "WRONGTYPE" => Ok(Err(TypeChanged)),
            reply => Ok(Ok(reply.extract_error()?)),
        })
        .collect()
}

/// Decodes `reply`, which should be `expected`, the answer to `command`.
fn decode<T: FromRedisValue>(
    reply: Value,
    command: &'static str,
    expected: &'static str,
) -> Result<T, CompareError> {
    redis::from_owned_redis_value(reply)
        .map_err(|_| CompareError::UnexpectedReply { command, expected })
}

/// Runs `op` over a read view of `store` on tokio's blocking pool: SQLite
/// reads block, and must not stall the runtime's workers.
async fn read_destination<R: Send + 'static>(
    store: &Store,
    op: impl FnOnce(&View<'_>) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, CompareError> {
    let store = store.clone();
    Ok(tokio::task::spawn_blocking(move || store.read(op)).await??)
}

#[cfg(test)]
mod tests;

//! Reading keys from the source for import, with bounded memory.
//!
//! [`fetch_keys`] reads a page of keys in two pipelined round trips,
//! however many keys the page holds: the first asks each key's `TYPE` and
//! `PTTL`, the second reads each key by its type — a string whole, a
//! collection's length and its first chunk of at most
//! [`FetchLimits::chunk_elements`] elements. A collection that fits in
//! that chunk comes back whole as a [`Fetched::Value`]; a bigger one as a
//! [`BigKey`] holding the first chunk and where to continue, which
//! [`BigKey::stream_into`] copies into a [`keyferry_engine::StagedKey`]
//! chunk by chunk, so memory stays bounded whatever the key's size.
//!
//! The source keeps taking writes while it is read, so a key may vanish,
//! expire, change type, or come back torn (part before, part after a
//! write) between or during these reads. None of that needs a lock: the
//! keyspace tracker records every such write in the dirty-key registry,
//! and the dirty applier re-reads those keys and replaces what the bulk
//! import wrote. A read here only has to stay well-formed: a key whose
//! type changed between the two round trips is fetched once more, and if
//! it is still inconsistent it is reported [`Fetched::Missing`].

mod chunk;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use keyferry_engine::{KeyKind, KeyValue};
use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, RedisError, Value};

use chunk::Position;
pub use stream::{BigKey, StreamError};

/// The error code of a command run on a key of another type.
const WRONGTYPE: &str = "WRONGTYPE";

/// How much of a collection is read at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLimits {
    /// Elements per read: a collection with more is a [`BigKey`], read in
    /// chunks of this size. 0 counts as 1. (For hashes and sets this is
    /// `HSCAN`/`SSCAN`'s `COUNT` hint, so a compactly encoded collection,
    /// which Redis always scans whole, may exceed it.)
    pub chunk_elements: usize,
}

impl FetchLimits {
    /// Elements per read, never 0: a 0-element range read from index 0
    /// would end at -1, which Redis takes for "to the end".
    fn chunk(&self) -> usize {
        self.chunk_elements.max(1)
    }
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            chunk_elements: 1000,
        }
    }
}

/// What reading one key found.
#[derive(Debug, PartialEq)]
pub enum Fetched {
    /// The whole key.
    Value {
        /// Its contents; a hash or set has no repeated field or member.
        value: KeyValue,
        /// Remaining time to live in milliseconds; `None` if persistent.
        ttl_ms: Option<i64>,
        /// Payload bytes: the key plus [`approx_bytes`] of the value.
        bytes: u64,
    },
    /// A collection bigger than one chunk: stream it with
    /// [`BigKey::stream_into`].
    Big(BigKey),
    /// The key is gone: deleted or expired since it was listed, or an empty
    /// collection, or its type kept changing while it was read.
    Missing,
    /// A type the keyspace cannot hold (a stream, a module's type).
    Unsupported {
        /// The name `TYPE` answered.
        type_name: String,
    },
}

/// Reads `keys` from the database `conn` is bound to, one [`Fetched`] per
/// key in the same order, in two pipelined round trips (plus two more
/// only for keys whose type changed between them, which are read again
/// once).
///
/// Fails on a connection error, on a server error other than a type
/// change (e.g. an ACL denial), or on a reply of an unexpected shape.
pub async fn fetch_keys(
    conn: &mut MultiplexedConnection,
    keys: &[Vec<u8>],
    limits: &FetchLimits,
) -> Result<Vec<Fetched>, RedisError> {
    let all: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let mut attempts = fetch_once(conn, &all, limits).await?;
    let changed: Vec<usize> = (0..attempts.len())
        .filter(|&i| matches!(attempts[i], Attempt::TypeChanged))
        .collect();
    if !changed.is_empty() {
        let again: Vec<&[u8]> = changed.iter().map(|&i| all[i]).collect();
        for (i, attempt) in changed
            .into_iter()
            .zip(fetch_once(conn, &again, limits).await?)
        {
            attempts[i] = attempt;
        }
    }
    Ok(attempts
        .into_iter()
        .map(|attempt| match attempt {
            Attempt::Read(fetched) => fetched,
            // Still inconsistent after a second read: the key is being
            // rewritten right now, and the tracker has recorded it.
            Attempt::TypeChanged => Fetched::Missing,
        })
        .collect())
}

/// An estimate of the bytes `value` takes: its strings' lengths, plus 8 per
/// zset score. Meant for batch-size accounting, not for exact sizes.
pub fn approx_bytes(value: &KeyValue) -> u64 {
    let total = |items: &[Vec<u8>]| items.iter().map(|i| i.len() as u64).sum::<u64>();
    match value {
        KeyValue::String(s) => s.len() as u64,
        KeyValue::Hash(pairs) => pairs.iter().map(|(f, v)| (f.len() + v.len()) as u64).sum(),
        KeyValue::List(items) | KeyValue::Set(items) => total(items),
        KeyValue::ZSet(members) => members.iter().map(|(m, _)| m.len() as u64 + 8).sum(),
    }
}

/// One read of one key.
enum Attempt {
    /// A consistent read.
    Read(Fetched),
    /// Round trip 2 found another type than round trip 1 reported.
    TypeChanged,
}

/// What round trip 1 found out about a key.
enum Probe {
    /// Nothing more to read.
    Done(Fetched),
    /// Read it as `kind`.
    Read {
        /// Its type.
        kind: KeyKind,
        /// Its remaining time to live, `None` if persistent.
        ttl_ms: Option<i64>,
    },
}

/// Reads `keys` in exactly two round trips (one if none needs reading).
async fn fetch_once(
    conn: &mut MultiplexedConnection,
    keys: &[&[u8]],
    limits: &FetchLimits,
) -> Result<Vec<Attempt>, RedisError> {
    let mut first = redis::pipe();
    for key in keys {
        first.cmd("TYPE").arg(*key).cmd("PTTL").arg(*key);
    }
    let mut replies = send(conn, &first, keys.len() * 2).await?.into_iter();
    let probes = keys
        .iter()
        .map(|_| probe(next_reply(&mut replies)?, next_reply(&mut replies)?))
        .collect::<Result<Vec<_>, RedisError>>()?;

    let chunk = limits.chunk();
    let mut second = redis::pipe();
    let mut commands = 0;
    for (key, probe) in keys.iter().zip(&probes) {
        if let Probe::Read { kind, .. } = probe {
            match Position::start(*kind) {
                None => {
                    second.cmd("GET").arg(*key);
                    commands += 1;
                }
                Some(start) => {
                    second
                        .add_command(start.len_command(key))
                        .add_command(start.read_command(key, chunk));
                    commands += 2;
                }
            }
        }
    }
    let mut replies = send(conn, &second, commands).await?.into_iter();
    keys.iter()
        .zip(probes)
        .map(|(key, probe)| match probe {
            Probe::Done(fetched) => Ok(Attempt::Read(fetched)),
            Probe::Read { kind, ttl_ms } => match Position::start(kind) {
                None => string(key, ttl_ms, next_reply(&mut replies)?),
                Some(start) => collection(
                    key,
                    ttl_ms,
                    start,
                    chunk,
                    [next_reply(&mut replies)?, next_reply(&mut replies)?],
                ),
            },
        })
        .collect()
}

/// Sends a pipeline of `count` commands and returns every reply, server
/// errors included as [`Value::ServerError`]: `Pipeline::query_async`
/// would fail the whole page on one key's `WRONGTYPE`.
async fn send(
    conn: &mut MultiplexedConnection,
    pipe: &redis::Pipeline,
    count: usize,
) -> Result<Vec<Value>, RedisError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    conn.send_packed_commands(pipe, 0, count).await
}

/// The next reply of a pipeline.
fn next_reply(replies: &mut impl Iterator<Item = Value>) -> Result<Value, RedisError> {
    replies.next().ok_or_else(|| {
        RedisError::from((
            ErrorKind::ResponseError,
            "the source sent fewer replies than commands",
        ))
    })
}

/// Interprets a key's `TYPE` and `PTTL` replies.
fn probe(type_reply: Value, pttl_reply: Value) -> Result<Probe, RedisError> {
    // Type names are ASCII words, unlike keys, so decoding them is safe.
    let type_name: String = redis::from_owned_redis_value(type_reply.extract_error()?)?;
    let pttl: i64 = redis::from_owned_redis_value(pttl_reply.extract_error()?)?;
    if type_name == "none" {
        return Ok(Probe::Done(Fetched::Missing));
    }
    let known = [
        KeyKind::String,
        KeyKind::Hash,
        KeyKind::List,
        KeyKind::Set,
        KeyKind::ZSet,
    ];
    let Some(kind) = known.into_iter().find(|k| k.name() == type_name) else {
        return Ok(Probe::Done(Fetched::Unsupported { type_name }));
    };
    Ok(match pttl {
        // Expired (or deleted) right after `TYPE` answered.
        -2 => Probe::Done(Fetched::Missing),
        -1 => Probe::Read { kind, ttl_ms: None },
        ms if ms >= 0 => Probe::Read {
            kind,
            ttl_ms: Some(ms),
        },
        other => {
            return Err(RedisError::from((
                ErrorKind::TypeError,
                "unexpected PTTL reply",
                other.to_string(),
            )));
        }
    })
}

/// A reply of round trip 2, or `None` if it is the key's `WRONGTYPE`.
fn typed_reply(reply: Value) -> Result<Option<Value>, RedisError> {
    match reply {
        Value::ServerError(error) if error.code() == WRONGTYPE => Ok(None),
        reply => reply.extract_error().map(Some),
    }
}

/// Interprets a string's `GET` reply.
fn string(key: &[u8], ttl_ms: Option<i64>, reply: Value) -> Result<Attempt, RedisError> {
    let Some(reply) = typed_reply(reply)? else {
        return Ok(Attempt::TypeChanged);
    };
    let value: Option<Vec<u8>> = redis::from_owned_redis_value(reply)?;
    Ok(Attempt::Read(match value {
        Some(value) => whole(key, KeyValue::String(value), ttl_ms),
        None => Fetched::Missing,
    }))
}

/// Interprets a collection's length and first-chunk replies.
fn collection(
    key: &[u8],
    ttl_ms: Option<i64>,
    start: Position,
    chunk: usize,
    [len_reply, chunk_reply]: [Value; 2],
) -> Result<Attempt, RedisError> {
    let (Some(len_reply), Some(chunk_reply)) = (typed_reply(len_reply)?, typed_reply(chunk_reply)?)
    else {
        return Ok(Attempt::TypeChanged);
    };
    let len: u64 = redis::from_owned_redis_value(len_reply)?;
    if len == 0 {
        return Ok(Attempt::Read(Fetched::Missing));
    }
    let (elements, next) = start.parse(chunk_reply, chunk)?;
    // A range that reached the length read first is complete even though
    // it was not short.
    let next = next.filter(|next| !next.is_past(len));
    Ok(Attempt::Read(match next {
        None if elements.is_empty_collection() => Fetched::Missing,
        None => whole(key, without_repeats(elements), ttl_ms),
        Some(next) => Fetched::Big(BigKey::new(elements, ttl_ms, len, next)),
    }))
}

/// A whole key's [`Fetched::Value`].
fn whole(key: &[u8], value: KeyValue, ttl_ms: Option<i64>) -> Fetched {
    Fetched::Value {
        bytes: key.len() as u64 + approx_bytes(&value),
        value,
        ttl_ms,
    }
}

/// Drops the repeats `HSCAN`/`SSCAN` may return (a rehash in progress can
/// show an element twice), keeping a repeated hash field's last value as
/// the engine would.
fn without_repeats(value: KeyValue) -> KeyValue {
    match value {
        KeyValue::Hash(pairs) => KeyValue::Hash(keep_last(pairs, |(field, _)| field)),
        KeyValue::Set(members) => KeyValue::Set(keep_last(members, |member| member)),
        other => other,
    }
}

/// `items` with only the last of each group sharing a name, in order.
fn keep_last<T>(items: Vec<T>, name: impl Fn(&T) -> &[u8]) -> Vec<T> {
    let mut keep: Vec<bool> = {
        let mut seen = HashSet::with_capacity(items.len());
        items
            .iter()
            .rev()
            .map(|item| seen.insert(name(item)))
            .collect()
    };
    keep.reverse();
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, keep)| keep.then_some(item))
        .collect()
}

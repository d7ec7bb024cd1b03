//! Comparing values chunk by chunk, for keys whose type, length and
//! expiry already agree.
//!
//! Each key is walked one chunk at a time: one source command per step
//! (`GET`, `HSCAN`, `SSCAN`, `ZRANGE … WITHSCORES`, `LRANGE`), checked
//! against the destination's matching reader. The steps of many keys share
//! one pipeline per round, so a page of small keys costs one round trip
//! and a big key one per chunk. A round holds at most [`WALKS_PER_ROUND`]
//! chunks, and at most [`STRING_BYTES_PER_ROUND`] bytes of strings (or one
//! string bigger than that), so memory stays bounded whatever the keys.
//!
//! Hashes and sets are scanned at the source and each field or member is
//! looked up at the destination: their lengths being equal, finding every
//! source element proves the two equal. Sorted sets and lists are walked
//! in the same order on both sides and compared element by element; the
//! destination continues a sorted set after the last pair it returned
//! rather than at a rank, which SQLite would have to count up to.

use std::collections::VecDeque;

use keyferry_engine::{Db, FieldValue, KeyKind, ScoredMember, Store, StoreError, View};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, Value};

use crate::verify::escape_bytes;

use super::{CHANGED_TYPE, CompareError, TypeChanged, decode, query_each, read_destination};

/// Keys whose next chunk is read in the same round trip.
const WALKS_PER_ROUND: usize = 64;
/// String bytes read in one round trip (a bigger string goes alone).
const STRING_BYTES_PER_ROUND: u64 = 16 << 20;
/// Bytes of a key, field or member quoted in a difference's description.
const SHOWN_BYTES: usize = 64;

/// A key whose value is to be compared.
pub(super) struct Walk {
    /// The key.
    pub(super) key: Vec<u8>,
    /// Its type on both sides.
    pub(super) kind: KeyKind,
    /// Its byte length (string) or element count on both sides.
    pub(super) len: u64,
}

/// Compares the values of `walks` (keys of `db` on the source `conn` and
/// the destination `store`) in chunks of `size` elements. Returns, for
/// each, `None` if the values are equal, or the first difference found.
pub(super) async fn compare(
    conn: &mut MultiplexedConnection,
    store: &Store,
    db: Db,
    walks: Vec<Walk>,
    size: usize,
) -> Result<Vec<Option<String>>, CompareError> {
    let mut differences = vec![None; walks.len()];
    let mut pending: VecDeque<Walker> = walks
        .into_iter()
        .enumerate()
        .map(|(slot, walk)| Walker {
            at: At::start(walk.kind),
            target: Target {
                slot,
                key: walk.key,
                len: walk.len,
            },
        })
        .collect();
    while !pending.is_empty() {
        let round = next_round(&mut pending);
        let cmds = round
            .iter()
            .map(|w| w.at.command(&w.target.key, size))
            .collect();
        let replies = query_each(conn, cmds).await?;
        let mut chunks = Vec::with_capacity(round.len());
        for (walker, reply) in round.into_iter().zip(replies) {
            match reply {
                Ok(value) => chunks.push((walker.target, walker.at.parse(value)?)),
                Err(TypeChanged) => differences[walker.target.slot] = Some(CHANGED_TYPE.into()),
            }
        }
        let checked = read_destination(store, move |view| {
            chunks
                .into_iter()
                .map(|(target, chunk)| {
                    let step = match chunk.check(view, db, &target, size) {
                        Err(StoreError::WrongType) => Step::Differs(
                            "the destination key changed type while it was compared".into(),
                        ),
                        other => other?,
                    };
                    Ok((target, step))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
        for (target, step) in checked {
            match step {
                Step::Next(at) => pending.push_back(Walker { target, at }),
                Step::Done => {}
                Step::Differs(detail) => differences[target.slot] = Some(detail),
            }
        }
    }
    Ok(differences)
}

/// Takes the walkers whose next chunks are read together: up to
/// [`WALKS_PER_ROUND`], strings within [`STRING_BYTES_PER_ROUND`].
fn next_round(pending: &mut VecDeque<Walker>) -> Vec<Walker> {
    let mut round: Vec<Walker> = Vec::new();
    let mut string_bytes = 0;
    while round.len() < WALKS_PER_ROUND {
        let Some(next) = pending.front() else {
            break;
        };
        let bytes = match next.at {
            At::String => next.target.len,
            _ => 0,
        };
        if !round.is_empty() && string_bytes + bytes > STRING_BYTES_PER_ROUND {
            break;
        }
        string_bytes += bytes;
        round.extend(pending.pop_front());
    }
    round
}

/// A key being compared, and where its walk stands.
struct Walker {
    target: Target,
    at: At,
}

/// A key being compared.
struct Target {
    /// Its index in the caller's list.
    slot: usize,
    key: Vec<u8>,
    /// Its byte length or element count.
    len: u64,
}

/// Where a key's walk stands: what to read next.
enum At {
    /// The whole string.
    String,
    /// The `HSCAN` page at `cursor`.
    Hash { cursor: u64 },
    /// The `SSCAN` page at `cursor`.
    Set { cursor: u64 },
    /// The members from `rank` on; at the destination, those after the
    /// pair `after` (the last one compared).
    ZSet {
        rank: u64,
        after: Option<ScoredMember>,
    },
    /// The elements from index `start` on.
    List { start: u64 },
}

/// A chunk read from the source, with where it was read from.
enum Chunk {
    /// The string, `None` if the key is gone.
    String(Option<Vec<u8>>),
    /// Fields of a hash, and the cursor of the next page (0: done).
    Hash { next: u64, pairs: Vec<FieldValue> },
    /// Members of a set, and the cursor of the next page (0: done).
    Set { next: u64, members: Vec<Vec<u8>> },
    /// Members of a sorted set from `rank` on.
    ZSet {
        rank: u64,
        after: Option<ScoredMember>,
        members: Vec<ScoredMember>,
    },
    /// Elements of a list from `start` on.
    List { start: u64, elements: Vec<Vec<u8>> },
}

/// How a walk goes on after one chunk.
enum Step {
    /// Read the next chunk.
    Next(At),
    /// The values are equal.
    Done,
    /// The values differ: where, first.
    Differs(String),
}

impl At {
    /// The start of the walk over a key of `kind`.
    fn start(kind: KeyKind) -> At {
        match kind {
            KeyKind::String => At::String,
            KeyKind::Hash => At::Hash { cursor: 0 },
            KeyKind::Set => At::Set { cursor: 0 },
            KeyKind::ZSet => At::ZSet {
                rank: 0,
                after: None,
            },
            KeyKind::List => At::List { start: 0 },
        }
    }

    /// The source command reading the next `size` elements of `key`.
    fn command(&self, key: &[u8], size: usize) -> Cmd {
        let last = |first: u64| first + size as u64 - 1;
        let mut cmd = redis::cmd(self.name());
        cmd.arg(key);
        match self {
            At::String => {}
            At::Hash { cursor } | At::Set { cursor } => {
                cmd.arg(*cursor).arg("COUNT").arg(size);
            }
            At::ZSet { rank, .. } => {
                cmd.arg(*rank).arg(last(*rank)).arg("WITHSCORES");
            }
            At::List { start } => {
                cmd.arg(*start).arg(last(*start));
            }
        }
        cmd
    }

    /// The name of [`At::command`].
    fn name(&self) -> &'static str {
        match self {
            At::String => "GET",
            At::Hash { .. } => "HSCAN",
            At::Set { .. } => "SSCAN",
            At::ZSet { .. } => "ZRANGE",
            At::List { .. } => "LRANGE",
        }
    }

    /// The chunk the source answered to [`At::command`].
    fn parse(self, reply: Value) -> Result<Chunk, CompareError> {
        let command = self.name();
        Ok(match self {
            At::String => Chunk::String(decode(reply, command, "a bulk string or nil")?),
            At::Hash { .. } => {
                let (next, pairs) = decode(reply, command, "a cursor and field-value pairs")?;
                Chunk::Hash { next, pairs }
            }
            At::Set { .. } => {
                let (next, members) = decode(reply, command, "a cursor and members")?;
                Chunk::Set { next, members }
            }
            At::ZSet { rank, after } => Chunk::ZSet {
                rank,
                after,
                // The client parses scores with Rust's float syntax, which
                // accepts Redis's "inf" and "-inf".
                members: decode(reply, command, "members with scores")?,
            },
            At::List { start } => Chunk::List {
                start,
                elements: decode(reply, command, "a list of elements")?,
            },
        })
    }
}

impl Chunk {
    /// Checks this chunk of `target` against the destination (`size`
    /// elements per chunk).
    fn check(
        self,
        view: &View<'_>,
        db: Db,
        target: &Target,
        size: usize,
    ) -> Result<Step, StoreError> {
        let key = target.key.as_slice();
        // Where an ordered walk goes on, if the chunk was not its last.
        let next = |first: u64| Some(first + size as u64).filter(|&n| n < target.len);
        Ok(match self {
            Chunk::String(None) => {
                Step::Differs("the source key vanished while it was compared".into())
            }
            Chunk::String(Some(source)) => {
                let destination = view.string_get(db, key)?.unwrap_or_default();
                match first_difference(&source, &destination) {
                    None => Step::Done,
                    Some(at) => Step::Differs(format!("the strings differ from byte {at}")),
                }
            }
            Chunk::Hash { next, pairs } => {
                let (fields, values): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
                let found = view.hash_get_many(db, key, &fields)?;
                let differing = fields.iter().zip(values.iter().zip(found)).find_map(
                    |(field, (value, found))| match found {
                        Some(found) if found == *value => None,
                        Some(_) => Some(format!("field {} has another value", show(field))),
                        None => Some(format!(
                            "field {} is missing at the destination",
                            show(field)
                        )),
                    },
                );
                scanned(differing, next, |cursor| At::Hash { cursor })
            }
            Chunk::Set { next, members } => {
                let found = view.set_contains_many(db, key, &members)?;
                let differing =
                    members
                        .iter()
                        .zip(found)
                        .find(|(_, found)| !found)
                        .map(|(member, _)| {
                            format!("member {} is missing at the destination", show(member))
                        });
                scanned(differing, next, |cursor| At::Set { cursor })
            }
            Chunk::ZSet {
                rank,
                after,
                members,
            } => {
                let after = after
                    .as_ref()
                    .map(|(member, score)| (*score, member.as_slice()));
                let mut destination = view.zset_range_after(db, key, after, size)?;
                let describe =
                    |(member, score): &ScoredMember| format!("{} (score {score})", show(member));
                match ordered_difference("rank", rank, &members, &destination, describe) {
                    Some(detail) => Step::Differs(detail),
                    None => match next(rank) {
                        Some(rank) => Step::Next(At::ZSet {
                            rank,
                            after: destination.pop(),
                        }),
                        None => Step::Done,
                    },
                }
            }
            Chunk::List { start, elements } => {
                let last = start + size as u64 - 1;
                let destination = view.list_range(db, key, to_index(start), to_index(last))?;
                match ordered_difference("index", start, &elements, &destination, |e| show(e)) {
                    Some(detail) => Step::Differs(detail),
                    None => next(start).map_or(Step::Done, |start| Step::Next(At::List { start })),
                }
            }
        })
    }
}

/// The step after one page of a scanned hash or set: the difference found
/// in it, else the page at cursor `next` (0: the scan is complete).
fn scanned(differing: Option<String>, next: u64, at: impl FnOnce(u64) -> At) -> Step {
    match (differing, next) {
        (Some(detail), _) => Step::Differs(detail),
        (None, 0) => Step::Done,
        (None, cursor) => Step::Next(at(cursor)),
    }
}

/// The first place where two chunks of an ordered walk starting at
/// position `first` differ, described; `None` if they are equal.
fn ordered_difference<T: PartialEq>(
    position: &str,
    first: u64,
    source: &[T],
    destination: &[T],
    describe: impl Fn(&T) -> String,
) -> Option<String> {
    let i =
        (0..source.len().max(destination.len())).find(|&i| source.get(i) != destination.get(i))?;
    let side = |chunk: &[T]| {
        chunk
            .get(i)
            .map_or_else(|| "nothing".to_string(), &describe)
    };
    Some(format!(
        "at {position} {}: the source has {}, the destination {}",
        first + i as u64,
        side(source),
        side(destination)
    ))
}

/// The first byte offset where `a` and `b` differ (the shorter one's
/// length if one is a prefix of the other); `None` if they are equal.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    (a != b).then(|| a.iter().zip(b).take_while(|(x, y)| x == y).count())
}

/// A list index as the engine's readers take it.
fn to_index(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

/// `bytes` quoted for a message, escaped as Redis shows keys (never
/// decoded as UTF-8, the same style as verify's report), cut after
/// [`SHOWN_BYTES`].
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
    let mut text = format!("\"{}\"", escape_bytes(shown));
    if bytes.len() > SHOWN_BYTES {
        text.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    text
}

#[cfg(test)]
mod tests;

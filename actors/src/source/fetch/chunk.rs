//! One chunk of a collection: the command that reads it from the source and
//! the parsing of its reply.
//!
//! The first chunk is read inside [`super::fetch_keys`]'s pipeline and the
//! others by [`super::BigKey::stream_into`]; both go through [`Position`],
//! so a collection is read the same way whichever chunk it is.

use keyferry_engine::{FieldValue, KeyKind, KeyValue, ScoredMember};
use redis::{Cmd, RedisError, Value};

/// Where the next chunk of a collection starts. The variant is the
/// collection's type, so a position can never be used with the wrong read
/// command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Position {
    /// An `HSCAN` cursor.
    Hash(u64),
    /// An `SSCAN` cursor.
    Set(u64),
    /// The rank of the next member (`ZRANGE` by rank).
    ZSet(u64),
    /// The index of the next element (`LRANGE`).
    List(u64),
}

impl Position {
    /// The start of a collection of type `kind`; `None` for a string,
    /// which is read whole.
    pub(super) fn start(kind: KeyKind) -> Option<Self> {
        match kind {
            KeyKind::String => None,
            KeyKind::Hash => Some(Position::Hash(0)),
            KeyKind::Set => Some(Position::Set(0)),
            KeyKind::ZSet => Some(Position::ZSet(0)),
            KeyKind::List => Some(Position::List(0)),
        }
    }

    /// The type of the collection.
    pub(super) fn kind(self) -> KeyKind {
        match self {
            Position::Hash(_) => KeyKind::Hash,
            Position::Set(_) => KeyKind::Set,
            Position::ZSet(_) => KeyKind::ZSet,
            Position::List(_) => KeyKind::List,
        }
    }

    /// The command counting the collection's elements.
    pub(super) fn len_command(self, key: &[u8]) -> Cmd {
        let name = match self {
            Position::Hash(_) => "HLEN",
            Position::Set(_) => "SCARD",
            Position::ZSet(_) => "ZCARD",
            Position::List(_) => "LLEN",
        };
        let mut cmd = redis::cmd(name);
        cmd.arg(key);
        cmd
    }

    /// The command reading about `count` elements (at least 1) from here.
    /// For hashes and sets `count` is only a hint: Redis may answer more
    /// (a compactly encoded collection always comes whole) or fewer.
    pub(super) fn read_command(self, key: &[u8], count: usize) -> Cmd {
        match self {
            Position::Hash(cursor) => scan_command("HSCAN", key, cursor, count),
            Position::Set(cursor) => scan_command("SSCAN", key, cursor, count),
            Position::ZSet(start) => {
                let mut cmd = range_command("ZRANGE", key, start, count);
                cmd.arg("WITHSCORES");
                cmd
            }
            Position::List(start) => range_command("LRANGE", key, start, count),
        }
    }

    /// Parses the reply to [`Position::read_command`]: the chunk, and where
    /// the next one starts (`None` when this one was the last: a scan
    /// cursor back at 0, or a range shorter than asked for).
    pub(super) fn parse(
        self,
        reply: Value,
        count: usize,
    ) -> Result<(KeyValue, Option<Position>), RedisError> {
        Ok(match self {
            Position::Hash(_) => {
                let (cursor, pairs): (u64, Vec<FieldValue>) = redis::from_owned_redis_value(reply)?;
                (
                    KeyValue::Hash(pairs),
                    (cursor != 0).then_some(Position::Hash(cursor)),
                )
            }
            Position::Set(_) => {
                let (cursor, members): (u64, Vec<Vec<u8>>) = redis::from_owned_redis_value(reply)?;
                (
                    KeyValue::Set(members),
                    (cursor != 0).then_some(Position::Set(cursor)),
                )
            }
            Position::ZSet(start) => {
                // RESP2 scores are strings ("1.5", "inf", "-inf"); the
                // conversion parses them with Rust's float syntax, which
                // accepts all of Redis's spellings exactly.
                let members: Vec<ScoredMember> = redis::from_owned_redis_value(reply)?;
                let next = after_range(start, members.len(), count).map(Position::ZSet);
                (KeyValue::ZSet(members), next)
            }
            Position::List(start) => {
                let items: Vec<Vec<u8>> = redis::from_owned_redis_value(reply)?;
                let next = after_range(start, items.len(), count).map(Position::List);
                (KeyValue::List(items), next)
            }
        })
    }

    /// True when nothing is left to read from here in a collection of `len`
    /// elements. Only a range position can tell: a scan cursor says nothing
    /// about how much remains.
    pub(super) fn is_past(self, len: u64) -> bool {
        match self {
            Position::Hash(_) | Position::Set(_) => false,
            Position::ZSet(start) | Position::List(start) => start >= len,
        }
    }
}

/// `name key cursor COUNT count` (`HSCAN`, `SSCAN`).
fn scan_command(name: &str, key: &[u8], cursor: u64, count: usize) -> Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(key).arg(cursor).arg("COUNT").arg(count);
    cmd
}

/// `name key start stop` for the `count` elements from `start` (`LRANGE`,
/// `ZRANGE`). The range is inclusive and `count` is never 0, so the stop is
/// never `start - 1` — from 0 that would be -1, the whole collection.
fn range_command(name: &str, key: &[u8], start: u64, count: usize) -> Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(key).arg(start).arg(start + count as u64 - 1);
    cmd
}

/// The start of the range after `got` elements read from `start`, unless
/// the range came back short (the end of the collection).
fn after_range(start: u64, got: usize, count: usize) -> Option<u64> {
    (got >= count).then_some(start + got as u64)
}

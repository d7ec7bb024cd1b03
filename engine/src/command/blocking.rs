//! The blocking list and sorted-set commands: `BLPOP BRPOP BRPOPLPUSH
//! BLMOVE BLMPOP BZPOPMIN BZPOPMAX BZMPOP`.
//!
//! As a table entry each is an [`Exec::Write`] that runs its non-blocking
//! form: that is what Redis does inside `MULTI`, and what the server runs
//! first when a client sends one (only an empty answer — a null — makes
//! the server block the client, see [`crate::blocking`]). [`parse`] gives
//! the server the keys, the timeout and the [`BlockOp`] to register, and
//! [`try_key`] is the pop that both the first attempt and the writer's
//! serving of a waiter run.

use std::time::Duration;

use super::lists::{parse_mpop, parse_side};
use super::{CommandCtx, CommandSpec, Exec, spec};
use crate::db::Db;
use crate::keyvalue::{KeyKind, Side};
use crate::long_double;
use crate::reply::Reply;
use crate::write::Tx;

const BLOCKING: &[&str] = &["write", "noscript", "blocking"];
const BLOCKING_DENYOOM: &[&str] = &["write", "denyoom", "noscript", "blocking"];
const BLOCKING_FAST: &[&str] = &["write", "noscript", "fast", "blocking"];
const BLOCKING_MOVABLE: &[&str] = &["write", "blocking", "movablekeys"];

/// The blocking commands (Redis 7.0's arity, flags and key positions).
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    spec("blpop", -3, BLOCKING, (1, -2, 1), Exec::Write(run)),
    spec("brpop", -3, BLOCKING, (1, -2, 1), Exec::Write(run)),
    spec("brpoplpush", 4, BLOCKING_DENYOOM, (1, 2, 1), Exec::Write(run)),
    spec("blmove", 6, BLOCKING_DENYOOM, (1, 2, 1), Exec::Write(run)),
    spec("blmpop", -5, BLOCKING_MOVABLE, (0, 0, 0), Exec::Write(run)),
    spec("bzpopmin", -3, BLOCKING_FAST, (1, -2, 1), Exec::Write(run)),
    spec("bzpopmax", -3, BLOCKING_FAST, (1, -2, 1), Exec::Write(run)),
    spec("bzmpop", -5, BLOCKING_MOVABLE, (0, 0, 0), Exec::Write(run)),
];

/// What a blocked client pops once one of its keys is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOp {
    /// `BLPOP`/`BRPOP`: one element, answered `[key, element]`.
    Pop(Side),
    /// `BLMOVE`/`BRPOPLPUSH`: one element moved onto `dest`, answered as
    /// that element.
    Move {
        /// The destination list.
        dest: Vec<u8>,
        /// The end popped from.
        from: Side,
        /// The end pushed to.
        to: Side,
    },
    /// `BLMPOP`: up to `count` elements, `[key, [element…]]`.
    MultiPop(Side, u64),
    /// `BZPOPMIN`/`BZPOPMAX` (`true`): `[key, member, score]`.
    ZPop(bool),
    /// `BZMPOP`: up to `count` members, `[key, [[member, score]…]]`.
    ZMultiPop(bool, u64),
}

impl BlockOp {
    /// The answer when no key had anything: what the non-blocking form
    /// (inside `MULTI`) replies.
    fn empty(&self) -> Reply {
        match self {
            BlockOp::Move { .. } => Reply::Null,
            _ => Reply::NullArray,
        }
    }

    /// The type of key this pops from.
    pub fn pops_from(&self) -> KeyKind {
        match self {
            BlockOp::Pop(_) | BlockOp::Move { .. } | BlockOp::MultiPop(..) => KeyKind::List,
            BlockOp::ZPop(_) | BlockOp::ZMultiPop(..) => KeyKind::ZSet,
        }
    }

    /// The destination this pop pushes onto, if any (it may wake others).
    pub fn dest(&self) -> Option<&[u8]> {
        match self {
            BlockOp::Move { dest, .. } => Some(dest),
            _ => None,
        }
    }
}

/// A parsed blocking command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocking {
    /// The keys, tried in this order.
    pub keys: Vec<Vec<u8>>,
    /// What to pop.
    pub op: BlockOp,
    /// How long to block; `None` blocks until served.
    pub timeout: Option<Duration>,
}

/// Parses a blocking command's arguments with Redis 7.0's checks, in its
/// order (the timeout before the keys, `BLMOVE`'s sides before the
/// timeout).
pub fn parse(argv: &[Vec<u8>]) -> Result<Blocking, Reply> {
    let name = argv[0].to_ascii_lowercase();
    let last = argv.len() - 1;
    let keys_until_last = |op| -> Result<Blocking, Reply> {
        Ok(Blocking {
            timeout: parse_timeout(&argv[last])?,
            keys: argv[1..last].to_vec(),
            op,
        })
    };
    match &name[..] {
        b"blpop" => keys_until_last(BlockOp::Pop(Side::Left)),
        b"brpop" => keys_until_last(BlockOp::Pop(Side::Right)),
        b"bzpopmin" => keys_until_last(BlockOp::ZPop(false)),
        b"bzpopmax" => keys_until_last(BlockOp::ZPop(true)),
        b"brpoplpush" => Ok(Blocking {
            timeout: parse_timeout(&argv[3])?,
            keys: vec![argv[1].clone()],
            op: BlockOp::Move {
                dest: argv[2].clone(),
                from: Side::Right,
                to: Side::Left,
            },
        }),
        b"blmove" => {
            let (from, to) = (parse_side(&argv[3])?, parse_side(&argv[4])?);
            Ok(Blocking {
                timeout: parse_timeout(&argv[5])?,
                keys: vec![argv[1].clone()],
                op: BlockOp::Move {
                    dest: argv[2].clone(),
                    from,
                    to,
                },
            })
        }
        b"blmpop" | b"bzmpop" => {
            let timeout = parse_timeout(&argv[1])?;
            let zset = name[..] == b"bzmpop"[..];
            let ends = if zset {
                ["MIN", "MAX"]
            } else {
                ["LEFT", "RIGHT"]
            };
            // `parse_mpop` reads numkeys at index 1: skip the timeout.
            let args = parse_mpop(&argv[1..], ends)?;
            let op = if zset {
                BlockOp::ZMultiPop(args.second_end, args.count)
            } else {
                let side = if args.second_end {
                    Side::Right
                } else {
                    Side::Left
                };
                BlockOp::MultiPop(side, args.count)
            };
            Ok(Blocking {
                keys: args.keys.to_vec(),
                op,
                timeout,
            })
        }
        _ => Err(Reply::Error(format!(
            "ERR '{}' is not a blocking command",
            String::from_utf8_lossy(&name)
        ))),
    }
}

/// A timeout in seconds as Redis 7.0's `getTimeoutFromObjectOrReply`
/// reads it: a float, rounded up to milliseconds; 0 is forever.
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let seconds = long_double::to_f64(arg)
        .filter(|(d, out_of_range)| !d.is_nan() && !out_of_range)
        .map(|(d, _)| d)
        .ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    // Redis casts `ceill(seconds * 1000)` to `long long`; out of range
    // (infinity included) that gives x86's "integer indefinite", the most
    // negative value, hence "negative".
    let ms = (seconds * 1000.0).ceil();
    let ms = if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&ms) {
        ms as i64
    } else {
        i64::MIN
    };
    if ms < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

/// The non-blocking form: the first key with something to pop answers;
/// a null when none has.
fn run(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let blocking = parse(argv)?;
    for key in &blocking.keys {
        if let Some(reply) = try_key(tx, ctx.db, key, &blocking.op)? {
            return Ok(reply);
        }
    }
    Ok(blocking.op.empty())
}

/// Pops from `key` as `op` says, if it holds anything: the reply for the
/// client, or `None` when the key is missing (or empty). A key of another
/// type is `WRONGTYPE`.
pub fn try_key(tx: &mut Tx<'_>, db: Db, key: &[u8], op: &BlockOp) -> Result<Option<Reply>, Reply> {
    Ok(match op {
        BlockOp::Pop(side) => tx
            .list_pop(db, key, *side, 1)?
            .pop()
            .map(|value| popped(key, value)),
        BlockOp::Move { dest, from, to } => {
            tx.list_move(db, key, dest, *from, *to)?.map(Reply::Bulk)
        }
        BlockOp::MultiPop(side, count) => {
            let count = usize::try_from(*count).unwrap_or(usize::MAX);
            let values = tx.list_pop(db, key, *side, count)?;
            (!values.is_empty()).then(|| multi_popped(key, values))
        }
        BlockOp::ZPop(max) => tx.zset_pop(db, key, *max, 1)?.pop().map(|(member, score)| {
            Reply::Array(vec![
                Reply::Bulk(key.to_vec()),
                Reply::Bulk(member),
                Reply::Double(score),
            ])
        }),
        BlockOp::ZMultiPop(max, count) => {
            let popped = tx.zset_pop(db, key, *max, *count)?;
            (!popped.is_empty()).then(|| {
                Reply::Array(vec![
                    Reply::Bulk(key.to_vec()),
                    Reply::Array(
                        popped
                            .into_iter()
                            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
                            .collect(),
                    ),
                ])
            })
        }
    })
}

/// The reply of `BLPOP`/`BRPOP` served `value` from `key`.
pub(crate) fn popped(key: &[u8], value: Vec<u8>) -> Reply {
    Reply::Array(vec![Reply::Bulk(key.to_vec()), Reply::Bulk(value)])
}

/// The reply of `BLMPOP` served `values` from `key`.
pub(crate) fn multi_popped(key: &[u8], values: Vec<Vec<u8>>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(key.to_vec()),
        Reply::Array(values.into_iter().map(Reply::Bulk).collect()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_redis() {
        let ms = |s: &str| parse_timeout(s.as_bytes());
        assert_eq!(ms("0"), Ok(None));
        assert_eq!(ms("0.0001"), Ok(Some(Duration::from_millis(1))));
        assert_eq!(ms("-0.0001"), Ok(None));
        assert_eq!(ms("1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(ms("-1"), Err(Reply::error("ERR timeout is negative")));
        assert_eq!(
            ms("abc"),
            Err(Reply::error("ERR timeout is not a float or out of range"))
        );
        assert_eq!(ms("inf"), Err(Reply::error("ERR timeout is negative")));
        assert_eq!(ms("1e300"), Err(Reply::error("ERR timeout is negative")));
    }
}

//! List commands (the non-blocking ones): Redis 7.0's argument checks, in
//! Redis's order, over the list operations of [`crate::list`].
//!
//! Also home to what the list and sorted-set families share: the `read!`
//! adapter, `LPOP`-style counts and the
//! `LMPOP`/`ZMPOP` argument layout.

use super::args::{is, parse_i64};
use super::{CommandCtx, CommandSpec, Exec, spec};
use crate::error::StoreError;
use crate::keyvalue::{KeyKind, Side};
use crate::read::View;
use crate::reply::{Reply, errors};
use crate::write::Tx;

/// [`Exec::Read`] for a read written as `fn(&View, &CommandCtx,
/// &[Vec<u8>]) -> Result<Reply, Reply>`, so it can use `?`: an error is
/// just another reply to a read.
macro_rules! read {
    ($f:path) => {
        Exec::Read(|view, ctx, argv| match $f(view, ctx, argv) {
            Ok(reply) | Err(reply) => reply,
        })
    };
}
pub(super) use read;

/// The flag sets of this family and the sorted-set family (Redis 7.0's).
pub(super) mod flags {
    pub(in crate::command) const WRITE: &[&str] = &["write"];
    pub(in crate::command) const WRITE_FAST: &[&str] = &["write", "fast"];
    pub(in crate::command) const WRITE_DENYOOM: &[&str] = &["write", "denyoom"];
    pub(in crate::command) const WRITE_DENYOOM_FAST: &[&str] = &["write", "denyoom", "fast"];
    pub(in crate::command) const WRITE_MOVABLE: &[&str] = &["write", "movablekeys"];
    pub(in crate::command) const WRITE_DENYOOM_MOVABLE: &[&str] =
        &["write", "denyoom", "movablekeys"];
    pub(in crate::command) const READ: &[&str] = &["readonly"];
    pub(in crate::command) const READ_FAST: &[&str] = &["readonly", "fast"];
    pub(in crate::command) const READ_MOVABLE: &[&str] = &["readonly", "movablekeys"];
}

use flags::*;

/// The list commands.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(lpush)).errors_before_writing(),
    spec("rpush", -3, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(rpush)).errors_before_writing(),
    spec("lpushx", -3, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(lpushx)),
    spec("rpushx", -3, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(rpushx)),
    spec("lpop", -2, WRITE_FAST, (1, 1, 1), Exec::Write(lpop)).errors_before_writing(),
    spec("rpop", -2, WRITE_FAST, (1, 1, 1), Exec::Write(rpop)).errors_before_writing(),
    spec("llen", 2, READ_FAST, (1, 1, 1), read!(llen)),
    spec("lrange", 4, READ, (1, 1, 1), read!(lrange)),
    spec("lindex", 3, READ, (1, 1, 1), read!(lindex)),
    spec("lset", 4, WRITE_DENYOOM, (1, 1, 1), Exec::Write(lset)),
    spec("linsert", 5, WRITE_DENYOOM, (1, 1, 1), Exec::Write(linsert)),
    spec("lrem", 4, WRITE, (1, 1, 1), Exec::Write(lrem)),
    spec("ltrim", 4, WRITE, (1, 1, 1), Exec::Write(ltrim)),
    spec("lpos", -3, READ, (1, 1, 1), read!(lpos)),
    spec("lmove", 5, WRITE_DENYOOM, (1, 2, 1), Exec::Write(lmove)),
    spec("rpoplpush", 3, WRITE_DENYOOM, (1, 2, 1), Exec::Write(rpoplpush)),
    spec("lmpop", -4, WRITE_MOVABLE, (0, 0, 0), Exec::Write(lmpop)),
];

/// Parses the count of `LPOP`/`ZPOPMIN` and friends: a non-negative
/// integer, anything else failing with Redis's "must be positive".
pub(super) fn parse_count(arg: &[u8]) -> Result<u64, Reply> {
    parse_i64(arg)
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))
}

/// The arguments of `LMPOP`/`ZMPOP`: `numkeys key… <end> [COUNT n]`
/// starting at argv index 1.
pub(super) struct Mpop<'a> {
    /// The keys, tried in order.
    pub(super) keys: &'a [Vec<u8>],
    /// Which of the two end names (`LEFT`/`RIGHT`, `MIN`/`MAX`) was given:
    /// false for the first.
    pub(super) second_end: bool,
    /// How many elements to pop at most.
    pub(super) count: u64,
}

/// Parses `LMPOP`/`ZMPOP` arguments with Redis's checks and texts; `ends`
/// names the two ends.
pub(super) fn parse_mpop<'a>(argv: &'a [Vec<u8>], ends: [&str; 2]) -> Result<Mpop<'a>, Reply> {
    let numkeys = parse_i64(&argv[1])
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
    // The keys, the end, and nothing or `COUNT n` after them.
    let after_keys = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(2))
        .filter(|end| *end < argv.len())
        .ok_or_else(errors::syntax)?;
    let end = &argv[after_keys];
    let second_end = if is(end, ends[0]) {
        false
    } else if is(end, ends[1]) {
        true
    } else {
        return Err(errors::syntax());
    };
    let count = match &argv[after_keys + 1..] {
        [] => 1,
        [option, n] if is(option, "COUNT") => parse_i64(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Reply::error("ERR count should be greater than 0"))?
            as u64,
        _ => return Err(errors::syntax()),
    };
    Ok(Mpop {
        keys: &argv[2..after_keys],
        second_end,
        count,
    })
}

/// `LEFT` or `RIGHT`.
pub(crate) fn parse_side(arg: &[u8]) -> Result<Side, Reply> {
    if is(arg, "LEFT") {
        Ok(Side::Left)
    } else if is(arg, "RIGHT") {
        Ok(Side::Right)
    } else {
        Err(errors::syntax())
    }
}

fn bulks(values: Vec<Vec<u8>>) -> Reply {
    Reply::Array(values.into_iter().map(Reply::Bulk).collect())
}

fn push(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>], side: Side) -> Result<Reply, Reply> {
    let len = tx.list_push(ctx.db, &argv[1], side, &argv[2..])?;
    Ok(Reply::Integer(len as i64))
}

fn lpush(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    push(tx, ctx, argv, Side::Left)
}

fn rpush(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    push(tx, ctx, argv, Side::Right)
}

/// `LPUSHX`/`RPUSHX`: push only onto an existing list.
fn push_existing(
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    side: Side,
) -> Result<Reply, Reply> {
    if tx
        .lookup_kind_for_write(ctx.db, &argv[1], KeyKind::List)?
        .is_none()
    {
        return Ok(Reply::Integer(0));
    }
    push(tx, ctx, argv, side)
}

fn lpushx(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    push_existing(tx, ctx, argv, Side::Left)
}

fn rpushx(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    push_existing(tx, ctx, argv, Side::Right)
}

/// `LPOP`/`RPOP key [count]`: a bulk without a count, an array with one
/// (a null array when the key does not exist). Lists are never empty, so
/// popping nothing means there was no list, except for a count of 0.
fn pop(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>], side: Side) -> Result<Reply, Reply> {
    let count = match argv.len() {
        2 => None,
        3 => Some(parse_count(&argv[2])?),
        _ => {
            return Err(errors::wrong_arity(
                &String::from_utf8_lossy(&argv[0]).to_lowercase(),
            ));
        }
    };
    let n = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
    let mut popped = tx.list_pop(ctx.db, &argv[1], side, n)?;
    Ok(match count {
        None => popped.pop().map_or(Reply::Null, Reply::Bulk),
        Some(0) if tx.view().lookup(ctx.db, &argv[1])?.is_some() => bulks(popped),
        Some(_) if popped.is_empty() => Reply::NullArray,
        Some(_) => bulks(popped),
    })
}

fn lpop(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    pop(tx, ctx, argv, Side::Left)
}

fn rpop(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    pop(tx, ctx, argv, Side::Right)
}

fn llen(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(Reply::Integer(
        view.len(ctx.db, &argv[1], KeyKind::List)? as i64
    ))
}

fn lrange(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (start, stop) = (parse_i64(&argv[2])?, parse_i64(&argv[3])?);
    Ok(bulks(view.list_range(ctx.db, &argv[1], start, stop)?))
}

/// `LINDEX`: unlike `LRANGE`, Redis looks the key up before it parses
/// the index.
fn lindex(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    if view.lookup_kind(ctx.db, &argv[1], KeyKind::List)?.is_none() {
        return Ok(Reply::Null);
    }
    let index = parse_i64(&argv[2])?;
    let value = view.list_index(ctx.db, &argv[1], index)?;
    Ok(value.map_or(Reply::Null, Reply::Bulk))
}

/// `LSET`: the key is looked up before the index is parsed, as in Redis.
fn lset(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    if tx
        .lookup_kind_for_write(ctx.db, &argv[1], KeyKind::List)?
        .is_none()
    {
        return Err(Reply::error("ERR no such key"));
    }
    let index = parse_i64(&argv[2])?;
    match tx.list_set(ctx.db, &argv[1], index, &argv[3]) {
        Ok(_) => Ok(Reply::ok()),
        Err(StoreError::IndexOutOfRange) => Err(Reply::error("ERR index out of range")),
        Err(e) => Err(e.into()),
    }
}

fn linsert(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let after = if is(&argv[2], "AFTER") {
        true
    } else if is(&argv[2], "BEFORE") {
        false
    } else {
        return Err(errors::syntax());
    };
    let len = tx.list_insert_at_pivot(ctx.db, &argv[1], after, &argv[3], &argv[4])?;
    Ok(Reply::Integer(len.unwrap_or(0)))
}

fn lrem(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let count = parse_i64(&argv[2])?;
    let removed = tx.list_remove_value(ctx.db, &argv[1], count, &argv[3])?;
    Ok(Reply::Integer(removed as i64))
}

fn ltrim(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (start, stop) = (parse_i64(&argv[2])?, parse_i64(&argv[3])?);
    tx.list_trim(ctx.db, &argv[1], start, stop)?;
    Ok(Reply::ok())
}

/// `LPOS key element [RANK r] [COUNT n] [MAXLEN m]`: options are checked
/// before the key, later ones overriding earlier ones.
fn lpos(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0u64);
    let mut options = argv[3..].chunks(2);
    for pair in options.by_ref() {
        let [name, value] = pair else {
            return Err(errors::syntax());
        };
        if is(name, "RANK") {
            rank = parse_i64(value)?;
            if rank == 0 {
                return Err(Reply::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(name, "COUNT") {
            count = Some(
                u64::try_from(parse_i64(value)?)
                    .map_err(|_| Reply::error("ERR COUNT can't be negative"))?,
            );
        } else if is(name, "MAXLEN") {
            maxlen = u64::try_from(parse_i64(value)?)
                .map_err(|_| Reply::error("ERR MAXLEN can't be negative"))?;
        } else {
            return Err(errors::syntax());
        }
    }
    // Redis negates the rank in C, where -LLONG_MIN stays negative and then
    // matches from the first hit: the same as -1.
    let rank = if rank == i64::MIN { -1 } else { rank };
    let found =
        view.list_positions(ctx.db, &argv[1], &argv[2], rank, count.unwrap_or(1), maxlen)?;
    let mut indexes = found.into_iter().map(|i| Reply::Integer(i as i64));
    Ok(match count {
        Some(_) => Reply::Array(indexes.collect()),
        None => indexes.next().unwrap_or(Reply::Null),
    })
}

fn lmove(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (from, to) = (parse_side(&argv[3])?, parse_side(&argv[4])?);
    let moved = tx.list_move(ctx.db, &argv[1], &argv[2], from, to)?;
    Ok(moved.map_or(Reply::Null, Reply::Bulk))
}

fn rpoplpush(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let moved = tx.list_move(ctx.db, &argv[1], &argv[2], Side::Right, Side::Left)?;
    Ok(moved.map_or(Reply::Null, Reply::Bulk))
}

/// `LMPOP numkeys key… LEFT|RIGHT [COUNT n]`: pops from the first
/// non-empty list; `[key, [elements]]`, or a null array.
fn lmpop(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let args = parse_mpop(argv, ["LEFT", "RIGHT"])?;
    let side = if args.second_end {
        Side::Right
    } else {
        Side::Left
    };
    for key in args.keys {
        if tx
            .lookup_kind_for_write(ctx.db, key, KeyKind::List)?
            .is_some()
        {
            let count = usize::try_from(args.count).unwrap_or(usize::MAX);
            let popped = tx.list_pop(ctx.db, key, side, count)?;
            return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), bulks(popped)]));
        }
    }
    Ok(Reply::NullArray)
}

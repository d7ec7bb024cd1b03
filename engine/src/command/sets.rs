//! Set commands: Redis 7.0's argument checks, in Redis's order, over the
//! set operations of [`crate::set`].
//!
//! Replies Redis builds as sets (`SMEMBERS`, `SINTER`, `SUNION`, `SDIFF`,
//! `SPOP` with a count) are [`Reply::Set`], so RESP3 clients get `~`;
//! `SRANDMEMBER`'s are arrays, as in Redis.

use super::args::{ScanArgs, is, parse_cursor, parse_i64};
use super::hashes::random_count;
use super::lists::flags::*;
use super::lists::read;
use super::{CommandCtx, CommandSpec, Exec, spec};
use crate::collection::RandomCount;
use crate::keyvalue::KeyKind;
use crate::read::View;
use crate::reply::{Reply, errors};
use crate::set::SetOp;
use crate::write::Tx;

/// The set commands.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(sadd)).errors_before_writing(),
    spec("srem", -3, WRITE_FAST, (1, 1, 1), Exec::Write(srem)),
    spec("scard", 2, READ_FAST, (1, 1, 1), read!(scard)),
    spec("sismember", 3, READ_FAST, (1, 1, 1), read!(sismember)),
    spec("smismember", -3, READ_FAST, (1, 1, 1), read!(smismember)),
    spec("smembers", 2, READ, (1, 1, 1), read!(smembers)),
    spec("spop", -2, WRITE_FAST, (1, 1, 1), Exec::Write(spop)),
    spec("srandmember", -2, READ, (1, 1, 1), read!(srandmember)),
    spec("smove", 4, WRITE_FAST, (1, 2, 1), Exec::Write(smove)),
    spec("sinter", -2, READ, (1, -1, 1), read!(sinter)),
    spec("sintercard", -3, READ_MOVABLE, (0, 0, 0), read!(sintercard)),
    spec("sunion", -2, READ, (1, -1, 1), read!(sunion)),
    spec("sdiff", -2, READ, (1, -1, 1), read!(sdiff)),
    spec(
        "sinterstore",
        -3,
        WRITE_DENYOOM,
        (1, -1, 1),
        Exec::Write(sinterstore),
    ),
    spec(
        "sunionstore",
        -3,
        WRITE_DENYOOM,
        (1, -1, 1),
        Exec::Write(sunionstore),
    ),
    spec(
        "sdiffstore",
        -3,
        WRITE_DENYOOM,
        (1, -1, 1),
        Exec::Write(sdiffstore),
    ),
    spec("sscan", -3, READ, (1, 1, 1), read!(sscan)),
];

fn sadd(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let added = tx.set_add(ctx.db, &argv[1], argv[2..].to_vec())?;
    Ok(Reply::Integer(added as i64))
}

fn srem(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let removed = tx.set_remove(ctx.db, &argv[1], &argv[2..])?;
    Ok(Reply::Integer(removed as i64))
}

fn scard(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(Reply::Integer(
        view.len(ctx.db, &argv[1], KeyKind::Set)? as i64
    ))
}

fn sismember(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let found = view.set_contains(ctx.db, &argv[1], &argv[2])?;
    Ok(Reply::Integer(i64::from(found)))
}

fn smismember(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let found = view.set_contains_many(ctx.db, &argv[1], &argv[2..])?;
    Ok(Reply::Array(
        found
            .into_iter()
            .map(|f| Reply::Integer(i64::from(f)))
            .collect(),
    ))
}

fn set_reply(members: Vec<Vec<u8>>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

fn array_reply(members: Vec<Vec<u8>>) -> Reply {
    Reply::Array(members.into_iter().map(Reply::Bulk).collect())
}

fn smembers(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    combine(view, ctx, SetOp::Inter, &argv[1..2])
}

fn spop(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    match argv {
        [_, key] => {
            let popped = tx.set_pop(ctx.db, key, 1)?;
            Ok(popped.into_iter().next().map_or(Reply::Null, Reply::Bulk))
        }
        [_, key, count] => {
            // Redis's getPositiveLongFromObjectOrReply: one message for
            // "not a number" and "negative".
            let count = parse_i64(count)
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))?;
            Ok(set_reply(tx.set_pop(ctx.db, key, count)?))
        }
        _ => Err(errors::syntax()),
    }
}

fn srandmember(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    match argv {
        [_, key] => {
            let picked = view.set_random(ctx.db, key, RandomCount::Distinct(1))?;
            Ok(picked.into_iter().next().map_or(Reply::Null, Reply::Bulk))
        }
        [_, key, count] => {
            let count = random_count(count)?;
            Ok(array_reply(view.set_random(ctx.db, key, count)?))
        }
        _ => Err(errors::syntax()),
    }
}

fn smove(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let moved = tx.set_move(ctx.db, &argv[1], &argv[2], &argv[3])?;
    Ok(Reply::Integer(i64::from(moved)))
}

fn combine(view: &View<'_>, ctx: &CommandCtx, op: SetOp, keys: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(set_reply(view.set_combine(ctx.db, op, keys)?))
}

fn sinter(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    combine(view, ctx, SetOp::Inter, &argv[1..])
}

fn sunion(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    combine(view, ctx, SetOp::Union, &argv[1..])
}

fn sdiff(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    combine(view, ctx, SetOp::Diff, &argv[1..])
}

fn sintercard(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let numkeys = parse_i64(&argv[1])
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
    let rest = &argv[2..];
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > rest.len() {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let (keys, mut options) = rest.split_at(numkeys);
    let mut limit = 0;
    while let [option, tail @ ..] = options {
        match tail {
            [value, tail @ ..] if is(option, "LIMIT") => {
                limit = parse_i64(value)
                    .ok()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))?;
                options = tail;
            }
            _ => return Err(errors::syntax()),
        }
    }
    Ok(Reply::Integer(
        view.set_inter_card(ctx.db, keys, limit)? as i64
    ))
}

fn store(tx: &mut Tx<'_>, ctx: &CommandCtx, op: SetOp, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let len = tx.set_store(ctx.db, op, &argv[1], &argv[2..])?;
    Ok(Reply::Integer(len as i64))
}

fn sinterstore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    store(tx, ctx, SetOp::Inter, argv)
}

fn sunionstore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    store(tx, ctx, SetOp::Union, argv)
}

fn sdiffstore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    store(tx, ctx, SetOp::Diff, argv)
}

fn sscan(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let cursor = parse_cursor(&argv[2])?;
    if view.lookup_kind(ctx.db, &argv[1], KeyKind::Set)?.is_none() {
        return Ok(ScanArgs::reply(0, Vec::new()));
    }
    let args = ScanArgs::parse(&argv[3..], false)?;
    let (next, page) = view.set_scan_cursor(ctx.db, &argv[1], cursor, args.count)?;
    let items = page
        .into_iter()
        .filter(|m| args.keeps(m))
        .map(Reply::Bulk)
        .collect();
    Ok(ScanArgs::reply(next, items))
}

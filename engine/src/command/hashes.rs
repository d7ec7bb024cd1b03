//! Hash commands: Redis 7.0's argument checks, in Redis's order, over the
//! hash operations of [`crate::hash`].

use super::args::{ScanArgs, is, parse_cursor, parse_i64};
use super::lists::flags::*;
use super::lists::read;
use super::{CommandCtx, CommandSpec, Exec, spec};
use crate::collection::RandomCount;
use crate::keyvalue::{FieldValue, KeyKind};
use crate::long_double;
use crate::read::View;
use crate::reply::{Protocol, Reply, errors};
use crate::write::Tx;

/// The hash commands.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(hset)).errors_before_writing(),
    spec(
        "hmset",
        -4,
        WRITE_DENYOOM_FAST,
        (1, 1, 1),
        Exec::Write(hmset),
    )
    .errors_before_writing(),
    spec(
        "hsetnx",
        4,
        WRITE_DENYOOM_FAST,
        (1, 1, 1),
        Exec::Write(hsetnx),
    ),
    spec("hget", 3, READ_FAST, (1, 1, 1), read!(hget)),
    spec("hmget", -3, READ_FAST, (1, 1, 1), read!(hmget)),
    spec("hdel", -3, WRITE_FAST, (1, 1, 1), Exec::Write(hdel)),
    spec("hlen", 2, READ_FAST, (1, 1, 1), read!(hlen)),
    spec("hstrlen", 3, READ_FAST, (1, 1, 1), read!(hstrlen)),
    spec("hexists", 3, READ_FAST, (1, 1, 1), read!(hexists)),
    spec("hkeys", 2, READ, (1, 1, 1), read!(hkeys)),
    spec("hvals", 2, READ, (1, 1, 1), read!(hvals)),
    spec("hgetall", 2, READ, (1, 1, 1), read!(hgetall)),
    spec(
        "hincrby",
        4,
        WRITE_DENYOOM_FAST,
        (1, 1, 1),
        Exec::Write(hincrby),
    ),
    spec(
        "hincrbyfloat",
        4,
        WRITE_DENYOOM_FAST,
        (1, 1, 1),
        Exec::Write(hincrbyfloat),
    ),
    spec("hrandfield", -2, READ, (1, 1, 1), read!(hrandfield)),
    spec("hscan", -3, READ, (1, 1, 1), read!(hscan)),
];

/// `HSET`/`HMSET`'s field/value pairs; an odd count is an arity error
/// naming the command.
fn field_values(argv: &[Vec<u8>]) -> Result<Vec<FieldValue>, Reply> {
    let pairs = &argv[2..];
    if pairs.len() % 2 == 1 {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        return Err(errors::wrong_arity(&name));
    }
    Ok(pairs
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect())
}

fn hset(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let pairs = field_values(argv)?;
    let added = tx.hash_set(ctx.db, &argv[1], pairs)?;
    Ok(Reply::Integer(added as i64))
}

fn hmset(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let pairs = field_values(argv)?;
    tx.hash_set(ctx.db, &argv[1], pairs)?;
    Ok(Reply::ok())
}

fn hsetnx(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let set = tx.hash_set_nx(ctx.db, &argv[1], &argv[2], &argv[3])?;
    Ok(Reply::Integer(i64::from(set)))
}

fn bulk_or_null(value: Option<Vec<u8>>) -> Reply {
    value.map_or(Reply::Null, Reply::Bulk)
}

fn hget(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(bulk_or_null(view.hash_get(ctx.db, &argv[1], &argv[2])?))
}

fn hmget(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let values = view.hash_get_many(ctx.db, &argv[1], &argv[2..])?;
    Ok(Reply::Array(values.into_iter().map(bulk_or_null).collect()))
}

fn hdel(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let removed = tx.hash_delete(ctx.db, &argv[1], &argv[2..])?;
    Ok(Reply::Integer(removed as i64))
}

fn hlen(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(Reply::Integer(
        view.len(ctx.db, &argv[1], KeyKind::Hash)? as i64
    ))
}

fn hstrlen(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(Reply::Integer(
        view.hash_strlen(ctx.db, &argv[1], &argv[2])? as i64,
    ))
}

fn hexists(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let exists = view.hash_exists(ctx.db, &argv[1], &argv[2])?;
    Ok(Reply::Integer(i64::from(exists)))
}

fn bulks(items: Vec<Vec<u8>>) -> Reply {
    Reply::Array(items.into_iter().map(Reply::Bulk).collect())
}

fn hkeys(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(bulks(view.hash_fields(ctx.db, &argv[1])?))
}

fn hvals(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(bulks(view.hash_values(ctx.db, &argv[1])?))
}

fn hgetall(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let pairs = view.hash_entries(ctx.db, &argv[1])?;
    Ok(Reply::Map(
        pairs
            .into_iter()
            .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
            .collect(),
    ))
}

fn hincrby(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let delta = parse_i64(&argv[3])?;
    let mut result = 0;
    tx.hash_update(ctx.db, &argv[1], &argv[2], |current| {
        let old = match current {
            None => 0,
            Some(bytes) => {
                parse_i64(bytes).map_err(|_| Reply::error("ERR hash value is not an integer"))?
            }
        };
        result = old.checked_add(delta).ok_or_else(errors::overflow)?;
        Ok::<_, Reply>(result.to_string().into_bytes())
    })??;
    Ok(Reply::Integer(result))
}

fn hincrbyfloat(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let delta = &argv[3];
    // Redis checks the increment on its own first: not a float, then not
    // finite — both before the key's type.
    long_double::increment(b"0", delta).map_err(|e| {
        if e == errors::not_float() {
            e
        } else {
            Reply::error("ERR value is NaN or Infinity")
        }
    })?;
    let value = tx.hash_update(ctx.db, &argv[1], &argv[2], |current| {
        // The increment is valid, so a float error is about the stored value.
        long_double::increment(current.unwrap_or(b"0"), delta).map_err(|e| {
            if e == errors::not_float() {
                Reply::error("ERR hash value is not a float")
            } else {
                e
            }
        })
    })??;
    Ok(Reply::Bulk(value))
}

fn hrandfield(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let key = &argv[1];
    let Some(count_arg) = argv.get(2) else {
        let picked = view.hash_random(ctx.db, key, RandomCount::Distinct(1))?;
        return Ok(bulk_or_null(picked.into_iter().next().map(|(f, _)| f)));
    };
    let count = random_count(count_arg)?;
    let with_values = match &argv[3..] {
        [] => false,
        [option] if is(option, "WITHVALUES") => true,
        _ => return Err(errors::syntax()),
    };
    // Redis doubles the count for the reply's length, so it refuses counts
    // whose double would overflow.
    let limit = (i64::MAX / 2) as u64;
    if with_values
        && matches!(count, RandomCount::Distinct(n) | RandomCount::WithRepeats(n) if n > limit)
    {
        return Err(Reply::error("ERR value is out of range"));
    }
    let picked = view.hash_random(ctx.db, key, count)?;
    Ok(Reply::Array(if !with_values {
        picked.into_iter().map(|(f, _)| Reply::Bulk(f)).collect()
    } else if ctx.protocol == Protocol::Resp3 {
        picked
            .into_iter()
            .map(|(f, v)| Reply::Array(vec![Reply::Bulk(f), Reply::Bulk(v)]))
            .collect()
    } else {
        picked
            .into_iter()
            .flat_map(|(f, v)| [Reply::Bulk(f), Reply::Bulk(v)])
            .collect()
    }))
}

/// `HRANDFIELD`/`SRANDMEMBER`'s count: non-negative for distinct
/// elements, negative for repeats; `i64::MIN` has no positive counterpart
/// and is refused as Redis 7.0 does.
pub(super) fn random_count(arg: &[u8]) -> Result<RandomCount, Reply> {
    match parse_i64(arg)? {
        i64::MIN => Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        n if n < 0 => Ok(RandomCount::WithRepeats(n.unsigned_abs())),
        n => Ok(RandomCount::Distinct(n as u64)),
    }
}

fn hscan(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let cursor = parse_cursor(&argv[2])?;
    if view.lookup_kind(ctx.db, &argv[1], KeyKind::Hash)?.is_none() {
        return Ok(ScanArgs::reply(0, Vec::new()));
    }
    let args = ScanArgs::parse(&argv[3..], false)?;
    let (next, page) = view.hash_scan_cursor(ctx.db, &argv[1], cursor, args.count)?;
    let items = page
        .into_iter()
        .filter(|(field, _)| args.keeps(field))
        .flat_map(|(f, v)| [Reply::Bulk(f), Reply::Bulk(v)])
        .collect();
    Ok(ScanArgs::reply(next, items))
}

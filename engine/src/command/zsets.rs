//! Sorted-set commands: Redis 7.0's argument checks, in Redis's order
//! (option errors before `WRONGTYPE` where Redis parses first), and replies
//! shaped per protocol (RESP3 pairs `[member, score]` where RESP2 flattens
//! them), over the operations of [`crate::zset`].

use super::args::{
    LexBound, ScanArgs, ScoreBound, is, parse_cursor, parse_f64, parse_i64, parse_lex_bound,
    parse_score_bound,
};
use super::lists::{flags::*, parse_count, parse_mpop, read};
use super::{CommandCtx, CommandSpec, Exec, spec};
use crate::collection::RandomCount;
use crate::error::StoreError;
use crate::keyvalue::{KeyKind, ScoredMember};
use crate::read::View;
use crate::reply::{Protocol, Reply, errors, format_double};
use crate::write::Tx;
use crate::zset::{
    Aggregate, LexLimit, LexRange, Limit, ScoreRange, SetOp, ZAddFlags, ZAddOutcome, ZRange,
};

/// The sorted-set commands.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(zadd)).errors_before_writing(),
    spec("zincrby", 4, WRITE_DENYOOM_FAST, (1, 1, 1), Exec::Write(zincrby)).errors_before_writing(),
    spec("zrem", -3, WRITE_FAST, (1, 1, 1), Exec::Write(zrem)),
    spec("zcard", 2, READ_FAST, (1, 1, 1), read!(zcard)),
    spec("zscore", 3, READ_FAST, (1, 1, 1), read!(zscore)),
    spec("zmscore", -3, READ_FAST, (1, 1, 1), read!(zmscore)),
    spec("zrank", 3, READ_FAST, (1, 1, 1), read!(zrank)),
    spec("zrevrank", 3, READ_FAST, (1, 1, 1), read!(zrevrank)),
    spec("zcount", 4, READ_FAST, (1, 1, 1), read!(zcount)),
    spec("zlexcount", 4, READ_FAST, (1, 1, 1), read!(zlexcount)),
    spec("zrange", -4, READ, (1, 1, 1), read!(zrange)),
    spec("zrangestore", -5, WRITE_DENYOOM, (1, 2, 1), Exec::Write(zrangestore)),
    spec("zrangebyscore", -4, READ, (1, 1, 1), read!(zrangebyscore)),
    spec("zrevrangebyscore", -4, READ, (1, 1, 1), read!(zrevrangebyscore)),
    spec("zrangebylex", -4, READ, (1, 1, 1), read!(zrangebylex)),
    spec("zrevrangebylex", -4, READ, (1, 1, 1), read!(zrevrangebylex)),
    spec("zrevrange", -4, READ, (1, 1, 1), read!(zrevrange)),
    spec("zpopmin", -2, WRITE_FAST, (1, 1, 1), Exec::Write(zpopmin)),
    spec("zpopmax", -2, WRITE_FAST, (1, 1, 1), Exec::Write(zpopmax)),
    spec("zmpop", -4, WRITE_MOVABLE, (0, 0, 0), Exec::Write(zmpop)),
    spec("zremrangebyrank", 4, WRITE, (1, 1, 1), Exec::Write(zremrangebyrank)),
    spec("zremrangebyscore", 4, WRITE, (1, 1, 1), Exec::Write(zremrangebyscore)),
    spec("zremrangebylex", 4, WRITE, (1, 1, 1), Exec::Write(zremrangebylex)),
    spec("zunion", -3, READ_MOVABLE, (0, 0, 0), read!(zunion)),
    spec("zinter", -3, READ_MOVABLE, (0, 0, 0), read!(zinter)),
    spec("zdiff", -3, READ_MOVABLE, (0, 0, 0), read!(zdiff)),
    spec("zunionstore", -4, WRITE_DENYOOM_MOVABLE, (1, 1, 1), Exec::Write(zunionstore)),
    spec("zinterstore", -4, WRITE_DENYOOM_MOVABLE, (1, 1, 1), Exec::Write(zinterstore)),
    spec("zdiffstore", -4, WRITE_DENYOOM_MOVABLE, (1, 1, 1), Exec::Write(zdiffstore)),
    spec("zintercard", -3, READ_MOVABLE, (0, 0, 0), read!(zintercard)),
    spec("zrandmember", -2, READ, (1, 1, 1), read!(zrandmember)),
    spec("zscan", -3, READ, (1, 1, 1), read!(zscan)),
];

/// Members, with their scores if asked: RESP3 nests `[member, score]`
/// pairs, RESP2 flattens them.
fn scored(list: Vec<ScoredMember>, withscores: bool, protocol: Protocol) -> Reply {
    if !withscores {
        return Reply::Array(list.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    match protocol {
        Protocol::Resp3 => pairs(list),
        Protocol::Resp2 => Reply::Array(
            list.into_iter()
                .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                .collect(),
        ),
    }
}

/// `[[member, score], …]` in both protocols (`ZMPOP`).
fn pairs(list: Vec<ScoredMember>) -> Reply {
    Reply::Array(
        list.into_iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
            .collect(),
    )
}

fn score_reply(score: Option<f64>) -> Reply {
    score.map_or(Reply::Null, Reply::Double)
}

/// The scores `min..max` of two `zslParseRange` arguments.
fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    let (
        ScoreBound {
            value: lo,
            exclusive: lo_ex,
        },
        ScoreBound {
            value: hi,
            exclusive: hi_ex,
        },
    ) = (parse_score_bound(min)?, parse_score_bound(max)?);
    Ok(ScoreRange {
        min: lo,
        min_exclusive: lo_ex,
        max: hi,
        max_exclusive: hi_ex,
    })
}

/// The member range `min..max` of two `zslParseLexRange` arguments.
fn lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
    let limit = |bound| match bound {
        LexBound::NegInf => LexLimit::NegInf,
        LexBound::PosInf => LexLimit::PosInf,
        LexBound::Inclusive(m) => LexLimit::Inclusive(m),
        LexBound::Exclusive(m) => LexLimit::Exclusive(m),
    };
    Ok(LexRange {
        min: limit(parse_lex_bound(min)?),
        max: limit(parse_lex_bound(max)?),
    })
}

fn zadd(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let mut flags = ZAddFlags::default();
    let mut first_score = 2;
    for arg in &argv[2..] {
        let flag = match arg {
            a if is(a, "NX") => &mut flags.nx,
            a if is(a, "XX") => &mut flags.xx,
            a if is(a, "GT") => &mut flags.gt,
            a if is(a, "LT") => &mut flags.lt,
            a if is(a, "CH") => &mut flags.ch,
            a if is(a, "INCR") => &mut flags.incr,
            _ => break,
        };
        *flag = true;
        first_score += 1;
    }
    let rest = &argv[first_score..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(errors::syntax());
    }
    if flags.nx && flags.xx {
        return Err(Reply::error(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (flags.gt || flags.lt) && flags.nx || flags.gt && flags.lt {
        return Err(Reply::error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && rest.len() > 2 {
        return Err(Reply::error(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    // Every score is checked before anything is written.
    let pairs = rest
        .chunks(2)
        .map(|pair| Ok((parse_f64(&pair[0])?, pair[1].clone())))
        .collect::<Result<Vec<_>, Reply>>()?;
    add(tx, ctx, &argv[1], flags, &pairs)
}

/// Runs `ZADD` (or `ZINCRBY`, as `ZADD INCR`) once its arguments passed
/// every check.
fn add(
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    key: &[u8],
    flags: ZAddFlags,
    pairs: &[(f64, Vec<u8>)],
) -> Result<Reply, Reply> {
    let outcome = match tx.zset_add(ctx.db, key, flags, pairs) {
        Err(StoreError::NanScore) => {
            return Err(Reply::error("ERR resulting score is not a number (NaN)"));
        }
        other => other?,
    };
    Ok(match outcome {
        ZAddOutcome::Changed(n) => Reply::Integer(n as i64),
        ZAddOutcome::Score(score) => score_reply(score),
    })
}

fn zincrby(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let by = parse_f64(&argv[2])?;
    let flags = ZAddFlags {
        incr: true,
        ..ZAddFlags::default()
    };
    add(tx, ctx, &argv[1], flags, &[(by, argv[3].clone())])
}

fn zrem(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(Reply::Integer(
        tx.zset_remove(ctx.db, &argv[1], &argv[2..])? as i64,
    ))
}

fn zcard(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(Reply::Integer(
        view.len(ctx.db, &argv[1], KeyKind::ZSet)? as i64
    ))
}

fn zscore(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(score_reply(view.zset_score(ctx.db, &argv[1], &argv[2])?))
}

fn zmscore(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let scores = view.zset_scores(ctx.db, &argv[1], &argv[2..])?;
    Ok(Reply::Array(scores.into_iter().map(score_reply).collect()))
}

fn rank(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>], rev: bool) -> Result<Reply, Reply> {
    let rank = view.zset_rank(ctx.db, &argv[1], &argv[2], rev)?;
    Ok(rank.map_or(Reply::Null, |r| Reply::Integer(r as i64)))
}

fn zrank(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    rank(view, ctx, argv, false)
}

fn zrevrank(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    rank(view, ctx, argv, true)
}

fn zcount(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let range = ZRange::Score(score_range(&argv[2], &argv[3])?, Limit::ALL);
    Ok(Reply::Integer(
        view.zset_count(ctx.db, &argv[1], &range)? as i64
    ))
}

fn zlexcount(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let range = ZRange::Lex(lex_range(&argv[2], &argv[3])?, Limit::ALL);
    Ok(Reply::Integer(
        view.zset_count(ctx.db, &argv[1], &range)? as i64
    ))
}

/// How a `ZRANGE`-family range is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed `ZRANGE`-family request.
struct RangeRequest {
    range: ZRange,
    rev: bool,
    withscores: bool,
}

/// Parses like Redis's `zrangeGenericCommand`: `argv[at]` is the source
/// key, the next two arguments the range, then options. The dedicated
/// commands (`ZRANGEBYSCORE`, `ZREVRANGE`, …) fix `by` and `rev`, which
/// makes those options syntax errors; `store` (`ZRANGESTORE`) refuses
/// `WITHSCORES`. For reversed score and lex ranges the first argument is
/// the maximum.
fn parse_range(
    argv: &[Vec<u8>],
    at: usize,
    store: bool,
    mut by: Option<By>,
    mut rev: Option<bool>,
) -> Result<RangeRequest, Reply> {
    let mut withscores = false;
    let mut limit = Limit::ALL;
    let mut j = at + 3;
    while j < argv.len() {
        let arg = &argv[j];
        if !store && is(arg, "WITHSCORES") {
            withscores = true;
        } else if is(arg, "LIMIT") && argv.len() - j > 2 {
            limit = Limit {
                offset: parse_i64(&argv[j + 1])?,
                count: parse_i64(&argv[j + 2])?,
            };
            j += 2;
        } else if rev.is_none() && is(arg, "REV") {
            rev = Some(true);
        } else if by.is_none() && is(arg, "BYLEX") {
            by = Some(By::Lex);
        } else if by.is_none() && is(arg, "BYSCORE") {
            by = Some(By::Score);
        } else {
            return Err(errors::syntax());
        }
        j += 1;
    }
    let (by, rev) = (by.unwrap_or(By::Rank), rev.unwrap_or(false));
    // Redis can only tell an explicit LIMIT by a count other than -1.
    if limit.count != -1 && by == By::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == By::Lex {
        return Err(Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (low, high) = if rev && by != By::Rank {
        (&argv[at + 2], &argv[at + 1])
    } else {
        (&argv[at + 1], &argv[at + 2])
    };
    let range = match by {
        By::Rank => ZRange::Rank {
            start: parse_i64(low)?,
            stop: parse_i64(high)?,
        },
        By::Score => ZRange::Score(score_range(low, high)?, limit),
        By::Lex => ZRange::Lex(lex_range(low, high)?, limit),
    };
    Ok(RangeRequest {
        range,
        rev,
        withscores,
    })
}

fn range_generic(
    view: &View<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    by: Option<By>,
    rev: Option<bool>,
) -> Result<Reply, Reply> {
    let request = parse_range(argv, 1, false, by, rev)?;
    let list = view.zset_select(ctx.db, &argv[1], &request.range, request.rev)?;
    Ok(scored(list, request.withscores, ctx.protocol))
}

fn zrange(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    range_generic(view, ctx, argv, None, None)
}

fn zrangebyscore(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    range_generic(view, ctx, argv, Some(By::Score), Some(false))
}

fn zrevrangebyscore(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    range_generic(view, ctx, argv, Some(By::Score), Some(true))
}

fn zrangebylex(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    range_generic(view, ctx, argv, Some(By::Lex), Some(false))
}

fn zrevrangebylex(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    range_generic(view, ctx, argv, Some(By::Lex), Some(true))
}

fn zrevrange(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    range_generic(view, ctx, argv, Some(By::Rank), Some(true))
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT o c]`: `dst`
/// is replaced whatever its type (deleted when the range is empty).
fn zrangestore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let request = parse_range(argv, 2, true, None, None)?;
    let stored = tx.zset_store_range(ctx.db, &argv[1], &argv[2], &request.range, request.rev)?;
    Ok(Reply::Integer(stored as i64))
}

fn remove_range(
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    key: &[u8],
    range: ZRange,
) -> Result<Reply, Reply> {
    Ok(Reply::Integer(
        tx.zset_remove_range(ctx.db, key, &range)? as i64
    ))
}

fn zremrangebyrank(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let range = ZRange::Rank {
        start: parse_i64(&argv[2])?,
        stop: parse_i64(&argv[3])?,
    };
    remove_range(tx, ctx, &argv[1], range)
}

fn zremrangebyscore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let range = ZRange::Score(score_range(&argv[2], &argv[3])?, Limit::ALL);
    remove_range(tx, ctx, &argv[1], range)
}

fn zremrangebylex(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let range = ZRange::Lex(lex_range(&argv[2], &argv[3])?, Limit::ALL);
    remove_range(tx, ctx, &argv[1], range)
}

/// `ZPOPMIN`/`ZPOPMAX key [count]`: without a count a flat
/// `[member, score]` in both protocols (RESP2's shape; the score is still
/// a RESP3 double), with one a list of members with scores.
fn pop(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>], max: bool) -> Result<Reply, Reply> {
    let count = match argv.len() {
        2 => None,
        3 => Some(parse_count(&argv[2])?),
        _ => return Err(errors::syntax()),
    };
    let popped = tx.zset_pop(ctx.db, &argv[1], max, count.unwrap_or(1))?;
    Ok(match count {
        Some(_) => scored(popped, true, ctx.protocol),
        None => scored(popped, true, Protocol::Resp2),
    })
}

fn zpopmin(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    pop(tx, ctx, argv, false)
}

fn zpopmax(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    pop(tx, ctx, argv, true)
}

/// `ZMPOP numkeys key… MIN|MAX [COUNT n]`: pops from the first non-empty
/// sorted set; `[key, [[member, score], …]]`, or a null array.
fn zmpop(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let args = parse_mpop(argv, ["MIN", "MAX"])?;
    for key in args.keys {
        let popped = tx.zset_pop(ctx.db, key, args.second_end, args.count)?;
        if !popped.is_empty() {
            return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), pairs(popped)]));
        }
    }
    Ok(Reply::NullArray)
}

/// Which variant of `ZUNION`/`ZINTER`/`ZDIFF` is parsed: the plain one
/// takes `WITHSCORES`, `ZINTERCARD` takes `LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Store,
    Card,
}

/// A parsed set operation.
struct SetOpRequest<'a> {
    keys: &'a [Vec<u8>],
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    limit: u64,
}

/// Parses like Redis's `zunionInterDiffGenericCommand`, `argv[at]` being
/// `numkeys`. As in Redis the input keys are type-checked before the
/// options are parsed.
fn parse_set_op<'a>(
    view: &View<'_>,
    ctx: &CommandCtx,
    argv: &'a [Vec<u8>],
    at: usize,
    op: SetOp,
    form: Form,
) -> Result<SetOpRequest<'a>, Reply> {
    let numkeys = parse_i64(&argv[at])?;
    if numkeys < 1 {
        return Err(Reply::Error(format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(&argv[0]).to_lowercase()
        )));
    }
    let n = usize::try_from(numkeys)
        .ok()
        .filter(|n| *n < argv.len() - at)
        .ok_or_else(errors::syntax)?;
    let keys = &argv[at + 1..at + 1 + n];
    for key in keys {
        if let Some(meta) = view.lookup(ctx.db, key)?
            && !matches!(meta.kind(), KeyKind::ZSet | KeyKind::Set)
        {
            return Err(errors::wrong_type());
        }
    }
    let mut request = SetOpRequest {
        keys,
        weights: Vec::new(),
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = at + 1 + n;
    while j < argv.len() {
        let (arg, remaining) = (&argv[j], argv.len() - j);
        if op != SetOp::Diff && remaining > n && is(arg, "WEIGHTS") {
            request.weights = argv[j + 1..=j + n]
                .iter()
                .map(|w| parse_f64(w).map_err(|_| Reply::error("ERR weight value is not a float")))
                .collect::<Result<_, _>>()?;
            j += n + 1;
        } else if op != SetOp::Diff && remaining >= 2 && is(arg, "AGGREGATE") {
            let how = &argv[j + 1];
            request.aggregate = if is(how, "SUM") {
                Aggregate::Sum
            } else if is(how, "MIN") {
                Aggregate::Min
            } else if is(how, "MAX") {
                Aggregate::Max
            } else {
                return Err(errors::syntax());
            };
            j += 2;
        } else if form == Form::Plain && is(arg, "WITHSCORES") {
            request.withscores = true;
            j += 1;
        } else if form == Form::Card && remaining >= 2 && is(arg, "LIMIT") {
            request.limit = parse_i64(&argv[j + 1])
                .ok()
                .and_then(|l| u64::try_from(l).ok())
                .ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))?;
            j += 2;
        } else {
            return Err(errors::syntax());
        }
    }
    Ok(request)
}

/// The result of a set operation, parsed from `argv[at..]`.
fn combine<'a>(
    view: &View<'_>,
    ctx: &CommandCtx,
    argv: &'a [Vec<u8>],
    at: usize,
    op: SetOp,
    form: Form,
) -> Result<(SetOpRequest<'a>, Vec<ScoredMember>), Reply> {
    let request = parse_set_op(view, ctx, argv, at, op, form)?;
    let result = view.zset_combine(
        ctx.db,
        request.keys,
        &request.weights,
        request.aggregate,
        op,
    )?;
    Ok((request, result))
}

fn set_op(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>], op: SetOp) -> Result<Reply, Reply> {
    let (request, result) = combine(view, ctx, argv, 1, op, Form::Plain)?;
    Ok(scored(result, request.withscores, ctx.protocol))
}

fn zunion(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_op(view, ctx, argv, SetOp::Union)
}

fn zinter(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_op(view, ctx, argv, SetOp::Inter)
}

fn zdiff(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_op(view, ctx, argv, SetOp::Diff)
}

/// `Z*STORE dst numkeys key… [options]`: `dst` is replaced whatever its
/// type (and may be one of the inputs).
fn set_op_store(
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    op: SetOp,
) -> Result<Reply, Reply> {
    let (_, result) = combine(&tx.view(), ctx, argv, 2, op, Form::Store)?;
    Ok(Reply::Integer(
        tx.zset_store(ctx.db, &argv[1], result)? as i64
    ))
}

fn zunionstore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_op_store(tx, ctx, argv, SetOp::Union)
}

fn zinterstore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_op_store(tx, ctx, argv, SetOp::Inter)
}

fn zdiffstore(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_op_store(tx, ctx, argv, SetOp::Diff)
}

fn zintercard(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let request = parse_set_op(view, ctx, argv, 1, SetOp::Inter, Form::Card)?;
    Ok(Reply::Integer(
        view.zset_inter_card(ctx.db, request.keys, request.limit)? as i64,
    ))
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`, with Redis's range checks on
/// `count` (it must be negatable, and doubled when scores are included).
fn zrandmember(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    if argv.len() == 2 {
        let one = view.zset_random(ctx.db, &argv[1], RandomCount::Distinct(1))?;
        return Ok(one
            .into_iter()
            .next()
            .map_or(Reply::Null, |(m, _)| Reply::Bulk(m)));
    }
    let count = parse_i64(&argv[2])?;
    if count == i64::MIN {
        return Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let withscores = match &argv[3..] {
        [] => false,
        [option] if is(option, "WITHSCORES") => true,
        _ => return Err(errors::syntax()),
    };
    if withscores && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(Reply::error("ERR value is out of range"));
    }
    let count = if count >= 0 {
        RandomCount::Distinct(count as u64)
    } else {
        RandomCount::WithRepeats(count.unsigned_abs())
    };
    let list = view.zset_random(ctx.db, &argv[1], count)?;
    Ok(scored(list, withscores, ctx.protocol))
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT n]`. As in Redis, a missing
/// key answers an empty scan before the options are even parsed; `MATCH`
/// filters a page after it was read. Scores are bulk strings in both
/// protocols.
fn zscan(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let cursor = parse_cursor(&argv[2])?;
    if view.lookup_kind(ctx.db, &argv[1], KeyKind::ZSet)?.is_none() {
        return Ok(ScanArgs::reply(0, Vec::new()));
    }
    let args = ScanArgs::parse(&argv[3..], false)?;
    let (next, page) = view.zset_scan_cursor(ctx.db, &argv[1], cursor, args.count)?;
    let items = page
        .into_iter()
        .filter(|(m, _)| args.keeps(m))
        .flat_map(|(m, s)| [Reply::Bulk(m), Reply::bulk(format_double(s))])
        .collect();
    Ok(ScanArgs::reply(next, items))
}

//! The string commands: `GET`, `SET` with its options, the counters,
//! partial reads and edits, `MGET`/`MSET`, and `LCS`.
//!
//! Checks run in Redis 7.0's order (option syntax, then numbers, then the
//! key's type), since a client sees whichever error comes first.

use super::args::{is, parse_i64};
use super::{CommandCtx, CommandSpec, Exec, spec};
use crate::error::StoreError;
use crate::long_double;
use crate::read::View;
use crate::reply::{Reply, errors};
use crate::string::{Expiry, MAX_STRING_LEN};
use crate::write::Tx;

/// A command's spec with one key at argv 1, the common shape here.
const fn one_key(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    exec: Exec,
) -> CommandSpec {
    spec(name, arity, flags, (1, 1, 1), exec)
}

/// This family's commands, with the metadata `COMMAND INFO` shows on Redis
/// 7.0.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    one_key("get", 2, &["readonly", "fast"], Exec::Read(get)),
    one_key("set", -3, &["write", "denyoom"], Exec::Write(set)).errors_before_writing(),
    one_key(
        "setnx",
        3,
        &["write", "denyoom", "fast"],
        Exec::Write(setnx),
    ),
    one_key("setex", 4, &["write", "denyoom"], Exec::Write(setex)),
    one_key("psetex", 4, &["write", "denyoom"], Exec::Write(psetex)),
    one_key(
        "getset",
        3,
        &["write", "denyoom", "fast"],
        Exec::Write(getset),
    ),
    one_key("getdel", 2, &["write", "fast"], Exec::Write(getdel)),
    one_key("getex", -2, &["write", "fast"], Exec::Write(getex)),
    spec(
        "mget",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        Exec::Read(mget),
    ),
    spec(
        "mset",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        Exec::Write(mset),
    )
    .errors_before_writing(),
    spec(
        "msetnx",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        Exec::Write(msetnx),
    ),
    one_key("incr", 2, &["write", "denyoom", "fast"], Exec::Write(incr)).errors_before_writing(),
    one_key("decr", 2, &["write", "denyoom", "fast"], Exec::Write(decr)).errors_before_writing(),
    one_key(
        "incrby",
        3,
        &["write", "denyoom", "fast"],
        Exec::Write(incrby),
    )
    .errors_before_writing(),
    one_key(
        "decrby",
        3,
        &["write", "denyoom", "fast"],
        Exec::Write(decrby),
    )
    .errors_before_writing(),
    one_key(
        "incrbyfloat",
        3,
        &["write", "denyoom", "fast"],
        Exec::Write(incrbyfloat),
    ),
    one_key(
        "append",
        3,
        &["write", "denyoom", "fast"],
        Exec::Write(append),
    ),
    one_key("strlen", 2, &["readonly", "fast"], Exec::Read(strlen)),
    one_key("getrange", 4, &["readonly"], Exec::Read(getrange)),
    one_key("substr", 4, &["readonly"], Exec::Read(getrange)),
    one_key("setrange", 4, &["write", "denyoom"], Exec::Write(setrange)),
    spec("lcs", -3, &["readonly"], (1, 2, 1), Exec::Read(lcs)),
];

/// A bulk reply for `Some`, a null for `None`.
fn bulk_or_null(value: Option<Vec<u8>>) -> Reply {
    value.map_or(Reply::Null, Reply::Bulk)
}

/// The reply of a read that may fail half-way (read commands answer a
/// [`Reply`], errors included; the key commands use this too).
pub(super) fn answer(result: Result<Reply, Reply>) -> Reply {
    result.unwrap_or_else(|e| e)
}

fn too_big() -> Reply {
    Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

fn get(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    answer(
        view.string_get(ctx.db, &argv[1])
            .map(bulk_or_null)
            .map_err(Reply::from),
    )
}

/// The unit and base of an expiry argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireArg {
    /// `EX`: seconds from now.
    Ex,
    /// `PX`: milliseconds from now.
    Px,
    /// `EXAT`: a Unix time in seconds.
    ExAt,
    /// `PXAT`: a Unix time in milliseconds.
    PxAt,
}

impl ExpireArg {
    /// The Unix millisecond time `arg` names, as Redis's
    /// `getExpireMillisecondsOrReply`: positive, and no overflow.
    fn resolve(self, arg: &[u8], now: i64, command: &str) -> Result<i64, Reply> {
        let value = parse_i64(arg)?;
        let invalid = || Reply::Error(format!("ERR invalid expire time in '{command}' command"));
        let seconds = matches!(self, ExpireArg::Ex | ExpireArg::ExAt);
        if value <= 0 || (seconds && value > i64::MAX / 1000) {
            return Err(invalid());
        }
        let ms = if seconds { value * 1000 } else { value };
        let at = match self {
            ExpireArg::Ex | ExpireArg::Px => ms.checked_add(now).ok_or_else(invalid)?,
            ExpireArg::ExAt | ExpireArg::PxAt => ms,
        };
        Ok(at)
    }
}

/// The options of `SET` (`for_set`) or `GETEX`, parsed like Redis's
/// `parseExtendedStringArgumentsOrReply`.
#[derive(Debug, Default)]
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expire: Option<(ExpireArg, &'a [u8])>,
}

impl<'a> StringOptions<'a> {
    fn parse(options: &'a [Vec<u8>], for_set: bool) -> Result<Self, Reply> {
        let mut o = StringOptions::default();
        let mut i = 0;
        while i < options.len() {
            let opt = &options[i];
            let next = options.get(i + 1);
            let has_expire = o.expire.is_some();
            let expire_kind = o.expire.map(|(kind, _)| kind);
            // Redis lets a repeated option of the same kind through (the
            // last value wins) but refuses mixing expiry kinds.
            let other_expire = |kind| has_expire && expire_kind != Some(kind);
            let unit = [
                ("EX", ExpireArg::Ex),
                ("PX", ExpireArg::Px),
                ("EXAT", ExpireArg::ExAt),
                ("PXAT", ExpireArg::PxAt),
            ]
            .into_iter()
            .find(|(name, _)| is(opt, name));
            if for_set && is(opt, "NX") && !o.xx {
                o.nx = true;
            } else if for_set && is(opt, "XX") && !o.nx {
                o.xx = true;
            } else if for_set && is(opt, "GET") {
                o.get = true;
            } else if for_set && is(opt, "KEEPTTL") && !has_expire {
                o.keep_ttl = true;
            } else if !for_set && is(opt, "PERSIST") && !has_expire {
                o.persist = true;
            } else if let Some((_, kind)) = unit
                && !o.keep_ttl
                && !o.persist
                && !other_expire(kind)
                && let Some(value) = next
            {
                o.expire = Some((kind, value));
                i += 1;
            } else {
                return Err(errors::syntax());
            }
            i += 1;
        }
        Ok(o)
    }

    /// The expiry the options ask for, resolved against `now`.
    fn expiry(&self, now: i64, command: &str) -> Result<Option<i64>, Reply> {
        self.expire
            .map(|(kind, arg)| kind.resolve(arg, now, command))
            .transpose()
    }
}

fn set(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (key, value) = (&argv[1], &argv[2]);
    if argv.len() == 3 {
        // Plain SET, the hot path: one statement.
        tx.string_set(ctx.db, key, value, Expiry::Persist)?;
        return Ok(Reply::ok());
    }
    let o = StringOptions::parse(&argv[3..], true)?;
    let at = o.expiry(tx.now(), "set")?;
    let old = if o.get {
        Some(tx.string_for_write(ctx.db, key)?.map(|(_, v)| v))
    } else {
        None
    };
    let found = tx.lookup_for_write(ctx.db, key)?.is_some();
    if (o.nx && found) || (o.xx && !found) {
        return Ok(old.map_or(Reply::Null, bulk_or_null));
    }
    let expiry = match (at, o.keep_ttl) {
        (Some(at), _) => Expiry::At(at),
        (None, true) => Expiry::Keep,
        (None, false) => Expiry::Persist,
    };
    tx.string_set(ctx.db, key, value, expiry)?;
    Ok(old.map_or_else(Reply::ok, bulk_or_null))
}

fn setnx(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    if tx.lookup_for_write(ctx.db, &argv[1])?.is_some() {
        return Ok(Reply::Integer(0));
    }
    tx.string_set(ctx.db, &argv[1], &argv[2], Expiry::Persist)?;
    Ok(Reply::Integer(1))
}

/// `SETEX`/`PSETEX key time value`.
fn set_with_expiry(
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    unit: ExpireArg,
    command: &str,
) -> Result<Reply, Reply> {
    let at = unit.resolve(&argv[2], tx.now(), command)?;
    tx.string_set(ctx.db, &argv[1], &argv[3], Expiry::At(at))?;
    Ok(Reply::ok())
}

fn setex(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_with_expiry(tx, ctx, argv, ExpireArg::Ex, "setex")
}

fn psetex(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    set_with_expiry(tx, ctx, argv, ExpireArg::Px, "psetex")
}

fn getset(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let old = tx.string_for_write(ctx.db, &argv[1])?.map(|(_, v)| v);
    tx.string_set(ctx.db, &argv[1], &argv[2], Expiry::Persist)?;
    Ok(bulk_or_null(old))
}

fn getdel(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let Some((_, value)) = tx.string_for_write(ctx.db, &argv[1])? else {
        return Ok(Reply::Null);
    };
    tx.delete_key(ctx.db, &argv[1])?;
    Ok(Reply::Bulk(value))
}

fn getex(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let o = StringOptions::parse(&argv[2..], false)?;
    let Some((_, value)) = tx.string_for_write(ctx.db, &argv[1])? else {
        return Ok(Reply::Null);
    };
    // Unlike SET, GETEX checks the time after the key and its type.
    let at = o.expiry(tx.now(), "getex")?;
    if let Some(at) = at {
        tx.key_expire(ctx.db, &argv[1], at, Default::default())?;
    } else if o.persist {
        tx.key_persist(ctx.db, &argv[1])?;
    }
    Ok(Reply::Bulk(value))
}

fn mget(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    let values: Result<Vec<Reply>, StoreError> = argv[1..]
        .iter()
        .map(|key| match view.string_get(ctx.db, key) {
            Ok(value) => Ok(bulk_or_null(value)),
            // MGET answers nil for a key of another type.
            Err(StoreError::WrongType) => Ok(Reply::Null),
            Err(e) => Err(e),
        })
        .collect();
    answer(values.map(Reply::Array).map_err(Reply::from))
}

/// The key/value pairs of `MSET`/`MSETNX`, or Redis's arity error when a
/// value is missing.
fn pairs<'a>(
    argv: &'a [Vec<u8>],
    name: &str,
) -> Result<std::slice::ChunksExact<'a, Vec<u8>>, Reply> {
    if argv.len().is_multiple_of(2) {
        return Err(errors::wrong_arity(name));
    }
    Ok(argv[1..].chunks_exact(2))
}

fn mset(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    for pair in pairs(argv, "mset")? {
        tx.string_set(ctx.db, &pair[0], &pair[1], Expiry::Persist)?;
    }
    Ok(Reply::ok())
}

fn msetnx(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    for pair in pairs(argv, "msetnx")? {
        if tx.lookup_for_write(ctx.db, &pair[0])?.is_some() {
            return Ok(Reply::Integer(0));
        }
    }
    for pair in pairs(argv, "msetnx")? {
        tx.string_set(ctx.db, &pair[0], &pair[1], Expiry::Persist)?;
    }
    Ok(Reply::Integer(1))
}

/// Adds `delta` to the integer in `key` (absent: 0), keeping its TTL.
fn incr_by(tx: &mut Tx<'_>, ctx: &CommandCtx, key: &[u8], delta: i64) -> Result<Reply, Reply> {
    let current = tx.string_for_write(ctx.db, key)?;
    let old = match &current {
        Some((_, value)) => parse_i64(value)?,
        None => 0,
    };
    let new = old.checked_add(delta).ok_or_else(errors::overflow)?;
    let text = new.to_string();
    match current {
        Some((id, _)) => tx.string_replace(id, text.as_bytes())?,
        None => tx.string_set(ctx.db, key, text.as_bytes(), Expiry::Persist)?,
    }
    Ok(Reply::Integer(new))
}

fn incr(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    incr_by(tx, ctx, &argv[1], 1)
}

fn decr(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    incr_by(tx, ctx, &argv[1], -1)
}

fn incrby(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let delta = parse_i64(&argv[2])?;
    incr_by(tx, ctx, &argv[1], delta)
}

fn decrby(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let delta = parse_i64(&argv[2])?;
    let delta = delta
        .checked_neg()
        .ok_or_else(|| Reply::error("ERR decrement would overflow"))?;
    incr_by(tx, ctx, &argv[1], delta)
}

fn incrbyfloat(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let key = &argv[1];
    let current = tx.string_for_write(ctx.db, key)?;
    let old = current.as_ref().map_or(&b"0"[..], |(_, v)| v.as_slice());
    let new = long_double::increment(old, &argv[2])?;
    match current {
        Some((id, _)) => tx.string_replace(id, &new)?,
        None => tx.string_set(ctx.db, key, &new, Expiry::Persist)?,
    }
    Ok(Reply::Bulk(new))
}

fn append(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let suffix = &argv[2];
    let Some(row) = tx.string_len_for_write(ctx.db, &argv[1])? else {
        tx.string_set(ctx.db, &argv[1], suffix, Expiry::Persist)?;
        return Ok(Reply::Integer(suffix.len() as i64));
    };
    if row.len + suffix.len() as u64 > MAX_STRING_LEN {
        return Err(too_big());
    }
    Ok(Reply::Integer(tx.string_append(row.id, suffix)? as i64))
}

fn strlen(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    answer(
        view.string_len(ctx.db, &argv[1])
            .map(|len| Reply::Integer(len.unwrap_or(0) as i64))
            .map_err(Reply::from),
    )
}

fn getrange(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    answer((|| {
        let start = parse_i64(&argv[2])?;
        let end = parse_i64(&argv[3])?;
        let Some(len) = view.string_len(ctx.db, &argv[1])? else {
            return Ok(Reply::Bulk(Vec::new()));
        };
        Ok(match byte_range(start, end, len) {
            Some((first, count)) => Reply::Bulk(view.string_slice(ctx.db, &argv[1], first, count)?),
            None => Reply::Bulk(Vec::new()),
        })
    })())
}

/// `GETRANGE`'s index arithmetic (Redis 7.0): the first byte and the byte
/// count, `None` for an empty result.
fn byte_range(start: i64, end: i64, len: u64) -> Option<(u64, u64)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    (len > 0 && start <= end).then(|| (start as u64, (end - start + 1) as u64))
}

fn setrange(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (key, bytes) = (&argv[1], &argv[3]);
    let offset = parse_i64(&argv[2])?;
    let offset = u64::try_from(offset).map_err(|_| Reply::error("ERR offset is out of range"))?;
    let fits = || {
        if offset + bytes.len() as u64 > MAX_STRING_LEN {
            Err(too_big())
        } else {
            Ok(())
        }
    };
    let row = match tx.string_len_for_write(ctx.db, key)? {
        Some(row) if bytes.is_empty() => return Ok(Reply::Integer(row.len as i64)),
        Some(row) => row,
        None if bytes.is_empty() => return Ok(Reply::Integer(0)),
        None => {
            fits()?;
            tx.string_set(ctx.db, key, b"", Expiry::Persist)?;
            tx.string_len_for_write(ctx.db, key)?
                .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?
        }
    };
    fits()?;
    Ok(Reply::Integer(
        tx.string_write_at(row.id, offset, bytes)? as i64
    ))
}

fn lcs(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    answer((|| {
        let read = |key: &[u8]| match view.string_get(ctx.db, key) {
            Err(StoreError::WrongType) => Err(Reply::error(
                "ERR The specified keys must contain string values",
            )),
            other => Ok(other?.unwrap_or_default()),
        };
        let (a, b) = (read(&argv[1])?, read(&argv[2])?);
        let (mut get_len, mut get_idx, mut with_match_len, mut min_match_len) =
            (false, false, false, 0u64);
        let mut i = 3;
        while i < argv.len() {
            let opt = &argv[i];
            if is(opt, "IDX") {
                get_idx = true;
            } else if is(opt, "LEN") {
                get_len = true;
            } else if is(opt, "WITHMATCHLEN") {
                with_match_len = true;
            } else if is(opt, "MINMATCHLEN") && i + 1 < argv.len() {
                min_match_len = parse_i64(&argv[i + 1])?.max(0) as u64;
                i += 1;
            } else {
                return Err(errors::syntax());
            }
            i += 1;
        }
        if get_idx && get_len {
            return Err(Reply::error(
                "ERR If you want both the length and indexes, please just use IDX.",
            ));
        }
        let table_bytes = (a.len() as u64 + 1) * (b.len() as u64 + 1) * 4;
        if table_bytes > MAX_STRING_LEN {
            return Err(Reply::error(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            ));
        }
        let found = Lcs::compute(&a, &b);
        Ok(if get_idx {
            let matches = found
                .ranges()
                .into_iter()
                .filter(|r| min_match_len == 0 || r.len >= min_match_len)
                .map(|r| r.reply(with_match_len))
                .collect();
            Reply::Map(vec![
                (Reply::bulk("matches"), Reply::Array(matches)),
                (Reply::bulk("len"), Reply::Integer(found.len() as i64)),
            ])
        } else if get_len {
            Reply::Integer(found.len() as i64)
        } else {
            Reply::Bulk(found.subsequence())
        })
    })())
}

/// The dynamic-programming table of a longest common subsequence, walked
/// back exactly as Redis 7.0's `lcsCommand` does, so that ties resolve to
/// the same subsequence and ranges.
struct Lcs<'a> {
    a: &'a [u8],
    b: &'a [u8],
    /// `table[i * (b.len() + 1) + j]`: LCS length of `a[..i]`, `b[..j]`.
    table: Vec<u32>,
}

/// One matching range of `LCS … IDX`.
struct Match {
    a: (u64, u64),
    b: (u64, u64),
    len: u64,
}

impl Match {
    fn reply(&self, with_len: bool) -> Reply {
        let pair = |(s, e): (u64, u64)| {
            Reply::Array(vec![Reply::Integer(s as i64), Reply::Integer(e as i64)])
        };
        let mut items = vec![pair(self.a), pair(self.b)];
        if with_len {
            items.push(Reply::Integer(self.len as i64));
        }
        Reply::Array(items)
    }
}

impl<'a> Lcs<'a> {
    fn compute(a: &'a [u8], b: &'a [u8]) -> Self {
        let width = b.len() + 1;
        let mut table = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                table[i * width + j] = if a[i - 1] == b[j - 1] {
                    table[(i - 1) * width + j - 1] + 1
                } else {
                    table[(i - 1) * width + j].max(table[i * width + j - 1])
                };
            }
        }
        Self { a, b, table }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.table[i * (self.b.len() + 1) + j]
    }

    fn len(&self) -> u32 {
        self.at(self.a.len(), self.b.len())
    }

    /// The walk back from the table's corner: the subsequence (built from
    /// its end) and the matching ranges in the order Redis emits them.
    fn walk(&self) -> (Vec<u8>, Vec<Match>) {
        let mut result = vec![0u8; self.len() as usize];
        let mut idx = result.len();
        let mut ranges = Vec::new();
        let (mut i, mut j) = (self.a.len(), self.b.len());
        // `None`: no range open (Redis's `arange_start == alen`).
        let mut open: Option<(usize, usize, usize, usize)> = None;
        while i > 0 && j > 0 {
            let mut emit = false;
            if self.a[i - 1] == self.b[j - 1] {
                result[idx - 1] = self.a[i - 1];
                match &mut open {
                    None => open = Some((i - 1, i - 1, j - 1, j - 1)),
                    Some((a_start, _, b_start, _)) if *a_start == i && *b_start == j => {
                        *a_start -= 1;
                        *b_start -= 1;
                    }
                    Some(_) => emit = true,
                }
                if let Some((a_start, _, b_start, _)) = open
                    && (a_start == 0 || b_start == 0)
                {
                    emit = true;
                }
                idx -= 1;
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = open.is_some();
            }
            if emit && let Some((a_start, a_end, b_start, b_end)) = open.take() {
                ranges.push(Match {
                    a: (a_start as u64, a_end as u64),
                    b: (b_start as u64, b_end as u64),
                    len: (a_end - a_start + 1) as u64,
                });
            }
        }
        (result, ranges)
    }

    fn subsequence(&self) -> Vec<u8> {
        self.walk().0
    }

    fn ranges(&self) -> Vec<Match> {
        self.walk().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_indexes_follow_redis() {
        assert_eq!(byte_range(0, -1, 5), Some((0, 5)));
        assert_eq!(byte_range(-3, -1, 5), Some((2, 3)));
        assert_eq!(byte_range(-1, -3, 5), None);
        assert_eq!(byte_range(3, 100, 5), Some((3, 2)));
        assert_eq!(byte_range(-100, 0, 5), Some((0, 1)));
        assert_eq!(byte_range(0, -100, 5), Some((0, 1)), "end clamps to 0");
        assert_eq!(byte_range(0, 0, 0), None);
        assert_eq!(byte_range(4, 2, 5), None);
    }

    #[test]
    fn lcs_matches_redis_examples() {
        let found = Lcs::compute(b"ohmytext", b"mynewtext");
        assert_eq!(found.subsequence(), b"mytext");
        assert_eq!(found.len(), 6);
        let ranges: Vec<_> = found.ranges().iter().map(|m| (m.a, m.b, m.len)).collect();
        assert_eq!(ranges, vec![((4, 7), (5, 8), 4), ((2, 3), (0, 1), 2)]);
        assert!(Lcs::compute(b"", b"abc").subsequence().is_empty());
    }

    #[test]
    fn set_options_parse_like_redis() {
        let args = |s: &[&str]| s.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>();
        let argv = args(&["nx", "GET", "px", "5"]);
        let o = StringOptions::parse(&argv, true).unwrap();
        assert!(o.nx && o.get && o.expire == Some((ExpireArg::Px, &b"5"[..])));
        let argv = args(&["EX", "1", "EX", "2"]);
        let o = StringOptions::parse(&argv, true).unwrap();
        assert_eq!(
            o.expire,
            Some((ExpireArg::Ex, &b"2"[..])),
            "the last EX wins"
        );
        for bad in [
            &["NX", "XX"][..],
            &["EX", "1", "PX", "2"],
            &["KEEPTTL", "EX", "1"],
            &["EX"],
            &["PERSIST"],
        ] {
            assert!(StringOptions::parse(&args(bad), true).is_err(), "{bad:?}");
        }
        assert!(
            StringOptions::parse(&args(&["PERSIST"]), false)
                .unwrap()
                .persist
        );
        assert!(StringOptions::parse(&args(&["GET"]), false).is_err());
    }

    #[test]
    fn expiry_arguments_are_checked() {
        assert_eq!(ExpireArg::Ex.resolve(b"2", 1000, "set"), Ok(3000));
        assert_eq!(ExpireArg::PxAt.resolve(b"7", 1000, "set"), Ok(7));
        let invalid = Err(Reply::error("ERR invalid expire time in 'set' command"));
        assert_eq!(ExpireArg::Ex.resolve(b"0", 1000, "set"), invalid);
        assert_eq!(
            ExpireArg::Px.resolve(b"9223372036854775807", 1000, "set"),
            invalid
        );
        assert_eq!(
            ExpireArg::Ex.resolve(b"x", 1000, "set"),
            Err(errors::not_integer())
        );
    }
}

//! The generic key commands: deleting, testing, listing and scanning keys,
//! renaming, moving and copying them, their expiry, `OBJECT`, and whole
//! databases (`DBSIZE`, `FLUSHDB`, `FLUSHALL`, `SWAPDB`).
//!
//! `FLUSHDB`/`FLUSHALL` accept `ASYNC` and `SYNC` and do the same either
//! way: big collections are always freed lazily by the sweeper (see
//! `Tx::flush_db`), small keys at once. `OBJECT` reports values a Redis
//! 7.0 with default settings would show for the same data: encodings from
//! the value's size and shape, shared-integer refcounts, and an idle time
//! of 0, since keyferry does not track access times.

use super::args::{ScanArgs, is, parse_cursor, parse_i64};
use super::strings::answer;
use super::{CommandCtx, CommandSpec, Exec, spec};
use crate::db::Db;
use crate::error::StoreError;
use crate::keys::KeyMeta;
use crate::keyspace::{ExpireIf, KeyFilter};
use crate::keyvalue::KeyKind;
use crate::read::View;
use crate::reply::{Reply, errors};
use crate::write::Tx;

/// A command's spec with keys from argv `first` to `last` (negative:
/// from the end), one apart.
const fn keyed(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    first: i32,
    last: i32,
    exec: Exec,
) -> CommandSpec {
    spec(name, arity, flags, (first, last, 1), exec)
}

/// A command without key arguments.
const fn keyless(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    exec: Exec,
) -> CommandSpec {
    keyed(name, arity, flags, 0, 0, exec)
}

const READ_FAST: &[&str] = &["readonly", "fast"];
const WRITE_FAST: &[&str] = &["write", "fast"];

/// This family's commands, with the metadata `COMMAND INFO` shows on Redis
/// 7.0.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    keyed("del", -2, &["write"], 1, -1, Exec::Write(del)),
    keyed("unlink", -2, WRITE_FAST, 1, -1, Exec::Write(del)),
    keyed("exists", -2, READ_FAST, 1, -1, Exec::Read(exists)),
    keyed("touch", -2, READ_FAST, 1, -1, Exec::Read(exists)),
    keyed("type", 2, READ_FAST, 1, 1, Exec::Read(key_type)),
    keyless("keys", 2, &["readonly"], Exec::Read(keys)),
    keyless("scan", -2, &["readonly"], Exec::Read(scan)),
    keyless("randomkey", 1, &["readonly"], Exec::Read(randomkey)),
    keyed("rename", 3, &["write"], 1, 2, Exec::Write(rename)),
    keyed("renamenx", 3, WRITE_FAST, 1, 2, Exec::Write(renamenx)),
    keyed("copy", -3, &["write", "denyoom"], 1, 2, Exec::Write(copy)),
    keyed("move", 3, WRITE_FAST, 1, 1, Exec::Write(move_key)),
    keyed("expire", -3, WRITE_FAST, 1, 1, Exec::Write(expire)),
    keyed("pexpire", -3, WRITE_FAST, 1, 1, Exec::Write(pexpire)),
    keyed("expireat", -3, WRITE_FAST, 1, 1, Exec::Write(expireat)),
    keyed("pexpireat", -3, WRITE_FAST, 1, 1, Exec::Write(pexpireat)),
    keyed("ttl", 2, READ_FAST, 1, 1, Exec::Read(ttl)),
    keyed("pttl", 2, READ_FAST, 1, 1, Exec::Read(pttl)),
    keyed("expiretime", 2, READ_FAST, 1, 1, Exec::Read(expiretime)),
    keyed("pexpiretime", 2, READ_FAST, 1, 1, Exec::Read(pexpiretime)),
    keyed("persist", 2, WRITE_FAST, 1, 1, Exec::Write(persist)),
    keyless("object", -2, &[], Exec::Read(object)),
    keyless("dbsize", 1, READ_FAST, Exec::Read(dbsize)),
    keyless("flushdb", -1, &["write"], Exec::Write(flushdb)),
    keyless("flushall", -1, &["write"], Exec::Write(flushall)),
    keyless("swapdb", 3, WRITE_FAST, Exec::Write(swapdb)),
];

fn del(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let mut deleted = 0;
    for key in &argv[1..] {
        deleted += i64::from(tx.delete_key(ctx.db, key)?);
    }
    Ok(Reply::Integer(deleted))
}

/// `EXISTS` and `TOUCH`: how many of the keys exist (a key named twice
/// counts twice).
fn exists(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    let mut found = 0;
    for key in &argv[1..] {
        match view.lookup(ctx.db, key) {
            Ok(meta) => found += i64::from(meta.is_some()),
            Err(e) => return e.into(),
        }
    }
    Reply::Integer(found)
}

fn key_type(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    match view.key_type(ctx.db, &argv[1]) {
        Ok(kind) => Reply::Status(kind.map_or("none", KeyKind::name).into()),
        Err(e) => e.into(),
    }
}

fn bulks(keys: Vec<Vec<u8>>) -> Reply {
    Reply::Array(keys.into_iter().map(Reply::Bulk).collect())
}

fn keys(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    match view.key_list(ctx.db, KeyFilter::new(Some(&argv[1]), None)) {
        Ok(keys) => bulks(keys),
        Err(e) => e.into(),
    }
}

fn scan(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    answer((|| {
        let cursor = parse_cursor(&argv[1])?;
        let args = ScanArgs::parse(&argv[2..], true)?;
        let filter = KeyFilter::new(args.pattern, args.kind);
        let page = view.key_scan(ctx.db, cursor, args.count as u64, filter)?;
        Ok(ScanArgs::reply(
            page.cursor,
            page.keys.into_iter().map(Reply::Bulk).collect(),
        ))
    })())
}

fn randomkey(view: &View<'_>, ctx: &CommandCtx, _argv: &[Vec<u8>]) -> Reply {
    match view.key_random(ctx.db) {
        Ok(key) => key.map_or(Reply::Null, Reply::Bulk),
        Err(e) => e.into(),
    }
}

fn rename(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    match tx.key_rename(ctx.db, &argv[1], &argv[2], false)? {
        None => Err(no_such_key()),
        Some(_) => Ok(Reply::ok()),
    }
}

fn renamenx(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    match tx.key_rename(ctx.db, &argv[1], &argv[2], true)? {
        None => Err(no_such_key()),
        Some(renamed) => Ok(Reply::Integer(i64::from(renamed))),
    }
}

fn no_such_key() -> Reply {
    Reply::error("ERR no such key")
}

fn same_object() -> Reply {
    Reply::error("ERR source and destination objects are the same")
}

/// A database index argument: an `int` (else `not_integer`, or Redis's
/// message `invalid`), then in range.
fn parse_db(arg: &[u8], invalid: Option<&str>) -> Result<Db, Reply> {
    let index = parse_i64(arg)
        .ok()
        .filter(|i| i32::try_from(*i).is_ok())
        .ok_or_else(|| invalid.map_or_else(errors::not_integer, Reply::error))?;
    Db::new(index).map_err(|_| Reply::error("ERR DB index is out of range"))
}

fn copy(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (mut target, mut replace) = (ctx.db, false);
    let mut i = 3;
    while i < argv.len() {
        if is(&argv[i], "REPLACE") {
            replace = true;
        } else if is(&argv[i], "DB") && i + 1 < argv.len() {
            target = parse_db(&argv[i + 1], None)?;
            i += 1;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    if target == ctx.db && argv[1] == argv[2] {
        return Err(same_object());
    }
    let copied = tx.key_copy(ctx.db, &argv[1], target, &argv[2], replace)?;
    Ok(Reply::Integer(i64::from(copied)))
}

fn move_key(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let target = parse_db(&argv[2], None)?;
    if target == ctx.db {
        return Err(same_object());
    }
    Ok(Reply::Integer(i64::from(
        tx.key_move(ctx.db, &argv[1], target)?,
    )))
}

/// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`: Redis's
/// `expireGenericCommand`, with `base` the time a relative argument
/// counts from (0 for the `…AT` forms).
fn expire_generic(
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    base: i64,
    seconds: bool,
    command: &str,
) -> Result<Reply, Reply> {
    let condition = parse_expire_condition(&argv[3..])?;
    let mut when = parse_i64(&argv[2])?;
    let invalid = || Reply::Error(format!("ERR invalid expire time in '{command}' command"));
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let when = when.checked_add(base).ok_or_else(invalid)?;
    let changed = tx.key_expire(ctx.db, &argv[1], when, condition)?;
    Ok(Reply::Integer(i64::from(changed)))
}

/// `NX`/`XX`/`GT`/`LT`, with Redis's errors for unknown and incompatible
/// options.
fn parse_expire_condition(options: &[Vec<u8>]) -> Result<ExpireIf, Reply> {
    let mut c = ExpireIf::default();
    for opt in options {
        let flag = if is(opt, "NX") {
            &mut c.nx
        } else if is(opt, "XX") {
            &mut c.xx
        } else if is(opt, "GT") {
            &mut c.gt
        } else if is(opt, "LT") {
            &mut c.lt
        } else {
            return Err(Reply::Error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        };
        *flag = true;
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if c.gt && c.lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(c)
}

fn expire(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let now = tx.now();
    expire_generic(tx, ctx, argv, now, true, "expire")
}

fn pexpire(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let now = tx.now();
    expire_generic(tx, ctx, argv, now, false, "pexpire")
}

fn expireat(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    expire_generic(tx, ctx, argv, 0, true, "expireat")
}

fn pexpireat(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    expire_generic(tx, ctx, argv, 0, false, "pexpireat")
}

/// `TTL` and friends: -2 for a missing key, -1 without expiry, else
/// `value(expire_at_ms, now)`.
fn ttl_generic(view: &View<'_>, ctx: &CommandCtx, key: &[u8], value: fn(i64, i64) -> i64) -> Reply {
    match view.lookup(ctx.db, key) {
        Ok(None) => Reply::Integer(-2),
        Ok(Some(meta)) => {
            Reply::Integer(meta.expire_at_ms().map_or(-1, |at| value(at, view.now())))
        }
        Err(e) => e.into(),
    }
}

/// Redis rounds seconds to the nearest (`(ms + 500) / 1000`).
fn to_seconds(ms: i64) -> i64 {
    (ms + 500) / 1000
}

fn ttl(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    ttl_generic(view, ctx, &argv[1], |at, now| to_seconds((at - now).max(0)))
}

fn pttl(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    ttl_generic(view, ctx, &argv[1], |at, now| (at - now).max(0))
}

fn expiretime(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    ttl_generic(view, ctx, &argv[1], |at, _| to_seconds(at))
}

fn pexpiretime(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    ttl_generic(view, ctx, &argv[1], |at, _| at)
}

fn persist(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    Ok(Reply::Integer(i64::from(tx.key_persist(ctx.db, &argv[1])?)))
}

/// `OBJECT HELP`, line for line as Redis 7.0 prints it.
const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Redis's reference count for objects shared forever (small integers).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

fn object(view: &View<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Reply {
    answer((|| {
        let sub = argv[1].to_ascii_lowercase();
        let arity = match sub.as_slice() {
            b"help" => 2,
            b"encoding" | b"freq" | b"idletime" | b"refcount" => 3,
            _ => {
                let name = &argv[1][..argv[1].len().min(128)];
                return Err(Reply::Error(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(&argv[0]).to_uppercase()
                )));
            }
        };
        if argv.len() != arity {
            return Err(errors::wrong_arity(&format!(
                "object|{}",
                String::from_utf8_lossy(&sub)
            )));
        }
        if sub == b"help" {
            return Ok(Reply::Array(
                OBJECT_HELP
                    .iter()
                    .map(|line| Reply::Status((*line).into()))
                    .collect(),
            ));
        }
        let Some(meta) = view.lookup(ctx.db, &argv[2])? else {
            return Ok(Reply::Null);
        };
        Ok(match sub.as_slice() {
            b"encoding" => Reply::bulk(encoding(view, ctx.db, &argv[2], &meta)?),
            b"refcount" => {
                let shared = meta.kind() == KeyKind::String
                    && view
                        .string_get(ctx.db, &argv[2])?
                        .and_then(|v| parse_i64(&v).ok())
                        .is_some_and(|n| (0..10_000).contains(&n));
                Reply::Integer(if shared { SHARED_REFCOUNT } else { 1 })
            }
            b"idletime" => Reply::Integer(0),
            _ => {
                return Err(Reply::error(
                    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                     Please note that when switching between policies at runtime LRU and LFU \
                     data will take some time to adjust.",
                ));
            }
        })
    })())
}

/// The encoding Redis 7.0 with default thresholds would use for the key:
/// small collections are compact (`listpack`, `intset`), big ones
/// `hashtable`/`skiplist`; lists are always `quicklist`.
fn encoding(
    view: &View<'_>,
    db: Db,
    key: &[u8],
    meta: &KeyMeta,
) -> Result<&'static str, StoreError> {
    const LISTPACK_ENTRIES: u64 = 128;
    const LISTPACK_VALUE: i64 = 64;
    const INTSET_ENTRIES: u64 = 512;
    let longest = |sql: &str| -> Result<i64, StoreError> {
        Ok(view
            .conn()
            .prepare_cached(sql)?
            .query_row([meta.id], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0))
    };
    Ok(match meta.kind() {
        KeyKind::String => {
            let value = view.string_get(db, key)?.unwrap_or_default();
            if value.len() <= 20 && parse_i64(&value).is_ok() {
                "int"
            } else if value.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        KeyKind::List => "quicklist",
        KeyKind::Hash => {
            let small = meta.len() <= LISTPACK_ENTRIES
                && longest(
                    "SELECT max(max(length(field)), max(length(value))) FROM hashes WHERE key_id = ?1",
                )? <= LISTPACK_VALUE;
            if small { "listpack" } else { "hashtable" }
        }
        KeyKind::ZSet => {
            let small = meta.len() <= LISTPACK_ENTRIES
                && longest("SELECT max(length(member)) FROM zsets WHERE key_id = ?1")?
                    <= LISTPACK_VALUE;
            if small { "listpack" } else { "skiplist" }
        }
        KeyKind::Set => {
            let integers = meta.len() <= INTSET_ENTRIES
                && view
                    .set_scan(db, key, None, INTSET_ENTRIES as usize)?
                    .iter()
                    .all(|m| parse_i64(m).is_ok());
            if integers { "intset" } else { "hashtable" }
        }
    })
}

fn dbsize(view: &View<'_>, ctx: &CommandCtx, _argv: &[Vec<u8>]) -> Reply {
    match view.key_count(ctx.db) {
        Ok(n) => Reply::Integer(n as i64),
        Err(e) => e.into(),
    }
}

/// The optional `ASYNC`/`SYNC` of `FLUSHDB`/`FLUSHALL`.
fn check_flush_mode(argv: &[Vec<u8>]) -> Result<(), Reply> {
    match argv {
        [_] => Ok(()),
        [_, mode] if is(mode, "ASYNC") || is(mode, "SYNC") => Ok(()),
        _ => Err(errors::syntax()),
    }
}

fn flushdb(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    check_flush_mode(argv)?;
    tx.flush_db(ctx.db)?;
    Ok(Reply::ok())
}

fn flushall(tx: &mut Tx<'_>, _ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    check_flush_mode(argv)?;
    for db in Db::all() {
        tx.flush_db(db)?;
    }
    Ok(Reply::ok())
}

fn swapdb(tx: &mut Tx<'_>, _ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
    let a = parse_db(&argv[1], Some("ERR invalid first DB index"))?;
    let b = parse_db(&argv[2], Some("ERR invalid second DB index"))?;
    tx.swap_db(a, b)?;
    Ok(Reply::ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"+7"), Ok(7));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        for bad in [&b"x"[..], b" 1", b"1 ", b"-", b"99999999999999999999"] {
            assert_eq!(parse_cursor(bad), Err(Reply::error("ERR invalid cursor")));
        }
    }

    #[test]
    fn expire_options_combine_like_redis() {
        let opts = |s: &[&str]| s.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(parse_expire_condition(&opts(&[])), Ok(ExpireIf::default()));
        let xx_lt = parse_expire_condition(&opts(&["xx", "LT"])).unwrap();
        assert!(xx_lt.xx && xx_lt.lt && !xx_lt.nx && !xx_lt.gt);
        let incompatible = Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
        assert_eq!(parse_expire_condition(&opts(&["NX", "GT"])), incompatible);
        assert!(parse_expire_condition(&opts(&["GT", "LT"])).is_err());
        assert_eq!(
            parse_expire_condition(&opts(&["foo"])),
            Err(Reply::error("ERR Unsupported option foo"))
        );
    }
}

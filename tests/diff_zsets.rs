//! Sorted-set commands against a real `redis-server`: every command of the
//! family, its options, Redis's float formatting, wrong types, wrong
//! arity, bad numbers, binary members, expired keys, RESP3 shapes, and a
//! seeded random sequence compared after every command.
//!
//! Normalisation (see each test): `ZRANDMEMBER` picks are compared by
//! count and membership, and a `ZSCAN` of a big key by the set of members
//! and scores it returned over the whole scan, because Redis leaves both
//! unspecified. Everything else is compared byte for byte.

use std::collections::BTreeSet;
use std::thread::sleep;
use std::time::Duration;

use keyferry_testkit::{Differ, RawClient, SeededRng};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

/// Switches both connections to RESP3 (the `HELLO` replies differ in
/// server name, version and id, so only their success is compared).
fn resp3(d: &mut Differ) {
    d.both(|c| c.command(&[b"HELLO", b"3"]).unwrap()[0] == b'%');
}

#[test]
fn zadd_options_scores_and_errors() {
    let mut d = differ();
    d.check_all(&[
        &["ZADD", "z", "1", "a", "2", "b", "3", "a"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZADD", "z", "XX", "10", "new", "10", "b"],
        &["ZADD", "z", "NX", "20", "b", "20", "c"],
        &["ZADD", "z", "CH", "3", "a", "30", "b", "0", "d"],
        &["ZADD", "z", "GT", "CH", "1", "a", "40", "b"],
        &["ZADD", "z", "LT", "XX", "CH", "-1", "a", "-1", "zz"],
        &["ZADD", "z", "xx", "ch", "gt", "5", "a"],
        &["ZADD", "z", "INCR", "2.5", "a"],
        &["ZADD", "z", "INCR", "GT", "-100", "a"],
        &["ZADD", "z", "INCR", "XX", "1", "missing"],
        &["ZADD", "z", "INCR", "NX", "1", "a"],
        &["ZADD", "nokey", "XX", "1", "a"],
        &["EXISTS", "nokey"],
        &["ZADD", "nokey", "XX", "INCR", "1", "a"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZCARD", "z"],
        // Option conflicts, bad pairs and bad floats, in Redis's order.
        &["ZADD", "z", "NX", "XX", "1", "a"],
        &["ZADD", "z", "NX", "GT", "1", "a"],
        &["ZADD", "z", "GT", "LT", "1", "a"],
        &["ZADD", "z", "LT", "NX", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a", "2", "b"],
        &["ZADD", "z", "1", "a", "2"],
        &["ZADD", "z", "GT"],
        &["ZADD", "z", "foo", "1", "a"],
        &["ZADD", "z", "1", "a", "x", "b"],
        &["ZADD", "z", "nan", "a"],
        &["ZADD", "z", "1e400", "a"],
        &["ZADD", "z", " 1", "a"],
        &["ZCARD", "z"],
        &["ZADD", "z"],
        &["ZADD", "z", "1"],
        // Float parsing and Redis 7.0's %.17g formatting.
        &[
            "ZADD",
            "f",
            "1.1",
            "a",
            "0.1",
            "b",
            "1e300",
            "c",
            "inf",
            "d",
            "-inf",
            "e",
            "5e-324",
            "f",
            "123456789012345678",
            "g",
            "-0",
            "h",
            "+2",
            "i",
            ".5",
            "j",
            "1e-5",
            "k",
            "-Infinity",
            "l",
            "3.0",
            "m",
        ],
        &["ZRANGE", "f", "0", "-1", "WITHSCORES"],
        &["ZSCORE", "f", "a"],
        &["ZSCORE", "f", "h"],
        &["ZINCRBY", "f", "0.2", "b"],
        &["ZINCRBY", "f", "1", "d"],
        &["ZINCRBY", "f", "-inf", "d"],
        &["ZSCORE", "f", "d"],
        &["ZADD", "f", "INCR", "inf", "e"],
        &["ZADD", "f", "INCR", "inf", "e"],
        // inf + -inf is NaN: an error, and nothing changes (these run
        // without a savepoint, so nothing may be written before it).
        &["ZADD", "f", "INCR", "-inf", "e"],
        &["ZINCRBY", "f", "inf", "d"],
        &["ZSCORE", "f", "e"],
        &["ZSCORE", "f", "d"],
        &["ZCARD", "f"],
        &["ZINCRBY", "f", "x", "a"],
        &["ZINCRBY", "f", "1"],
        &["ZINCRBY", "newz", "7", "m"],
        &["ZSCORE", "newz", "m"],
        // Scores and removal.
        &["ZSCORE", "z", "nope"],
        &["ZSCORE", "nokey", "a"],
        &["ZMSCORE", "z", "a", "nope", "b"],
        &["ZMSCORE", "nokey", "a", "b"],
        &["ZMSCORE", "z"],
        &["ZREM", "z", "a", "nope", "a"],
        &["ZREM", "nokey", "a"],
        &["ZREM", "z"],
        &["ZREM", "z", "b", "c", "d", "zz", "new"],
        &["EXISTS", "z"],
        &["ZCARD", "z"],
        // Wrong types.
        &["SET", "str", "v"],
        &["ZADD", "str", "1", "a"],
        &["ZADD", "str", "NX", "XX", "1", "a"],
        &["ZADD", "str", "x", "a"],
        &["ZINCRBY", "str", "1", "a"],
        &["ZREM", "str", "a"],
        &["ZCARD", "str"],
        &["ZSCORE", "str", "a"],
        &["ZMSCORE", "str", "a"],
        &["ZRANK", "str", "a"],
        &["ZREVRANK", "str", "a"],
        &["GET", "str"],
    ]);
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let mut d = differ();
    d.check_all(&[
        &[
            "ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d", "4", "e", "5", "f", "-1", "neg",
        ],
        &[
            "ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "\u{ff}x",
        ],
    ]);
    for (min, max) in [
        ("0", "-1"),
        ("1", "3"),
        ("-3", "-1"),
        ("-100", "100"),
        ("5", "2"),
        ("7", "10"),
    ] {
        d.check_all(&[
            &["ZRANGE", "z", min, max],
            &["ZRANGE", "z", min, max, "WITHSCORES"],
            &["ZRANGE", "z", min, max, "REV", "WITHSCORES"],
            &["ZREVRANGE", "z", min, max, "WITHSCORES"],
            &["ZREMRANGEBYRANK", "nokey", min, max],
        ]);
    }
    for (min, max) in [
        ("-inf", "+inf"),
        ("(1", "3"),
        ("1", "(3"),
        ("(2", "(2"),
        ("2", "2"),
        ("3", "1"),
        ("-inf", "(-1"),
        ("(-inf", "inf"),
        ("1.5", "4.5"),
    ] {
        d.check_all(&[
            &["ZRANGEBYSCORE", "z", min, max],
            &[
                "ZRANGEBYSCORE",
                "z",
                min,
                max,
                "WITHSCORES",
                "LIMIT",
                "1",
                "2",
            ],
            &["ZREVRANGEBYSCORE", "z", max, min, "WITHSCORES"],
            &["ZREVRANGEBYSCORE", "z", max, min, "LIMIT", "0", "1"],
            &["ZRANGE", "z", min, max, "BYSCORE", "LIMIT", "1", "-1"],
            &[
                "ZRANGE",
                "z",
                max,
                min,
                "BYSCORE",
                "REV",
                "LIMIT",
                "0",
                "2",
                "WITHSCORES",
            ],
            &["ZCOUNT", "z", min, max],
        ]);
    }
    for (min, max) in [
        ("-", "+"),
        ("[b", "[d"),
        ("(b", "(d"),
        ("[b", "(b"),
        ("+", "-"),
        ("-", "[c"),
        ("(c", "+"),
        ("[d", "[a"),
        ("[", "(\u{ff}"),
    ] {
        d.check_all(&[
            &["ZRANGEBYLEX", "lex", min, max],
            &["ZRANGEBYLEX", "lex", min, max, "LIMIT", "1", "2"],
            &["ZREVRANGEBYLEX", "lex", max, min],
            &["ZREVRANGEBYLEX", "lex", max, min, "LIMIT", "0", "-5"],
            &["ZRANGE", "lex", min, max, "BYLEX"],
            &["ZRANGE", "lex", max, min, "BYLEX", "REV", "LIMIT", "1", "1"],
            &["ZLEXCOUNT", "lex", min, max],
        ]);
    }
    d.check_all(&[
        // Limits: a negative offset selects nothing, a negative count all.
        &["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "-1", "2"],
        &["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "2", "0"],
        &["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "100", "1"],
        &[
            "ZRANGEBYSCORE",
            "z",
            "-inf",
            "inf",
            "WITHSCORES",
            "WITHSCORES",
        ],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
        // Ranks.
        &["ZRANK", "z", "a"],
        &["ZRANK", "z", "c"],
        &["ZRANK", "z", "neg"],
        &["ZREVRANK", "z", "neg"],
        &["ZREVRANK", "z", "b"],
        &["ZRANK", "z", "nope"],
        &["ZRANK", "nokey", "a"],
        &["ZRANK", "z"],
        // Option and number errors.
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
        &["ZRANGE", "z", "0", "-1", "BYLEX", "WITHSCORES"],
        &["ZRANGE", "z", "0", "-1", "REV", "REV"],
        &["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"],
        &["ZRANGE", "z", "0", "-1", "BYSCORE", "BYSCORE"],
        &["ZRANGE", "z", "0", "-1", "foo"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0"],
        &["ZRANGE", "z", "a", "b", "BYSCORE"],
        &["ZRANGE", "z", "(1", "2", "BYLEX"],
        &["ZRANGE", "z", "0", "x"],
        &["ZRANGE", "z", "0"],
        &["ZREVRANGE", "z", "0", "-1", "REV"],
        &["ZRANGEBYSCORE", "z", "0", "1", "BYSCORE"],
        &["ZRANGEBYSCORE", "z", "0", "1", "LIMIT", "0", "x"],
        &["ZRANGEBYSCORE", "z", "x", "1"],
        &["ZRANGEBYSCORE", "z", "nan", "1"],
        &["ZRANGEBYLEX", "lex", "-", "+", "WITHSCORES"],
        &["ZRANGEBYLEX", "lex", "a", "+"],
        &["ZCOUNT", "z", "a", "1"],
        &["ZLEXCOUNT", "lex", "a", "+"],
        &["ZCOUNT", "nokey", "-inf", "inf"],
        &["ZLEXCOUNT", "nokey", "-", "+"],
        &["SET", "str", "v"],
        &["ZRANGE", "str", "0", "-1"],
        &["ZRANGE", "str", "0", "-1", "foo"],
        &["ZRANGEBYSCORE", "str", "x", "1"],
        &["ZCOUNT", "str", "0", "1"],
        &["ZLEXCOUNT", "str", "-", "+"],
        &["ZRANGE", "nokey", "0", "-1"],
        // ZRANGESTORE replaces the destination whatever it held.
        &["ZRANGESTORE", "dst", "z", "1", "3"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &[
            "ZRANGESTORE",
            "dst",
            "z",
            "(1",
            "4",
            "BYSCORE",
            "LIMIT",
            "1",
            "2",
        ],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "dst", "lex", "[e", "[b", "BYLEX", "REV"],
        &["ZRANGE", "dst", "0", "-1"],
        &["ZRANGESTORE", "str", "z", "0", "0"],
        &["TYPE", "str"],
        &["ZRANGESTORE", "dst", "z", "10", "20"],
        &["EXISTS", "dst"],
        &["ZRANGESTORE", "dst", "nokey", "0", "-1"],
        &["ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "dst", "z", "0", "-1", "LIMIT", "0", "1"],
        &["SET", "str2", "v"],
        &["ZRANGESTORE", "dst", "str2", "0", "-1"],
        &["ZRANGESTORE", "dst", "z", "0"],
    ]);
}

#[test]
fn removals_and_pops() {
    let mut d = differ();
    let fill: &[&str] = &[
        "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
    ];
    d.check_all(&[
        fill,
        &["ZREMRANGEBYRANK", "z", "-2", "-1"],
        &["ZREMRANGEBYRANK", "z", "5", "10"],
        &["ZREMRANGEBYSCORE", "z", "(1", "2"],
        &["ZREMRANGEBYLEX", "z", "[a", "[a"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZREMRANGEBYSCORE", "z", "-inf", "+inf"],
        &["EXISTS", "z"],
        &["ZREMRANGEBYRANK", "z", "x", "1"],
        &["ZREMRANGEBYSCORE", "z", "x", "1"],
        &["ZREMRANGEBYLEX", "z", "x", "+"],
        fill,
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z"],
        &["ZPOPMIN", "z", "2"],
        &["ZPOPMAX", "z", "0"],
        &["ZPOPMAX", "z", "10"],
        &["EXISTS", "z"],
        &["ZPOPMIN", "z"],
        &["ZPOPMIN", "z", "3"],
        &["ZPOPMIN", "z", "-1"],
        &["ZPOPMIN", "z", "x"],
        &["ZPOPMIN", "z", "1", "2"],
        fill,
        &["ZADD", "y", "9", "y1"],
        &["ZMPOP", "2", "nokey", "z", "MIN"],
        &["ZMPOP", "2", "z", "y", "MAX", "COUNT", "2"],
        &["ZMPOP", "1", "y", "max", "count", "10"],
        &["ZMPOP", "1", "y", "MIN"],
        &["ZMPOP", "0", "z", "MIN"],
        &["ZMPOP", "x", "z", "MIN"],
        &["ZMPOP", "-1", "z", "MIN"],
        &["ZMPOP", "3", "z", "MIN"],
        &["ZMPOP", "1", "z", "UP"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "0"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "x"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "1", "foo"],
        &["ZMPOP", "1", "z", "MIN", "foo", "1"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["SET", "str", "v"],
        &["ZPOPMIN", "str"],
        &["ZPOPMAX", "str", "x"],
        &["ZMPOP", "2", "nokey", "str", "MIN"],
        &["ZMPOP", "2", "z", "str", "MIN"],
        &["ZREMRANGEBYRANK", "str", "0", "1"],
        &["ZREMRANGEBYSCORE", "str", "x", "1"],
        &["ZREMRANGEBYLEX", "str", "-", "+"],
    ]);
}

#[test]
fn set_operations_with_sets_weights_and_aggregates() {
    let mut d = differ();
    d.check_all(&[
        &["ZADD", "x", "1", "a", "2", "b", "3", "c", "inf", "i"],
        &["ZADD", "y", "10", "b", "20", "c", "30", "d", "-inf", "i"],
        &["SADD", "s", "a", "d", "e"],
        &["SET", "str", "v"],
    ]);
    for op in ["ZUNION", "ZINTER", "ZDIFF"] {
        d.check_all(&[
            &[op, "2", "x", "y"],
            &[op, "2", "x", "y", "WITHSCORES"],
            &[op, "3", "x", "y", "s", "WITHSCORES"],
            &[op, "2", "y", "s", "WITHSCORES"],
            &[op, "1", "nokey", "WITHSCORES"],
            &[op, "2", "nokey", "x"],
            &[op, "2", "x", "nokey", "WITHSCORES"],
            &[op, "0", "x"],
            &[op, "-1", "x"],
            &[op, "x", "x"],
            &[op, "3", "x", "y"],
            &[op, "2", "x", "str"],
            &[op, "2", "x", "str", "foo"],
            &[op, "2", "x", "y", "foo"],
        ]);
    }
    for op in ["ZUNION", "ZINTER"] {
        d.check_all(&[
            &[op, "2", "x", "y", "WEIGHTS", "2", "0.5", "WITHSCORES"],
            &[op, "2", "x", "y", "WEIGHTS", "0", "1", "WITHSCORES"],
            &[op, "2", "x", "y", "AGGREGATE", "MIN", "WITHSCORES"],
            &[
                op,
                "2",
                "x",
                "y",
                "aggregate",
                "max",
                "weights",
                "1",
                "-1",
                "withscores",
            ],
            &[op, "2", "x", "s", "AGGREGATE", "SUM", "WITHSCORES"],
            &[op, "2", "x", "y", "WEIGHTS", "1"],
            &[op, "2", "x", "y", "WEIGHTS", "1", "x"],
            &[op, "2", "x", "y", "AGGREGATE", "avg"],
            &[op, "2", "x", "y", "AGGREGATE"],
        ]);
    }
    d.check_all(&[
        // Redis aggregates smallest input first: here inf + -inf (as 0),
        // then 5, where input order would give inf + 5 + -inf = 0.
        &["ZADD", "A", "5", "m", "1", "x", "2", "y"],
        &["ZADD", "B", "inf", "m"],
        &["ZADD", "C", "-inf", "m", "1", "z"],
        &["ZUNION", "3", "A", "B", "C", "WITHSCORES"],
        &["ZDIFF", "2", "x", "y", "WEIGHTS", "1", "1"],
        &["ZDIFF", "2", "x", "y", "AGGREGATE", "SUM"],
        // STORE forms replace the destination, which may be an input.
        &[
            "ZUNIONSTORE",
            "dst",
            "3",
            "x",
            "y",
            "s",
            "WEIGHTS",
            "1",
            "2",
            "3",
        ],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZINTERSTORE", "dst", "2", "dst", "x", "AGGREGATE", "MAX"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZDIFFSTORE", "dst", "2", "y", "x"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZINTERSTORE", "str", "2", "x", "y"],
        &["TYPE", "str"],
        &["ZINTERSTORE", "dst", "2", "x", "nokey"],
        &["EXISTS", "dst"],
        &["ZUNIONSTORE", "dst", "2", "x", "y", "WITHSCORES"],
        &["ZUNIONSTORE", "dst", "0", "x"],
        &["ZDIFFSTORE", "dst", "1", "x", "WEIGHTS", "1"],
        &["SET", "str", "v"],
        &["ZUNIONSTORE", "dst", "1", "str"],
        &["ZUNIONSTORE", "dst", "1"],
        // ZINTERCARD.
        &["ZINTERCARD", "2", "x", "y"],
        &["ZINTERCARD", "2", "x", "y", "LIMIT", "1"],
        &["ZINTERCARD", "2", "x", "y", "LIMIT", "0"],
        &["ZINTERCARD", "3", "x", "y", "s"],
        &["ZINTERCARD", "2", "x", "s"],
        &["ZINTERCARD", "1", "nokey"],
        &["ZINTERCARD", "2", "x", "y", "LIMIT", "-1"],
        &["ZINTERCARD", "2", "x", "y", "LIMIT", "x"],
        &["ZINTERCARD", "2", "x", "y", "WITHSCORES"],
        &["ZINTERCARD", "0", "x"],
        &["ZINTERCARD", "x", "x"],
        &["ZINTERCARD", "2", "x", "str"],
        &["ZINTERCARD", "1"],
    ]);
}

/// A parsed RESP2 reply: enough of the protocol for `ZRANDMEMBER` and
/// `ZSCAN` answers.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bulk(Vec<u8>),
    Array(Vec<Value>),
}

/// Parses one reply at the start of `raw`; returns it and the rest.
fn parse(raw: &[u8]) -> (Value, &[u8]) {
    let line_end = raw.iter().position(|&b| b == b'\n').expect("a full line");
    let n: usize = std::str::from_utf8(&raw[1..line_end - 1])
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("unexpected reply {}", raw.escape_ascii()));
    let rest = &raw[line_end + 1..];
    match raw[0] {
        b'$' => (Value::Bulk(rest[..n].to_vec()), &rest[n + 2..]),
        b'*' => {
            let mut items = Vec::new();
            let mut rest = rest;
            for _ in 0..n {
                let (item, after) = parse(rest);
                items.push(item);
                rest = after;
            }
            (Value::Array(items), rest)
        }
        _ => panic!("unexpected reply {}", raw.escape_ascii()),
    }
}

/// The bulk strings of an array reply.
fn bulks(raw: &[u8]) -> Vec<Vec<u8>> {
    match parse(raw).0 {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Bulk(b) => b,
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Every `[member, score]` pair a `ZSCAN` of `key` (with `options`)
/// returns over a whole scan, and how many calls it took.
fn full_scan(
    conn: &mut RawClient,
    key: &[u8],
    options: &[&[u8]],
) -> (BTreeSet<Vec<Vec<u8>>>, usize) {
    let mut cursor = b"0".to_vec();
    let mut seen = BTreeSet::new();
    for calls in 1.. {
        let mut argv: Vec<&[u8]> = vec![b"ZSCAN", key, &cursor];
        argv.extend_from_slice(options);
        let Value::Array(reply) = parse(&conn.command(&argv).unwrap()).0 else {
            panic!("ZSCAN answers an array");
        };
        let [Value::Bulk(next), Value::Array(page)] = &reply[..] else {
            panic!("ZSCAN answers a cursor and a page: {reply:?}");
        };
        let page: Vec<Vec<u8>> = page
            .iter()
            .map(|v| match v {
                Value::Bulk(b) => b.clone(),
                Value::Array(_) => panic!("a flat page"),
            })
            .collect();
        seen.extend(page.chunks(2).map(<[Vec<u8>]>::to_vec));
        if next == b"0" {
            return (seen, calls);
        }
        cursor = next.clone();
    }
    unreachable!("the loop only ends by returning")
}

#[test]
fn random_members_and_scans() {
    let mut d = differ();
    d.check_all(&[
        &["ZADD", "one", "1.5", "only"],
        &["ZRANDMEMBER", "one"],
        &["ZRANDMEMBER", "one", "1", "WITHSCORES"],
        &["ZRANDMEMBER", "one", "-3", "WITHSCORES"],
        &["ZRANDMEMBER", "one", "0"],
        &["ZADD", "z", "3", "c", "1", "a", "2", "b"],
        // Asking for every member returns them all, highest first.
        &["ZRANDMEMBER", "z", "3", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "100"],
        &["ZRANDMEMBER", "nokey"],
        &["ZRANDMEMBER", "nokey", "2"],
        &["ZRANDMEMBER", "nokey", "-2", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "x"],
        &["ZRANDMEMBER", "z", "1", "foo"],
        &["ZRANDMEMBER", "z", "1", "WITHSCORES", "foo"],
        &["ZRANDMEMBER", "z", "-9223372036854775808"],
        &["ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"],
        &["SET", "str", "v"],
        &["ZRANDMEMBER", "str"],
        &["ZRANDMEMBER", "str", "2"],
    ]);
    // Random picks: same count, every pick a member with its score.
    for count in ["2", "-5"] {
        let picks = d.both(|c| {
            let reply = c
                .command(&[b"ZRANDMEMBER", b"z", count.as_bytes()])
                .unwrap();
            bulks(&reply).len()
        });
        assert_eq!(
            picks,
            count.trim_start_matches('-').parse::<usize>().unwrap()
        );
    }
    let distinct = d.both(|c| {
        let reply = c.command(&[b"ZRANDMEMBER", b"z", b"2"]).unwrap();
        let picks: BTreeSet<Vec<u8>> = bulks(&reply).into_iter().collect();
        picks.len() == 2
            && picks
                .iter()
                .all(|m| [&b"a"[..], b"b", b"c"].contains(&m.as_slice()))
    });
    assert!(distinct);

    // Small keys scan in one call, in score order, exactly like Redis.
    d.check_all(&[
        &["ZSCAN", "z", "0"],
        &["ZSCAN", "z", "0", "COUNT", "1"],
        &["ZSCAN", "z", "0", "MATCH", "[ab]"],
        &["ZSCAN", "z", "0", "match", "*", "count", "5"],
        &["ZSCAN", "nokey", "0"],
        &["ZSCAN", "nokey", "0", "COUNT", "0"],
        &["ZSCAN", "z", "x"],
        &["ZSCAN", "z", "-1"],
        &["ZSCAN", "z", "0", "COUNT", "0"],
        &["ZSCAN", "z", "0", "COUNT", "x"],
        &["ZSCAN", "z", "0", "COUNT"],
        &["ZSCAN", "z", "0", "foo", "bar"],
        &["ZSCAN", "str", "0"],
        &["ZSCAN", "z"],
    ]);
    // A big key: different pages, same members and scores overall.
    let mut fill: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"big".to_vec()];
    for i in 0..300 {
        fill.push(format!("{}", f64::from(i) / 7.0).into_bytes());
        fill.push(format!("member:{i:04}").into_bytes());
    }
    let fill: Vec<&[u8]> = fill.iter().map(Vec::as_slice).collect();
    d.check(&fill);
    let all = d.both(|c| full_scan(c, b"big", &[b"COUNT", b"50"]).0);
    assert_eq!(all.len(), 300);
    let matched = d.both(|c| full_scan(c, b"big", &[b"MATCH", b"member:00*"]).0);
    assert_eq!(matched.len(), 100);
    let mut conn = RawClient::connect(d.keyferry().port()).unwrap();
    let (_, calls) = full_scan(&mut conn, b"big", &[b"COUNT", b"50"]);
    assert!(calls >= 6, "keyferry pages a big key ({calls} calls)");
}

#[test]
fn resp3_shapes() {
    let mut d = differ();
    resp3(&mut d);
    d.check_all(&[
        &["ZADD", "z", "1", "a", "2.5", "b", "3", "c"],
        &["ZADD", "z", "INCR", "1", "a"],
        &["ZADD", "z", "INCR", "NX", "1", "a"],
        &["ZINCRBY", "z", "0.1", "c"],
        &["ZSCORE", "z", "b"],
        &["ZSCORE", "z", "nope"],
        &["ZMSCORE", "z", "a", "nope"],
        &["ZRANK", "z", "nope"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "z", "0", "-1"],
        &["ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES"],
        &["ZREVRANGE", "z", "0", "0", "WITHSCORES"],
        &["ZUNION", "1", "z", "WITHSCORES"],
        &["ZDIFF", "1", "z", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "5", "WITHSCORES"],
        &["ZRANDMEMBER", "nokey"],
        &["ZSCAN", "z", "0"],
        &["ZPOPMIN", "z"],
        &["ZPOPMIN", "z", "1"],
        &["ZPOPMAX", "nokey"],
        &["ZMPOP", "1", "z", "MAX"],
        &["ZMPOP", "1", "nokey", "MAX"],
    ]);
}

#[test]
fn binary_members_and_expired_keys() {
    let mut d = differ();
    let key: &[u8] = b"k\x00\r\n\xff";
    let m1: &[u8] = b"\x00";
    let m2: &[u8] = b"\xff\xfe";
    let m3: &[u8] = b"a\r\nb";
    d.check(&[b"ZADD", key, b"1", m2, b"1", m1, b"1", m3, b"0", b""]);
    d.check(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]);
    d.check(&[b"ZRANGEBYLEX", key, b"(\x00", b"[\xff\xfe"]);
    d.check(&[b"ZRANK", key, m2]);
    d.check(&[b"ZSCORE", key, m3]);
    d.check(&[b"ZREM", key, m1, b""]);
    d.check(&[b"ZSCAN", key, b"0"]);

    d.check_all(&[
        &["ZADD", "gone", "1", "a", "2", "b"],
        &["ZADD", "gone2", "1", "a"],
        &["PEXPIRE", "gone", "1"],
        &["PEXPIRE", "gone2", "1"],
    ]);
    sleep(Duration::from_millis(20));
    d.check_all(&[
        &["ZCARD", "gone"],
        &["ZSCORE", "gone", "a"],
        &["ZRANGE", "gone", "0", "-1"],
        &["ZRANK", "gone", "a"],
        &["ZCOUNT", "gone", "-inf", "inf"],
        &["ZUNION", "2", "gone", "gone2", "WITHSCORES"],
        &["ZPOPMIN", "gone"],
        &["ZADD", "gone", "XX", "5", "a"],
        &["EXISTS", "gone"],
        &["ZADD", "gone", "5", "c"],
        &["ZRANGE", "gone", "0", "-1", "WITHSCORES"],
        &["TTL", "gone"],
        &["ZINCRBY", "gone2", "1", "b"],
        &["ZRANGE", "gone2", "0", "-1", "WITHSCORES"],
    ]);
}

#[test]
fn seeded_random_sequences_match_redis() {
    let mut d = differ();
    for seed in [2024, 1, 2] {
        random_sequence(&mut d, seed);
    }
}

/// Random sorted-set commands over a few keys, each compared with Redis.
fn random_sequence(d: &mut Differ, seed: u64) {
    let mut rng = SeededRng::new(seed);
    let keys = ["za", "zb", "zc"];
    let members = ["a", "b", "c", "d", "e", "f"];
    let scores = ["0", "1", "-1", "2.5", "1.1", "inf", "-inf", "(1", "3"];
    let plain_scores = ["0", "1", "-1", "2.5", "1.1", "inf", "-inf", "3", "10"];
    let lex = ["-", "+", "[a", "(b", "[c", "(d", "[f"];
    let ranks = ["0", "1", "-1", "-2", "2", "5", "-10"];
    for step in 0..600 {
        let key = rng.pick(&keys);
        let member = rng.pick(&members);
        let argv: Vec<&str> = match rng.below(25) {
            0..=3 => {
                let mut argv = vec!["ZADD", key];
                argv.extend((0..rng.below(3)).map(|_| rng.pick(&["NX", "XX", "GT", "LT", "CH"])));
                for _ in 0..=rng.below(3) {
                    argv.push(rng.pick(&plain_scores));
                    argv.push(rng.pick(&members));
                }
                argv
            }
            4 => vec!["ZINCRBY", key, rng.pick(&plain_scores), member],
            5 => vec!["ZREM", key, member, rng.pick(&members)],
            6 => vec![
                "ZRANGE",
                key,
                rng.pick(&ranks),
                rng.pick(&ranks),
                "WITHSCORES",
            ],
            7 => vec![
                "ZRANGEBYSCORE",
                key,
                rng.pick(&scores),
                rng.pick(&scores),
                "WITHSCORES",
            ],
            8 => vec![
                "ZREVRANGEBYLEX",
                key,
                rng.pick(&lex),
                rng.pick(&lex),
                "LIMIT",
                "0",
                "2",
            ],
            9 => vec!["ZRANK", key, member],
            10 => vec![
                rng.pick(&["ZPOPMIN", "ZPOPMAX"]),
                key,
                rng.pick(&["0", "1", "2"]),
            ],
            11 => vec!["ZREMRANGEBYRANK", key, rng.pick(&ranks), rng.pick(&ranks)],
            12 => vec![
                "ZREMRANGEBYSCORE",
                key,
                rng.pick(&scores),
                rng.pick(&scores),
            ],
            13 => vec![
                rng.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]),
                rng.pick(&keys),
                "2",
                key,
                rng.pick(&keys),
            ],
            14 => vec![
                "ZRANGESTORE",
                rng.pick(&keys),
                key,
                rng.pick(&ranks),
                rng.pick(&ranks),
            ],
            15 => vec!["ZLEXCOUNT", key, rng.pick(&lex), rng.pick(&lex)],
            16 => vec!["ZREMRANGEBYLEX", key, rng.pick(&lex), rng.pick(&lex)],
            17 => vec![
                "ZRANGE",
                key,
                rng.pick(&lex),
                rng.pick(&lex),
                "BYLEX",
                rng.pick(&["REV", "LIMIT"]),
                "1",
                "2",
            ],
            18 => vec!["ZADD", key, "INCR", rng.pick(&plain_scores), member],
            19 => vec![
                "ZMPOP",
                "2",
                key,
                rng.pick(&keys),
                rng.pick(&["MIN", "MAX"]),
                "COUNT",
                "2",
            ],
            20 => vec!["ZINTERCARD", "2", key, rng.pick(&keys), "LIMIT", "1"],
            // Inputs repeat and weights include infinities, so the order
            // in which Redis aggregates shows.
            21 => vec![
                "ZUNION",
                "3",
                key,
                rng.pick(&keys),
                rng.pick(&keys),
                "WEIGHTS",
                rng.pick(&plain_scores),
                "1",
                rng.pick(&plain_scores),
                "AGGREGATE",
                rng.pick(&["SUM", "MIN", "MAX"]),
                "WITHSCORES",
            ],
            22 => vec!["ZRANDMEMBER", key, "10", "WITHSCORES"],
            23 => vec!["ZMSCORE", key, member, "zz"],
            _ => vec!["ZCOUNT", key, rng.pick(&scores), rng.pick(&scores)],
        };
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        d.check(&argv);
        if step % 50 == 0 {
            for key in keys {
                d.check(&[b"ZRANGE", key.as_bytes(), b"0", b"-1", b"WITHSCORES"]);
            }
        }
    }
}

#[test]
fn big_sorted_sets_rank_and_range_like_redis() {
    // Past 128 members Redis switches to its skiplist encoding.
    let mut d = differ();
    let pairs: Vec<(String, String)> = (0..400)
        .map(|i| (format!("{}", (i * 37) % 101), format!("m{i:03}")))
        .collect();
    let mut add: Vec<&str> = vec!["ZADD", "big"];
    for (score, member) in &pairs {
        add.push(score);
        add.push(member);
    }
    d.check_all(&[
        &add,
        &["ZCARD", "big"],
        &["ZRANK", "big", "m200"],
        &["ZREVRANK", "big", "m017"],
        &["ZRANGE", "big", "150", "160", "WITHSCORES"],
        &["ZRANGE", "big", "-5", "-1", "REV"],
        &["ZRANGEBYSCORE", "big", "(50", "60", "LIMIT", "3", "5"],
        &[
            "ZREVRANGEBYSCORE",
            "big",
            "+inf",
            "90",
            "WITHSCORES",
            "LIMIT",
            "0",
            "4",
        ],
        &["ZCOUNT", "big", "10", "(20"],
        &["ZREMRANGEBYRANK", "big", "100", "199"],
        &["ZREMRANGEBYSCORE", "big", "95", "+inf"],
        &["ZCARD", "big"],
        &["ZPOPMIN", "big", "3"],
        &["ZRANGE", "big", "0", "-1", "WITHSCORES"],
        &[
            "ZRANGESTORE",
            "part",
            "big",
            "60",
            "(30",
            "BYSCORE",
            "REV",
            "LIMIT",
            "2",
            "50",
        ],
        &["ZRANGE", "part", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "part", "big", "10", "-10"],
        &["ZCARD", "part"],
        &["ZRANGESTORE", "big", "big", "0", "99"],
        &["ZCARD", "big"],
        &["ZUNIONSTORE", "copy", "1", "big", "WEIGHTS", "0.5"],
        &["ZRANGE", "copy", "0", "9", "WITHSCORES"],
    ]);
}

/// Float arguments as C's `strtod`/`strtold` read them (Redis 7.0 passes
/// them to glibc): hexadecimal floats, `inf`/`infinity` in any case,
/// signs, a bare point or exponent, spaces, NUL bytes, overflow and
/// underflow (to subnormals, and past them), ties — for every command
/// family that takes one: `ZADD`, `ZINCRBY`, `WEIGHTS`, score ranges
/// (which are more lenient: spaces before, out-of-range values, nothing
/// at all), `INCRBYFLOAT` and `HINCRBYFLOAT` (80-bit `long double`).
#[test]
fn float_arguments_follow_strtod_like_redis() {
    let mut d = differ();
    d.check_all(&[&["ZADD", "zr", "0", "a", "0.25", "b", "1", "c", "16", "d"]]);
    let literals: &[&[u8]] = &[
        b"0x10",
        b"0X1P-2",
        b"0x.8",
        b"0x1.",
        b"0x1.8p1",
        b"-0x10",
        b"+0x10",
        b"0x1P+3",
        b"0xAbC.dEfp-4",
        b"0x",
        b"0x1p",
        b"0xg",
        b"0x1p99999",
        b"0x1p-99999",
        b"0x1p1023",
        b"0x1p1024",
        b"0x1.fffffffffffffp1023",
        b"0x1.fffffffffffff8p1023",
        b"0x1.00000000000008p0",
        b"0x1.00000000000018p0",
        b"0x1.000000000000081p0",
        b"0x1p-1022",
        b"0x1p-1074",
        b"0x1p-1075",
        b"0x1.8p-1075",
        b"0x1.8p-1074",
        b"0x1p-16445",
        b"0x1p-16446",
        b" 1",
        b"1 ",
        b"\t1",
        b" ",
        b"",
        b".",
        b"nan",
        b"NaN",
        b"-nan",
        b"nan(1)",
        b"inf",
        b"+inf",
        b"-inf",
        b"Infinity",
        b"-INFINITY",
        b"infin",
        b"1e",
        b"1e+",
        b"1e-5",
        b"1E5",
        b".5",
        b"5.",
        b"+.5",
        b"-0",
        b"1_0",
        b"1e400",
        b"1e-400",
        b"1e-310",
        b"4.9e-324",
        b"2.4e-324",
        b"1.7976931348623157e308",
        b"1.7976931348623159e308",
        b"0.1",
        b"1\x002",
        b"1\x00",
        b"\x00",
    ];
    for &v in literals {
        let exclusive = [b"(", v].concat();
        let script: &[&[&[u8]]] = &[
            &[b"DEL", b"z", b"f", b"h", b"out"],
            &[b"ZADD", b"z", v, b"m"],
            &[b"ZSCORE", b"z", b"m"],
            &[b"ZADD", b"z", b"INCR", v, b"m"],
            &[b"ZINCRBY", b"z", v, b"n"],
            &[b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"],
            &[b"ZCOUNT", b"zr", v, b"+inf"],
            &[b"ZCOUNT", b"zr", &exclusive, b"+inf"],
            &[b"ZRANGEBYSCORE", b"zr", b"-inf", v],
            &[b"ZRANGEBYSCORE", b"zr", b"-inf", &exclusive],
            &[b"ZUNIONSTORE", b"out", b"1", b"zr", b"WEIGHTS", v],
            &[b"ZRANGE", b"out", b"0", b"-1", b"WITHSCORES"],
            &[b"INCRBYFLOAT", b"f", v],
            &[b"INCRBYFLOAT", b"f", v],
            &[b"HINCRBYFLOAT", b"h", b"x", v],
        ];
        for argv in script {
            d.check(argv);
        }
    }
}

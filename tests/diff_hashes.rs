//! Differential tests of the hash commands: the same commands go to a real
//! `redis-server` and to `keyferry serve`, and the replies must be byte for
//! byte identical — errors, nulls, RESP3 types and float formatting
//! included.
//!
//! Where Redis leaves the reply's order unspecified the comparison is
//! normalised, and says so:
//! - `HKEYS`/`HVALS` use `check_sorted` (same header, same elements in
//!   any order);
//! - `HGETALL` and `HSCAN` are compared as sets of field/value *pairs*
//!   (see [`pairs`]), so a value cannot be credited to the wrong field;
//!   `HSCAN` is driven to the end on each server, since cursors are
//!   opaque and differ;
//! - `HRANDFIELD` is random on both servers: its replies are checked for
//!   their properties (length, distinctness, membership, pairing, reply
//!   type) on each server separately, with the same verdict expected.

use std::collections::BTreeSet;

use keyferry_testkit::resp::{Resp, as_refs, cmd, pairs, parse};
use keyferry_testkit::{Differ, RawClient};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

#[test]
fn set_get_and_delete_fields() {
    let mut d = differ();
    d.check_all(&[
        &["HSET", "h", "a", "1", "b", "2"],
        &["HSET", "h", "a", "x", "c", "3"],
        &["HSET", "h", "d", "1", "d", "2"],
        &["HGET", "h", "d"],
        &["HMSET", "h", "e", "5"],
        &["HSETNX", "h", "e", "6"],
        &["HSETNX", "h", "f", "6"],
        &["HSETNX", "new", "f", "6"],
        &["HGET", "h", "a"],
        &["HGET", "h", "nope"],
        &["HGET", "missing", "a"],
        &["HMGET", "h", "a", "nope", "b"],
        &["HMGET", "missing", "a", "b"],
        &["HLEN", "h"],
        &["HLEN", "missing"],
        &["HSTRLEN", "h", "a"],
        &["HSTRLEN", "h", "nope"],
        &["HSTRLEN", "missing", "a"],
        &["HEXISTS", "h", "a"],
        &["HEXISTS", "h", "nope"],
        &["HEXISTS", "missing", "a"],
        &["HDEL", "h", "a", "nope", "a"],
        &["HDEL", "missing", "a"],
        &["HLEN", "h"],
        &["HDEL", "h", "b", "c", "d", "e", "f"],
        &["EXISTS", "h"],
        &["HLEN", "h"],
        &["HKEYS", "missing"],
        &["HVALS", "missing"],
        &["HGETALL", "missing"],
    ]);
}

#[test]
fn whole_hash_reads_in_any_order() {
    let mut d = differ();
    d.check(&[
        b"HSET",
        b"h",
        b"z",
        b"1",
        b"a",
        b"2",
        b"m",
        b"3",
        b"\xff\x00",
        b"\r\n",
    ]);
    d.check_sorted(&[b"HKEYS", b"h"]);
    d.check_sorted(&[b"HVALS", b"h"]);
    d.both(|c| pairs(&c.command(&[b"HGETALL", b"h"]).unwrap()));
    d.both(|c| {
        c.command(&[b"HELLO", b"3"]).unwrap();
        let all = pairs(&c.command(&[b"HGETALL", b"h"]).unwrap());
        let empty = c.command(&[b"HGETALL", b"missing"]).unwrap();
        c.command(&[b"HELLO", b"2"]).unwrap();
        (all, empty)
    });
}

#[test]
fn binary_fields_and_values_round_trip() {
    let mut d = differ();
    let field: &[u8] = b"f\x00\r\n\xff";
    let value: &[u8] = b"\x00\x01\xfe\r\n";
    d.check(&[b"HSET", b"\xffkey\x00", field, value]);
    d.check(&[b"HGET", b"\xffkey\x00", field]);
    d.check(&[b"HSTRLEN", b"\xffkey\x00", field]);
    d.check(&[b"HEXISTS", b"\xffkey\x00", field]);
    d.check(&[b"HMGET", b"\xffkey\x00", field, b"f"]);
    d.check(&[b"HKEYS", b"\xffkey\x00"]);
}

#[test]
fn increments_follow_redis_integer_and_float_rules() {
    let mut d = differ();
    d.check_all(&[
        &["HINCRBY", "h", "n", "5"],
        &["HINCRBY", "h", "n", "-12"],
        &["HINCRBY", "h", "n", "x"],
        &["HINCRBY", "h", "n", "1.5"],
        &["HINCRBY", "h", "n", " 1"],
        &[
            "HSET",
            "h",
            "big",
            "9223372036854775807",
            "small",
            "-9223372036854775808",
        ],
        &["HINCRBY", "h", "big", "1"],
        &["HINCRBY", "h", "big", "0"],
        &["HINCRBY", "h", "small", "-1"],
        &["HINCRBY", "h", "small", "9223372036854775807"],
        &[
            "HSET", "h", "text", "abc", "spaced", " 12", "float", "1.5", "zero", "-0",
        ],
        &["HINCRBY", "h", "text", "1"],
        &["HINCRBY", "h", "spaced", "1"],
        &["HINCRBY", "h", "float", "1"],
        &["HINCRBY", "h", "zero", "1"],
        &["HINCRBYFLOAT", "h", "f", "10.5"],
        &["HINCRBYFLOAT", "h", "f", "0.1"],
        &["HINCRBYFLOAT", "h2", "f", "0.1"],
        &["HINCRBYFLOAT", "h2", "f", "0.2"],
        &["HINCRBYFLOAT", "h", "f", "-10.6"],
        &["HINCRBYFLOAT", "h", "e", "1e20"],
        &["HINCRBYFLOAT", "h", "e", "0.1"],
        &["HINCRBYFLOAT", "h", "e", "5.0e3"],
        &["HINCRBYFLOAT", "h", "x", "1.5e-5"],
        &["HINCRBYFLOAT", "h", "x", "0x10"],
        &["HINCRBYFLOAT", "h", "huge", "1e308"],
        &["HINCRBYFLOAT", "h", "huge", "1e308"],
        &["HINCRBYFLOAT", "h", "f", "inf"],
        &["HINCRBYFLOAT", "h", "f", "-inf"],
        &["HINCRBYFLOAT", "h", "f", "nan"],
        &["HINCRBYFLOAT", "h", "f", "abc"],
        &["HINCRBYFLOAT", "h", "f", " 1"],
        &["HINCRBYFLOAT", "h", "f", ""],
        &["HINCRBYFLOAT", "h", "text", "1"],
        &["HINCRBYFLOAT", "h", "float", "1"],
        &["HINCRBYFLOAT", "h", "big", "1"],
        &["HINCRBYFLOAT", "h", "zero", "0"],
        &["HSET", "h", "inf", "inf"],
        &["HINCRBYFLOAT", "h", "inf", "1"],
        &["HGETALL", "h2"],
    ]);
}

#[test]
fn wrong_types_arity_and_syntax() {
    let mut d = differ();
    d.check_all(&[
        &["SET", "s", "v"],
        &["HSET", "s", "f", "v"],
        &["HMSET", "s", "f", "v"],
        &["HSETNX", "s", "f", "v"],
        &["HGET", "s", "f"],
        &["HMGET", "s", "f"],
        &["HDEL", "s", "f"],
        &["HLEN", "s"],
        &["HSTRLEN", "s", "f"],
        &["HEXISTS", "s", "f"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HGETALL", "s"],
        &["HINCRBY", "s", "f", "1"],
        &["HINCRBY", "s", "f", "x"],
        &["HINCRBYFLOAT", "s", "f", "1"],
        &["HINCRBYFLOAT", "s", "f", "x"],
        &["HINCRBYFLOAT", "s", "f", "inf"],
        &["HRANDFIELD", "s"],
        &["HRANDFIELD", "s", "0"],
        &["HRANDFIELD", "s", "x"],
        &["HSCAN", "s", "0"],
        &["HSCAN", "s", "x"],
        &["HSCAN", "s", "0", "BAD"],
        &["HSET", "h"],
        &["HSET", "h", "f"],
        &["HSET", "h", "f", "v", "g"],
        &["HMSET", "h", "f", "v", "g"],
        &["HSETNX", "h", "f"],
        &["HGET", "h"],
        &["HMGET", "h"],
        &["HDEL", "h"],
        &["HLEN"],
        &["HSTRLEN", "h"],
        &["HEXISTS", "h"],
        &["HKEYS"],
        &["HVALS", "h", "x"],
        &["HGETALL"],
        &["HINCRBY", "h", "f"],
        &["HINCRBYFLOAT", "h", "f"],
        &["HRANDFIELD"],
        &["HSCAN", "h"],
        &["EXISTS", "h"],
    ]);
}

#[test]
fn expired_hashes_are_absent() {
    let mut d = differ();
    d.check_all(&[&["HSET", "h", "f", "v", "g", "w"], &["PEXPIRE", "h", "1"]]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    d.check_all(&[
        &["HGET", "h", "f"],
        &["HLEN", "h"],
        &["HEXISTS", "h", "f"],
        &["HGETALL", "h"],
        &["HRANDFIELD", "h"],
        &["HRANDFIELD", "h", "3"],
        &["HSCAN", "h", "0"],
        &["HSETNX", "h", "g", "new"],
        &["HGETALL", "h"],
        &["HINCRBY", "h", "f", "2"],
        &["HLEN", "h"],
        &["TTL", "h"],
    ]);
}

#[test]
fn random_fields_have_redis_properties() {
    let mut d = differ();
    d.check(&[
        b"HSET", b"h", b"a", b"1", b"b", b"2", b"c", b"3", b"d", b"4", b"e", b"5",
    ]);
    d.check_all(&[
        &["HRANDFIELD", "missing"],
        &["HRANDFIELD", "missing", "3"],
        &["HRANDFIELD", "missing", "-3", "WITHVALUES"],
        &["HRANDFIELD", "h", "0"],
        &["HRANDFIELD", "h", "0", "WITHVALUES"],
        &["HRANDFIELD", "h", "1", "nope"],
        &["HRANDFIELD", "missing", "1", "nope"],
        &["HRANDFIELD", "h", "1", "WITHVALUES", "x"],
        &["HRANDFIELD", "h", "x"],
        &["HRANDFIELD", "h", "-9223372036854775808"],
        &["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"],
        &["HRANDFIELD", "h", "4611686018427387904", "withvalues"],
    ]);
    let fields: BTreeSet<Resp> = "abcde".bytes().map(|f| Resp::Bulk(vec![f])).collect();
    let value_of = |f: &Resp| match f {
        Resp::Bulk(b) => Resp::Bulk(vec![b[0] - b'a' + b'1']),
        other => panic!("{other:?}"),
    };
    // Properties of each reply, the same on both servers.
    d.both(|c| {
        let one = parse(&cmd(c, &["HRANDFIELD", "h"]));
        assert!(fields.contains(&one), "{one:?}");
        let mut verdicts = Vec::new();
        for (count, distinct, len) in [
            ("3", true, 3),
            ("5", true, 5),
            ("9", true, 5),
            ("-9", false, 9),
            ("-2", false, 2),
        ] {
            let Resp::Agg(kind, items) = parse(&cmd(c, &["HRANDFIELD", "h", count])) else {
                panic!("not an array")
            };
            let unique: BTreeSet<_> = items.iter().cloned().collect();
            assert!(unique.is_subset(&fields));
            verdicts.push((kind, items.len(), !distinct || unique.len() == len));
            let Resp::Agg(kind, items) = parse(&cmd(c, &["HRANDFIELD", "h", count, "WITHVALUES"]))
            else {
                panic!("not an array")
            };
            let paired = items.chunks_exact(2).all(|p| value_of(&p[0]) == p[1]);
            verdicts.push((kind, items.len() / 2, paired));
        }
        cmd(c, &["HELLO", "3"]);
        // RESP3 nests each field/value pair, whichever path Redis takes.
        for count in ["-4", "1", "3", "10"] {
            let Resp::Agg(kind, items) =
                parse(&cmd(c, &["HRANDFIELD", "h", count, "WITHVALUES"]))
            else {
                panic!("not an array")
            };
            let nested = items.iter().all(|p| {
                matches!(p, Resp::Agg(b'*', pair) if pair.len() == 2 && value_of(&pair[0]) == pair[1])
            });
            verdicts.push((kind, items.len(), nested));
        }
        cmd(c, &["HELLO", "2"]);
        verdicts
    });
}

/// Every field/value pair an `HSCAN` with `options` returns, driven to
/// cursor 0, and whether every page respected the reply shape.
fn full_scan(c: &mut RawClient, key: &str, options: &[&str]) -> BTreeSet<(Resp, Resp)> {
    let mut cursor = "0".to_owned();
    let mut seen = BTreeSet::new();
    for _ in 0..10_000 {
        let mut argv = vec!["HSCAN", key, &cursor];
        argv.extend_from_slice(options);
        let Resp::Agg(b'*', page) = parse(&cmd(c, &argv)) else {
            panic!("HSCAN reply is not an array")
        };
        let [Resp::Bulk(next), Resp::Agg(b'*', items)] = page.as_slice() else {
            panic!("HSCAN reply is not [cursor, items]: {page:?}")
        };
        seen.extend(items.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())));
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            return seen;
        }
    }
    panic!("HSCAN never finished")
}

#[test]
fn hscan_returns_every_field_once_a_scan_completes() {
    let mut d = differ();
    let mut small: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"small".to_vec()];
    let mut big: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big".to_vec()];
    for i in 0..300 {
        let (f, v) = (format!("field:{i}"), format!("v{i}"));
        if i < 20 {
            small.extend([f.clone().into_bytes(), v.clone().into_bytes()]);
        }
        big.extend([f.into_bytes(), v.into_bytes()]);
    }
    d.check(&as_refs(&small));
    d.check(&as_refs(&big));
    d.both(|c| full_scan(c, "small", &[]));
    d.both(|c| full_scan(c, "big", &[]));
    d.both(|c| full_scan(c, "big", &["COUNT", "7"]));
    d.both(|c| full_scan(c, "big", &["MATCH", "field:1*", "COUNT", "50"]));
    d.both(|c| full_scan(c, "big", &["match", "*", "count", "1000"]));
    d.check_all(&[
        &["HSCAN", "missing", "0"],
        &["HSCAN", "missing", "0", "BAD"],
        &["HSCAN", "big", "x"],
        &["HSCAN", "big", "-"],
        &["HSCAN", "big", " 1"],
        &["HSCAN", "big", "18446744073709551616"],
        &["HSCAN", "big", "0", "COUNT"],
        &["HSCAN", "big", "0", "COUNT", "0"],
        &["HSCAN", "big", "0", "COUNT", "-1"],
        &["HSCAN", "big", "0", "COUNT", "x"],
        &["HSCAN", "big", "0", "MATCH"],
        &["HSCAN", "big", "0", "NOVALUES"],
        &["HSCAN", "small", "0", "MATCH", "field:1?"],
        &["HSCAN", "small", "", "MATCH", "nothing*"],
    ]);
}

//! Differential tests of the set commands: the same commands go to a real
//! `redis-server` and to `keyferry serve`, and the replies must be byte for
//! byte identical — errors, nulls and RESP3 types included.
//!
//! Where Redis leaves the reply's order unspecified the comparison is
//! normalised, and says so:
//! - `SMEMBERS`, `SINTER`, `SUNION`, `SDIFF` (and `SPOP` with a count of
//!   at least the set's size) use `check_sorted`: same header (so the same
//!   length and RESP type), same members in any order;
//! - `SSCAN` is driven to cursor 0 on each server and the members seen are
//!   compared as sets, since cursors are opaque and differ;
//! - `SRANDMEMBER` and `SPOP` are random on both servers: each reply is
//!   checked for its properties (length, distinctness, membership, type,
//!   what is left in the set), with the same verdict expected from both.

use std::collections::BTreeSet;

use keyferry_testkit::resp::{Resp, as_refs, cmd, parse};
use keyferry_testkit::{Differ, RawClient};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

fn members(names: &str) -> BTreeSet<Resp> {
    names.bytes().map(|m| Resp::Bulk(vec![m])).collect()
}

fn sorted_checks(d: &mut Differ, script: &[&[&str]]) {
    for argv in script {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        d.check_sorted(&argv);
    }
}

#[test]
fn add_remove_and_membership() {
    let mut d = differ();
    d.check_all(&[
        &["SADD", "s", "a", "b", "c", "a"],
        &["SADD", "s", "c", "d"],
        &["SCARD", "s"],
        &["SCARD", "missing"],
        &["SISMEMBER", "s", "a"],
        &["SISMEMBER", "s", "z"],
        &["SISMEMBER", "missing", "a"],
        &["SMISMEMBER", "s", "a", "z", "d"],
        &["SMISMEMBER", "missing", "a", "b"],
        &["SREM", "s", "a", "z", "a"],
        &["SREM", "missing", "a"],
        &["SCARD", "s"],
        &["SREM", "s", "b", "c", "d"],
        &["EXISTS", "s"],
        &["SMEMBERS", "missing"],
        &["SADD", "n", "1", "2", "3", "10", "-5"],
        &["SISMEMBER", "n", "10"],
        &["SISMEMBER", "n", "010"],
    ]);
    sorted_checks(&mut d, &[&["SMEMBERS", "n"]]);
    d.check(&[b"SADD", b"bin\x00", b"\x00\r\n", b"\xff", b""]);
    d.check(&[b"SISMEMBER", b"bin\x00", b"\x00\r\n"]);
    d.check(&[b"SISMEMBER", b"bin\x00", b""]);
    d.check(&[b"SMISMEMBER", b"bin\x00", b"\xff", b"\xfe"]);
    d.check_sorted(&[b"SMEMBERS", b"bin\x00"]);
}

#[test]
fn algebra_and_stores() {
    let mut d = differ();
    d.check_all(&[
        &["SADD", "a", "1", "2", "3", "4", "x"],
        &["SADD", "b", "2", "3", "5", "x", "y"],
        &["SADD", "c", "3", "9", "x"],
        &["SET", "str", "v"],
        &["SINTER", "a", "missing"],
        &["SINTER", "missing", "str"],
        &["SUNION", "a", "str"],
        &["SDIFF", "missing", "str"],
        &["SDIFF", "missing", "a"],
        &["SDIFF", "a", "a"],
        &["SINTERCARD", "2", "a", "b"],
        &["SINTERCARD", "3", "a", "b", "c"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
        &["SINTERCARD", "2", "a", "b", "limit", "0"],
        &["SINTERCARD", "2", "a", "missing"],
        &["SINTERCARD", "1", "str"],
        &["SINTERCARD", "0", "a"],
        &["SINTERCARD", "-1", "a"],
        &["SINTERCARD", "x", "a"],
        &["SINTERCARD", "3", "a", "b"],
        &["SINTERCARD", "2", "a", "b", "LIMIT"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "-1"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "x"],
        &["SINTERCARD", "2", "a", "b", "FOO", "1"],
        &["SINTERCARD", "1", "a", "b"],
        &["SINTERSTORE", "dst", "a", "b"],
        &["SCARD", "dst"],
        &["SUNIONSTORE", "dst", "a", "b", "missing"],
        &["SCARD", "dst"],
        &["SDIFFSTORE", "dst", "a", "b", "c"],
        &["SCARD", "dst"],
        &["SINTERSTORE", "dst", "a", "missing"],
        &["EXISTS", "dst"],
        &["SINTERSTORE", "dst", "a", "str"],
        &["SET", "dst", "old"],
        &["EXPIRE", "dst", "100"],
        &["SUNIONSTORE", "dst", "c"],
        &["TYPE", "dst"],
        &["TTL", "dst"],
        &["SINTERSTORE", "a", "a", "b"],
        &["SCARD", "a"],
        &["SDIFFSTORE", "b", "b", "b"],
        &["EXISTS", "b"],
    ]);
    sorted_checks(
        &mut d,
        &[
            &["SINTER", "c", "a"],
            &["SINTER", "c"],
            &["SUNION", "a", "missing", "c"],
            &["SDIFF", "c", "a", "missing"],
            &["SMEMBERS", "a"],
            &["SMEMBERS", "dst"],
        ],
    );
    d.both(|c| {
        cmd(c, &["HELLO", "3"]);
        let replies: Vec<Resp> = [
            &["SINTER", "c", "c"][..],
            &["SUNION", "c", "a"],
            &["SDIFF", "c", "a"],
            &["SMEMBERS", "c"],
            &["SMEMBERS", "missing"],
            &["SINTER", "missing", "c"],
        ]
        .iter()
        .map(|argv| match parse(&cmd(c, argv)) {
            Resp::Agg(kind, mut items) => {
                items.sort();
                Resp::Agg(kind, items)
            }
            other => other,
        })
        .collect();
        cmd(c, &["HELLO", "2"]);
        replies
    });
}

#[test]
fn smove_between_sets() {
    let mut d = differ();
    d.check_all(&[
        &["SADD", "src", "a", "b"],
        &["SET", "str", "v"],
        &["SMOVE", "missing", "str", "a"],
        &["SMOVE", "src", "str", "a"],
        &["SMOVE", "str", "src", "a"],
        &["SMOVE", "src", "dst", "z"],
        &["SMOVE", "src", "src", "a"],
        &["SMOVE", "src", "src", "z"],
        &["SMOVE", "src", "dst", "a"],
        &["SMOVE", "src", "dst", "b"],
        &["EXISTS", "src"],
        &["SCARD", "dst"],
        &["SADD", "src", "a"],
        &["SMOVE", "src", "dst", "a"],
        &["SCARD", "dst"],
        &["EXISTS", "src"],
    ]);
}

#[test]
fn random_members_and_pops_have_redis_properties() {
    let mut d = differ();
    d.check_all(&[
        &["SADD", "s", "a", "b", "c", "d", "e"],
        &["SRANDMEMBER", "missing"],
        &["SRANDMEMBER", "missing", "3"],
        &["SRANDMEMBER", "missing", "-3"],
        &["SRANDMEMBER", "s", "0"],
        &["SRANDMEMBER", "s", "x"],
        &["SRANDMEMBER", "missing", "x"],
        &["SRANDMEMBER", "s", "1", "2"],
        &["SRANDMEMBER", "s", "-9223372036854775808"],
        &["SPOP", "missing"],
        &["SPOP", "missing", "3"],
        &["SPOP", "missing", "-1"],
        &["SPOP", "s", "-1"],
        &["SPOP", "s", "x"],
        &["SPOP", "s", "0"],
        &["SPOP", "s", "1", "2"],
        &["SCARD", "s"],
    ]);
    let all = members("abcde");
    d.both(|c| {
        let mut verdicts = Vec::new();
        let one = parse(&cmd(c, &["SRANDMEMBER", "s"]));
        verdicts.push(all.contains(&one));
        for (count, distinct, len) in [
            ("3", true, 3),
            ("5", true, 5),
            ("9", true, 5),
            ("-9", false, 9),
            ("-1", false, 1),
        ] {
            let Resp::Agg(kind, items) = parse(&cmd(c, &["SRANDMEMBER", "s", count])) else {
                panic!("not an array")
            };
            let unique: BTreeSet<_> = items.iter().cloned().collect();
            verdicts.push(kind == b'*' && items.len() == len && unique.is_subset(&all));
            verdicts.push(!distinct || unique.len() == len);
        }
        // SPOP: the popped members are gone, the rest stay.
        let popped = parse(&cmd(c, &["SPOP", "s"]));
        let Resp::Agg(_, two) = parse(&cmd(c, &["SPOP", "s", "2"])) else {
            panic!("not an array")
        };
        let Resp::Agg(_, left) = parse(&cmd(c, &["SMEMBERS", "s"])) else {
            panic!("not an array")
        };
        let mut seen: BTreeSet<Resp> = left.iter().cloned().collect();
        verdicts.push(two.len() == 2 && left.len() == 2);
        seen.insert(popped);
        seen.extend(two);
        verdicts.push(seen == all);
        verdicts.push(parse(&cmd(c, &["SCARD", "s"])) == Resp::Int(2));
        verdicts
    });
    // Popping at least what is left returns it all and deletes the key.
    d.check_all(&[&["DEL", "s"], &["SADD", "s", "p", "q", "r"]]);
    d.check_sorted(&[b"SPOP", b"s", b"10"]);
    d.check(&[b"EXISTS", b"s"]);
    d.check_all(&[&["SADD", "one", "x"], &["SPOP", "one"], &["EXISTS", "one"]]);
    d.both(|c| {
        cmd(c, &["SADD", "r3", "a", "b", "c"]);
        cmd(c, &["HELLO", "3"]);
        let shapes: Vec<(u8, usize)> = [
            &["SPOP", "r3", "1"][..],
            &["SRANDMEMBER", "r3", "2"],
            &["SPOP", "r3", "5"],
            &["SPOP", "r3", "1"],
        ]
        .iter()
        .map(|argv| match parse(&cmd(c, argv)) {
            Resp::Agg(kind, items) => (kind, items.len()),
            other => panic!("{other:?}"),
        })
        .collect();
        cmd(c, &["HELLO", "2"]);
        shapes
    });
}

#[test]
fn wrong_types_arity_and_expiry() {
    let mut d = differ();
    d.check_all(&[
        &["SET", "str", "v"],
        &["SADD", "str", "a"],
        &["SREM", "str", "a"],
        &["SCARD", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SMEMBERS", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "0"],
        &["SPOP", "str", "x"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "0"],
        &["SSCAN", "str", "0"],
        &["SSCAN", "str", "x"],
        &["SADD", "s"],
        &["SREM", "s"],
        &["SCARD"],
        &["SISMEMBER", "s"],
        &["SMISMEMBER", "s"],
        &["SMEMBERS"],
        &["SPOP"],
        &["SRANDMEMBER"],
        &["SMOVE", "a", "b"],
        &["SINTER"],
        &["SINTERCARD", "1"],
        &["SUNION"],
        &["SDIFF"],
        &["SINTERSTORE", "d"],
        &["SUNIONSTORE", "d"],
        &["SDIFFSTORE", "d"],
        &["SSCAN", "s"],
        &["SADD", "e", "a", "b"],
        &["PEXPIRE", "e", "1"],
    ]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    d.check_all(&[
        &["SCARD", "e"],
        &["SISMEMBER", "e", "a"],
        &["SMEMBERS", "e"],
        &["SRANDMEMBER", "e"],
        &["SPOP", "e"],
        &["SINTER", "e"],
        &["SUNIONSTORE", "d", "e"],
        &["SMOVE", "e", "d", "a"],
        &["SSCAN", "e", "0"],
        &["SADD", "e", "z"],
        &["SMEMBERS", "e"],
        &["TTL", "e"],
    ]);
}

/// Every member an `SSCAN` with `options` returns, driven to cursor 0.
fn full_scan(c: &mut RawClient, key: &str, options: &[&str]) -> BTreeSet<Resp> {
    let mut cursor = "0".to_owned();
    let mut seen = BTreeSet::new();
    for _ in 0..10_000 {
        let mut argv = vec!["SSCAN", key, &cursor];
        argv.extend_from_slice(options);
        let Resp::Agg(b'*', page) = parse(&cmd(c, &argv)) else {
            panic!("SSCAN reply is not an array")
        };
        let [Resp::Bulk(next), Resp::Agg(b'*', items)] = page.as_slice() else {
            panic!("SSCAN reply is not [cursor, items]: {page:?}")
        };
        seen.extend(items.iter().cloned());
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            return seen;
        }
    }
    panic!("SSCAN never finished")
}

#[test]
fn sscan_returns_every_member_once_a_scan_completes() {
    let mut d = differ();
    let mut big: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"big".to_vec()];
    big.extend((0..500).map(|i| format!("m:{i}").into_bytes()));
    d.check(&as_refs(&big));
    d.check_all(&[&["SADD", "ints", "3", "1", "2"]]);
    // An all-integer set is one page, cursor 0, on both servers.
    d.check(&[b"SSCAN", b"ints", b"0"]);
    d.both(|c| full_scan(c, "big", &[]));
    d.both(|c| full_scan(c, "big", &["COUNT", "3"]));
    d.both(|c| full_scan(c, "big", &["MATCH", "m:4?", "COUNT", "100"]));
    d.check_all(&[
        &["SSCAN", "missing", "0"],
        &["SSCAN", "missing", "0", "BAD"],
        &["SSCAN", "big", "x"],
        &["SSCAN", "big", "0", "COUNT", "0"],
        &["SSCAN", "big", "0", "COUNT", "x"],
        &["SSCAN", "big", "0", "MATCH"],
        &["SSCAN", "ints", "0", "MATCH", "[12]"],
    ]);
}

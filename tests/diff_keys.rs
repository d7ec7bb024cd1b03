//! Differential tests of the generic key commands against a real
//! `redis-server`: replies must be byte-identical, errors included.
//!
//! Normalisations, where Redis leaves a reply unspecified: `KEYS` is
//! compared as a set (`Differ::check_sorted`); a `SCAN` is run to its
//! end on each server and the keys it returned compared as a sorted list
//! (cursors differ by design); `RANDOMKEY` only where one key can answer;
//! `OBJECT IDLETIME` right after a write (0 on both).

use std::thread::sleep;
use std::time::Duration;

use keyferry_testkit::{Differ, RawClient};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

/// Fills the current database with one key of each type, plus a string
/// with a TTL.
fn populate(d: &mut Differ) {
    d.check_all(&[
        &["SET", "str", "v"],
        &["SET", "ttl", "v", "EX", "1000"],
        &["RPUSH", "list", "a", "b", "c"],
        &["HSET", "hash", "f", "v", "g", "w"],
        &["SADD", "set", "1", "2", "3"],
        &["ZADD", "zset", "1", "a", "2", "b"],
    ]);
}

/// Every bulk string of a reply made of arrays and bulk strings, in
/// order (array headers are skipped).
fn bulk_strings(mut reply: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    while let Some(end) = reply.windows(2).position(|w| w == b"\r\n") {
        let (line, rest) = (&reply[..end], &reply[end + 2..]);
        reply = rest;
        if let Some(len) = line.strip_prefix(b"$") {
            let len: usize = std::str::from_utf8(len).unwrap().parse().unwrap();
            items.push(reply[..len].to_vec());
            reply = &reply[len + 2..];
        }
    }
    items
}

/// Runs a whole `SCAN` with `options` and returns the keys it found,
/// sorted, and how many calls it took.
fn full_scan(conn: &mut RawClient, options: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
    let mut cursor = b"0".to_vec();
    let mut keys = Vec::new();
    for calls in 1..10_000 {
        let mut argv: Vec<&[u8]> = vec![b"SCAN", &cursor];
        argv.extend_from_slice(options);
        let mut items = bulk_strings(&conn.command(&argv).unwrap()).into_iter();
        cursor = items.next().expect("a cursor");
        keys.extend(items);
        if cursor == b"0" {
            keys.sort();
            return (keys, calls);
        }
    }
    panic!("SCAN does not terminate");
}

#[test]
fn del_unlink_exists_touch_type() {
    let mut d = differ();
    populate(&mut d);
    d.check_all(&[
        &["TYPE", "str"],
        &["TYPE", "list"],
        &["TYPE", "hash"],
        &["TYPE", "set"],
        &["TYPE", "zset"],
        &["TYPE", "none"],
        &["EXISTS", "str", "str", "list", "none"],
        &["TOUCH", "str", "hash", "none"],
        &["DEL", "str", "str", "none"],
        &["UNLINK", "list", "hash"],
        &["EXISTS", "str", "list", "hash"],
        &["DEL", "set", "zset", "ttl"],
        &["DBSIZE"],
        &["DEL"],
        &["EXISTS"],
        &["TYPE"],
        &["TYPE", "a", "b"],
    ]);
    d.check(&[b"SET", b"\x00\xff\r\n", b"v"]);
    d.check(&[b"EXISTS", b"\x00\xff\r\n"]);
    d.check(&[b"DEL", b"\x00\xff\r\n"]);
}

#[test]
fn keys_and_scan_match_patterns_and_types() {
    let mut d = differ();
    populate(&mut d);
    d.check_all(&[
        &[
            "MSET", "user:1", "a", "user:2", "b", "user:10", "c", "item:1", "d",
        ],
        &[
            "MSET", "h*llo", "1", "hallo", "2", "hxllo", "3", "[", "4", "a\\b", "5",
        ],
        &["SET", "", "empty key"],
    ]);
    for pattern in [
        "*",
        "**",
        "user:*",
        "user:?",
        "*:1",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-z]llo",
        "h\\*llo",
        "[[",
        "[",
        "a\\\\b",
        "nomatch*",
        "",
        "?",
        "*1*",
    ] {
        d.check_sorted(&[b"KEYS", pattern.as_bytes()]);
    }
    for options in [
        &[][..],
        &[&b"MATCH"[..], b"user:*"],
        &[b"COUNT", b"1"],
        &[b"COUNT", b"1000"],
        &[b"MATCH", b"*", b"COUNT", b"3"],
        &[b"TYPE", b"string"],
        &[b"TYPE", b"HASH"],
        &[b"TYPE", b"zset", b"MATCH", b"z*"],
        &[b"TYPE", b"nosuchtype"],
        &[b"match", b"h?llo", b"count", b"2", b"type", b"string"],
    ] {
        d.both(|conn| full_scan(conn, options).0);
    }
    d.check_all(&[
        &["SCAN", "abc"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "COUNT", "-1"],
        &["SCAN", "0", "COUNT", "abc"],
        &["SCAN", "0", "MATCH"],
        &["SCAN", "0", "TYPE"],
        &["SCAN", "0", "FOO", "bar"],
        &["SCAN"],
        &["KEYS"],
        &["KEYS", "a", "b"],
    ]);
}

#[test]
fn scan_pages_a_big_keyspace_without_repeats() {
    let mut d = differ();
    let keys: Vec<String> = (0..500).map(|i| format!("key:{i}")).collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for key in &keys {
        mset.push(key.as_bytes());
        mset.push(b"v");
    }
    d.check(&mset);
    let (found, calls) = d.both(|conn| {
        let (found, calls) = full_scan(conn, &[b"COUNT", b"50"]);
        (found, calls > 1)
    });
    assert_eq!(found.len(), 500);
    assert!(calls, "a COUNT of 50 pages through 500 keys");
}

#[test]
fn randomkey_and_dbsize() {
    let mut d = differ();
    d.check_all(&[
        &["RANDOMKEY"],
        &["DBSIZE"],
        &["SET", "only", "v"],
        &["RANDOMKEY"],
        &["DBSIZE"],
        &["RANDOMKEY", "extra"],
        &["DBSIZE", "extra"],
    ]);
}

#[test]
fn rename_and_renamenx_keep_values_and_ttls() {
    let mut d = differ();
    populate(&mut d);
    d.check_all(&[
        &["RENAME", "ttl", "ttl2"],
        &["TTL", "ttl2"],
        &["EXISTS", "ttl"],
        &["RENAME", "list", "list2"],
        &["LRANGE", "list2", "0", "-1"],
        &["RENAME", "hash", "str"],
        &["TYPE", "str"],
        &["HGET", "str", "f"],
        &["RENAME", "str", "str"],
        &["RENAME", "none", "x"],
        &["RENAME", "none", "none"],
        &["RENAMENX", "set", "zset"],
        &["RENAMENX", "set", "set2"],
        &["SMEMBERS", "set2"],
        &["RENAMENX", "set2", "set2"],
        &["RENAMENX", "none", "x"],
        &["RENAME", "zset"],
    ]);
}

#[test]
fn copy_and_move_between_databases() {
    let mut d = differ();
    populate(&mut d);
    d.check_all(&[
        &["COPY", "list", "list2"],
        &["LRANGE", "list2", "0", "-1"],
        &["COPY", "list", "list2"],
        &["COPY", "hash", "list2", "REPLACE"],
        &["TYPE", "list2"],
        &["COPY", "ttl", "ttl2"],
        &["TTL", "ttl2"],
        &["COPY", "zset", "zset", "DB", "3"],
        &["COPY", "zset", "zset"],
        &["COPY", "zset", "zset", "DB", "0"],
        &["COPY", "zset", "z", "DB", "16"],
        &["COPY", "zset", "z", "DB", "abc"],
        &["COPY", "zset", "z", "DB"],
        &["COPY", "zset", "z", "FOO"],
        &["COPY", "none", "z"],
        &["MOVE", "set", "1"],
        &["MOVE", "set", "1"],
        &["EXISTS", "set"],
        &["SET", "str2", "x"],
        &["MOVE", "str2", "3"],
        &["MOVE", "str", "0"],
        &["MOVE", "str", "16"],
        &["MOVE", "str", "-1"],
        &["MOVE", "str", "x"],
        &["MOVE", "none", "2"],
        &["SELECT", "3"],
        &["ZRANGE", "zset", "0", "-1", "WITHSCORES"],
        &["GET", "str2"],
        &["SELECT", "1"],
        &["SMEMBERS", "set"],
        &["MOVE", "set", "3"],
        &["SELECT", "3"],
        &["DBSIZE"],
    ]);
}

#[test]
fn expire_family_with_conditions() {
    let mut d = differ();
    populate(&mut d);
    d.check_all(&[
        &["TTL", "str"],
        &["PTTL", "str"],
        &["EXPIRETIME", "str"],
        &["PEXPIRETIME", "str"],
        &["TTL", "none"],
        &["PTTL", "none"],
        &["EXPIRETIME", "none"],
        &["PEXPIRETIME", "none"],
        &["EXPIRE", "str", "100"],
        &["TTL", "str"],
        &["EXPIRE", "str", "50", "GT"],
        &["EXPIRE", "str", "200", "GT"],
        &["TTL", "str"],
        &["EXPIRE", "str", "300", "LT"],
        &["EXPIRE", "str", "100", "LT"],
        &["TTL", "str"],
        &["EXPIRE", "str", "100", "NX"],
        &["EXPIRE", "str", "150", "XX"],
        &["TTL", "str"],
        &["EXPIRE", "list", "100", "XX"],
        &["EXPIRE", "list", "100", "GT"],
        &["EXPIRE", "list", "100", "XX", "LT"],
        &["EXPIRE", "list", "100", "LT"],
        &["TTL", "list"],
        &["EXPIRE", "hash", "100", "NX"],
        &["PEXPIRE", "set", "100000"],
        &["TTL", "set"],
        &["EXPIREAT", "zset", "32503680000"],
        &["EXPIRETIME", "zset"],
        &["PEXPIREAT", "zset", "32503680000123"],
        &["PEXPIRETIME", "zset"],
        &["EXPIRETIME", "zset"],
        &["PERSIST", "zset"],
        &["PERSIST", "zset"],
        &["PERSIST", "none"],
        &["TTL", "zset"],
        &["EXPIRE", "none", "100"],
        &["EXPIRE", "str", "100", "NX", "XX"],
        &["EXPIRE", "str", "100", "GT", "LT"],
        &["EXPIRE", "str", "100", "FOO"],
        &["EXPIRE", "str", "abc"],
        &["EXPIRE", "str", "9223372036854775807"],
        &["EXPIRE", "str", "-9223372036854775808"],
        &["PEXPIRE", "str", "9223372036854775807"],
        &["EXPIREAT", "str", "9223372036854775807"],
        &["EXPIRE", "str", "0"],
        &["EXISTS", "str"],
        &["EXPIRE", "hash", "-1"],
        &["EXISTS", "hash"],
        &["PEXPIREAT", "list", "1"],
        &["EXISTS", "list"],
        &["EXPIRE", "str"],
        &["TTL"],
    ]);
}

#[test]
fn expired_keys_are_absent() {
    let mut d = differ();
    d.check_all(&[
        &["SET", "a", "1", "PX", "1"],
        &["RPUSH", "b", "x"],
        &["PEXPIRE", "b", "1"],
        &["SET", "c", "3", "PX", "1"],
        &["SET", "d", "4"],
    ]);
    sleep(Duration::from_millis(20));
    d.check_all(&[
        &["EXISTS", "a", "b", "c"],
        &["TYPE", "b"],
        &["TTL", "a"],
        &["RENAME", "a", "x"],
        &["COPY", "b", "y"],
        &["MOVE", "c", "1"],
        &["EXPIRE", "c", "100"],
        &["PERSIST", "c"],
        &["KEYS", "*"],
        &["DBSIZE"],
        &["RENAME", "d", "c"],
        &["GET", "c"],
        &["TTL", "c"],
        &["OBJECT", "ENCODING", "a"],
    ]);
}

#[test]
fn object_subcommands() {
    let mut d = differ();
    populate(&mut d);
    d.check_all(&[
        &["SET", "int", "12345"],
        &["SET", "small", "42"],
        &["SET", "embstr", "hello"],
        &[
            "SET",
            "raw",
            "01234567890123456789012345678901234567890123456789",
        ],
        &["SADD", "strings", "a", "b"],
        &[
            "HSET",
            "bighash",
            "f",
            "01234567890123456789012345678901234567890123456789012345678901234567890",
        ],
        &["OBJECT", "ENCODING", "int"],
        &["OBJECT", "ENCODING", "embstr"],
        &["OBJECT", "ENCODING", "raw"],
        &["OBJECT", "ENCODING", "list"],
        &["OBJECT", "ENCODING", "hash"],
        &["OBJECT", "ENCODING", "bighash"],
        &["OBJECT", "ENCODING", "set"],
        &["OBJECT", "ENCODING", "strings"],
        &["OBJECT", "ENCODING", "zset"],
        &["OBJECT", "encoding", "none"],
        &["OBJECT", "REFCOUNT", "small"],
        &["OBJECT", "REFCOUNT", "int"],
        &["OBJECT", "REFCOUNT", "list"],
        &["OBJECT", "REFCOUNT", "none"],
        &["OBJECT", "IDLETIME", "none"],
        &["OBJECT", "IDLETIME", "list"],
        &["OBJECT", "FREQ", "list"],
        &["OBJECT", "FREQ", "none"],
        &["OBJECT", "HELP"],
        &["object", "help"],
        &["OBJECT", "HELP", "x"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "ENCODING", "a", "b"],
        &["OBJECT", "FOO", "x"],
        &["object", "foo"],
        &["OBJECT"],
    ]);
}

#[test]
fn flushdb_flushall_and_swapdb() {
    let mut d = differ();
    populate(&mut d);
    d.check_all(&[
        &["SELECT", "1"],
        &["SET", "one", "1"],
        &["SET", "str", "db1"],
        &["SWAPDB", "0", "1"],
        &["DBSIZE"],
        &["GET", "str"],
        &["SELECT", "0"],
        &["DBSIZE"],
        &["GET", "str"],
        &["GET", "one"],
        &["SWAPDB", "0", "0"],
        &["SWAPDB", "0", "16"],
        &["SWAPDB", "a", "0"],
        &["SWAPDB", "0", "b"],
        &["SWAPDB", "-1", "0"],
        &["SWAPDB", "0"],
        &["FLUSHDB", "FOO"],
        &["FLUSHDB", "ASYNC", "SYNC"],
        &["FLUSHDB"],
        &["DBSIZE"],
        &["SELECT", "1"],
        &["DBSIZE"],
        &["FLUSHDB", "async"],
        &["DBSIZE"],
        &["SET", "again", "x"],
        &["SELECT", "2"],
        &["SET", "two", "x"],
        &["FLUSHALL", "sync"],
        &["DBSIZE"],
        &["SELECT", "1"],
        &["DBSIZE"],
        &["FLUSHALL", "bad"],
        &["FLUSHALL"],
    ]);
}

#[test]
fn big_collections_are_deleted_renamed_and_flushed() {
    let mut d = differ();
    // More elements than the store frees inline, so the lazy path is
    // exercised through the server.
    let members: Vec<String> = (0..2500).map(|i| format!("m{i}")).collect();
    let mut sadd: Vec<&[u8]> = vec![b"SADD", b"big"];
    sadd.extend(members.iter().map(|m| m.as_bytes()));
    d.check(&sadd);
    d.check_all(&[
        &["SCARD", "big"],
        &["RENAME", "big", "moved"],
        &["SCARD", "moved"],
        &["COPY", "moved", "copy"],
        &["SCARD", "copy"],
        &["SET", "copy", "overwritten"],
        &["GET", "copy"],
        &["DEL", "moved"],
        &["EXISTS", "moved"],
    ]);
    d.check(&sadd);
    d.check_all(&[&["FLUSHDB"], &["DBSIZE"], &["SCARD", "big"]]);
}

#[test]
fn resp3_replies() {
    let mut d = differ();
    // HELLO's own reply names each server, so only the switch is shared.
    d.both(|conn| {
        conn.command(&[b"HELLO", b"3"]).unwrap();
    });
    d.check_all(&[
        &["SET", "k", "v"],
        &["SCAN", "0", "MATCH", "nomatch"],
        &["RANDOMKEY"],
        &["TYPE", "k"],
        &["TTL", "k"],
        &["OBJECT", "ENCODING", "missing"],
        &["OBJECT", "HELP"],
        &["FLUSHDB"],
        &["RANDOMKEY"],
    ]);
}

#[test]
fn seeded_random_mix_of_key_and_string_commands() {
    let mut d = differ();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let keys = ["a", "b", "c", "\x00k\r\n"];
    for _ in 0..1500 {
        let k = keys[next(4) as usize];
        let k2 = keys[next(4) as usize];
        let n = next(50).to_string();
        let m = (next(40) as i64 - 20).to_string();
        let argv: Vec<&str> = match next(34) {
            0 => vec!["SET", k, &n],
            1 => vec!["SET", k, &n, "NX", "GET"],
            2 => vec!["SET", k, &n, "XX", "EX", "1000"],
            3 => vec!["SET", k, &n, "KEEPTTL", "GET"],
            4 => vec!["GET", k],
            5 => vec!["APPEND", k, &n],
            6 => vec!["INCRBY", k, &m],
            7 => vec!["INCRBYFLOAT", k, "1.5"],
            8 => vec!["SETRANGE", k, &n, "xy"],
            9 => vec!["GETRANGE", k, &m, &n],
            10 => vec!["STRLEN", k],
            11 => vec!["GETDEL", k],
            12 => vec!["GETEX", k, "PERSIST"],
            13 => vec!["MSETNX", k, "1", k2, "2"],
            14 => vec!["MGET", k, k2],
            15 => vec!["LCS", k, k2, "IDX", "WITHMATCHLEN"],
            16 => vec!["DEL", k, k2],
            17 => vec!["EXISTS", k, k2, k],
            18 => vec!["TYPE", k],
            19 => vec!["RENAME", k, k2],
            20 => vec!["RENAMENX", k, k2],
            21 => vec!["COPY", k, k2, "REPLACE"],
            22 => vec!["MOVE", k, "1"],
            23 => vec!["SWAPDB", "0", "1"],
            24 => vec![
                "EXPIRE",
                k,
                "1000",
                ["NX", "XX", "GT", "LT"][next(4) as usize],
            ],
            25 => vec!["PERSIST", k],
            26 => vec!["TTL", k],
            27 => vec!["RPUSH", k, &n],
            28 => vec!["SADD", k, &n, &m],
            29 => vec!["HSET", k, &n, &m],
            30 => vec!["ZADD", k, &m, &n],
            31 => vec!["DBSIZE"],
            // Not OBJECT ENCODING: after APPEND or SETRANGE Redis says
            // `raw` where keyferry, which keeps no encodings, says
            // `embstr` (OBJECT values are plausible, not tracked).
            32 => vec!["STRLEN", k2],
            _ => vec!["SELECT", ["0", "1"][next(2) as usize]],
        };
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        if argv[0] == b"TTL" {
            // The two servers are asked a moment apart (longer on a loaded
            // CI machine), so the rounded seconds may differ by one.
            d.check_ttl(&argv, 1);
        } else {
            d.check(&argv);
        }
        if next(20) == 0 {
            d.check_sorted(&[b"KEYS", b"*"]);
        }
    }
}

/// `SCAN`, `HSCAN`, `SSCAN` and `ZSCAN` cursors are read as C's `strtoul`
/// over the whole argument (nothing, a sign, wrapping negatives, no
/// spaces, no overflow), and their options alike (`TYPE` only for
/// `SCAN`). Valid cursors give pages that Redis leaves unspecified, so
/// each reply is reduced to its error, or "valid".
#[test]
fn scan_cursors_and_options_parse_alike_in_every_scan() {
    let mut d = differ();
    d.check_all(&[
        &["SET", "s", "v"],
        &["HSET", "h", "f", "v"],
        &["SADD", "set", "m"],
        &["ZADD", "z", "1", "m"],
    ]);
    let cursors: &[&[u8]] = &[
        b"",
        b"0",
        b"+0",
        b"-0",
        b"7",
        b"-1",
        b" 0",
        b"0 ",
        b"\t0",
        b"abc",
        b"1x",
        b"1.0",
        b"-",
        b"+",
        b"0x10",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-18446744073709551615",
        b"-18446744073709551616",
        b"99999999999999999999999",
    ];
    let options: &[&[&[u8]]] = &[
        &[],
        &[b"COUNT", b"5"],
        &[b"count", b"5", b"match", b"*"],
        &[b"MATCH", b"m*", b"COUNT", b"100"],
        &[b"COUNT", b"0"],
        &[b"COUNT", b"-1"],
        &[b"COUNT", b"x"],
        &[b"COUNT", b"9223372036854775808"],
        &[b"COUNT"],
        &[b"MATCH"],
        &[b"COUNT", b"5", b"COUNT"],
        &[b"TYPE", b"string"],
        &[b"type", b"hash", b"COUNT", b"0"],
        &[b"BOGUS", b"1"],
    ];
    let scans: &[&[&[u8]]] = &[
        &[b"SCAN"],
        &[b"HSCAN", b"h"],
        &[b"SSCAN", b"set"],
        &[b"ZSCAN", b"z"],
        &[b"HSCAN", b"missing"],
        &[b"ZSCAN", b"s"],
    ];
    for scan in scans {
        for cursor in cursors {
            for option in options {
                let argv: Vec<&[u8]> = scan
                    .iter()
                    .copied()
                    .chain([*cursor])
                    .chain(option.iter().copied())
                    .collect();
                let shown = String::from_utf8_lossy(&argv.join(&b' ')).into_owned();
                d.both(|c| {
                    let reply = c.command(&argv).unwrap();
                    let verdict = if reply.starts_with(b"-") {
                        String::from_utf8_lossy(&reply).into_owned()
                    } else {
                        "valid".to_owned()
                    };
                    (shown.clone(), verdict)
                });
            }
        }
    }
}

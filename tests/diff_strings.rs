//! Differential tests of the string commands: each script runs against a
//! real `redis-server` and `keyferry serve`, and every reply must be
//! byte-identical, errors included.
//!
//! Replies that depend on the clock are only compared where both servers
//! must agree: `TTL` in whole seconds right after setting a long expiry,
//! never `PTTL` of a running clock.

use std::thread::sleep;
use std::time::Duration;

use keyferry_testkit::Differ;

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

#[test]
fn get_and_set_with_binary_keys_values_and_wrong_types() {
    let mut d = differ();
    d.check_all(&[
        &["GET", "missing"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["SET", "k", ""],
        &["GET", "k"],
        &["STRLEN", "k"],
        &["RPUSH", "list", "a"],
        &["GET", "list"],
        &["SET", "list", "now a string"],
        &["GET", "list"],
        &["TYPE", "list"],
        &["GET"],
        &["GET", "a", "b"],
        &["SET", "k"],
    ]);
    d.check(&[b"SET", b"\x00bin\r\nkey\xff", b"\x00val\r\n\xfe"]);
    d.check(&[b"GET", b"\x00bin\r\nkey\xff"]);
    d.check(&[b"STRLEN", b"\x00bin\r\nkey\xff"]);
}

#[test]
fn set_options_and_their_errors() {
    let mut d = differ();
    d.check_all(&[
        &["SET", "k", "1", "NX"],
        &["SET", "k", "2", "NX"],
        &["GET", "k"],
        &["SET", "k", "3", "XX"],
        &["SET", "nokey", "3", "XX"],
        &["EXISTS", "nokey"],
        &["SET", "k", "4", "GET"],
        &["SET", "k", "5", "nx", "get"],
        &["SET", "fresh", "5", "NX", "GET"],
        &["SET", "other", "5", "XX", "GET"],
        &["SET", "k", "6", "EX", "100"],
        &["TTL", "k"],
        &["SET", "k", "7", "KEEPTTL"],
        &["TTL", "k"],
        &["SET", "k", "8"],
        &["TTL", "k"],
        &["SET", "k", "9", "PX", "100000"],
        &["TTL", "k"],
        &["SET", "k", "9", "EXAT", "32503680000"],
        &["EXPIRETIME", "k"],
        &["SET", "k", "9", "PXAT", "32503680000123"],
        &["PEXPIRETIME", "k"],
        &["SET", "k", "10", "EX", "10", "EX", "20"],
        &["TTL", "k"],
        &["SET", "k", "v", "NX", "XX"],
        &["SET", "k", "v", "XX", "NX"],
        &["SET", "k", "v", "EX", "10", "PX", "100"],
        &["SET", "k", "v", "EX", "10", "KEEPTTL"],
        &["SET", "k", "v", "KEEPTTL", "EX", "10"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "PERSIST"],
        &["SET", "k", "v", "FOO"],
        &["SET", "k", "v", "EX", "0"],
        &["SET", "k", "v", "EX", "-5"],
        &["SET", "k", "v", "EX", "abc"],
        &["SET", "k", "v", "EX", "9223372036854775807"],
        &["SET", "k", "v", "PX", "9223372036854775807"],
        &["SET", "k", "v", "EXAT", "9223372036854775"],
        &["TTL", "k"],
        &["SET", "k", "v", "EXAT", "1"],
        &["GET", "k"],
        &["SET", "k", "v", "PXAT", "1", "GET"],
        &["RPUSH", "list", "a"],
        &["SET", "list", "v", "GET"],
        &["LLEN", "list"],
        &["SET", "list", "v", "NX"],
        &["SET", "list", "v", "KEEPTTL"],
        &["GET", "list"],
    ]);
}

#[test]
fn setnx_setex_getset_getdel_getex() {
    let mut d = differ();
    d.check_all(&[
        &["SETNX", "k", "1"],
        &["SETNX", "k", "2"],
        &["GET", "k"],
        &["SETEX", "k", "100", "v"],
        &["TTL", "k"],
        &["SETEX", "k", "0", "v"],
        &["SETEX", "k", "x", "v"],
        &["PSETEX", "k", "100000", "w"],
        &["TTL", "k"],
        &["PSETEX", "k", "-1", "w"],
        &["GETSET", "k", "new"],
        &["TTL", "k"],
        &["GETSET", "nokey", "x"],
        &["GETDEL", "nokey2"],
        &["GETDEL", "k"],
        &["EXISTS", "k"],
        &["SET", "k", "v"],
        &["GETEX", "k"],
        &["GETEX", "k", "EX", "100"],
        &["TTL", "k"],
        &["GETEX", "k", "PERSIST"],
        &["TTL", "k"],
        &["GETEX", "k", "PXAT", "32503680000123"],
        &["PEXPIRETIME", "k"],
        &["GETEX", "k", "EXAT", "1"],
        &["EXISTS", "k"],
        &["GETEX", "nokey", "EX", "10"],
        &["GETEX", "k", "EX", "0"],
        &["GETEX", "k", "PERSIST", "EX", "10"],
        &["GETEX", "k", "KEEPTTL"],
        &["GETEX", "k", "GET"],
        &["RPUSH", "list", "a"],
        &["GETSET", "list", "v"],
        &["GETDEL", "list"],
        &["GETEX", "list"],
        &["SETNX", "list", "v"],
        &["SETEX", "list", "10", "v"],
        &["GET", "list"],
    ]);
}

#[test]
fn mget_mset_msetnx() {
    let mut d = differ();
    d.check_all(&[
        &["MSET", "a", "1", "b", "2"],
        &["MGET", "a", "b", "c"],
        &["RPUSH", "list", "x"],
        &["MGET", "a", "list", "a"],
        &["MSET", "a"],
        &["MSET", "a", "1", "b"],
        &["MSETNX", "a", "9", "c", "3"],
        &["MGET", "a", "c"],
        &["MSETNX", "c", "3", "d", "4"],
        &["MGET", "c", "d"],
        &["MSETNX", "x", "1", "x", "2"],
        &["GET", "x"],
        &["MSETNX", "y"],
        &["MSET", "list", "now", "a", "x"],
        &["MGET", "list", "a"],
    ]);
}

#[test]
fn integer_counters() {
    let mut d = differ();
    d.check_all(&[
        &["INCR", "n"],
        &["INCRBY", "n", "41"],
        &["DECR", "n"],
        &["DECRBY", "n", "-10"],
        &["GET", "n"],
        &["SET", "n", "9223372036854775806"],
        &["INCR", "n"],
        &["INCR", "n"],
        &["SET", "n", "-9223372036854775807"],
        &["DECR", "n"],
        &["DECR", "n"],
        &["DECRBY", "n", "-9223372036854775808"],
        &["INCRBY", "n", "abc"],
        &["INCRBY", "n", "1.5"],
        &["DECRBY", "missing", "-9223372036854775808"],
        &["SET", "s", "abc"],
        &["INCR", "s"],
        &["SET", "s", " 1"],
        &["INCR", "s"],
        &["SET", "s", "01"],
        &["INCR", "s"],
        &["SET", "s", "-0"],
        &["INCR", "s"],
        &["SET", "s", "+1"],
        &["INCR", "s"],
        &["SET", "s", "1e3"],
        &["INCR", "s"],
        &["SET", "t", "5", "EX", "100"],
        &["INCR", "t"],
        &["TTL", "t"],
        &["RPUSH", "list", "x"],
        &["INCR", "list"],
        &["INCRBY", "list", "x"],
        &["INCR"],
        &["INCRBY", "n"],
    ]);
}

#[test]
fn incrbyfloat_matches_long_double_arithmetic() {
    let mut d = differ();
    d.check_all(&[
        &["INCRBYFLOAT", "f", "0.1"],
        &["INCRBYFLOAT", "f", "0.2"],
        &["INCRBYFLOAT", "f", "-0.3"],
        &["INCRBYFLOAT", "f", "10.5"],
        &["INCRBYFLOAT", "f", "5.0e3"],
        &["INCRBYFLOAT", "f", "-5.0E3"],
        &["INCRBYFLOAT", "f", "1e400"],
        &["INCRBYFLOAT", "f", "-1e400"],
        &["INCRBYFLOAT", "f", "1.5e-5"],
        &["INCRBYFLOAT", "f", "0x10"],
        &["INCRBYFLOAT", "f", "0x1.8p1"],
        &["INCRBYFLOAT", "f", "3.0000000000000000000001"],
        &["INCRBYFLOAT", "f", ".5"],
        &["INCRBYFLOAT", "f", "5."],
        &["INCRBYFLOAT", "f", "+1"],
        &["INCRBYFLOAT", "f", "-1e-30"],
        &["INCRBYFLOAT", "g", "1e4931"],
        &["INCRBYFLOAT", "g", "1e4931"],
        &["INCRBYFLOAT", "f", "inf"],
        &["INCRBYFLOAT", "f", "-inf"],
        &["INCRBYFLOAT", "f", "nan"],
        &["INCRBYFLOAT", "f", "abc"],
        &["INCRBYFLOAT", "f", ""],
        &["INCRBYFLOAT", "f", " 1"],
        &["INCRBYFLOAT", "f", "1 "],
        &["INCRBYFLOAT", "f", "1e"],
        &["INCRBYFLOAT", "f", "1e99999"],
        &["INCRBYFLOAT", "f", "1e-99999"],
        &["GET", "f"],
        &["SET", "s", "abc"],
        &["INCRBYFLOAT", "s", "1"],
        &["SET", "s", "7"],
        &["INCRBYFLOAT", "s", "0"],
        &["SET", "s", "1.10"],
        &["INCRBYFLOAT", "s", "0"],
        &["SET", "t", "1", "EX", "100"],
        &["INCRBYFLOAT", "t", "1.25"],
        &["TTL", "t"],
        &["RPUSH", "list", "x"],
        &["INCRBYFLOAT", "list", "1"],
    ]);
    d.check(&[b"INCRBYFLOAT", b"z", b"2\x00junk"]);
    d.check(&[b"INCRBYFLOAT", b"z", b"\x00"]);
}

#[test]
fn append_strlen_getrange_setrange() {
    let mut d = differ();
    d.check_all(&[
        &["APPEND", "s", "Hello"],
        &["APPEND", "s", " World"],
        &["STRLEN", "s"],
        &["STRLEN", "missing"],
        &["GETRANGE", "s", "0", "4"],
        &["GETRANGE", "s", "-5", "-1"],
        &["GETRANGE", "s", "-1", "-5"],
        &["GETRANGE", "s", "5", "3"],
        &["GETRANGE", "s", "0", "-100"],
        &["GETRANGE", "s", "-100", "100"],
        &["GETRANGE", "s", "100", "200"],
        &["GETRANGE", "missing", "0", "-1"],
        &["GETRANGE", "s", "a", "1"],
        &["SUBSTR", "s", "1", "3"],
        &["SETRANGE", "s", "6", "Redis"],
        &["GET", "s"],
        &["SETRANGE", "s", "20", "!"],
        &["GET", "s"],
        &["SETRANGE", "s", "0", ""],
        &["SETRANGE", "new", "0", ""],
        &["EXISTS", "new"],
        &["SETRANGE", "new", "3", "x"],
        &["GET", "new"],
        &["SETRANGE", "s", "-1", "x"],
        &["SETRANGE", "s", "x", "x"],
        &["SETRANGE", "s", "536870911", "xy"],
        &["SETRANGE", "big", "536870912", "x"],
        &["SETRANGE", "big", "536870912", ""],
        &["SET", "n", "12345"],
        &["APPEND", "n", "6"],
        &["GETRANGE", "n", "1", "2"],
        &["SET", "t", "a", "EX", "100"],
        &["APPEND", "t", "b"],
        &["SETRANGE", "t", "1", "c"],
        &["TTL", "t"],
        &["RPUSH", "list", "x"],
        &["APPEND", "list", "x"],
        &["STRLEN", "list"],
        &["GETRANGE", "list", "0", "1"],
        &["SETRANGE", "list", "0", "x"],
        &["SETRANGE", "list", "0", ""],
        &["SETRANGE", "list", "-1", "x"],
    ]);
    d.check(&[b"APPEND", b"bin", b"\x00\xff"]);
    d.check(&[b"APPEND", b"bin", b"\r\n\x80"]);
    d.check(&[b"SETRANGE", b"bin", b"1", b"\x00\x00"]);
    d.check(&[b"GET", b"bin"]);
    d.check(&[b"GETRANGE", b"bin", b"1", b"3"]);
}

#[test]
fn lcs() {
    let mut d = differ();
    d.check_all(&[
        &["MSET", "key1", "ohmytext", "key2", "mynewtext"],
        &["LCS", "key1", "key2"],
        &["LCS", "key1", "key2", "LEN"],
        &["LCS", "key1", "key2", "IDX"],
        &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"],
        &[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "MINMATCHLEN",
            "4",
            "WITHMATCHLEN",
        ],
        &[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "WITHMATCHLEN",
            "MINMATCHLEN",
            "-3",
        ],
        &["LCS", "key1", "key2", "LEN", "IDX"],
        &["LCS", "key1", "key2", "MINMATCHLEN"],
        &["LCS", "key1", "key2", "MINMATCHLEN", "x"],
        &["LCS", "key1", "key2", "FOO"],
        &["LCS", "key1", "missing"],
        &["LCS", "missing", "missing2", "IDX"],
        &["MSET", "a", "aaaabbbbcccc", "b", "xaaaxbbbxccc"],
        &["LCS", "a", "b", "IDX", "WITHMATCHLEN"],
        &["LCS", "b", "a"],
        &["RPUSH", "list", "x"],
        &["LCS", "key1", "list"],
        &["LCS", "list", "key1", "FOO"],
        &["LCS", "key1"],
    ]);
}

#[test]
fn expired_strings_are_absent_everywhere() {
    let mut d = differ();
    d.check_all(&[
        &["SET", "a", "1", "PX", "1"],
        &["SET", "b", "2", "PX", "1"],
        &["SET", "c", "3", "PX", "1"],
        &["SET", "d", "4", "PX", "1"],
        &["SET", "e", "5", "PX", "1"],
        &["SET", "f", "6", "PX", "1"],
    ]);
    sleep(Duration::from_millis(20));
    d.check_all(&[
        &["GET", "a"],
        &["STRLEN", "a"],
        &["APPEND", "b", "x"],
        &["GET", "b"],
        &["TTL", "b"],
        &["INCR", "c"],
        &["SET", "d", "v", "NX"],
        &["SET", "e", "v", "XX", "GET"],
        &["GETRANGE", "f", "0", "-1"],
        &["MGET", "a", "b", "c", "d", "e", "f"],
        &["SETRANGE", "f", "2", "x"],
        &["GET", "f"],
    ]);
}

#[test]
fn resp3_replies() {
    let mut d = differ();
    // HELLO's own reply names each server, so only the switch is shared.
    d.both(|conn| {
        conn.command(&[b"HELLO", b"3"]).unwrap();
    });
    d.check_all(&[
        &["GET", "missing"],
        &["MSET", "key1", "ohmytext", "key2", "mynewtext"],
        &["MGET", "key1", "missing"],
        &["LCS", "key1", "key2", "IDX", "WITHMATCHLEN"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["SET", "k", "v", "NX"],
        &["SET", "k", "v", "NX", "GET"],
        &["GETEX", "missing"],
    ]);
}

#[test]
fn incrbyfloat_agrees_on_a_seeded_stream_of_increments() {
    let mut d = differ();
    // A fixed xorshift stream: the same numbers on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for step in 0..300 {
        let r = next();
        let mantissa = (r % 2_000_000) as i64 - 1_000_000;
        let increment = match step % 5 {
            0 => format!("{mantissa}"),
            1 => format!("{}.{:03}", mantissa / 1000, (r >> 24) % 1000),
            2 => format!("{mantissa}e{}", (r >> 32) % 40),
            3 => format!("{mantissa}e-{}", (r >> 32) % 30),
            _ => format!("0.{:017}", (r >> 8) % 100_000_000_000_000_000),
        };
        let key = format!("f{}", r % 4);
        d.check(&[b"INCRBYFLOAT", key.as_bytes(), increment.as_bytes()]);
    }
}

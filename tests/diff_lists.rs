//! List commands (non-blocking) against a real `redis-server`, byte for
//! byte: every command of the family, its options, wrong types, wrong
//! arity, bad numbers, binary values, expired keys, RESP3 nulls, and a
//! seeded random sequence compared after every command (middle inserts
//! and removals included, which shift stored positions).

use std::thread::sleep;
use std::time::Duration;

use keyferry_testkit::{Differ, SeededRng};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

#[test]
fn push_pop_length_range_and_index() {
    let mut d = differ();
    d.check_all(&[
        &["LPUSH", "l", "c", "b", "a"],
        &["RPUSH", "l", "d", "e"],
        &["LRANGE", "l", "0", "-1"],
        &["LLEN", "l"],
        &["LPUSHX", "l", "x"],
        &["RPUSHX", "l", "y", "z"],
        &["LPUSHX", "nokey", "x"],
        &["RPUSHX", "nokey", "x"],
        &["EXISTS", "nokey"],
        &["LRANGE", "l", "0", "-1"],
        &["LRANGE", "l", "-3", "-2"],
        &["LRANGE", "l", "5", "100"],
        &["LRANGE", "l", "-100", "1"],
        &["LRANGE", "l", "3", "1"],
        &["LRANGE", "nokey", "0", "-1"],
        &["LINDEX", "l", "0"],
        &["LINDEX", "l", "-1"],
        &["LINDEX", "l", "8"],
        &["LINDEX", "l", "-9"],
        &["LINDEX", "nokey", "0"],
        &["LPOP", "l"],
        &["RPOP", "l"],
        &["LPOP", "l", "2"],
        &["RPOP", "l", "0"],
        &["RPOP", "l", "1"],
        &["LPOP", "l", "100"],
        &["EXISTS", "l"],
        &["LPOP", "l"],
        &["LPOP", "l", "0"],
        &["RPOP", "l", "3"],
        &["LLEN", "l"],
        // Bad numbers and arity.
        &["RPUSH", "l", "a", "b"],
        &["LPOP", "l", "-1"],
        &["LPOP", "l", "x"],
        &["LPOP", "nokey", "x"],
        &["LPOP", "l", "1", "2"],
        &["LRANGE", "l", "0", "x"],
        &["LRANGE", "l", "0"],
        &["LINDEX", "l", "x"],
        &["LINDEX", "l", "1.0"],
        &["LINDEX", "nokey", "x"],
        &["LPUSH", "l"],
        &["LLEN"],
        // Wrong types.
        &["SET", "str", "v"],
        &["LPUSH", "str", "a"],
        &["RPUSH", "str", "a"],
        &["LPUSHX", "str", "a"],
        &["RPUSHX", "str", "a"],
        &["LPOP", "str"],
        &["RPOP", "str", "2"],
        &["LPOP", "str", "x"],
        &["LLEN", "str"],
        &["LRANGE", "str", "0", "-1"],
        &["LINDEX", "str", "0"],
        &["GET", "str"],
    ]);
}

#[test]
fn set_insert_remove_trim_and_positions() {
    let mut d = differ();
    d.check_all(&[
        &["RPUSH", "l", "a", "b", "c", "b", "d", "b", "e"],
        &["LSET", "l", "0", "A"],
        &["LSET", "l", "-1", "E"],
        &["LSET", "l", "7", "x"],
        &["LSET", "l", "-8", "x"],
        &["LSET", "nokey", "0", "x"],
        &["LSET", "l", "x", "x"],
        &["LRANGE", "l", "0", "-1"],
        &["LINSERT", "l", "BEFORE", "b", "x"],
        &["LINSERT", "l", "after", "E", "y"],
        &["LINSERT", "l", "AFTER", "A", "z"],
        &["LINSERT", "l", "BEFORE", "nope", "x"],
        &["LINSERT", "nokey", "BEFORE", "b", "x"],
        &["LINSERT", "l", "MIDDLE", "b", "x"],
        &["LRANGE", "l", "0", "-1"],
        &["LPOS", "l", "b"],
        &["LPOS", "l", "b", "RANK", "2"],
        &["LPOS", "l", "b", "RANK", "-1"],
        &["LPOS", "l", "b", "RANK", "-3"],
        &["LPOS", "l", "b", "RANK", "4"],
        &["LPOS", "l", "b", "COUNT", "0"],
        &["LPOS", "l", "b", "COUNT", "2"],
        &["LPOS", "l", "b", "RANK", "-1", "COUNT", "2"],
        &["LPOS", "l", "b", "COUNT", "0", "MAXLEN", "5"],
        &["LPOS", "l", "b", "RANK", "-1", "MAXLEN", "2"],
        &["LPOS", "l", "b", "MAXLEN", "1"],
        &["LPOS", "l", "b", "RANK", "1", "RANK", "-2"],
        &["LPOS", "l", "b", "RANK", "-9223372036854775808"],
        &["LPOS", "l", "nope"],
        &["LPOS", "l", "nope", "COUNT", "0"],
        &["LPOS", "nokey", "b"],
        &["LPOS", "nokey", "b", "COUNT", "1"],
        &["LPOS", "l", "b", "RANK", "0"],
        &["LPOS", "l", "b", "COUNT", "-1"],
        &["LPOS", "l", "b", "MAXLEN", "-1"],
        &["LPOS", "l", "b", "RANK"],
        &["LPOS", "l", "b", "RANK", "x"],
        &["LPOS", "l", "b", "foo", "1"],
        &["LREM", "l", "1", "b"],
        &["LREM", "l", "-1", "b"],
        &["LRANGE", "l", "0", "-1"],
        &["RPUSH", "l", "b", "x", "b"],
        &["LREM", "l", "0", "b"],
        &["LREM", "l", "0", "nope"],
        &["LREM", "nokey", "0", "b"],
        &["LREM", "l", "x", "b"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "1", "-2"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "-100", "100"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "0", "0"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "2", "1"],
        &["EXISTS", "l"],
        &["LTRIM", "nokey", "0", "1"],
        &["LTRIM", "l", "x", "1"],
        &["RPUSH", "l", "a", "a", "a"],
        &["LREM", "l", "-2", "a"],
        &["LREM", "l", "5", "a"],
        &["EXISTS", "l"],
        // Wrong types and arity.
        &["SET", "str", "v"],
        &["LSET", "str", "0", "x"],
        &["LSET", "str", "x", "x"],
        &["LSET", "nokey", "x", "x"],
        &["LINDEX", "str", "x"],
        &["LRANGE", "nokey", "0", "x"],
        &["LREM", "str", "x", "a"],
        &["LTRIM", "str", "x", "0"],
        &["LINSERT", "str", "BEFORE", "a", "b"],
        &["LINSERT", "str", "MIDDLE", "a", "b"],
        &["LREM", "str", "0", "a"],
        &["LTRIM", "str", "0", "1"],
        &["LPOS", "str", "a"],
        &["LPOS", "str", "a", "RANK", "0"],
        &["LSET", "l", "0"],
        &["LINSERT", "l", "BEFORE", "a"],
        &["LPOS", "l"],
    ]);
}

#[test]
fn moves_between_and_within_lists() {
    let mut d = differ();
    d.check_all(&[
        &["RPUSH", "src", "a", "b", "c"],
        &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        &["LMOVE", "src", "dst", "right", "left"],
        &["LRANGE", "dst", "0", "-1"],
        &["LMOVE", "dst", "dst", "LEFT", "RIGHT"],
        &["LMOVE", "dst", "dst", "RIGHT", "RIGHT"],
        &["LRANGE", "dst", "0", "-1"],
        &["RPOPLPUSH", "dst", "dst"],
        &["RPOPLPUSH", "src", "dst"],
        &["EXISTS", "src"],
        &["LRANGE", "dst", "0", "-1"],
        &["RPOPLPUSH", "nokey", "dst"],
        &["LMOVE", "nokey", "dst", "LEFT", "LEFT"],
        // One element moved onto its own list stays (TTL included).
        &["RPUSH", "one", "x"],
        &["EXPIRE", "one", "1000"],
        &["LMOVE", "one", "one", "LEFT", "RIGHT"],
        &["LRANGE", "one", "0", "-1"],
        &["TTL", "one"],
        &["LMOVE", "src", "dst", "UP", "LEFT"],
        &["LMOVE", "src", "dst", "LEFT", "DOWN"],
        &["SET", "str", "v"],
        &["LMOVE", "dst", "str", "LEFT", "LEFT"],
        &["LMOVE", "str", "dst", "LEFT", "LEFT"],
        &["LMOVE", "nokey", "str", "LEFT", "LEFT"],
        &["RPOPLPUSH", "dst", "str"],
        &["LRANGE", "dst", "0", "-1"],
        &["LMOVE", "src", "dst", "LEFT"],
        &["RPOPLPUSH", "src"],
        // LMPOP.
        &["RPUSH", "l2", "1", "2", "3"],
        &["LMPOP", "2", "nokey", "l2", "LEFT"],
        &["LMPOP", "2", "l2", "dst", "RIGHT", "COUNT", "5"],
        &["LMPOP", "1", "l2", "left", "count", "1"],
        &["LMPOP", "1", "nokey", "LEFT"],
        &["LMPOP", "0", "l2", "LEFT"],
        &["LMPOP", "x", "l2", "LEFT"],
        &["LMPOP", "-1", "l2", "LEFT"],
        &["LMPOP", "3", "l2", "LEFT"],
        &["LMPOP", "1", "l2", "UP"],
        &["LMPOP", "1", "l2", "LEFT", "COUNT", "0"],
        &["LMPOP", "1", "l2", "LEFT", "COUNT", "x"],
        &["LMPOP", "1", "l2", "LEFT", "COUNT", "1", "foo"],
        &["LMPOP", "1", "l2", "LEFT", "foo"],
        &["LMPOP", "2", "str", "dst", "LEFT"],
        &["LMPOP", "2", "nokey", "str", "LEFT"],
        &["LMPOP", "2", "dst", "str", "LEFT"],
        &["LMPOP", "1"],
    ]);
}

#[test]
fn binary_values_expired_keys_and_resp3() {
    let mut d = differ();
    let key: &[u8] = b"l\x00\r\n\xff";
    d.check(&[b"RPUSH", key, b"\x00", b"a\r\nb", b"\xff\xfe", b""]);
    d.check(&[b"LRANGE", key, b"0", b"-1"]);
    d.check(&[b"LPOS", key, b"\xff\xfe"]);
    d.check(&[b"LINSERT", key, b"AFTER", b"", b"\r\n"]);
    d.check(&[b"LREM", key, b"0", b"\x00"]);
    d.check(&[b"LMOVE", key, b"other\x00", b"RIGHT", b"LEFT"]);
    d.check(&[b"LRANGE", key, b"0", b"-1"]);

    d.check_all(&[
        &["RPUSH", "gone", "a", "b"],
        &["RPUSH", "gone2", "c"],
        &["PEXPIRE", "gone", "1"],
        &["PEXPIRE", "gone2", "1"],
    ]);
    sleep(Duration::from_millis(20));
    d.check_all(&[
        &["LLEN", "gone"],
        &["LRANGE", "gone", "0", "-1"],
        &["LINDEX", "gone", "0"],
        &["LPOP", "gone"],
        &["LPOS", "gone", "a"],
        &["LPUSHX", "gone", "x"],
        &["LSET", "gone", "0", "x"],
        &["LMOVE", "gone2", "gone", "LEFT", "LEFT"],
        &["RPUSH", "gone", "new"],
        &["LRANGE", "gone", "0", "-1"],
        &["TTL", "gone"],
    ]);

    d.both(|c| c.command(&[b"HELLO", b"3"]).unwrap()[0] == b'%');
    d.check_all(&[
        &["LPOP", "nokey"],
        &["LPOP", "nokey", "2"],
        &["LINDEX", "nokey", "0"],
        &["LPOS", "nokey", "a"],
        &["LMPOP", "1", "nokey", "LEFT"],
        &["RPOPLPUSH", "nokey", "x"],
        &["RPUSH", "r3", "a", "b"],
        &["LPOP", "r3", "5"],
    ]);
}

#[test]
fn seeded_random_sequences_match_redis() {
    let mut d = differ();
    for seed in [7, 1, 2] {
        random_sequence(&mut d, seed);
    }
}

/// Random list commands over a few keys, each compared with Redis.
fn random_sequence(d: &mut Differ, seed: u64) {
    let mut rng = SeededRng::new(seed);
    let keys = ["la", "lb"];
    let values = ["a", "b", "c", "d"];
    let indexes = ["0", "1", "2", "-1", "-2", "-5", "7", "20"];
    for step in 0..800 {
        let key = rng.pick(&keys);
        let value = rng.pick(&values);
        let side = rng.pick(&["LEFT", "RIGHT"]);
        let argv: Vec<&str> = match rng.below(14) {
            0..=2 => {
                let mut argv = vec![rng.pick(&["LPUSH", "RPUSH"]), key];
                argv.extend((0..=rng.below(4)).map(|_| rng.pick(&values)));
                argv
            }
            3 => vec![rng.pick(&["LPOP", "RPOP"]), key],
            4 => vec![rng.pick(&["LPOP", "RPOP"]), key, rng.pick(&["0", "1", "3"])],
            5 => vec![
                "LINSERT",
                key,
                rng.pick(&["BEFORE", "AFTER"]),
                value,
                rng.pick(&values),
            ],
            6 => vec!["LREM", key, rng.pick(&["0", "1", "-1", "2", "-3"]), value],
            7 => vec!["LSET", key, rng.pick(&indexes), value],
            8 => vec!["LTRIM", key, rng.pick(&indexes), rng.pick(&indexes)],
            9 => vec![
                "LMOVE",
                key,
                rng.pick(&keys),
                side,
                rng.pick(&["LEFT", "RIGHT"]),
            ],
            10 => vec![
                "LPOS",
                key,
                value,
                "RANK",
                rng.pick(&["1", "-1", "2", "-2"]),
                "COUNT",
                "0",
            ],
            11 => vec!["LINDEX", key, rng.pick(&indexes)],
            12 => vec!["LMPOP", "2", key, rng.pick(&keys), side, "COUNT", "2"],
            _ => vec!["LRANGE", key, rng.pick(&indexes), rng.pick(&indexes)],
        };
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        d.check(&argv);
        if step % 40 == 0 {
            for key in keys {
                d.check(&[b"LRANGE", key.as_bytes(), b"0", b"-1"]);
            }
        }
    }
}

#[test]
fn big_lists_shift_and_compact_like_redis() {
    let mut d = differ();
    let values: Vec<String> = (0..600).map(|i| format!("v{}", i % 7)).collect();
    let mut push: Vec<&str> = vec!["RPUSH", "big"];
    push.extend(values.iter().map(String::as_str));
    d.check_all(&[
        &push,
        &["LINSERT", "big", "BEFORE", "v3", "first-v3"],
        &["LINSERT", "big", "AFTER", "v6", "after-v6"],
        &["LREM", "big", "5", "v1"],
        &["LREM", "big", "-7", "v2"],
        &["LREM", "big", "0", "v5"],
        &["LSET", "big", "300", "middle"],
        &["LPOS", "big", "v4", "RANK", "-3", "COUNT", "4"],
        &["LINDEX", "big", "-200"],
        &["LTRIM", "big", "50", "-60"],
        &["LRANGE", "big", "0", "-1"],
        &["LLEN", "big"],
        &["LMOVE", "big", "big", "LEFT", "RIGHT"],
        &["LRANGE", "big", "-3", "-1"],
    ]);
}

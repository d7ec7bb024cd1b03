//! A seeded random differential test: long command sequences over a small
//! keyspace (every type, TTLs, wrong types, `MULTI` blocks) sent to a real
//! `redis-server` and to `keyferry serve`, replies compared after every
//! command.
//!
//! Normalisation: replies whose order Redis leaves unspecified (`SMEMBERS`,
//! `HGETALL`, `HKEYS`, `KEYS`) are compared with [`Differ::check_sorted`].
//! Random-member commands and TTL values are left out (they differ between
//! any two servers). Keys expire only through `PEXPIRE k 1` followed by a
//! pause, so both servers agree on what has expired.

use std::time::Duration;

use keyferry_testkit::{Differ, SeededRng};

const KEYS: &[&str] = &["a", "b", "c", "d", "bin\x00\r\nkey", "e"];
const VALUES: &[&str] = &["0", "1", "-7", "x", "", "3.5", "\x00\u{ff}", "10"];
const MEMBERS: &[&str] = &["m1", "m2", "m3", "m4"];
const SCORES: &[&str] = &["0", "1", "-2.5", "1e3", "inf", "-inf", "3"];

/// One random command, and whether its reply order is unspecified.
fn command(rng: &mut SeededRng) -> (Vec<String>, bool) {
    let k = rng.pick(KEYS).to_owned();
    let v = rng.pick(VALUES).to_owned();
    let m = rng.pick(MEMBERS).to_owned();
    let s = rng.pick(SCORES).to_owned();
    let i = (rng.below(7) as i64 - 3).to_string();
    let argv = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    let cmd: Vec<String> = match rng.below(34) {
        0 => argv(&["SET", &k, &v]),
        1 => argv(&["GET", &k]),
        2 => argv(&["INCR", &k]),
        3 => argv(&["APPEND", &k, &v]),
        4 => argv(&["DEL", &k, rng.pick(KEYS)]),
        5 => argv(&["EXISTS", &k, rng.pick(KEYS)]),
        6 => argv(&["TYPE", &k]),
        7 => argv(&["EXPIRE", &k, "1000"]),
        8 => argv(&["PERSIST", &k]),
        9 => argv(&["LPUSH", &k, &v, &m]),
        10 => argv(&["RPUSH", &k, &m]),
        11 => argv(&["LPOP", &k]),
        12 => argv(&["RPOP", &k, "2"]),
        13 => argv(&["LRANGE", &k, &i, "-1"]),
        14 => argv(&["LLEN", &k]),
        15 => argv(&["SADD", &k, &m, rng.pick(MEMBERS)]),
        16 => argv(&["SREM", &k, &m]),
        17 => argv(&["SCARD", &k]),
        18 => argv(&["SISMEMBER", &k, &m]),
        19 => return (argv(&["SMEMBERS", &k]), true),
        20 => argv(&["HSET", &k, &m, &v]),
        21 => argv(&["HDEL", &k, &m]),
        22 => argv(&["HGET", &k, &m]),
        23 => argv(&["HLEN", &k]),
        24 => return (argv(&["HGETALL", &k]), true),
        25 => argv(&["HINCRBY", &k, &m, &i]),
        26 => argv(&["ZADD", &k, &s, &m]),
        27 => argv(&["ZREM", &k, &m]),
        28 => argv(&["ZRANGE", &k, "0", "-1", "WITHSCORES"]),
        29 => argv(&["ZSCORE", &k, &m]),
        30 => argv(&["ZINCRBY", &k, &s, &m]),
        31 => argv(&["ZCARD", &k]),
        32 => argv(&["STRLEN", &k]),
        _ => argv(&["RENAME", &k, rng.pick(KEYS)]),
    };
    (cmd, false)
}

fn send(d: &mut Differ, argv: &[String], unordered: bool) {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    if unordered {
        d.check_sorted(&argv);
    } else {
        d.check(&argv);
    }
}

fn run(seed: u64, steps: usize) {
    let mut d = Differ::start(env!("CARGO_BIN_EXE_keyferry"));
    let mut rng = SeededRng::new(seed);
    let mut step = 0;
    while step < steps {
        match rng.below(20) {
            // A MULTI block of a few commands (sorted replies excluded:
            // EXEC's array is compared as a whole).
            0 => {
                send(&mut d, &["MULTI".to_owned()], false);
                for _ in 0..1 + rng.below(4) {
                    let (cmd, unordered) = command(&mut rng);
                    if !unordered {
                        send(&mut d, &cmd, false);
                    }
                }
                send(&mut d, &["EXEC".to_owned()], false);
            }
            // A key that expires now, on both servers.
            1 => {
                let key = rng.pick(KEYS).to_owned();
                send(&mut d, &["PEXPIRE".to_owned(), key, "1".to_owned()], false);
                std::thread::sleep(Duration::from_millis(5));
            }
            2 => send(
                &mut d,
                &["SELECT".to_owned(), rng.below(3).to_string()],
                false,
            ),
            _ => {
                let (cmd, unordered) = command(&mut rng);
                send(&mut d, &cmd, unordered);
            }
        }
        step += 1;
    }
    for key in KEYS {
        d.check(&[b"TYPE", key.as_bytes()]);
    }
}

#[test]
fn random_sequences_match_redis() {
    for seed in [1, 42, 0x5eed] {
        run(seed, 1500);
    }
}

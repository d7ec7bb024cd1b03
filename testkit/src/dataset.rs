//! Migration test data: a source keyspace with every supported type, a
//! writer that keeps changing it, and a whole-keyspace comparison of two
//! servers that the migration tests make themselves (never trusting
//! `keyferry verify` to judge `keyferry`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use crate::resp::{Resp, parse};
use crate::{RawClient, SeededRng};

/// How much data [`populate`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Keys per database (types rotate through all five, with TTLs).
    pub keys_per_db: usize,
    /// Members of each big collection (one per type, in database 0).
    pub big: usize,
}

/// The databases [`populate`] fills.
pub const DATABASES: [u32; 3] = [0, 1, 5];

/// The name of key `i`: some names are binary (`\r\n`, NUL, invalid
/// UTF-8), as real keyspaces have.
pub fn key_name(i: usize) -> Vec<u8> {
    if i % 7 == 3 {
        let mut k = b"bin\r\n\x00\xff:".to_vec();
        k.extend_from_slice(i.to_string().as_bytes());
        k
    } else {
        format!("k:{i}").into_bytes()
    }
}

/// Sends `commands` pipelined and reads every reply (errors included).
pub fn pipeline(client: &mut RawClient, commands: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
    for argv in commands {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        client.send_command(&refs).expect("send");
    }
    commands
        .iter()
        .map(|_| client.read_reply().expect("reply"))
        .collect()
}

fn argv(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// The commands that create key `i` (type chosen by `i`).
fn create(i: usize, rng: &mut SeededRng) -> Vec<Vec<Vec<u8>>> {
    let key = key_name(i);
    let n = 1 + rng.below(20);
    let mut cmds = Vec::new();
    match i % 6 {
        0 => cmds.push(argv(&[
            b"SET",
            &key,
            format!("value-{i}-\x00\r\n").as_bytes(),
        ])),
        1 => {
            let mut c = argv(&[b"HSET", &key]);
            for f in 0..n {
                c.push(format!("f{f}").into_bytes());
                c.push(format!("v{}", rng.next_u64()).into_bytes());
            }
            cmds.push(c);
        }
        2 => {
            let mut c = argv(&[b"RPUSH", &key]);
            // Repeated elements: a re-import that appended instead of
            // replacing would show.
            c.extend((0..n).map(|e| format!("e{}", e % 4).into_bytes()));
            cmds.push(c);
        }
        3 => {
            let mut c = argv(&[b"SADD", &key]);
            c.extend((0..n).map(|e| format!("m{e}").into_bytes()));
            cmds.push(c);
        }
        4 => {
            let mut c = argv(&[b"ZADD", &key]);
            for m in 0..n {
                let score = match m % 5 {
                    0 => "inf".to_string(),
                    1 => "-2.5".to_string(),
                    _ => format!("{}.{}", rng.below(1000), rng.below(100)),
                };
                c.push(score.into_bytes());
                c.push(format!("z{m}").into_bytes());
            }
            cmds.push(c);
        }
        _ => {
            let ttl = (100 + rng.below(900)).to_string();
            cmds.push(argv(&[b"SET", &key, b"expiring", b"EX", ttl.as_bytes()]));
        }
    }
    if i % 10 == 7 {
        let ttl = (200 + rng.below(800)).to_string();
        cmds.push(argv(&[b"EXPIRE", &key, ttl.as_bytes()]));
    }
    cmds
}

/// Fills [`DATABASES`] of the server on `port`, plus one big collection of
/// each type in database 0 and a stream (which keyferry skips). Returns
/// the number of keys created.
pub fn populate(port: u16, seed: u64, scale: Scale) -> usize {
    let mut client = RawClient::connect(port).expect("connect to the source");
    let mut rng = SeededRng::new(seed);
    let mut created = 0;
    for db in DATABASES {
        pipeline(
            &mut client,
            &[argv(&[b"SELECT", db.to_string().as_bytes()])],
        );
        let mut batch = Vec::new();
        for i in 0..scale.keys_per_db {
            batch.extend(create(i, &mut rng));
            if batch.len() >= 500 {
                pipeline(&mut client, &std::mem::take(&mut batch));
            }
        }
        pipeline(&mut client, &batch);
        created += scale.keys_per_db;
    }
    pipeline(&mut client, &[argv(&[b"SELECT", b"0"])]);
    for (kind, chunk) in [("hash", 0), ("zset", 1), ("list", 2), ("set", 3)] {
        let key = format!("big:{kind}").into_bytes();
        let mut batch = Vec::new();
        for start in (0..scale.big).step_by(500) {
            let end = (start + 500).min(scale.big);
            let mut c = match chunk {
                0 => argv(&[b"HSET", &key]),
                1 => argv(&[b"ZADD", &key]),
                2 => argv(&[b"RPUSH", &key]),
                _ => argv(&[b"SADD", &key]),
            };
            for m in start..end {
                match chunk {
                    0 => c.extend([format!("f{m}").into_bytes(), format!("v{m}").into_bytes()]),
                    1 => c.extend([
                        format!("{}", m as f64 / 3.0).into_bytes(),
                        format!("m{m}").into_bytes(),
                    ]),
                    2 => c.push(format!("e{}", m % 100).into_bytes()),
                    _ => c.push(format!("m{m}").into_bytes()),
                }
            }
            batch.push(c);
        }
        pipeline(&mut client, &batch);
        created += 1;
    }
    pipeline(
        &mut client,
        &[argv(&[b"XADD", b"stream:unsupported", b"*", b"f", b"v"])],
    );
    created + 1
}

/// Every key of database `db` on `port` (by `SCAN`).
pub fn all_keys(client: &mut RawClient, db: u32) -> BTreeSet<Vec<u8>> {
    pipeline(client, &[argv(&[b"SELECT", db.to_string().as_bytes()])]);
    let mut keys = BTreeSet::new();
    let mut cursor = b"0".to_vec();
    loop {
        let reply = parse(&pipeline(client, &[argv(&[b"SCAN", &cursor, b"COUNT", b"1000"])])[0]);
        let Resp::Agg(_, parts) = reply else {
            panic!("SCAN reply {reply:?}")
        };
        let [Resp::Bulk(next), Resp::Agg(_, found)] = &parts[..] else {
            panic!("SCAN reply {parts:?}")
        };
        keys.extend(found.iter().map(|k| match k {
            Resp::Bulk(k) => k.clone(),
            other => panic!("SCAN key {other:?}"),
        }));
        if next == b"0" {
            return keys;
        }
        cursor = next.clone();
    }
}

/// What a key holds, in a form two servers can be compared by: type,
/// remaining TTL (ms, -1 when persistent) and the value's reply bytes
/// (hash and set replies as sorted sets of items).
#[derive(Debug, PartialEq)]
struct Snapshot {
    kind: Vec<u8>,
    ttl_ms: i64,
    value: Resp,
}

fn snapshot(client: &mut RawClient, key: &[u8]) -> Option<Snapshot> {
    let replies = pipeline(client, &[argv(&[b"TYPE", key]), argv(&[b"PTTL", key])]);
    let Resp::Status(kind) = parse(&replies[0]) else {
        return None;
    };
    let Resp::Int(ttl_ms) = parse(&replies[1]) else {
        return None;
    };
    let read: &[&[u8]] = match kind.as_str() {
        "string" => &[b"GET"],
        "hash" => &[b"HGETALL"],
        "set" => &[b"SMEMBERS"],
        "zset" => &[b"ZRANGE", b"0", b"-1", b"WITHSCORES"],
        "list" => &[b"LRANGE", b"0", b"-1"],
        _ => return None,
    };
    let mut cmd: Vec<Vec<u8>> = vec![read[0].to_vec(), key.to_vec()];
    cmd.extend(read[1..].iter().map(|a| a.to_vec()));
    let mut value = parse(&pipeline(client, &[cmd])[0]);
    if let Resp::Agg(kind_byte, items) = &mut value {
        if matches!(kind.as_str(), "hash") {
            let mut pairs: Vec<Vec<Resp>> = items.chunks(2).map(<[Resp]>::to_vec).collect();
            pairs.sort();
            *items = pairs.concat();
        } else if kind == "set" {
            items.sort();
        }
        *kind_byte = b'*';
    }
    Some(Snapshot {
        kind: kind.into_bytes(),
        ttl_ms,
        value,
    })
}

/// Compares every key of every database of two servers: same keys, same
/// types, same values, TTLs within `ttl_tolerance_ms`. Streams (which
/// keyferry does not migrate) and keys about to expire (which either side
/// may drop during the comparison) are left out. Returns one line per
/// difference.
pub fn keyspace_diff(source: u16, destination: u16, ttl_tolerance_ms: i64) -> Vec<String> {
    let mut src = RawClient::connect(source).expect("connect to the source");
    let mut dst = RawClient::connect(destination).expect("connect to the destination");
    let mut diffs = Vec::new();
    let near_expiry =
        |s: &Option<Snapshot>| s.as_ref().is_some_and(|s| (0..2_000).contains(&s.ttl_ms));
    for db in 0..16 {
        let keys: BTreeSet<Vec<u8>> = all_keys(&mut src, db)
            .union(&all_keys(&mut dst, db))
            .cloned()
            .collect();
        pipeline(&mut src, &[argv(&[b"SELECT", db.to_string().as_bytes()])]);
        pipeline(&mut dst, &[argv(&[b"SELECT", db.to_string().as_bytes()])]);
        for key in keys {
            let a = snapshot(&mut src, &key);
            let b = snapshot(&mut dst, &key);
            if near_expiry(&a) || near_expiry(&b) {
                continue;
            }
            let shown = String::from_utf8_lossy(&key).into_owned();
            match (a, b) {
                (None, None) => {}
                (Some(a), None) => diffs.push(format!(
                    "db {db} {shown:?}: missing at the destination ({:?})",
                    String::from_utf8_lossy(&a.kind)
                )),
                (None, Some(_)) => {
                    diffs.push(format!("db {db} {shown:?}: extra at the destination"))
                }
                (Some(a), Some(b)) => {
                    if a.kind != b.kind {
                        diffs.push(format!(
                            "db {db} {shown:?}: type {:?} vs {:?}",
                            a.kind, b.kind
                        ));
                    } else if a.value != b.value {
                        diffs.push(format!(
                            "db {db} {shown:?}: value {:?} vs {:?}",
                            a.value, b.value
                        ));
                    } else if (a.ttl_ms < 0) != (b.ttl_ms < 0)
                        || (a.ttl_ms - b.ttl_ms).abs() > ttl_tolerance_ms
                    {
                        diffs.push(format!(
                            "db {db} {shown:?}: ttl {} vs {} ms",
                            a.ttl_ms, b.ttl_ms
                        ));
                    }
                }
            }
        }
    }
    diffs
}

/// A writer that keeps changing the source (writes, deletes, expiries,
/// renames, moves, re-creations) from its own thread until stopped.
pub struct Mutator {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    client_id: i64,
    thread: Option<JoinHandle<()>>,
}

impl Mutator {
    /// Starts mutating keys `0..keys_per_db` of [`DATABASES`] on `port`.
    pub fn start(port: u16, seed: u64, keys_per_db: usize) -> Self {
        let mut client = RawClient::connect(port).expect("connect the mutator");
        let Resp::Int(client_id) = parse(&pipeline(&mut client, &[argv(&[b"CLIENT", b"ID"])])[0])
        else {
            panic!("CLIENT ID")
        };
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, ops) = (Arc::clone(&stop), Arc::clone(&ops));
            std::thread::spawn(move || mutate(client, seed, keys_per_db, &stop, &ops))
        };
        Mutator {
            stop,
            ops,
            client_id,
            thread: Some(thread),
        }
    }

    /// Operations done so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// The mutator's connection id on the source (`CLIENT KILL ID` ends it,
    /// as a switch command moving the application would).
    pub fn client_id(&self) -> i64 {
        self.client_id
    }

    /// Stops it and waits; returns the operations done.
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.ops()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Mutator {
    fn drop(&mut self) {
        self.halt();
    }
}

fn mutate(
    mut client: RawClient,
    seed: u64,
    keys_per_db: usize,
    stop: &AtomicBool,
    ops: &AtomicU64,
) {
    let mut rng = SeededRng::new(seed);
    let mut db = 0;
    while !stop.load(Ordering::Relaxed) {
        let next_db = DATABASES[rng.below(DATABASES.len())];
        let mut batch = Vec::new();
        if next_db != db {
            db = next_db;
            batch.push(argv(&[b"SELECT", db.to_string().as_bytes()]));
        }
        for _ in 0..10 {
            // A few new keys beyond the populated range, too.
            let i = rng.below(keys_per_db + keys_per_db / 10 + 1);
            let key = key_name(i);
            let other = key_name(rng.below(keys_per_db + 1));
            let n = rng.next_u64().to_string();
            batch.push(match rng.below(14) {
                0 => argv(&[b"SET", &key, n.as_bytes()]),
                1 => argv(&[b"DEL", &key]),
                2 => argv(&[
                    b"PEXPIRE",
                    &key,
                    (50 + rng.below(400)).to_string().as_bytes(),
                ]),
                3 => argv(&[
                    b"EXPIRE",
                    &key,
                    (100 + rng.below(1000)).to_string().as_bytes(),
                ]),
                4 => argv(&[b"PERSIST", &key]),
                5 => argv(&[b"RENAME", &key, &other]),
                6 => argv(&[b"HSET", &key, b"fx", n.as_bytes()]),
                7 => argv(&[b"HDEL", &key, b"f0"]),
                8 => argv(&[b"LPUSH", &key, b"e0", n.as_bytes()]),
                9 => argv(&[b"RPOP", &key]),
                10 => argv(&[b"ZADD", &key, b"7.5", n.as_bytes()]),
                11 => argv(&[b"SREM", &key, b"m0"]),
                12 => argv(&[b"MOVE", &key, if db == 0 { b"1" } else { b"0" }]),
                _ => argv(&[b"SADD", &key, n.as_bytes()]),
            });
        }
        let count = batch.len() as u64;
        for argv in &batch {
            let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            if client.send_command(&refs).is_err() {
                return;
            }
        }
        for _ in 0..count {
            // A killed connection ends the mutator (see `client_id`).
            if client.read_reply().is_err() {
                return;
            }
        }
        ops.fetch_add(count, Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Serves `destination` with the keyferry binary `bin` and asserts that it
/// holds exactly the keyspace of the source on `source_port` (see
/// [`keyspace_diff`]; TTLs within 1 s), listing the first differences.
#[track_caller]
pub fn assert_served_identical(
    bin: &std::path::Path,
    source_port: u16,
    destination: &std::path::Path,
) {
    let served = crate::KeyferryServe::serve_file(bin, destination);
    let diffs = keyspace_diff(source_port, served.port(), 1_000);
    assert!(
        diffs.is_empty(),
        "{} differences, e.g.:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(20)].join("\n")
    );
}

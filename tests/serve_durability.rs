//! Durability of `keyferry serve` (default `--durability normal`): every
//! write the server acknowledged survives `kill -9` of the process.
//!
//! Four clients write concurrently, each in its own database, pipelining
//! 16 commands at a time: strings with binary values and TTLs, hashes,
//! lists, sets, sorted sets, counters, appends, multi-key MSET, TTL
//! changes on every type and deletes. Each client counts the replies it
//! read (the acknowledged writes) and checks each reply as it arrives.
//! Once at least 2,000 writes were acknowledged the server is killed
//! with SIGKILL while the clients are still writing, restarted on the
//! same database file, and every acknowledged write is checked: values,
//! lengths, members, scores, TTLs still set. A write that was sent but
//! not acknowledged may or may not be there; the checks accept both.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use keyferry_testkit::{KeyferryServe, RawClient};

const CLIENTS: usize = 4;
/// Acknowledged writes (over all clients) before the kill.
const ACKED_BEFORE_KILL: usize = 2_000;
const PIPELINE: usize = 16;
/// How many kinds of write [`Model::op`] cycles through.
const KINDS: usize = 11;
const STRING_TTL_MS: i64 = 3_600_000;
const EXPIRE_SECONDS: i64 = 7_200;
const COLLECTION_TTL_MS: i64 = 86_400_000;

/// A binary-safe string value: CR LF, NUL and invalid UTF-8 included.
fn value(k: usize) -> Vec<u8> {
    let mut v = format!("value {k}\r\n").into_bytes();
    v.extend_from_slice(&[0, 0xff, b'x']);
    v
}

fn collection(k: usize) -> &'static [u8] {
    [&b"hash"[..], b"list", b"set", b"zset"][(k / KINDS) % 4]
}

/// One client's writes, op `k` being a pure function of `k` and the ops
/// before it: the argv and the reply Redis gives.
#[derive(Default)]
struct Model {
    pushes: usize,
    counter: i64,
    appended: Vec<u8>,
}

impl Model {
    fn op(&mut self, k: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
        let b = |s: &str| s.as_bytes().to_vec();
        let int = |n: i64| format!(":{n}\r\n").into_bytes();
        match k % KINDS {
            0 => (
                vec![
                    b("SET"),
                    b(&format!("str:{k}")),
                    value(k),
                    b("PX"),
                    b(&STRING_TTL_MS.to_string()),
                ],
                b("+OK\r\n"),
            ),
            // Two fields: `keep:k` keeps the hash (and its TTL) alive
            // when op k + 9 deletes `f:k`.
            1 => (
                vec![
                    b("HSET"),
                    b("hash"),
                    b(&format!("f:{k}")),
                    value(k),
                    b(&format!("keep:{k}")),
                    b("x"),
                ],
                int(2),
            ),
            2 => {
                self.pushes += 1;
                (
                    vec![b("RPUSH"), b("list"), b(&format!("e:{k}"))],
                    int(self.pushes as i64),
                )
            }
            3 => (vec![b("SADD"), b("set"), b(&format!("m:{k}"))], int(1)),
            4 => (
                vec![
                    b("ZADD"),
                    b("zset"),
                    b(&format!("{k}.5")),
                    b(&format!("m:{k}")),
                ],
                int(1),
            ),
            5 => {
                self.counter += k as i64;
                (
                    vec![b("INCRBY"), b("counter"), b(&k.to_string())],
                    int(self.counter),
                )
            }
            6 => {
                self.appended.extend_from_slice(format!("{k},").as_bytes());
                (
                    vec![b("APPEND"), b("append"), b(&format!("{k},"))],
                    int(self.appended.len() as i64),
                )
            }
            // Lengthens the TTL of the string op k - 7 set.
            7 => (
                vec![
                    b("EXPIRE"),
                    b(&format!("str:{}", k - 7)),
                    b(&EXPIRE_SECONDS.to_string()),
                ],
                int(1),
            ),
            8 => (
                vec![
                    b("PEXPIRE"),
                    collection(k).to_vec(),
                    b(&COLLECTION_TTL_MS.to_string()),
                ],
                int(1),
            ),
            9 => (
                vec![
                    b("MSET"),
                    b(&format!("mset:{k}:a")),
                    value(k),
                    b(&format!("mset:{k}:b")),
                    b(&format!("b{k}")),
                ],
                b("+OK\r\n"),
            ),
            // Deletes the hash field op k - 9 set.
            _ => (
                vec![b("HDEL"), b("hash"), b(&format!("f:{}", k - 9))],
                int(1),
            ),
        }
    }
}

/// How far one client got: ops `0..acked` were acknowledged, ops
/// `acked..sent` were sent without a reply read.
struct Progress {
    acked: AtomicUsize,
    sent: AtomicUsize,
}

/// Writes pipelined batches until the connection breaks (the kill).
fn write_until_killed(port: u16, db: usize, progress: &Progress) {
    let mut conn = RawClient::connect(port).unwrap();
    let selected = conn
        .command(&[b"SELECT", db.to_string().as_bytes()])
        .unwrap();
    assert_eq!(selected, b"+OK\r\n");
    let mut model = Model::default();
    let mut k = 0;
    loop {
        let mut request = Vec::new();
        let mut expected = Vec::new();
        for op in k..k + PIPELINE {
            let (argv, reply) = model.op(op);
            request.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
            for arg in &argv {
                request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                request.extend_from_slice(arg);
                request.extend_from_slice(b"\r\n");
            }
            expected.push((argv, reply));
        }
        progress.sent.store(k + PIPELINE, Ordering::SeqCst);
        if conn.send(&request).is_err() {
            return;
        }
        for (argv, reply) in expected {
            let Ok(got) = conn.read_reply() else {
                return;
            };
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&reply),
                "reply to {:?} (db {db})",
                argv.iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>()
            );
            k += 1;
            progress.acked.store(k, Ordering::SeqCst);
        }
    }
}

/// The reply to `argv` as text.
fn ask(conn: &mut RawClient, argv: &[&[u8]]) -> String {
    String::from_utf8_lossy(&conn.command(argv).unwrap()).into_owned()
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

fn int_reply(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    text.strip_prefix(':')
        .and_then(|t| t.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {text:?}"))
}

/// Whether op `k` of this client may or may not have happened.
fn maybe(k: usize, acked: usize, sent: usize) -> bool {
    k >= acked && k < sent
}

/// Checks that the restarted server holds every acknowledged write of one
/// client, and nothing it never sent.
fn verify(conn: &mut RawClient, db: usize, acked: usize, sent: usize) {
    assert_eq!(
        ask(conn, &[b"SELECT", db.to_string().as_bytes()]),
        "+OK\r\n"
    );
    let happened = |k: usize| k < acked;
    let mut model = Model::default();
    let mut pushes = Vec::new();
    let (mut hash_fields, mut set_members, mut zset_members) = (0, 0, 0);
    let mut counter_acked = 0;
    for k in 0..sent {
        let (argv, _) = model.op(k);
        if !happened(k) {
            continue;
        }
        let key = argv[1].as_slice();
        match k % KINDS {
            0 => {
                assert_eq!(
                    conn.command(&[b"GET", key]).unwrap(),
                    bulk(&value(k)),
                    "db {db} op {k}"
                );
                let pttl = int_reply(&conn.command(&[b"PTTL", key]).unwrap());
                let (low, high) = if happened(k + 7) {
                    (STRING_TTL_MS, EXPIRE_SECONDS * 1000)
                } else if maybe(k + 7, acked, sent) {
                    (0, EXPIRE_SECONDS * 1000)
                } else {
                    (0, STRING_TTL_MS)
                };
                assert!(
                    pttl > low && pttl <= high,
                    "db {db} op {k}: PTTL {pttl} not in ({low}, {high}]"
                );
            }
            1 => {
                let keep = conn.command(&[b"HGET", b"hash", &argv[4]]).unwrap();
                assert_eq!(keep, b"$1\r\nx\r\n", "db {db} op {k}");
                hash_fields += 1;
                let got = conn.command(&[b"HGET", b"hash", &argv[2]]).unwrap();
                if happened(k + 9) {
                    assert_eq!(got, b"$-1\r\n", "db {db} op {k}: HDEL lost");
                } else if !maybe(k + 9, acked, sent) {
                    assert_eq!(got, bulk(&value(k)), "db {db} op {k}");
                    hash_fields += 1;
                }
            }
            2 => pushes.push(argv[2].clone()),
            3 => {
                set_members += 1;
                assert_eq!(
                    ask(conn, &[b"SISMEMBER", b"set", &argv[2]]),
                    ":1\r\n",
                    "db {db} op {k}"
                );
            }
            4 => {
                zset_members += 1;
                assert_eq!(
                    conn.command(&[b"ZSCORE", b"zset", &argv[3]]).unwrap(),
                    bulk(format!("{k}.5").as_bytes()),
                    "db {db} op {k}"
                );
            }
            5 => counter_acked = model.counter,
            7 | 10 => {} // checked with the op they change
            8 => {
                let pttl = int_reply(&conn.command(&[b"PTTL", key]).unwrap());
                assert!(
                    pttl > 0 && pttl <= COLLECTION_TTL_MS,
                    "db {db} op {k}: PTTL of {} is {pttl}",
                    String::from_utf8_lossy(key)
                );
            }
            9 => {
                assert_eq!(
                    conn.command(&[b"MGET", key, &argv[3]]).unwrap(),
                    [b"*2\r\n".to_vec(), bulk(&value(k)), bulk(&argv[4])].concat(),
                    "db {db} op {k}"
                );
            }
            _ => {}
        }
    }
    // Lists: the acknowledged pushes, in order, then at most the pushes
    // sent after them.
    let len = int_reply(&conn.command(&[b"LLEN", b"list"]).unwrap()) as usize;
    let sent_pushes = (0..sent).filter(|k| k % KINDS == 2).count();
    assert!(
        len >= pushes.len() && len <= sent_pushes,
        "db {db}: LLEN {len}, {} acknowledged pushes, {sent_pushes} sent",
        pushes.len()
    );
    let mut head = b"*".to_vec();
    head.extend_from_slice(format!("{}\r\n", pushes.len()).as_bytes());
    for p in &pushes {
        head.extend_from_slice(&bulk(p));
    }
    let last = (pushes.len() as i64 - 1).to_string();
    assert_eq!(
        conn.command(&[b"LRANGE", b"list", b"0", last.as_bytes()])
            .unwrap(),
        head,
        "db {db}: the acknowledged pushes are not the head of the list"
    );
    // Collections hold at least what was acknowledged.
    let hlen = int_reply(&conn.command(&[b"HLEN", b"hash"]).unwrap());
    assert!(hlen >= hash_fields, "db {db}: HLEN {hlen} < {hash_fields}");
    let scard = int_reply(&conn.command(&[b"SCARD", b"set"]).unwrap());
    assert!(scard >= set_members, "db {db}: SCARD {scard}");
    let zcard = int_reply(&conn.command(&[b"ZCARD", b"zset"]).unwrap());
    assert!(zcard >= zset_members, "db {db}: ZCARD {zcard}");
    // The counter and the appended string are a prefix of what was sent
    // that covers every acknowledged op.
    let counter: i64 = String::from_utf8_lossy(&conn.command(&[b"GET", b"counter"]).unwrap())
        .lines()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        counter >= counter_acked && counter <= model.counter,
        "db {db}: counter {counter}, acknowledged {counter_acked}, sent {}",
        model.counter
    );
    let appended = conn.command(&[b"GET", b"append"]).unwrap();
    let mut acked_text = Vec::new();
    for k in (0..acked).filter(|k| k % KINDS == 6) {
        acked_text.extend_from_slice(format!("{k},").as_bytes());
    }
    let body_start = appended
        .iter()
        .position(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let body = &appended[body_start..];
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    assert!(
        body.starts_with(&acked_text) && model.appended.starts_with(body),
        "db {db}: APPEND lost acknowledged data: {}",
        String::from_utf8_lossy(&appended)
    );
    // Nothing that was never sent exists.
    let (argv, _) = model.op(sent - sent % KINDS + KINDS);
    assert_eq!(
        ask(conn, &[b"EXISTS", &argv[1]]),
        ":0\r\n",
        "db {db}: a key that was never written exists"
    );
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut server = KeyferryServe::start(
        Path::new(env!("CARGO_BIN_EXE_keyferry")),
        &["--durability", "normal"],
    );
    let port = server.port();
    let progress: Arc<Vec<Progress>> = Arc::new(
        (0..CLIENTS)
            .map(|_| Progress {
                acked: AtomicUsize::new(0),
                sent: AtomicUsize::new(0),
            })
            .collect(),
    );
    let clients: Vec<_> = (0..CLIENTS)
        .map(|db| {
            let progress = Arc::clone(&progress);
            thread::spawn(move || write_until_killed(port, db, &progress[db]))
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let acked: usize = progress
            .iter()
            .map(|p| p.acked.load(Ordering::SeqCst))
            .sum();
        if acked >= ACKED_BEFORE_KILL {
            break;
        }
        assert!(
            clients.iter().all(|c| !c.is_finished()),
            "a client stopped early; server log:\n{}",
            server.log()
        );
        assert!(
            Instant::now() < deadline,
            "only {acked} writes acknowledged in time"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // Mid-stream: the clients are still sending.
    server.kill();
    for client in clients {
        client.join().expect("a client saw a wrong reply");
    }
    let total: usize = progress
        .iter()
        .map(|p| p.acked.load(Ordering::SeqCst))
        .sum();
    assert!(total >= ACKED_BEFORE_KILL);

    server.restart();
    let mut conn = RawClient::connect(server.port()).unwrap();
    for (db, p) in progress.iter().enumerate() {
        let (acked, sent) = (
            p.acked.load(Ordering::SeqCst),
            p.sent.load(Ordering::SeqCst),
        );
        assert!(acked > 100, "client {db} acknowledged only {acked} writes");
        verify(&mut conn, db, acked, sent);
    }
    // The restarted server takes writes as usual.
    assert_eq!(ask(&mut conn, &[b"SET", b"after", b"restart"]), "+OK\r\n");
}

//! `keyferry verify` run as a binary against a real redis-server and a
//! destination file filled with the same keys (written directly through
//! the store, not by a migration): a faithful copy verifies clean (exit
//! 0), each planted difference — a changed value, a missing key, an extra
//! destination key, a TTL off by more than a second — makes it exit 1
//! naming the key, and `--sample` checks about the share asked.

use std::path::PathBuf;
use std::process::{Command, Output};

use keyferry_engine::{Db, KeyValue, Store, StoreConfig};
use keyferry_journal::{Event, now_ms};
use keyferry_testkit::RedisServer;
use redis::Connection;
use serde_json::Value;

const RUN: &str = "verify-run";
/// Filler strings in db 0, so that a sample has something to sample.
const FILLERS: usize = 400;
/// The TTL of the key `ttl`, in ms.
const TTL_MS: i64 = 100_000;

/// A key on both sides: database, name, value, TTL in ms.
type Fixture = (u32, Vec<u8>, KeyValue, Option<i64>);

/// Every type, a binary key with `\r\n` and `\xff`, a TTL, two databases.
fn fixtures() -> Vec<Fixture> {
    let b = |s: &str| s.as_bytes().to_vec();
    let mut keys = vec![
        (0, b("str"), KeyValue::String(b("hello")), None),
        (
            0,
            b"bin\r\n\xff".to_vec(),
            KeyValue::String(b"\x00\xffraw".to_vec()),
            None,
        ),
        (
            0,
            b("hash"),
            KeyValue::Hash(vec![(b("f1"), b("v1")), (b("f2"), b("v2"))]),
            None,
        ),
        (
            0,
            b("list"),
            KeyValue::List(vec![b("a"), b("b"), b("a")]),
            None,
        ),
        (
            5,
            b("set"),
            KeyValue::Set(vec![b("x"), b("y"), b("z")]),
            None,
        ),
        (
            5,
            b("zset"),
            KeyValue::ZSet(vec![(b("m1"), 1.5), (b("m2"), -2.0)]),
            None,
        ),
        (5, b("ttl"), KeyValue::String(b("t")), Some(TTL_MS)),
    ];
    keys.extend((0..FILLERS).map(|i| {
        (
            0,
            format!("fill:{i}").into_bytes(),
            KeyValue::String(b("v")),
            None,
        )
    }));
    keys
}

/// Writes `value` under `key` in `db` of the source, replacing it.
fn put_source(conn: &mut Connection, (db, key, value, ttl_ms): &Fixture) {
    redis::cmd("SELECT").arg(db).exec(conn).unwrap();
    redis::cmd("DEL").arg(key).exec(conn).unwrap();
    let mut cmd = match value {
        KeyValue::String(v) => redis::cmd("SET").arg(key).arg(v).clone(),
        KeyValue::Hash(pairs) => {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(key);
            for (f, v) in pairs {
                cmd.arg(f).arg(v);
            }
            cmd
        }
        KeyValue::List(items) => redis::cmd("RPUSH").arg(key).arg(items).clone(),
        KeyValue::Set(items) => redis::cmd("SADD").arg(key).arg(items).clone(),
        KeyValue::ZSet(members) => {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(key);
            for (m, score) in members {
                cmd.arg(*score).arg(m);
            }
            cmd
        }
    };
    if let (KeyValue::String(_), Some(ms)) = (value, ttl_ms) {
        cmd.arg("PX").arg(*ms);
    }
    cmd.exec(conn).unwrap();
}

/// Writes `fixture` to the destination, its TTL shifted by `ttl_shift_ms`.
fn put_destination(store: &Store, fixture: &Fixture, ttl_shift_ms: i64) {
    let (db, key, value, ttl_ms) = fixture.clone();
    let expire_at = ttl_ms.map(|ms| now_ms() + ms + ttl_shift_ms);
    store
        .import_key(db_of(db), key, value, expire_at, Vec::new())
        .wait()
        .unwrap();
}

fn db_of(index: u32) -> Db {
    Db::new(i64::from(index)).unwrap()
}

/// A source and a destination holding the same [`fixtures`], and run
/// [`RUN`] recorded in the destination.
struct Pair {
    _server: RedisServer,
    url: String,
    conn: Connection,
    store: Store,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pair {
    fn new() -> Pair {
        let server = RedisServer::start();
        let url = server.url();
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dest.db");
        let store = Store::open(&path, StoreConfig::default()).unwrap();
        let fixtures = fixtures();
        let mut pipe = redis::pipe();
        for (_, key, value, _) in fixtures.iter().filter(|f| f.1.starts_with(b"fill:")) {
            let KeyValue::String(v) = value else {
                unreachable!()
            };
            pipe.cmd("SET").arg(key).arg(v).ignore();
        }
        pipe.exec(&mut conn).unwrap();
        for fixture in fixtures.iter().filter(|f| !f.1.starts_with(b"fill:")) {
            put_source(&mut conn, fixture);
        }
        let (source, destination) = (url.clone(), path.display().to_string());
        store
            .write(move |tx| {
                for (db, key, value, ttl_ms) in fixtures {
                    let expire_at = ttl_ms.map(|ms| now_ms() + ms);
                    tx.import_key(db_of(db), &key, &value, expire_at)?;
                }
                tx.append_events(&[Event::RunStarted {
                    run_id: RUN.into(),
                    source,
                    destination,
                }])
            })
            .wait()
            .unwrap();
        Pair {
            _server: server,
            url,
            conn,
            store,
            path,
            _dir: dir,
        }
    }

    /// Runs `keyferry verify` with `extra` arguments.
    fn verify(&self, extra: &[&str]) -> Output {
        let to = self.path.to_str().unwrap();
        let args = ["verify", "--run-id", RUN, "--from", &self.url, "--to", to];
        Command::new(env!("CARGO_BIN_EXE_keyferry"))
            .args(args)
            .args(extra)
            .env_remove("KEYFERRY_SOURCE_PASSWORD")
            .output()
            .expect("run keyferry verify")
    }

    /// Runs `keyferry verify --json` and parses its report; asserts the
    /// exit code is `code`.
    fn verify_json(&self, code: i32, extra: &[&str]) -> Value {
        let out = self.verify(&[&["--json"][..], extra].concat());
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
    }

    fn fixture(&self, key: &[u8]) -> Fixture {
        fixtures().into_iter().find(|f| f.1 == key).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn total_keys() -> u64 {
    fixtures().len() as u64
}

/// Asserts that `report` has exactly one mismatch, of kind `kind`, on
/// `key` (escaped) in `db`.
fn assert_only(report: &Value, kind: &str, db: u32, key: &str) {
    assert_eq!(report["mismatches"], 1, "{report:#}");
    assert_eq!(report[kind]["count"], 1, "{report:#}");
    let example = &report[kind]["examples"][0];
    assert_eq!(example["db"], db, "{report:#}");
    assert_eq!(example["key"], key, "{report:#}");
}

#[test]
fn a_faithful_copy_verifies_clean_and_each_planted_difference_fails() {
    let mut pair = Pair::new();

    let clean = pair.verify_json(0, &[]);
    assert_eq!(clean["sample_percent"], 100.0);
    assert_eq!(clean["checked_keys"], total_keys(), "{clean:#}");
    assert_eq!(clean["same"], total_keys(), "{clean:#}");
    assert_eq!(clean["destination_keys_checked"], total_keys());
    assert_eq!(clean["mismatches"], 0);
    let out = pair.verify(&[]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("result:"),
        "{}",
        text(&out.stdout)
    );

    // A changed value (same length, so only the values tell).
    let hash = pair.fixture(b"hash");
    redis::cmd("SELECT").arg(0).exec(&mut pair.conn).unwrap();
    redis::cmd("HSET")
        .arg("hash")
        .arg("f2")
        .arg("vX")
        .exec(&mut pair.conn)
        .unwrap();
    let report = pair.verify_json(1, &[]);
    assert_only(&report, "value_mismatches", 0, "hash");
    put_source(&mut pair.conn, &hash);

    // A key missing at the destination: the binary one, shown escaped.
    let bin = pair.fixture(b"bin\r\n\xff");
    pair.store
        .delete_key(db_of(0), bin.1.clone(), Vec::new())
        .wait()
        .unwrap();
    let report = pair.verify_json(1, &[]);
    assert_only(&report, "missing", 0, "bin\\r\\n\\xff");
    let out = pair.verify(&[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("db 0 \"bin\\r\\n\\xff\""), "{stdout}");
    assert!(stderr.contains("1 mismatch"), "{stderr}");
    put_destination(&pair.store, &bin, 0);

    // A key only the destination has.
    let extra = (5, b"extra".to_vec(), KeyValue::String(b"x".to_vec()), None);
    put_destination(&pair.store, &extra, 0);
    let report = pair.verify_json(1, &[]);
    assert_only(&report, "extra", 5, "extra");
    pair.store
        .delete_key(db_of(5), extra.1, Vec::new())
        .wait()
        .unwrap();

    // A TTL off by 50 s.
    let ttl = pair.fixture(b"ttl");
    put_destination(&pair.store, &ttl, -50_000);
    let report = pair.verify_json(1, &[]);
    assert_only(&report, "ttl_mismatches", 5, "ttl");
    put_destination(&pair.store, &ttl, 0);

    assert_eq!(pair.verify_json(0, &[])["mismatches"], 0, "all repaired");
}

#[test]
fn a_sample_checks_about_the_share_asked() {
    let pair = Pair::new();
    let report = pair.verify_json(0, &["--sample", "50"]);
    assert_eq!(report["sample_percent"], 50.0);
    assert_eq!(report["source_keys_scanned"], total_keys());
    let half = total_keys() / 2;
    for field in ["checked_keys", "destination_keys_checked"] {
        let checked = report[field].as_u64().unwrap();
        assert!(
            (half * 6 / 10..=half * 14 / 10).contains(&checked),
            "{field} {checked} of {}",
            total_keys()
        );
    }
}

#[test]
fn an_unknown_run_fails_without_comparing() {
    let pair = Pair::new();
    let to = pair.path.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keyferry"))
        .args([
            "verify", "--run-id", "nope", "--from", &pair.url, "--to", to,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("no run nope in {to}")),
        "{}",
        text(&out.stderr)
    );
}

//! Reading keys from a real `redis-server` for import: `SCAN` pages, small
//! keys of every type read whole, and collections bigger than a chunk
//! streamed into a staged key and read back from the store.
//!
//! Keys and values carry NUL, `\r\n` and invalid UTF-8 throughout, so any
//! decoding or text handling on the way would show.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use keyferry_actors::source::{
    BigKey, FetchLimits, Fetched, Source, StreamError, fetch_keys, scan_page,
};
use keyferry_engine::{Db, KeyKind, KeyValue, Store, StoreConfig};
use keyferry_testkit::RedisServer;
use redis::aio::MultiplexedConnection;

/// Small enough that the collections below span many chunks.
const LIMITS: FetchLimits = FetchLimits { chunk_elements: 10 };
/// Elements in each big collection.
const BIG: usize = 1000;

async fn connect(server: &RedisServer, db: u32) -> MultiplexedConnection {
    let source = Source::new(server.url().parse().unwrap(), None).unwrap();
    source.connect(db).await.unwrap()
}

/// Runs one command with binary arguments.
async fn run(conn: &mut MultiplexedConnection, name: &str, args: &[&[u8]]) {
    let mut cmd = redis::cmd(name);
    for arg in args {
        cmd.arg(*arg);
    }
    let _: redis::Value = cmd.query_async(conn).await.unwrap();
}

/// Runs `name key` followed by every argument in `args`.
async fn run_many(conn: &mut MultiplexedConnection, name: &str, key: &[u8], args: &[Vec<u8>]) {
    let mut cmd = redis::cmd(name);
    cmd.arg(key);
    for arg in args {
        cmd.arg(arg.as_slice());
    }
    let _: redis::Value = cmd.query_async(conn).await.unwrap();
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// A whole value's contents, with hashes and sets (unordered in Redis)
/// put in byte order so they compare exactly.
fn value(fetched: Fetched) -> (KeyValue, Option<i64>, u64) {
    let Fetched::Value {
        value,
        ttl_ms,
        bytes,
    } = fetched
    else {
        panic!("expected a whole value, got {fetched:?}");
    };
    let value = match value {
        KeyValue::Hash(pairs) => KeyValue::Hash(sorted(pairs)),
        KeyValue::Set(members) => KeyValue::Set(sorted(members)),
        other => other,
    };
    (value, ttl_ms, bytes)
}

fn big(fetched: Fetched) -> BigKey {
    match fetched {
        Fetched::Big(big) => big,
        other => panic!("expected a big key, got {other:?}"),
    }
}

fn b(s: &[u8]) -> Vec<u8> {
    s.to_vec()
}

#[tokio::test]
async fn small_keys_of_every_type_come_whole() {
    let server = RedisServer::start();
    let mut conn = connect(&server, 0).await;
    run(&mut conn, "SET", &[b"s\0\r\n\xff", b"v\0\r\n\xff"]).await;
    run(&mut conn, "PEXPIRE", &[b"s\0\r\n\xff", b"100000"]).await;
    run(&mut conn, "SET", &[b"empty", b""]).await;
    run(&mut conn, "HSET", &[b"h\xff", b"f\0", b"v\r\n", b"g", b""]).await;
    run(&mut conn, "SADD", &[b"set\r\n", b"a", b"\xff", b"\0"]).await;
    #[rustfmt::skip]
    run(&mut conn, "ZADD", &[b"z", b"inf", b"top", b"-inf", b"bottom", b"1.5", b"\xff", b"0.1", b"tenth"]).await;
    run(&mut conn, "RPUSH", &[b"l", b"x", b"y", b"x", b"\0"]).await;
    // Exactly one chunk: complete although the range was not short.
    let ten: Vec<Vec<u8>> = (0..10).map(|i| vec![i]).collect();
    run_many(&mut conn, "RPUSH", b"l10", &ten).await;
    run(&mut conn, "XADD", &[b"stream", b"*", b"f", b"v"]).await;

    let keys = [
        b(b"s\0\r\n\xff"),
        b(b"empty"),
        b(b"h\xff"),
        b(b"set\r\n"),
        b(b"z"),
        b(b"l"),
        b(b"l10"),
        b(b"nope"),
        b(b"stream"),
    ];
    let mut fetched = fetch_keys(&mut conn, &keys, &LIMITS)
        .await
        .unwrap()
        .into_iter();

    let (string, ttl, bytes) = value(fetched.next().unwrap());
    assert_eq!(string, KeyValue::String(b(b"v\0\r\n\xff")));
    assert!(
        ttl.is_some_and(|t| (90_000..=100_000).contains(&t)),
        "{ttl:?}"
    );
    assert_eq!(bytes, 10);
    assert_eq!(
        value(fetched.next().unwrap()),
        (KeyValue::String(Vec::new()), None, 5)
    );
    assert_eq!(
        value(fetched.next().unwrap()).0,
        KeyValue::Hash(vec![(b(b"f\0"), b(b"v\r\n")), (b(b"g"), Vec::new())])
    );
    assert_eq!(
        value(fetched.next().unwrap()).0,
        KeyValue::Set(vec![b(b"\0"), b(b"a"), b(b"\xff")])
    );
    assert_eq!(
        value(fetched.next().unwrap()),
        (
            KeyValue::ZSet(vec![
                (b(b"bottom"), f64::NEG_INFINITY),
                (b(b"tenth"), 0.1),
                (b(b"\xff"), 1.5),
                (b(b"top"), f64::INFINITY),
            ]),
            None,
            1 + 6 + 5 + 1 + 3 + 4 * 8,
        )
    );
    assert_eq!(
        value(fetched.next().unwrap()).0,
        KeyValue::List(vec![b(b"x"), b(b"y"), b(b"x"), b(b"\0")])
    );
    assert_eq!(value(fetched.next().unwrap()).0, KeyValue::List(ten));
    assert_eq!(fetched.next().unwrap(), Fetched::Missing);
    assert_eq!(
        fetched.next().unwrap(),
        Fetched::Unsupported {
            type_name: "stream".into()
        }
    );
    assert!(fetched.next().is_none());
    assert!(
        fetch_keys(&mut conn, &[], &LIMITS)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn scan_pages_cover_every_key_of_the_connected_database() {
    let server = RedisServer::start();
    let mut other = connect(&server, 0).await;
    run(&mut other, "SET", &[b"elsewhere", b"v"]).await;
    let mut conn = connect(&server, 2).await;
    let keys: HashSet<Vec<u8>> = (0..100u8)
        .map(|i| vec![b'k', i, b'\r', b'\n', 0xff])
        .collect();
    for key in &keys {
        run(&mut conn, "SET", &[key, b"v"]).await;
    }

    let (mut cursor, mut seen) = (0, HashSet::new());
    loop {
        let (next, page) = scan_page(&mut conn, cursor, 10).await.unwrap();
        seen.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen, keys);
}

#[tokio::test]
async fn big_collections_stream_into_staged_keys_exactly() {
    let server = RedisServer::start();
    let mut conn = connect(&server, 0).await;
    let hash: Vec<(Vec<u8>, Vec<u8>)> = (0..BIG)
        .map(|i| {
            (
                [format!("f{i}").as_bytes(), b"\0\xff"].concat(),
                format!("v{i}\r\n").into_bytes(),
            )
        })
        .collect();
    let flat: Vec<Vec<u8>> = hash
        .iter()
        .flat_map(|(f, v)| [f.clone(), v.clone()])
        .collect();
    run_many(&mut conn, "HSET", b"hash\0", &flat).await;
    let set: Vec<Vec<u8>> = (0..BIG)
        .map(|i| [b"m\xff".as_slice(), &i.to_be_bytes()].concat())
        .collect();
    run_many(&mut conn, "SADD", b"set", &set).await;
    let mut zset: Vec<(Vec<u8>, f64)> = (0..BIG)
        .map(|i| (format!("z{i}").into_bytes(), i as f64 / 3.0))
        .collect();
    zset.extend([
        (b(b"\xffhigh"), f64::INFINITY),
        (b(b"\0low"), f64::NEG_INFINITY),
    ]);
    let flat: Vec<Vec<u8>> = zset
        .iter()
        .flat_map(|(m, s)| [s.to_string().into_bytes(), m.clone()])
        .collect();
    run_many(&mut conn, "ZADD", b"zset", &flat).await;
    run(&mut conn, "PEXPIRE", &[b"zset", b"100000"]).await;
    // Repeated elements, which a list must keep, in a known order.
    let list: Vec<Vec<u8>> = (0..BIG)
        .map(|i| {
            if i % 3 == 0 {
                b(b"same\r\n")
            } else {
                i.to_string().into_bytes()
            }
        })
        .collect();
    run_many(&mut conn, "RPUSH", b"list", &list).await;

    let keys = [b(b"hash\0"), b(b"set"), b(b"zset"), b(b"list")];
    let fetched = fetch_keys(&mut conn, &keys, &LIMITS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("k.db"), StoreConfig::default()).unwrap();
    let db = Db::new(0).unwrap();
    let expected_kinds = [KeyKind::Hash, KeyKind::Set, KeyKind::ZSet, KeyKind::List];
    let mut streamed_bytes = Vec::new();
    for ((key, fetched), kind) in keys.iter().zip(fetched).zip(expected_kinds) {
        let big = big(fetched);
        assert_eq!(big.kind(), kind);
        let len = if kind == KeyKind::ZSet { BIG + 2 } else { BIG };
        assert_eq!(big.len_hint(), len as u64);
        let ttl = big.ttl_ms();
        assert_eq!(ttl.is_some(), kind == KeyKind::ZSet, "{kind:?}: {ttl:?}");
        let staged = store.begin_staged(kind).await.unwrap();
        streamed_bytes.push(
            big.stream_into(&mut conn, key, &staged, &LIMITS)
                .await
                .unwrap(),
        );
        let expire_at = ttl.map(|t| now_ms() + t);
        staged
            .commit(db, key.clone(), expire_at, vec![])
            .await
            .unwrap();
    }

    let element_bytes = |items: &[Vec<u8>]| items.iter().map(|i| i.len() as u64).sum::<u64>();
    // Range reads never repeat an element, so their byte counts are exact.
    assert_eq!(
        streamed_bytes[2],
        4 + zset.iter().map(|(m, _)| m.len() as u64 + 8).sum::<u64>()
    );
    assert_eq!(streamed_bytes[3], 4 + element_bytes(&list));

    store
        .read(|view| {
            let lens: Vec<u64> = keys
                .iter()
                .map(|key| view.lookup(db, key).unwrap().unwrap().len())
                .collect();
            assert_eq!(lens, [BIG as u64, BIG as u64, BIG as u64 + 2, BIG as u64]);
            assert_eq!(view.hash_entries(db, b"hash\0")?, sorted(hash.clone()));
            assert_eq!(
                view.set_scan(db, b"set", None, 2 * BIG)?,
                sorted(set.clone())
            );
            let mut stored = view.zset_range(db, b"zset", 0, -1)?;
            stored.sort_by(|a, b| a.0.cmp(&b.0));
            zset.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(stored, zset, "members and exact scores");
            assert!(view.lookup(db, b"zset")?.unwrap().expire_at_ms().is_some());
            assert_eq!(view.list_range(db, b"list", 0, -1)?, list);
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn a_big_key_that_changes_type_while_streamed_is_reported() {
    let server = RedisServer::start();
    let mut conn = connect(&server, 0).await;
    let list: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
    run_many(&mut conn, "RPUSH", b"k", &list).await;
    let fetched = fetch_keys(&mut conn, &[b(b"k")], &LIMITS).await.unwrap();
    let big = big(fetched.into_iter().next().unwrap());

    run(&mut conn, "DEL", &[b"k"]).await;
    run(&mut conn, "SET", &[b"k", b"now a string"]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("k.db"), StoreConfig::default()).unwrap();
    let staged = store.begin_staged(KeyKind::List).await.unwrap();
    assert!(matches!(
        big.stream_into(&mut conn, b"k", &staged, &LIMITS).await,
        Err(StreamError::TypeChanged)
    ));
    staged.abort().await.unwrap();
}

//! Comparing a real `redis-server` with a destination store: identical data
//! of every type compares as the same, and each kind of difference planted
//! on one side is reported precisely.
//!
//! Keys and values carry NUL, `\r\n` and invalid UTF-8, the big
//! collections span many chunks, and the keys live in database 3, so a
//! comparison that decoded bytes, read a whole key or ignored the database
//! would show.

use keyferry_actors::compare::{
    CompareOptions, KeyComparison, Outcome, compare_keys, destination_keys_missing_at_source,
};
use keyferry_actors::source::Source;
use keyferry_engine::{Db, KeyValue, Store, StoreConfig};
use keyferry_testkit::RedisServer;
use redis::aio::MultiplexedConnection;

/// Elements of each big collection: many chunks of [`CHUNK`].
const BIG: usize = 3000;
const CHUNK: usize = 100;
const DB: u32 = 3;

/// The source and the destination, side by side.
struct Sides {
    _server: RedisServer,
    _dir: tempfile::TempDir,
    conn: MultiplexedConnection,
    store: Store,
    db: Db,
}

impl Sides {
    async fn start() -> Sides {
        let server = RedisServer::start();
        let source = Source::new(server.url().parse().unwrap(), None).unwrap();
        let conn = source.connect(DB).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("k.db"), StoreConfig::default()).unwrap();
        Sides {
            _server: server,
            _dir: dir,
            conn,
            store,
            db: Db::new(i64::from(DB)).unwrap(),
        }
    }

    /// Makes `key` hold `value` at the source, expiring in `ttl_ms`.
    async fn put_source(&mut self, key: &[u8], value: &KeyValue, ttl_ms: Option<i64>) {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(key).ignore();
        match value {
            KeyValue::String(v) => {
                pipe.cmd("SET").arg(key).arg(v);
            }
            KeyValue::Hash(pairs) => {
                let cmd = pipe.cmd("HSET").arg(key);
                for (field, value) in pairs {
                    cmd.arg(field).arg(value);
                }
            }
            KeyValue::List(elements) => {
                pipe.cmd("RPUSH").arg(key).arg(elements);
            }
            KeyValue::Set(members) => {
                pipe.cmd("SADD").arg(key).arg(members);
            }
            KeyValue::ZSet(members) => {
                let cmd = pipe.cmd("ZADD").arg(key);
                for (member, score) in members {
                    cmd.arg(score_arg(*score)).arg(member);
                }
            }
        }
        pipe.ignore();
        if let Some(ms) = ttl_ms {
            pipe.cmd("PEXPIRE").arg(key).arg(ms).ignore();
        }
        pipe.query_async::<()>(&mut self.conn).await.unwrap();
    }

    /// Makes `key` hold `value` at the destination, expiring in `ttl_ms`.
    async fn put_destination(&self, key: &[u8], value: &KeyValue, ttl_ms: Option<i64>) {
        let expire_at_ms = ttl_ms.map(|ms| keyferry_journal::now_ms() + ms);
        self.store
            .import_key(self.db, key.to_vec(), value.clone(), expire_at_ms, vec![])
            .await
            .unwrap();
    }

    /// Makes `key` hold `value` on both sides.
    async fn put_both(&mut self, key: &[u8], value: &KeyValue, ttl_ms: Option<i64>) {
        self.put_source(key, value, ttl_ms).await;
        self.put_destination(key, value, ttl_ms).await;
    }

    async fn run(&mut self, args: &[&[u8]]) {
        let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async::<redis::Value>(&mut self.conn)
            .await
            .unwrap();
    }

    async fn compare(&mut self, keys: &[Vec<u8>], check_values: bool) -> Vec<KeyComparison> {
        let opts = CompareOptions {
            chunk: CHUNK,
            check_values,
            ..CompareOptions::default()
        };
        compare_keys(&mut self.conn, &self.store, self.db, keys, &opts)
            .await
            .unwrap()
    }

    /// The outcome for `key` alone.
    async fn outcome(&mut self, key: &[u8]) -> Outcome {
        let mut compared = self.compare(&[key.to_vec()], true).await;
        assert_eq!(compared.len(), 1);
        compared.pop().unwrap().outcome
    }
}

/// A ZADD score as Redis spells it (Rust would print "inf").
fn score_arg(score: f64) -> String {
    match score {
        f64::INFINITY => "+inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        finite => finite.to_string(),
    }
}

/// Bytes that break any text handling: NUL, CRLF, invalid UTF-8.
fn nasty(tag: &str, i: usize) -> Vec<u8> {
    let mut bytes = format!("{tag}{i}").into_bytes();
    bytes.extend_from_slice(b"\x00\r\n\xff");
    bytes
}

fn big_hash() -> KeyValue {
    KeyValue::Hash((0..BIG).map(|i| (nasty("f", i), nasty("v", i))).collect())
}

fn big_list() -> KeyValue {
    KeyValue::List((0..BIG).map(|i| nasty("e", i % 7)).collect())
}

fn big_set() -> KeyValue {
    KeyValue::Set((0..BIG).map(|i| nasty("m", i)).collect())
}

/// Many ties (so ordering by member matters) and both infinities.
fn big_zset() -> KeyValue {
    let mut members: Vec<(Vec<u8>, f64)> = (0..BIG)
        .map(|i| (nasty("z", i), (i % 10) as f64 * 0.5 - 1.0))
        .collect();
    members.push((b"top\xff".to_vec(), f64::INFINITY));
    members.push((b"bottom\x00".to_vec(), f64::NEG_INFINITY));
    KeyValue::ZSet(members)
}

/// One key of every type, small and big, some with a time to live.
fn identical_keys() -> Vec<(Vec<u8>, KeyValue, Option<i64>)> {
    vec![
        (
            b"s\x00\r\n\xff".to_vec(),
            KeyValue::String(b"v\xff\x00".to_vec()),
            None,
        ),
        (
            b"empty".to_vec(),
            KeyValue::String(Vec::new()),
            Some(60_000),
        ),
        (
            b"h".to_vec(),
            KeyValue::Hash(vec![(b"f\xff".to_vec(), b"\r\n".to_vec())]),
            None,
        ),
        (b"big hash\xff".to_vec(), big_hash(), Some(60_000)),
        (b"big list\xff".to_vec(), big_list(), None),
        (b"big set\xff".to_vec(), big_set(), None),
        (b"big zset\xff".to_vec(), big_zset(), Some(120_000)),
        (
            b"l".to_vec(),
            KeyValue::List(vec![b"a".to_vec(), b"a".to_vec()]),
            None,
        ),
        (
            b"z".to_vec(),
            KeyValue::ZSet(vec![(b"m".to_vec(), -0.0)]),
            None,
        ),
    ]
}

#[tokio::test]
async fn identical_data_compares_the_same_and_each_difference_is_precise() {
    let mut sides = Sides::start().await;
    let identical = identical_keys();
    for (key, value, ttl) in &identical {
        sides.put_both(key, value, *ttl).await;
    }
    let mut keys: Vec<Vec<u8>> = identical.iter().map(|(k, _, _)| k.clone()).collect();
    keys.push(b"nowhere".to_vec());
    let compared = sides.compare(&keys, true).await;
    let keys_back: Vec<&[u8]> = compared.iter().map(|c| c.key.as_slice()).collect();
    assert_eq!(
        keys_back,
        keys.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    for comparison in &compared {
        assert_eq!(
            comparison.outcome,
            Outcome::Same,
            "{:?}",
            comparison.key.escape_ascii().to_string()
        );
    }

    // Existence, type, length, time to live.
    let value = KeyValue::String(b"v".to_vec());
    sides.put_source(b"missing", &value, None).await;
    assert_eq!(
        sides.outcome(b"missing").await,
        Outcome::MissingAtDestination
    );
    sides.put_destination(b"extra\xff", &value, None).await;
    assert_eq!(
        sides.outcome(b"extra\xff").await,
        Outcome::ExtraAtDestination
    );
    sides.put_source(b"type", &value, None).await;
    sides
        .put_destination(
            b"type",
            &KeyValue::Hash(vec![(b"f".to_vec(), b"v".to_vec())]),
            None,
        )
        .await;
    assert_eq!(
        sides.outcome(b"type").await,
        Outcome::TypeMismatch {
            source: "string".into(),
            destination: "hash".into()
        }
    );
    let three = KeyValue::List(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    sides.put_source(b"length", &three, None).await;
    sides
        .put_destination(
            b"length",
            &KeyValue::List(vec![b"a".to_vec(), b"b".to_vec()]),
            None,
        )
        .await;
    assert_eq!(
        sides.outcome(b"length").await,
        Outcome::LengthMismatch {
            source: 3,
            destination: 2
        }
    );
    sides.put_source(b"ttl", &value, Some(100_000)).await;
    sides.put_destination(b"ttl", &value, Some(200_000)).await;
    match sides.outcome(b"ttl").await {
        Outcome::TtlMismatch {
            source_ms: Some(source),
            destination_ms: Some(destination),
        } => {
            assert!((95_000..=100_000).contains(&source), "{source}");
            assert!((195_000..=200_000).contains(&destination), "{destination}");
        }
        other => panic!("{other:?}"),
    }
    sides.put_source(b"persistent", &value, None).await;
    sides
        .put_destination(b"persistent", &value, Some(100_000))
        .await;
    assert!(matches!(
        sides.outcome(b"persistent").await,
        Outcome::TtlMismatch {
            source_ms: None,
            destination_ms: Some(_)
        }
    ));
    sides.run(&[b"XADD", b"stream", b"*", b"f", b"v"]).await;
    assert_eq!(
        sides.outcome(b"stream").await,
        Outcome::Unsupported {
            type_name: "stream".into()
        }
    );

    // Values: same type, length and expiry, one element changed.
    sides
        .run(&[b"HSET", b"big hash\xff", &nasty("f", 2500), b"changed"])
        .await;
    let detail = value_detail(sides.outcome(b"big hash\xff").await);
    assert_eq!(detail, r#"field "f2500\x00\r\n\xff" has another value"#);

    sides
        .run(&[b"ZADD", b"big zset\xff", b"1.25", &nasty("z", 2999)])
        .await;
    let detail = value_detail(sides.outcome(b"big zset\xff").await);
    assert!(detail.starts_with("at rank "), "{detail}");
    assert!(detail.contains("(score 1.25)"), "{detail}");

    // A list with the same elements, in swapped order on each side.
    let ab = KeyValue::List(vec![b"a".to_vec(), b"b\xff".to_vec()]);
    let ba = KeyValue::List(vec![b"b\xff".to_vec(), b"a".to_vec()]);
    sides.put_source(b"order", &ab, None).await;
    sides.put_destination(b"order", &ba, None).await;
    assert_eq!(
        value_detail(sides.outcome(b"order").await),
        r#"at index 0: the source has "a", the destination "b\xff""#
    );
    sides
        .run(&[b"SREM", b"big set\xff", &nasty("m", 1234)])
        .await;
    sides.run(&[b"SADD", b"big set\xff", b"intruder"]).await;
    assert_eq!(
        value_detail(sides.outcome(b"big set\xff").await),
        r#"member "intruder" is missing at the destination"#
    );
    sides.run(&[b"SET", b"s\x00\r\n\xff", b"v\xff\x01"]).await;
    assert_eq!(
        value_detail(sides.outcome(b"s\x00\r\n\xff").await),
        "the strings differ from byte 2"
    );

    // Cheap checks only: equal types, lengths and expiry pass.
    let changed = [
        b"big hash\xff".to_vec(),
        b"order".to_vec(),
        b"length".to_vec(),
    ];
    let outcomes: Vec<Outcome> = sides
        .compare(&changed, false)
        .await
        .into_iter()
        .map(|c| c.outcome)
        .collect();
    assert_eq!(outcomes[..2], [Outcome::Same, Outcome::Same]);
    assert!(matches!(outcomes[2], Outcome::LengthMismatch { .. }));

    // Untouched keys still compare the same in one page with the changed.
    let mut page = vec![b"big list\xff".to_vec(), b"order".to_vec(), b"h".to_vec()];
    page.push(b"missing".to_vec());
    let outcomes: Vec<Outcome> = sides
        .compare(&page, true)
        .await
        .into_iter()
        .map(|c| c.outcome)
        .collect();
    assert_eq!(outcomes[0], Outcome::Same);
    assert!(matches!(outcomes[1], Outcome::ValueMismatch { .. }));
    assert_eq!(outcomes[2], Outcome::Same);
    assert_eq!(outcomes[3], Outcome::MissingAtDestination);
}

fn value_detail(outcome: Outcome) -> String {
    match outcome {
        Outcome::ValueMismatch { detail } => detail,
        other => panic!("expected a value mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn destination_keys_the_source_lacks_are_found_page_by_page() {
    let mut sides = Sides::start().await;
    let value = KeyValue::String(b"v".to_vec());
    for i in 0..7u8 {
        let key = [b'k', i, 0xff];
        if i % 3 == 0 {
            sides.put_destination(&key, &value, None).await;
        } else {
            sides.put_both(&key, &value, None).await;
        }
    }
    // Only at the source: not the destination's business here.
    sides.put_source(b"source only", &value, None).await;
    let mut extra = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    let mut pages = 0;
    loop {
        let (found, next) = destination_keys_missing_at_source(
            &mut sides.conn,
            &sides.store,
            sides.db,
            after.as_deref(),
            2,
        )
        .await
        .unwrap();
        pages += 1;
        extra.extend(found);
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        extra,
        vec![
            vec![b'k', 0, 0xff],
            vec![b'k', 3, 0xff],
            vec![b'k', 6, 0xff]
        ]
    );
    assert_eq!(pages, 4, "7 keys in pages of 2");
}

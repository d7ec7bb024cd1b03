//! Tests of the cheap checks' verdicts, and of the pipeline that keeps one
//! key's `WRONGTYPE` from failing a page.

use keyferry_testkit::RedisServer;

use super::*;
use crate::source::Source;

const NOW: i64 = 1_000_000;
const TOLERANCE: i64 = 1000;

fn source(kind: SourceKind, len: u64, ttl_ms: Option<i64>) -> SourceKey {
    SourceKey { kind, ttl_ms, len }
}

fn info(kind: KeyKind, len: u64, expire_at_ms: Option<i64>) -> KeyInfo {
    KeyInfo {
        kind,
        len,
        expire_at_ms,
    }
}

fn verdict(source: SourceKey, destination: Option<KeyInfo>) -> Option<Outcome> {
    cheap_outcome(&source, destination.as_ref(), NOW, TOLERANCE)
}

#[test]
fn existence_and_type_come_first() {
    let hash = SourceKind::Known(KeyKind::Hash);
    assert_eq!(
        verdict(source(SourceKind::Absent, 0, None), None),
        Some(Outcome::Same),
        "vanished on both sides"
    );
    assert_eq!(
        verdict(
            source(SourceKind::Absent, 0, None),
            Some(info(KeyKind::Set, 1, None))
        ),
        Some(Outcome::ExtraAtDestination)
    );
    assert_eq!(
        verdict(source(hash.clone(), 3, None), None),
        Some(Outcome::MissingAtDestination)
    );
    assert_eq!(
        verdict(source(SourceKind::Other("stream".into()), 0, None), None),
        Some(Outcome::Unsupported {
            type_name: "stream".into()
        })
    );
    assert_eq!(
        verdict(source(hash, 3, Some(5)), Some(info(KeyKind::ZSet, 4, None))),
        Some(Outcome::TypeMismatch {
            source: "hash".into(),
            destination: "zset".into()
        }),
        "a type mismatch hides the others"
    );
    assert!(matches!(
        verdict(
            source(SourceKind::ChangedType, 0, None),
            Some(info(KeyKind::Hash, 1, None))
        ),
        Some(Outcome::ValueMismatch { .. })
    ));
}

#[test]
fn lengths_then_times_to_live_are_compared() {
    let list = SourceKind::Known(KeyKind::List);
    assert_eq!(
        verdict(
            source(list.clone(), 3, None),
            Some(info(KeyKind::List, 2, None))
        ),
        Some(Outcome::LengthMismatch {
            source: 3,
            destination: 2
        })
    );
    assert_eq!(
        verdict(
            source(list.clone(), 3, None),
            Some(info(KeyKind::List, 3, None))
        ),
        None,
        "both persistent: the cheap checks agree"
    );
    assert_eq!(
        verdict(
            source(list.clone(), 3, Some(5_000)),
            Some(info(KeyKind::List, 3, Some(NOW + 5_000 - TOLERANCE)))
        ),
        None,
        "within the tolerance"
    );
    assert_eq!(
        verdict(
            source(list.clone(), 3, Some(5_000)),
            Some(info(KeyKind::List, 3, Some(NOW + 7_000)))
        ),
        Some(Outcome::TtlMismatch {
            source_ms: Some(5_000),
            destination_ms: Some(7_000)
        })
    );
    assert_eq!(
        verdict(
            source(list, 3, None),
            Some(info(KeyKind::List, 3, Some(NOW + 7_000)))
        ),
        Some(Outcome::TtlMismatch {
            source_ms: None,
            destination_ms: Some(7_000)
        })
    );
}

#[test]
fn type_names_map_to_kinds() {
    assert_eq!(kind_named("none"), SourceKind::Absent);
    assert_eq!(kind_named("zset"), SourceKind::Known(KeyKind::ZSet));
    assert_eq!(kind_named("string"), SourceKind::Known(KeyKind::String));
    assert_eq!(
        kind_named("ReJSON-RL"),
        SourceKind::Other("ReJSON-RL".into())
    );
}

#[tokio::test]
async fn one_keys_wrongtype_does_not_fail_the_pipeline() {
    let server = RedisServer::start();
    let source = Source::new(server.url().parse().unwrap(), None).unwrap();
    let mut conn = source.connect(0).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(b"s\xff")
        .arg("abc")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut hlen = redis::cmd("HLEN");
    hlen.arg(b"s\xff");
    let mut strlen = redis::cmd("STRLEN");
    strlen.arg(b"s\xff");
    let replies = query_each(&mut conn, vec![hlen, strlen]).await.unwrap();
    assert_eq!(replies, vec![Err(TypeChanged), Ok(Value::Int(3))]);
    assert!(query_each(&mut conn, Vec::new()).await.unwrap().is_empty());
}

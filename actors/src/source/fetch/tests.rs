//! Tests of reply interpretation that a live server cannot reproduce on
//! demand (type changes between round trips, repeats from a rehashing
//! scan). Reads against a real server are in `tests/source_fetch.rs`.

use redis::Value;

use super::*;

fn bulk(s: &[u8]) -> Value {
    Value::BulkString(s.to_vec())
}

/// An error reply as the server sends it (the crate does not export the
/// error type's constructor).
fn server_error(line: &str) -> Value {
    redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap()
}

fn wrongtype() -> Value {
    server_error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

fn read(attempt: Attempt) -> Fetched {
    match attempt {
        Attempt::Read(fetched) => fetched,
        Attempt::TypeChanged => panic!("expected a consistent read"),
    }
}

#[test]
fn keep_last_keeps_the_last_of_each_name_in_order() {
    let pairs = vec![
        (b"a".to_vec(), b"1".to_vec()),
        (b"b".to_vec(), b"2".to_vec()),
        (b"a".to_vec(), b"3".to_vec()),
    ];
    assert_eq!(
        keep_last(pairs, |(f, _)| f),
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"a".to_vec(), b"3".to_vec())
        ]
    );
}

#[test]
fn repeats_are_dropped_from_whole_hashes_and_sets_only() {
    let set = KeyValue::Set(vec![b"x".to_vec(), b"y".to_vec(), b"x".to_vec()]);
    assert_eq!(
        without_repeats(set),
        KeyValue::Set(vec![b"y".to_vec(), b"x".to_vec()])
    );
    let list = KeyValue::List(vec![b"x".to_vec(), b"x".to_vec()]);
    assert_eq!(without_repeats(list.clone()), list);
}

#[test]
fn a_scan_page_with_repeats_becomes_a_value_without_them() {
    let page = Value::Array(vec![
        bulk(b"0"),
        Value::Array(vec![
            bulk(b"f"),
            bulk(b"old"),
            bulk(b"g"),
            bulk(b"1"),
            bulk(b"f"),
            bulk(b"new"),
        ]),
    ]);
    let fetched =
        read(collection(b"k", None, Position::Hash(0), 10, [Value::Int(2), page]).unwrap());
    assert_eq!(
        fetched,
        Fetched::Value {
            value: KeyValue::Hash(vec![
                (b"g".to_vec(), b"1".to_vec()),
                (b"f".to_vec(), b"new".to_vec())
            ]),
            ttl_ms: None,
            bytes: 1 + 2 + 4,
        }
    );
}

#[test]
fn a_type_change_between_round_trips_is_reported_not_failed() {
    let range = Value::Array(vec![bulk(b"a")]);
    assert!(matches!(
        collection(b"k", None, Position::List(0), 10, [wrongtype(), range]).unwrap(),
        Attempt::TypeChanged
    ));
    assert!(matches!(
        string(b"k", None, wrongtype()).unwrap(),
        Attempt::TypeChanged
    ));
}

#[test]
fn other_server_errors_fail_the_read() {
    let denied = server_error("NOPERM this user has no permissions");
    let error = string(b"k", None, denied).err().unwrap();
    assert_eq!(error.code(), Some("NOPERM"));
}

#[test]
fn a_full_range_that_reaches_the_length_is_whole() {
    let range = Value::Array(vec![bulk(b"a"), bulk(b"inf"), bulk(b"b"), bulk(b"-1.5")]);
    let fetched =
        read(collection(b"k", Some(5), Position::ZSet(0), 2, [Value::Int(2), range]).unwrap());
    assert_eq!(
        fetched,
        Fetched::Value {
            value: KeyValue::ZSet(vec![(b"a".to_vec(), f64::INFINITY), (b"b".to_vec(), -1.5)]),
            ttl_ms: Some(5),
            bytes: 1 + 2 + 16,
        }
    );
}

#[test]
fn a_full_range_short_of_the_length_is_big() {
    let range = Value::Array(vec![bulk(b"a"), bulk(b"b")]);
    let Fetched::Big(big) =
        read(collection(b"k", None, Position::List(0), 2, [Value::Int(3), range]).unwrap())
    else {
        panic!("expected a big key");
    };
    assert_eq!((big.kind(), big.len_hint()), (KeyKind::List, 3));
    assert_eq!(
        big,
        BigKey::new(
            KeyValue::List(vec![b"a".to_vec(), b"b".to_vec()]),
            None,
            3,
            Position::List(2)
        )
    );
}

#[test]
fn an_emptied_collection_is_missing() {
    let empty_scan = Value::Array(vec![bulk(b"0"), Value::Array(vec![])]);
    assert_eq!(
        read(
            collection(
                b"k",
                None,
                Position::Set(0),
                10,
                [Value::Int(0), empty_scan]
            )
            .unwrap()
        ),
        Fetched::Missing
    );
    assert_eq!(
        read(string(b"k", None, Value::Nil).unwrap()),
        Fetched::Missing
    );
}

#[test]
fn probes_map_types_and_ttls() {
    let simple = |s: &str| Value::SimpleString(s.into());
    assert!(matches!(
        probe(simple("hash"), Value::Int(-1)).unwrap(),
        Probe::Read {
            kind: KeyKind::Hash,
            ttl_ms: None
        }
    ));
    assert!(matches!(
        probe(simple("zset"), Value::Int(0)).unwrap(),
        Probe::Read {
            kind: KeyKind::ZSet,
            ttl_ms: Some(0)
        }
    ));
    assert!(matches!(
        probe(simple("list"), Value::Int(-2)).unwrap(),
        Probe::Done(Fetched::Missing)
    ));
    assert!(matches!(
        probe(simple("none"), Value::Int(-2)).unwrap(),
        Probe::Done(Fetched::Missing)
    ));
    assert!(matches!(
        probe(simple("ReJSON-RL"), Value::Int(-1)).unwrap(),
        Probe::Done(Fetched::Unsupported { type_name }) if type_name == "ReJSON-RL"
    ));
}

#[test]
fn a_zero_chunk_reads_one_element_at_a_time() {
    let limits = FetchLimits { chunk_elements: 0 };
    assert_eq!(limits.chunk(), 1);
    let cmd = Position::List(0).read_command(b"k", limits.chunk());
    let args: Vec<Vec<u8>> = cmd
        .args_iter()
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => bytes.to_vec(),
            redis::Arg::Cursor => Vec::new(),
        })
        .collect();
    assert_eq!(
        args,
        [
            b"LRANGE".to_vec(),
            b"k".to_vec(),
            b"0".to_vec(),
            b"0".to_vec()
        ]
    );
}

#[test]
fn approx_bytes_counts_strings_and_scores() {
    assert_eq!(approx_bytes(&KeyValue::String(b"abc".to_vec())), 3);
    assert_eq!(approx_bytes(&KeyValue::ZSet(vec![(b"m".to_vec(), 1.0)])), 9);
    assert_eq!(
        approx_bytes(&KeyValue::Set(vec![b"ab".to_vec(), b"c".to_vec()])),
        3
    );
}

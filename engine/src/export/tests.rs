//! Tests of the migration tools' reads: key facts, key paging and the
//! offset-free sorted-set walk.

use crate::export::KeyInfo;
use crate::keyvalue::{KeyKind, KeyValue};
use crate::store::Store;
use crate::test_support::{b, db, store};

fn import(store: &Store, key: &[u8], value: KeyValue, expire_at_ms: Option<i64>) {
    store
        .import_key(db(0), key.to_vec(), value, expire_at_ms, vec![])
        .wait()
        .unwrap();
}

/// Makes `key` of database 0 expired without waiting: its expiry is moved
/// into the past through a separate connection, behind the store's back.
fn expire_now(store: &Store, key: &[u8]) {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute(
        "UPDATE keys SET expire_at_ms = 1 WHERE db = 0 AND key = ?1",
        [key],
    )
    .unwrap();
}

#[test]
fn key_info_reports_type_length_and_expiry() {
    let (_dir, store) = store();
    let later = keyferry_journal::now_ms() + 3_600_000;
    import(&store, b"s\xff", KeyValue::String(b("hello")), Some(later));
    import(
        &store,
        b"h",
        KeyValue::Hash(vec![(b("f"), b("v")), (b("g"), b("w"))]),
        None,
    );
    import(
        &store,
        b"l",
        KeyValue::List(vec![b("a"), b("a"), b("b")]),
        None,
    );
    import(&store, b"z", KeyValue::ZSet(vec![(b("m"), 1.0)]), None);
    import(&store, b"e", KeyValue::String(Vec::new()), None);
    let info = |key: &[u8]| store.read(|v| v.key_info(db(0), key)).unwrap();
    assert_eq!(
        info(b"s\xff"),
        Some(KeyInfo {
            kind: KeyKind::String,
            len: 5,
            expire_at_ms: Some(later)
        })
    );
    assert_eq!(
        info(b"h"),
        Some(KeyInfo {
            kind: KeyKind::Hash,
            len: 2,
            expire_at_ms: None
        })
    );
    assert_eq!(
        info(b"l").map(|i| (i.kind, i.len)),
        Some((KeyKind::List, 3))
    );
    assert_eq!(
        info(b"z").map(|i| (i.kind, i.len)),
        Some((KeyKind::ZSet, 1))
    );
    assert_eq!(info(b"e").map(|i| i.len), Some(0), "an empty string exists");
    assert_eq!(info(b"missing"), None);
}

#[test]
fn key_info_treats_an_expired_key_as_absent() {
    let (_dir, store) = store();
    let later = keyferry_journal::now_ms() + 3_600_000;
    import(&store, b"k", KeyValue::Set(vec![b("m")]), Some(later));
    expire_now(&store, b"k");
    assert_eq!(store.read(|v| v.key_info(db(0), b"k")).unwrap(), None);
}

#[test]
fn keys_after_pages_live_keys_of_one_database_in_byte_order() {
    let (_dir, store) = store();
    let later = keyferry_journal::now_ms() + 3_600_000;
    let keys: [&[u8]; 5] = [b"", b"a", b"a\x00", b"b\xff", b"c"];
    for key in keys {
        import(&store, key, KeyValue::String(b("v")), Some(later));
    }
    expire_now(&store, b"c");
    store
        .import_key(db(1), b("a\x01"), KeyValue::String(b("v")), None, vec![])
        .wait()
        .unwrap();
    let page =
        |after: Option<&[u8]>, limit| store.read(|v| v.keys_after(db(0), after, limit)).unwrap();
    assert_eq!(page(None, 2), vec![b(""), b("a")]);
    assert_eq!(page(Some(b"a"), 2), vec![b("a\x00"), b"b\xff".to_vec()]);
    assert_eq!(page(Some(b"b\xff"), 2), Vec::<Vec<u8>>::new(), "c expired");
}

#[test]
fn zset_range_after_walks_in_zrange_order_across_ties() {
    let (_dir, store) = store();
    let members = vec![
        (b("b"), 1.0),
        (b(""), 1.0),
        (b("a"), 1.0),
        (b("low"), f64::NEG_INFINITY),
        (b("high"), f64::INFINITY),
        (b"mid\xff".to_vec(), 0.5),
    ];
    import(&store, b"z", KeyValue::ZSet(members), None);
    let expected = store.read(|v| v.zset_range(db(0), b"z", 0, -1)).unwrap();
    let mut walked = Vec::new();
    loop {
        let after = walked.last().map(|(m, s): &(Vec<u8>, f64)| (*s, m.clone()));
        let page = store
            .read(|v| {
                v.zset_range_after(
                    db(0),
                    b"z",
                    after.as_ref().map(|(s, m)| (*s, m.as_slice())),
                    4,
                )
            })
            .unwrap();
        let done = page.len() < 4;
        walked.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(walked, expected);
    assert_eq!(walked.len(), 6);
    assert_eq!(walked[0].0, b("low"));
}

#[test]
fn zset_range_after_is_empty_for_a_missing_key_and_refuses_other_types() {
    let (_dir, store) = store();
    import(&store, b"s", KeyValue::String(b("v")), None);
    let missing = store.read(|v| v.zset_range_after(db(0), b"nope", None, 10));
    assert!(missing.unwrap().is_empty());
    let wrong = store.read(|v| v.zset_range_after(db(0), b"s", None, 10));
    assert!(matches!(wrong, Err(crate::StoreError::WrongType)));
}

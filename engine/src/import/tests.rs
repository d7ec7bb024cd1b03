//! Tests of whole-key replacement and deletion.

use keyferry_journal::event::Event;

use crate::error::StoreError;
use crate::keyvalue::{KeyKind, KeyValue};
use crate::store::StoreConfig;
use crate::test_support::{b, db, hash_all, list_all, rows, set_all, store, store_with, zset_all};

fn batch_event(keys: u64) -> Event {
    Event::BatchCommitted {
        run_id: "r1".into(),
        db: 0,
        keys,
        bytes: 0,
    }
}

/// A value of `kind` holding elements named after each of `names`.
fn value_of(kind: KeyKind, names: &[&str]) -> KeyValue {
    let bytes = |n: &&str| b(n);
    match kind {
        KeyKind::String => KeyValue::String(names.concat().into_bytes()),
        KeyKind::Hash => KeyValue::Hash(
            names
                .iter()
                .map(|n| (b(n), format!("v-{n}").into_bytes()))
                .collect(),
        ),
        KeyKind::List => KeyValue::List(names.iter().map(bytes).collect()),
        KeyKind::Set => KeyValue::Set(names.iter().map(bytes).collect()),
        KeyKind::ZSet => KeyValue::ZSet(
            names
                .iter()
                .zip(1..)
                .map(|(n, s)| (b(n), f64::from(s)))
                .collect(),
        ),
    }
}

/// Reads `key` back as a [`KeyValue`], whatever its type.
fn read_back(store: &crate::Store, key: &[u8]) -> Option<KeyValue> {
    let d = db(0);
    let kind = store.read(|v| v.key_type(d, key)).unwrap()?;
    Some(match kind {
        KeyKind::String => KeyValue::String(store.read(|v| v.string_get(d, key)).unwrap().unwrap()),
        KeyKind::Hash => KeyValue::Hash(hash_all(store, d, key, 2)),
        KeyKind::List => KeyValue::List(list_all(store, d, key)),
        KeyKind::Set => KeyValue::Set(set_all(store, d, key, 2)),
        KeyKind::ZSet => KeyValue::ZSet(zset_all(store, d, key)),
    })
}

const KINDS: [KeyKind; 5] = [
    KeyKind::String,
    KeyKind::Hash,
    KeyKind::List,
    KeyKind::Set,
    KeyKind::ZSet,
];

#[test]
fn import_replaces_any_type_with_any_type_leaving_nothing_behind() {
    let (dir, store) = store();
    for old in KINDS {
        for new in KINDS {
            let key = format!("{}->{}", old.name(), new.name()).into_bytes();
            store
                .import_key(
                    db(0),
                    key.clone(),
                    value_of(old, &["a", "b", "c"]),
                    None,
                    vec![],
                )
                .wait()
                .unwrap();
            // Overlapping elements: "c" must come back with its new value,
            // "a" and "b" must be gone.
            let replacement = value_of(new, &["c", "d"]);
            store
                .import_key(db(0), key.clone(), replacement.clone(), None, vec![])
                .wait()
                .unwrap();
            assert_eq!(
                read_back(&store, &key),
                Some(replacement),
                "{} replaced by {}",
                old.name(),
                new.name()
            );
        }
    }
    // Physically, only the new values' elements remain: 5 keys of each
    // new type, two elements each (strings have none).
    assert_eq!(rows(&dir.path().join("keyferry.db"), "keys"), 25);
    for table in ["hashes", "lists", "sets", "zsets"] {
        assert_eq!(
            rows(&dir.path().join("keyferry.db"), table),
            5 * 2,
            "{table}"
        );
    }
}

#[test]
fn a_replaced_big_key_vanishes_at_once_and_is_reaped_later() {
    let (dir, store) = store_with(StoreConfig {
        inline_free_limit: 10,
        sweeper: crate::SweeperConfig {
            interval: None,
            max_expired_per_tick: 10,
            max_reaped_per_tick: 40,
        },
        ..StoreConfig::default()
    });
    let path = dir.path().join("keyferry.db");
    let big: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    store
        .import_key(db(0), b("k"), value_of(KeyKind::Set, &big), None, vec![])
        .wait()
        .unwrap();
    store
        .import_key(db(0), b("k"), value_of(KeyKind::Set, &["x"]), None, vec![])
        .wait()
        .unwrap();
    assert_eq!(set_all(&store, db(0), b"k", 10), vec![b("x")]);
    assert_eq!(
        rows(&path, "sets"),
        101,
        "the old members wait in the trash"
    );
    let mut reaped = 0;
    loop {
        let report = store.sweep_once().wait().unwrap();
        assert!(report.reaped <= 40, "bounded work per tick");
        reaped += report.reaped;
        if report.reaped == 0 {
            break;
        }
    }
    assert_eq!(reaped, 100);
    assert_eq!(rows(&path, "sets"), 1);
    assert_eq!(
        rows(&path, "keys"),
        1,
        "the trash row goes with its last element"
    );
}

#[test]
fn import_sets_replaces_and_clears_the_ttl() {
    let (_dir, store) = store();
    let ttl = |store: &crate::Store| {
        store
            .read(|v| v.lookup(db(0), b"k"))
            .unwrap()
            .map(|m| m.expire_at_ms())
    };
    let later = keyferry_journal::now_ms() + 3_600_000;
    store
        .import_key(db(0), b("k"), KeyValue::String(b("v")), Some(later), vec![])
        .wait()
        .unwrap();
    assert_eq!(ttl(&store), Some(Some(later)));
    store
        .import_key(db(0), b("k"), KeyValue::String(b("w")), None, vec![])
        .wait()
        .unwrap();
    assert_eq!(
        ttl(&store),
        Some(None),
        "an import without TTL makes the key persistent"
    );
    // An expiry already in the past: the key ends up absent, old value gone.
    store
        .import_key(
            db(0),
            b("k"),
            KeyValue::String(b("x")),
            Some(later - 7_200_000),
            vec![],
        )
        .wait()
        .unwrap();
    assert_eq!(ttl(&store), None);
}

#[test]
fn importing_an_empty_collection_deletes_the_key() {
    let (dir, store) = store();
    store
        .import_key(db(0), b("k"), value_of(KeyKind::Hash, &["a"]), None, vec![])
        .wait()
        .unwrap();
    store
        .import_key(db(0), b("k"), KeyValue::Hash(vec![]), None, vec![])
        .wait()
        .unwrap();
    assert_eq!(read_back(&store, b"k"), None);
    assert_eq!(rows(&dir.path().join("keyferry.db"), "hashes"), 0);
}

#[test]
fn delete_key_reports_whether_the_key_existed() {
    let (dir, store) = store();
    assert!(
        !store
            .delete_key(db(0), b("missing"), vec![])
            .wait()
            .unwrap()
    );
    store
        .import_key(
            db(0),
            b("k"),
            value_of(KeyKind::List, &["a", "b"]),
            None,
            vec![],
        )
        .wait()
        .unwrap();
    assert!(store.delete_key(db(0), b("k"), vec![]).wait().unwrap());
    assert!(
        !store.delete_key(db(0), b("k"), vec![]).wait().unwrap(),
        "deleting twice is a no-op"
    );
    assert_eq!(read_back(&store, b"k"), None);
    assert_eq!(rows(&dir.path().join("keyferry.db"), "lists"), 0);
}

#[test]
fn binary_keys_and_values_round_trip() {
    let (_dir, store) = store();
    let nasty = b"\r\n\0\xff\xfe not utf-8 \xc3\x28".to_vec();
    let keys = [
        nasty.clone(),
        b"a\0b".to_vec(),
        b"a\0c".to_vec(),
        b"a".to_vec(),
        Vec::new(),
    ];
    for (i, key) in keys.iter().enumerate() {
        let value = [nasty.as_slice(), &[i as u8]].concat();
        store
            .import_key(db(0), key.clone(), KeyValue::String(value), None, vec![])
            .wait()
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        let expected = [nasty.as_slice(), &[i as u8]].concat();
        assert_eq!(
            store.read(|v| v.string_get(db(0), key)).unwrap(),
            Some(expected)
        );
    }
    let collections = [
        KeyValue::Hash(vec![(nasty.clone(), nasty.clone()), (Vec::new(), b("\0"))]),
        KeyValue::List(vec![nasty.clone(), Vec::new(), b("\r\n")]),
        KeyValue::Set(vec![nasty.clone(), Vec::new()]),
        KeyValue::ZSet(vec![(nasty.clone(), -1.5), (Vec::new(), f64::INFINITY)]),
    ];
    for value in collections {
        store
            .import_key(db(0), nasty.clone(), value.clone(), None, vec![])
            .wait()
            .unwrap();
        assert_eq!(
            read_back(&store, &nasty).map(unordered),
            Some(unordered(value))
        );
    }
}

/// `value` with the elements of unordered types sorted (pages come back
/// in byte order, not insertion order).
fn unordered(mut value: KeyValue) -> KeyValue {
    match &mut value {
        KeyValue::Hash(pairs) => pairs.sort(),
        KeyValue::Set(members) => members.sort(),
        _ => {}
    }
    value
}

#[test]
fn the_sixteen_databases_are_isolated() {
    let (_dir, store) = store();
    for d in crate::Db::all() {
        let value = KeyValue::String(vec![d.index()]);
        store
            .import_key(d, b("k"), value, None, vec![])
            .wait()
            .unwrap();
    }
    assert!(store.delete_key(db(3), b("k"), vec![]).wait().unwrap());
    for d in crate::Db::all() {
        let expected = (d.index() != 3).then(|| vec![d.index()]);
        assert_eq!(
            store.read(|v| v.string_get(d, b"k")).unwrap(),
            expected,
            "{d}"
        );
    }
}

#[test]
fn data_and_journal_events_commit_together() {
    let (_dir, store) = store();
    let seqs = store
        .import_key(
            db(0),
            b("k"),
            value_of(KeyKind::Hash, &["a"]),
            None,
            vec![batch_event(1), batch_event(2)],
        )
        .wait()
        .unwrap();
    assert_eq!(seqs.len(), 2);
    let logged: Vec<Event> = store
        .journal()
        .read_from(seqs[0])
        .unwrap()
        .map(|e| e.unwrap().event)
        .collect();
    assert_eq!(logged, vec![batch_event(1), batch_event(2)]);
}

#[test]
fn a_failing_write_leaves_neither_data_nor_event() {
    let (_dir, store) = store();
    let before = value_of(KeyKind::Set, &["old"]);
    store
        .import_key(db(0), b("k"), before.clone(), None, vec![])
        .wait()
        .unwrap();
    let last_seq = store.journal().last_seq().unwrap();

    // The import and the event are written, then the operation fails.
    let failed = store
        .write(|tx| {
            tx.import_key(db(0), b"k", &value_of(KeyKind::Hash, &["new"]), None)?;
            tx.append_events(&[batch_event(1)])?;
            Err::<(), _>(StoreError::WrongType)
        })
        .wait();
    assert!(matches!(failed, Err(StoreError::WrongType)));

    // The import itself fails part-way (the NaN comes after a valid member).
    let nan = KeyValue::ZSet(vec![(b("a"), 1.0), (b("b"), f64::NAN)]);
    let failed = store
        .import_key(db(0), b("k"), nan, None, vec![batch_event(2)])
        .wait();
    assert!(matches!(failed, Err(StoreError::NanScore)));

    assert_eq!(read_back(&store, b"k"), Some(before));
    assert_eq!(store.journal().last_seq().unwrap(), last_seq);
}

//! Tests of whole-key operations.

use super::*;
use crate::keyvalue::KeyValue;
use crate::test_support::{b, db, rows, set_all, store};

fn import(store: &crate::Store, n: i64, key: &str, value: KeyValue, ttl: Option<i64>) {
    store
        .import_key(db(n), b(key), value, ttl, vec![])
        .wait()
        .unwrap();
}

#[test]
fn rename_repoints_the_row_and_keeps_ttl_and_elements() {
    let (_dir, store) = store();
    import(
        &store,
        0,
        "s",
        KeyValue::Set(vec![b("a"), b("b")]),
        Some(i64::MAX),
    );
    import(&store, 0, "t", KeyValue::String(b("old")), None);
    let renamed = store
        .write(|tx| tx.key_rename(db(0), b"s", b"t", false))
        .wait()
        .unwrap();
    assert_eq!(renamed, Some(true));
    assert_eq!(set_all(&store, db(0), b"t", 10), vec![b("a"), b("b")]);
    let meta = store.read(|v| v.lookup(db(0), b"t")).unwrap().unwrap();
    assert_eq!(meta.expire_at_ms(), Some(i64::MAX));
    assert!(store.read(|v| v.lookup(db(0), b"s")).unwrap().is_none());
    let missing = store
        .write(|tx| tx.key_rename(db(0), b"s", b"x", false))
        .wait()
        .unwrap();
    assert_eq!(missing, None);
    import(&store, 0, "u", KeyValue::String(b("u")), None);
    let nx = store
        .write(|tx| tx.key_rename(db(0), b"t", b"u", true))
        .wait()
        .unwrap();
    assert_eq!(nx, Some(false));
}

#[test]
fn move_and_copy_between_databases() {
    let (dir, store) = store();
    import(&store, 0, "h", KeyValue::Hash(vec![(b("f"), b("v"))]), None);
    let copied = store
        .write(|tx| tx.key_copy(db(0), b"h", db(3), b"h2", false))
        .wait()
        .unwrap();
    assert!(copied);
    assert_eq!(
        store.read(|v| v.hash_get(db(3), b"h2", b"f")).unwrap(),
        Some(b("v"))
    );
    assert_eq!(rows(&dir.path().join("keyferry.db"), "hashes"), 2);
    let again = store
        .write(|tx| tx.key_copy(db(0), b"h", db(3), b"h2", false))
        .wait()
        .unwrap();
    assert!(!again, "the target exists and REPLACE was not given");
    let moved = store
        .write(|tx| tx.key_move(db(0), b"h", db(1)))
        .wait()
        .unwrap();
    assert!(moved);
    assert_eq!(
        store.read(|v| v.hash_get(db(1), b"h", b"f")).unwrap(),
        Some(b("v"))
    );
    import(&store, 0, "h", KeyValue::String(b("x")), None);
    let blocked = store
        .write(|tx| tx.key_move(db(0), b"h", db(1)))
        .wait()
        .unwrap();
    assert!(!blocked, "the target database has the key");
}

#[test]
fn expire_conditions_follow_redis() {
    let nx = ExpireIf {
        nx: true,
        ..ExpireIf::default()
    };
    assert!(nx.allows(None, 5));
    assert!(!nx.allows(Some(1), 5));
    let xx = ExpireIf {
        xx: true,
        ..ExpireIf::default()
    };
    assert!(!xx.allows(None, 5));
    let gt = ExpireIf {
        gt: true,
        ..ExpireIf::default()
    };
    assert!(!gt.allows(None, 5), "no expiry is infinite");
    assert!(gt.allows(Some(4), 5));
    assert!(!gt.allows(Some(5), 5));
    let lt = ExpireIf {
        lt: true,
        ..ExpireIf::default()
    };
    assert!(lt.allows(None, 5));
    assert!(!lt.allows(Some(5), 5));
    let xx_lt = ExpireIf { xx: true, ..lt };
    assert!(!xx_lt.allows(None, 5));
    assert!(xx_lt.allows(Some(6), 5));
}

#[test]
fn expiring_in_the_past_deletes_and_persist_clears() {
    let (_dir, store) = store();
    import(&store, 0, "k", KeyValue::String(b("v")), None);
    let set = store
        .write(|tx| tx.key_expire(db(0), b"k", i64::MAX - 1, ExpireIf::default()))
        .wait()
        .unwrap();
    assert!(set);
    let persisted = store
        .write(|tx| tx.key_persist(db(0), b"k"))
        .wait()
        .unwrap();
    assert!(persisted);
    let gone = store
        .write(|tx| tx.key_expire(db(0), b"k", 0, ExpireIf::default()))
        .wait()
        .unwrap();
    assert!(gone);
    assert_eq!(store.read(|v| v.key_count(db(0))).unwrap(), 0);
}

#[test]
fn listing_scanning_and_sampling_filter_by_pattern_type_and_db() {
    let (_dir, store) = store();
    for key in ["user:1", "user:2", "item:1"] {
        import(&store, 0, key, KeyValue::String(b("v")), None);
    }
    import(&store, 0, "user:set", KeyValue::Set(vec![b("m")]), None);
    import(&store, 0, "user:dead", KeyValue::String(b("v")), Some(1));
    import(&store, 1, "user:other", KeyValue::String(b("v")), None);
    let users = KeyFilter {
        pattern: Some(b"user:*"),
        kind: None,
    };
    let listed = store.read(|v| v.key_list(db(0), users)).unwrap();
    assert_eq!(listed, vec![b("user:1"), b("user:2"), b("user:set")]);
    let sets = KeyFilter {
        pattern: None,
        kind: Some(b"SET"),
    };
    assert_eq!(
        store.read(|v| v.key_list(db(0), sets)).unwrap(),
        vec![b("user:set")]
    );
    let mut scanned = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.read(|v| v.key_scan(db(0), cursor, 2, users)).unwrap();
        scanned.extend(page.keys);
        cursor = page.cursor;
        if cursor == 0 {
            break;
        }
    }
    scanned.sort();
    assert_eq!(scanned, listed);
    assert_eq!(store.read(|v| v.key_count(db(0))).unwrap(), 4);
    let random = store.read(|v| v.key_random(db(1))).unwrap();
    assert_eq!(random, Some(b("user:other")));
    assert_eq!(store.read(|v| v.key_random(db(2))).unwrap(), None);
}

#[test]
fn flush_and_swap_databases() {
    let (dir, store) = store();
    import(&store, 0, "a", KeyValue::List(vec![b("x"), b("y")]), None);
    import(&store, 0, "same", KeyValue::String(b("zero")), None);
    import(&store, 1, "same", KeyValue::String(b("one")), None);
    store.write(|tx| tx.swap_db(db(0), db(1))).wait().unwrap();
    assert_eq!(
        store.read(|v| v.string_get(db(0), b"same")).unwrap(),
        Some(b("one"))
    );
    assert_eq!(store.read(|v| v.key_count(db(1))).unwrap(), 2);
    store.write(|tx| tx.flush_db(db(1))).wait().unwrap();
    assert_eq!(store.read(|v| v.key_count(db(1))).unwrap(), 0);
    assert_eq!(store.read(|v| v.key_count(db(0))).unwrap(), 1);
    assert_eq!(rows(&dir.path().join("keyferry.db"), "lists"), 0);
}

#[test]
fn flushing_a_big_collection_leaves_its_elements_to_the_sweeper() {
    let (dir, store) = store();
    let path = dir.path().join("keyferry.db");
    let members: Vec<Vec<u8>> = (0..1500).map(|i| format!("m{i}").into_bytes()).collect();
    import(&store, 0, "big", KeyValue::Set(members), None);
    import(&store, 0, "small", KeyValue::Set(vec![b("x")]), None);
    store.write(|tx| tx.flush_db(db(0))).wait().unwrap();
    assert_eq!(store.read(|v| v.key_count(db(0))).unwrap(), 0);
    assert_eq!(rows(&path, "sets"), 1500, "the big set waits in the trash");
    while store.sweep_once().wait().unwrap().reaped > 0 {}
    assert_eq!(rows(&path, "sets"), 0);
    assert_eq!(rows(&path, "keys"), 0);
}

#[test]
fn a_scan_returns_every_key_present_throughout_once_despite_changes() {
    let (_dir, store) = store();
    for i in 0..20 {
        import(&store, 0, &format!("k{i}"), KeyValue::String(b("v")), None);
    }
    let all = KeyFilter::new(None, None);
    let (mut cursor, mut seen, mut round) = (0, Vec::new(), 0);
    loop {
        let page = store.read(|v| v.key_scan(db(0), cursor, 3, all)).unwrap();
        seen.extend(page.keys);
        // Churn between pages: delete one key, add two.
        round += 1;
        store
            .delete_key(db(0), format!("k{}", 19 - round).into_bytes(), vec![])
            .wait()
            .unwrap();
        import(
            &store,
            0,
            &format!("new{round}a"),
            KeyValue::String(b("v")),
            None,
        );
        import(
            &store,
            0,
            &format!("new{round}b"),
            KeyValue::String(b("v")),
            None,
        );
        cursor = page.cursor;
        if cursor == 0 {
            break;
        }
    }
    assert!(round < 19, "the scan ends although keys keep arriving");
    let survivors: Vec<Vec<u8>> = (0..19 - round)
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    for key in &survivors {
        assert_eq!(seen.iter().filter(|k| *k == key).count(), 1, "{key:?}");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no key twice");
}

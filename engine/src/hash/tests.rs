use crate::collection::RandomCount;
use crate::error::StoreError;
use crate::keyvalue::{KeyKind, KeyValue};
use crate::test_support::{b, db, hash_all, store};

fn pair(f: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (b(f), b(v))
}

#[test]
fn set_and_delete_keep_len_exact_and_drop_empty_hashes() {
    let (_dir, store) = store();
    let added = store
        .write(|tx| {
            tx.hash_set(
                db(0),
                b"h",
                vec![pair("a", "1"), pair("b", "2"), pair("a", "3")],
            )
        })
        .wait()
        .unwrap();
    assert_eq!(added, 2);
    let again = store
        .write(|tx| tx.hash_set(db(0), b"h", vec![pair("b", "x"), pair("c", "y")]))
        .wait()
        .unwrap();
    assert_eq!(again, 1);
    assert_eq!(
        store.read(|v| v.len(db(0), b"h", KeyKind::Hash)).unwrap(),
        3
    );
    assert_eq!(
        hash_all(&store, db(0), b"h", 2),
        vec![pair("a", "3"), pair("b", "x"), pair("c", "y")]
    );
    let removed = store
        .write(|tx| tx.hash_delete(db(0), b"h", &[b("a"), b("zz"), b("a")]))
        .wait()
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(
        store.read(|v| v.len(db(0), b"h", KeyKind::Hash)).unwrap(),
        2
    );
    store
        .write(|tx| tx.hash_delete(db(0), b"h", &[b("b"), b("c")]))
        .wait()
        .unwrap();
    assert_eq!(store.read(|v| v.lookup(db(0), b"h")).unwrap(), None);
}

#[test]
fn reads_answer_for_missing_fields_and_keys() {
    let (_dir, store) = store();
    store
        .import_key(
            db(0),
            b("h"),
            KeyValue::Hash(vec![pair("f", "hello")]),
            None,
            vec![],
        )
        .wait()
        .unwrap();
    store
        .read(|v| {
            assert_eq!(v.hash_strlen(db(0), b"h", b"f")?, 5);
            assert_eq!(v.hash_strlen(db(0), b"h", b"g")?, 0);
            assert!(v.hash_exists(db(0), b"h", b"f")?);
            assert!(!v.hash_exists(db(0), b"nope", b"f")?);
            assert_eq!(
                v.hash_get_many(db(0), b"h", &[b("g"), b("f")])?,
                vec![None, Some(b("hello"))]
            );
            assert_eq!(v.hash_get_many(db(0), b"nope", &[b("f")])?, vec![None]);
            assert_eq!(v.hash_fields(db(0), b"h")?, vec![b("f")]);
            assert_eq!(v.hash_values(db(0), b"h")?, vec![b("hello")]);
            Ok(())
        })
        .unwrap();
}

#[test]
fn set_nx_and_update_leave_refused_fields_alone() {
    let (_dir, store) = store();
    let first = store
        .write(|tx| tx.hash_set_nx(db(0), b"h", b"f", b"1"))
        .wait()
        .unwrap();
    let second = store
        .write(|tx| tx.hash_set_nx(db(0), b"h", b"f", b"2"))
        .wait()
        .unwrap();
    assert!(first && !second);
    let refused = store
        .write(|tx| tx.hash_update(db(0), b"h", b"f", |_| Err::<Vec<u8>, _>("no")))
        .wait()
        .unwrap();
    assert_eq!(refused, Err("no"));
    let updated = store
        .write(|tx| {
            tx.hash_update(db(0), b"h", b"g", |old| {
                assert_eq!(old, None);
                Ok::<_, ()>(b("new"))
            })
        })
        .wait()
        .unwrap();
    assert_eq!(updated, Ok(b("new")));
    assert_eq!(
        hash_all(&store, db(0), b"h", 10),
        vec![pair("f", "1"), pair("g", "new")]
    );
    store
        .import_key(db(0), b("s"), KeyValue::String(b("x")), None, vec![])
        .wait()
        .unwrap();
    let wrong = store
        .write(|tx| tx.hash_update(db(0), b"s", b"f", |_| Ok::<_, ()>(b("1"))))
        .wait();
    assert!(matches!(wrong, Err(StoreError::WrongType)));
}

#[test]
fn random_fields_follow_the_count_rules() {
    let (_dir, store) = store();
    let pairs: Vec<_> = (0..20)
        .map(|i| pair(&format!("f{i:02}"), &i.to_string()))
        .collect();
    store
        .import_key(db(0), b("h"), KeyValue::Hash(pairs.clone()), None, vec![])
        .wait()
        .unwrap();
    let some = store
        .read(|v| v.hash_random(db(0), b"h", RandomCount::Distinct(5)))
        .unwrap();
    assert_eq!(some.len(), 5);
    let mut unique = some.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
    assert!(some.iter().all(|p| pairs.contains(p)));
    let all = store
        .read(|v| v.hash_random(db(0), b"h", RandomCount::Distinct(100)))
        .unwrap();
    assert_eq!(all, pairs);
    let repeated = store
        .read(|v| v.hash_random(db(0), b"h", RandomCount::WithRepeats(60)))
        .unwrap();
    assert_eq!(repeated.len(), 60);
    assert!(repeated.iter().all(|p| pairs.contains(p)));
}

#[test]
fn scan_cursors_walk_a_big_hash_once() {
    let (_dir, store) = store();
    let pairs: Vec<_> = (0..300).map(|i| pair(&format!("f{i:03}"), "v")).collect();
    store
        .import_key(db(0), b("h"), KeyValue::Hash(pairs.clone()), None, vec![])
        .wait()
        .unwrap();
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let (next, page) = store
            .read(|v| v.hash_scan_cursor(db(0), b"h", cursor, 7))
            .unwrap();
        assert!(page.len() <= 7);
        seen.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen, pairs);
    // A cursor this process never issued still makes progress.
    let (_, page) = store
        .read(|v| v.hash_scan_cursor(db(0), b"h", 295, 10))
        .unwrap();
    assert_eq!(page, pairs[295..].to_vec());
}

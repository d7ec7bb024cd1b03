use crate::collection::RandomCount;
use crate::error::StoreError;
use crate::keyvalue::{KeyKind, KeyValue};
use crate::set::SetOp;
use crate::store::Store;
use crate::test_support::{b, db, set_all, store};

fn members(names: &[&str]) -> Vec<Vec<u8>> {
    names.iter().map(|n| b(n)).collect()
}

fn put(store: &Store, key: &str, names: &[&str]) {
    store
        .import_key(db(0), b(key), KeyValue::Set(members(names)), None, vec![])
        .wait()
        .unwrap();
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

#[test]
fn add_and_remove_keep_len_exact_and_drop_empty_sets() {
    let (_dir, store) = store();
    let added = store
        .write(|tx| tx.set_add(db(0), b"s", members(&["a", "b", "a"])))
        .wait()
        .unwrap();
    assert_eq!(added, 2);
    assert_eq!(store.read(|v| v.len(db(0), b"s", KeyKind::Set)).unwrap(), 2);
    let removed = store
        .write(|tx| tx.set_remove(db(0), b"s", &members(&["a", "x"])))
        .wait()
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(store.read(|v| v.len(db(0), b"s", KeyKind::Set)).unwrap(), 1);
    store
        .write(|tx| tx.set_remove(db(0), b"s", &members(&["b"])))
        .wait()
        .unwrap();
    assert_eq!(store.read(|v| v.lookup(db(0), b"s")).unwrap(), None);
}

#[test]
fn algebra_follows_redis() {
    let (_dir, store) = store();
    put(&store, "a", &["1", "2", "3", "4"]);
    put(&store, "b", &["2", "3", "5"]);
    put(&store, "c", &["3", "9"]);
    let run = |op, keys: &[&str]| {
        sorted(
            store
                .read(|v| v.set_combine(db(0), op, &members(keys)))
                .unwrap(),
        )
    };
    assert_eq!(run(SetOp::Inter, &["a", "b", "c"]), members(&["3"]));
    assert_eq!(
        run(SetOp::Inter, &["a", "a"]),
        members(&["1", "2", "3", "4"])
    );
    assert_eq!(run(SetOp::Inter, &["a", "missing"]), members(&[]));
    assert_eq!(
        run(SetOp::Union, &["b", "missing", "c"]),
        members(&["2", "3", "5", "9"])
    );
    assert_eq!(
        run(SetOp::Diff, &["a", "b", "missing"]),
        members(&["1", "4"])
    );
    assert_eq!(run(SetOp::Diff, &["a", "a"]), members(&[]));
    assert_eq!(run(SetOp::Diff, &["missing", "a"]), members(&[]));
    assert_eq!(
        store
            .read(|v| v.set_inter_card(db(0), &members(&["a", "b"]), 0))
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .read(|v| v.set_inter_card(db(0), &members(&["a", "b"]), 1))
            .unwrap(),
        1
    );
    store
        .import_key(db(0), b("str"), KeyValue::String(b("x")), None, vec![])
        .wait()
        .unwrap();
    assert!(matches!(
        store.read(|v| v.set_combine(db(0), SetOp::Inter, &members(&["missing", "str"]))),
        Err(StoreError::WrongType)
    ));
}

#[test]
fn store_replaces_the_destination_even_when_it_is_a_source() {
    let (_dir, store) = store();
    put(&store, "a", &["1", "2", "3"]);
    put(&store, "b", &["2", "3", "4"]);
    let len = store
        .write(|tx| tx.set_store(db(0), SetOp::Inter, b"a", &members(&["a", "b"])))
        .wait()
        .unwrap();
    assert_eq!(len, 2);
    assert_eq!(set_all(&store, db(0), b"a", 10), members(&["2", "3"]));
    assert_eq!(store.read(|v| v.len(db(0), b"a", KeyKind::Set)).unwrap(), 2);
    let empty = store
        .write(|tx| tx.set_store(db(0), SetOp::Diff, b"a", &members(&["a", "b"])))
        .wait()
        .unwrap();
    assert_eq!(empty, 0);
    assert_eq!(store.read(|v| v.lookup(db(0), b"a")).unwrap(), None);
}

#[test]
fn pop_move_and_random_members() {
    let (_dir, store) = store();
    put(&store, "s", &["a", "b", "c", "d", "e"]);
    let popped = store.write(|tx| tx.set_pop(db(0), b"s", 2)).wait().unwrap();
    assert_eq!(popped.len(), 2);
    let left = set_all(&store, db(0), b"s", 10);
    assert_eq!(left.len(), 3);
    assert!(popped.iter().all(|m| !left.contains(m)));
    assert_eq!(store.read(|v| v.len(db(0), b"s", KeyKind::Set)).unwrap(), 3);
    let random = store
        .read(|v| v.set_random(db(0), b"s", RandomCount::WithRepeats(9)))
        .unwrap();
    assert_eq!(random.len(), 9);
    assert!(random.iter().all(|m| left.contains(m)));
    let moved = store
        .write(move |tx| {
            let m = tx
                .view()
                .set_random(db(0), b"s", RandomCount::Distinct(1))?;
            tx.set_move(db(0), b"s", b"t", &m[0])
        })
        .wait()
        .unwrap();
    assert!(moved);
    assert_eq!(store.read(|v| v.len(db(0), b"t", KeyKind::Set)).unwrap(), 1);
    let rest = store
        .write(|tx| tx.set_pop(db(0), b"s", 10))
        .wait()
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(store.read(|v| v.lookup(db(0), b"s")).unwrap(), None);
}

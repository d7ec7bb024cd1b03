//! Tests of lists against a `VecDeque` model.

use std::collections::VecDeque;

use crate::error::StoreError;
use crate::keyvalue::{KeyValue, Side};
use crate::store::Store;
use crate::test_support::{b, db, list_all, rows, store};

fn push(store: &Store, side: Side, values: &[&str]) -> u64 {
    store
        .list_push(db(0), b("l"), side, values.iter().map(|v| b(v)).collect())
        .wait()
        .unwrap()
}

fn pop(store: &Store, side: Side, count: usize) -> Vec<Vec<u8>> {
    store.list_pop(db(0), b("l"), side, count).wait().unwrap()
}

#[test]
fn push_and_pop_at_both_ends() {
    let (dir, store) = store();
    assert_eq!(
        push(&store, Side::Left, &["b", "a"]),
        2,
        "LPUSH b a leaves a b"
    );
    assert_eq!(push(&store, Side::Right, &["c", "d"]), 4);
    assert_eq!(
        list_all(&store, db(0), b"l"),
        vec![b("a"), b("b"), b("c"), b("d")]
    );
    assert_eq!(pop(&store, Side::Left, 1), vec![b("a")]);
    assert_eq!(pop(&store, Side::Right, 2), vec![b("d"), b("c")]);
    assert_eq!(
        store.read(|v| v.list_index(db(0), b"l", 0)).unwrap(),
        Some(b("b"))
    );
    assert_eq!(pop(&store, Side::Right, 5), vec![b("b")]);
    assert_eq!(
        store.read(|v| v.lookup(db(0), b"l")).unwrap(),
        None,
        "an emptied list is deleted"
    );
    assert_eq!(pop(&store, Side::Left, 1), Vec::<Vec<u8>>::new());
    assert_eq!(rows(&dir.path().join("keyferry.db"), "keys"), 0);
}

#[test]
fn index_and_range_follow_redis_indexing() {
    let (_dir, store) = store();
    push(&store, Side::Right, &["x", "y"]);
    push(&store, Side::Left, &["w"]);
    let index = |i| store.read(|v| v.list_index(db(0), b"l", i)).unwrap();
    assert_eq!(
        (index(0), index(2), index(-1), index(-3)),
        (Some(b("w")), Some(b("y")), Some(b("y")), Some(b("w")))
    );
    assert_eq!((index(3), index(-4)), (None, None));
    let range = |start, stop| {
        store
            .read(|v| v.list_range(db(0), b"l", start, stop))
            .unwrap()
    };
    assert_eq!(range(1, -1), vec![b("x"), b("y")]);
    assert_eq!(range(-100, 0), vec![b("w")]);
    assert!(range(2, 1).is_empty());
}

#[test]
fn middle_inserts_and_removals_match_a_model() {
    let (_dir, store) = store();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    // A fixed pseudo-random walk (LCG) over pushes, pops, inserts and
    // removals at every kind of position, checked after every step.
    let mut seed: u64 = 42;
    let mut next = |bound: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    for step in 0..400 {
        let value = format!("v{step}").into_bytes();
        let len = model.len() as u64;
        match next(6) {
            0 => {
                model.push_front(value.clone());
                store
                    .write(move |tx| tx.list_push(db(0), b"l", Side::Left, &[value]))
                    .wait()
                    .unwrap();
            }
            1 => {
                model.push_back(value.clone());
                store
                    .write(move |tx| tx.list_push(db(0), b"l", Side::Right, &[value]))
                    .wait()
                    .unwrap();
            }
            2 | 3 if len > 0 => {
                let index = next(len + 1);
                model.insert(index as usize, value.clone());
                let new_len = store
                    .write(move |tx| tx.list_insert(db(0), b"l", index, &value))
                    .wait()
                    .unwrap();
                assert_eq!(new_len, Some(len + 1));
            }
            4 if len > 0 => {
                let index = next(len) as i64 - if next(2) == 0 { 0 } else { len as i64 };
                let rank = index.rem_euclid(len as i64) as usize;
                let removed = store
                    .write(move |tx| tx.list_remove(db(0), b"l", index))
                    .wait()
                    .unwrap();
                assert_eq!(removed, model.remove(rank));
            }
            _ => {
                let popped = pop(&store, Side::Left, 1);
                assert_eq!(popped, model.pop_front().into_iter().collect::<Vec<_>>());
            }
        }
        assert_eq!(
            list_all(&store, db(0), b"l"),
            Vec::from(model.clone()),
            "after step {step}"
        );
    }
}

#[test]
fn out_of_range_and_wrong_type_are_errors() {
    let (_dir, store) = store();
    push(&store, Side::Right, &["a"]);
    let insert = store
        .write(|tx| tx.list_insert(db(0), b"l", 2, b"z"))
        .wait();
    assert!(matches!(insert, Err(StoreError::IndexOutOfRange)));
    assert_eq!(
        store
            .write(|tx| tx.list_insert(db(0), b"missing", 0, b"z"))
            .wait()
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .write(|tx| tx.list_remove(db(0), b"l", 1))
            .wait()
            .unwrap(),
        None
    );

    store
        .import_key(db(0), b("s"), KeyValue::String(b("v")), None, vec![])
        .wait()
        .unwrap();
    let pushed = store
        .write(|tx| tx.list_push(db(0), b"s", Side::Left, &[b("x")]))
        .wait();
    assert!(matches!(pushed, Err(StoreError::WrongType)));
    assert!(matches!(
        store.read(|v| v.list_index(db(0), b"s", 0)),
        Err(StoreError::WrongType)
    ));
    assert_eq!(
        store.read(|v| v.string_get(db(0), b"s")).unwrap(),
        Some(b("v")),
        "a failed push changes nothing"
    );
}

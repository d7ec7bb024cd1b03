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
    let mut next = lcg(42);
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

#[test]
fn lrem_closes_gaps_from_either_side_like_a_model() {
    // Values drawn from a tiny alphabet so every LREM finds several
    // matches scattered through the list, near both ends.
    let (_dir, store) = store();
    let mut model: Vec<Vec<u8>> = Vec::new();
    let mut next = lcg(7);
    for step in 0..200 {
        if model.len() < 8 || next(3) > 0 {
            let value = b(&format!("{}", next(3)));
            let side = if next(2) == 0 {
                Side::Left
            } else {
                Side::Right
            };
            match side {
                Side::Left => model.insert(0, value.clone()),
                Side::Right => model.push(value.clone()),
            }
            store
                .list_push(db(0), b("l"), side, vec![value])
                .wait()
                .unwrap();
            continue;
        }
        let value = b(&format!("{}", next(3)));
        let count = next(5) as i64 - 2;
        let matches: Vec<usize> = (0..model.len()).filter(|&i| model[i] == value).collect();
        let take = if count == 0 {
            matches.len()
        } else {
            (count.unsigned_abs() as usize).min(matches.len())
        };
        let doomed: Vec<usize> = if count >= 0 {
            matches[..take].to_vec()
        } else {
            matches[matches.len() - take..].to_vec()
        };
        for i in doomed.iter().rev() {
            model.remove(*i);
        }
        let v = value.clone();
        let removed = store
            .write(move |tx| tx.list_remove_value(db(0), b"l", count, &v))
            .wait()
            .unwrap();
        assert_eq!(removed as usize, take, "step {step}");
        assert_eq!(list_all(&store, db(0), b"l"), model, "after step {step}");
        assert_eq!(
            store
                .read(|v| v.len(db(0), b"l", crate::keyvalue::KeyKind::List))
                .unwrap(),
            model.len() as u64
        );
    }
}

#[test]
fn set_insert_at_pivot_trim_and_positions() {
    let (_dir, store) = store();
    push(&store, Side::Right, &["a", "b", "c", "b", "d"]);
    let set = |index, value: &'static str| {
        store
            .write(move |tx| tx.list_set(db(0), b"l", index, value.as_bytes()))
            .wait()
    };
    assert!(set(-1, "e").unwrap());
    assert!(matches!(set(5, "x"), Err(StoreError::IndexOutOfRange)));
    assert!(
        !store
            .write(|tx| tx.list_set(db(0), b"none", 0, b"x"))
            .wait()
            .unwrap()
    );
    let insert = |after, pivot: &'static str| {
        store
            .write(move |tx| tx.list_insert_at_pivot(db(0), b"l", after, pivot.as_bytes(), b"N"))
            .wait()
            .unwrap()
    };
    assert_eq!(insert(false, "b"), Some(6));
    assert_eq!(insert(true, "e"), Some(7));
    assert_eq!(insert(true, "zz"), Some(-1));
    assert_eq!(
        list_all(&store, db(0), b"l"),
        ["a", "N", "b", "c", "b", "e", "N"].map(b)
    );
    let pos = |value: &str, rank, count, maxlen| {
        store
            .read(|v| v.list_positions(db(0), b"l", value.as_bytes(), rank, count, maxlen))
            .unwrap()
    };
    assert_eq!(pos("b", 1, 0, 0), vec![2, 4]);
    assert_eq!(pos("b", -1, 1, 0), vec![4]);
    assert_eq!(pos("N", -2, 0, 0), vec![1]);
    assert_eq!(pos("b", 1, 0, 3), vec![2]);
    assert_eq!(pos("N", -1, 0, 2), vec![6]);
    assert_eq!(pos("b", 3, 0, 0), Vec::<u64>::new());

    store
        .write(|tx| tx.list_trim(db(0), b"l", 1, -2))
        .wait()
        .unwrap();
    assert_eq!(
        list_all(&store, db(0), b"l"),
        ["N", "b", "c", "b", "e"].map(b)
    );
    assert_eq!(
        store.read(|v| v.list_index(db(0), b"l", 0)).unwrap(),
        Some(b("N"))
    );
    store
        .write(|tx| tx.list_trim(db(0), b"l", 3, 1))
        .wait()
        .unwrap();
    assert_eq!(
        store.read(|v| v.lookup(db(0), b"l")).unwrap(),
        None,
        "empty trim deletes"
    );
}

#[test]
fn lmove_between_and_within_lists() {
    let (_dir, store) = store();
    push(&store, Side::Right, &["a", "b", "c"]);
    let lmove = |src: &'static str, dst: &'static str, from, to| {
        store
            .write(move |tx| tx.list_move(db(0), src.as_bytes(), dst.as_bytes(), from, to))
            .wait()
    };
    assert_eq!(
        lmove("l", "l", Side::Left, Side::Right).unwrap(),
        Some(b("a"))
    );
    assert_eq!(list_all(&store, db(0), b"l"), ["b", "c", "a"].map(b));
    assert_eq!(
        lmove("l", "m", Side::Right, Side::Left).unwrap(),
        Some(b("a"))
    );
    assert_eq!(
        lmove("l", "m", Side::Left, Side::Right).unwrap(),
        Some(b("b"))
    );
    assert_eq!(list_all(&store, db(0), b"m"), ["a", "b"].map(b));
    assert_eq!(
        lmove("l", "l", Side::Right, Side::Left).unwrap(),
        Some(b("c")),
        "one element onto itself"
    );
    assert_eq!(list_all(&store, db(0), b"l"), [b("c")]);
    assert_eq!(lmove("none", "l", Side::Left, Side::Left).unwrap(), None);
    store
        .import_key(db(0), b("s"), KeyValue::String(b("v")), None, vec![])
        .wait()
        .unwrap();
    assert!(matches!(
        lmove("l", "s", Side::Left, Side::Left),
        Err(StoreError::WrongType)
    ));
    assert_eq!(
        list_all(&store, db(0), b"l"),
        [b("c")],
        "nothing moved on WRONGTYPE"
    );
    assert_eq!(
        lmove("none", "s", Side::Left, Side::Left).unwrap(),
        None,
        "a missing source wins"
    );
}

/// A fixed pseudo-random walk (an LCG): `next(bound)` is in `0..bound`.
fn lcg(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |bound| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    }
}

//! Tests of sorted sets: ordering, ranges, `ZADD` options, set operations
//! and scanning.

use super::*;
use crate::error::StoreError;
use crate::keyvalue::KeyValue;
use crate::store::Store;
use crate::test_support::{b, db, store, zset_all};

fn import(store: &Store, key: &str, members: &[(&str, f64)]) {
    let members = members.iter().map(|(m, s)| (b(m), *s)).collect();
    store
        .import_key(db(0), b(key), KeyValue::ZSet(members), None, vec![])
        .wait()
        .unwrap();
}

fn add(store: &Store, flags: ZAddFlags, pairs: &[(f64, &str)]) -> Result<ZAddOutcome, StoreError> {
    let pairs: Vec<(f64, Vec<u8>)> = pairs.iter().map(|(s, m)| (*s, b(m))).collect();
    store
        .write(move |tx| tx.zset_add(db(0), b"z", flags, &pairs))
        .wait()
}

fn members(list: &[ScoredMember]) -> Vec<&str> {
    list.iter()
        .map(|(m, _)| std::str::from_utf8(m).unwrap())
        .collect()
}

#[test]
fn ranges_order_by_score_then_member_bytes() {
    let (_dir, store) = store();
    let members = vec![
        (b("b"), 2.0),
        (b("a"), 2.0),
        (b("z"), -1.0),
        (b"\xff".to_vec(), 2.0),
        (b("top"), f64::INFINITY),
    ];
    store
        .import_key(db(0), b("z"), KeyValue::ZSet(members), None, vec![])
        .wait()
        .unwrap();
    let all = store.read(|v| v.zset_range(db(0), b"z", 0, -1)).unwrap();
    let order: Vec<Vec<u8>> = all.into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        order,
        vec![b("z"), b("a"), b("b"), b"\xff".to_vec(), b("top")]
    );
    assert_eq!(
        store.read(|v| v.zset_range(db(0), b"z", -2, -2)).unwrap(),
        vec![(b"\xff".to_vec(), 2.0)]
    );
    let by_score = store
        .read(|v| v.zset_range_by_score(db(0), b"z", 0.0, 2.0, 2))
        .unwrap();
    assert_eq!(by_score, vec![(b("a"), 2.0), (b("b"), 2.0)]);
    assert_eq!(
        store.read(|v| v.zset_score(db(0), b"z", b"top")).unwrap(),
        Some(f64::INFINITY)
    );
    assert_eq!(
        store.read(|v| v.zset_score(db(0), b"z", b"none")).unwrap(),
        None
    );
    let page = store
        .read(|v| v.zset_scan(db(0), b"z", Some(b"b"), 10))
        .unwrap();
    assert_eq!(
        page,
        vec![
            (b("top"), f64::INFINITY),
            (b("z"), -1.0),
            (b"\xff".to_vec(), 2.0)
        ]
    );
    let rank = |m: &[u8], rev| store.read(|v| v.zset_rank(db(0), b"z", m, rev)).unwrap();
    assert_eq!(
        (rank(b"z", false), rank(b"b", false), rank(b"top", false)),
        (Some(0), Some(2), Some(4))
    );
    assert_eq!(
        (rank(b"top", true), rank(b"\xff", true), rank(b"x", true)),
        (Some(0), Some(1), None)
    );
}

#[test]
fn reading_another_type_is_wrongtype() {
    let (_dir, store) = store();
    store
        .import_key(db(0), b("s"), KeyValue::Set(vec![b("m")]), None, vec![])
        .wait()
        .unwrap();
    assert!(matches!(
        store.read(|v| v.zset_score(db(0), b"s", b"m")),
        Err(StoreError::WrongType)
    ));
    assert!(matches!(
        store.read(|v| v.hash_get(db(0), b"s", b"m")),
        Err(StoreError::WrongType)
    ));
    assert!(matches!(
        store.read(|v| v.string_get(db(0), b"s")),
        Err(StoreError::WrongType)
    ));
    assert_eq!(
        store
            .read(|v| v.zset_range(db(0), b"missing", 0, -1))
            .unwrap(),
        vec![]
    );
}

#[test]
fn zadd_options_follow_redis() {
    let (_dir, store) = store();
    let plain = ZAddFlags::default();
    let xx = ZAddFlags { xx: true, ..plain };
    assert_eq!(
        add(&store, xx, &[(1.0, "a")]).unwrap(),
        ZAddOutcome::Changed(0)
    );
    assert_eq!(
        store.read(|v| v.lookup(db(0), b"z")).unwrap(),
        None,
        "XX creates nothing"
    );
    assert_eq!(
        add(&store, plain, &[(1.0, "a"), (2.0, "b"), (3.0, "a")]).unwrap(),
        ZAddOutcome::Changed(2)
    );
    assert_eq!(
        zset_all(&store, db(0), b"z"),
        vec![(b("b"), 2.0), (b("a"), 3.0)]
    );
    let ch = ZAddFlags { ch: true, ..plain };
    assert_eq!(
        add(&store, ch, &[(3.0, "a"), (5.0, "b"), (0.0, "c")]).unwrap(),
        ZAddOutcome::Changed(2)
    );
    let gt = ZAddFlags {
        gt: true,
        ch: true,
        ..plain
    };
    assert_eq!(
        add(&store, gt, &[(1.0, "a"), (6.0, "b"), (9.0, "d")]).unwrap(),
        ZAddOutcome::Changed(2)
    );
    let lt_xx = ZAddFlags {
        lt: true,
        xx: true,
        ch: true,
        ..plain
    };
    assert_eq!(
        add(&store, lt_xx, &[(-1.0, "a"), (-1.0, "e")]).unwrap(),
        ZAddOutcome::Changed(1)
    );
    let nx = ZAddFlags { nx: true, ..plain };
    assert_eq!(
        add(&store, nx, &[(7.0, "a"), (7.0, "f")]).unwrap(),
        ZAddOutcome::Changed(1)
    );
    assert_eq!(
        zset_all(&store, db(0), b"z"),
        vec![
            (b("a"), -1.0),
            (b("c"), 0.0),
            (b("b"), 6.0),
            (b("f"), 7.0),
            (b("d"), 9.0)
        ]
    );
    assert_eq!(
        store.read(|v| v.len(db(0), b"z", KeyKind::ZSet)).unwrap(),
        5,
        "len stays exact"
    );

    let incr = ZAddFlags {
        incr: true,
        ..plain
    };
    assert_eq!(
        add(&store, incr, &[(2.5, "a")]).unwrap(),
        ZAddOutcome::Score(Some(1.5))
    );
    let incr_gt = ZAddFlags {
        incr: true,
        gt: true,
        ..plain
    };
    assert_eq!(
        add(&store, incr_gt, &[(-1.0, "a")]).unwrap(),
        ZAddOutcome::Score(None)
    );
    add(&store, plain, &[(f64::INFINITY, "i")]).unwrap();
    assert!(matches!(
        add(&store, incr, &[(f64::NEG_INFINITY, "i")]),
        Err(StoreError::NanScore)
    ));
}

#[test]
fn score_and_lex_ranges_with_limits_and_removal() {
    let (_dir, store) = store();
    import(
        &store,
        "z",
        &[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0)],
    );
    let select = |range: ZRange, rev| {
        store
            .read(|v| v.zset_select(db(0), b"z", &range, rev))
            .unwrap()
    };
    let scores = |min, min_exclusive, max, max_exclusive| ScoreRange {
        min,
        min_exclusive,
        max,
        max_exclusive,
    };
    assert_eq!(
        members(&select(
            ZRange::Score(scores(2.0, true, 4.0, false), Limit::ALL),
            false
        )),
        ["c", "d"]
    );
    assert_eq!(
        members(&select(
            ZRange::Score(
                scores(f64::NEG_INFINITY, false, 4.0, true),
                Limit {
                    offset: 1,
                    count: 2
                }
            ),
            true
        )),
        ["b", "a"]
    );
    assert!(
        select(
            ZRange::Score(scores(3.0, true, 3.0, false), Limit::ALL),
            false
        )
        .is_empty()
    );
    assert!(
        select(
            ZRange::Score(
                scores(1.0, false, 5.0, false),
                Limit {
                    offset: -1,
                    count: 2
                }
            ),
            false
        )
        .is_empty()
    );
    assert_eq!(
        members(&select(ZRange::Rank { start: 0, stop: 1 }, true)),
        ["e", "d"]
    );
    let lex = |min, max| LexRange { min, max };
    let incl = |m: &str| LexLimit::Inclusive(b(m));
    let excl = |m: &str| LexLimit::Exclusive(b(m));
    assert_eq!(
        members(&select(
            ZRange::Lex(lex(excl("a"), incl("c")), Limit::ALL),
            false
        )),
        ["b", "c"]
    );
    assert_eq!(
        members(&select(
            ZRange::Lex(
                lex(LexLimit::NegInf, LexLimit::PosInf),
                Limit {
                    offset: 3,
                    count: -1
                }
            ),
            false
        )),
        ["d", "e"]
    );
    assert!(
        select(
            ZRange::Lex(lex(LexLimit::PosInf, LexLimit::PosInf), Limit::ALL),
            false
        )
        .is_empty()
    );
    let count = |range: ZRange| store.read(|v| v.zset_count(db(0), b"z", &range)).unwrap();
    assert_eq!(
        count(ZRange::Score(scores(2.0, false, 4.0, false), Limit::ALL)),
        3
    );
    assert_eq!(count(ZRange::Lex(lex(incl("b"), excl("e")), Limit::ALL)), 3);

    let remove = |range: ZRange| {
        store
            .write(move |tx| tx.zset_remove_range(db(0), b"z", &range))
            .wait()
            .unwrap()
    };
    assert_eq!(
        remove(ZRange::Rank {
            start: -2,
            stop: -1
        }),
        2
    );
    assert_eq!(
        remove(ZRange::Lex(lex(incl("a"), incl("a")), Limit::ALL)),
        1
    );
    assert_eq!(
        zset_all(&store, db(0), b"z"),
        vec![(b("b"), 2.0), (b("c"), 3.0)]
    );
    assert_eq!(
        remove(ZRange::Score(scores(0.0, false, 10.0, false), Limit::ALL)),
        2
    );
    assert_eq!(
        store.read(|v| v.lookup(db(0), b"z")).unwrap(),
        None,
        "emptied zset is deleted"
    );
}

#[test]
fn pops_take_the_ends_and_delete_an_emptied_key() {
    let (_dir, store) = store();
    import(&store, "z", &[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
    let pop = |max, count| {
        store
            .write(move |tx| tx.zset_pop(db(0), b"z", max, count))
            .wait()
            .unwrap()
    };
    assert_eq!(pop(true, 2), vec![(b("c"), 3.0), (b("b"), 2.0)]);
    assert_eq!(pop(false, 0), vec![]);
    assert_eq!(pop(false, 5), vec![(b("a"), 1.0)]);
    assert_eq!(store.read(|v| v.lookup(db(0), b"z")).unwrap(), None);
    let removed = store
        .write(|tx| tx.zset_remove(db(0), b"z", &[b("a")]))
        .wait()
        .unwrap();
    assert_eq!(removed, 0);
}

#[test]
fn set_operations_weigh_aggregate_and_accept_plain_sets() {
    let (_dir, store) = store();
    import(&store, "x", &[("a", 1.0), ("b", 2.0), ("i", f64::INFINITY)]);
    import(
        &store,
        "y",
        &[("b", 10.0), ("c", 20.0), ("i", f64::NEG_INFINITY)],
    );
    store
        .import_key(
            db(0),
            b("s"),
            KeyValue::Set(vec![b("a"), b("c")]),
            None,
            vec![],
        )
        .wait()
        .unwrap();
    let keys = |names: &[&str]| names.iter().map(|n| b(n)).collect::<Vec<_>>();
    let combine = |names: &[&str], weights: &[f64], aggregate, op| {
        let keys = keys(names);
        store
            .read(|v| v.zset_combine(db(0), &keys, weights, aggregate, op))
            .unwrap()
    };
    assert_eq!(
        combine(&["x", "y", "s"], &[], Aggregate::Sum, SetOp::Union),
        vec![(b("i"), 0.0), (b("a"), 2.0), (b("b"), 12.0), (b("c"), 21.0)],
        "inf + -inf sums to 0"
    );
    assert_eq!(
        combine(&["x", "y"], &[2.0, 0.5], Aggregate::Max, SetOp::Inter),
        vec![(b("b"), 5.0), (b("i"), f64::INFINITY)]
    );
    assert_eq!(
        combine(&["x", "missing"], &[], Aggregate::Sum, SetOp::Inter),
        vec![]
    );
    assert_eq!(
        combine(&["x", "y", "missing"], &[], Aggregate::Sum, SetOp::Diff),
        vec![(b("a"), 1.0)]
    );
    assert_eq!(
        combine(&["s", "x"], &[0.0, 1.0], Aggregate::Min, SetOp::Union),
        vec![
            (b("a"), 0.0),
            (b("c"), 0.0),
            (b("b"), 2.0),
            (b("i"), f64::INFINITY)
        ]
    );
    import(&store, "big", &[("m", 5.0), ("x", 1.0), ("y", 2.0)]);
    import(&store, "one", &[("m", f64::INFINITY)]);
    import(&store, "two", &[("m", f64::NEG_INFINITY), ("z", 1.0)]);
    assert_eq!(
        combine(&["big", "one", "two"], &[], Aggregate::Sum, SetOp::Union)[3],
        (b("m"), 5.0),
        "smallest input first, as Redis: (inf + -inf = 0) + 5"
    );
    let card = |limit| {
        store
            .read(|v| v.zset_inter_card(db(0), &keys(&["x", "y"]), limit))
            .unwrap()
    };
    assert_eq!((card(0), card(1)), (2, 1));

    store
        .import_key(db(0), b("str"), KeyValue::String(b("v")), None, vec![])
        .wait()
        .unwrap();
    let wrong = store.read(|v| {
        v.zset_combine(
            db(0),
            &keys(&["x", "str"]),
            &[],
            Aggregate::Sum,
            SetOp::Union,
        )
    });
    assert!(matches!(wrong, Err(StoreError::WrongType)));

    let stored = store
        .write(|tx| {
            let result = tx.view().zset_combine(
                db(0),
                &[b("x"), b("y")],
                &[],
                Aggregate::Sum,
                SetOp::Inter,
            )?;
            tx.zset_store(db(0), b"x", result)
        })
        .wait()
        .unwrap();
    assert_eq!(stored, 2);
    assert_eq!(
        zset_all(&store, db(0), b"x"),
        vec![(b("i"), 0.0), (b("b"), 12.0)]
    );
    let emptied = store
        .write(|tx| tx.zset_store(db(0), b"x", Vec::new()))
        .wait()
        .unwrap();
    assert_eq!(emptied, 0);
    assert_eq!(store.read(|v| v.lookup(db(0), b"x")).unwrap(), None);
}

#[test]
fn scan_cursors_visit_every_member_of_a_big_key() {
    let (_dir, store) = store();
    let expected: Vec<(Vec<u8>, f64)> = (0..500)
        .map(|i| {
            (
                format!("member-{:03}", i / 3)
                    .into_bytes()
                    .into_iter()
                    .chain([i as u8])
                    .collect(),
                f64::from(i),
            )
        })
        .collect();
    store
        .import_key(
            db(0),
            b("big"),
            KeyValue::ZSet(expected.clone()),
            None,
            vec![],
        )
        .wait()
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut steps = 0;
    loop {
        let (next, page) = store
            .read(|v| v.zset_scan_cursor(db(0), b"big", cursor, 10))
            .unwrap();
        seen.extend(page);
        steps += 1;
        if next == 0 {
            break;
        }
        assert_ne!(next, cursor, "a scan always moves on");
        cursor = next;
    }
    assert!(
        steps >= 50,
        "a big key is scanned in pages of about `count`"
    );
    seen.sort_by(by_score);
    assert_eq!(seen, expected, "every member exactly once");
    let (_, restarted) = store
        .read(|v| v.zset_scan_cursor(db(0), b"big", 10, 10))
        .unwrap();
    assert_eq!(
        restarted.len(),
        10,
        "an unknown cursor resumes at its ordinal"
    );

    import(&store, "small", &[("a", 1.0), ("b", 2.0)]);
    let (next, page) = store
        .read(|v| v.zset_scan_cursor(db(0), b"small", 0, 1))
        .unwrap();
    assert_eq!(
        (next, members(&page)),
        (0, vec!["a", "b"]),
        "a small key comes back whole, in score order"
    );
}

#[test]
fn random_members_respect_count_semantics() {
    let (_dir, store) = store();
    import(&store, "z", &[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
    let random = |count| store.read(|v| v.zset_random(db(0), b"z", count)).unwrap();
    assert_eq!(members(&random(RandomCount::Distinct(5))), ["c", "b", "a"]);
    let two = random(RandomCount::Distinct(2));
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1], "distinct picks");
    assert!(
        two.iter()
            .all(|(m, s)| store.read(|v| v.zset_score(db(0), b"z", m)).unwrap() == Some(*s))
    );
    assert_eq!(random(RandomCount::WithRepeats(7)).len(), 7);
    assert!(random(RandomCount::Distinct(0)).is_empty());
}

#[test]
fn lex_ranges_over_mixed_scores_walk_like_redis() {
    // Member order differs from (score, member) order here, where Redis's
    // lex ranges are only defined by how it walks the set.
    let (_dir, store) = store();
    import(
        &store,
        "m",
        &[("b", 1.0), ("a", 2.0), ("d", 3.0), ("c", 4.0)],
    );
    let incl = |m: &str| LexLimit::Inclusive(b(m));
    let lex = |min, max| LexRange { min, max };
    let select = |range: LexRange, limit, rev| {
        let range = ZRange::Lex(range, limit);
        store
            .read(|v| v.zset_select(db(0), b"m", &range, rev))
            .unwrap()
    };
    assert_eq!(
        members(&select(lex(incl("b"), incl("c")), Limit::ALL, false)),
        ["b", "a"]
    );
    assert_eq!(
        members(&select(lex(LexLimit::NegInf, incl("c")), Limit::ALL, true)),
        ["c", "d", "a", "b"]
    );
    assert_eq!(
        members(&select(
            lex(incl("b"), LexLimit::PosInf),
            Limit {
                offset: 1,
                count: 10
            },
            false
        )),
        ["a", "d", "c"]
    );
    assert!(
        select(lex(incl("e"), LexLimit::PosInf), Limit::ALL, false).is_empty(),
        "the last member is below min"
    );
    let count = store
        .read(|v| {
            v.zset_count(
                db(0),
                b"m",
                &ZRange::Lex(lex(incl("a"), incl("c")), Limit::ALL),
            )
        })
        .unwrap();
    assert_eq!(count, 2);
    let removed = store
        .write(move |tx| {
            tx.zset_remove_range(
                db(0),
                b"m",
                &ZRange::Lex(lex(incl("b"), incl("b")), Limit::ALL),
            )
        })
        .wait()
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(members(&zset_all(&store, db(0), b"m")), ["d", "c"]);
}

#[test]
fn range_store_copies_inside_sqlite_or_from_itself() {
    let (_dir, store) = store();
    import(
        &store,
        "src",
        &[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)],
    );
    store
        .import_key(
            db(0),
            b("dst"),
            KeyValue::String(b("old")),
            Some(i64::MAX),
            vec![],
        )
        .wait()
        .unwrap();
    let store_range = |dst: &'static str, range: ZRange, rev| {
        store
            .write(move |tx| tx.zset_store_range(db(0), dst.as_bytes(), b"src", &range, rev))
            .wait()
            .unwrap()
    };
    let scores = ScoreRange {
        min: 1.0,
        min_exclusive: true,
        max: 4.0,
        max_exclusive: false,
    };
    assert_eq!(
        store_range(
            "dst",
            ZRange::Score(
                scores,
                Limit {
                    offset: 1,
                    count: 2
                }
            ),
            true
        ),
        2
    );
    assert_eq!(
        zset_all(&store, db(0), b"dst"),
        vec![(b("b"), 2.0), (b("c"), 3.0)]
    );
    let meta = store.read(|v| v.lookup(db(0), b"dst")).unwrap().unwrap();
    assert_eq!(
        (meta.kind(), meta.expire_at_ms()),
        (KeyKind::ZSet, None),
        "replaced, TTL gone"
    );
    assert_eq!(
        store_range("dst", ZRange::Rank { start: 5, stop: 9 }, false),
        0
    );
    assert_eq!(
        store.read(|v| v.lookup(db(0), b"dst")).unwrap(),
        None,
        "an empty range deletes dst"
    );
    assert_eq!(
        store_range("src", ZRange::Rank { start: 1, stop: 2 }, false),
        2
    );
    assert_eq!(
        zset_all(&store, db(0), b"src"),
        vec![(b("b"), 2.0), (b("c"), 3.0)]
    );
}

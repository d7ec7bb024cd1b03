//! Tests of staged imports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::StoreError;
use crate::keyvalue::{KeyKind, KeyValue};
use crate::store::{Store, StoreConfig};
use crate::test_support::{b, db, list_all, rows, store, store_with, zset_all};

const MEMBERS: usize = 200_000;
const CHUNK: usize = 10_000;

fn shape(store: &Store) -> Option<(KeyKind, u64)> {
    store
        .read(|v| v.lookup(db(0), b"big"))
        .unwrap()
        .map(|m| (m.kind(), m.len()))
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn a_big_staged_key_is_invisible_until_commit_then_swapped_in_whole() {
    let (dir, store) = store();
    let old = KeyValue::Hash(vec![
        (b("f1"), b("v")),
        (b("f2"), b("v")),
        (b("f3"), b("v")),
    ]);
    store
        .import_key(db(0), b("big"), old, None, vec![])
        .wait()
        .unwrap();

    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Stops the reader however this closure ends, so a failed assertion
        // fails the test instead of hanging it.
        let stop = StopOnDrop(&done);
        // A reader polling throughout: it must only ever see the old value
        // or the complete new one.
        let reader = scope.spawn(|| {
            let mut seen_new = false;
            while !done.load(Ordering::Acquire) {
                match shape(&store) {
                    Some((KeyKind::Hash, 3)) => assert!(!seen_new, "the old value came back"),
                    Some((KeyKind::Set, n)) if n == MEMBERS as u64 => seen_new = true,
                    other => panic!("a reader saw a partial value: {other:?}"),
                }
            }
        });
        let staged = store.begin_staged(KeyKind::Set).wait().unwrap();
        for chunk in 0..MEMBERS / CHUNK {
            let members = (0..CHUNK)
                .map(|i| format!("member-{}", chunk * CHUNK + i).into_bytes())
                .collect();
            staged.append(KeyValue::Set(members)).wait().unwrap();
        }
        assert_eq!(
            shape(&store),
            Some((KeyKind::Hash, 3)),
            "not visible before commit"
        );
        assert!(matches!(
            store.read(|v| v.set_contains(db(0), b"big", b"member-0")),
            Err(StoreError::WrongType)
        ));
        staged.commit(db(0), b("big"), None, vec![]).wait().unwrap();
        drop(stop);
        reader.join().unwrap();
    });

    assert_eq!(shape(&store), Some((KeyKind::Set, MEMBERS as u64)));
    assert!(
        store
            .read(|v| v.set_contains(db(0), b"big", b"member-199999"))
            .unwrap()
    );
    let path = dir.path().join("keyferry.db");
    assert_eq!(rows(&path, "hashes"), 0, "the old value is gone");
    assert_eq!(rows(&path, "sets"), MEMBERS as i64);
    assert_eq!(rows(&path, "keys"), 1, "no staging row is left");
}

#[test]
fn chunks_keep_list_order_and_last_score_wins() {
    let (_dir, store) = store();
    let list = store.begin_staged(KeyKind::List).wait().unwrap();
    list.append(KeyValue::List(vec![b("a"), b("b")]))
        .wait()
        .unwrap();
    list.append(KeyValue::List(vec![b("c")])).wait().unwrap();
    list.commit(db(0), b("l"), None, vec![]).wait().unwrap();
    assert_eq!(list_all(&store, db(0), b"l"), vec![b("a"), b("b"), b("c")]);

    // ZSCAN may return a member twice; the count must not double.
    let zset = store.begin_staged(KeyKind::ZSet).wait().unwrap();
    zset.append(KeyValue::ZSet(vec![(b("x"), 1.0), (b("y"), 2.0)]))
        .wait()
        .unwrap();
    zset.append(KeyValue::ZSet(vec![(b("x"), 3.0)]))
        .wait()
        .unwrap();
    zset.commit(db(0), b("z"), None, vec![]).wait().unwrap();
    assert_eq!(
        zset_all(&store, db(0), b"z"),
        vec![(b("y"), 2.0), (b("x"), 3.0)]
    );
    assert_eq!(
        store.read(|v| v.len(db(0), b"z", KeyKind::ZSet)).unwrap(),
        2
    );
}

#[test]
fn commit_applies_the_ttl_and_an_empty_stage_deletes_the_key() {
    let (_dir, store) = store();
    let later = keyferry_journal::now_ms() + 60_000;
    let staged = store.begin_staged(KeyKind::Set).wait().unwrap();
    staged.append(KeyValue::Set(vec![b("m")])).wait().unwrap();
    staged
        .commit(db(0), b("k"), Some(later), vec![])
        .wait()
        .unwrap();
    let meta = store.read(|v| v.lookup(db(0), b"k")).unwrap().unwrap();
    assert_eq!(meta.expire_at_ms(), Some(later));

    let empty = store.begin_staged(KeyKind::Set).wait().unwrap();
    empty.commit(db(0), b("k"), None, vec![]).wait().unwrap();
    assert_eq!(store.read(|v| v.lookup(db(0), b"k")).unwrap(), None);
}

#[test]
fn aborted_and_dropped_stages_are_freed() {
    let (dir, store) = store();
    let aborted = store.begin_staged(KeyKind::Hash).wait().unwrap();
    aborted
        .append(KeyValue::Hash(vec![(b("f"), b("v"))]))
        .wait()
        .unwrap();
    aborted.abort().wait().unwrap();
    let dropped = store.begin_staged(KeyKind::Set).wait().unwrap();
    dropped.append(KeyValue::Set(vec![b("m")])).wait().unwrap();
    drop(dropped);
    let report = store.sweep_once().wait().unwrap();
    assert_eq!(report.reaped, 2);
    let path = dir.path().join("keyferry.db");
    assert_eq!(rows(&path, "keys"), 0);
    assert_eq!(rows(&path, "hashes") + rows(&path, "sets"), 0);
}

#[test]
fn an_abandoned_stage_is_dropped_when_its_lease_runs_out() {
    let (dir, store) = store_with(StoreConfig {
        staging_lease: Duration::ZERO,
        sweeper: crate::SweeperConfig {
            interval: None,
            ..crate::SweeperConfig::default()
        },
        ..StoreConfig::default()
    });
    let staged = store.begin_staged(KeyKind::Set).wait().unwrap();
    std::thread::sleep(Duration::from_millis(2));
    let report = store.sweep_once().wait().unwrap();
    assert_eq!(
        (report.abandoned_staging, report.expired),
        (1, 0),
        "not counted as an expired key"
    );
    assert!(matches!(
        staged.append(KeyValue::Set(vec![b("m")])).wait(),
        Err(StoreError::StagingLost)
    ));
    assert!(matches!(
        staged.commit(db(0), b("k"), None, vec![]).wait(),
        Err(StoreError::StagingLost)
    ));
    assert_eq!(rows(&dir.path().join("keyferry.db"), "keys"), 0);
}

#[test]
fn strings_and_mismatched_chunks_are_refused() {
    let (_dir, store) = store();
    assert!(matches!(
        store.begin_staged(KeyKind::String).wait(),
        Err(StoreError::NotStageable(KeyKind::String))
    ));
    let staged = store.begin_staged(KeyKind::Set).wait().unwrap();
    assert!(matches!(
        staged.append(KeyValue::List(vec![b("x")])).wait(),
        Err(StoreError::KindMismatch {
            expected: KeyKind::Set,
            found: KeyKind::List
        })
    ));
}

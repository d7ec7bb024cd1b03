//! Tests of lazy and active expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::expiry::SweeperConfig;
use crate::keyvalue::{KeyKind, KeyValue, Side};
use crate::store::{Store, StoreConfig};
use crate::test_support::{b, db, list_all, rows, store, store_with};

/// How far in the future test keys expire: long enough that the checks
/// made right after the import run before it, short enough to wait out.
const TTL_MS: i64 = 500;

/// Imports one key of each type under `prefix`, all expiring after
/// [`TTL_MS`], and returns the expiry instant.
fn import_expiring(store: &Store, prefix: &str) -> i64 {
    let at = keyferry_journal::now_ms() + TTL_MS;
    let values = [
        KeyValue::String(b("v")),
        KeyValue::Hash(vec![(b("f"), b("v"))]),
        KeyValue::List(vec![b("a"), b("b")]),
        KeyValue::Set(vec![b("m")]),
        KeyValue::ZSet(vec![(b("m"), 1.0)]),
    ];
    for value in values {
        let key = format!("{prefix}{}", value.kind().name()).into_bytes();
        store
            .import_key(db(0), key, value, Some(at), vec![])
            .wait()
            .unwrap();
    }
    at
}

fn wait_until(at_ms: i64) {
    while keyferry_journal::now_ms() <= at_ms {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every read of every type, for key `<prefix><type>`: what a client sees.
fn visible(store: &Store, prefix: &str) -> Vec<bool> {
    let key = |kind: KeyKind| format!("{prefix}{}", kind.name()).into_bytes();
    store
        .read(|v| {
            Ok(vec![
                v.lookup(db(0), &key(KeyKind::String))?.is_some(),
                v.string_get(db(0), &key(KeyKind::String))?.is_some(),
                v.hash_get(db(0), &key(KeyKind::Hash), b"f")?.is_some(),
                v.list_index(db(0), &key(KeyKind::List), 0)?.is_some(),
                v.len(db(0), &key(KeyKind::List), KeyKind::List)? > 0,
                v.set_contains(db(0), &key(KeyKind::Set), b"m")?,
                v.zset_score(db(0), &key(KeyKind::ZSet), b"m")?.is_some(),
            ])
        })
        .unwrap()
}

#[test]
fn expired_keys_vanish_at_once_and_the_sweeper_frees_them() {
    let (dir, store) = store();
    let path = dir.path().join("keyferry.db");
    store
        .import_key(
            db(0),
            b("persistent"),
            KeyValue::String(b("v")),
            None,
            vec![],
        )
        .wait()
        .unwrap();
    let at = import_expiring(&store, "k:");
    assert_eq!(visible(&store, "k:"), vec![true; 7]);
    wait_until(at);
    assert_eq!(
        visible(&store, "k:"),
        vec![false; 7],
        "hidden without any sweep"
    );
    assert_eq!(rows(&path, "keys"), 6, "still stored until swept");

    let counted = counting_expired(|| store.sweep_once().wait().unwrap());
    assert_eq!(counted.0.expired, 5);
    assert_eq!(counted.1, 5, "keyferry_expired_keys_total");
    assert_eq!(rows(&path, "keys"), 1);
    assert_eq!(
        rows(&path, "hashes") + rows(&path, "lists") + rows(&path, "sets") + rows(&path, "zsets"),
        0
    );
    assert_eq!(
        store.read(|v| v.string_get(db(0), b"persistent")).unwrap(),
        Some(b("v"))
    );
}

#[test]
fn a_write_treats_an_expired_key_as_absent() {
    let (_dir, store) = store();
    let at = import_expiring(&store, "k:");
    wait_until(at);
    let (len, counted) = counting_expired(|| {
        store
            .write(|tx| tx.list_push(db(0), b"k:list", Side::Right, &[b("c")]))
            .wait()
            .unwrap()
    });
    assert_eq!(
        (len, counted),
        (1, 1),
        "a fresh list; the expired one is counted"
    );
    assert_eq!(list_all(&store, db(0), b"k:list"), vec![b("c")]);
    let meta = store.read(|v| v.lookup(db(0), b"k:list")).unwrap().unwrap();
    assert_eq!(meta.expire_at_ms(), None, "the old TTL does not carry over");
    assert!(
        !store.delete_key(db(0), b("k:hash"), vec![]).wait().unwrap(),
        "an expired key did not exist"
    );
}

#[test]
fn each_tick_does_bounded_work() {
    let (dir, store) = store_with(StoreConfig {
        sweeper: SweeperConfig {
            interval: None,
            max_expired_per_tick: 4,
            max_reaped_per_tick: 100,
        },
        ..StoreConfig::default()
    });
    let at = keyferry_journal::now_ms() + TTL_MS;
    for i in 0..10 {
        store
            .import_key(
                db(0),
                format!("k{i}").into_bytes(),
                KeyValue::String(b("v")),
                Some(at),
                vec![],
            )
            .wait()
            .unwrap();
    }
    wait_until(at);
    let expired: Vec<u64> = (0..4)
        .map(|_| store.sweep_once().wait().unwrap().expired)
        .collect();
    assert_eq!(expired, vec![4, 4, 2, 0]);
    assert_eq!(rows(&dir.path().join("keyferry.db"), "keys"), 0);
}

#[test]
fn the_background_sweeper_removes_expired_keys() {
    let (dir, store) = store_with(StoreConfig {
        sweeper: SweeperConfig {
            interval: Some(Duration::from_millis(10)),
            ..SweeperConfig::default()
        },
        ..StoreConfig::default()
    });
    let path = dir.path().join("keyferry.db");
    let at = import_expiring(&store, "k:");
    wait_until(at);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&path, "keys") > 0 {
        assert!(Instant::now() < deadline, "the sweeper did not run");
        std::thread::sleep(Duration::from_millis(10));
    }
    store.shutdown();
}

/// Runs `f` with a recorder counting `keyferry_expired_keys_total` on this
/// thread, and returns `f`'s result with the count.
fn counting_expired<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let recorder = ExpiredCounter::default();
    let result = metrics::with_local_recorder(&recorder, f);
    (result, recorder.0.load(Ordering::Relaxed))
}

#[derive(Default)]
struct ExpiredCounter(Arc<AtomicU64>);

impl Recorder for ExpiredCounter {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() == "keyferry_expired_keys_total" {
            Counter::from_arc(Arc::clone(&self.0))
        } else {
            Counter::noop()
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

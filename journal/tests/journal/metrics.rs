//! Appends are counted in the journal's metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keyferry_journal::connection::open_rw;
use keyferry_journal::schema::migrate;
use keyferry_journal::{COMPONENT, Durability, MIGRATIONS, append_in};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::samples::every_kind;

/// Records counters and gauges by name; gauges hold `f64` bits, as
/// `metrics`' own atomic gauge does.
#[derive(Default)]
struct Captured {
    values: Mutex<Vec<(String, Arc<AtomicU64>)>>,
}

impl Captured {
    fn register(&self, key: &Key) -> Arc<AtomicU64> {
        let value = Arc::new(AtomicU64::new(0));
        self.values
            .lock()
            .expect("lock")
            .push((key.name().to_string(), value.clone()));
        value
    }

    fn get(&self, name: &str) -> u64 {
        let values = self.values.lock().expect("lock");
        let (_, value) = values
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not recorded"));
        value.load(Ordering::SeqCst)
    }
}

impl Recorder for Captured {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.register(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.register(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn appends_bytes_and_last_seq_are_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = open_rw(&dir.path().join("m.sqlite"), Durability::Normal).expect("open");
    migrate(&mut conn, COMPONENT, MIGRATIONS).expect("migrate");
    let events = every_kind();
    // A local recorder only sees this thread, so call append_in directly
    // rather than through the writer thread.
    let recorder = Captured::default();
    let seqs =
        metrics::with_local_recorder(&recorder, || append_in(&conn, &events)).expect("append");

    let bytes: i64 = conn
        .query_row("SELECT sum(length(payload)) FROM journal", [], |r| r.get(0))
        .expect("sum");
    assert_eq!(
        recorder.get("keyferry_journal_appends_total"),
        events.len() as u64
    );
    assert_eq!(
        recorder.get("keyferry_journal_append_bytes_total"),
        bytes as u64
    );
    let last_seq = f64::from_bits(recorder.get("keyferry_journal_last_seq"));
    assert_eq!(last_seq, *seqs.last().expect("seqs") as f64);
}

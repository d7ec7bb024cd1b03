//! Journal throughput: batched appends and replay, each measured next to a
//! raw-rusqlite baseline doing the same SQL work in the same run.
//!
//! ```text
//! cargo bench --bench journal_append
//! ```
//!
//! Appends: 200,000 dirty-key events in batches of 1,000, through the
//! journal's group-commit writer, once pipelined (all batches submitted,
//! then awaited — the writer may group several into one transaction) and
//! once one batch at a time (one transaction per batch, like the baseline).
//! The baseline inserts the very same payload bytes with the same batch
//! sizes, one transaction per batch, without encoding or checksums.
//!
//! Replay: reading every row back in pages of 1,024 — the journal verifies
//! each checksum and decodes each event; the baseline only fetches the same
//! columns. A third line also folds the events into the summary projection.
//!
//! Targets (issue 2): append ≥ 500k events/s, replay ≥ 1M events/s.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use keyferry_journal::connection::{open_ro, open_rw};
use keyferry_journal::{Durability, Event, Journal, Summary, WriterConfig};

const EVENTS: usize = 200_000;
const BATCH: usize = 1_000;
/// Rows per query in the replay baseline, as in the journal's reader.
const PAGE_ROWS: i64 = 1_024;
/// Each measurement is repeated and the best run reported, which filters
/// out a cold page cache or a scheduler hiccup on a busy machine.
const ROUNDS: usize = 3;

/// A typical journal event: the tracker recording a dirty key.
fn event(i: usize) -> Event {
    Event::KeyDirtied {
        run_id: "bench-run".into(),
        db: (i % 16) as u32,
        key: format!("user:{i:010}:profile").into_bytes(),
        event: "hset".into(),
    }
}

fn batches() -> Vec<Vec<Event>> {
    (0..EVENTS / BATCH)
        .map(|b| (b * BATCH..(b + 1) * BATCH).map(event).collect())
        .collect()
}

fn rate(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}

/// Best (shortest) of [`ROUNDS`] runs of `run`, which gets the round number.
fn best(mut run: impl FnMut(usize) -> Duration) -> Duration {
    (0..ROUNDS).map(&mut run).min().expect("at least one round")
}

fn report(label: &str, elapsed: Duration, baseline: Option<Duration>) {
    let ratio = baseline.map_or(String::new(), |b| {
        format!(
            "   ratio vs raw: {:.2}",
            b.as_secs_f64() / elapsed.as_secs_f64()
        )
    });
    println!(
        "  {label:<48} {:>12.0} events/s{ratio}",
        rate(EVENTS, elapsed)
    );
}

/// Appends every batch through a fresh journal in `dir`; `pipelined` submits
/// them all before awaiting any.
fn journal_append(dir: &Path, round: usize, pipelined: bool) -> (Duration, Journal) {
    let path = dir.join(format!(
        "journal-{}-{round}.sqlite",
        if pipelined { "pipelined" } else { "serial" }
    ));
    let (writer, journal) =
        Journal::open(&path, Durability::Normal, WriterConfig::default()).expect("open journal");
    let batches = batches();
    let started = Instant::now();
    if pipelined {
        let pending: Vec<_> = batches.into_iter().map(|b| journal.append(b)).collect();
        for p in pending {
            p.wait().expect("append");
        }
    } else {
        for b in batches {
            journal.append(b).wait().expect("append");
        }
    }
    let elapsed = started.elapsed();
    writer.shutdown();
    (elapsed, journal)
}

/// The rows the journal wrote, as the baseline will insert them.
fn journal_rows(path: &Path) -> Vec<(String, i64, i64, Vec<u8>)> {
    let conn = open_ro(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT kind, version, at_ms, payload FROM journal ORDER BY seq")
        .expect("select");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Inserts `rows` into a fresh table in `dir`, one transaction per batch,
/// with the journal's connection settings and table layout.
fn raw_append(dir: &Path, round: usize, rows: &[(String, i64, i64, Vec<u8>)]) -> Duration {
    let conn =
        open_rw(&dir.join(format!("raw-{round}.sqlite")), Durability::Normal).expect("open raw");
    conn.execute_batch(
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, version INTEGER NOT NULL,
         at_ms INTEGER NOT NULL, checksum INTEGER NOT NULL, payload BLOB NOT NULL)",
    )
    .expect("create");
    let started = Instant::now();
    for batch in rows.chunks(BATCH) {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let mut insert = conn
            .prepare_cached("INSERT INTO journal (kind, version, at_ms, checksum, payload) VALUES (?1, ?2, ?3, 0, ?4)")
            .expect("prepare");
        for (kind, version, at_ms, payload) in batch {
            insert
                .execute(rusqlite::params![kind, version, at_ms, payload])
                .expect("insert");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
    started.elapsed()
}

/// Reads every row in pages, touching each column, without checking or
/// decoding anything.
fn raw_replay(path: &Path) -> Duration {
    let conn = open_ro(path).expect("open");
    let started = Instant::now();
    let (mut next, mut rows) = (1i64, 0usize);
    loop {
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, kind, version, at_ms, checksum, payload FROM journal
                 WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .expect("prepare");
        let mut cursor = stmt
            .query(rusqlite::params![next, PAGE_ROWS])
            .expect("query");
        let mut fetched = 0;
        while let Some(row) = cursor.next().expect("step") {
            let seq: i64 = row.get(0).expect("seq");
            black_box(
                row.get_ref(1)
                    .and_then(|v| Ok(v.as_str()?.len()))
                    .expect("kind"),
            );
            for column in 2..=4 {
                black_box(row.get::<_, i64>(column).expect("integer column"));
            }
            black_box(
                row.get_ref(5)
                    .and_then(|v| Ok(v.as_blob()?.len()))
                    .expect("payload"),
            );
            next = seq + 1;
            fetched += 1;
        }
        rows += fetched;
        if fetched < PAGE_ROWS as usize {
            break;
        }
    }
    assert_eq!(rows, EVENTS);
    started.elapsed()
}

fn journal_replay(journal: &Journal) -> Duration {
    let started = Instant::now();
    let mut count = 0;
    for entry in journal.read_from(1).expect("reader") {
        black_box(entry.expect("valid row"));
        count += 1;
    }
    assert_eq!(count, EVENTS);
    started.elapsed()
}

fn summary_replay(journal: &Journal) -> Duration {
    let started = Instant::now();
    let replayed = journal.replay_from_start::<Summary>(None).expect("replay");
    assert_eq!(replayed.applied, EVENTS as u64);
    black_box(replayed);
    started.elapsed()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();

    let mut last_journal = None;
    let pipelined = best(|round| {
        let (elapsed, journal) = journal_append(dir, round, true);
        last_journal = Some(journal);
        elapsed
    });
    let serial = best(|round| journal_append(dir, round, false).0);
    let journal = last_journal.expect("a journal was written");
    let rows = journal_rows(journal.path());
    let raw = best(|round| raw_append(dir, round, &rows));

    println!("journal append: {EVENTS} events in batches of {BATCH} (best of {ROUNDS})");
    report(
        "keyferry journal, pipelined (group commit)",
        pipelined,
        Some(raw),
    );
    report(
        "keyferry journal, one batch per transaction",
        serial,
        Some(raw),
    );
    report("raw rusqlite, one transaction per batch", raw, None);

    let raw_read = best(|_| raw_replay(journal.path()));
    let read = best(|_| journal_replay(&journal));
    let summary = best(|_| summary_replay(&journal));
    println!("journal replay: {EVENTS} events, pages of {PAGE_ROWS} (best of {ROUNDS})");
    report(
        "keyferry read_from (checksum + decode)",
        read,
        Some(raw_read),
    );
    report(
        "keyferry replay into the summary projection",
        summary,
        Some(raw_read),
    );
    report("raw rusqlite paged SELECT", raw_read, None);

    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets: append >= 500k events/s {}; replay >= 1M events/s {}",
        verdict(rate(EVENTS, pipelined) >= 500_000.0),
        verdict(rate(EVENTS, read) >= 1_000_000.0),
    );
}

//! Every event kind survives append and read unchanged; reading streams in
//! pages and respects ranges.

use std::collections::BTreeSet;

use keyferry_journal::{EVENT_VERSION, Event};

use crate::TempJournal;
use crate::samples::{BINARY_KEY, every_kind};

#[test]
fn every_event_kind_round_trips() {
    let t = TempJournal::new();
    let events = every_kind();
    let kinds: BTreeSet<_> = events.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        Event::KINDS.iter().copied().collect(),
        "samples must cover every kind"
    );

    let seqs = t.journal.append(events.clone()).wait().expect("append");
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    let read = t.read_all();
    assert_eq!(
        read.iter().map(|e| &e.event).collect::<Vec<_>>(),
        events.iter().collect::<Vec<_>>()
    );
    assert!(read.iter().all(|e| e.version == EVENT_VERSION));
    assert_eq!(t.journal.last_seq().expect("last seq"), events.len() as i64);
}

#[test]
fn payload_uses_field_names_and_binary_keys() {
    let t = TempJournal::new();
    let event = Event::KeyDirtied {
        run_id: "r".into(),
        db: 1,
        key: BINARY_KEY.to_vec(),
        event: "set".into(),
    };
    let [seq] = t.journal.append(vec![event]).wait().expect("append")[..] else {
        panic!("one seq")
    };
    let (kind, payload): (String, Vec<u8>) = t
        .raw()
        .query_row(
            "SELECT kind, payload FROM journal WHERE seq = ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    assert_eq!(kind, "key_dirtied");
    let contains = |needle: &[u8]| payload.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"run_id") && contains(b"event"),
        "fields are stored by name"
    );
    // MessagePack bin8: marker 0xc4, length, raw bytes.
    let mut bin = vec![0xc4, BINARY_KEY.len() as u8];
    bin.extend_from_slice(BINARY_KEY);
    assert!(
        contains(&bin),
        "the key is stored as bin, not as text or an array"
    );
}

#[test]
fn reads_stream_across_pages_and_ranges() {
    let t = TempJournal::new();
    // Several appends, more rows than one page, so paging is exercised.
    let batch = |b: u32| -> Vec<Event> {
        (0..700)
            .map(|i| Event::BatchCommitted {
                run_id: "r".into(),
                db: b,
                keys: i,
                bytes: 0,
            })
            .collect()
    };
    let pendings: Vec<_> = (0..4).map(|b| t.journal.append(batch(b))).collect();
    for p in pendings {
        p.wait().expect("append");
    }
    let all = t.read_all();
    assert_eq!(all.len(), 2800);
    assert!(
        all.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "in sequence order, no gaps"
    );

    let range: Vec<_> = t
        .journal
        .read_range(1000, 2100)
        .expect("reader")
        .map(|e| e.expect("entry").seq)
        .collect();
    assert_eq!(range, (1000..=2100).collect::<Vec<_>>());
    assert_eq!(t.journal.read_from(2801).expect("reader").count(), 0);
    assert_eq!(t.journal.read_range(5, 4).expect("reader").count(), 0);
}

#[test]
fn empty_journal_has_last_seq_zero() {
    let t = TempJournal::new();
    assert_eq!(t.journal.last_seq().expect("last seq"), 0);
    assert_eq!(t.journal.read_from(1).expect("reader").count(), 0);
}

#[test]
fn reading_needs_no_running_writer() {
    let TempJournal {
        _writer: writer,
        journal,
        _dir: dir,
    } = TempJournal::new();
    journal.append(every_kind()).wait().expect("append");
    // The last connection closing removes the WAL and its index; a
    // read-only connection must still open the file on its own.
    writer.shutdown();
    assert!(!dir.path().join("journal.sqlite-wal").exists());
    let read = journal
        .read_from(1)
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("entries");
    assert_eq!(read.len(), every_kind().len());
}

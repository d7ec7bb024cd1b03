//! A damaged row is reported with its sequence number, never skipped, and
//! does not hide the rows around it.

use keyferry_journal::codec::row_checksum;
use keyferry_journal::{ReadError, ReplayError, SnapshotError, Summary};

use crate::TempJournal;
use crate::samples::every_kind;

/// The row the tests damage.
const BAD: i64 = 5;

/// A journal holding one event of every kind, with row [`BAD`] damaged by
/// `tamper` through a raw connection.
fn damaged(tamper: impl FnOnce(&rusqlite::Connection)) -> TempJournal {
    let t = TempJournal::new();
    t.journal.append(every_kind()).wait().expect("append");
    tamper(&t.raw());
    t
}

/// Reading yields exactly one error, for row [`BAD`], matching `expected`,
/// and every other row intact; replay stops with the same row's error.
fn assert_reported(t: &TempJournal, expected: fn(&ReadError) -> bool) {
    let results: Vec<_> = t.journal.read_from(1).expect("reader").collect();
    assert_eq!(results.len(), every_kind().len(), "no row skipped");
    for (i, result) in results.iter().enumerate() {
        let seq = i as i64 + 1;
        match result {
            Ok(entry) => {
                assert_ne!(seq, BAD, "damaged row read as valid");
                assert_eq!(entry.seq, seq);
            }
            Err(e) => {
                assert_eq!(e.seq(), Some(BAD), "{e}");
                assert!(expected(e), "unexpected error: {e}");
                assert!(
                    e.to_string().contains(&format!("row {BAD} ")),
                    "message names the row: {e}"
                );
            }
        }
    }
    assert!(results[BAD as usize - 1].is_err());
    match t.journal.replay::<Summary>(None) {
        Err(ReplayError::Read(e)) => assert_eq!(e.seq(), Some(BAD), "{e}"),
        other => panic!("replay must fail on row {BAD}, got {other:?}"),
    }
}

fn payload_of(conn: &rusqlite::Connection) -> Vec<u8> {
    conn.query_row("SELECT payload FROM journal WHERE seq = ?1", [BAD], |r| {
        r.get(0)
    })
    .expect("payload")
}

#[test]
fn wrong_checksum_is_reported() {
    let t = damaged(|c| {
        c.execute(
            "UPDATE journal SET checksum = checksum + 1 WHERE seq = ?1",
            [BAD],
        )
        .expect("tamper");
    });
    assert_reported(&t, |e| matches!(e, ReadError::ChecksumMismatch { .. }));
}

#[test]
fn flipped_payload_byte_is_reported() {
    let t = damaged(|c| {
        let mut payload = payload_of(c);
        let last = payload.len() - 1;
        payload[last] ^= 0x01;
        c.execute(
            "UPDATE journal SET payload = ?1 WHERE seq = ?2",
            rusqlite::params![payload, BAD],
        )
        .expect("tamper");
    });
    assert_reported(&t, |e| matches!(e, ReadError::ChecksumMismatch { .. }));
}

#[test]
fn undecodable_payload_with_valid_checksum_is_reported() {
    // What a buggy build would write: garbage with a correct checksum.
    let t = damaged(|c| {
        let (kind, at_ms): (String, i64) = c
            .query_row(
                "SELECT kind, at_ms FROM journal WHERE seq = ?1",
                [BAD],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row");
        let garbage = [0xc1u8]; // A byte MessagePack never uses.
        let checksum = row_checksum(&kind, 1, at_ms, &garbage);
        c.execute(
            "UPDATE journal SET payload = ?1, checksum = ?2 WHERE seq = ?3",
            rusqlite::params![&garbage[..], checksum, BAD],
        )
        .expect("tamper");
    });
    assert_reported(&t, |e| matches!(e, ReadError::Undecodable { .. }));
}

#[test]
fn unknown_event_version_is_reported() {
    let t = damaged(|c| {
        c.execute("UPDATE journal SET version = 2 WHERE seq = ?1", [BAD])
            .expect("tamper");
    });
    assert_reported(&t, |e| {
        matches!(e, ReadError::UnknownVersion { version: 2, .. })
    });
}

#[test]
fn wrongly_typed_column_is_reported() {
    let t = damaged(|c| {
        c.execute(
            "UPDATE journal SET payload = 'text, not a blob' WHERE seq = ?1",
            [BAD],
        )
        .expect("tamper");
    });
    assert_reported(&t, |e| matches!(e, ReadError::MalformedRow { .. }));
}

#[test]
fn corrupt_snapshot_is_reported_and_replay_from_start_still_works() {
    let t = TempJournal::new();
    t.journal.append(every_kind()).wait().expect("append");
    let replayed = t.journal.replay::<Summary>(None).expect("replay");
    t.journal
        .save_snapshot(&replayed.state, replayed.seq)
        .wait()
        .expect("snapshot");
    t.raw()
        .execute("UPDATE journal_snapshots SET checksum = checksum + 1", [])
        .expect("tamper");

    match t.journal.replay::<Summary>(None) {
        Err(ReplayError::Snapshot(SnapshotError::ChecksumMismatch { seq, .. })) => {
            assert_eq!(seq, replayed.seq)
        }
        other => panic!("expected a snapshot checksum error, got {other:?}"),
    }
    let from_start = t
        .journal
        .replay_from_start::<Summary>(None)
        .expect("replay from start");
    assert_eq!(
        from_start.state.events,
        replayed.state.events + 1,
        "events plus the SnapshotTaken one"
    );
}

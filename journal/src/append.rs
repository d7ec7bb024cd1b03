//! Appending events: encoding and checksumming them, then inserting the
//! rows inside a write transaction.
//!
//! The two steps are separate so that [`crate::Journal::append`] can encode
//! on the caller's thread and hand the writer only ready-made rows: the
//! writer thread (and SQLite's write lock, which other processes wait on)
//! is then busy for the inserts alone.

use std::ops::Range;

use rusqlite::Connection;

use crate::codec::{encode_named, row_checksum};
use crate::error::JournalError;
use crate::event::{EVENT_VERSION, Event, Seq};

/// Inserts `events` into the journal on `conn`, inside the caller's
/// transaction, and returns their sequence numbers in order.
///
/// Call it from a closure given to [`crate::writer::WriterHandle::submit`]:
/// the events then commit (or roll back) together with whatever else the
/// closure wrote — this is how a batch of imported keys and the event that
/// checkpoints it become durable in one transaction.
pub fn append_in(conn: &Connection, events: &[Event]) -> Result<Vec<Seq>, JournalError> {
    insert(conn, &Encoded::new(events)?)
}

/// A batch of events encoded and checksummed, ready to insert.
///
/// All payloads share one buffer, so a batch costs two allocations however
/// many events it holds.
pub(crate) struct Encoded {
    at_ms: i64,
    payloads: Vec<u8>,
    rows: Vec<EncodedRow>,
}

struct EncodedRow {
    kind: &'static str,
    checksum: u32,
    payload: Range<usize>,
}

impl Encoded {
    /// Encodes `events`, stamping them with the current time.
    pub(crate) fn new(events: &[Event]) -> Result<Self, JournalError> {
        let at_ms = crate::now_ms();
        let mut payloads = Vec::with_capacity(events.len() * 96);
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let kind = event.kind();
            let start = payloads.len();
            encode_named(&mut payloads, event)
                .map_err(|source| JournalError::Encode { kind, source })?;
            let checksum = row_checksum(kind, EVENT_VERSION, at_ms, &payloads[start..]);
            rows.push(EncodedRow {
                kind,
                checksum,
                payload: start..payloads.len(),
            });
        }
        Ok(Encoded {
            at_ms,
            payloads,
            rows,
        })
    }
}

/// Inserts an encoded batch inside the caller's transaction and returns the
/// sequence numbers SQLite assigned, in order.
///
/// The metrics count rows as they are written into the transaction; the
/// rare rolled-back append is counted too.
pub(crate) fn insert(conn: &Connection, batch: &Encoded) -> Result<Vec<Seq>, JournalError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO journal (kind, version, at_ms, checksum, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut seqs = Vec::with_capacity(batch.rows.len());
    for row in &batch.rows {
        let payload = &batch.payloads[row.payload.clone()];
        insert.execute(rusqlite::params![
            row.kind,
            EVENT_VERSION,
            batch.at_ms,
            row.checksum,
            payload
        ])?;
        seqs.push(conn.last_insert_rowid());
    }
    if let Some(&last) = seqs.last() {
        metrics::counter!("keyferry_journal_appends_total").increment(seqs.len() as u64);
        metrics::counter!("keyferry_journal_append_bytes_total")
            .increment(batch.payloads.len() as u64);
        metrics::gauge!("keyferry_journal_last_seq").set(last as f64);
    }
    Ok(seqs)
}

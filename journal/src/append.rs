//! Appending events: encoding and checksumming them, then inserting the
//! rows inside a write transaction together with their effect on the
//! projection tables ([`crate::projections`]: the migration registry and
//! the job queue).
//!
//! The two steps are separate so that [`crate::Journal::append`] can encode
//! on the caller's thread and hand the writer only ready-made rows: the
//! writer thread (and SQLite's write lock, which other processes wait on)
//! is then busy for the inserts alone. The projections are applied at
//! insert time, in the same transaction, because their rows depend on the
//! sequence numbers SQLite assigns there: a committed event is always projected, and
//! a rolled-back one never is.

use std::borrow::Cow;
use std::ops::Range;

use rusqlite::Connection;

use crate::codec::{encode_named, row_checksum};
use crate::error::JournalError;
use crate::event::{EVENT_VERSION, Event, Seq};
use crate::projections;

/// Inserts `events` into the journal on `conn`, inside the caller's
/// transaction, projects them ([`crate::projections::apply`]), and returns
/// their sequence numbers in order.
///
/// Call it from a closure given to [`crate::writer::WriterHandle::submit`]:
/// the events then commit (or roll back) together with whatever else the
/// closure wrote — this is how a batch of imported keys and the event that
/// checkpoints it become durable in one transaction.
pub fn append_in(conn: &Connection, events: &[Event]) -> Result<Vec<Seq>, JournalError> {
    insert(conn, &Encoded::new(events)?)
}

/// A batch of events encoded and checksummed, ready to insert, with the
/// events themselves for the projections.
///
/// All payloads share one buffer, so a batch costs two allocations however
/// many events it holds. The events are borrowed when the batch is inserted
/// on the caller's thread ([`append_in`]) and owned when it travels to the
/// writer ([`crate::Journal::append`]), so neither path copies them.
pub(crate) struct Encoded<'a> {
    at_ms: i64,
    payloads: Vec<u8>,
    rows: Vec<EncodedRow>,
    events: Cow<'a, [Event]>,
}

struct EncodedRow {
    kind: &'static str,
    checksum: u32,
    payload: Range<usize>,
}

impl<'a> Encoded<'a> {
    /// Encodes `events`, stamping them with the current time.
    pub(crate) fn new(events: impl Into<Cow<'a, [Event]>>) -> Result<Self, JournalError> {
        let events = events.into();
        let at_ms = crate::now_ms();
        let mut payloads = Vec::with_capacity(events.len() * 96);
        let mut rows = Vec::with_capacity(events.len());
        for event in events.iter() {
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
            events,
        })
    }
}

/// Inserts an encoded batch inside the caller's transaction, projects each
/// event right after its row (a run's counters once for the batch), and
/// returns the sequence
/// numbers SQLite assigned, in order.
///
/// The metrics count rows as they are written into the transaction; the
/// rare rolled-back append is counted too.
pub(crate) fn insert(conn: &Connection, batch: &Encoded<'_>) -> Result<Vec<Seq>, JournalError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO journal (kind, version, at_ms, checksum, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut seqs = Vec::with_capacity(batch.rows.len());
    let mut projector = projections::Projector::default();
    for (row, event) in batch.rows.iter().zip(batch.events.iter()) {
        let payload = &batch.payloads[row.payload.clone()];
        insert.execute(rusqlite::params![
            row.kind,
            EVENT_VERSION,
            batch.at_ms,
            row.checksum,
            payload
        ])?;
        let seq = conn.last_insert_rowid();
        projector.apply(conn, seq, batch.at_ms, event)?;
        seqs.push(seq);
    }
    projector.finish(conn)?;
    if let Some(&last) = seqs.last() {
        metrics::counter!("keyferry_journal_appends_total").increment(seqs.len() as u64);
        metrics::counter!("keyferry_journal_append_bytes_total")
            .increment(batch.payloads.len() as u64);
        metrics::gauge!("keyferry_journal_last_seq").set(last as f64);
    }
    Ok(seqs)
}

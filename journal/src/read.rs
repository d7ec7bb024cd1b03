//! Streaming the journal back, in pages, through a read-only connection.
//!
//! A reader never holds a statement open between pages: each page is one
//! short query that is stepped to the end and reset, so a slow consumer
//! cannot pin a WAL read snapshot (which would stop checkpoints and let the
//! WAL grow without bound). Memory is bounded by one page of events,
//! whatever the journal's length.

use std::collections::VecDeque;

use rusqlite::types::FromSqlError;
use rusqlite::{Connection, Row};

use crate::codec::decode_row;
use crate::error::ReadError;
use crate::event::{Event, Seq};

/// Rows fetched per query. Large enough that per-query overhead vanishes
/// next to decoding, small enough to keep a page of events in a few
/// hundred kilobytes.
const PAGE_ROWS: i64 = 1024;

/// One journal row, checked and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its sequence number.
    pub seq: Seq,
    /// When it was appended (ms since the Unix epoch).
    pub at_ms: i64,
    /// The event version it was written with.
    pub version: u32,
    /// The event.
    pub event: Event,
}

/// An iterator over journal rows in sequence order, from a start to an end
/// sequence number (both included).
///
/// A row that fails its checksum or does not decode is yielded as an `Err`
/// naming its sequence number; iteration may continue past it. An SQLite
/// failure ends the iteration after being yielded.
pub struct Entries {
    conn: Connection,
    next: Seq,
    until: Seq,
    page: VecDeque<Result<Entry, ReadError>>,
    exhausted: bool,
}

impl Entries {
    /// Reads rows `from..=until` through `conn`.
    pub(crate) fn new(conn: Connection, from: Seq, until: Seq) -> Self {
        Entries {
            conn,
            next: from,
            until,
            page: VecDeque::new(),
            exhausted: from > until,
        }
    }

    /// Queues the next page. An SQLite failure is queued after the rows
    /// read before it and ends the iteration.
    fn fill_page(&mut self) {
        if let Err(e) = self.query_page() {
            self.page.push_back(Err(ReadError::Sqlite(e)));
            self.exhausted = true;
        }
    }

    fn query_page(&mut self) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, kind, version, at_ms, checksum, payload FROM journal
             WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let mut rows = stmt.query(rusqlite::params![self.next, self.until, PAGE_ROWS])?;
        let mut fetched = 0;
        while let Some(row) = rows.next()? {
            let seq: Seq = row.get(0)?;
            self.page.push_back(entry(seq, row));
            self.next = seq + 1;
            fetched += 1;
        }
        // A short page means we reached the end (as of this query); rows
        // appended later are left for the next reader.
        self.exhausted = fetched < PAGE_ROWS || self.next > self.until;
        Ok(())
    }
}

/// Checks and decodes the row `seq`, borrowing its text and blob in place.
/// `row` holds the columns `seq, kind, version, at_ms, checksum, payload`.
pub(crate) fn entry(seq: Seq, row: &Row<'_>) -> Result<Entry, ReadError> {
    let malformed = |source: FromSqlError| ReadError::MalformedRow { seq, source };
    let column = |i| row.get_ref(i).map_err(ReadError::Sqlite);
    let kind = column(1)?.as_str().map_err(malformed)?;
    let version = column(2)?.as_i64().map_err(malformed)?;
    let at_ms = column(3)?.as_i64().map_err(malformed)?;
    let checksum = column(4)?.as_i64().map_err(malformed)?;
    let payload = column(5)?.as_blob().map_err(malformed)?;
    let event = decode_row(seq, kind, version, at_ms, checksum, payload)?;
    // decode_row accepted the version, so it is a small positive number.
    Ok(Entry {
        seq,
        at_ms,
        version: version as u32,
        event,
    })
}

impl Iterator for Entries {
    type Item = Result<Entry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.exhausted {
            self.fill_page();
        }
        self.page.pop_front()
    }
}

/// The highest sequence number in the journal on `conn` (any connection,
/// inside or outside a transaction), 0 when it is empty.
pub fn last_seq(conn: &Connection) -> rusqlite::Result<Seq> {
    conn.query_row("SELECT coalesce(max(seq), 0) FROM journal", [], |r| {
        r.get(0)
    })
}

//! Integration tests of the journal. One test binary with a module per
//! concern, so CI links once instead of once per file.

#[path = "../support/samples.rs"]
mod samples;

mod corruption;
mod crash;
mod fixture;
mod metrics;
mod rebuild;
mod registry;
mod replay;
mod roundtrip;
mod writer;

use keyferry_journal::connection::open_rw;
use keyferry_journal::{Durability, Entry, Journal, Writer, WriterConfig};
use tempfile::TempDir;

/// A journal in a fresh temporary file, removed when dropped.
struct TempJournal {
    // Field order is drop order: stop the writer before removing its file.
    _writer: Writer,
    journal: Journal,
    _dir: TempDir,
}

impl TempJournal {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, journal) = Journal::open(
            &dir.path().join("journal.sqlite"),
            Durability::Normal,
            WriterConfig::default(),
        )
        .expect("open journal");
        TempJournal {
            _writer: writer,
            journal,
            _dir: dir,
        }
    }

    /// A second read-write connection, for tampering with rows the way a
    /// disk fault or a buggy build would.
    fn raw(&self) -> rusqlite::Connection {
        open_rw(self.journal.path(), Durability::Normal).expect("raw connection")
    }

    /// Every entry from the start, panicking on any error.
    fn read_all(&self) -> Vec<Entry> {
        self.journal
            .read_from(1)
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("clean journal")
    }
}

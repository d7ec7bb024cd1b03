//! Writes a fixture journal with the current schema: one event of every
//! kind (`every_kind` in `tests/support/samples.rs`, the newest
//! `written_by_vN`) and a summary snapshot.
//!
//! Run once per schema version and commit the result under
//! `journal/tests/fixtures/` — never regenerate an old version's fixture:
//!
//! ```text
//! cargo run -p keyferry-journal --example write_fixture -- journal/tests/fixtures/journal_v2.sqlite
//! ```

use std::error::Error;
use std::path::PathBuf;

use keyferry_journal::connection::open_rw;
use keyferry_journal::{Durability, Journal, Summary, WriterConfig};

// Shared with the tests, which also use the parts this example does not.
#[allow(dead_code)]
#[path = "../tests/support/samples.rs"]
mod samples;

fn main() -> Result<(), Box<dyn Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: write_fixture OUTPUT.sqlite")?
        .into();
    if path.exists() {
        return Err(format!(
            "{} exists; fixtures of released versions are never rewritten",
            path.display()
        )
        .into());
    }
    let (writer, journal) = Journal::open(&path, Durability::Full, WriterConfig::default())?;
    journal.append(samples::every_kind()).wait()?;
    let replayed = journal.replay::<Summary>(None)?;
    journal
        .save_snapshot(&replayed.state, replayed.seq)
        .wait()?;
    writer.shutdown();

    // One self-contained, compact file: fold the WAL back in and leave WAL
    // mode (opening the copy in a test turns it back on).
    let conn = open_rw(&path, Durability::Full)?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.execute_batch("VACUUM")?;
    println!("wrote {}", path.display());
    Ok(())
}

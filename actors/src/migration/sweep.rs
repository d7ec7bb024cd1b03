//! The safety sweep: one pass over the source and the destination that
//! puts every key that differs into the registry, so the dirty applier
//! repairs it. It is what a run needs after the tracker may have missed
//! events (`needs_sweep`: a disconnect, an overflow, a `FLUSHDB`, a source
//! restart).
//!
//! Source side: `SCAN` every database and compare each page with the
//! destination, cheap checks first (type, length, TTL) and values only
//! where those agree ([`crate::compare`]); a key that differs or is
//! missing is marked dirty. Destination side: page through the
//! destination's keys and ask the source `EXISTS`; a key the source no
//! longer has is marked deleted. Keys already pending are not compared:
//! the applier re-reads them anyway.
//!
//! The tracker keeps running during a sweep, so a write that lands after
//! a key was compared is still recorded. `SweepCompleted` names the
//! journal position the sweep started from: it clears the need only if no
//! new `SweepRequired` came after that.
//!
//! Run as a job ([`super::steps`]), the sweep's marks are fenced by the
//! job's lease.

use keyferry_engine::Db;
use keyferry_journal::Event;
use keyferry_journal::registry;

use super::batch::{self, Fuse};
use super::steps::Lease;
use super::{DATABASES, MigrationError, Run, Settings};
use crate::compare::{CompareOptions, Outcome, compare_keys, destination_keys_missing_at_source};
use crate::source::scan_page;

/// What a sweep found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Source keys compared.
    pub compared: u64,
    /// Keys marked dirty (they differ, or are missing at the destination).
    pub dirtied: u64,
    /// Destination keys marked deleted (the source no longer has them).
    pub deleted: u64,
}

/// Sweeps every database (see the module docs).
pub async fn sweep(run: &Run, settings: &Settings) -> Result<SweepReport, MigrationError> {
    sweep_fenced(run, settings, None).await
}

/// [`sweep`], with every mark fenced by `lease` when given.
pub(crate) async fn sweep_fenced(
    run: &Run,
    settings: &Settings,
    lease: Option<Lease>,
) -> Result<SweepReport, MigrationError> {
    let fuse = Fuse::new(lease);
    let started_seq = run.last_seq()?;
    let mut report = SweepReport::default();
    let options = CompareOptions::default();
    for index in 0..DATABASES {
        let db = Db::new(i64::from(index)).expect("0..16 are databases");
        let mut conn = run.source.connect(index).await?;
        let mut cursor = 0;
        loop {
            let (next, keys) = scan_page(&mut conn, cursor, settings.scan_count)
                .await
                .map_err(|e| run.source.command_error(e))?;
            let keys = not_pending(run, index, keys)?;
            report.compared += keys.len() as u64;
            let mut events = Vec::new();
            for compared in compare_keys(&mut conn, &run.store, db, &keys, &options).await? {
                match compared.outcome {
                    Outcome::Same | Outcome::Unsupported { .. } => {}
                    Outcome::ExtraAtDestination => {
                        report.deleted += 1;
                        events.push(mark(run, index, compared.key, false));
                    }
                    _ => {
                        report.dirtied += 1;
                        events.push(mark(run, index, compared.key, true));
                    }
                }
            }
            if !events.is_empty() {
                batch::record(&run.store, &fuse, events).await?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut after: Option<Vec<u8>> = None;
        loop {
            let (extra, next) = destination_keys_missing_at_source(
                &mut conn,
                &run.store,
                db,
                after.as_deref(),
                settings.scan_count as usize,
            )
            .await?;
            report.deleted += extra.len() as u64;
            let events: Vec<Event> = extra
                .into_iter()
                .map(|key| mark(run, index, key, false))
                .collect();
            if !events.is_empty() {
                batch::record(&run.store, &fuse, events).await?;
            }
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let completed = Event::SweepCompleted {
        run_id: run.id.clone(),
        started_seq,
    };
    batch::record(&run.store, &fuse, vec![completed]).await?;
    tracing::info!(run = %run.id, ?report, "sweep complete");
    Ok(report)
}

/// `keys` without those already pending in the registry.
fn not_pending(run: &Run, db: u32, keys: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, MigrationError> {
    let run_id = run.id.clone();
    Ok(run.store.read(move |view| {
        let mut kept = Vec::with_capacity(keys.len());
        for key in keys {
            if !registry::is_pending(view.conn(), &run_id, db, &key)? {
                kept.push(key);
            }
        }
        Ok(kept)
    })?)
}

/// A sweep's registry mark: dirty, or deleted.
fn mark(run: &Run, db: u32, key: Vec<u8>, dirty: bool) -> Event {
    let mark = if dirty {
        super::Mark::Dirty
    } else {
        super::Mark::Deleted
    };
    super::mark_event(&run.id, db, key, "sweep".into(), mark)
}

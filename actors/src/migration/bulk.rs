//! The bulk scanner actor: copies every key of every source database into
//! the destination, resumably.
//!
//! Each step handles a *window* of up to `max_concurrency` `SCAN` pages:
//! the pages are listed one after the other (a cursor depends on the one
//! before), their keys are read concurrently (two pipelined round trips a
//! page, see [`crate::source::fetch`]), big collections are streamed into
//! staging keys, and the small values are written in batches of at most
//! `batch_keys` keys / `batch_bytes` bytes. The window's last batch carries
//! the checkpoint — the position after the window and the cumulative
//! counters — so a batch is imported and checkpointed, or neither. Writes
//! of one window overlap the reads of the next.
//!
//! Keys the tracker has already recorded are left to the dirty applier
//! (see [`super::batch::submit`]): a copy read before the applier's must
//! never overwrite it.
//!
//! Run as a job ([`super::steps`]), the scanner's writes — batches, big
//! keys, checkpoints — are fenced by the job's lease.

use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use keyferry_engine::{Db, StagedKey};
use keyferry_journal::registry::{self, RunRow};
use keyferry_journal::{Counters, Event, Severity};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

use super::batch::{self, Fuse, Item, Written};
use super::control::{Control, RateLimiter};
use super::steps::Lease;
use super::{DATABASES, MigrationError, Run, Settings};
use crate::source::info;
use crate::source::scan_page;
use crate::source::{BigKey, FetchLimits, Fetched, fetch_keys};
use crate::supervisor::ChildSpec;

/// The child's name in logs, journal events and metric labels.
pub const NAME: &str = "bulk_scanner";

/// How a bulk copy ended.
pub type Outcome = Option<Result<Counters, String>>;

/// What the scanner needs to run.
#[derive(Clone)]
pub struct BulkConfig {
    /// The run.
    pub run: Run,
    /// Throttles (the run's recorded ones override them).
    pub settings: Settings,
    /// How collections are chunked.
    pub limits: FetchLimits,
    /// Set when the copy finished, failed for good, or was aborted.
    pub done: Arc<watch::Sender<Outcome>>,
}

/// Why `bulk` refuses to start.
#[derive(Debug, thiserror::Error)]
#[error(
    "run {run_id} already has a bulk checkpoint (database {db}, cursor {cursor}, {migrated} keys copied): \
     pass --resume to continue it, or choose another --run-id"
)]
pub struct AlreadyStarted {
    run_id: String,
    db: u32,
    cursor: u64,
    migrated: u64,
}

/// Records the start of a bulk copy. Without `resume`, refuses a run that
/// already has a checkpoint (silently starting over would redo hours of
/// work; silently resuming would surprise whoever reused the id).
pub async fn prepare(
    run: &Run,
    resume: bool,
    throttles: Option<Event>,
) -> Result<(), MigrationError> {
    refuse_restart(run.row()?.as_ref(), &run.id, resume)?;
    let mut events = vec![started(run)];
    events.extend(throttles);
    run.record(events).await.map(drop)
}

/// [`prepare`]'s check: a run that already has a checkpoint (`row`) is
/// only continued with `resume`.
pub(crate) fn refuse_restart(
    row: Option<&RunRow>,
    run_id: &str,
    resume: bool,
) -> Result<(), MigrationError> {
    match row {
        Some(row) if row.last_checkpoint_seq.is_some() && !resume => Err(MigrationError::Refused(
            AlreadyStarted {
                run_id: run_id.to_string(),
                db: row.scan_db,
                cursor: row.scan_cursor,
                migrated: row.counters.migrated_keys,
            }
            .to_string(),
        )),
        _ => Ok(()),
    }
}

/// The event that starts (or resumes) the bulk copy of `run`.
pub(crate) fn started(run: &Run) -> Event {
    Event::RunStarted {
        run_id: run.id.clone(),
        source: run.source.without_password(),
        destination: run.store.path().display().to_string(),
    }
}

/// The supervisor's child spec for a scanner.
pub fn child_spec(config: BulkConfig) -> ChildSpec {
    spec(config, None)
}

/// The child spec for a scanner whose writes are fenced by `lease`.
pub(crate) fn leased_child_spec(config: BulkConfig, lease: Lease) -> ChildSpec {
    spec(config, Some(lease))
}

fn spec(config: BulkConfig, lease: Option<Lease>) -> ChildSpec {
    ChildSpec::new(NAME, move |spawner| {
        let args = (config.clone(), lease.clone());
        async move { spawner.spawn(BulkScanner, args).await }
    })
}

/// A message to the scanner.
pub enum Msg {
    /// Handle the next window.
    Step,
}

/// The scanner actor.
pub struct BulkScanner;

/// Its state.
pub struct State {
    config: BulkConfig,
    control: Control,
    limiter: RateLimiter,
    /// Where to continue: database and cursor.
    db: u32,
    cursor: u64,
    /// The source's run id (the cursor is only valid for it).
    source_run_id: String,
    conn: Option<(u32, MultiplexedConnection)>,
    /// Counters as of the last batch handed to the writer; the writer
    /// thread updates them as batches commit, in order.
    counters: Arc<Mutex<Counters>>,
    fuse: Fuse,
    /// The previous window's writes, awaited before the next is submitted.
    in_flight: Vec<keyferry_engine::Write<Written>>,
}

impl Actor for BulkScanner {
    type Msg = Msg;
    type State = State;
    type Arguments = (BulkConfig, Option<Lease>);

    async fn pre_start(
        &self,
        myself: ActorRef<Msg>,
        (config, lease): (BulkConfig, Option<Lease>),
    ) -> Result<State, ActorProcessingErr> {
        let run = &config.run;
        let fuse = Fuse::new(lease);
        let mut conn = run.source.connect(0).await?;
        let source_run_id = info::info(&mut conn, "server")
            .await
            .map_err(|e| run.source.command_error(e))?
            .run_id()
            .unwrap_or_default()
            .to_string();
        let row = run.row()?;
        let (mut db, mut cursor, counters) = match &row {
            Some(row) if row.last_checkpoint_seq.is_some() => {
                (row.scan_db, row.scan_cursor, row.counters)
            }
            _ => (0, 0, Counters::default()),
        };
        if row.as_ref().is_some_and(|r| r.scan_done) {
            db = DATABASES;
        }
        let stale = row
            .as_ref()
            .and_then(|r| r.scan_source_run_id.as_deref())
            .is_some_and(|old| !old.is_empty() && old != source_run_id);
        if stale && db < DATABASES {
            // A SCAN cursor means nothing to a restarted server: start the
            // scan over (imports are idempotent), and let a sweep catch
            // what the restart changed.
            run.record_error(
                NAME,
                Severity::Warning,
                "the source restarted since the last checkpoint: scanning again from the start"
                    .into(),
                None,
            )
            .await?;
            let required = Event::SweepRequired {
                run_id: run.id.clone(),
                reason: "the source restarted during the bulk copy".into(),
            };
            batch::record(&run.store, &fuse, vec![required]).await?;
            (db, cursor) = (0, 0);
        }
        myself.send_message(Msg::Step)?;
        Ok(State {
            control: Control::new(config.settings.clone()),
            config,
            limiter: RateLimiter::new(),
            db,
            cursor,
            source_run_id,
            conn: None,
            counters: Arc::new(Mutex::new(counters)),
            fuse,
            in_flight: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Msg>,
        _: Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let run = state.config.run.clone();
        let settings = match state.control.proceed(&run).await {
            Ok(settings) => settings,
            Err(MigrationError::Aborted(_)) => {
                state.drain().await?;
                state
                    .config
                    .done
                    .send_replace(Some(Err(format!("run {} was aborted", run.id))));
                myself.stop(Some("aborted".into()));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if state.db >= DATABASES {
            state.drain().await?;
            let counters = *state.counters.lock().expect("counters lock");
            let last = checkpoint(
                &run.id,
                &state.source_run_id,
                DATABASES - 1,
                0,
                true,
                counters,
            );
            batch::record(&run.store, &state.fuse, vec![last]).await?;
            tracing::info!(run = %run.id, ?counters, "bulk copy complete");
            // Kept even if nobody subscribed yet (send would drop it).
            state.config.done.send_replace(Some(Ok(counters)));
            myself.stop(Some("done".into()));
            return Ok(());
        }
        state.window(&settings).await?;
        myself.send_message(Msg::Step)?;
        Ok(())
    }
}

impl State {
    /// The connection bound to the current database.
    async fn conn(&mut self) -> Result<MultiplexedConnection, MigrationError> {
        match &self.conn {
            Some((db, conn)) if *db == self.db => Ok(conn.clone()),
            _ => {
                let conn = self.config.run.source.connect(self.db).await?;
                self.conn = Some((self.db, conn.clone()));
                Ok(conn)
            }
        }
    }

    /// Waits for every write handed to the writer.
    async fn drain(&mut self) -> Result<(), MigrationError> {
        for write in std::mem::take(&mut self.in_flight) {
            write.await?;
        }
        Ok(())
    }

    /// Lists, reads and writes one window of pages.
    async fn window(&mut self, settings: &Settings) -> Result<(), MigrationError> {
        let run = self.config.run.clone();
        let db = Db::new(i64::from(self.db)).expect("scanned databases are 0..16");
        let mut conn = self.conn().await?;
        let mut pages = Vec::new();
        let mut cursor = self.cursor;
        for _ in 0..settings.max_concurrency.max(1) {
            self.limiter.acquire(1, settings.max_rps).await;
            let (next, keys) = scan_page(&mut conn, cursor, settings.scan_count)
                .await
                .map_err(|e| run.source.command_error(e))?;
            pages.push(keys);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let keys: u64 = pages.iter().map(|p| p.len() as u64).sum();
        // TYPE + PTTL, then one or two reads, per key.
        self.limiter.acquire(keys * 3, settings.max_rps).await;
        let limits = &self.config.limits;
        let read_at = keyferry_journal::now_ms();
        let fetched = join_all(pages.iter().map(|page| {
            let mut conn = conn.clone();
            async move { fetch_keys(&mut conn, page, limits).await }
        }))
        .await;
        let mut page_counts = Counters {
            scanned_keys: keys,
            ..Counters::default()
        };
        let mut items = Vec::new();
        let mut warnings = Vec::new();
        for (page, fetched) in pages.into_iter().zip(fetched) {
            let fetched = fetched.map_err(|e| run.source.command_error(e))?;
            for (key, found) in page.into_iter().zip(fetched) {
                match found {
                    Fetched::Value {
                        value,
                        ttl_ms,
                        bytes,
                    } => {
                        page_counts.migrated_bytes += bytes;
                        items.push((
                            bytes,
                            Item::Put {
                                key,
                                value,
                                expire_at_ms: batch::expire_at(read_at, ttl_ms, settings.ttl_mode),
                                mark: None,
                            },
                        ));
                    }
                    Fetched::Missing => page_counts.skipped_keys += 1,
                    Fetched::Unsupported { type_name } => {
                        page_counts.skipped_keys += 1;
                        warnings.push(Event::ErrorRecorded {
                            run_id: Some(run.id.clone()),
                            component: NAME.into(),
                            severity: Severity::Warning,
                            message: format!("skipped a key of unsupported type {type_name}"),
                            db: Some(self.db),
                            key: Some(key),
                        });
                    }
                    Fetched::Big(big) => {
                        // Streamed now, before the window's checkpoint is
                        // written, so the checkpoint never passes a key
                        // that is not in yet.
                        let expire_at_ms =
                            batch::expire_at(read_at, big.ttl_ms(), settings.ttl_mode);
                        let (copied, bytes) = self
                            .stream_big(&mut conn, db, key, big, expire_at_ms)
                            .await?;
                        page_counts.migrated_bytes += bytes;
                        if copied {
                            page_counts.migrated_keys += 1;
                        } else {
                            page_counts.skipped_keys += 1;
                        }
                    }
                }
            }
        }
        let (next_db, next_cursor) = if cursor == 0 {
            (self.db + 1, 0)
        } else {
            (self.db, cursor)
        };
        self.submit(
            db,
            items,
            settings,
            page_counts,
            warnings,
            next_db,
            next_cursor,
        )
        .await?;
        self.db = next_db;
        self.cursor = next_cursor;
        Ok(())
    }

    /// Streams a big collection into a staging key and swaps it in, unless
    /// the applier took the key over meanwhile. Returns whether it was
    /// copied, and the bytes read.
    async fn stream_big(
        &mut self,
        conn: &mut MultiplexedConnection,
        db: Db,
        key: Vec<u8>,
        big: BigKey,
        expire_at_ms: Option<i64>,
    ) -> Result<(bool, u64), MigrationError> {
        let run = &self.config.run;
        let staged: StagedKey = run.store.begin_staged(big.kind()).await?;
        let bytes = big
            .stream_into(conn, &key, &staged, &self.config.limits)
            .await
            .map_err(|e| run.source.command_error(e))?;
        let run_id = run.id.clone();
        let index = u32::from(db.index());
        let probe = key.clone();
        let fuse = self.fuse.clone();
        let committed = staged
            .commit_unless(db, key, expire_at_ms, Vec::new(), move |tx| {
                fuse.check(tx.conn())?;
                Ok(registry::is_tracked(tx.conn(), &run_id, index, &probe)?)
            })
            .await?;
        Ok((committed.is_some(), bytes))
    }

    /// Hands the window's values to the writer in batches, the last one
    /// carrying the checkpoint; then waits for the previous window's.
    #[allow(clippy::too_many_arguments)]
    async fn submit(
        &mut self,
        db: Db,
        items: Vec<(u64, Item)>,
        settings: &Settings,
        page_counts: Counters,
        warnings: Vec<Event>,
        next_db: u32,
        next_cursor: u64,
    ) -> Result<(), MigrationError> {
        let run = &self.config.run;
        // (items, bytes) per batch.
        let mut batches: Vec<(Vec<Item>, u64)> = vec![(Vec::new(), 0)];
        for (bytes, item) in items {
            let (current, current_bytes) = batches.last_mut().expect("one batch at least");
            if !current.is_empty()
                && (current.len() >= settings.batch_keys as usize
                    || *current_bytes + bytes > settings.batch_bytes)
            {
                batches.push((Vec::new(), 0));
            }
            let (current, current_bytes) = batches.last_mut().expect("one batch at least");
            current.push(item);
            *current_bytes += bytes;
        }
        let previous = std::mem::take(&mut self.in_flight);
        let last = batches.len() - 1;
        let mut warnings = Some(warnings);
        for (i, (items, bytes)) in batches.into_iter().enumerate() {
            let keys = items.len() as u64;
            let counters = Arc::clone(&self.counters);
            let run_id = run.id.clone();
            let source_run_id = self.source_run_id.clone();
            let is_last = i == last;
            let extra = if is_last {
                warnings.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            let finish = move |written: Written| {
                let mut counters = counters.lock().expect("counters lock");
                counters.migrated_keys += written.applied;
                counters.skipped_keys += written.deferred;
                let mut events = Vec::new();
                if keys > 0 {
                    events.push(Event::BatchCommitted {
                        run_id: run_id.clone(),
                        db: u32::from(db.index()),
                        keys: written.applied,
                        bytes,
                    });
                }
                if is_last {
                    counters.scanned_keys += page_counts.scanned_keys;
                    counters.migrated_keys += page_counts.migrated_keys;
                    counters.skipped_keys += page_counts.skipped_keys;
                    counters.migrated_bytes += page_counts.migrated_bytes;
                    events.extend(extra);
                    events.push(checkpoint(
                        &run_id,
                        &source_run_id,
                        next_db,
                        next_cursor,
                        false,
                        *counters,
                    ));
                }
                metrics::counter!("keyferry_migration_migrated_keys_total")
                    .increment(written.applied);
                events
            };
            let defer = Some(run.id.clone());
            self.in_flight.push(batch::submit(
                &run.store, db, items, defer, &self.fuse, finish,
            ));
        }
        metrics::counter!("keyferry_migration_scanned_keys_total")
            .increment(page_counts.scanned_keys);
        metrics::counter!("keyferry_migration_skipped_keys_total")
            .increment(page_counts.skipped_keys);
        metrics::counter!("keyferry_migration_migrated_bytes_total")
            .increment(page_counts.migrated_bytes);
        for write in previous {
            write.await?;
        }
        Ok(())
    }
}

/// A checkpoint event.
fn checkpoint(
    run_id: &str,
    source_run_id: &str,
    db: u32,
    cursor: u64,
    done: bool,
    counters: Counters,
) -> Event {
    Event::Checkpoint {
        run_id: run_id.to_string(),
        source_run_id: source_run_id.to_string(),
        cursor,
        counters,
        db,
        done,
    }
}

//! The dirty applier: drains the run's pending registry keys oldest first,
//! re-reads each from the source and replaces it at the destination — or
//! deletes it when the source no longer has it — marking it settled in the
//! same transaction.
//!
//! The replacement is whole: [`keyferry_engine::Tx::import_key`] drops
//! every old field, member or element, so nothing of the previous value
//! survives (the peers' duplicated list elements). A mark settles a key
//! only up to the tracker event it was read for (`through_seq`): if the
//! tracker recorded another write meanwhile, the key stays pending and is
//! applied again, so it is safe to run beside the tracker, repeatedly.
//!
//! Batches are pipelined: the next one is the keys whose latest event is
//! after the previous batch's, so a key in flight is not picked twice
//! unless it was written again (then it must be).
//!
//! Run as a job ([`super::steps`]), the applier's writes are fenced by the
//! job's lease.

use std::sync::Arc;
use std::time::Duration;

use keyferry_engine::Db;
use keyferry_journal::registry::{self, PendingKey};
use keyferry_journal::{Event, Seq};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use super::batch::{self, Fuse, Item, Written};
use super::control::{Control, RateLimiter};
use super::steps::Lease;
use super::{MigrationError, Run, Settings};
use crate::source::{FetchLimits, Fetched, fetch_keys};
use crate::supervisor::ChildSpec;

/// The child's name in logs, journal events and metric labels.
pub const NAME: &str = "dirty_applier";

/// How long a continuous applier waits when nothing is pending.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// Keys applied and deleted by one drain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Keys re-imported.
    pub applied: u64,
    /// Keys deleted.
    pub deleted: u64,
    /// Keys of unsupported types set aside.
    pub skipped: u64,
}

/// When [`drain`] returns.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Once nothing is pending (`apply-dirty`, the final delta).
    UntilEmpty,
    /// Live sync: waits for new keys until the receiver turns `true`.
    Live(watch::Receiver<bool>),
}

/// Applies pending keys (see [`Mode`] for how long), then returns what it
/// did. An aborted run ends it with `Aborted`.
pub async fn drain(
    run: &Run,
    settings: Settings,
    limits: &FetchLimits,
    mode: Mode,
) -> Result<Applied, MigrationError> {
    drain_fenced(run, settings, limits, mode, None).await
}

/// [`drain`], with every write fenced by `lease` when given.
async fn drain_fenced(
    run: &Run,
    settings: Settings,
    limits: &FetchLimits,
    mode: Mode,
    lease: Option<Lease>,
) -> Result<Applied, MigrationError> {
    let mut control = Control::new(settings);
    let mut limiter = RateLimiter::new();
    let fuse = Fuse::new(lease);
    let mut in_flight: std::collections::VecDeque<keyferry_engine::Write<Written>> =
        Default::default();
    let mut totals = Applied::default();
    let mut after: Seq = 0;
    // `UntilEmpty` drains what was pending when it started: on a source
    // that keeps writing, "until nothing is pending" might never come.
    // Later marks are the next pass's (or live sync's) work.
    let horizon = match mode {
        Mode::UntilEmpty => run.last_seq()?,
        Mode::Live(_) => Seq::MAX,
    };
    let mut conns: Vec<Option<redis::aio::MultiplexedConnection>> =
        vec![None; super::DATABASES as usize];
    loop {
        if let Mode::Live(stop) = &mode
            && *stop.borrow()
        {
            while let Some(write) = in_flight.pop_front() {
                write.await?;
            }
            return Ok(totals);
        }
        let settings = control.proceed(run).await?;
        let run_id = run.id.clone();
        let limit = settings.batch_keys as usize;
        let mut rows = run
            .store
            .read(move |view| Ok(registry::pending_after(view.conn(), &run_id, after, limit)?))?;
        rows.retain(|row| row.last_seen_seq <= horizon);
        if rows.is_empty() {
            while let Some(write) = in_flight.pop_front() {
                write.await?;
            }
            if after == 0 {
                match &mode {
                    Mode::UntilEmpty => return Ok(totals),
                    Mode::Live(_) => tokio::time::sleep(IDLE_WAIT).await,
                }
            }
            after = 0;
            continue;
        }
        after = rows.last().map_or(after, |r| r.last_seen_seq);
        limiter
            .acquire(rows.len() as u64 * 3, settings.max_rps)
            .await;
        for (db, group) in by_db(rows) {
            let conn = match &mut conns[db as usize] {
                Some(conn) => conn.clone(),
                slot => slot.insert(run.source.connect(db).await?).clone(),
            };
            let write =
                apply_group(run, conn, db, group, &settings, limits, &fuse, &mut totals).await?;
            in_flight.push_back(write);
        }
        while in_flight.len() > settings.max_concurrency.max(1) as usize {
            if let Some(write) = in_flight.pop_front() {
                write.await?;
            }
        }
    }
}

/// Splits `rows` into runs of one database each, keeping their order.
fn by_db(rows: Vec<PendingKey>) -> Vec<(u32, Vec<PendingKey>)> {
    let mut groups: Vec<(u32, Vec<PendingKey>)> = Vec::new();
    for row in rows {
        match groups.last_mut() {
            Some((db, group)) if *db == row.db => group.push(row),
            _ => groups.push((row.db, vec![row])),
        }
    }
    groups
}

/// Reads one database's keys and submits their replacement; big keys are
/// streamed and committed on their own first.
#[allow(clippy::too_many_arguments)]
async fn apply_group(
    run: &Run,
    mut conn: redis::aio::MultiplexedConnection,
    db_index: u32,
    rows: Vec<PendingKey>,
    settings: &Settings,
    limits: &FetchLimits,
    fuse: &Fuse,
    totals: &mut Applied,
) -> Result<keyferry_engine::Write<Written>, MigrationError> {
    let db = Db::new(i64::from(db_index)).map_err(|e| MigrationError::Refused(e.to_string()))?;
    let keys: Vec<Vec<u8>> = rows.iter().map(|r| r.key.clone()).collect();
    let read_at = keyferry_journal::now_ms();
    let fetched = fetch_keys(&mut conn, &keys, limits)
        .await
        .map_err(|e| run.source.command_error(e))?;
    let mut items = Vec::with_capacity(rows.len());
    for (row, found) in rows.into_iter().zip(fetched) {
        let mark = |kind: MarkKind| mark(run, db_index, &row, kind);
        match found {
            Fetched::Value { value, ttl_ms, .. } => {
                totals.applied += 1;
                items.push(Item::Put {
                    key: row.key.clone(),
                    value,
                    expire_at_ms: batch::expire_at(read_at, ttl_ms, settings.ttl_mode),
                    mark: Some(mark(MarkKind::Applied)),
                });
            }
            Fetched::Missing => {
                totals.deleted += 1;
                items.push(Item::Delete {
                    key: row.key.clone(),
                    mark: Some(mark(MarkKind::Deleted)),
                });
            }
            Fetched::Unsupported { type_name } => {
                totals.skipped += 1;
                items.push(Item::Delete {
                    key: row.key.clone(),
                    mark: Some(mark(MarkKind::Skipped(type_name))),
                });
            }
            Fetched::Big(big) => {
                let staged = run.store.begin_staged(big.kind()).await?;
                let expire_at_ms = batch::expire_at(read_at, big.ttl_ms(), settings.ttl_mode);
                big.stream_into(&mut conn, &row.key, &staged, limits)
                    .await
                    .map_err(|e| run.source.command_error(e))?;
                let event = mark(MarkKind::Applied);
                let fuse = fuse.clone();
                // Never skipped: the predicate is only the fencing check.
                staged
                    .commit_unless(db, row.key.clone(), expire_at_ms, vec![event], move |tx| {
                        fuse.check(tx.conn()).map(|()| false)
                    })
                    .await?;
                metrics::counter!("keyferry_dirty_keys_applied_total").increment(1);
                totals.applied += 1;
            }
        }
    }
    let deletes = items
        .iter()
        .filter(|i| matches!(i, Item::Delete { .. }))
        .count() as u64;
    metrics::counter!("keyferry_dirty_keys_applied_total").increment(items.len() as u64 - deletes);
    metrics::counter!("keyferry_dirty_keys_deleted_total").increment(deletes);
    Ok(batch::submit(&run.store, db, items, None, fuse, |_| {
        Vec::new()
    }))
}

/// Which settlement a key gets.
enum MarkKind {
    Applied,
    Deleted,
    Skipped(String),
}

/// The registry event settling `row` up to the tracker event it was read
/// for.
fn mark(run: &Run, db: u32, row: &PendingKey, kind: MarkKind) -> Event {
    let (run_id, key, through_seq) = (run.id.clone(), row.key.clone(), row.last_seen_seq);
    match kind {
        MarkKind::Applied => Event::KeyMarkedApplied {
            run_id,
            db,
            key,
            through_seq,
        },
        MarkKind::Deleted => Event::KeyMarkedDeleted {
            run_id,
            db,
            key,
            through_seq,
        },
        MarkKind::Skipped(type_name) => Event::KeyMarkedSkipped {
            run_id,
            db,
            key,
            through_seq,
            reason: format!("unsupported type {type_name}"),
        },
    }
}

/// What an applier actor needs.
#[derive(Clone)]
pub struct ApplierConfig {
    /// The run.
    pub run: Run,
    /// Throttles.
    pub settings: Settings,
    /// How collections are chunked.
    pub limits: FetchLimits,
    /// How long to run.
    pub mode: Mode,
    /// Set when the applier finished or failed for good.
    pub done: Arc<watch::Sender<Option<Result<Applied, String>>>>,
}

/// The supervisor's child spec for an applier.
pub fn child_spec(config: ApplierConfig) -> ChildSpec {
    spec(config, None)
}

/// The child spec for an applier whose writes are fenced by `lease`.
pub(crate) fn leased_child_spec(config: ApplierConfig, lease: Lease) -> ChildSpec {
    spec(config, Some(lease))
}

fn spec(config: ApplierConfig, lease: Option<Lease>) -> ChildSpec {
    ChildSpec::new(NAME, move |spawner| {
        let args = (config.clone(), lease.clone());
        async move { spawner.spawn(DirtyApplier, args).await }
    })
}

/// The applier actor: one message, which runs [`drain`]. Its state is all
/// in the registry, so a restarted applier just drains again.
pub struct DirtyApplier;

/// The actor's only message.
pub struct Start;

impl Actor for DirtyApplier {
    type Msg = Start;
    type State = (ApplierConfig, Option<Lease>);
    type Arguments = (ApplierConfig, Option<Lease>);

    async fn pre_start(
        &self,
        myself: ActorRef<Start>,
        args: (ApplierConfig, Option<Lease>),
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_message(Start)?;
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<Start>,
        _: Start,
        (config, lease): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let outcome = drain_fenced(
            &config.run,
            config.settings.clone(),
            &config.limits,
            config.mode.clone(),
            lease.clone(),
        )
        .await;
        match outcome {
            Ok(applied) => {
                config.done.send_replace(Some(Ok(applied)));
            }
            Err(MigrationError::Aborted(run)) => {
                // send_replace: the value must be kept even when nobody
                // subscribed yet (a fast step can finish before its caller
                // starts listening).
                config
                    .done
                    .send_replace(Some(Err(format!("run {run} was aborted"))));
            }
            // Anything else is a failure the supervisor restarts us for.
            Err(e) => return Err(e.into()),
        }
        myself.stop(Some("done".into()));
        Ok(())
    }
}

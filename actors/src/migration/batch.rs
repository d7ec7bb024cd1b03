//! One destination transaction of a migration step: keys put or deleted,
//! plus the events that describe them (registry marks, checkpoint), so a
//! batch is either imported and recorded, or neither.
//!
//! Batches of one step are pipelined to the writer. If one fails, the ones
//! queued behind it must not commit — the checkpoint they carry would
//! claim the failed keys were imported — so they share a [`Fuse`]: the
//! first failure blows it, and every later batch fails before writing.
//!
//! **Fencing.** A step run as a job (see [`super::steps`]) also carries its
//! job's [`Lease`] in the fuse. Every batch, and every other state write of
//! the step ([`record`]), first checks inside its own transaction that the
//! lease is still held at its epoch: a worker whose lease expired and was
//! taken over writes nothing more, even if it never noticed. A lost lease
//! fails the batch and blows the fuse like any other failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyferry_engine::{Db, KeyValue, Store, StoreError, Write};
use keyferry_journal::registry;
use keyferry_journal::{Event, Isolation, Seq};
use rusqlite::Connection;

use super::steps::Lease;

/// One key's change.
pub(crate) enum Item {
    /// Replace the key with this value.
    Put {
        key: Vec<u8>,
        value: KeyValue,
        expire_at_ms: Option<i64>,
        /// Registry mark appended with it (the applier's), if any.
        mark: Option<Event>,
    },
    /// Delete the key (a no-op when absent).
    Delete { key: Vec<u8>, mark: Option<Event> },
}

impl Item {
    /// The key the item changes.
    fn key(&self) -> &[u8] {
        match self {
            Item::Put { key, .. } | Item::Delete { key, .. } => key,
        }
    }
}

/// What a committed batch did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    /// Keys put or deleted.
    pub(crate) applied: u64,
    /// Keys left alone because the dirty applier owns them.
    pub(crate) deferred: u64,
}

/// Guards the writes of one step: blown by its first failed batch (later
/// batches then fail without writing), and fenced by its job's lease when
/// it runs as a job.
#[derive(Clone)]
pub(crate) struct Fuse {
    blown: Arc<AtomicBool>,
    lease: Option<Lease>,
}

impl Fuse {
    /// A fresh fuse for a step fenced by `lease`, if it runs as a job.
    pub(crate) fn new(lease: Option<Lease>) -> Self {
        Fuse {
            blown: Arc::default(),
            lease,
        }
    }

    /// Inside the write's transaction: fails unless the step may still
    /// write (no earlier batch failed, and its lease is still held).
    pub(crate) fn check(&self, conn: &Connection) -> Result<(), StoreError> {
        if self.blown.load(Ordering::Acquire) {
            return Err(StoreError::Cancelled(
                "an earlier batch of this step failed".into(),
            ));
        }
        match &self.lease {
            Some(lease) => lease.check_in(conn),
            None => Ok(()),
        }
    }

    fn blow(&self) {
        self.blown.store(true, Ordering::Release);
    }
}

/// Appends `events` (state the step records besides its batches: a
/// checkpoint, a sweep's marks) in one transaction, once `fuse` allows it.
pub(crate) fn record(store: &Store, fuse: &Fuse, events: Vec<Event>) -> Write<Vec<Seq>> {
    let fuse = fuse.clone();
    store.write(move |tx| {
        fuse.check(tx.conn())?;
        tx.append_events(&events)
    })
}

/// Submits `items` for database `db` as one transaction. With
/// `defer_to_registry = Some(run)`, keys that have a registry row in `run`
/// are skipped: the dirty applier re-reads them, and a bulk copy taken
/// before its read must not overwrite what it wrote. `finish` builds the
/// trailing events (batch record, checkpoint) from what was written.
pub(crate) fn submit(
    store: &Store,
    db: Db,
    items: Vec<Item>,
    defer_to_registry: Option<String>,
    fuse: &Fuse,
    finish: impl FnOnce(Written) -> Vec<Event> + Send + 'static,
) -> Write<Written> {
    let fuse = fuse.clone();
    let mut items = items;
    // In key order, the inserts walk the `(db, key)` index forwards instead
    // of jumping about it (SCAN and the registry give keys in no useful
    // order). Stable: a key listed twice keeps its last value.
    items.sort_by(|a, b| a.key().cmp(b.key()));
    // No savepoint per batch: a batch that fails after writing fails its
    // whole commit group (the writer checks), and blows the fuse, which is
    // what a failed batch must do anyway; the savepoint's page copies were
    // a fifth of the writer's time.
    store.write_with(Isolation::NoneWhenFailureWritesNothing, move |tx| {
        let result = (|| {
            fuse.check(tx.conn())?;
            let mut written = Written::default();
            let mut events = Vec::new();
            for item in items {
                if let Some(run) = &defer_to_registry
                    && registry::is_tracked(tx.conn(), run, u32::from(db.index()), item.key())?
                {
                    written.deferred += 1;
                    continue;
                }
                match item {
                    Item::Put {
                        key,
                        value,
                        expire_at_ms,
                        mark,
                    } => {
                        tx.import_key(db, &key, &value, expire_at_ms)?;
                        events.extend(mark);
                    }
                    Item::Delete { key, mark } => {
                        tx.delete_key(db, &key)?;
                        events.extend(mark);
                    }
                }
                written.applied += 1;
            }
            events.extend(finish(written));
            tx.append_events(&events)?;
            Ok(written)
        })();
        if result.is_err() {
            fuse.blow();
        }
        result
    })
}

/// The absolute expiry for a key that had `ttl_ms` left when it was read
/// (`read_at_ms`: just before the read was sent), or none when TTLs are
/// dropped or the key is persistent.
///
/// Anchored at the read, not at the time of this call: a key handled after
/// a slow one (a big collection streamed first, a stalled process) must
/// not outlive its source by that delay.
pub(crate) fn expire_at(read_at_ms: i64, ttl_ms: Option<i64>, mode: super::TtlMode) -> Option<i64> {
    match mode {
        super::TtlMode::Drop => None,
        super::TtlMode::Preserve => ttl_ms.map(|ttl| read_at_ms + ttl),
    }
}

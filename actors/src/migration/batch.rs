//! One destination transaction of a migration step: keys put or deleted,
//! plus the events that describe them (registry marks, checkpoint), so a
//! batch is either imported and recorded, or neither.
//!
//! Batches of one step are pipelined to the writer. If one fails, the ones
//! queued behind it must not commit — the checkpoint they carry would
//! claim the failed keys were imported — so they share a [`Fuse`]: the
//! first failure blows it, and every later batch fails before writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyferry_engine::{Db, KeyValue, Store, StoreError, Write};
use keyferry_journal::Event;
use keyferry_journal::registry;

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

/// What a committed batch did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    /// Keys put or deleted.
    pub(crate) applied: u64,
    /// Keys left alone because the dirty applier owns them.
    pub(crate) deferred: u64,
}

/// Blown by the first failed batch of a step; later batches then fail
/// without writing.
#[derive(Clone, Default)]
pub(crate) struct Fuse(Arc<AtomicBool>);

impl Fuse {
    pub(crate) fn blown(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
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
    store.write(move |tx| {
        let result = (|| {
            if fuse.blown() {
                return Err(StoreError::Cancelled(
                    "an earlier batch of this step failed".into(),
                ));
            }
            let mut written = Written::default();
            let mut events = Vec::new();
            for item in items {
                let key = match &item {
                    Item::Put { key, .. } | Item::Delete { key, .. } => key,
                };
                if let Some(run) = &defer_to_registry
                    && registry::is_tracked(tx.conn(), run, u32::from(db.index()), key)?
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
            fuse.0.store(true, Ordering::Release);
        }
        result
    })
}

/// The absolute expiry for a key with `ttl_ms` left, or none when TTLs are
/// dropped or the key is persistent.
pub(crate) fn expire_at(ttl_ms: Option<i64>, mode: super::TtlMode) -> Option<i64> {
    match mode {
        super::TtlMode::Drop => None,
        super::TtlMode::Preserve => ttl_ms.map(|ttl| now_ms() + ttl),
    }
}

/// Wall-clock milliseconds since the epoch (what the keyspace's expiry
/// column is in).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

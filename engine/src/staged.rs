//! Staged imports: a key too big for one short transaction is built in a
//! hidden staging row over many transactions, then swapped in with one.
//!
//! The staging row lives in the hidden [`STAGING`] database, so no reader
//! can see it; the swap moves it into the target database in one row
//! update, so readers see either the old value or the whole new one. Each
//! chunk is its own writer job, so memory is bounded by the chunk size and
//! the write lock is released between chunks.
//!
//! A staging row carries a lease in its `expire_at_ms`, renewed by every
//! append. If the importing process crashes (or simply stops appending),
//! the sweeper finds the lease expired and frees the row like any other
//! expired key — another process's staged import that is still alive keeps
//! renewing its lease and is left alone.

use std::sync::Arc;

use keyferry_journal::event::{Event, Seq};
use rusqlite::params;

use crate::db::{Db, STAGING};
use crate::elements;
use crate::error::StoreError;
use crate::keys::{self, KeyMeta};
use crate::keyvalue::{KeyKind, KeyValue};
use crate::store::Store;
use crate::trash;
use crate::write::{Shared, Tx, Write};

/// A key being imported in chunks. Invisible to readers until
/// [`StagedKey::commit`]; dropping it without committing aborts it.
pub struct StagedKey {
    shared: Arc<Shared>,
    id: i64,
    kind: KeyKind,
    finished: bool,
}

impl Store {
    /// Starts a staged import of a collection of type `kind`.
    pub fn begin_staged(&self, kind: KeyKind) -> Write<StagedKey> {
        let shared = Arc::clone(self.shared());
        self.write(move |tx| {
            if kind == KeyKind::String {
                return Err(StoreError::NotStageable(kind));
            }
            // A random 128-bit name: unique among concurrent stagings, even
            // from other processes, without coordination.
            tx.conn()
                .prepare_cached("INSERT INTO keys (db, key, kind, expire_at_ms) VALUES (?1, randomblob(16), ?2, ?3)")?
                .execute(params![STAGING, kind.code(), lease_end(tx)])?;
            let id = tx.conn().last_insert_rowid();
            Ok(StagedKey { shared, id, kind, finished: false })
        })
    }
}

impl StagedKey {
    /// The type of key being built.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Adds a chunk of elements (of the staged type) in its own transaction
    /// and renews the lease. List elements are appended at the tail, in
    /// order; repeated hash fields and zset members keep the last value.
    /// Chunks may be pipelined: they apply in submission order.
    pub fn append(&self, chunk: KeyValue) -> Write<()> {
        let (id, kind) = (self.id, self.kind);
        self.shared.write(move |tx| {
            if chunk.kind() != kind {
                return Err(StoreError::KindMismatch {
                    expected: kind,
                    found: chunk.kind(),
                });
            }
            let meta = staging_row(tx, id)?;
            let added = elements::append(tx.conn(), id, meta.list_head + meta.len as i64, &chunk)?;
            tx.conn()
                .prepare_cached("UPDATE keys SET len = len + ?2, expire_at_ms = ?3 WHERE id = ?1")?
                .execute(params![id, added as i64, lease_end(tx)])?;
            Ok(())
        })
    }

    /// Swaps the staged value in as `key` in `db` with expiry
    /// `expire_at_ms`, replacing whatever `key` held, and appends `events`,
    /// all in one short transaction. An empty staged collection, or an
    /// expiry already past, leaves the key deleted.
    pub fn commit(
        mut self,
        db: Db,
        key: Vec<u8>,
        expire_at_ms: Option<i64>,
        events: Vec<Event>,
    ) -> Write<Vec<Seq>> {
        self.finished = true;
        let id = self.id;
        self.shared.write(move |tx| {
            swap_in(tx, id, db, &key, expire_at_ms)?;
            tx.append_events(&events)
        })
    }

    /// Like [`StagedKey::commit`], but first asks `skip` inside the same
    /// transaction: when it says yes, the staged value is dropped instead,
    /// `key` is left as it is, no event is appended, and the write
    /// resolves to `None`. The migration uses it so that a key the dirty
    /// applier took over while it was being streamed is not overwritten
    /// with an older copy.
    pub fn commit_unless(
        mut self,
        db: Db,
        key: Vec<u8>,
        expire_at_ms: Option<i64>,
        events: Vec<Event>,
        skip: impl FnOnce(&Tx<'_>) -> Result<bool, StoreError> + Send + 'static,
    ) -> Write<Option<Vec<Seq>>> {
        self.finished = true;
        let id = self.id;
        self.shared.write(move |tx| {
            staging_row(tx, id)?;
            if skip(tx)? {
                trash::move_to_trash(tx.conn(), id)?;
                return Ok(None);
            }
            swap_in(tx, id, db, &key, expire_at_ms)?;
            tx.append_events(&events).map(Some)
        })
    }

    /// Drops the staged value. Its elements are freed lazily.
    pub fn abort(mut self) -> Write<()> {
        self.finished = true;
        abort(&self.shared, self.id)
    }
}

impl Drop for StagedKey {
    fn drop(&mut self) {
        if !self.finished {
            // Nobody waits for this: if it fails, the lease runs out and the
            // sweeper frees the row anyway.
            drop(abort(&self.shared, self.id));
        }
    }
}

fn abort(shared: &Arc<Shared>, id: i64) -> Write<()> {
    shared.write(move |tx| {
        staging_row(tx, id)?;
        Ok(trash::move_to_trash(tx.conn(), id)?)
    })
}

/// Moves staging row `id` into `db` as `key`, replacing what `key` held.
fn swap_in(
    tx: &mut Tx<'_>,
    id: i64,
    db: Db,
    key: &[u8],
    expire_at_ms: Option<i64>,
) -> Result<(), StoreError> {
    let staged = staging_row(tx, id)?;
    tx.delete_key(db, key)?;
    if staged.len == 0 || expire_at_ms.is_some_and(|at| at <= tx.now()) {
        tx.discard(&staged, tx.shared().inline_free_limit)?;
    } else {
        tx.conn()
            .prepare_cached("UPDATE keys SET db = ?2, key = ?3, expire_at_ms = ?4 WHERE id = ?1")?
            .execute(params![id, db.sql(), key, expire_at_ms])?;
    }
    Ok(())
}

/// The staging row `id`, or `StagingLost` if it was committed, aborted or
/// reaped.
fn staging_row(tx: &Tx<'_>, id: i64) -> Result<KeyMeta, StoreError> {
    keys::find_by_id(tx.conn(), id, STAGING)?.ok_or(StoreError::StagingLost)
}

/// When a staging row touched now becomes abandoned.
fn lease_end(tx: &Tx<'_>) -> i64 {
    tx.now() + tx.shared().staging_lease_ms
}

#[cfg(test)]
mod tests;

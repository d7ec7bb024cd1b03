//! Replacing and deleting whole keys, the operations a migration applies.

use keyferry_journal::event::{Event, Seq};
use keyferry_journal::writer::Isolation;

use crate::db::Db;
use crate::elements;
use crate::error::StoreError;
use crate::keys::{self, NewRow};
use crate::keyvalue::KeyValue;
use crate::store::Store;
use crate::string::Expiry;
use crate::write::{Tx, Write};

impl Tx<'_> {
    /// Makes `key` hold exactly `value` with expiry `expire_at_ms`: the old
    /// value (any type), its elements and its TTL are gone. An empty
    /// collection or an expiry at or before now leaves the key absent, as
    /// Redis would.
    pub fn import_key(
        &mut self,
        db: Db,
        key: &[u8],
        value: &KeyValue,
        expire_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        if value.is_empty_collection() || expire_at_ms.is_some_and(|at| at <= self.now()) {
            self.delete_key(db, key)?;
            return Ok(());
        }
        if let KeyValue::String(bytes) = value {
            // One statement when the key is new or a live string (the dirty
            // applier re-imports keys the bulk copy wrote), instead of an
            // insert attempt, a lookup and an update.
            let expiry = expire_at_ms.map_or(Expiry::Persist, Expiry::At);
            return self.string_set(db, key, bytes, expiry);
        }
        let id = self.put_row(
            db,
            key,
            &NewRow {
                kind: value.kind(),
                expire_at_ms,
                string: None,
            },
        )?;
        let len = elements::append(self.conn(), id, 0, value)?;
        keys::set_shape(self.conn(), id, len, 0)?;
        Ok(())
    }

    /// Deletes `key`; returns whether it existed (an expired key did not).
    /// A big collection is freed lazily, but is gone from `db` at once.
    pub fn delete_key(&mut self, db: Db, key: &[u8]) -> Result<bool, StoreError> {
        let Some(old) = self.lookup_for_write(db, key)? else {
            return Ok(false);
        };
        self.discard(&old, self.shared().inline_free_limit)?;
        Ok(true)
    }
}

impl Store {
    /// Replaces `key` with `value` (see [`Tx::import_key`]) and appends
    /// `events`, all in one transaction. Resolves to the events' sequence
    /// numbers once committed.
    pub fn import_key(
        &self,
        db: Db,
        key: Vec<u8>,
        value: KeyValue,
        expire_at_ms: Option<i64>,
        events: Vec<Event>,
    ) -> Write<Vec<Seq>> {
        // A string import cannot fail validation once it starts writing (no
        // score or shape to check), so it skips the per-write savepoint —
        // the bulk path's hottest case. Collections keep the savepoint: a
        // NaN score is only found while their elements are inserted.
        let isolation = match value {
            KeyValue::String(_) => Isolation::NoneWhenFailureWritesNothing,
            _ => Isolation::Savepoint,
        };
        self.write_with(isolation, move |tx| {
            tx.import_key(db, &key, &value, expire_at_ms)?;
            tx.append_events(&events)
        })
    }

    /// Deletes `key` (a no-op when it does not exist) and appends `events`
    /// in the same transaction. Resolves to whether the key existed.
    pub fn delete_key(&self, db: Db, key: Vec<u8>, events: Vec<Event>) -> Write<bool> {
        self.write(move |tx| {
            let existed = tx.delete_key(db, &key)?;
            tx.append_events(&events)?;
            Ok(existed)
        })
    }
}

#[cfg(test)]
mod tests;

//! keyferry's keyspace: Redis's data types stored in SQLite.
//!
//! A [`Store`] opens one SQLite file shared with the journal, runs the
//! process's single group-committing writer, keeps read-only connections
//! for reads and runs the expiry sweeper. Keys and values are arbitrary
//! bytes; there are 16 logical databases ([`Db`]); expiry has millisecond
//! precision.
//!
//! - Writes are closures over a [`Tx`] submitted with [`Store::write`] (or
//!   the shortcuts [`Store::import_key`], [`Store::delete_key`],
//!   [`Store::list_push`], …); a data write and the journal events that
//!   describe it commit in one transaction.
//! - Reads go through a [`View`] ([`Store::read`], or [`Tx::view`] inside
//!   a write) and page through big collections rather than loading them.
//! - Keys too big for one short transaction are built with a
//!   [`StagedKey`] and swapped in atomically.
//!
//! - Commands ([`command`]) run over a [`View`] or a [`Tx`] and answer a
//!   [`Reply`], which encodes itself in RESP2 or RESP3 ([`reply`]).
//!
//! The table layout is described in `docs/storage.md`.

#![warn(missing_docs)]

pub mod blocking;
mod clock;
mod collection;
pub mod command;
mod db;
mod elements;
mod error;
mod expiry;
mod export;
pub mod glob;
mod hash;
mod import;
mod keys;
mod keyspace;
mod keyvalue;
mod list;
mod long_double;
mod pool;
mod read;
pub mod reply;
mod scan_cursor;
pub mod schema;
mod set;
mod staged;
mod store;
mod string;
mod trash;
mod write;
mod zset;

#[cfg(test)]
mod test_support;

pub use collection::RandomCount;
pub use db::{Db, InvalidDb};
pub use error::{OpenError, StoreError};
pub use expiry::{SweepReport, SweeperConfig};
pub use export::KeyInfo;
pub use keys::KeyMeta;
pub use keyspace::DbKeys;
pub use keyvalue::{FieldValue, KeyKind, KeyValue, ScoredMember, Side};
pub use read::View;
pub use reply::{Protocol, Reply};
pub use set::SetOp;
pub use staged::StagedKey;
pub use store::{Snapshot, Store, StoreConfig};
pub use write::{Tx, Write};

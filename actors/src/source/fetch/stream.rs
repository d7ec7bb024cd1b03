//! Copying a collection too big for one read into a staged key, chunk by
//! chunk.
//!
//! At most two chunks are held at any time: the one the writer is storing
//! and the one being read from the source, which overlap so neither side
//! waits for the other more than it must. Memory is therefore bounded by
//! [`super::FetchLimits::chunk_elements`], not by the key's size.

use keyferry_engine::{KeyKind, KeyValue, StagedKey, StoreError};
use redis::aio::MultiplexedConnection;
use redis::{RedisError, Value};

use super::chunk::Position;
use super::{FetchLimits, WRONGTYPE, approx_bytes};

/// A collection bigger than one chunk: its first chunk, and where the rest
/// starts.
#[derive(Debug, PartialEq)]
pub struct BigKey {
    first: KeyValue,
    ttl_ms: Option<i64>,
    len: u64,
    next: Position,
}

/// Why a big key could not be copied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Reading the source failed.
    #[error("reading the source: {0}")]
    Source(#[source] RedisError),
    /// Writing the staged key failed.
    #[error("writing the staged key: {0}")]
    Store(#[from] StoreError),
    /// The key was replaced by one of another type while it was read. The
    /// keyspace tracker has recorded that write: abort the staged key and
    /// leave the key to the dirty applier.
    #[error("the key changed type while it was read")]
    TypeChanged,
}

impl BigKey {
    /// A big key whose first chunk is `first` and whose next chunk starts
    /// at `next`.
    pub(super) fn new(first: KeyValue, ttl_ms: Option<i64>, len: u64, next: Position) -> Self {
        Self {
            first,
            ttl_ms,
            len,
            next,
        }
    }

    /// The collection's type (never [`KeyKind::String`]).
    pub fn kind(&self) -> KeyKind {
        self.next.kind()
    }

    /// Remaining time to live in milliseconds when the key was read; `None`
    /// if persistent.
    pub fn ttl_ms(&self) -> Option<i64> {
        self.ttl_ms
    }

    /// The number of elements when the key was read (it may change while
    /// it is streamed).
    pub fn len_hint(&self) -> u64 {
        self.len
    }

    /// Appends the whole collection to `staged` (which must have been begun
    /// with [`BigKey::kind`]): the first chunk, then the rest read chunk by
    /// chunk from `conn` (bound to the key's database) until the source
    /// says it is done — a scan cursor back at 0, or a short range. Every
    /// append has committed when this returns; committing `staged` is left
    /// to the caller. Returns the payload bytes: the key plus
    /// [`approx_bytes`] of every chunk.
    ///
    /// A key written meanwhile may arrive torn (a hash or set element seen
    /// twice is harmless: the engine stores it once; a list or zset read by
    /// index may skip or repeat elements if it shifted). That write is in
    /// the dirty-key registry, and the dirty applier replaces the key. A
    /// key deleted meanwhile simply ends early.
    pub async fn stream_into(
        self,
        conn: &mut MultiplexedConnection,
        key: &[u8],
        staged: &StagedKey,
        limits: &FetchLimits,
    ) -> Result<u64, StreamError> {
        let count = limits.chunk();
        let mut bytes = key.len() as u64;
        let mut chunk = self.first;
        let mut next = Some(self.next);
        // The append submitted last: awaited only after the next chunk was
        // read, so reading and writing overlap.
        let mut writing = None;
        loop {
            // A scan page may be empty while its cursor is not done.
            if !chunk.is_empty_collection() {
                bytes += approx_bytes(&chunk);
                // Chunks apply in submission order, so the new one may be
                // queued before the previous one finished; waiting for the
                // previous one here keeps at most two chunks alive.
                if let Some(previous) = writing.replace(staged.append(chunk)) {
                    previous.await?;
                }
            }
            let Some(at) = next else { break };
            let reply: Value = at
                .read_command(key, count)
                .query_async(conn)
                .await
                .map_err(read_error)?;
            (chunk, next) = at.parse(reply, count).map_err(StreamError::Source)?;
        }
        if let Some(last) = writing {
            last.await?;
        }
        Ok(bytes)
    }
}

/// Tells a type change apart from other read failures.
fn read_error(error: RedisError) -> StreamError {
    if error.code() == Some(WRONGTYPE) {
        StreamError::TypeChanged
    } else {
        StreamError::Source(error)
    }
}

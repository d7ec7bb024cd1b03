//! Projections: state folded from the journal's events.
//!
//! A projection is rebuilt by replaying events in sequence order. Its state
//! is serializable so that a snapshot of it, stored with the sequence number
//! it covers, lets the next replay start there and read only the tail.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ReadError;
use crate::event::{Event, Seq};
use crate::read::Entries;

/// State rebuilt from the journal.
///
/// `apply` must be deterministic and depend only on the events, so replaying
/// from a snapshot gives the same state as replaying from the first event.
/// Keep the state bounded (aggregates, not one entry per key or job): it is
/// held in memory and written whole into every snapshot.
pub trait Projection: Default + Serialize + DeserializeOwned {
    /// Name under which its snapshots are stored.
    const NAME: &'static str;
    /// Version of the state's encoding. Bump it when the state changes
    /// meaning: snapshots of other versions are then ignored, and replay
    /// starts from an older snapshot of this version or from the beginning.
    const VERSION: u32;

    /// Folds the event with sequence number `seq` into the state.
    fn apply(&mut self, seq: Seq, event: &Event);
}

/// A projection's state after a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed<P> {
    /// The state.
    pub state: P,
    /// The last sequence number the state includes (0 if none).
    pub seq: Seq,
    /// The sequence number of the snapshot the replay started from, if any.
    pub snapshot_seq: Option<Seq>,
    /// Events applied on top of the snapshot (or from the beginning).
    pub applied: u64,
}

impl<P: Projection> Replayed<P> {
    /// Starts a replay from `state`, which covers events up to `seq`.
    pub(crate) fn starting_at(state: P, seq: Seq, snapshot_seq: Option<Seq>) -> Self {
        Replayed {
            state,
            seq,
            snapshot_seq,
            applied: 0,
        }
    }

    /// Applies every entry, stopping at the first that cannot be read.
    pub(crate) fn apply_all(&mut self, entries: &mut Entries) -> Result<(), ReadError> {
        for entry in entries {
            let entry = entry?;
            self.state.apply(entry.seq, &entry.event);
            self.seq = entry.seq;
            self.applied += 1;
        }
        Ok(())
    }
}

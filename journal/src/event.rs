//! The typed events the journal records.
//!
//! Payloads are encoded with `rmp_serde::to_vec_named`, so every field is
//! stored under its name: reordering fields in a variant can never silently
//! swap two values, and a field added later with `#[serde(default)]` decodes
//! from older rows. Never use `skip_serializing_if` here (it breaks
//! positional decoders and hides data); never rename a variant or a field
//! without a schema migration and a fixture journal from the old version.

use serde::{Deserialize, Serialize};

/// A journal sequence number, assigned by SQLite (`INTEGER PRIMARY KEY`).
pub type Seq = i64;

/// Every state change an actor can record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// A supervised actor failed and was restarted (or given up on).
    ActorRestarted {
        /// Name of the actor, e.g. `bulk-scanner`.
        actor: String,
        /// How many restarts this actor had inside the intensity window,
        /// this one included.
        attempt: u32,
        /// Why it failed (panic message or error).
        reason: String,
        /// Backoff waited before the restart, in milliseconds.
        backoff_ms: u64,
        /// True when the intensity limit was exceeded and the supervisor
        /// stopped restarting this actor.
        gave_up: bool,
    },
}

//! keyferry's actors, their supervisor, and the [`Engine`] handle that
//! embedding programs use.
//!
//! The public API hides ractor: an embedder opens an [`Engine`] and talks to
//! it through its methods. Actors of this crate plug into the supervision
//! tree through [`supervisor::ChildSpec`]; later issues add the keyspace
//! tracker, bulk scanner, dirty applier and job dequeuer. [`waiters`] is the
//! blocking waiter registry.

pub mod compare;
mod engine;
pub mod migration;
pub mod preflight;
pub mod source;
pub mod supervisor;
pub mod verify;
pub mod waiters;

pub use engine::{Engine, EngineConfig, EngineError};
pub use keyferry_journal::Durability;
pub use supervisor::{FailedActor, RestartPolicy};

//! keyferry's actors, their supervisor, and the [`Engine`] handle that
//! embedding programs use.
//!
//! The public API hides ractor: an embedder opens an [`Engine`] and talks to
//! it through its methods. Actors of this crate plug into the supervision
//! tree through [`supervisor::ChildSpec`]: the keyspace tracker, bulk
//! scanner and dirty applier ([`migration`]), the job dequeuer ([`jobs`]),
//! journal maintenance ([`maintenance`]) and the blocking waiter registry
//! ([`waiters`]).

pub mod compare;
mod engine;
pub mod jobs;
pub mod maintenance;
pub mod migration;
pub mod preflight;
pub mod source;
pub mod supervisor;
pub mod verify;
pub mod waiters;

pub use engine::{Engine, EngineConfig, EngineError};
pub use keyferry_journal::Durability;
pub use supervisor::{FailedActor, RestartPolicy};

//! The `keyferry` command's library half: the command line ([`cli`]), the
//! RESP server ([`serve`]) with its codec ([`resp`]) and graceful shutdown
//! ([`shutdown`]), and logging and metrics ([`telemetry`]) — and
//! [`embed`], the handle API for Rust programs that run keyferry
//! in-process ([`Keyferry`]).
//!
//! `main.rs` only parses arguments and dispatches; keeping the rest in a
//! library lets unit tests reach it.

pub mod cli;
pub mod embed;
pub mod migration;
pub mod replay;
pub mod resp;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

pub use embed::Keyferry;

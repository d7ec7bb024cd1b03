//! The `keyferry` command's library half: the command line ([`cli`]), the
//! RESP server ([`serve`]) with its codec ([`resp`]) and graceful shutdown
//! ([`shutdown`]), and logging and metrics ([`telemetry`]).
//!
//! `main.rs` only parses arguments and dispatches; keeping the rest in a
//! library lets unit tests reach it.

pub mod cli;
pub mod migration;
pub mod resp;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

//! Test support for keyferry: real server processes on free loopback ports.
//!
//! Every test that needs a source Redis starts a real `redis-server` with
//! [`RedisServer::start`] — never a mock — and tests of the binary start
//! `keyferry serve` with [`KeyferryServe::start`]. Each process runs in its
//! own temporary directory, listens on `127.0.0.1` only, and is killed and
//! reaped when its guard is dropped, so a failing test leaks nothing.
//! [`RawClient`] talks to either byte for byte, and [`Differ`] runs
//! differential tests: the same commands to both, replies compared; [`resp`]
//! parses replies that tests must look into rather than compare as bytes.

mod client;
pub mod dataset;
mod diff;
mod process;
mod redis_server;
pub mod resp;
mod rng;
mod serve;
pub mod tls;

pub use client::RawClient;
pub use diff::Differ;
pub use process::{KillOnDrop, free_port, redis_tool};
pub use redis_server::RedisServer;
pub use rng::SeededRng;
pub use serve::KeyferryServe;

//! A real `redis-server` for tests, with no persistence, on a free port.

use std::process::Command;

use crate::process::{Started, redis_tool, start_on_free_port};

/// A `redis-server` process listening on `127.0.0.1`, killed on drop.
///
/// It runs in a fresh temp dir with persistence off (`--save ""`,
/// `--appendonly no`), so nothing survives it.
pub struct RedisServer {
    started: Started,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it
    /// answers PING.
    ///
    /// # Panics
    /// If `redis-server` is not installed, or does not come up.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Like [`RedisServer::start`], with extra configuration arguments
    /// appended to the command line, e.g. `["--requirepass", "pw"]`.
    pub fn start_with_args(extra: &[&str]) -> Self {
        let program = redis_tool("redis-server");
        let started = start_on_free_port("redis-server", |port, dir, log| {
            let mut cmd = Command::new(&program);
            cmd.args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .arg("--port")
                .arg(port.to_string())
                .arg("--dir")
                .arg(dir)
                .arg("--logfile")
                .arg(log)
                .args(extra);
            cmd
        });
        Self { started }
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.started.port
    }

    /// A `redis://127.0.0.1:PORT` URL for clients.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.started.port)
    }
}

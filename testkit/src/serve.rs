//! A `keyferry serve` process for the binary's integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::process::{Started, read_log, start_on_free_port};

/// A `keyferry serve` process on a free loopback port, killed on drop.
///
/// Tests pass the binary's path (`env!("CARGO_BIN_EXE_keyferry")`, which
/// only integration tests of the `keyferry` package can see).
pub struct KeyferryServe {
    started: Started,
}

impl KeyferryServe {
    /// Starts `BIN serve --db <temp dir>/keyferry.db --port PORT` plus
    /// `extra` arguments, and waits until it answers PING.
    ///
    /// # Panics
    /// If the process exits or does not answer in time; the message
    /// includes its log.
    pub fn start(bin: &Path, extra: &[&str]) -> Self {
        let started = start_on_free_port("keyferry serve", |port, dir, _log| {
            let mut cmd = Command::new(bin);
            cmd.arg("serve")
                .arg("--db")
                .arg(dir.join("keyferry.db"))
                .arg("--port")
                .arg(port.to_string())
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

    /// The database file it serves.
    pub fn db_path(&self) -> PathBuf {
        self.started.dir.path().join("keyferry.db")
    }

    /// Everything it has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        read_log(self.started.dir.path())
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.started.child.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
        // own child, which has not been reaped yet, so it cannot be reused.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill(SIGTERM) failed: {}",
            std::io::Error::last_os_error()
        );
        self.started
            .child
            .wait()
            .expect("wait for keyferry serve to exit")
    }
}

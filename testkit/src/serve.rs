//! A `keyferry serve` process for the binary's integration tests.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;

use crate::process::{Started, read_log, start_in, start_on_free_port};

/// A `keyferry serve` process on a free loopback port, killed on drop.
///
/// Tests pass the binary's path (`env!("CARGO_BIN_EXE_keyferry")`, which
/// only integration tests of the `keyferry` package can see). Crash tests
/// [`kill`](Self::kill) it (SIGKILL) and [`restart`](Self::restart) it on
/// the same database file.
pub struct KeyferryServe {
    started: Started,
    bin: PathBuf,
    extra: Vec<OsString>,
    /// The file served, when not the temp dir's `keyferry.db`.
    file: Option<PathBuf>,
}

impl KeyferryServe {
    /// Starts `BIN serve --db <temp dir>/keyferry.db --port PORT` plus
    /// `extra` arguments, and waits until it answers PING.
    ///
    /// # Panics
    /// If the process exits or does not answer in time; the message
    /// includes its log.
    pub fn start(bin: &Path, extra: &[&str]) -> Self {
        let bin = bin.to_path_buf();
        let extra: Vec<OsString> = extra.iter().map(OsString::from).collect();
        let started = start_on_free_port("keyferry serve", serve_command(&bin, &extra, None));
        Self {
            started,
            bin,
            extra,
            file: None,
        }
    }

    /// Starts `BIN serve --db FILE --port PORT` on an existing file (a
    /// migration's destination, say); logs go to a temp dir.
    pub fn serve_file(bin: &Path, file: &Path) -> Self {
        let bin = bin.to_path_buf();
        let file = file.to_path_buf();
        let started = start_on_free_port("keyferry serve", serve_command(&bin, &[], Some(&file)));
        Self {
            started,
            bin,
            extra: Vec::new(),
            file: Some(file),
        }
    }

    /// The TCP port it listens on (a new one after each restart).
    pub fn port(&self) -> u16 {
        self.started.port
    }

    /// A `redis://127.0.0.1:PORT` URL for clients.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.started.port)
    }

    /// The database file it serves (the same across restarts).
    pub fn db_path(&self) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| self.started.dir.path().join("keyferry.db"))
    }

    /// Everything it has written to stdout and stderr so far, over all
    /// restarts.
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

    /// Kills the process with SIGKILL (`kill -9`: no shutdown code runs,
    /// nothing is flushed) and waits for it to exit.
    ///
    /// # Panics
    /// If it had already exited: a crash test must kill a live server.
    pub fn kill(&mut self) -> ExitStatus {
        let child = &mut self.started.child;
        assert!(
            child.try_wait().expect("poll keyferry serve").is_none(),
            "keyferry serve exited before it was killed; its log:\n{}",
            read_log(self.started.dir.path())
        );
        // std's Child::kill sends SIGKILL on Unix.
        child.kill().expect("SIGKILL keyferry serve");
        child.wait().expect("wait for keyferry serve to die")
    }

    /// Starts a new `keyferry serve` with the same arguments on the same
    /// database file (on a new free port) once the previous process has
    /// exited ([`kill`](Self::kill) or [`terminate`](Self::terminate)
    /// it first), and waits until it answers PING.
    ///
    /// # Panics
    /// If the previous process is still running, or the new one does not
    /// come up.
    pub fn restart(&mut self) {
        assert!(
            self.started
                .child
                .try_wait()
                .expect("poll keyferry serve")
                .is_some(),
            "restart needs the previous keyferry serve to have exited"
        );
        let dir = Arc::clone(&self.started.dir);
        self.started = start_in(
            "keyferry serve (restarted)",
            dir,
            serve_command(&self.bin, &self.extra, self.file.as_deref()),
        );
    }
}

/// `BIN serve --db FILE --port PORT EXTRA…`, FILE defaulting to
/// `DIR/keyferry.db`.
fn serve_command<'a>(
    bin: &'a Path,
    extra: &'a [OsString],
    file: Option<&'a Path>,
) -> impl Fn(u16, &Path, &Path) -> Command + 'a {
    move |port, dir, _log| {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--db")
            .arg(file.map_or_else(|| dir.join("keyferry.db"), Path::to_path_buf))
            .arg("--port")
            .arg(port.to_string())
            .args(extra);
        cmd
    }
}

//! What both server guards share: picking a port, waiting for the first
//! reply, and reading the process's log when something goes wrong.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How many ports to try when another process grabs ours between
/// [`free_port`] and the server's own `bind`.
const PORT_ATTEMPTS: usize = 5;

/// A running server process, its port, and the directory holding its log
/// (shared with the process that replaces it after a restart, so the
/// directory lives as long as either).
pub(crate) struct Started {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) dir: Arc<tempfile::TempDir>,
}

/// Asks the OS for a loopback port nobody listens on right now.
///
/// The port is released before the caller binds it, so another process
/// may take it in between; the server guards retry on another port when
/// that happens.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral loopback port");
    listener
        .local_addr()
        .expect("local address of the ephemeral listener")
        .port()
}

/// Starts a server on a free port in a fresh temp dir and waits until it
/// answers.
///
/// `command` builds the command line for a port, the directory and the
/// log file path; the command's stdout and stderr go to that log, whose
/// contents are in the panic message if the server dies or never answers.
pub(crate) fn start_on_free_port(
    what: &str,
    command: impl Fn(u16, &Path, &Path) -> Command,
) -> Started {
    let dir = tempfile::Builder::new()
        .prefix("keyferry-test-")
        .tempdir()
        .expect("create a temp dir for the server");
    start_in(what, Arc::new(dir), command)
}

/// Like [`start_on_free_port`], in an existing directory: a restarted
/// server finds its files where the previous process left them. The log
/// is appended to, so it tells the whole story of every process.
pub(crate) fn start_in(
    what: &str,
    dir: Arc<tempfile::TempDir>,
    command: impl Fn(u16, &Path, &Path) -> Command,
) -> Started {
    let mut last_log = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let log_path = dir.path().join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the server log");
        let log_start = log.metadata().map_or(0, |m| m.len());
        let mut cmd = command(port, dir.path(), &log_path);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {what} ({cmd:?}): {e}"));
        let mut started = Started {
            child,
            port,
            dir: Arc::clone(&dir),
        };
        match wait_ready(&mut started) {
            Ok(()) => return started,
            Err(Exited) => {
                // Only this process's part of the log.
                let all = std::fs::read(&log_path).unwrap_or_default();
                let start = usize::try_from(log_start).unwrap_or(0).min(all.len());
                last_log = String::from_utf8_lossy(&all[start..]).into_owned();
                // Lost the race for the port: try another one.
                if last_log.contains("in use") {
                    continue;
                }
                panic!("{what} exited before answering PING; its log:\n{last_log}");
            }
        }
    }
    panic!("{what} could not bind a free port in {PORT_ATTEMPTS} attempts; last log:\n{last_log}");
}

/// The server process exited while we waited for it.
struct Exited;

/// Polls until the server answers a PING with any reply line (an error
/// such as `-NOAUTH` also proves it is serving), or panics on timeout.
fn wait_ready(started: &mut Started) -> Result<(), Exited> {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if started
            .child
            .try_wait()
            .expect("poll the server process")
            .is_some()
        {
            return Err(Exited);
        }
        if ping(started.port).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = read_log(started.dir.path());
    let _ = started.child.kill();
    let _ = started.child.wait();
    panic!(
        "server on port {} did not answer PING within {READY_TIMEOUT:?}; its log:\n{log}",
        started.port
    );
}

/// Sends one PING and returns the first reply line, if any arrived.
fn ping(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.ends_with("\r\n").then_some(line)
}

/// The server's log so far (empty if it cannot be read).
pub(crate) fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// The path of a Redis program (`redis-server`, `redis-cli`,
/// `redis-benchmark`): the first on `PATH`, else `/usr/bin`, where Debian
/// installs it and which a minimal `PATH` in CI might lack.
///
/// # Panics
/// If it is not installed, saying how to install it.
pub fn redis_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH or in /usr/bin: run the README test command; it installs redis-server"))
}

impl Drop for Started {
    fn drop(&mut self) {
        // Kill and reap even when the test panicked, so no server outlives it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process that is killed (and reaped) when dropped: a test that
/// fails half-way must not leave a tracker or a migration running after
/// it.
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    /// Spawns `command` under the guard.
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.spawn().map(|child| Self(Some(child)))
    }

    /// Waits for the process and collects its output.
    pub fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
        self.0
            .take()
            .expect("not yet waited for")
            .wait_with_output()
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("not yet waited for")
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("not yet waited for")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // Already reaped when the test waited for it: both fail
            // harmlessly then.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

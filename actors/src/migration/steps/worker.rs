//! Who runs a step: the worker id other processes see as a lease's holder
//! (`hostname:pid`), how long its leases last, and how to tell that a
//! holder on this host is gone.

use std::time::Duration;

use keyferry_journal::Backoff;

/// Environment variable overriding the lease length, in milliseconds (tests
/// use short leases to see them expire).
pub const LEASE_ENV: &str = "KEYFERRY_LEASE_MS";

/// How long a lease lasts unless renewed. Heartbeats renew it every third
/// of that, so a holder survives two lost heartbeats (a busy database, a
/// long GC-like stall) before anyone may take its job over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// A worker running steps: its id, the length of its leases and the
/// backoff before a failed step is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// How the worker is named as a lease's holder: `hostname:pid` for
    /// [`Worker::this_process`].
    pub id: String,
    /// How long a lease lasts unless renewed (heartbeats every third).
    pub lease: Duration,
    /// How long a failed step waits before its next attempt.
    pub backoff: Backoff,
}

impl Worker {
    /// This process as a worker: id `hostname:pid`, lease
    /// [`DEFAULT_LEASE`] or [`LEASE_ENV`]'s milliseconds, the default
    /// backoff. A [`LEASE_ENV`] that is not a positive number is ignored,
    /// with a warning.
    pub fn this_process() -> Worker {
        let lease = match std::env::var(LEASE_ENV) {
            Err(_) => DEFAULT_LEASE,
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    tracing::warn!(
                        "{LEASE_ENV}={text:?} is not a positive number of milliseconds; using {DEFAULT_LEASE:?}"
                    );
                    DEFAULT_LEASE
                }
            },
        };
        Worker {
            id: format!("{}:{}", hostname(), std::process::id()),
            lease,
            backoff: Backoff::default(),
        }
    }

    /// The lease length in milliseconds, as the job queue takes it.
    pub(crate) fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }
}

/// This host's name (`uname -n`), or `localhost` if it has none.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname
    // writes at most that many and the result is cut at the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

/// Whether `holder` (a worker id) names a process of this host that no
/// longer exists. Its lease can then only run out, never be renewed, so
/// waiting for it would only delay a resume (`kill -9`, a crash).
///
/// Only a definite "no such process" counts: a holder on another host, an
/// id that is not `hostname:pid`, or a pid that exists (even reused by
/// another program, or a zombie not yet reaped) keeps its lease until it
/// expires. Should a live holder be misjudged anyway (a process in another
/// PID namespace under the same host name), fencing still stops its
/// writes once its job is taken over.
pub(crate) fn is_gone(holder: &str) -> bool {
    let Some((host, pid)) = holder.rsplit_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<libc::pid_t>() else {
        return false;
    };
    if host != hostname() || pid <= 0 || u32::try_from(pid) == Ok(std::process::id()) {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// `ms` (since the Unix epoch) as local `HH:MM:SS`, for messages that an
/// operator compares with the clock on the wall.
pub(crate) fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return format!("{ms} ms since the epoch");
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

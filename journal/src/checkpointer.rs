//! Checkpointing the WAL beside the writer rather than inside its commits.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses
//! `wal_autocheckpoint`: that commit copies every page of the WAL back into
//! the database and fsyncs both files before its callers are answered.
//! Under random-key writes the fsyncs dominate (a raw-SQLite measurement of
//! batched upserts: 111k rows/s with the automatic checkpoint, 183k with
//! none), and the writer thread sits idle while the disk works.
//!
//! So the writer turns the automatic checkpoint off and a thread of its own
//! runs `PASSIVE` checkpoints on its own connection whenever the WAL grew
//! by [`BACKGROUND_EVERY`] frames: the copying and both fsyncs happen off
//! the writer's path, concurrently with its transactions (a passive
//! checkpoint takes no write lock).
//!
//! That alone would let the WAL grow for as long as the load lasts: SQLite
//! only starts the WAL over when a write transaction begins on a *fully*
//! checkpointed WAL, and under steady load the writer always commits new
//! frames while a background pass runs. So once the WAL holds
//! [`CATCH_UP_AT`] frames the writer checkpoints itself, between two
//! transactions ([`Checkpointer::catch_up`]): the background passes have
//! already copied nearly everything, so this copies only the last few
//! commits' pages, and the writer's next transaction restarts the WAL from
//! its beginning.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

use crate::connection::{BUSY_TIMEOUT, WAL_AUTOCHECKPOINT_PAGES};

/// WAL growth (in frames, one page each) that wakes the background pass.
/// Under heavy writes a commit adds hundreds of frames, so passes run back
/// to back anyway; under light ones a pass (two fsyncs) every few hundred
/// commits showed in the tail latency of lone writes (`BLPOP` wake p99
/// 405-494 us with a pass every 512 frames, 353-396 us every 4096).
const BACKGROUND_EVERY: i64 = 4096;

/// WAL size (in frames) at which the writer completes the checkpoint itself
/// so the WAL can start over: at 4 KiB pages, 128 MiB of WAL file (and
/// 1 MiB of WAL index). Each catch-up stalls the writer for whatever the
/// background passes have not copied yet; with big transactions (the
/// applier commits thousands of keys at once) that is most of the last
/// few commits, so a long WAL leaves more of the copying to the
/// background. Measured on `apply-dirty` (`cargo bench --bench migrate_bulk
/// -- 1000000 1`): 85k keys/s with catch-ups at 8192 frames, 88k at 32768.
const CATCH_UP_AT: i64 = 32768;

/// When the WAL is checkpointed (see the module docs); the defaults are
/// [`BACKGROUND_EVERY`] and [`CATCH_UP_AT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPolicy {
    /// WAL growth, in frames, that wakes a background pass.
    pub background_every: i64,
    /// WAL size, in frames, at which the writer completes the checkpoint
    /// itself so that the WAL starts over.
    pub catch_up_at: i64,
}

impl Default for WalPolicy {
    fn default() -> Self {
        Self {
            background_every: BACKGROUND_EVERY,
            catch_up_at: CATCH_UP_AT,
        }
    }
}

/// How long the background thread waits after a failed checkpoint before
/// trying again, so a persistent error does not spin.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// What the writer (through its WAL hook) and the background thread share.
struct Shared {
    /// Frames in the WAL after the writer's latest commit.
    frames: AtomicI64,
    /// `frames` when the background thread last started a pass.
    passed_at: AtomicI64,
    /// Set when the WAL grew enough for another pass.
    wake: Mutex<bool>,
    woken: Condvar,
    stop: AtomicBool,
    policy: WalPolicy,
}

impl Shared {
    fn kick(&self) {
        *self.wake.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.woken.notify_one();
    }

    /// Whether a background pass should start at a WAL of `frames` frames:
    /// when it grew [`WalPolicy::background_every`] past the last pass (or
    /// was restarted since), and is still short of
    /// [`WalPolicy::catch_up_at`]. Beyond
    /// that the writer completes the checkpoint, and a pass started now
    /// would only take SQLite's checkpoint lock from it (SQLite answers a
    /// second checkpointer `SQLITE_BUSY` at once).
    fn pass_due(&self, frames: i64) -> bool {
        let passed_at = self.passed_at.load(Ordering::Acquire);
        frames < self.policy.catch_up_at
            && (frames >= passed_at + self.policy.background_every || frames < passed_at)
    }

    /// Waits for a kick; `false` once the checkpointer is stopping.
    fn wait_for_kick(&self) -> bool {
        let mut woken = self.wake.lock().unwrap_or_else(PoisonError::into_inner);
        while !*woken && !self.stop.load(Ordering::Acquire) {
            woken = self
                .woken
                .wait(woken)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *woken = false;
        !self.stop.load(Ordering::Acquire)
    }
}

/// The background checkpoint thread of one writer connection.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Takes over checkpointing for the writer connection `writer`: turns
    /// its automatic checkpoint off, hooks its commits, and starts the
    /// background thread on a connection of its own. Returns `None` (and
    /// leaves `writer` alone) for a database without a file (in memory or
    /// temporary), or when the second connection cannot be opened: the
    /// automatic checkpoint then goes on as before.
    pub(crate) fn attach(writer: &mut Connection, policy: WalPolicy) -> Option<Self> {
        let path = writer.path().filter(|p| !p.is_empty())?.to_owned();
        let shared = Arc::new(Shared {
            frames: AtomicI64::new(0),
            passed_at: AtomicI64::new(0),
            wake: Mutex::new(false),
            woken: Condvar::new(),
            stop: AtomicBool::new(false),
            policy,
        });
        let started = open_like(writer, Path::new(&path))
            .map_err(|e| e.to_string())
            .and_then(|own| {
                let background = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("keyferry-ckpt".into())
                    .spawn(move || run(own, &background))
                    .map_err(|e| e.to_string())
            });
        let checkpointer = Self {
            shared,
            thread: Mutex::new(None),
        };
        let installed = started.and_then(|thread| {
            *lock(&checkpointer.thread) = Some(thread);
            checkpointer.hook(writer).map_err(|e| e.to_string())
        });
        match installed {
            Ok(()) => Some(checkpointer),
            Err(e) => {
                tracing::warn!(error = %e, "no background checkpointer; the writer checkpoints itself");
                checkpointer.stop();
                let _ = writer.wal_hook(None::<fn(&mut Wal, i32) -> rusqlite::Result<()>>);
                let _ = writer.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES);
                None
            }
        }
    }

    /// Turns the writer's automatic checkpoint off and reports each of its
    /// commits' WAL size to the background thread.
    fn hook(&self, writer: &mut Connection) -> rusqlite::Result<()> {
        // Turning the automatic checkpoint off replaces SQLite's own WAL
        // hook; ours must be installed after it.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let shared = Arc::clone(&self.shared);
        writer.wal_hook(Some(move |_: &mut Wal, frames| {
            let frames = i64::from(frames);
            shared.frames.store(frames, Ordering::Release);
            metrics::gauge!("keyferry_wal_frames").set(frames as f64);
            // After a restart `frames` is small again: a pass is due when
            // the WAL grew past the last pass, or was restarted since.
            if shared.pass_due(frames) {
                shared.kick();
            }
            Ok(())
        }))
    }

    /// Called by the writer between transactions: once the WAL is
    /// [`WalPolicy::catch_up_at`] frames long, checkpoints what the background passes
    /// left, so the next transaction starts the WAL over. Tried again after
    /// the next commit if a background pass (or another process) holds the
    /// checkpoint lock, or a reader's snapshot still needs part of the WAL.
    pub(crate) fn catch_up(&self, writer: &Connection) {
        if !self.due() {
            return;
        }
        match writer.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((log, copied)) if log == copied => {
                metrics::counter!("keyferry_wal_checkpoints_total", "by" => "writer").increment(1);
                // Nothing to do until the next commit reports its size.
                self.shared.frames.store(0, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) if is_busy(&e) => {}
            Err(e) => {
                metrics::counter!("keyferry_wal_checkpoint_errors_total").increment(1);
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    }

    /// Whether the WAL is long enough for [`Checkpointer::catch_up`].
    pub(crate) fn due(&self) -> bool {
        self.shared.frames.load(Ordering::Acquire) >= self.shared.policy.catch_up_at
    }

    /// Stops the background thread and closes its connection.
    pub(crate) fn stop(&self) {
        if let Some(thread) = lock(&self.thread).take() {
            self.shared.stop.store(true, Ordering::Release);
            self.shared.kick();
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A read-write connection to `path` with the writer's `synchronous`
/// setting, which decides whether a checkpoint fsyncs.
fn open_like(writer: &Connection, path: &Path) -> rusqlite::Result<Connection> {
    let synchronous: i64 = writer.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(conn)
}

fn run(conn: Connection, shared: &Shared) {
    while shared.wait_for_kick() {
        let frames = shared.frames.load(Ordering::Acquire);
        if frames >= shared.policy.catch_up_at {
            continue;
        }
        shared.passed_at.store(frames, Ordering::Release);
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok(_) => {
                metrics::counter!("keyferry_wal_checkpoints_total", "by" => "background")
                    .increment(1);
            }
            Err(e) if is_busy(&e) => {}
            Err(e) => {
                metrics::counter!("keyferry_wal_checkpoint_errors_total").increment(1);
                tracing::warn!(error = %e, "background WAL checkpoint failed");
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::connection::{Durability, open_ro, open_rw};
    use crate::writer::{Writer, WriterConfig};

    const PAGE: u64 = 4096;

    /// Smaller than the defaults, so the tests write megabytes, not
    /// hundreds of them.
    const POLICY: WalPolicy = WalPolicy {
        background_every: 128,
        catch_up_at: 1024,
    };
    const CATCH_UP_AT: i64 = POLICY.catch_up_at;

    /// A writer on a fresh file with a table of 4 KiB rows, so that each
    /// row written is at least one WAL frame.
    fn writer(dir: &tempfile::TempDir) -> (PathBuf, Writer) {
        let path = dir.path().join("c.sqlite");
        let conn = open_rw(&path, Durability::Normal).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .unwrap();
        let config = WriterConfig {
            wal: POLICY,
            ..WriterConfig::default()
        };
        (path.clone(), Writer::spawn(conn, config).unwrap())
    }

    /// Commits `rows` rows of one page each, `per_commit` at a time, over
    /// ids `0..modulo` (rewriting old rows once past it).
    fn write_rows(writer: &Writer, rows: u64, per_commit: u64, modulo: u64) {
        for start in (0..rows).step_by(per_commit as usize) {
            writer
                .handle()
                .submit(move |conn| {
                    let mut insert = conn.prepare_cached(
                        "INSERT OR REPLACE INTO t (id, v) VALUES (?1, zeroblob(4000))",
                    )?;
                    for id in start..start + per_commit {
                        insert.execute([(id % modulo) as i64])?;
                    }
                    Ok::<_, rusqlite::Error>(())
                })
                .wait()
                .unwrap();
        }
    }

    fn wal_bytes(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    #[test]
    fn the_wal_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = writer(&dir);
        // Eight times the catch-up size, with no pause for the background
        // thread to finish on its own.
        write_rows(&writer, 8 * CATCH_UP_AT as u64, 50, 3000);
        // Without restarts the WAL would hold every frame written; a
        // catch-up may be put off by a few commits while a background pass
        // holds the checkpoint lock.
        let bound = 4 * CATCH_UP_AT as u64 * (PAGE + 24);
        assert!(
            wal_bytes(&path) < bound,
            "WAL grew to {} bytes (bound {bound})",
            wal_bytes(&path)
        );
        let count: i64 = open_ro(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3000);
        writer.shutdown();
    }

    #[test]
    fn a_reader_holding_a_snapshot_delays_the_restart_without_losing_data() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = writer(&dir);
        write_rows(&writer, 100, 50, 100);
        let reader = open_ro(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        // The snapshot pins the WAL: it must keep growing, not be reset
        // under the reader.
        write_rows(&writer, 2 * CATCH_UP_AT as u64, 50, 100_000);
        let pinned = wal_bytes(&path);
        assert!(pinned > CATCH_UP_AT as u64 * PAGE, "WAL is {pinned} bytes");
        let still: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(still, seen, "the reader's snapshot changed under it");
        reader.execute_batch("COMMIT").unwrap();
        // Released, the WAL starts over (within a few commits, as a
        // background pass may hold the checkpoint lock): its file stops
        // growing, where 2 * CATCH_UP_AT more frames would have been added.
        write_rows(&writer, 2 * CATCH_UP_AT as u64, 50, 100_000);
        assert!(
            wal_bytes(&path) < pinned + CATCH_UP_AT as u64 / 2 * PAGE,
            "WAL grew from {pinned} to {} bytes after the reader left",
            wal_bytes(&path)
        );
        writer.shutdown();
        let count: i64 = open_ro(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        // The later rounds wrote ids from 0 up, in whole commits of 50,
        // which covers the first round's.
        assert_eq!(count as u64, (2 * CATCH_UP_AT as u64).div_ceil(50) * 50);
    }

    #[test]
    fn an_in_memory_database_keeps_the_automatic_checkpoint() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(Checkpointer::attach(&mut conn, WalPolicy::default()).is_none());
    }
}

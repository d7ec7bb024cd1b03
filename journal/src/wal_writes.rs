//! A VFS that hands a transaction's WAL frames to the kernel in one write.
//!
//! SQLite appends each page of a commit to the WAL as two `pwrite`s: the
//! 24-byte frame header, then the page. With random-key writes a group
//! commit of thirty commands is sixty-odd system calls, and each 4 KiB
//! frame straddles two of the kernel's pages, so every one of them goes
//! through the file system's per-page bookkeeping two or three times. That
//! was a quarter of the writer thread's time.
//!
//! This VFS wraps the platform's default one and changes nothing but the
//! WAL file's writes: a write that continues the previous one is kept in a
//! buffer, and the buffer goes to the kernel as one `pwrite` when the
//! commit frame is complete. Every other file, and every other call on the
//! WAL file, goes to the default VFS as before (after the buffer was
//! written, so reads, syncs, size and truncation see it).
//!
//! Why this is safe:
//! - A commit becomes visible to other connections only when SQLite
//!   rewrites the WAL-index header, after `sqlite3WalFrames` returned; the
//!   commit frame's page is its last append, and it flushes the buffer. So
//!   every frame a reader or checkpointer may read is in the file first.
//! - A frame header says whether its frame commits (bytes 4..8 hold the
//!   database size, 0 otherwise); the write after a committing header is
//!   that frame's page, and the buffer is flushed after it.
//! - Only appends are buffered. A write anywhere else (a frame rewritten in
//!   place, the checksums SQLite rewrites after that, the WAL header when
//!   the log restarts, the first write after opening) first flushes the
//!   buffer, then goes straight to the file, so the order of writes to any
//!   offset is kept, and no rewrite waits in the buffer.
//! - A crash loses only what a crash in the middle of SQLite's own writes
//!   would: frames of a transaction that never committed. Durability
//!   `FULL` syncs, and a sync flushes first.
//! - The buffer is bounded ([`MAX_BUFFERED`]); a larger transaction is
//!   written in pieces, as SQLite would have.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name under which the VFS is registered.
pub(crate) const NAME: &CStr = c"keyferry-wal";

/// Most bytes kept before they are written anyway.
const MAX_BUFFERED: usize = 1 << 20;

/// Largest write handed to the default VFS at once: SQLite's unix VFS
/// masks a write's length to 17 bits (its pages are at most 64 KiB), so a
/// longer write would come back short and be reported as a full disk.
const MAX_WRITE: usize = (1 << 17) - 1;

/// Size of a WAL frame header.
const FRAME_HEADER: usize = 24;

/// The default VFS this one wraps, and ours.
struct Vfs {
    ours: ffi::sqlite3_vfs,
}

// SAFETY: SQLite's VFS objects are immutable once registered and their
// methods are thread-safe.
unsafe impl Send for Vfs {}
// SAFETY: as above.
unsafe impl Sync for Vfs {}

static VFS: OnceLock<Option<Box<Vfs>>> = OnceLock::new();

/// Registers the VFS once per process (not as the default). Returns
/// whether it is available; without it connections use the default VFS.
pub(crate) fn register() -> bool {
    VFS.get_or_init(|| {
        // SAFETY: looking up the default VFS has no preconditions.
        let inner = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
        if inner.is_null() {
            return None;
        }
        // SAFETY: `inner` is SQLite's registered default VFS.
        let base = unsafe { *inner };
        let mut vfs = Box::new(Vfs {
            ours: ffi::sqlite3_vfs {
                szOsFile: base.szOsFile + std::mem::size_of::<WalFile>() as c_int,
                pNext: ptr::null_mut(),
                zName: NAME.as_ptr(),
                pAppData: inner.cast(),
                xOpen: Some(open),
                ..base
            },
        });
        // SAFETY: the Box lives for the rest of the process (a static);
        // SQLite keeps the pointer.
        let rc = unsafe { ffi::sqlite3_vfs_register(&mut vfs.ours, 0) };
        (rc == ffi::SQLITE_OK).then_some(vfs)
    })
    .is_some()
}

/// The WAL file as this VFS opens it: our state, then the default VFS's
/// file. Other files are the default VFS's file alone.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    /// Bytes appended and not yet written, starting at `buffered_at`.
    buffer: Vec<u8>,
    buffered_at: i64,
    /// Where the last write ended: a write starting there is an append.
    last_end: Option<i64>,
    /// The last write was a committing frame's header.
    commit_header: bool,
}

impl WalFile {
    /// The default VFS's file, which follows ours in the same allocation.
    fn inner(&mut self) -> *mut ffi::sqlite3_file {
        // SAFETY: `open` placed it right after this struct, inside the
        // szOsFile bytes SQLite allocated.
        unsafe { (self as *mut Self).add(1).cast() }
    }

    fn methods(&mut self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the default VFS's xOpen set it, and it stays until close.
        unsafe { &*(*self.inner()).pMethods }
    }

    /// Writes the buffer out.
    fn flush(&mut self) -> c_int {
        let buffer = std::mem::take(&mut self.buffer);
        let mut rc = ffi::SQLITE_OK;
        let mut at = self.buffered_at;
        for chunk in buffer.chunks(MAX_WRITE) {
            rc = self.write_through(chunk, at);
            if rc != ffi::SQLITE_OK {
                break;
            }
            at += chunk.len() as i64;
        }
        // Keep the allocation for the next commit.
        self.buffer = buffer;
        self.buffer.clear();
        rc
    }

    /// Writes `data` at `offset` with the default VFS.
    fn write_through(&mut self, data: &[u8], offset: i64) -> c_int {
        let write = self.methods().xWrite.expect("every VFS writes");
        let len = c_int::try_from(data.len()).expect("at most MAX_WRITE");
        // SAFETY: `data` is valid for `len` bytes.
        unsafe { write(self.inner(), data.as_ptr().cast(), len, offset) }
    }

    fn write(&mut self, data: &[u8], offset: i64) -> c_int {
        let completes_commit = std::mem::take(&mut self.commit_header);
        if data.len() == FRAME_HEADER {
            self.commit_header = data[4..8] != [0; 4];
        }
        let append = self.last_end == Some(offset);
        self.last_end = Some(offset + data.len() as i64);
        if !append {
            // Never buffered: a rewrite in place (which may be the last
            // write before the commit is published) or the first write of a
            // run. What was buffered goes first, to keep the order.
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            return self.write_through(data, offset);
        }
        if self.buffer.is_empty() {
            self.buffered_at = offset;
        }
        self.buffer.extend_from_slice(data);
        if completes_commit || self.buffer.len() >= MAX_BUFFERED {
            self.flush()
        } else {
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: pAppData holds the default VFS (see `register`).
    let inner_vfs = unsafe { &*((*vfs).pAppData as *mut ffi::sqlite3_vfs) };
    let inner_open = inner_vfs.xOpen.expect("every VFS opens");
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // SAFETY: `file` has szOsFile bytes, more than the default needs.
        return unsafe {
            inner_open(
                inner_vfs as *const _ as *mut _,
                name,
                file,
                flags,
                out_flags,
            )
        };
    }
    let wal = file.cast::<WalFile>();
    // SAFETY: `file` has room for a WalFile followed by the default VFS's
    // file; SQLite allocated it for us and never reads it before we return.
    unsafe {
        ptr::write(
            wal,
            WalFile {
                base: ffi::sqlite3_file {
                    pMethods: ptr::null(),
                },
                buffer: Vec::new(),
                buffered_at: 0,
                last_end: None,
                commit_header: false,
            },
        );
        let rc = inner_open(
            inner_vfs as *const _ as *mut _,
            name,
            (*wal).inner(),
            flags,
            out_flags,
        );
        if rc != ffi::SQLITE_OK || (*(*wal).inner()).pMethods.is_null() {
            // SQLite does not close a file whose open failed.
            ptr::drop_in_place(wal);
            (*wal).base.pMethods = ptr::null();
            return if rc == ffi::SQLITE_OK {
                ffi::SQLITE_CANTOPEN
            } else {
                rc
            };
        }
        (*wal).base.pMethods = &WAL_METHODS;
    }
    ffi::SQLITE_OK
}

/// # Safety
/// `file` must be a WAL file this VFS opened.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    // SAFETY: see above.
    unsafe { &mut *file.cast::<WalFile>() }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Forwards the call to the default VFS's method `$m` of the wrapped file.
macro_rules! forward {
    ($file:ident, $m:ident $(, $arg:expr)*) => {{
        // SAFETY: SQLite calls WAL_METHODS only on files `open` made.
        let wal = unsafe { wal($file) };
        let method = wal.methods().$m.expect("every VFS has it");
        // SAFETY: forwarding SQLite's arguments to the wrapped file.
        unsafe { method(wal.inner() $(, $arg)*) }
    }};
}

/// Flushes, then forwards the call like [`forward!`].
macro_rules! flush_then {
    ($file:ident, $m:ident $(, $arg:expr)*) => {{
        // SAFETY: SQLite calls WAL_METHODS only on files `open` made.
        let rc = unsafe { wal($file) }.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        forward!($file, $m $(, $arg)*)
    }};
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file it opened once.
    let wal = unsafe { wal(file) };
    let flushed = wal.flush();
    let close = wal.methods().xClose.expect("every VFS closes");
    // SAFETY: closing the wrapped file, then dropping our state in place.
    let closed = unsafe { close(wal.inner()) };
    unsafe { ptr::drop_in_place(wal as *mut WalFile) };
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    out: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    flush_then!(file, xRead, out, amount, offset)
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    let data = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), amount.max(0) as usize) };
    // SAFETY: SQLite calls WAL_METHODS only on files `open` made.
    unsafe { wal(file) }.write(data, offset)
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: as above.
    unsafe { wal(file) }.last_end = None;
    flush_then!(file, xTruncate, size)
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    flush_then!(file, xSync, flags)
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    flush_then!(file, xFileSize, size)
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    flush_then!(file, xLock, level)
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    flush_then!(file, xUnlock, level)
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    flush_then!(file, xCheckReservedLock, out)
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    flush_then!(file, xFileControl, op, arg)
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    forward!(file, xSectorSize)
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    forward!(file, xDeviceCharacteristics)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use rusqlite::{Connection, ffi};

    use crate::connection::{Durability, open_ro, open_rw};

    /// The name of the VFS `conn`'s main database was opened with.
    fn vfs_name(conn: &Connection) -> String {
        let mut vfs: *mut ffi::sqlite3_vfs = std::ptr::null_mut();
        // SAFETY: VFS_POINTER writes the pager's VFS, which outlives `conn`.
        unsafe {
            let rc = ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_VFS_POINTER,
                (&mut vfs as *mut *mut ffi::sqlite3_vfs).cast(),
            );
            assert_eq!(rc, ffi::SQLITE_OK);
            std::ffi::CStr::from_ptr((*vfs).zName)
                .to_string_lossy()
                .into_owned()
        }
    }

    /// A fresh database with table `t`, and its read-write connection.
    fn database() -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wal.sqlite");
        let conn = open_rw(&path, Durability::Normal).expect("open");
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
            .expect("schema");
        (dir, path, conn)
    }

    fn rows(conn: &Connection) -> (i64, i64) {
        conn.query_row("SELECT count(*), coalesce(sum(n), 0) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("count")
    }

    /// What a `kill -9` right now would leave: the database and WAL files as
    /// the kernel holds them, opened fresh (SQLite recovers the WAL from its
    /// checksums).
    fn crash_image(path: &Path, into: &Path) -> Connection {
        for suffix in ["", "-wal"] {
            let from = format!("{}{suffix}", path.display());
            let to = format!("{}{suffix}", into.display());
            std::fs::copy(from, to).expect("copy");
        }
        open_rw(into, Durability::Normal).expect("open the copy")
    }

    #[test]
    fn keyferry_connections_use_this_vfs() {
        let (_dir, path, conn) = database();
        assert_eq!(vfs_name(&conn), super::NAME.to_str().expect("utf-8"));
        assert_eq!(vfs_name(&open_ro(&path).expect("open ro")), vfs_name(&conn));
    }

    /// Every commit is visible to another connection at once, and is in the
    /// files a crash would leave, whatever the transaction's shape: many
    /// small pages, more than the buffer holds, and a page cache so small
    /// that SQLite spills pages to the WAL before the commit and rewrites
    /// those frames in place (then rewrites their checksums).
    #[test]
    fn every_commit_reaches_readers_and_survives_a_crash() {
        let (dir, path, conn) = database();
        let reader = open_ro(&path).expect("open ro");
        let mut expected = (0, 0);
        for round in 0..12i64 {
            // Rounds 4..8 spill: 10 pages of cache for a transaction of
            // hundreds, updated twice so spilled frames are rewritten.
            let cache = if (4..8).contains(&round) { 10 } else { -65536 };
            conn.pragma_update(None, "cache_size", cache)
                .expect("cache size");
            let (rows_in_round, blob) = if round % 3 == 2 {
                (400, 3000)
            } else {
                (20, 100)
            };
            conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
            for i in 0..rows_in_round {
                conn.execute(
                    "INSERT INTO t VALUES (?1, 1, randomblob(?2))",
                    [round * 1000 + i, blob],
                )
                .expect("insert");
            }
            conn.execute("UPDATE t SET n = n + 1 WHERE k >= ?1", [round * 1000])
                .expect("update");
            conn.execute_batch("COMMIT").expect("commit");
            expected = (expected.0 + rows_in_round, expected.1 + 2 * rows_in_round);
            assert_eq!(rows(&reader), expected, "reader after round {round}");
            let image = dir.path().join(format!("crash{round}.sqlite"));
            let copy = crash_image(&path, &image);
            assert_eq!(rows(&copy), expected, "crash image after round {round}");
            let check: String = copy
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .expect("integrity check");
            assert_eq!(check, "ok");
        }
    }
}

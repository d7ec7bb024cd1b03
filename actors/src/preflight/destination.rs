//! The destination path: does it exist, can the migration write it, and
//! how much room does its file system have. Nothing is created or changed.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

/// What preflight found at the destination path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    /// The path as given.
    pub path: String,
    /// Whether a file is there already.
    pub exists: bool,
    /// Whether the migration can write it: the file opens for writing (when
    /// it exists) and its directory takes new files.
    pub writable: bool,
    /// Bytes available to this user on the directory's file system.
    pub free_bytes: Option<u64>,
}

/// Looks at `path`; the second value says why it is not writable.
pub(super) fn inspect(path: &Path) -> (Destination, Option<String>) {
    // A bare file name lives in the current directory.
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let exists = path.exists();
    let unwritable = why_unwritable(path, dir, exists);
    let destination = Destination {
        path: path.display().to_string(),
        exists,
        writable: unwritable.is_none(),
        free_bytes: free_bytes(dir),
    };
    (destination, unwritable)
}

fn why_unwritable(path: &Path, dir: &Path, exists: bool) -> Option<String> {
    if path.is_dir() {
        return Some("it is a directory".to_string());
    }
    if exists && let Err(error) = OpenOptions::new().write(true).open(path) {
        return Some(format!("cannot open it for writing: {error}"));
    }
    if !dir.is_dir() {
        return Some(format!("the directory {} does not exist", dir.display()));
    }
    // Even for an existing file: SQLite creates its -wal and -shm files
    // beside it.
    if !access(dir, libc::W_OK | libc::X_OK) {
        return Some(format!(
            "the directory {} does not let this user create files (SQLite needs its -wal and \
             -shm files there)",
            dir.display()
        ));
    }
    None
}

/// `access(2)`: whether this user may use `path` in `mode`, asked without
/// creating anything.
fn access(path: &Path, mode: libc::c_int) -> bool {
    let Some(c_path) = c_path(path) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the
    // call; access(2) only reads it.
    unsafe { libc::access(c_path.as_ptr(), mode) == 0 }
}

/// Free bytes for unprivileged users on the file system holding `dir`
/// (`statvfs(3)`: `f_bavail × f_frsize`).
fn free_bytes(dir: &Path) -> Option<u64> {
    let c_path = c_path(dir)?;
    // SAFETY: an all-zero `statvfs` is a valid value of this plain C struct.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stats` is a valid, writable
    // `statvfs` that outlives the call.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    // The field widths differ between platforms; both fit in u64.
    #[allow(clippy::useless_conversion)]
    let (available, fragment) = (u64::from(stats.f_bavail), u64::from(stats.f_frsize));
    Some(available.saturating_mul(fragment))
}

/// `path` for a C call; `None` when it holds a NUL byte (no such file can
/// exist).
fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

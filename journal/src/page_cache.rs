//! SQLite's own page cache, with one renumbering kept off its books.
//!
//! When a B-tree page splits or merges, SQLite's `balance_nonroot` puts the
//! new pages in ascending order by swapping page numbers, and it parks one
//! page under a temporary number while it swaps: the lock-byte page
//! (`1 GiB / page size + 1`, page 262145 with 4 KiB pages). The page cache
//! remembers that number as the largest it ever held, so at the end of the
//! transaction its truncate-to-database-size scans every bucket of its hash
//! table instead of the few past the end of the file. With a 64 MiB cache
//! and random-key writes (a split in almost every group commit) that scan
//! was 12% of the writer thread's time.
//!
//! This wrapper forwards every call to SQLite's default page cache, and
//! files a page under key 0 while it carries the temporary number. No page
//! ever has number 0 and the lock-byte page never holds data, so the
//! mapping is invisible to SQLite; the cache's largest key just stays the
//! database's size, and the truncate scans only what it must.
//!
//! The page cache is process-wide and can only be chosen before SQLite
//! initialises, so [`install`] runs before keyferry opens its first
//! connection. If something else in the process opened SQLite first, the
//! default cache stays; only the speed differs.

use std::ffi::{c_int, c_uint};
use std::sync::OnceLock;

use rusqlite::ffi;

/// SQLite's default page-cache methods, captured before ours replace them.
static DEFAULT: OnceLock<Methods> = OnceLock::new();

/// The methods table, shareable: its functions are thread-safe (SQLite
/// calls them from any connection's thread) and `pArg` is only handed back
/// to them.
struct Methods(ffi::sqlite3_pcache_methods2);

// SAFETY: see `Methods`; the table is never mutated after it is captured.
unsafe impl Send for Methods {}
// SAFETY: as above.
unsafe impl Sync for Methods {}

/// One page cache: SQLite's, and the temporary number its pages may carry.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    /// `balance_nonroot`'s temporary page number for this page size.
    parked: c_uint,
}

/// Installs the wrapper as SQLite's page cache, once per process. Returns
/// whether it is in use.
pub(crate) fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let mut default = std::mem::MaybeUninit::<ffi::sqlite3_pcache_methods2>::zeroed();
        // SAFETY: GETPCACHE2 writes the current methods into the struct;
        // both calls fail harmlessly (SQLITE_MISUSE) once SQLite has been
        // initialised, and then nothing is changed.
        unsafe {
            if ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, default.as_mut_ptr())
                != ffi::SQLITE_OK
            {
                return false;
            }
            let default = default.assume_init();
            if default.xCreate.is_none() {
                return false;
            }
            let _ = DEFAULT.set(Methods(default));
            let ours = ffi::sqlite3_pcache_methods2 {
                iVersion: 1,
                pArg: default.pArg,
                xInit: default.xInit,
                xShutdown: default.xShutdown,
                xCreate: Some(create),
                xCachesize: Some(cachesize),
                xPagecount: Some(pagecount),
                xFetch: Some(fetch),
                xUnpin: Some(unpin),
                xRekey: Some(rekey),
                xTruncate: Some(truncate),
                xDestroy: Some(destroy),
                xShrink: Some(shrink),
            };
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_PCACHE2,
                &ours as *const ffi::sqlite3_pcache_methods2,
            ) == ffi::SQLITE_OK
        }
    })
}

fn default() -> &'static ffi::sqlite3_pcache_methods2 {
    &DEFAULT.get().expect("installed before use").0
}

/// # Safety
/// `cache` must come from [`create`].
unsafe fn cache<'a>(cache: *mut ffi::sqlite3_pcache) -> &'a Cache {
    // SAFETY: the caller passes a pointer `create` made from a Box<Cache>.
    unsafe { &*(cache as *const Cache) }
}

impl Cache {
    fn key(&self, key: c_uint) -> c_uint {
        if key == self.parked { 0 } else { key }
    }
}

unsafe extern "C" fn create(
    page: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    // SAFETY: forwarding to SQLite's own method with its arguments.
    let inner = unsafe { default().xCreate.expect("checked")(page, extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    let parked = u32::try_from(0x4000_0000 / page.max(1) + 1).unwrap_or(0);
    Box::into_raw(Box::new(Cache { inner, parked })).cast()
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, size: c_int) {
    // SAFETY: `p` is ours; the inner cache is SQLite's.
    unsafe { default().xCachesize.expect("pcache1 has it")(cache(p).inner, size) }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    // SAFETY: as above.
    unsafe { default().xPagecount.expect("pcache1 has it")(cache(p).inner) }
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    // SAFETY: as above.
    unsafe {
        let c = cache(p);
        default().xFetch.expect("pcache1 has it")(c.inner, c.key(key), create)
    }
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    // SAFETY: as above.
    unsafe { default().xUnpin.expect("pcache1 has it")(cache(p).inner, page, discard) }
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: as above.
    unsafe {
        let c = cache(p);
        default().xRekey.expect("pcache1 has it")(c.inner, page, c.key(old), c.key(new))
    }
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    // SAFETY: as above.
    unsafe { default().xTruncate.expect("pcache1 has it")(cache(p).inner, limit) }
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: `p` came from Box::into_raw in `create` and SQLite destroys
    // each cache once.
    unsafe {
        let c = Box::from_raw(p as *mut Cache);
        default().xDestroy.expect("pcache1 has it")(c.inner);
    }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: as above.
    unsafe {
        if let Some(shrink) = default().xShrink {
            shrink(cache(p).inner);
        }
    }
}

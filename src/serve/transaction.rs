//! `MULTI`/`EXEC` and `WATCH`.
//!
//! `EXEC` submits one job to the group-committing writer that runs every
//! queued command in order, each in its own nested savepoint
//! ([`keyferry_engine::command::run_write`]): the block is atomic (one
//! SQLite transaction, nothing else interleaves on the single writer) and a
//! failing command undoes only itself, as in Redis. Queued reads run on the
//! writer's transaction, so they see the block's own writes.
//!
//! `WATCH` detects modifications with versions rather than by comparing
//! values:
//! - Every write command this process runs (on the writer thread) bumps a
//!   version of each key it names, if it changed any row and someone
//!   watches the key ([`Watches::touch`]). `FLUSHDB` bumps every watched
//!   key of its database; `FLUSHALL` and `SWAPDB` every watched key;
//!   `MOVE`/`COPY` the key in every database; commands whose keys move with
//!   their arguments (`movablekeys`) treat every argument as a key. This
//!   may abort an `EXEC` Redis would run (a command that changed another
//!   of its keys), never the reverse.
//! - A key that was live at `WATCH` time and has expired by `EXEC` aborts
//!   it (Redis 7.0 does the same), whether or not the sweeper removed it.
//! - Writes by other processes sharing the file are invisible to those
//!   versions: `PRAGMA data_version` on the writer's connection changes
//!   exactly when another connection commits, so any such commit between
//!   `WATCH` and `EXEC` aborts the `EXEC` (conservatively).
//!
//! `WATCH`, `UNWATCH` and `EXEC` all run as writer jobs, so they are
//! ordered with the client's pipelined writes and with every other
//! client's writes without any further locking.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use keyferry_engine::blocking::WaitQueues;
use keyferry_engine::command::{CommandCtx, CommandSpec, Exec, run_write};
use keyferry_engine::{Db, Reply, StoreError, Tx};

use super::hand_over;
use super::state::lock;

/// The modification versions of watched keys, shared by all clients.
#[derive(Default)]
pub(crate) struct Watches {
    /// How many (db, key) entries exist: writes skip the map while 0.
    entries: AtomicUsize,
    keys: Mutex<HashMap<(Db, Vec<u8>), Entry>>,
}

struct Entry {
    watchers: usize,
    version: u64,
}

impl Watches {
    /// Starts watching `key`; returns its current version.
    fn watch(&self, db: Db, key: &[u8]) -> u64 {
        let mut keys = lock(&self.keys);
        let entry = keys.entry((db, key.to_vec())).or_insert_with(|| {
            self.entries.fetch_add(1, Ordering::Relaxed);
            Entry {
                watchers: 0,
                version: 0,
            }
        });
        entry.watchers += 1;
        entry.version
    }

    fn version(&self, db: Db, key: &[u8]) -> u64 {
        lock(&self.keys)
            .get(&(db, key.to_vec()))
            .map_or(0, |e| e.version)
    }

    fn unwatch(&self, db: Db, key: Vec<u8>) {
        let mut keys = lock(&self.keys);
        let id = (db, key);
        if let Some(entry) = keys.get_mut(&id) {
            entry.watchers -= 1;
            if entry.watchers == 0 {
                keys.remove(&id);
                self.entries.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Records that serving blocked clients changed `keys` (the lists
    /// they popped from and pushed onto).
    fn touch_keys(&self, keys: &[(Db, Vec<u8>)]) {
        if !keys.is_empty() {
            self.bump(|d, k| keys.iter().any(|(kd, kk)| *kd == d && kk == k));
        }
    }

    /// Records that write command `spec` with `argv`, run in `db`, changed
    /// the keyspace (see the module docs for which keys count).
    pub(crate) fn touch(&self, spec: &CommandSpec, db: Db, argv: &[Vec<u8>]) {
        match spec.name {
            "flushall" | "swapdb" => self.bump(|_, _| true),
            "flushdb" => self.bump(|d, _| d == db),
            "move" | "copy" => {
                let named = spec.keys(argv);
                self.bump(|_, k| named.contains(&k));
            }
            _ if spec.has_flag("movablekeys") => {
                self.bump(|d, k| d == db && argv[1..].iter().any(|a| a == k))
            }
            _ => {
                let named = spec.keys(argv);
                self.bump(|d, k| d == db && named.contains(&k));
            }
        }
    }

    /// Bumps the version of every watched key `changed` selects (nothing
    /// to do, and no lock taken, while nobody watches anything).
    fn bump(&self, changed: impl Fn(Db, &[u8]) -> bool) {
        if self.entries.load(Ordering::Relaxed) == 0 {
            return;
        }
        for ((d, k), entry) in lock(&self.keys).iter_mut() {
            if changed(*d, k) {
                entry.version += 1;
            }
        }
    }
}

/// One client's watched keys. Only touched by writer jobs (and dropped
/// with the session), so it is always consistent with the order of the
/// client's commands.
pub(crate) struct WatchSet {
    watches: Arc<Watches>,
    keys: Vec<Watched>,
    /// The writer connection's `PRAGMA data_version` at the first `WATCH`.
    data_version: Option<i64>,
}

struct Watched {
    db: Db,
    key: Vec<u8>,
    version: u64,
    /// The key's expiry if it was live and volatile when watched.
    expire_at_ms: Option<i64>,
}

impl WatchSet {
    /// An empty set over the server's versions.
    pub(crate) fn new(watches: Arc<Watches>) -> Self {
        Self {
            watches,
            keys: Vec::new(),
            data_version: None,
        }
    }

    /// `WATCH key…` in `db`, run on the writer.
    pub(crate) fn add(&mut self, tx: &Tx<'_>, db: Db, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        if self.data_version.is_none() {
            self.data_version = Some(data_version(tx)?);
        }
        let view = tx.view();
        for key in keys {
            let expire_at_ms = view.lookup(db, key)?.and_then(|m| m.expire_at_ms());
            let version = self.watches.watch(db, key);
            self.keys.push(Watched {
                db,
                key: key.clone(),
                version,
                expire_at_ms,
            });
        }
        Ok(())
    }

    /// Whether a watched key was modified (or expired), or another process
    /// committed, since `WATCH`.
    fn is_dirty(&self, tx: &Tx<'_>) -> Result<bool, StoreError> {
        if let Some(seen) = self.data_version
            && seen != data_version(tx)?
        {
            return Ok(true);
        }
        Ok(self.keys.iter().any(|w| {
            self.watches.version(w.db, &w.key) != w.version
                || w.expire_at_ms.is_some_and(|at| at <= tx.now())
        }))
    }

    /// `UNWATCH`: forgets every key.
    pub(crate) fn clear(&mut self) {
        for w in self.keys.drain(..) {
            self.watches.unwatch(w.db, w.key);
        }
        self.data_version = None;
    }
}

impl Drop for WatchSet {
    fn drop(&mut self) {
        self.clear();
    }
}

fn data_version(tx: &Tx<'_>) -> Result<i64, StoreError> {
    Ok(tx
        .conn()
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?)
}

/// One command of an `EXEC` block.
pub(crate) enum Step {
    /// Already answered when `EXEC` was dispatched (a server command, such
    /// as `PING` or `SELECT`, that does not touch the keyspace).
    Done(Reply),
    /// A keyspace command to run in the block's transaction.
    Run(&'static CommandSpec, CommandCtx, Vec<Vec<u8>>),
}

/// What a writer job shares with every client: `WATCH` versions and the
/// wait queues of blocked clients.
pub(crate) struct Keyspace {
    pub(crate) watches: Arc<Watches>,
    pub(crate) waits: Arc<WaitQueues>,
}

impl Keyspace {
    /// Serves the clients blocked on `ready` keys, and bumps the `WATCH`
    /// versions of the lists that changed: those serving popped from or
    /// pushed onto, and `also_changed` (lists the caller changed on the
    /// waiters' behalf), in one pass.
    pub(crate) fn serve_blocked(
        &self,
        tx: &mut Tx<'_>,
        ready: Vec<(Db, Vec<u8>)>,
        also_changed: Vec<(Db, Vec<u8>)>,
    ) {
        let mut changed = self.waits.serve(tx, ready);
        changed.extend(also_changed);
        self.watches.touch_keys(&changed);
    }
}

/// Runs a keyspace command inside the writer's transaction: a read over
/// the transaction's view, a write in its own savepoint (bumping the
/// versions of the keys it changed, and noting in `touched` the keys whose
/// blocked clients it may have made ready).
pub(crate) fn run_command(
    spec: &CommandSpec,
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    shared: &Keyspace,
    touched: &mut Vec<(Db, Vec<u8>)>,
) -> Result<Reply, StoreError> {
    Ok(match spec.exec {
        Exec::Read(read) => read(&tx.view(), ctx, argv),
        Exec::Write(_) => {
            let (reply, changed) = run_write(spec, tx, ctx, argv)?;
            if changed {
                shared.watches.touch(spec, ctx.db, argv);
                if shared.waits.blocked() > 0 {
                    touched_keys(spec, ctx.db, argv, &shared.waits, touched);
                }
            }
            reply
        }
        Exec::Server => Reply::error(format!("ERR '{}' cannot run in the keyspace", spec.name)),
    })
}

/// The keys write command `spec` may have given data to: the keys it
/// names (every argument for commands whose keys move with their
/// arguments), or every waited key for those that write keys they do not
/// name in the client's database.
fn touched_keys(
    spec: &CommandSpec,
    db: Db,
    argv: &[Vec<u8>],
    waits: &WaitQueues,
    touched: &mut Vec<(Db, Vec<u8>)>,
) {
    match spec.name {
        "swapdb" | "move" | "copy" | "flushall" => touched.extend(waits.waited_keys()),
        _ if spec.has_flag("movablekeys") => {
            touched.extend(argv[1..].iter().map(|k| (db, k.clone())))
        }
        _ => touched.extend(spec.keys(argv).into_iter().map(|k| (db, k.to_vec()))),
    }
}

/// Runs one keyspace command as a writer job of its own and serves the
/// clients it made ready, in the same job.
pub(crate) fn run_alone(
    spec: &CommandSpec,
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    shared: &Keyspace,
) -> Result<Reply, StoreError> {
    if let Some(reply) = hand_over::push_to_waiters(spec, tx, ctx, argv, shared)? {
        return Ok(reply);
    }
    let mut touched = Vec::new();
    let reply = run_command(spec, tx, ctx, argv, shared, &mut touched)?;
    shared.serve_blocked(tx, touched, Vec::new());
    Ok(reply)
}

/// The writer job of `EXEC`: aborts (null reply) if a watched key changed,
/// otherwise runs `steps` and answers their replies as one array; the
/// clients the block made ready are served once, after it.
pub(crate) fn exec(
    tx: &mut Tx<'_>,
    steps: Vec<Step>,
    watch: &Mutex<WatchSet>,
    shared: &Keyspace,
) -> Result<Reply, StoreError> {
    let dirty = {
        let mut set = lock(watch);
        let dirty = set.is_dirty(tx)?;
        set.clear();
        dirty
    };
    if dirty {
        return Ok(Reply::NullArray);
    }
    let mut touched = Vec::new();
    let replies = steps
        .into_iter()
        .map(|step| match step {
            Step::Done(reply) => Ok(reply),
            Step::Run(spec, ctx, argv) => run_command(spec, tx, &ctx, &argv, shared, &mut touched),
        })
        .collect::<Result<_, _>>()?;
    shared.serve_blocked(tx, touched, Vec::new());
    Ok(Reply::Array(replies))
}

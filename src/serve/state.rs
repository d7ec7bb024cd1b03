//! What every connection of one `serve` process shares: the store, the
//! settings `CONFIG` reads and changes, the registry of connected clients
//! (`CLIENT LIST`/`KILL`), command statistics (`INFO`), pub/sub
//! subscriptions and `WATCH`ed keys.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use keyferry_engine::command::CommandSpec;
use keyferry_engine::{Protocol, Store};
use tokio::sync::Notify;

use super::pubsub::PubSub;
use super::transaction::{Keyspace, Watches};
use crate::resp::{DEFAULT_MAX_BULK, Limits};
use keyferry_engine::blocking::WaitQueues;

/// Redis's default `client-query-buffer-limit` (1 GB): a client whose
/// unparsed input grows past it is disconnected.
pub(crate) const DEFAULT_QUERY_BUFFER_LIMIT: u64 = 1024 * 1024 * 1024;

/// Locks `mutex`, ignoring poisoning: every value guarded here stays
/// consistent between statements, so a panicking holder cannot leave it
/// half-updated.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The process-wide state of the server.
pub(crate) struct Server {
    /// The keyspace.
    pub(crate) store: Store,
    /// Settings changeable at run time with `CONFIG SET`.
    pub(crate) config: Config,
    /// Connected clients by id.
    pub(crate) clients: Clients,
    /// Per-command counters for `INFO commandstats`.
    pub(crate) stats: Stats,
    /// Channel and pattern subscriptions.
    pub(crate) pubsub: PubSub,
    /// Versions of `WATCH`ed keys and the wait queues of blocked clients.
    pub(crate) keyspace: Arc<Keyspace>,
    /// When the server started (`uptime_in_seconds`).
    pub(crate) started: Instant,
    /// A random id for this run (`run_id` in `INFO`).
    pub(crate) run_id: String,
    /// The address the server listens on.
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// State for a server on `addr` over `store`.
    pub(crate) fn new(
        store: Store,
        waits: Arc<WaitQueues>,
        addr: SocketAddr,
        requirepass: Option<String>,
    ) -> Self {
        Self {
            store,
            config: Config::new(requirepass),
            clients: Clients::default(),
            stats: Stats::default(),
            pubsub: PubSub::default(),
            keyspace: Arc::new(Keyspace {
                watches: Arc::new(Watches::default()),
                waits,
            }),
            started: Instant::now(),
            run_id: run_id(),
            addr,
        }
    }
}

/// 40 hex digits that differ from one run to the next, like Redis's
/// `run_id` (tools use a change of it to detect a restarted server).
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (0..3)
        .map(|i| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(nanos + i);
            hasher.write_u32(std::process::id());
            format!("{:016x}", hasher.finish())
        })
        .collect::<String>()[..40]
        .to_owned()
}

/// The settings `CONFIG GET`/`SET` expose that change behaviour.
pub(crate) struct Config {
    /// `proto-max-bulk-len`.
    pub(crate) proto_max_bulk_len: AtomicI64,
    /// `client-query-buffer-limit`.
    pub(crate) query_buffer_limit: AtomicU64,
    /// `requirepass` (the `default` user's password), if any.
    requirepass: Mutex<Option<Arc<str>>>,
    /// `maxclients`.
    pub(crate) maxclients: AtomicU64,
}

impl Config {
    fn new(requirepass: Option<String>) -> Self {
        Self {
            proto_max_bulk_len: AtomicI64::new(DEFAULT_MAX_BULK),
            query_buffer_limit: AtomicU64::new(DEFAULT_QUERY_BUFFER_LIMIT),
            requirepass: Mutex::new(requirepass.filter(|p| !p.is_empty()).map(Arc::from)),
            maxclients: AtomicU64::new(10_000),
        }
    }

    /// The current password, if one is required.
    pub(crate) fn requirepass(&self) -> Option<Arc<str>> {
        lock(&self.requirepass).clone()
    }

    /// Sets (or, with an empty string, clears) the password.
    pub(crate) fn set_requirepass(&self, password: &str) {
        *lock(&self.requirepass) = (!password.is_empty()).then(|| Arc::from(password));
    }

    /// The request limits for a client (`unauthenticated`: still has to
    /// AUTH).
    pub(crate) fn limits(&self, unauthenticated: bool) -> Limits {
        Limits {
            max_bulk: self.proto_max_bulk_len.load(Ordering::Relaxed),
            unauthenticated,
        }
    }
}

/// One connected client as `CLIENT LIST` shows it, and the handle that
/// disconnects it.
pub(crate) struct ClientHandle {
    /// `CLIENT ID`.
    pub(crate) id: u64,
    /// The peer's address.
    pub(crate) addr: SocketAddr,
    /// Our side of the connection.
    pub(crate) laddr: SocketAddr,
    /// When it connected.
    pub(crate) created: Instant,
    /// What changes while it runs commands.
    pub(crate) info: Mutex<ClientInfo>,
    killed: AtomicBool,
    kill: Notify,
}

/// The mutable part of a client's `CLIENT LIST` line.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    /// `CLIENT SETNAME`.
    pub(crate) name: Vec<u8>,
    /// The `SELECT`ed database.
    pub(crate) db: u8,
    /// Its protocol.
    pub(crate) protocol: Protocol,
    /// The last command (`container|sub` for subcommands).
    pub(crate) last_command: Cow<'static, str>,
    /// When its last command arrived.
    pub(crate) last_active: Instant,
    /// Channel and pattern subscriptions.
    pub(crate) subscriptions: (usize, usize),
    /// Commands queued in `MULTI`, `None` outside one.
    pub(crate) multi: Option<usize>,
    /// `CLIENT NO-EVICT`.
    pub(crate) no_evict: bool,
    /// Blocked in a command such as `BLPOP`.
    pub(crate) blocked: bool,
}

impl ClientHandle {
    /// Asks the client's connection to close (`CLIENT KILL`).
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_one();
    }

    /// Resolves once [`ClientHandle::kill`] was called.
    pub(crate) async fn killed(&self) {
        while !self.killed.load(Ordering::Acquire) {
            self.kill.notified().await;
        }
    }

    /// The client's `CLIENT LIST`/`CLIENT INFO` line (without newline).
    pub(crate) fn describe(&self) -> String {
        let info = lock(&self.info).clone();
        let now = Instant::now();
        let flags = match (
            info.subscriptions != (0, 0),
            info.multi.is_some(),
            info.blocked,
        ) {
            (true, _, _) => "P",
            (false, true, _) => "x",
            (false, false, true) => "b",
            (false, false, false) => "N",
        };
        let flags = if info.no_evict {
            format!("{flags}e")
        } else {
            flags.to_owned()
        };
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub=0 \
             multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 \
             tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            String::from_utf8_lossy(&info.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(info.last_active).as_secs(),
            info.db,
            info.subscriptions.0,
            info.subscriptions.1,
            info.multi.map_or(-1, |n| n as i64),
            info.last_command,
            match info.protocol {
                Protocol::Resp2 => 2,
                Protocol::Resp3 => 3,
            },
        )
    }
}

/// The registry of connected clients.
#[derive(Default)]
pub(crate) struct Clients {
    next_id: AtomicU64,
    by_id: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    /// Connections accepted since start (`total_connections_received`).
    pub(crate) accepted: AtomicU64,
    /// Connections refused because of `maxclients`.
    pub(crate) rejected: AtomicU64,
}

impl Clients {
    /// Registers a new connection and gives it the next id.
    pub(crate) fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientHandle> {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let client = Arc::new(ClientHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            addr,
            laddr,
            created: now,
            info: Mutex::new(ClientInfo {
                name: Vec::new(),
                db: 0,
                protocol: Protocol::Resp2,
                last_command: Cow::Borrowed("NULL"),
                last_active: now,
                subscriptions: (0, 0),
                multi: None,
                no_evict: false,
                blocked: false,
            }),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        lock(&self.by_id).insert(client.id, Arc::clone(&client));
        client
    }

    /// Forgets a disconnected client.
    pub(crate) fn unregister(&self, id: u64) {
        lock(&self.by_id).remove(&id);
    }

    /// Every connected client, by id.
    pub(crate) fn all(&self) -> Vec<Arc<ClientHandle>> {
        lock(&self.by_id).values().cloned().collect()
    }

    /// How many clients are connected.
    pub(crate) fn count(&self) -> usize {
        lock(&self.by_id).len()
    }
}

/// `INFO commandstats` counters of one command.
#[derive(Default)]
pub(crate) struct CommandStats {
    /// Times it ran.
    pub(crate) calls: AtomicU64,
    /// Microseconds spent dispatching it.
    pub(crate) usec: AtomicU64,
    /// Times it was refused before running (arity, auth, …).
    pub(crate) rejected: AtomicU64,
    /// Times it ran and answered an error.
    pub(crate) failed: AtomicU64,
}

/// Per-command counters, one entry per supported command (built once, so
/// counting takes no lock).
pub(crate) struct Stats {
    by_name: HashMap<&'static str, CommandStats>,
    /// Commands run since start (`total_commands_processed`).
    pub(crate) commands: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            by_name: keyferry_engine::command::all()
                .map(|spec| (spec.name, CommandStats::default()))
                .collect(),
            commands: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// The counters of `spec`.
    pub(crate) fn of(&self, spec: &CommandSpec) -> &CommandStats {
        &self.by_name[spec.name]
    }

    /// Every command that ran or was refused at least once, by name.
    pub(crate) fn used(&self) -> Vec<(&'static str, &CommandStats)> {
        let mut used: Vec<_> = self
            .by_name
            .iter()
            .filter(|(_, s)| {
                s.calls.load(Ordering::Relaxed) + s.rejected.load(Ordering::Relaxed) > 0
            })
            .map(|(name, s)| (*name, s))
            .collect();
        used.sort_by_key(|(name, _)| *name);
        used
    }
}

//! A client session and command dispatch.
//!
//! Checks run in Redis 7.0's order (`processCommand`): unknown command or
//! subcommand, arity, authentication, the RESP2 pub/sub context, then
//! `MULTI` queueing — so error replies match a real server's whatever the
//! client sends.
//!
//! Keyspace commands run where they must to keep the client's view
//! consistent without stalling its pipeline:
//! - writes go to the group-committing writer, each in its own savepoint;
//!   the reply is queued as pending and the next request is parsed at once;
//! - a read runs on a pooled read connection, unless one of this client's
//!   writes has not committed yet: then it is queued on the writer too,
//!   behind that write, so it sees it (read-your-writes) without waiting;
//! - reads run inline (slow ones in `block_in_place`), so they take their
//!   snapshot before the client's next write is even submitted; the reads
//!   of one pipeline share one snapshot until the client writes
//!   ([`Session::end_pipeline`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use keyferry_engine::blocking::{LimitReached, WaitQueues};
use keyferry_engine::command::{CommandCtx, CommandSpec, Exec, Undo, blocking, lookup};
use keyferry_engine::reply::errors;
use keyferry_engine::{Db, Protocol, Reply, Snapshot, StoreError};
use keyferry_journal::{Cost, Isolation};
use tokio::sync::{mpsc, oneshot};

use super::connection::{Outgoing, PendingReply};
use super::pubsub::{self, Kind, Subscriber};
use super::state::{ClientHandle, Server, lock};
use super::transaction::{self, Step, WatchSet};
use crate::resp::Limits;

/// Whether the connection goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Read the next request.
    Continue,
    /// Close once the queued replies are sent.
    Close,
}

/// Subcommands of the container commands the server implements, with their
/// Redis 7.0 arity: resolved before the arity and auth checks, like Redis.
const SUBCOMMANDS: &[(&str, &[(&str, i32)])] = &[
    (
        "client",
        &[
            ("id", 2),
            ("setname", 3),
            ("getname", 2),
            ("list", -2),
            ("kill", -3),
            ("info", 2),
            ("no-evict", 3),
            ("unblock", -3),
            ("help", 2),
        ],
    ),
    (
        "config",
        &[
            ("get", -3),
            ("set", -4),
            ("resetstat", 2),
            ("rewrite", 2),
            ("help", 2),
        ],
    ),
    (
        "command",
        &[
            ("count", 2),
            ("docs", -2),
            ("info", -2),
            ("list", -2),
            ("help", 2),
        ],
    ),
    ("function", &[("flush", -2), ("help", 2)]),
    (
        "pubsub",
        &[("channels", -2), ("numsub", -2), ("numpat", 2), ("help", 2)],
    ),
];

/// Whether `spec` may be committed on the connection's own runtime thread
/// (`Store::write_local`): commands that are cheap whatever the keyspace
/// holds (Redis's `fast` ones, the blocking pops, and the hot commands that
/// run without a savepoint) may; one that may scan a database (`FLUSHALL`,
/// `KEYS`, `EXEC` of anything) would hold up every connection served by
/// that thread, and goes to the writer thread.
fn cost_of(spec: &CommandSpec) -> Cost {
    if spec.has_flag("fast")
        || spec.has_flag("blocking")
        || spec.undo == Undo::NothingWrittenOnError
    {
        Cost::Fast
    } else {
        Cost::Slow
    }
}

/// Commands a RESP2 client may send while subscribed.
const SUBSCRIBED_CONTEXT: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ping",
    "quit",
    "reset",
];

/// Commands that run at once even inside `MULTI`.
const NOT_QUEUED: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];

/// A `MULTI` block being queued.
#[derive(Default)]
struct Multi {
    queue: Vec<(&'static CommandSpec, Vec<Vec<u8>>)>,
    /// A command was refused while queueing: `EXEC` will abort.
    failed: bool,
}

/// One client's state.
pub(crate) struct Session {
    pub(super) server: Arc<Server>,
    pub(super) client: Arc<ClientHandle>,
    out: mpsc::Sender<Outgoing>,
    pub(super) db: Db,
    pub(super) protocol: Protocol,
    pub(super) authenticated: bool,
    multi: Option<Multi>,
    watch: Arc<Mutex<WatchSet>>,
    pub(super) channels: HashSet<Vec<u8>>,
    pub(super) patterns: HashSet<Vec<u8>>,
    /// Commands this client queued on the writer…
    submitted: u64,
    /// …and how many of them resolved (counted by the sender task).
    committed: Arc<AtomicU64>,
    /// The reply of a blocking command this client waits for: the
    /// connection reads no further request until it resolves. (In a
    /// mutex only so the session stays `Sync`; it is never contended.)
    blocked: Option<Mutex<PendingReply>>,
    /// The read transaction this client's current pipeline reads in (see
    /// [`Session::end_pipeline`]).
    snapshot: Option<Snapshot>,
}

impl Session {
    /// A new client; it must AUTH first when a password is set.
    pub(crate) fn new(
        server: Arc<Server>,
        client: Arc<ClientHandle>,
        out: mpsc::Sender<Outgoing>,
        committed: Arc<AtomicU64>,
    ) -> Self {
        Self {
            authenticated: server.config.requirepass().is_none(),
            watch: Arc::new(Mutex::new(WatchSet::new(Arc::clone(
                &server.keyspace.watches,
            )))),
            server,
            client,
            out,
            db: Db::new(0).expect("database 0 exists"),
            protocol: Protocol::Resp2,
            multi: None,
            channels: HashSet::new(),
            patterns: HashSet::new(),
            submitted: 0,
            committed,
            blocked: None,
            snapshot: None,
        }
    }

    /// Ends the read transaction the requests read so far shared.
    ///
    /// The reads of one pipeline (the complete requests one read from the
    /// socket delivered) share one read transaction while the client has
    /// no write in flight: they all arrived before it began, so, as in
    /// Redis, which runs a client's whole query buffer before serving
    /// anyone else, no write acknowledged after they were sent can be
    /// missing from it. It ends here, after the pipeline; when the client
    /// submits a write or blocks (its later reads must see that); and
    /// before a reply has to wait for room in the outgoing queue, so that
    /// a client that stops reading cannot hold the WAL back. With 16 `GET`s
    /// per pipeline this saved a third of the thread's time.
    pub(crate) fn end_pipeline(&mut self) {
        self.snapshot = None;
    }

    /// The pipeline's read transaction, begun on its first read.
    fn pipeline_snapshot(&mut self) -> Result<&Snapshot, StoreError> {
        let snapshot = match self.snapshot.take() {
            Some(snapshot) => snapshot,
            None => self.server.store.snapshot()?,
        };
        Ok(self.snapshot.insert(snapshot))
    }

    /// The reply of the blocking command the client just sent, if it
    /// blocked: the connection must await it before the next request.
    pub(crate) fn take_blocked(&mut self) -> Option<PendingReply> {
        self.blocked
            .take()
            .map(|b| b.into_inner().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts back a reply [`Session::take_blocked`] took that has not
    /// resolved yet.
    pub(crate) fn keep_blocked(&mut self, blocked: PendingReply) {
        self.blocked = Some(Mutex::new(blocked));
    }

    /// Whether the client waits for a blocking command's reply.
    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// The limits the next request is held to.
    pub(crate) fn limits(&self) -> Limits {
        self.server.config.limits(!self.authenticated)
    }

    /// Queues an outgoing entry (waits while the queue is full).
    pub(crate) async fn send(&self, item: Outgoing) {
        // The sender task only stops early when the socket failed; the
        // reader then stops at its next read, so the entry may be dropped.
        let _ = self.out.send(item).await;
    }

    /// Queues `reply`, encoded in the session's protocol.
    pub(super) async fn reply(&self, reply: Reply) {
        let mut bytes = Vec::new();
        reply.encode(self.protocol, &mut bytes);
        self.send(Outgoing::Bytes(bytes)).await;
    }

    /// Runs one command; `argv` is never empty.
    pub(crate) async fn handle(&mut self, argv: Vec<Vec<u8>>) -> Flow {
        let started = Instant::now();
        let name = argv[0].to_ascii_lowercase();
        let Some(spec) = lookup(&name) else {
            // Unknown names are unbounded: one label for all of them.
            metrics::counter!("keyferry_commands_total", "command" => "unknown").increment(1);
            self.flag_multi();
            self.send(Outgoing::Bytes(unknown_command(&argv))).await;
            return Flow::Continue;
        };
        metrics::counter!("keyferry_commands_total", "command" => spec.name).increment(1);
        let server = Arc::clone(&self.server);
        let stats = server.stats.of(spec);
        if let Err(reply) = self.admit(spec, &argv) {
            stats.rejected.fetch_add(1, Ordering::Relaxed);
            self.flag_multi();
            self.reply(reply).await;
            return Flow::Continue;
        }
        {
            let mut info = lock(&self.client.info);
            info.last_command = full_name(spec, &argv);
            info.last_active = started;
        }
        if let Some(multi) = &mut self.multi
            && !NOT_QUEUED.contains(&spec.name)
        {
            multi.queue.push((spec, argv));
            lock(&self.client.info).multi = Some(multi.queue.len());
            self.reply(Reply::Status("QUEUED".into())).await;
            return Flow::Continue;
        }
        stats.calls.fetch_add(1, Ordering::Relaxed);
        self.server.stats.commands.fetch_add(1, Ordering::Relaxed);
        let flow = self.run(spec, argv).await;
        let elapsed = started.elapsed().as_micros();
        stats.usec.fetch_add(
            u64::try_from(elapsed).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        flow
    }

    /// The checks between lookup and execution, in Redis's order.
    fn admit(&self, spec: &'static CommandSpec, argv: &[Vec<u8>]) -> Result<(), Reply> {
        if let Some((_, subs)) = SUBCOMMANDS.iter().find(|(c, _)| *c == spec.name)
            && let Some(sub) = argv.get(1)
        {
            let lower = sub.to_ascii_lowercase();
            let Some((sub_name, arity)) = subs.iter().find(|(s, _)| s.as_bytes() == lower) else {
                return Err(Reply::Error(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    c_string(sub, 128),
                    spec.name.to_ascii_uppercase()
                )));
            };
            let argc = argv.len() as i32;
            if (*arity >= 0 && argc != *arity) || argc < -arity {
                return Err(errors::wrong_arity(&format!("{}|{sub_name}", spec.name)));
            }
        } else if !spec.arity_ok(argv.len()) {
            return Err(errors::wrong_arity(spec.name));
        }
        if !self.authenticated && !spec.has_flag("no_auth") {
            return Err(Reply::error("NOAUTH Authentication required."));
        }
        if self.protocol == Protocol::Resp2
            && self.subscribed()
            && !SUBSCRIBED_CONTEXT.contains(&spec.name)
        {
            return Err(Reply::Error(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                full_name(spec, argv)
            )));
        }
        Ok(())
    }

    fn flag_multi(&mut self) {
        if let Some(multi) = &mut self.multi {
            multi.failed = true;
        }
    }

    /// Whether the client has any subscription.
    pub(super) fn subscribed(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    /// The context keyspace commands run in.
    fn ctx(&self) -> CommandCtx {
        CommandCtx {
            db: self.db,
            protocol: self.protocol,
        }
    }

    async fn run(&mut self, spec: &'static CommandSpec, argv: Vec<Vec<u8>>) -> Flow {
        match spec.exec {
            Exec::Server => self.server_command(spec, argv).await,
            Exec::Read(read) if self.submitted == self.committed.load(Ordering::Acquire) => {
                let ctx = self.ctx();
                let snapshot = self.pipeline_snapshot();
                let run = || {
                    snapshot
                        .and_then(|snapshot| snapshot.read(|view| Ok(read(view, &ctx, &argv))))
                        .unwrap_or_else(Reply::from)
                };
                // A slow read still runs here, not on another thread: the
                // client's next write must not commit before this read
                // took its snapshot. `block_in_place` moves this worker's
                // other tasks elsewhere meanwhile.
                let reply = if spec.has_flag("fast") {
                    run()
                } else {
                    tokio::task::block_in_place(run)
                };
                if reply.is_error() {
                    self.server
                        .stats
                        .of(spec)
                        .failed
                        .fetch_add(1, Ordering::Relaxed);
                }
                if self.out.capacity() == 0 {
                    self.end_pipeline();
                }
                self.reply(reply).await;
                Flow::Continue
            }
            Exec::Write(_) if spec.has_flag("blocking") => {
                self.block(spec, argv);
                Flow::Continue
            }
            Exec::Read(_) | Exec::Write(_) => {
                let (ctx, shared) = (self.ctx(), Arc::clone(&self.server.keyspace));
                self.on_writer(spec, move |tx| {
                    transaction::run_alone(spec, tx, &ctx, &argv, &shared)
                })
                .await;
                Flow::Continue
            }
        }
    }

    /// A blocking command outside `MULTI`: one writer job runs its
    /// non-blocking form and, if that found nothing, registers the client
    /// in the wait queues in the same job (so no write slips in between).
    /// The reply — popped, timed out or unblocked — is left in
    /// `self.blocked` for the connection to await.
    fn block(&mut self, spec: &'static CommandSpec, argv: Vec<Vec<u8>>) {
        self.end_pipeline();
        let (ctx, shared, client) = (
            self.ctx(),
            Arc::clone(&self.server.keyspace),
            self.client.id,
        );
        let (send, receive) = oneshot::channel();
        // Guards the wait from before the job runs: dropped at any point
        // (disconnect, kill, shutdown), it leaves nothing in the queues.
        let guard = Waiting::new(Arc::clone(&self.server.keyspace.waits), &self.client);
        let abandoned = Arc::clone(&guard.abandoned);
        let write = self.server.store.write_local(
            Isolation::NoneWhenFailureWritesNothing,
            Cost::Fast,
            move |tx| {
                let reply = transaction::run_alone(spec, tx, &ctx, &argv, &shared)?;
                let (Reply::Null | Reply::NullArray, Ok(parsed)) = (&reply, blocking::parse(&argv))
                else {
                    return Ok(Some(reply));
                };
                let deliver = Box::new(move |reply| {
                    // The client may have gone: nobody to tell.
                    let _ = send.send(reply);
                });
                let deadline = parsed.timeout.map(|t| Instant::now() + t);
                let waits = &shared.waits;
                match waits.register(client, ctx.db, parsed.keys, parsed.op, deadline, deliver) {
                    Ok(id) => {
                        // The guard went while this job waited in line.
                        if abandoned.load(Ordering::SeqCst) {
                            waits.cancel(id);
                        }
                        Ok(None)
                    }
                    Err(LimitReached(text)) => Ok(Some(Reply::Error(text))),
                }
            },
        );
        self.keep_blocked(Box::pin(async move {
            let guard = guard;
            match write.await {
                Ok(Some(reply)) => reply,
                Ok(None) => guard.wait(receive).await,
                Err(e) => Reply::from(e),
            }
        }));
    }

    /// Queues the reply of a writer job; until it resolves, this client's
    /// reads go through the writer too.
    async fn pending(&mut self, spec: &'static CommandSpec, reply: PendingReply) {
        self.end_pipeline();
        self.submitted += 1;
        self.send(Outgoing::Pending {
            reply,
            protocol: self.protocol,
            spec,
        })
        .await;
    }

    /// Submits a job to the writer and queues its reply. The job skips the
    /// writer's per-job savepoint: a command takes its own (`run_write`),
    /// and a second one would only double the cost.
    pub(super) async fn on_writer<F>(&mut self, spec: &'static CommandSpec, op: F)
    where
        F: FnOnce(&mut keyferry_engine::Tx<'_>) -> Result<Reply, StoreError> + Send + 'static,
    {
        let store = &self.server.store;
        let isolation = Isolation::NoneWhenFailureWritesNothing;
        let write = store.write_local(isolation, cost_of(spec), op);
        self.pending(spec, Box::pin(resolve(write))).await;
    }

    /// `MULTI`.
    pub(super) async fn multi(&mut self) -> Flow {
        if self.multi.is_some() {
            self.reply(Reply::error("ERR MULTI calls can not be nested"))
                .await;
        } else {
            self.multi = Some(Multi::default());
            lock(&self.client.info).multi = Some(0);
            self.reply(Reply::ok()).await;
        }
        Flow::Continue
    }

    /// `DISCARD`.
    pub(super) async fn discard(&mut self, spec: &'static CommandSpec) -> Flow {
        if self.multi.take().is_none() {
            self.reply(Reply::error("ERR DISCARD without MULTI")).await;
        } else {
            lock(&self.client.info).multi = None;
            self.unwatch(spec).await;
        }
        Flow::Continue
    }

    /// `WATCH key…`.
    pub(super) async fn watch(&mut self, spec: &'static CommandSpec, argv: Vec<Vec<u8>>) -> Flow {
        if self.multi.is_some() {
            self.reply(Reply::error("ERR WATCH inside MULTI is not allowed"))
                .await;
            return Flow::Continue;
        }
        let (watch, db) = (Arc::clone(&self.watch), self.db);
        self.on_writer(spec, move |tx| {
            lock(&watch).add(tx, db, &argv[1..])?;
            Ok(Reply::ok())
        })
        .await;
        Flow::Continue
    }

    /// `UNWATCH` (also what `DISCARD` and `RESET` do).
    pub(super) async fn unwatch(&mut self, spec: &'static CommandSpec) {
        let watch = Arc::clone(&self.watch);
        self.on_writer(spec, move |_| {
            lock(&watch).clear();
            Ok(Reply::ok())
        })
        .await;
    }

    /// `EXEC`: server commands of the block are answered now, in order
    /// (`SELECT` changes the database of the commands after it); the
    /// keyspace commands run in one writer job.
    pub(super) async fn exec(&mut self, spec: &'static CommandSpec) -> Flow {
        let Some(multi) = self.multi.take() else {
            self.reply(Reply::error("ERR EXEC without MULTI")).await;
            return Flow::Continue;
        };
        lock(&self.client.info).multi = None;
        if multi.failed {
            self.unwatch_silently();
            self.reply(Reply::error(
                "EXECABORT Transaction discarded because of previous errors.",
            ))
            .await;
            return Flow::Continue;
        }
        let mut steps = Vec::with_capacity(multi.queue.len());
        for (queued, argv) in multi.queue {
            match queued.exec {
                Exec::Server => steps.push(Step::Done(self.server_reply_in_exec(queued, argv))),
                _ => steps.push(Step::Run(queued, self.ctx(), argv)),
            }
        }
        let (watch, shared) = (Arc::clone(&self.watch), Arc::clone(&self.server.keyspace));
        self.on_writer(spec, move |tx| {
            transaction::exec(tx, steps, &watch, &shared)
        })
        .await;
        Flow::Continue
    }

    /// Forgets the watched keys without answering (`EXECABORT`).
    fn unwatch_silently(&mut self) {
        let watch = Arc::clone(&self.watch);
        // Ordered with this client's other writer jobs; nothing to answer.
        let done = self.server.store.write_local(
            Isolation::NoneWhenFailureWritesNothing,
            Cost::Fast,
            move |_| {
                lock(&watch).clear();
                Ok(())
            },
        );
        drop(done);
    }

    /// `RESET`: back to a fresh connection's state.
    pub(super) async fn reset(&mut self) -> Flow {
        self.multi = None;
        self.unwatch_silently();
        self.unsubscribe_all();
        self.db = Db::new(0).expect("database 0 exists");
        self.protocol = Protocol::Resp2;
        self.authenticated = self.server.config.requirepass().is_none();
        {
            let mut info = lock(&self.client.info);
            info.db = 0;
            info.protocol = Protocol::Resp2;
            info.name.clear();
            info.multi = None;
            info.no_evict = false;
        }
        self.reply(Reply::Status("RESET".into())).await;
        Flow::Continue
    }

    /// `SUBSCRIBE`/`PSUBSCRIBE`.
    pub(super) async fn subscribe(&mut self, kind: Kind, names: &[Vec<u8>]) {
        for name in names {
            let set = match kind {
                Kind::Channel => &mut self.channels,
                Kind::Pattern => &mut self.patterns,
            };
            if set.insert(name.clone()) {
                let subscriber = Subscriber {
                    client: Arc::clone(&self.client),
                    out: self.out.clone(),
                };
                self.server.pubsub.subscribe(kind, name, subscriber);
            }
            self.confirm(kind, true, Some(name)).await;
        }
    }

    /// `UNSUBSCRIBE`/`PUNSUBSCRIBE`: from `names`, or from everything.
    pub(super) async fn unsubscribe(&mut self, kind: Kind, names: &[Vec<u8>]) {
        let names: Vec<Vec<u8>> = if names.is_empty() {
            let set = match kind {
                Kind::Channel => &self.channels,
                Kind::Pattern => &self.patterns,
            };
            set.iter().cloned().collect()
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            self.confirm(kind, false, None).await;
        }
        for name in names {
            let set = match kind {
                Kind::Channel => &mut self.channels,
                Kind::Pattern => &mut self.patterns,
            };
            set.remove(&name);
            self.server.pubsub.unsubscribe(kind, &name, self.client.id);
            self.confirm(kind, false, Some(&name)).await;
        }
    }

    /// A (un)subscribe confirmation: `[kind, name, subscriptions left]`.
    async fn confirm(&self, kind: Kind, subscribe: bool, name: Option<&[u8]>) {
        let word = match (kind, subscribe) {
            (Kind::Channel, true) => "subscribe",
            (Kind::Channel, false) => "unsubscribe",
            (Kind::Pattern, true) => "psubscribe",
            (Kind::Pattern, false) => "punsubscribe",
        };
        lock(&self.client.info).subscriptions = (self.channels.len(), self.patterns.len());
        let count = (self.channels.len() + self.patterns.len()) as i64;
        let frame = pubsub::push(
            self.protocol,
            vec![
                Reply::bulk(word),
                name.map_or(Reply::Null, Reply::bulk),
                Reply::Integer(count),
            ],
        );
        self.send(Outgoing::Bytes(frame)).await;
    }

    fn unsubscribe_all(&mut self) {
        for name in self.channels.drain() {
            self.server
                .pubsub
                .unsubscribe(Kind::Channel, &name, self.client.id);
        }
        for name in self.patterns.drain() {
            self.server
                .pubsub
                .unsubscribe(Kind::Pattern, &name, self.client.id);
        }
        lock(&self.client.info).subscriptions = (0, 0);
    }
}

impl Drop for Session {
    /// The pub/sub registry holds senders to this connection's queue: they
    /// must go for the queue to close.
    fn drop(&mut self) {
        self.unsubscribe_all();
    }
}

/// Awaits a writer job, turning a store failure into an error reply.
async fn resolve(write: keyferry_engine::Write<Reply>) -> Reply {
    write.await.unwrap_or_else(Reply::from)
}

/// A blocking command's wait, from the client's side. Dropping it
/// (disconnect, kill, shutdown) takes the client out of the wait queues,
/// whether its writer job ran already or not; the client shows as blocked
/// (`CLIENT LIST` flag `b`) while it waits.
struct Waiting {
    waits: Arc<WaitQueues>,
    client: Arc<ClientHandle>,
    /// Set when dropped, for a registration still to come.
    abandoned: Arc<AtomicBool>,
}

impl Waiting {
    fn new(waits: Arc<WaitQueues>, client: &Arc<ClientHandle>) -> Self {
        Self {
            waits,
            client: Arc::clone(client),
            abandoned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The reply once registered: delivered by a writer job, `CLIENT
    /// UNBLOCK`, or the waiter registry actor when the timeout passed.
    async fn wait(self, receive: oneshot::Receiver<Reply>) -> Reply {
        lock(&self.client.info).blocked = true;
        // The sender only goes unused when this waiter was cancelled,
        // which only `Drop` does.
        receive.await.unwrap_or(Reply::NullArray)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.waits.cancel_client(self.client.id);
        lock(&self.client.info).blocked = false;
    }
}

/// The name Redis reports for a command: `container|sub` for subcommands
/// (allocated only for those).
fn full_name(spec: &'static CommandSpec, argv: &[Vec<u8>]) -> Cow<'static, str> {
    match (
        SUBCOMMANDS.iter().any(|(c, _)| *c == spec.name),
        argv.get(1),
    ) {
        (true, Some(sub)) => Cow::Owned(format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )),
        _ => Cow::Borrowed(spec.name),
    }
}

/// `bytes` as C's `%.<max>s` prints it: cut at the first NUL and at `max`
/// bytes.
fn c_string(bytes: &[u8], max: usize) -> String {
    let cut: Vec<u8> = bytes
        .iter()
        .copied()
        .take_while(|&b| b != 0)
        .take(max)
        .collect();
    String::from_utf8_lossy(&cut).into_owned()
}

/// Redis's reply to an unknown command, encoded (it quotes the client's
/// bytes, which need not be UTF-8):
/// `-ERR unknown command 'name', with args beginning with: 'a' 'b' `.
///
/// Reproduces Redis's C formatting exactly: the name is cut at 128 bytes;
/// arguments are quoted one by one while the list is shorter than 128
/// bytes, each cut to what is left of those 128; every piece ends at its
/// first NUL byte (C strings); `\r` and `\n` become spaces.
fn unknown_command(argv: &[Vec<u8>]) -> Vec<u8> {
    const LIMIT: usize = 128;
    let c_str = |bytes: &[u8], max: usize| -> Vec<u8> {
        bytes
            .iter()
            .copied()
            .take_while(|&b| b != 0)
            .take(max)
            .collect()
    };
    let mut args = Vec::new();
    for arg in &argv[1..] {
        if args.len() >= LIMIT {
            break;
        }
        let room = LIMIT - args.len();
        args.push(b'\'');
        args.extend(c_str(arg, room));
        args.extend_from_slice(b"' ");
    }
    let mut text = b"-ERR unknown command '".to_vec();
    text.extend(c_str(&argv[0], LIMIT));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend(args);
    let mut out: Vec<u8> = text
        .into_iter()
        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    out.extend_from_slice(b"\r\n");
    out
}

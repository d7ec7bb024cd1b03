//! One client connection: a reader that parses and dispatches requests,
//! and a writer task that sends the replies in order.
//!
//! The reader never waits for a write to commit before parsing the next
//! request: each command's reply goes into an ordered queue either ready
//! (bytes) or pending (a future resolved by the group-committing writer). The writer task awaits the queue's entries in order,
//! so replies leave in request order while a pipeline of writes joins one
//! group commit. Replies that are ready together go out in one `write`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use keyferry_engine::command::CommandSpec;
use keyferry_engine::{Protocol, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::session::{Flow, Session};
use super::state::Server;
use crate::resp;
use crate::shutdown::ShutdownSignal;

/// Bytes reserved for each read.
const READ_CHUNK: usize = 16 * 1024;

/// Replies (and pub/sub messages) that may wait in a connection's queue;
/// a client pipelining more than this is not read from until some were
/// sent.
pub(crate) const QUEUE_DEPTH: usize = 4096;

/// A reply that will resolve later.
pub(crate) type PendingReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// One entry of a connection's outgoing queue.
pub(crate) enum Outgoing {
    /// Encoded bytes, ready to send.
    Bytes(Vec<u8>),
    /// The reply of a job queued on the writer; it counts as an
    /// uncommitted write of this client until it resolves.
    Pending {
        /// Resolves to the reply.
        reply: PendingReply,
        /// The protocol to encode it in.
        protocol: Protocol,
        /// The command, for its failure counter.
        spec: &'static CommandSpec,
    },
    /// Send everything before it, then close.
    Close,
}

/// Serves one client until it disconnects, sends a malformed request, is
/// killed, or shutdown fires.
///
/// Shutdown is only checked while waiting for input: commands already read
/// are always answered.
pub(super) async fn serve(
    stream: TcpStream,
    server: Arc<Server>,
    mut shutdown: ShutdownSignal,
) -> io::Result<()> {
    let _connected = ConnectedGauge::increment();
    // Replies are written whole; Nagle would only delay them.
    stream.set_nodelay(true)?;
    let (addr, laddr) = (stream.peer_addr()?, stream.local_addr()?);
    let (mut read_half, write_half) = stream.into_split();
    let client = server.clients.register(addr, laddr);
    let (out, queue) = mpsc::channel(QUEUE_DEPTH);
    let committed = Arc::new(AtomicU64::new(0));
    let sender = tokio::spawn(send_replies(
        write_half,
        queue,
        Arc::clone(&committed),
        Arc::clone(&server),
    ));
    let mut session = Session::new(Arc::clone(&server), Arc::clone(&client), out, committed);

    let mut input = Vec::with_capacity(READ_CHUNK);
    let result = async {
        // Created once, not per request: each creation registers a waiter
        // with a Notify (a lock), and each drop takes it out again.
        let shutdown = shutdown.wait();
        let killed = client.killed();
        tokio::pin!(shutdown, killed);
        loop {
            input.reserve(READ_CHUNK);
            // A blocked client's next requests wait (as in Redis), but its
            // socket is still read: a disconnect cancels the wait, which
            // dropping `blocked` does.
            let mut blocked = session.take_blocked();
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                _ = &mut killed => return Ok(()),
                reply = async { blocked.as_mut().expect("checked").await }, if blocked.is_some() => {
                    blocked = None;
                    session.reply(reply).await;
                }
                read = read_half.read_buf(&mut input) => {
                    if read? == 0 {
                        return Ok(());
                    }
                }
            }
            if let Some(still) = blocked {
                session.keep_blocked(still);
            } else if run_complete_requests(&mut session, &mut input).await == Flow::Close {
                return Ok(());
            }
            let limit = server.config.query_buffer_limit.load(Ordering::Relaxed);
            if input.len() as u64 > limit {
                tracing::warn!(
                    client = client.id,
                    "closing a client that reached client-query-buffer-limit"
                );
                return Ok(());
            }
        }
    }
    .await;
    // Dropping the session closes the queue: the sender task drains it.
    drop(session);
    server.clients.unregister(client.id);
    match sender.await {
        Ok(sent) => result.and(sent),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// Runs every complete request at the start of `input` and removes them.
async fn run_complete_requests(session: &mut Session, input: &mut Vec<u8>) -> Flow {
    let mut used = 0;
    let flow = loop {
        let limits = session.limits();
        let request = resp::check(&input[used..], limits).and_then(|len| {
            len.map(|len| resp::parse(&input[used..used + len], limits).map(|argv| (argv, len)))
                .transpose()
        });
        match request {
            Ok(Some((argv, len))) => {
                used += len;
                if !argv.is_empty() && session.handle(argv).await == Flow::Close {
                    break Flow::Close;
                }
                if session.is_blocked() {
                    break Flow::Continue;
                }
            }
            Ok(None) => break Flow::Continue,
            Err(e) => {
                tracing::debug!(error = %e, "closing a connection after a protocol error");
                let mut out = Vec::new();
                e.encode(&mut out);
                session.send(Outgoing::Bytes(out)).await;
                session.send(Outgoing::Close).await;
                break Flow::Close;
            }
        }
    };
    session.end_pipeline();
    input.drain(..used);
    flow
}

/// Sends the queue's replies in order until it closes or says `Close`.
async fn send_replies(
    mut socket: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Outgoing>,
    committed: Arc<AtomicU64>,
    server: Arc<Server>,
) -> io::Result<()> {
    let mut out = Vec::new();
    let mut yielded = false;
    loop {
        let item = match queue.try_recv() {
            Ok(item) => item,
            Err(_) => {
                if !out.is_empty() {
                    // Let the runtime finish its turn first (Redis writes
                    // replies just before its event loop sleeps): the
                    // replies to all connections then leave in one burst.
                    // Sent one connection at a time, each reply found a
                    // client asleep and paid for waking it; GET with
                    // 16-command pipelines went from 218-245k to 298-318k
                    // requests/s, and a lone write's latency is unchanged.
                    if !yielded {
                        yielded = true;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    yielded = false;
                    socket.write_all(&out).await?;
                    out.clear();
                }
                match queue.recv().await {
                    Some(item) => item,
                    None => break,
                }
            }
        };
        match item {
            Outgoing::Bytes(bytes) => out.extend_from_slice(&bytes),
            Outgoing::Pending {
                mut reply,
                protocol,
                spec,
            } => {
                // Replies already resolved join the batch; only a reply
                // that must really wait flushes what is ready before it.
                let reply =
                    match std::future::poll_fn(|cx| Poll::Ready(reply.as_mut().poll(cx))).await {
                        Poll::Ready(reply) => reply,
                        Poll::Pending => {
                            if !out.is_empty() {
                                socket.write_all(&out).await?;
                                out.clear();
                            }
                            reply.await
                        }
                    };
                committed.fetch_add(1, Ordering::Release);
                if reply.is_error() {
                    server.stats.of(spec).failed.fetch_add(1, Ordering::Relaxed);
                }
                reply.encode(protocol, &mut out);
            }
            Outgoing::Close => break,
        }
    }
    socket.write_all(&out).await?;
    socket.shutdown().await
}

/// Counts the connection in `keyferry_connected_clients` while it lives.
struct ConnectedGauge;

impl ConnectedGauge {
    fn increment() -> Self {
        metrics::gauge!("keyferry_connected_clients").increment(1.0);
        Self
    }
}

impl Drop for ConnectedGauge {
    fn drop(&mut self) {
        metrics::gauge!("keyferry_connected_clients").decrement(1.0);
    }
}

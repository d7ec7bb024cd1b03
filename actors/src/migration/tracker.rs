//! The keyspace tracker actor: turns the source's keyspace notifications
//! into dirty / deleted marks in the run's registry.
//!
//! A reader task owns the pub/sub connection and forwards every
//! notification to the actor; the actor classifies it (see
//! [`super::classify`]) and commits marks in batches, so one transaction
//! carries thousands of events. Notifications are not a durable log, so
//! every way of missing some is turned into a `SweepRequired` event rather
//! than silence:
//! - the connection dropped (or could not be made): reconnect with
//!   exponential backoff, record a warning and require a sweep;
//! - our own backlog overflowed: drop, record, require a sweep;
//! - `FLUSHDB`/`FLUSHALL`/`SWAPDB` ran on the source (they emit no per-key
//!   event): seen as growing call counters in `INFO commandstats`;
//! - the source restarted (a new `run_id`): the data may differ wholesale;
//! - the tracker itself restarted mid-run.
//!
//! A *fence* (for the cutover) sends `PING` on the subscribed connection
//! and waits for its reply: Redis answers in order, so every notification
//! emitted before the PING has arrived by then, and is committed before
//! the fence resolves. `PUBLISH` would not do: `CLIENT PAUSE WRITE` blocks
//! it, while PING passes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use keyferry_journal::{Event, Seq, Severity};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use redis::aio::{MultiplexedConnection, PubSub};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use super::{MigrationError, Run, classify, mark_event};
use crate::source::info::{self, Channels};
use crate::supervisor::ChildSpec;

/// The child's name in logs, journal events and metric labels.
pub const NAME: &str = "keyspace_tracker";

/// Marks buffered before a commit is forced.
const FLUSH_AT: usize = 4096;
/// How often buffered marks are committed when fewer arrive.
const TICK: Duration = Duration::from_millis(20);
/// How often `INFO` is polled for flushes and source restarts.
const INFO_EVERY: Duration = Duration::from_secs(1);
/// How often the run's row is read for a stop request.
const STOP_POLL_EVERY: Duration = Duration::from_millis(250);
/// Notifications forwarded but not yet handled before the tracker calls
/// its backlog overflowed.
const MAX_BACKLOG: usize = 1_000_000;
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the tracker needs to run.
#[derive(Clone)]
pub struct TrackerConfig {
    /// The run.
    pub run: Run,
    /// Keyevent or keyspace channels.
    pub channels: Channels,
    /// Fence requests (see the module docs); shared by every incarnation
    /// of the actor, so a fence asked for across a restart still resolves.
    pub fences: Arc<Mutex<mpsc::UnboundedReceiver<Fence>>>,
    /// Set to `true` when the tracker stops because it was asked to.
    pub stopped: Arc<watch::Sender<bool>>,
}

/// A fence request: resolves with the journal sequence number up to which
/// every notification sent before the fence is committed.
pub struct Fence {
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Seq, String>>,
}

/// Checks that the source's notifications cover what the tracker needs,
/// and turns on what is missing when `enable` is given (recording the old
/// setting, so it is restored when the tracker stops, even by another
/// process after a crash).
pub async fn prepare(run: &Run, channels: Channels, enable: bool) -> Result<(), MigrationError> {
    let mut conn = run.source.connect(0).await?;
    let current = info::notify_flags(&mut conn)
        .await
        .map_err(|e| run.source.command_error(e))?
        .ok_or(MigrationError::ConfigRefused)?;
    let coverage = info::notification_coverage(&current, channels);
    if !coverage.missing.is_empty() && !enable {
        return Err(MigrationError::NotificationsOff {
            current,
            missing: coverage.missing,
        });
    }
    // The tracker usually starts first (the seed's workflow): record the
    // run's start so `status` shows its source and destination at once —
    // only once the tracker can work, so a refusal leaves no run behind.
    if run.row()?.is_none() {
        run.record(vec![Event::RunStarted {
            run_id: run.id.clone(),
            source: run.source.without_password(),
            destination: run.store.path().display().to_string(),
        }])
        .await?;
    }
    if coverage.missing.is_empty() {
        return Ok(());
    }
    let applied = info::flags_to_enable(&current, channels);
    // Recorded before it is changed: a crash in between leaves at worst a
    // restore of the value that is already there.
    run.record(vec![Event::NotificationsChanged {
        run_id: run.id.clone(),
        previous: current,
        applied: applied.clone(),
    }])
    .await?;
    info::set_notify_flags(&mut conn, &applied)
        .await
        .map_err(|e| run.source.command_error(e))?;
    Ok(())
}

/// Puts back the source's `notify-keyspace-events` if this run changed it.
/// Idempotent: safe to call from `tracker stop`, `migrate`, or a restarted
/// tracker.
pub async fn restore_notifications(run: &Run) -> Result<(), MigrationError> {
    let Some(previous) = run.row()?.and_then(|row| row.notify_previous) else {
        return Ok(());
    };
    let mut conn = run.source.connect(0).await?;
    info::set_notify_flags(&mut conn, &previous)
        .await
        .map_err(|e| run.source.command_error(e))?;
    run.record(vec![Event::NotificationsRestored {
        run_id: run.id.clone(),
    }])
    .await
    .map(drop)
}

/// The supervisor's child spec for a tracker.
pub fn child_spec(config: TrackerConfig) -> ChildSpec {
    // Shared by every incarnation, so a stop asked of one that then failed
    // is still seen by the one the supervisor starts next.
    let started_seq = Arc::new(OnceLock::new());
    ChildSpec::new(NAME, move |spawner| {
        let arguments = (config.clone(), Arc::clone(&started_seq));
        async move { spawner.spawn(Tracker, arguments).await }
    })
}

/// A message to the tracker.
pub enum Msg {
    /// A notification arrived.
    Notification {
        /// Database it came from.
        db: u32,
        /// The key.
        key: Vec<u8>,
        /// The event name.
        event: Vec<u8>,
    },
    /// The reader passed a fence: commit, then answer.
    Fenced(Fence),
    /// The reader's connection ended.
    Disconnected(String),
    /// The backlog overflowed; notifications were dropped.
    Overflowed,
    /// Try to (re)connect.
    Connect,
    /// Periodic: commit, poll INFO and stop requests.
    Tick,
}

/// The tracker actor.
pub struct Tracker;

/// Its state.
pub struct State {
    config: TrackerConfig,
    buffer: Vec<Event>,
    reader: Option<tokio::task::JoinHandle<()>>,
    backlog: Arc<AtomicUsize>,
    backoff: Duration,
    /// The journal's last seq when the first incarnation started: a stop
    /// request after it is for us, whichever incarnation it was asked of.
    started_seq: Seq,
    /// Command connection for INFO.
    info_conn: Option<MultiplexedConnection>,
    /// Source state to compare INFO against.
    marks: Option<SourceMarks>,
    info_polled: Instant,
    stop_polled: Instant,
}

/// What INFO said last time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceMarks {
    run_id: String,
    flushes: u64,
}

impl Actor for Tracker {
    type Msg = Msg;
    type State = State;
    type Arguments = (TrackerConfig, Arc<OnceLock<Seq>>);

    async fn pre_start(
        &self,
        myself: ActorRef<Msg>,
        (config, first_started_seq): Self::Arguments,
    ) -> Result<State, ActorProcessingErr> {
        let run = &config.run;
        // Stop requests count from the first incarnation's start.
        let started_seq = match first_started_seq.get() {
            Some(&seq) => seq,
            None => {
                let seq = run.last_seq()?;
                *first_started_seq.get_or_init(|| seq)
            }
        };
        // A tracker that starts after the run has begun (a restart after a
        // crash, or started late) cannot know what it missed.
        if let Some(row) = run.row()?
            && (row.tracker_connected || row.batches > 0 || row.counters.scanned_keys > 0)
        {
            require_sweep(run, "the tracker (re)started after the run began").await?;
        }
        myself.send_message(Msg::Connect)?;
        myself.send_interval(TICK, || Msg::Tick);
        Ok(State {
            config,
            buffer: Vec::with_capacity(FLUSH_AT),
            reader: None,
            backlog: Arc::new(AtomicUsize::new(0)),
            backoff: BACKOFF_MIN,
            started_seq,
            info_conn: None,
            marks: None,
            info_polled: Instant::now(),
            stop_polled: Instant::now(),
        })
    }

    async fn post_stop(
        &self,
        _: ActorRef<Msg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(reader) = state.reader.take() {
            reader.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Msg>,
        msg: Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Notification { db, key, event } => {
                state.backlog.fetch_sub(1, Ordering::Relaxed);
                let mark = classify(&event);
                let event = String::from_utf8_lossy(&event).into_owned();
                metrics::counter!("keyferry_tracker_events_total").increment(1);
                state
                    .buffer
                    .push(mark_event(&state.config.run.id, db, key, event, mark));
                if state.buffer.len() >= FLUSH_AT {
                    state.flush().await?;
                }
            }
            Msg::Fenced(fence) => {
                let result = state.flush().await.map_err(|e| e.to_string());
                let result = match result {
                    Ok(()) => state.config.run.last_seq().map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                let _ = fence.reply.send(result);
            }
            Msg::Disconnected(reason) => {
                state.flush().await?;
                state.reader = None;
                state.disconnected(&reason).await?;
                myself.send_after(state.backoff, || Msg::Connect);
                state.backoff = (state.backoff * 2).min(BACKOFF_MAX);
            }
            Msg::Overflowed => {
                state.flush().await?;
                let run = &state.config.run;
                run.record_error(
                    NAME,
                    Severity::Warning,
                    format!(
                        "more than {MAX_BACKLOG} notifications were waiting: some were dropped"
                    ),
                    None,
                )
                .await?;
                require_sweep(run, "the tracker's backlog overflowed").await?;
            }
            Msg::Connect => {
                if state.reader.is_none() {
                    match state.connect(&myself).await {
                        Ok(()) => state.backoff = BACKOFF_MIN,
                        Err(e) => {
                            state.disconnected(&e.to_string()).await?;
                            myself.send_after(state.backoff, || Msg::Connect);
                            state.backoff = (state.backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                }
            }
            Msg::Tick => {
                state.flush().await?;
                if state.info_polled.elapsed() >= INFO_EVERY {
                    state.info_polled = Instant::now();
                    state.poll_info().await?;
                }
                if state.stop_polled.elapsed() >= STOP_POLL_EVERY {
                    state.stop_polled = Instant::now();
                    if state.stop_requested()? {
                        state.flush().await?;
                        state.stop().await?;
                        state.config.stopped.send_replace(true);
                        myself.stop(Some("stop requested".into()));
                    }
                }
            }
        }
        Ok(())
    }
}

impl State {
    /// Commits the buffered marks.
    async fn flush(&mut self) -> Result<(), MigrationError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let events = std::mem::replace(&mut self.buffer, Vec::with_capacity(FLUSH_AT));
        let count = events.len() as u64;
        self.config.run.record(events).await?;
        metrics::counter!("keyferry_dirty_keys_seen_total").increment(count);
        Ok(())
    }

    /// Connects, subscribes and starts the reader task.
    async fn connect(&mut self, myself: &ActorRef<Msg>) -> Result<(), MigrationError> {
        let run = &self.config.run;
        let mut pubsub: PubSub = run.source.pubsub().await?;
        let pattern = match self.config.channels {
            Channels::Keyevent => "__keyevent@*__:*",
            Channels::Keyspace => "__keyspace@*__:*",
        };
        pubsub
            .psubscribe(pattern)
            .await
            .map_err(|e| run.source.command_error(e))?;
        let mut conn = run.source.connect(0).await?;
        let marks = source_marks(&mut conn)
            .await
            .map_err(|e| run.source.command_error(e))?;
        // Compared with the marks from before the gap: a flush or restart
        // that happened while we were away is caught here.
        if let Some(old) = &self.marks {
            note_source_changes(run, old, &marks).await?;
        }
        self.marks = Some(marks.clone());
        self.info_conn = Some(conn);
        self.backlog.store(0, Ordering::Relaxed);
        self.reader = Some(tokio::spawn(read_notifications(
            pubsub,
            myself.clone(),
            self.config.channels,
            Arc::clone(&self.config.fences),
            Arc::clone(&self.backlog),
        )));
        metrics::gauge!("keyferry_tracker_connected").set(1.0);
        run.record(vec![Event::TrackerState {
            run_id: run.id.clone(),
            connected: true,
            source_run_id: marks.run_id,
        }])
        .await?;
        tracing::info!(run = %run.id, source = %run.source.redacted(), "tracker subscribed");
        Ok(())
    }

    /// Records a lost or failed connection: a warning, and a sweep.
    async fn disconnected(&mut self, reason: &str) -> Result<(), MigrationError> {
        let run = &self.config.run;
        self.info_conn = None;
        metrics::gauge!("keyferry_tracker_connected").set(0.0);
        metrics::counter!("keyferry_tracker_reconnects_total").increment(1);
        run.record(vec![Event::TrackerState {
            run_id: run.id.clone(),
            connected: false,
            source_run_id: String::new(),
        }])
        .await?;
        run.record_error(
            NAME,
            Severity::Warning,
            format!(
                "tracker disconnected from the source ({reason}); reconnecting, a sweep is required"
            ),
            None,
        )
        .await?;
        require_sweep(run, "the tracker was disconnected").await
    }

    /// Polls INFO for flushes and restarts.
    async fn poll_info(&mut self) -> Result<(), MigrationError> {
        let Some(conn) = self.info_conn.as_mut() else {
            return Ok(());
        };
        // A failed poll is not a disconnect of the subscription: the next
        // reconnect (or the next poll) catches up.
        let Ok(marks) = source_marks(conn).await else {
            return Ok(());
        };
        if let Some(old) = self.marks.replace(marks.clone()) {
            note_source_changes(&self.config.run, &old, &marks).await?;
        }
        Ok(())
    }

    /// Whether someone ran `tracker stop` (or aborted the run) since the
    /// first incarnation of this tracker started.
    fn stop_requested(&self) -> Result<bool, MigrationError> {
        Ok(self.config.run.row()?.is_some_and(|row| {
            row.tracker_stop_seq
                .is_some_and(|seq| seq > self.started_seq)
                || matches!(row.status, keyferry_journal::RunStatus::Aborted)
        }))
    }

    /// A clean stop: restores notifications and records the tracker gone.
    ///
    /// A source that cannot be reached does not keep the tracker running:
    /// failing here would only restart it under the supervisor, to fail
    /// the same way until the restart limit gives up. The setting left on
    /// the source is recorded as a warning instead.
    async fn stop(&mut self) -> Result<(), MigrationError> {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        let run = &self.config.run;
        if let Err(e) = restore_notifications(run).await {
            run.record_error(
                NAME,
                Severity::Warning,
                format!(
                    "stopped without restoring notify-keyspace-events on the source \
                     (restore it by hand): {e}"
                ),
                None,
            )
            .await?;
        }
        metrics::gauge!("keyferry_tracker_connected").set(0.0);
        run.record(vec![Event::TrackerState {
            run_id: run.id.clone(),
            connected: false,
            source_run_id: String::new(),
        }])
        .await
        .map(drop)
    }
}

/// Records that the run needs a safety sweep.
async fn require_sweep(run: &Run, reason: &str) -> Result<(), MigrationError> {
    run.record(vec![Event::SweepRequired {
        run_id: run.id.clone(),
        reason: reason.to_string(),
    }])
    .await
    .map(drop)
}

/// The source's run id and its count of whole-database writes.
async fn source_marks(conn: &mut MultiplexedConnection) -> redis::RedisResult<SourceMarks> {
    let server = info::info(conn, "server").await?;
    let stats = info::info(conn, "commandstats").await?;
    Ok(SourceMarks {
        run_id: server.run_id().unwrap_or_default().to_string(),
        flushes: ["flushdb", "flushall", "swapdb"]
            .iter()
            .map(|name| stats.command_calls(name))
            .sum(),
    })
}

/// Requires a sweep when the source flushed/swapped a database or
/// restarted between two looks at it.
async fn note_source_changes(
    run: &Run,
    old: &SourceMarks,
    new: &SourceMarks,
) -> Result<(), MigrationError> {
    if old.run_id != new.run_id {
        run.record_error(
            NAME,
            Severity::Warning,
            "the source restarted (new run_id): a sweep is required".to_string(),
            None,
        )
        .await?;
        require_sweep(run, "the source restarted").await?;
    } else if new.flushes > old.flushes {
        run.record_error(
            NAME,
            Severity::Warning,
            "FLUSHDB, FLUSHALL or SWAPDB ran on the source (no per-key events): a sweep is required"
                .to_string(),
            None,
        )
        .await?;
        require_sweep(run, "FLUSHDB/FLUSHALL/SWAPDB on the source").await?;
    }
    Ok(())
}

/// The reader task: forwards notifications, and passes fences.
async fn read_notifications(
    pubsub: PubSub,
    tracker: ActorRef<Msg>,
    channels: Channels,
    fences: Arc<Mutex<mpsc::UnboundedReceiver<Fence>>>,
    backlog: Arc<AtomicUsize>,
) {
    let (mut sink, mut stream) = pubsub.split();
    let mut fences = fences.lock().await;
    let mut overflowed = false;
    let mut forward = |msg: redis::Msg| {
        let Some((db, key, event)) = parse_notification(&msg, channels) else {
            return;
        };
        let waiting = backlog.load(Ordering::Relaxed);
        if waiting >= MAX_BACKLOG {
            if !overflowed {
                overflowed = true;
                let _ = tracker.send_message(Msg::Overflowed);
            }
            return;
        }
        if overflowed && waiting < MAX_BACKLOG / 2 {
            overflowed = false;
        }
        backlog.fetch_add(1, Ordering::Relaxed);
        let _ = tracker.send_message(Msg::Notification { db, key, event });
    };
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => forward(msg),
                None => {
                    let _ = tracker.send_message(Msg::Disconnected("the subscription connection closed".into()));
                    return;
                }
            },
            Some(fence) = fences.recv() => {
                if let Err(e) = sink.ping::<redis::Value>().await {
                    let _ = fence.reply.send(Err(format!("fence PING failed: {e}")));
                    let _ = tracker.send_message(Msg::Disconnected(e.to_string()));
                    return;
                }
                // Everything sent before the PONG is queued by now.
                while let Some(Some(msg)) = stream.next().now_or_never() {
                    forward(msg);
                }
                let _ = tracker.send_message(Msg::Fenced(fence));
            }
        }
    }
}

/// Splits a notification into (db, key, event). `None` for anything that
/// is not a keyspace/keyevent message.
fn parse_notification(msg: &redis::Msg, channels: Channels) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let channel: Vec<u8> = msg.get_channel().ok()?;
    let payload = msg.get_payload_bytes().to_vec();
    let prefix: &[u8] = match channels {
        Channels::Keyevent => b"__keyevent@",
        Channels::Keyspace => b"__keyspace@",
    };
    let rest = channel.strip_prefix(prefix)?;
    let sep = rest.windows(3).position(|w| w == b"__:")?;
    let db = std::str::from_utf8(&rest[..sep]).ok()?.parse().ok()?;
    let tail = rest[sep + 3..].to_vec();
    Some(match channels {
        Channels::Keyevent => (db, payload, tail),
        Channels::Keyspace => (db, tail, payload),
    })
}

#[cfg(test)]
mod tests;

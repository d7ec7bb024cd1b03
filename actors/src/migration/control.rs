//! How a running step is steered: its throttles, and the pause / resume /
//! abort an operator sends with `keyferry control` or the embedding API —
//! possibly from another process, which is why both are read from the
//! run's row in the destination file rather than passed as messages.
//!
//! [`control`] is the one place that decides what such a request does to a
//! run. It checks the run's state and appends the event in one write
//! transaction, so two operators (or an operator and a finishing step)
//! cannot interleave: an aborted run, for instance, can never be resumed by
//! a `resume` that read its state just before the abort committed.
//!
//! | request  | running      | paused      | failed       | aborted     | completed |
//! |----------|--------------|-------------|--------------|-------------|-----------|
//! | pause    | paused       | (unchanged) | refused      | refused     | refused   |
//! | resume   | (unchanged)  | running     | refused      | refused     | refused   |
//! | abort    | aborted      | aborted     | aborted      | (unchanged) | refused   |
//! | set      | throttles    | throttles   | throttles    | refused     | refused   |
//!
//! A failed run is restarted by its step (e.g. `keyferry bulk --resume`),
//! not by `resume`, which would only claim it runs. "Unchanged" records
//! nothing. A throttle of 0 is refused whatever the state: it would stall
//! the step rather than slow it.

use std::time::{Duration, Instant};

use keyferry_engine::{Store, Write};
use keyferry_journal::registry::{self, RunRow, Throttles};
use keyferry_journal::{Event, RunStatus};

use super::{MigrationError, Run};

/// How often a step re-reads its run's row. Short enough that `pause`
/// takes effect within a blink, long enough to cost nothing.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// What happens to source TTLs on import. Serialized as `preserve` or
/// `drop` (in step job payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtlMode {
    /// Keys keep their remaining time to live.
    #[default]
    Preserve,
    /// Keys are imported without an expiry.
    Drop,
}

/// The throttles of the bulk scanner and the dirty applier.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Keys asked for per `SCAN` call.
    pub scan_count: u32,
    /// Pages (bulk) or batches (applier) read from the source at once.
    pub max_concurrency: u32,
    /// Most source commands per second; `None` = unlimited.
    pub max_rps: Option<u32>,
    /// Most keys per destination transaction.
    pub batch_keys: u32,
    /// Most bytes of keys and values per destination transaction.
    pub batch_bytes: u64,
    /// TTL handling.
    pub ttl_mode: TtlMode,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scan_count: 1000,
            max_concurrency: 4,
            max_rps: None,
            // One transaction per window of 4 pages: a commit's cost is in
            // the index pages it dirties, which grows much slower than the
            // keys in it (see README, Benchmarks). The applier reads this
            // many pending keys per batch: `cargo bench --bench
            // migrate_bulk -- 200000 1` applied 85k keys/s with 5000, 103k
            // with 10000 (preflight's largest recommendation too).
            batch_keys: 10_000,
            batch_bytes: 64 << 20,
            ttl_mode: TtlMode::Preserve,
        }
    }
}

impl Settings {
    /// These settings with the throttles recorded on the run (by the
    /// step's flags or `control set`) laid over them.
    pub fn with_run(&self, row: &RunRow) -> Settings {
        Settings {
            scan_count: row.throttles.scan_count.unwrap_or(self.scan_count),
            max_concurrency: row
                .throttles
                .max_concurrency
                .unwrap_or(self.max_concurrency),
            max_rps: row.throttles.max_rps.or(self.max_rps),
            batch_keys: row.throttles.batch_keys.unwrap_or(self.batch_keys),
            batch_bytes: row.throttles.batch_bytes.unwrap_or(self.batch_bytes),
            ttl_mode: self.ttl_mode,
        }
    }
}

/// The event that records throttles given on a step's command line, so
/// that `status` shows them and a later `control set` overrides them.
pub fn throttles_event(
    run_id: &str,
    scan_count: Option<u32>,
    max_concurrency: Option<u32>,
    max_rps: Option<u32>,
    batch_keys: Option<u32>,
    batch_bytes: Option<u64>,
) -> Option<Event> {
    let any = scan_count.is_some()
        || max_concurrency.is_some()
        || max_rps.is_some()
        || batch_keys.is_some()
        || batch_bytes.is_some();
    any.then(|| Event::ThrottlesChanged {
        run_id: run_id.to_string(),
        max_rps,
        max_concurrency,
        batch_keys,
        batch_bytes,
        scan_count,
    })
}

/// A request to steer a run (the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    /// Pause a running run where it is.
    Pause,
    /// Resume a paused run.
    Resume,
    /// Stop the run for good.
    Abort,
    /// Change the throttles given (`Some`); the others keep their value.
    Set(Throttles),
}

/// What [`control`] did to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Controlled {
    /// The run's status before the request.
    pub was: RunStatus,
    /// What the request did.
    pub verdict: ControlVerdict,
}

/// The outcome of a [`ControlRequest`] on a run in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlVerdict {
    /// The event was appended.
    Recorded,
    /// The run already is where the request would take it; nothing was
    /// appended.
    Unchanged,
    /// The run's state forbids the request, for this reason (nothing was
    /// appended).
    Refused(&'static str),
}

/// Applies `request` to run `run_id` of `store` (the module's table): reads
/// the run's state and appends the event, if any, in one write
/// transaction. `reason` is recorded in a `RunStatusChanged` (who asked).
///
/// Resolves (or [`Write::wait`]s) once committed, to `None` when the file
/// has no such run.
pub fn control(
    store: &Store,
    run_id: &str,
    request: ControlRequest,
    reason: &str,
) -> Write<Option<Controlled>> {
    let run_id = run_id.to_string();
    let reason = reason.to_string();
    store.write(move |tx| {
        let Some(row) = registry::run(tx.conn(), &run_id)? else {
            return Ok(None);
        };
        let verdict = match request.event(&row, reason) {
            Ok(Some(event)) => {
                tx.append_events(std::slice::from_ref(&event))?;
                ControlVerdict::Recorded
            }
            Ok(None) => ControlVerdict::Unchanged,
            Err(why) => ControlVerdict::Refused(why),
        };
        Ok(Some(Controlled {
            was: row.status,
            verdict,
        }))
    })
}

impl ControlRequest {
    /// The event this request records on `row` (`Ok(None)`: unchanged), or
    /// why it is refused.
    fn event(self, row: &RunRow, reason: String) -> Result<Option<Event>, &'static str> {
        use RunStatus::{Aborted, Failed, Paused, Running};
        let status = |status| {
            Ok(Some(Event::RunStatusChanged {
                run_id: row.run_id.clone(),
                status,
                reason: Some(reason),
            }))
        };
        match (self, row.status) {
            (ControlRequest::Pause, Running) => status(Paused),
            (ControlRequest::Pause, Paused)
            | (ControlRequest::Resume, Running)
            | (ControlRequest::Abort, Aborted) => Ok(None),
            (ControlRequest::Pause, _) => Err("only a running run can be paused"),
            (ControlRequest::Resume, Paused) => status(Running),
            (ControlRequest::Resume, Aborted) => Err("an aborted run stays aborted"),
            (ControlRequest::Resume, Failed) => {
                Err("restart its step instead (e.g. keyferry bulk --resume), which resumes the run")
            }
            (ControlRequest::Resume, _) => Err("only a paused run can be resumed"),
            (ControlRequest::Abort, Running | Paused | Failed) => status(Aborted),
            (ControlRequest::Abort, _) => Err("a finished run cannot be aborted"),
            (ControlRequest::Set(throttles), _) if has_zero(&throttles) => {
                Err("a throttle of 0 would stall the run; give at least 1")
            }
            (ControlRequest::Set(throttles), Running | Paused | Failed) => {
                Ok(Some(Event::ThrottlesChanged {
                    run_id: row.run_id.clone(),
                    max_rps: throttles.max_rps,
                    max_concurrency: throttles.max_concurrency,
                    batch_keys: throttles.batch_keys,
                    batch_bytes: throttles.batch_bytes,
                    scan_count: throttles.scan_count,
                }))
            }
            (ControlRequest::Set(_), _) => Err("an ended run has nothing to throttle"),
        }
    }
}

/// Whether any throttle given is 0.
fn has_zero(throttles: &Throttles) -> bool {
    [
        throttles.max_rps,
        throttles.max_concurrency,
        throttles.batch_keys,
        throttles.scan_count,
    ]
    .contains(&Some(0))
        || throttles.batch_bytes == Some(0)
}

/// What a step should do next, according to its run.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    /// Keep working with these settings.
    Work(Settings),
    /// Wait: the run is paused.
    Pause,
    /// Stop: the run was aborted (or otherwise ended).
    Stop(RunStatus),
}

/// Reads a run's row at most every [`POLL_EVERY`] and turns it into a
/// [`Directive`].
pub(crate) struct Control {
    base: Settings,
    current: Directive,
    polled: Option<Instant>,
}

impl Control {
    /// Starts from `base` (the step's defaults and flags).
    pub(crate) fn new(base: Settings) -> Self {
        Control {
            current: Directive::Work(base.clone()),
            base,
            polled: None,
        }
    }

    /// The directive now, re-reading the run's row when the last read is
    /// older than [`POLL_EVERY`].
    pub(crate) fn directive(&mut self, run: &Run) -> Result<Directive, MigrationError> {
        if self.polled.is_none_or(|at| at.elapsed() >= POLL_EVERY) {
            self.polled = Some(Instant::now());
            let row = run.row()?;
            self.current = match row {
                None => Directive::Work(self.base.clone()),
                Some(row) => match row.status {
                    RunStatus::Paused => Directive::Pause,
                    RunStatus::Aborted | RunStatus::Failed => Directive::Stop(row.status),
                    _ => Directive::Work(self.base.with_run(&row)),
                },
            };
        }
        Ok(self.current.clone())
    }

    /// Waits while the run is paused; returns the settings to work with,
    /// or `Aborted` once the run is aborted.
    pub(crate) async fn proceed(&mut self, run: &Run) -> Result<Settings, MigrationError> {
        loop {
            match self.directive(run)? {
                Directive::Work(settings) => return Ok(settings),
                Directive::Pause => tokio::time::sleep(POLL_EVERY).await,
                Directive::Stop(_) => return Err(MigrationError::Aborted(run.id.clone())),
            }
        }
    }
}

/// Spaces source commands so that no more than `max_rps` go out per
/// second, averaged over short bursts (a token bucket one second deep).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// When the next command may go, if the bucket is empty. tokio's clock,
    /// so tests can run it paused.
    next_free: tokio::time::Instant,
}

impl RateLimiter {
    pub(crate) fn new() -> Self {
        RateLimiter {
            next_free: tokio::time::Instant::now(),
        }
    }

    /// Waits until `commands` more commands fit within `max_rps`.
    pub(crate) async fn acquire(&mut self, commands: u64, max_rps: Option<u32>) {
        let Some(rps) = max_rps else {
            return;
        };
        let now = tokio::time::Instant::now();
        // Allow up to one second of burst, no more: idle time is not banked
        // beyond that.
        let floor = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let start = self.next_free.max(floor);
        self.next_free = start + Duration::from_secs_f64(commands as f64 / f64::from(rps.max(1)));
        if self.next_free > now + Duration::from_secs(1) {
            tokio::time::sleep_until(self.next_free - Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: RunStatus) -> RunRow {
        RunRow {
            run_id: "r1".into(),
            source_uri: String::new(),
            destination: String::new(),
            started_at_ms: 0,
            updated_at_ms: 0,
            status,
            status_reason: None,
            scan_db: 0,
            scan_cursor: 0,
            scan_done: false,
            source_run_id: None,
            scan_source_run_id: None,
            counters: Default::default(),
            batches: 0,
            dirty_keys_seen: 0,
            dirty_events: 0,
            dirty_keys_applied: 0,
            dirty_keys_deleted: 0,
            dirty_keys_skipped: 0,
            needs_sweep: false,
            last_sweep_required_seq: None,
            sweep_reason: None,
            throttles: Default::default(),
            tracker_connected: false,
            tracker_stop_seq: None,
            notify_previous: None,
            last_error: None,
            last_checkpoint_seq: None,
            last_checkpoint_at_ms: None,
            last_seq: 1,
        }
    }

    /// The module's table, as `R`ecord / `U`nchanged / `X` refused.
    #[test]
    fn requests_follow_the_table() {
        use RunStatus::{Aborted, Completed, Failed, Paused, Running};
        let set = |max_rps| {
            ControlRequest::Set(Throttles {
                max_rps: Some(max_rps),
                ..Throttles::default()
            })
        };
        let table = [
            (ControlRequest::Pause, "RUXXX"),
            (ControlRequest::Resume, "URXXX"),
            (ControlRequest::Abort, "RRRUX"),
            (set(5), "RRRXX"),
            (set(0), "XXXXX"),
        ];
        for (request, expected) in table {
            let got: String = [Running, Paused, Failed, Aborted, Completed]
                .into_iter()
                .map(|status| match request.event(&row(status), "test".into()) {
                    Ok(Some(_)) => 'R',
                    Ok(None) => 'U',
                    Err(_) => 'X',
                })
                .collect();
            assert_eq!(got, expected, "{request:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_holds_commands_to_max_rps() {
        let mut limiter = RateLimiter::new();
        let start = tokio::time::Instant::now();
        // 1000 rps: the first second's worth goes at once, the next 3000
        // commands take about three more seconds.
        for _ in 0..40 {
            limiter.acquire(100, Some(1000)).await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(2900), "{took:?}");
        assert!(took <= Duration::from_millis(3200), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_max_rps_nothing_waits() {
        let mut limiter = RateLimiter::new();
        let start = tokio::time::Instant::now();
        limiter.acquire(1_000_000, None).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}

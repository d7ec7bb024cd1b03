//! Progress while a step runs: one line every few seconds with counters
//! and rates, redrawn in place on a terminal, appended (a log line) when
//! stderr is a file or a pipe.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use keyferry_actors::migration::Run;
use tokio::task::JoinHandle;

/// How often a line is printed.
const EVERY: Duration = Duration::from_secs(2);

/// Starts printing progress of `run` until the returned task is aborted.
pub fn report(run: Run) -> JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let started = Instant::now();
        let mut last: Option<(Instant, u64, u64)> = None;
        let mut ticks = tokio::time::interval(EVERY);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Ok(Some(row)) = run.row() else { continue };
            let pending = run.pending().unwrap_or(0);
            let now = Instant::now();
            let (keys, bytes) = (row.counters.migrated_keys, row.counters.migrated_bytes);
            let (rate, mb_rate) = match last {
                Some((at, k, b)) => {
                    let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                    (
                        keys.saturating_sub(k) as f64 / secs,
                        bytes.saturating_sub(b) as f64 / secs / 1e6,
                    )
                }
                None => (0.0, 0.0),
            };
            last = Some((now, keys, bytes));
            let line = format!(
                "[{:>5}s] scanned {} migrated {} ({:.0} keys/s, {:.1} MB/s) skipped {} | dirty pending {} applied {} deleted {} | db {} {}",
                started.elapsed().as_secs(),
                row.counters.scanned_keys,
                keys,
                rate,
                mb_rate,
                row.counters.skipped_keys,
                pending,
                row.dirty_keys_applied,
                row.dirty_keys_deleted,
                row.scan_db,
                if row.scan_done { "(scan done)" } else { "" },
            );
            let mut err = std::io::stderr().lock();
            if terminal {
                let _ = write!(err, "\r\x1b[2K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            let _ = err.flush();
        }
    })
}

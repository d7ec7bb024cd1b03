//! Keeping the WAL bounded under steady load.
//!
//! The writer's automatic checkpoints (`wal_autocheckpoint`, inside the
//! commit that crosses the threshold) are `PASSIVE`: they copy what they
//! can without waiting, and the WAL only starts over from its beginning
//! once a checkpoint completed while no reader used it. A server that
//! always has some read in flight could therefore grow the WAL for ever.
//! Every [`INTERVAL`] the server runs a `TRUNCATE` checkpoint from a
//! connection of its own: it waits briefly ([`BUSY_WAIT`]) for readers to
//! move to the latest snapshot, copies the WAL into the database and
//! empties it. If it cannot get there in time it gives up until the next
//! tick; the writer's own checkpoints go on meanwhile.
//!
//! (Turning the writer's checkpoints off and leaving them all to this task
//! was measured: a little more write throughput, but the writer re-took
//! SQLite's write lock faster than this connection could, and the WAL grew
//! to hundreds of megabytes within a `redis-benchmark` run.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyferry_journal::connection::{Durability, open_rw};

use crate::shutdown::ShutdownSignal;

/// How often the WAL is truncated.
const INTERVAL: Duration = Duration::from_secs(10);

/// How long a checkpoint waits for the writer and readers; writes wait on
/// it meanwhile, so it stays short.
const BUSY_WAIT: Duration = Duration::from_millis(100);

/// Truncates the WAL of `db` every [`INTERVAL`] until `signal` fires.
pub(super) async fn run(db: PathBuf, durability: Durability, mut signal: ShutdownSignal) {
    let mut ticks = tokio::time::interval(INTERVAL);
    // The first tick completes at once; nothing to checkpoint yet.
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = signal.wait() => return,
            _ = ticks.tick() => {}
        }
        let path = db.clone();
        match tokio::task::spawn_blocking(move || truncate_wal(&path, durability)).await {
            Ok(Ok(true)) => tracing::debug!("WAL truncated"),
            Ok(Ok(false)) => tracing::debug!("WAL truncation deferred: the database was busy"),
            Ok(Err(e)) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            Err(e) => tracing::error!(error = %e, "WAL checkpoint task failed"),
        }
    }
}

/// Runs `PRAGMA wal_checkpoint(TRUNCATE)` on a connection of its own;
/// returns whether it completed (false: readers or a writer were busy).
fn truncate_wal(db: &Path, durability: Durability) -> Result<bool, String> {
    let conn = open_rw(db, durability).map_err(|e| e.to_string())?;
    conn.busy_timeout(BUSY_WAIT).map_err(|e| e.to_string())?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    Ok(busy == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_the_wal_of_a_database_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let writer = open_rw(&path, Durability::Normal).unwrap();
        // Keep the WAL from being checkpointed and reset by itself.
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE t (v BLOB); INSERT INTO t VALUES (zeroblob(100000));")
            .unwrap();
        let wal = dir.path().join("db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 100_000);
        assert_eq!(truncate_wal(&path, Durability::Normal), Ok(true));
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }
}

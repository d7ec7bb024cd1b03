//! Snapshots: a projection's encoded state, stored with the sequence number
//! it covers and a checksum, so replay can skip the events before it.

use rusqlite::Connection;
use rusqlite::types::FromSqlError;

use crate::append::append_in;
use crate::codec::{checksum, decode_named, encode_named};
use crate::error::SnapshotError;
use crate::event::{Event, Seq};
use crate::projection::Projection;

/// A snapshot encoded on the caller's thread, ready to be stored by the
/// writer (encoding a large state there would delay everyone's commit).
pub(crate) struct Encoded {
    projection: &'static str,
    version: u32,
    covers: Seq,
    state: Vec<u8>,
}

/// Encodes `state`, which covers events up to `covers`.
pub(crate) fn encode<P: Projection>(state: &P, covers: Seq) -> Result<Encoded, SnapshotError> {
    let mut bytes = Vec::new();
    encode_named(&mut bytes, state).map_err(|source| SnapshotError::Encode {
        projection: P::NAME,
        source,
    })?;
    Ok(Encoded {
        projection: P::NAME,
        version: P::VERSION,
        covers,
        state: bytes,
    })
}

/// Checksum of a snapshot row; unlike a journal row's, it includes the
/// sequence number, which the snapshot's meaning depends on.
fn snapshot_checksum(projection: &str, version: u32, covers: Seq, at_ms: i64, state: &[u8]) -> u32 {
    checksum(&[
        projection.as_bytes(),
        &version.to_le_bytes(),
        &covers.to_le_bytes(),
        &at_ms.to_le_bytes(),
        state,
    ])
}

/// Stores `snapshot` and appends a [`Event::SnapshotTaken`] describing it,
/// inside the caller's transaction. Returns the event's sequence number.
pub(crate) fn save_in(conn: &Connection, snapshot: &Encoded) -> Result<Seq, SnapshotError> {
    let Encoded {
        projection,
        version,
        covers,
        state,
    } = snapshot;
    let at_ms = crate::now_ms();
    conn.prepare_cached(
        "INSERT INTO journal_snapshots (projection, version, seq, at_ms, checksum, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        projection,
        version,
        covers,
        at_ms,
        snapshot_checksum(projection, *version, *covers, at_ms, state),
        state
    ])?;
    let taken = Event::SnapshotTaken {
        projection: (*projection).to_owned(),
        covers_seq: *covers,
    };
    let seqs = append_in(conn, &[taken])?;
    Ok(seqs[0])
}

/// Loads the newest snapshot of `P` (of its current version) covering no
/// event after `until`, and the sequence number it covers.
pub(crate) fn load_latest<P: Projection>(
    conn: &Connection,
    until: Seq,
) -> Result<Option<(Seq, P)>, SnapshotError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, checksum, state FROM journal_snapshots
         WHERE projection = ?1 AND version = ?2 AND seq <= ?3
         ORDER BY seq DESC, id DESC LIMIT 1",
    )?;
    let mut rows = stmt.query(rusqlite::params![P::NAME, P::VERSION, until])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let seq: Seq = row.get(0)?;
    let malformed = |source: FromSqlError| SnapshotError::MalformedRow {
        projection: P::NAME,
        seq,
        source,
    };
    let at_ms = row.get_ref(1)?.as_i64().map_err(malformed)?;
    let stored = row.get_ref(2)?.as_i64().map_err(malformed)?;
    let state = row.get_ref(3)?.as_blob().map_err(malformed)?;
    if i64::from(snapshot_checksum(P::NAME, P::VERSION, seq, at_ms, state)) != stored {
        return Err(SnapshotError::ChecksumMismatch {
            projection: P::NAME,
            seq,
        });
    }
    let state = decode_named(state).map_err(|source| SnapshotError::Undecodable {
        projection: P::NAME,
        seq,
        source,
    })?;
    Ok(Some((seq, state)))
}

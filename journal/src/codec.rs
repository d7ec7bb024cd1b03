//! How events and snapshots become bytes, and how those bytes are checked.
//!
//! Values are encoded as MessagePack maps with field *names*
//! (`rmp_serde`'s struct-map mode), never as positional arrays: a
//! reordered field would otherwise decode into its neighbour's slot.
//!
//! The checksum is a CRC-32 over the fields a row's meaning depends on,
//! each prefixed with its length so that moving bytes from one field to the
//! next changes the checksum. The journal's `seq` is deliberately left out:
//! SQLite assigns it after the checksum was computed.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ReadError;
use crate::event::{EVENT_VERSION, Event, Seq};

/// CRC-32 over length-prefixed parts.
pub(crate) fn checksum(parts: &[&[u8]]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    for part in parts {
        crc.update(&(part.len() as u64).to_le_bytes());
        crc.update(part);
    }
    crc.finalize()
}

/// The checksum stored with a journal row: CRC-32 over its kind, event
/// version, timestamp and payload.
pub fn row_checksum(kind: &str, version: u32, at_ms: i64, payload: &[u8]) -> u32 {
    checksum(&[
        kind.as_bytes(),
        &version.to_le_bytes(),
        &at_ms.to_le_bytes(),
        payload,
    ])
}

/// Appends `value`, encoded with named fields, to `buf`. Encoding a batch
/// into one growing buffer avoids an allocation per event.
pub(crate) fn encode_named<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<(), rmp_serde::encode::Error> {
    value.serialize(&mut rmp_serde::Serializer::new(buf).with_struct_map())
}

/// Decodes a value encoded by [`encode_named`].
pub(crate) fn decode_named<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// Checks and decodes one journal row.
///
/// The checksum is verified before decoding, so a flipped bit is reported
/// as corruption rather than as whatever the decoder makes of it.
pub(crate) fn decode_row(
    seq: Seq,
    kind: &str,
    version: i64,
    at_ms: i64,
    stored_checksum: i64,
    payload: &[u8],
) -> Result<Event, ReadError> {
    let Some(known) = u32::try_from(version)
        .ok()
        .filter(|v| (1..=EVENT_VERSION).contains(v))
    else {
        return Err(ReadError::UnknownVersion {
            seq,
            version,
            supported: EVENT_VERSION,
        });
    };
    let computed = row_checksum(kind, known, at_ms, payload);
    if i64::from(computed) != stored_checksum {
        return Err(ReadError::ChecksumMismatch {
            seq,
            stored: stored_checksum,
            computed,
        });
    }
    // Version 1 is the only encoding so far. A later version adds an arm
    // here that upgrades old payloads, so old journals keep replaying.
    decode_named(payload).map_err(|source| ReadError::Undecodable {
        seq,
        kind: kind.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_separates_fields() {
        // Same bytes, split differently between kind and payload.
        assert_ne!(
            row_checksum("ab", 1, 0, b"c"),
            row_checksum("a", 1, 0, b"bc")
        );
    }

    #[test]
    fn unknown_version_is_refused_before_decoding() {
        let err = decode_row(7, "checkpoint", 2, 0, 0, b"").unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::UnknownVersion {
                    seq: 7,
                    version: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
}

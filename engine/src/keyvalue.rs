//! The values a key can hold: Redis's five core data types.

/// The type of a key, as Redis's `TYPE` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A byte string, stored inline in the key's row.
    String,
    /// Field → value pairs.
    Hash,
    /// An ordered sequence of elements.
    List,
    /// Unordered distinct members.
    Set,
    /// Distinct members ordered by a score.
    ZSet,
}

impl KeyKind {
    /// The name `TYPE` answers with.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::String => "string",
            KeyKind::Hash => "hash",
            KeyKind::List => "list",
            KeyKind::Set => "set",
            KeyKind::ZSet => "zset",
        }
    }

    /// The value of the `kind` column. Stored in the file: never renumber.
    pub(crate) fn code(self) -> i64 {
        match self {
            KeyKind::String => 0,
            KeyKind::Hash => 1,
            KeyKind::List => 2,
            KeyKind::Set => 3,
            KeyKind::ZSet => 4,
        }
    }

    /// The kind stored as `code`, if it is one this build knows.
    pub(crate) fn from_code(code: i64) -> Option<Self> {
        [
            KeyKind::String,
            KeyKind::Hash,
            KeyKind::List,
            KeyKind::Set,
            KeyKind::ZSet,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// A hash field and its value.
pub type FieldValue = (Vec<u8>, Vec<u8>);

/// A sorted-set member and its score.
pub type ScoredMember = (Vec<u8>, f64);

/// A whole key's contents (for [`crate::Store::import_key`]) or a chunk of
/// a collection's elements (for [`crate::StagedKey::append`]).
///
/// Duplicates inside a collection behave like the Redis commands that build
/// it: the last value or score of a repeated hash field or zset member wins,
/// and a repeated set member is stored once. (`HSCAN`/`SSCAN`/`ZSCAN` may
/// return an element twice, so importers can pass their pages unfiltered.)
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    /// A string value.
    String(Vec<u8>),
    /// Hash fields and their values.
    Hash(Vec<FieldValue>),
    /// List elements, head first.
    List(Vec<Vec<u8>>),
    /// Set members.
    Set(Vec<Vec<u8>>),
    /// Sorted-set members and their scores (never NaN).
    ZSet(Vec<ScoredMember>),
}

impl KeyValue {
    /// The type of key this value makes.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyValue::String(_) => KeyKind::String,
            KeyValue::Hash(_) => KeyKind::Hash,
            KeyValue::List(_) => KeyKind::List,
            KeyValue::Set(_) => KeyKind::Set,
            KeyValue::ZSet(_) => KeyKind::ZSet,
        }
    }

    /// True for a collection without elements, which Redis never stores:
    /// importing one deletes the key. (An empty string is a real value.)
    pub fn is_empty_collection(&self) -> bool {
        match self {
            KeyValue::String(_) => false,
            KeyValue::Hash(v) => v.is_empty(),
            KeyValue::List(v) | KeyValue::Set(v) => v.is_empty(),
            KeyValue::ZSet(v) => v.is_empty(),
        }
    }
}

/// An end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The head (`LPUSH`, `LPOP`).
    Left,
    /// The tail (`RPUSH`, `RPOP`).
    Right,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_round_trip_and_are_distinct() {
        for kind in [
            KeyKind::String,
            KeyKind::Hash,
            KeyKind::List,
            KeyKind::Set,
            KeyKind::ZSet,
        ] {
            assert_eq!(KeyKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(KeyKind::from_code(99), None);
    }

    #[test]
    fn only_collections_can_be_empty() {
        assert!(!KeyValue::String(Vec::new()).is_empty_collection());
        assert!(KeyValue::Hash(Vec::new()).is_empty_collection());
        assert!(!KeyValue::Set(vec![b"m".to_vec()]).is_empty_collection());
    }
}

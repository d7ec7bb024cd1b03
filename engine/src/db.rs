//! Logical databases: the 16 a client can `SELECT`, and the hidden ones the
//! store uses internally.
//!
//! Every key row carries its database number. Hidden databases are negative
//! so that no client-visible database can ever name them: staging keys
//! (large imports in progress) live in [`STAGING`], and rows whose contents
//! are being freed lazily (like Redis's `UNLINK`) live in [`TRASH`].

use std::fmt;

/// Where keys that are still being imported wait until they are swapped in.
pub(crate) const STAGING: i64 = -1;
/// Where replaced or deleted big keys wait until their elements are reaped.
pub(crate) const TRASH: i64 = -2;

/// A client-visible logical database, `0..16` (Redis's `SELECT` index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Db(u8);

/// A database index outside `0..16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DB index is out of range")]
pub struct InvalidDb(pub i64);

impl Db {
    /// How many logical databases exist, as in a default Redis.
    pub const COUNT: u8 = 16;

    /// Database `index`, if it is in `0..16`.
    pub fn new(index: i64) -> Result<Self, InvalidDb> {
        u8::try_from(index)
            .ok()
            .filter(|i| *i < Self::COUNT)
            .map(Db)
            .ok_or(InvalidDb(index))
    }

    /// All databases, 0 to 15.
    pub fn all() -> impl Iterator<Item = Db> {
        (0..Self::COUNT).map(Db)
    }

    /// The `SELECT` index.
    pub fn index(self) -> u8 {
        self.0
    }

    /// The value stored in the `db` column.
    pub(crate) fn sql(self) -> i64 {
        i64::from(self.0)
    }
}

impl fmt::Display for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "db{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zero_to_fifteen_are_databases() {
        assert_eq!(Db::new(0).map(Db::index), Ok(0));
        assert_eq!(Db::new(15).map(Db::index), Ok(15));
        assert_eq!(Db::new(16), Err(InvalidDb(16)));
        assert_eq!(Db::new(-1), Err(InvalidDb(-1)));
        assert_eq!(Db::all().count(), 16);
    }
}

//! Comparing two databases' projection tables, row by row, in primary-key
//! order, one row of each side in memory at a time.

use std::cmp::Ordering;

use rusqlite::{Connection, Rows};

use super::RebuildError;
use super::cell::Cell;
use super::tables::{PROJECTION_TABLES, Shape, column_list, quoted};

/// One way the stored projections differ from the rebuilt ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The projection table.
    pub table: &'static str,
    /// The row's primary key: each key column's name and value (empty for
    /// [`DifferenceKind::MissingTable`]).
    pub key: Vec<(String, Cell)>,
    /// What differs.
    pub kind: DifferenceKind,
}

/// What a [`Difference`] is.
#[derive(Debug, Clone, PartialEq)]
pub enum DifferenceKind {
    /// The stored database has no such table.
    MissingTable,
    /// The journal produces this row; the stored table lacks it.
    MissingRow,
    /// The stored table has this row; the journal does not produce it.
    ExtraRow,
    /// The row is on both sides; this column's values differ.
    Column {
        /// The column.
        column: String,
        /// Its stored value.
        stored: Cell,
        /// Its value as rebuilt from the journal.
        rebuilt: Cell,
    },
}

/// The outcome of [`compare`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// Tables compared.
    pub tables: usize,
    /// Distinct rows met, on either side.
    pub rows: u64,
    /// The first differences found, in table then primary-key order, at
    /// most as many as asked for.
    pub differences: Vec<Difference>,
    /// Every difference found, including those not kept.
    pub total: u64,
}

impl Comparison {
    /// True when no difference was found.
    pub fn is_clean(&self) -> bool {
        self.total == 0
    }

    fn record(&mut self, keep: usize, difference: Difference) {
        self.total += 1;
        if self.differences.len() < keep {
            self.differences.push(difference);
        }
    }
}

/// Compares every projection table (see
/// [`crate::rebuild::PROJECTION_TABLES`]) of `stored` with its counterpart
/// in `rebuilt`, keeping the first `keep` differences and counting the rest.
///
/// Both tables are read in primary-key order and merged, so memory holds
/// one row per side whatever the tables' size. The columns compared are
/// `rebuilt`'s (the schema of this build). Each side is read in its own
/// statement: run the comparison inside a read transaction on `stored` if
/// other processes may be writing to it.
pub fn compare(
    stored: &Connection,
    rebuilt: &Connection,
    keep: usize,
) -> Result<Comparison, RebuildError> {
    let mut comparison = Comparison::default();
    for &table in PROJECTION_TABLES {
        let shape = Shape::of(rebuilt, table)?.ok_or(RebuildError::UnknownTable(table))?;
        comparison.tables += 1;
        if Shape::of(stored, table)?.is_none() {
            comparison.record(
                keep,
                Difference {
                    table,
                    key: Vec::new(),
                    kind: DifferenceKind::MissingTable,
                },
            );
            continue;
        }
        compare_table(stored, rebuilt, table, &shape, keep, &mut comparison)?;
    }
    Ok(comparison)
}

/// Merges the rows of `table` on both sides in primary-key order.
fn compare_table(
    stored: &Connection,
    rebuilt: &Connection,
    table: &'static str,
    shape: &Shape,
    keep: usize,
    out: &mut Comparison,
) -> Result<(), RebuildError> {
    let columns = shape.key_first();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        column_list(&columns),
        quoted(table),
        column_list(&shape.key)
    );
    let key_len = shape.key.len();
    let mut stored_stmt = stored.prepare(&sql)?;
    let mut rebuilt_stmt = rebuilt.prepare(&sql)?;
    let mut stored_rows = stored_stmt.query([])?;
    let mut rebuilt_rows = rebuilt_stmt.query([])?;
    let mut left = next_row(&mut stored_rows, columns.len())?;
    let mut right = next_row(&mut rebuilt_rows, columns.len())?;
    let difference = |row: &[Cell], kind| Difference {
        table,
        key: columns
            .iter()
            .map(|c| c.to_string())
            .zip(row[..key_len].iter().cloned())
            .collect(),
        kind,
    };
    while let Some(next) = Next::of(left.as_deref(), right.as_deref(), key_len) {
        out.rows += 1;
        let (stored_done, rebuilt_done) = match next {
            Next::Stored(row) => {
                out.record(keep, difference(row, DifferenceKind::ExtraRow));
                (true, false)
            }
            Next::Rebuilt(row) => {
                out.record(keep, difference(row, DifferenceKind::MissingRow));
                (false, true)
            }
            Next::Both(s, r) => {
                for (i, column) in columns.iter().enumerate().skip(key_len) {
                    if s[i] != r[i] {
                        let kind = DifferenceKind::Column {
                            column: column.to_string(),
                            stored: s[i].clone(),
                            rebuilt: r[i].clone(),
                        };
                        out.record(keep, difference(s, kind));
                    }
                }
                (true, true)
            }
        };
        if stored_done {
            left = next_row(&mut stored_rows, columns.len())?;
        }
        if rebuilt_done {
            right = next_row(&mut rebuilt_rows, columns.len())?;
        }
    }
    Ok(())
}

/// The row (or pair of rows with the same key) that comes next in a
/// merge of the two sides.
enum Next<'a> {
    /// A key only the stored side has.
    Stored(&'a [Cell]),
    /// A key only the rebuilt side has.
    Rebuilt(&'a [Cell]),
    /// A key both have.
    Both(&'a [Cell], &'a [Cell]),
}

impl<'a> Next<'a> {
    /// The next of the current rows, whose first `key_len` cells are the
    /// key; `None` when both sides are exhausted.
    fn of(stored: Option<&'a [Cell]>, rebuilt: Option<&'a [Cell]>, key_len: usize) -> Option<Self> {
        match (stored, rebuilt) {
            (None, None) => None,
            (Some(s), None) => Some(Next::Stored(s)),
            (None, Some(r)) => Some(Next::Rebuilt(r)),
            (Some(s), Some(r)) => Some(match compare_keys(&s[..key_len], &r[..key_len]) {
                Ordering::Less => Next::Stored(s),
                Ordering::Greater => Next::Rebuilt(r),
                Ordering::Equal => Next::Both(s, r),
            }),
        }
    }
}

/// The next row of `rows` as cells, `None` at the end.
fn next_row(rows: &mut Rows<'_>, width: usize) -> rusqlite::Result<Option<Vec<Cell>>> {
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    (0..width)
        .map(|i| row.get_ref(i).map(Cell::from))
        .collect::<rusqlite::Result<_>>()
        .map(Some)
}

/// Orders two primary keys column by column, as SQLite sorted them.
fn compare_keys(a: &[Cell], b: &[Cell]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.sql_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

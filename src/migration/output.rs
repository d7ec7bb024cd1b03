//! What `status`, `verify` and `control` share: their error type, opening
//! an existing destination without side effects, and printing — aligned
//! `name: value` lines for a person, one JSON object for a program.

use std::fmt::Display;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use keyferry_actors::source::SourceError;
use keyferry_actors::verify::VerifyError;
use keyferry_engine::{OpenError, Store, StoreConfig, StoreError};
use keyferry_journal::RunStatus;
use serde::Serialize;

use crate::cli::RunArgs;

/// Why `status`, `verify` or `control` failed (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// `--to` names no file: these commands never create one.
    #[error("no such destination file {}", .0.display())]
    NoDestination(PathBuf),
    /// The destination file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// The destination has no such run.
    #[error("no run {run_id} in {}", path.display())]
    UnknownRun {
        /// The run asked for.
        run_id: String,
        /// The destination file.
        path: PathBuf,
    },
    /// Reading or writing the destination failed.
    #[error("destination: {0}")]
    Destination(#[from] StoreError),
    /// `control` was asked for something the run's state forbids.
    #[error("run {run_id} is {}: {why}", status.as_str())]
    Refused {
        /// The run.
        run_id: String,
        /// Its state.
        status: RunStatus,
        /// What cannot be done, and what to do instead.
        why: &'static str,
    },
    /// The source could not be used.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The verification could not be completed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The step job could not run (another process holds it, the lease
    /// was lost, …).
    #[error(transparent)]
    Step(#[from] keyferry_actors::migration::steps::StepError),
    /// `verify` found differences (the report was printed).
    #[error("{0} mismatch(es) between the source and the destination")]
    Mismatches(u64),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The report could not be written to stdout (e.g. a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// The report could not be encoded as JSON.
    #[error("cannot encode the output as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CommandError {
    /// The error for a run that `run`'s destination does not have.
    pub(crate) fn unknown_run(run: &RunArgs) -> Self {
        CommandError::UnknownRun {
            run_id: run.run_id.clone(),
            path: run.to.clone(),
        }
    }
}

/// Opens the destination file `path`, which must exist, for commands that
/// inspect or steer a run. Its active-expiry sweeper stays off: these
/// commands must not change the keyspace of a file a migration is writing.
pub(crate) fn open_destination(path: &Path) -> Result<Store, CommandError> {
    if !path.is_file() {
        return Err(CommandError::NoDestination(path.to_path_buf()));
    }
    let mut config = StoreConfig::default();
    config.sweeper.interval = None;
    Store::open(path, config).map_err(|source| CommandError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Text made of aligned `name: value` lines, each value starting in the
/// same column, optionally followed by indented detail lines.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    rows: Vec<(String, String)>,
    details: Vec<String>,
}

impl Lines {
    /// Adds a `name: value` line.
    pub(crate) fn add(&mut self, name: &str, value: impl Display) {
        self.rows.push((name.to_string(), value.to_string()));
    }

    /// Adds an indented line after all the `name: value` lines.
    pub(crate) fn detail(&mut self, line: impl Display) {
        self.details.push(format!("  {line}"));
    }

    /// Prints the lines to stdout.
    pub(crate) fn print(&self) -> Result<(), CommandError> {
        let mut out = io::stdout().lock();
        out.write_all(self.render().as_bytes())?;
        Ok(out.flush()?)
    }

    fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0)
            + 1;
        let mut text = String::new();
        for (name, value) in &self.rows {
            text.push_str(&format!("{:<width$} {value}\n", format!("{name}:")));
        }
        for line in &self.details {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// Prints `value` as one JSON object on one line.
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), CommandError> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    Ok(out.flush()?)
}

/// `ms` (Unix milliseconds) as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub(crate) fn utc(ms: i64) -> String {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date of a
    // day count, computed in 400-year eras that start on March 1st (so
    // the leap day ends a year).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_gregorian() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59.999 UTC");
    }

    #[test]
    fn lines_align_their_values() {
        let mut lines = Lines::default();
        lines.add("run", "r1");
        lines.add("migrated keys", 3);
        lines.detail("more");
        assert_eq!(
            lines.render(),
            "run:           r1\nmigrated keys: 3\n  more\n"
        );
    }
}

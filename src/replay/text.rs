//! The text form of a [`ReplayReport`]: `name: value` lines with aligned
//! values, then one indented line per run and per difference.

use std::fmt::{Display, Write};

use super::report::{CheckReport, DifferenceReport, ReplayReport, RunReport, WhatDiffers};

/// Renders `report` for a person.
pub(super) fn render(report: &ReplayReport) -> String {
    let mut lines = Lines::default();
    lines.field("journal", &report.db);
    lines.field("events", events(report));
    lines.field("replayed", replayed(report));
    lines.field(
        "started from",
        match report.snapshot_seq {
            Some(seq) => format!("the snapshot at seq {seq}"),
            None => "the first event".to_string(),
        },
    );
    lines.field("applied", format!("{} events", report.events_applied));
    lines.field("snapshots", snapshots(&report.snapshots));
    lines.field(
        "errors",
        format!("{} errors, {} warnings", report.errors, report.warnings),
    );
    lines.field("jobs", counts(report.jobs.iter().map(|(s, n)| (*s, *n))));
    lines.field("restarts", restarts(report));
    lines.field("runs", report.runs.len());
    for run in &report.runs {
        lines.detail(run_line(run));
    }
    if let Some(check) = &report.check {
        lines.field("check", check_line(check));
        for difference in &check.differences {
            lines.detail(difference_line(difference));
        }
        let unshown = check.difference_count - check.differences.len() as u64;
        if unshown > 0 {
            lines.detail(format!("… and {unshown} more"));
        }
    }
    lines.render()
}

/// `name: value` lines, each followed by its indented detail lines.
#[derive(Default)]
struct Lines(Vec<(Option<String>, String)>);

impl Lines {
    fn field(&mut self, name: &str, value: impl Display) {
        self.0.push((Some(format!("{name}:")), value.to_string()));
    }

    fn detail(&mut self, line: String) {
        self.0.push((None, line));
    }

    /// The lines, values aligned one column after the longest name.
    fn render(&self) -> String {
        let width = self
            .0
            .iter()
            .filter_map(|(name, _)| name.as_ref().map(String::len))
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (name, value) in &self.0 {
            // Writing to a String cannot fail.
            let _ = match name {
                Some(name) => writeln!(out, "{name:<width$} {value}"),
                None => writeln!(out, "  {value}"),
            };
        }
        out
    }
}

fn events(report: &ReplayReport) -> String {
    let Some(first) = report.first_seq else {
        return "none (the journal is empty)".to_string();
    };
    let held = format!("seq {first}..={}", report.last_seq);
    match (report.compacted_before, report.earliest_seq) {
        (None, _) => held,
        (Some(_), Some(earliest)) => format!(
            "{held}; the events before {first} were compacted away, so replay can reach back to seq {earliest}"
        ),
        (Some(_), None) => format!(
            "{held}; the events before {first} were compacted away and no snapshot is left to replay from"
        ),
    }
}

fn replayed(report: &ReplayReport) -> String {
    let through = report.replayed_through;
    match report.until {
        Some(until) if through < report.last_seq => format!(
            "through seq {through} (--until {until}: the state a crash right after it leaves; the journal goes on to {})",
            report.last_seq
        ),
        _ => format!("through seq {through} (the last event)"),
    }
}

fn snapshots(seqs: &[i64]) -> String {
    if seqs.is_empty() {
        return "none".to_string();
    }
    let list: Vec<String> = seqs.iter().map(|s| s.to_string()).collect();
    format!("{} (at seq {})", seqs.len(), list.join(", "))
}

/// `name n, name n, …`.
fn counts<'a>(pairs: impl Iterator<Item = (&'a str, u64)>) -> String {
    pairs
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn restarts(report: &ReplayReport) -> String {
    if report.restarts.is_empty() {
        return "none".to_string();
    }
    report
        .restarts
        .iter()
        .map(|(actor, r)| {
            let gave_up = if r.gave_up { ", gave up" } else { "" };
            format!("{actor} {}{gave_up} (last: {})", r.restarts, r.last_reason)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn run_line(run: &RunReport) -> String {
    let mut text = format!(
        "{}: {}; scanned {}, migrated {}, skipped {}, errors {}, {} bytes in {} batches; dirty backlog {}",
        run.run_id,
        run.status,
        run.scanned_keys,
        run.migrated_keys,
        run.skipped_keys,
        run.error_keys,
        run.migrated_bytes,
        run.batches,
        run.dirty_pending,
    );
    if !run.dirty_states.is_empty() {
        let states = counts(run.dirty_states.iter().map(|(s, n)| (s.as_str(), *n)));
        let _ = write!(text, " ({states})");
    }
    let _ = write!(
        text,
        "; {} errors, {} warnings; last event {}",
        run.errors, run.warnings, run.last_seq
    );
    if run.needs_sweep {
        text.push_str("; needs a sweep");
    }
    if run.tracker_connected {
        text.push_str("; tracker connected");
    }
    text
}

fn check_line(check: &CheckReport) -> String {
    let compared = format!("{} tables, {} rows", check.tables, check.rows);
    if check.ok {
        format!("ok: the stored projections equal the rebuilt ones ({compared})")
    } else {
        format!(
            "{} difference(s) between the stored and the rebuilt projections ({compared})",
            check.difference_count
        )
    }
}

fn difference_line(d: &DifferenceReport) -> String {
    let key: Vec<String> = d
        .key
        .iter()
        .map(|(column, value)| format!("{column}={value}"))
        .collect();
    let at = format!("{} {}", d.table, key.join(" "));
    match &d.what {
        WhatDiffers::MissingTable => format!("{}: table missing from the file", d.table),
        WhatDiffers::MissingRow => format!("{at}: row missing from the file"),
        WhatDiffers::ExtraRow => format!("{at}: row in the file that the journal does not produce"),
        WhatDiffers::Column {
            column,
            stored,
            rebuilt,
        } => format!("{at}: {column} is {stored} in the file, {rebuilt} rebuilt"),
    }
}

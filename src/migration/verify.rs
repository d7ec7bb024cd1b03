//! `keyferry verify --run-id ID --from URI --to PATH [--sample PCT]
//! [--json]`: compares the destination of run ID with the source, and
//! exits 1 on any mismatch, after printing the report.
//!
//! `--sample` is the percentage of keys compared; without it every key is
//! (100 %). The work is [`keyferry_actors::verify::verify`]; this command
//! checks that the run exists (a wrong `--to` would otherwise report every
//! key missing), prints the report as aligned text or as one JSON object
//! (the [`VerifyReport`] fields), and turns mismatches into the exit code.
//! Nothing is written to either side.

use keyferry_actors::migration::steps::{self, StepKind, StepOutcome, StepSpec, Worker};
use keyferry_actors::source::Source;
use keyferry_actors::verify::{Finding, VerifyReport};
use keyferry_engine::Store;
use keyferry_journal::registry;

pub use super::output::CommandError;
use super::output::{Lines, open_destination, print_json};
use crate::cli::VerifyArgs;

/// The sample when `--sample` is absent: every key.
const FULL_SAMPLE: f64 = 100.0;

/// Runs `keyferry verify`.
pub fn run(args: VerifyArgs) -> Result<(), CommandError> {
    let source = Source::new(args.source.from, args.source.from_password_file.as_deref())?;
    let store = open_destination(&args.run.to)?;
    if !run_exists(&store, &args.run.run_id)? {
        return Err(CommandError::unknown_run(&args.run));
    }
    // One comparison at a time: a single thread is plenty.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    let sample = args.sample.unwrap_or(FULL_SAMPLE);
    // Verify is the run's `verify` step job, like bulk and apply-dirty: one
    // at a time per run, visible in the job queue. A closed stop channel:
    // only the process's end stops it.
    let mut spec = StepSpec::new(StepKind::Verify, args.run.run_id.clone(), &source);
    spec.sample_percent = sample;
    let outcome = runtime.block_on(steps::run_step(
        &store,
        source,
        spec,
        &Worker::this_process(),
        tokio::sync::watch::channel(false).1,
    ))?;
    let StepOutcome::Verified(report) = outcome else {
        return Err(
            steps::StepError::Refused(format!("the verify step ended with {outcome:?}")).into(),
        );
    };
    if args.json {
        print_json(&report)?;
    } else {
        lines(&report).print()?;
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CommandError::Mismatches(report.mismatches))
    }
}

/// True when the destination has run `run_id`.
fn run_exists(store: &Store, run_id: &str) -> Result<bool, CommandError> {
    Ok(store.read(|view| Ok(registry::run(view.conn(), run_id)?.is_some()))?)
}

/// The text report: the counts, then the example keys of each finding.
fn lines(report: &VerifyReport) -> Lines {
    let mut lines = Lines::default();
    lines.add("sample", format!("{}%", report.sample_percent));
    lines.add("source keys scanned", report.source_keys_scanned);
    lines.add("keys checked", report.checked_keys);
    lines.add("destination keys scanned", report.destination_keys_scanned);
    lines.add("destination keys checked", report.destination_keys_checked);
    lines.add("same", report.same);
    for (name, finding) in findings(report) {
        lines.add(name, finding.count);
    }
    lines.add(
        "result",
        if report.is_clean() {
            "clean".to_string()
        } else {
            format!("{} mismatch(es)", report.mismatches)
        },
    );
    for (name, finding) in findings(report) {
        if finding.examples.is_empty() {
            continue;
        }
        lines.detail(format!(
            "{name} (showing {} of {}):",
            finding.examples.len(),
            finding.count
        ));
        for example in &finding.examples {
            // Example keys come escaped; quoted, they read as in redis-cli.
            let key = format!("db {} \"{}\"", example.db, example.key);
            if example.detail.is_empty() {
                lines.detail(format!("  {key}"));
            } else {
                lines.detail(format!("  {key}: {}", example.detail));
            }
        }
    }
    lines
}

/// The report's findings with their names in the text report.
fn findings(report: &VerifyReport) -> [(&'static str, &Finding); 7] {
    [
        ("missing at destination", &report.missing),
        ("extra at destination", &report.extra),
        ("type mismatches", &report.type_mismatches),
        ("length mismatches", &report.length_mismatches),
        ("ttl mismatches", &report.ttl_mismatches),
        ("value mismatches", &report.value_mismatches),
        ("unsupported (skipped)", &report.unsupported),
    ]
}

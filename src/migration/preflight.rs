//! `keyferry preflight --from URI --to PATH [--json]`: checks a source and
//! a destination before a migration and says what will and will not work.
//!
//! The report goes to stdout, as aligned text or as one JSON object. The
//! command fails (exit 1) when the report lists a blocking problem (the
//! source unreachable or in cluster mode, the destination not writable),
//! after printing it; warnings alone do not fail it.

use keyferry_actors::preflight::{
    PreflightOptions, PreflightReport, TypeSample, human_bytes, preflight,
};
use keyferry_actors::source::Source;

use crate::cli::PreflightArgs;

/// Width of the label column of the text report.
const LABEL_WIDTH: usize = 26;

/// Runs `keyferry preflight`.
pub fn run(args: PreflightArgs) -> Result<(), String> {
    let source = Source::new(args.source.from, args.source.from_password_file.as_deref())
        .map_err(|e| e.to_string())?;
    // Preflight does one thing at a time: one thread is plenty.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let report = runtime
        .block_on(preflight(&source, &args.to, &PreflightOptions::default()))
        .map_err(|e| e.to_string())?;
    if args.json {
        let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print!("{}", render(&report));
    }
    if report.is_blocked() {
        Err(format!("blocked: {}", report.problems.join("; ")))
    } else {
        Ok(())
    }
}

/// The text report: one aligned `label value` line per fact, then the
/// problems, the warnings and a verdict.
fn render(report: &PreflightReport) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{label:<LABEL_WIDTH$}{value}\n"));
    };
    line("source", report.source.clone());
    if report.reachable {
        line(
            "reachable",
            match report.round_trip_ms {
                Some(ms) => format!("yes (round trip {ms:.2} ms)"),
                None => "yes".to_string(),
            },
        );
        line("redis version", or_unknown(report.redis_version.as_deref()));
        line(
            "cluster mode",
            if report.cluster_enabled { "yes" } else { "no" }.to_string(),
        );
        line(
            "CONFIG",
            if report.config_allowed {
                "allowed"
            } else {
                "refused"
            }
            .to_string(),
        );
        line(
            "CLIENT PAUSE WRITE",
            if report.client_pause_write {
                "yes: --cutover auto is available"
            } else {
                "no: --cutover manual only"
            }
            .to_string(),
        );
        line("notify-keyspace-events", notifications(report));
        line(
            "maxmemory policy",
            or_unknown(report.maxmemory_policy.as_deref()),
        );
        line("keys", databases(report));
        sample_lines(report, &mut line);
        line(
            "destination size (est.)",
            report
                .estimated_destination_bytes
                .map_or_else(|| "unknown".to_string(), human_bytes),
        );
        if let Some(seconds) = report.estimated_bulk_seconds {
            line(
                "bulk duration (est.)",
                format!(
                    "{seconds} s at an assumed {} keys/s or {} MB/s",
                    report.assumed_rate.keys_per_second,
                    report.assumed_rate.bytes_per_second / 1_000_000
                ),
            );
        }
        if let Some(r) = &report.recommended {
            line(
                "recommended",
                format!(
                    "--scan-count {} --max-concurrency {} --batch-keys {}",
                    r.scan_count, r.max_concurrency, r.batch_keys
                ),
            );
        }
    } else {
        line("reachable", "no".to_string());
    }
    line("destination", destination(report));

    for (title, items) in [
        ("problems (the migration cannot run):", &report.problems),
        ("warnings:", &report.warnings),
    ] {
        if !items.is_empty() {
            out.push_str(&format!("\n{title}\n"));
            for item in items {
                out.push_str(&format!("  - {item}\n"));
            }
        }
    }
    out.push_str(if report.is_blocked() {
        "\nverdict: blocked\n"
    } else if report.warnings.is_empty() {
        "\nverdict: ready\n"
    } else {
        "\nverdict: ready, with the warnings above\n"
    });
    out
}

/// The sampled types, one line per type seen.
fn sample_lines(report: &PreflightReport, line: &mut impl FnMut(&str, String)) {
    let sample = &report.sample;
    line("sampled keys", sample.keys_sampled.to_string());
    let types = &sample.by_type;
    for (name, entry) in [
        ("string", &types.string),
        ("hash", &types.hash),
        ("list", &types.list),
        ("set", &types.set),
        ("zset", &types.zset),
        ("stream (skipped)", &types.stream),
        ("module types (skipped)", &types.other),
    ] {
        if entry.count > 0 {
            line(&format!("  {name}"), type_sample(entry));
        }
    }
    line(
        "unsupported keys (est.)",
        sample.unsupported_keys_estimated.to_string(),
    );
}

fn type_sample(entry: &TypeSample) -> String {
    match entry.bytes {
        Some(bytes) => format!("{} ({})", entry.count, human_bytes(bytes)),
        None => entry.count.to_string(),
    }
}

fn notifications(report: &PreflightReport) -> String {
    match (
        &report.notify_keyspace_events,
        &report.notifications_missing,
    ) {
        (Some(flags), Some(missing)) if !missing.is_empty() => {
            format!("\"{flags}\": the tracker lacks \"{missing}\"")
        }
        (Some(flags), _) => format!("\"{flags}\": covers the tracker"),
        (None, _) => "unknown (CONFIG refused)".to_string(),
    }
}

fn databases(report: &PreflightReport) -> String {
    if report.databases.is_empty() {
        return "none (the source is empty)".to_string();
    }
    let dbs: Vec<String> = report
        .databases
        .iter()
        .map(|db| format!("db{} {} ({} with TTL)", db.db, db.keys, db.expires))
        .collect();
    format!("{} in all: {}", report.total_keys, dbs.join(", "))
}

fn destination(report: &PreflightReport) -> String {
    let d = &report.destination;
    let mut facts = format!(
        "{}, {}",
        if d.exists { "exists" } else { "new file" },
        if d.writable {
            "writable"
        } else {
            "NOT writable"
        }
    );
    if let Some(free) = d.free_bytes {
        facts.push_str(&format!(", {} free", human_bytes(free)));
    }
    format!("{} ({facts})", d.path)
}

fn or_unknown(value: Option<&str>) -> String {
    value.unwrap_or("unknown").to_string()
}

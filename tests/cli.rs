//! The command-line contract, run against the built binary: every
//! subcommand is listed, every contract flag is accepted, unimplemented
//! subcommands fail clearly (never a panic), and usage errors exit 2.

use std::process::{Command, Output};

fn keyferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyferry"))
        .args(args)
        .output()
        .expect("run keyferry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The subcommands `keyferry --help` lists (the first word of each line of
/// its Commands section).
fn listed_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn help_lists_every_contract_subcommand() {
    let out = keyferry(&["--help"]);
    assert!(out.status.success());
    let listed = listed_subcommands(&text(&out.stdout));
    for expected in [
        "serve",
        "preflight",
        "tracker",
        "bulk",
        "apply-dirty",
        "status",
        "verify",
        "control",
        "migrate",
        "replay",
    ] {
        assert!(
            listed.iter().any(|c| c == expected),
            "{expected} missing from --help: {listed:?}"
        );
    }
    let tracker = listed_subcommands(&text(&keyferry(&["tracker", "--help"]).stdout));
    assert!(
        tracker.starts_with(&["start".into(), "stop".into()]),
        "{tracker:?}"
    );
    let control = listed_subcommands(&text(&keyferry(&["control", "--help"]).stdout));
    assert!(
        control.starts_with(&[
            "pause".into(),
            "resume".into(),
            "abort".into(),
            "set".into()
        ]),
        "{control:?}"
    );
}

/// Every contract line with all its optional flags must parse (exit 1, not
/// clap's 2): run against a source nobody listens on and a destination
/// that does not exist, each fails fast with a message naming its command,
/// never a panic, never the password.
#[test]
fn every_subcommand_accepts_every_contract_flag_and_fails_cleanly_without_a_source() {
    let port = keyferry_testkit::free_port();
    let from = format!("redis://user:pw@127.0.0.1:{port}/0");
    let metrics = format!("127.0.0.1:{}", keyferry_testkit::free_port());
    let (from, metrics) = (from.as_str(), metrics.as_str());
    let dir = tempfile::tempdir().unwrap();
    let throttles = [
        "--scan-count",
        "1000",
        "--max-concurrency",
        "32",
        "--max-rps",
        "2000",
        "--batch-keys",
        "200",
        "--batch-bytes",
        "64MB",
        "--ttl-mode",
        "preserve",
        "--metrics-addr",
        metrics,
    ];
    let run = ["--run-id", "run_1", "--from", from, "--to", "k.db"];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "preflight",
            vec!["preflight", "--from", from, "--to", "k.db", "--json"],
        ),
        (
            "tracker start",
            [
                &["tracker", "start"][..],
                &run,
                &[
                    "--channels",
                    "keyspace",
                    "--enable-notifications",
                    "--metrics-addr",
                    metrics,
                ],
            ]
            .concat(),
        ),
        (
            "tracker stop",
            vec!["tracker", "stop", "--run-id", "run_1", "--to", "k.db"],
        ),
        (
            "bulk",
            [&["bulk"][..], &run, &throttles, &["--resume"]].concat(),
        ),
        (
            "apply-dirty",
            [&["apply-dirty"][..], &run, &throttles].concat(),
        ),
        (
            "status",
            vec!["status", "--run-id", "run_1", "--to", "k.db", "--json"],
        ),
        (
            "verify",
            [&["verify"][..], &run, &["--sample", "5", "--json"]].concat(),
        ),
        (
            "control",
            vec!["control", "--run-id", "run_1", "--to", "k.db", "pause"],
        ),
        (
            "control",
            vec!["control", "--run-id", "run_1", "--to", "k.db", "resume"],
        ),
        (
            "control",
            vec!["control", "--run-id", "run_1", "--to", "k.db", "abort"],
        ),
        (
            "control",
            vec![
                "control",
                "--run-id",
                "run_1",
                "--to",
                "k.db",
                "set",
                "--max-rps",
                "1",
                "--max-concurrency",
                "2",
                "--batch-keys",
                "3",
                "--scan-count",
                "4",
            ],
        ),
        (
            "migrate",
            vec![
                "migrate",
                "--from",
                from,
                "--to",
                "k.db",
                "--run-id",
                "run_1",
                "--cutover",
                "auto",
                "--switch-cmd",
                "true",
                "--metrics-addr",
                metrics,
            ],
        ),
        (
            "replay",
            vec![
                "replay", "--db", "k.db", "--until", "10", "--check", "--json",
            ],
        ),
    ];
    for (name, args) in cases {
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_keyferry"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("run keyferry");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("keyferry {name}: ")),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !stderr.contains(":pw@"),
            "{args:?} leaked the password: {stderr}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["no-such-command"],
        &["serve"],
        &["serve", "--db", "k.db", "--no-such-flag"],
        &["serve", "--db", "k.db", "--durability", "sometimes"],
        &["bulk", "--run-id", "r", "--to", "k.db"],
        &[
            "bulk",
            "--run-id",
            "r",
            "--from",
            "localhost:6379",
            "--to",
            "k.db",
        ],
        &["control", "--run-id", "r", "--to", "k.db", "explode"],
        &[
            "tracker",
            "start",
            "--run-id",
            "r",
            "--from",
            "redis://h",
            "--to",
            "k.db",
            "--channels",
            "all",
        ],
    ];
    for args in cases {
        let out = keyferry(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn serve_reports_a_database_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing/dir/k.db");
    let out = keyferry(&["serve", "--db", db.to_str().unwrap(), "--port", "0"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("keyferry serve: cannot open"), "{stderr}");
}

#[test]
fn a_rejected_source_uri_never_echoes_its_password() {
    let out = keyferry(&[
        "bulk",
        "--run-id",
        "r",
        "--from",
        "http://admin:hunter2@source.example:6379",
        "--to",
        "x.sqlite",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("admin:***@source.example"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

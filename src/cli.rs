//! The command line, exactly as the CLI contract in the product brief names
//! it: other tools drive these subcommands and flags, so a name here never
//! changes without the contract changing first.
//!
//! Everything that can be checked without touching a server or a file is
//! checked here, so a bad invocation fails with clap's usage error (exit
//! code 2) before any work starts.

mod migration;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use migration::{
    ApplyDirtyArgs, BulkArgs, Channels, ControlAction, ControlArgs, Cutover, MigrateArgs,
    PreflightArgs, RunArgs, SetArgs, SourceArgs, StatusArgs, Throttles, TrackerCommand,
    TrackerStartArgs, TrackerStopArgs, TtlMode, VerifyArgs,
};
pub use values::{SourceUri, redact_passwords};

/// keyferry moves a live Redis into SQLite with a write freeze of about a
/// second, then serves that SQLite file over the Redis protocol.
#[derive(Debug, Parser)]
#[command(name = "keyferry", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of the CLI contract.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a SQLite file over the Redis protocol.
    Serve(ServeArgs),
    /// Check that a source Redis and a destination file are ready to migrate.
    Preflight(PreflightArgs),
    /// Record the source's writes as dirty keys, from keyspace notifications.
    #[command(subcommand)]
    Tracker(TrackerCommand),
    /// Copy every key of the source into the destination (resumable).
    Bulk(BulkArgs),
    /// Re-copy the keys written on the source since they were imported.
    ApplyDirty(ApplyDirtyArgs),
    /// Show a migration run's progress.
    Status(StatusArgs),
    /// Compare the destination with the source; exits 1 on any mismatch.
    Verify(VerifyArgs),
    /// Pause, resume, abort or re-tune a running migration.
    Control(ControlArgs),
    /// Run a whole migration: track, bulk copy, apply dirty keys, cut over.
    Migrate(MigrateArgs),
    /// Rebuild state from the journal, optionally checking it.
    Replay(ReplayArgs),
}

impl Command {
    /// The subcommand as typed, e.g. `tracker start`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Serve(_) => "serve",
            Command::Preflight(_) => "preflight",
            Command::Tracker(TrackerCommand::Start(_)) => "tracker start",
            Command::Tracker(TrackerCommand::Stop(_)) => "tracker stop",
            Command::Bulk(_) => "bulk",
            Command::ApplyDirty(_) => "apply-dirty",
            Command::Status(_) => "status",
            Command::Verify(_) => "verify",
            Command::Control(_) => "control",
            Command::Migrate(_) => "migrate",
            Command::Replay(_) => "replay",
        }
    }
}

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DurabilityArg {
    /// Survives a process crash (`synchronous=NORMAL`, like Redis
    /// `appendfsync everysec`).
    #[default]
    Normal,
    /// fsync on every commit (`synchronous=FULL`).
    Full,
}

/// `keyferry serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The SQLite file to serve (created if missing).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Require clients to AUTH with this password (the `default` user).
    #[arg(long, value_name = "PW")]
    pub requirepass: Option<String>,
    /// How hard a commit tries to reach the disk.
    #[arg(long, value_enum, default_value_t)]
    pub durability: DurabilityArg,
}

/// `keyferry replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The SQLite file whose journal to replay.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Stop after the event with this sequence number.
    #[arg(long, value_name = "SEQ", value_parser = clap::value_parser!(i64).range(0..))]
    pub until: Option<i64>,
    /// Compare the rebuilt state with what is stored; exit 1 on a difference.
    #[arg(long)]
    pub check: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_reports_the_name_it_was_typed_as() {
        let cases: &[&[&str]] = &[
            &["serve", "--db", "x"],
            &["preflight", "--from", "redis://h:1", "--to", "x"],
            &[
                "tracker",
                "start",
                "--run-id",
                "r",
                "--from",
                "redis://h:1",
                "--to",
                "x",
            ],
            &["tracker", "stop", "--run-id", "r", "--to", "x"],
            &[
                "bulk",
                "--run-id",
                "r",
                "--from",
                "redis://h:1",
                "--to",
                "x",
            ],
            &[
                "apply-dirty",
                "--run-id",
                "r",
                "--from",
                "redis://h:1",
                "--to",
                "x",
            ],
            &["status", "--run-id", "r", "--to", "x"],
            &[
                "verify",
                "--run-id",
                "r",
                "--from",
                "redis://h:1",
                "--to",
                "x",
            ],
            &["control", "--run-id", "r", "--to", "x", "pause"],
            &["migrate", "--from", "redis://h:1", "--to", "x"],
            &["replay", "--db", "x"],
        ];
        for argv in cases {
            let cli = Cli::try_parse_from(std::iter::once("keyferry").chain(argv.iter().copied()))
                .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let typed: Vec<&str> = argv
                .iter()
                .take_while(|a| !a.starts_with("--"))
                .copied()
                .collect();
            assert_eq!(cli.command.name(), typed.join(" "));
        }
    }

    #[test]
    fn serve_defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["keyferry", "serve", "--db", "k.db"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.bind.to_string(), "127.0.0.1");
        assert_eq!(args.port, 6379);
        assert_eq!(args.durability, DurabilityArg::Normal);
        assert!(args.metrics_addr.is_none() && args.requirepass.is_none());
    }

    #[test]
    fn control_set_needs_a_setting() {
        let base = ["keyferry", "control", "--run-id", "r", "--to", "x", "set"];
        assert!(Cli::try_parse_from(base).is_err());
        let cli = Cli::try_parse_from(base.into_iter().chain(["--max-rps", "100"])).unwrap();
        let Command::Control(ControlArgs {
            action: ControlAction::Set(set),
            ..
        }) = cli.command
        else {
            panic!("not control set")
        };
        assert_eq!(set.max_rps.map(|n| n.get()), Some(100));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let bad: &[&[&str]] = &[
            &["serve", "--db", "x", "--durability", "sometimes"],
            &["serve", "--db", "x", "--port", "70000"],
            &["bulk", "--run-id", "r", "--from", "http://h", "--to", "x"],
            &[
                "bulk",
                "--run-id",
                "r",
                "--from",
                "redis://h:1",
                "--to",
                "x",
                "--batch-bytes",
                "lots",
            ],
            &[
                "bulk",
                "--run-id",
                "r",
                "--from",
                "redis://h:1",
                "--to",
                "x",
                "--max-concurrency",
                "0",
            ],
            &[
                "verify",
                "--run-id",
                "r",
                "--from",
                "redis://h:1",
                "--to",
                "x",
                "--sample",
                "101",
            ],
            &["replay", "--db", "x", "--until", "-1"],
            &["status", "--run-id", "", "--to", "x"],
        ];
        for argv in bad {
            let err = Cli::try_parse_from(std::iter::once("keyferry").chain(argv.iter().copied()))
                .expect_err(&format!("{argv:?} should be rejected"));
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
    }
}

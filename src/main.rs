//! `keyferry`: parses the command line and runs the subcommand.
//!
//! Exit codes: 0 on success, 2 for a usage error (from clap), 1 for any
//! other failure, including subcommands that are not implemented yet.

use std::process::ExitCode;

use clap::Parser;
use keyferry::cli::{Cli, Command, TrackerCommand, redact_passwords};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_with_usage_error(&e),
    };
    keyferry::telemetry::init_logging();
    let name = cli.command.name();
    let result = match cli.command {
        Command::Serve(args) => keyferry::serve::run(args).map_err(|e| e.to_string()),
        Command::Preflight(args) => keyferry::migration::preflight::run(args),
        Command::Tracker(TrackerCommand::Start(args)) => keyferry::migration::tracker::start(args),
        Command::Tracker(TrackerCommand::Stop(args)) => keyferry::migration::tracker::stop(args),
        Command::Bulk(args) => keyferry::migration::bulk::bulk(args),
        Command::ApplyDirty(args) => keyferry::migration::bulk::apply_dirty(args),
        Command::Migrate(args) => keyferry::migration::migrate::run(args),
        Command::Status(args) => keyferry::migration::status::run(args).map_err(|e| e.to_string()),
        Command::Verify(args) => keyferry::migration::verify::run(args).map_err(|e| e.to_string()),
        Command::Control(args) => {
            keyferry::migration::control::run(args).map_err(|e| e.to_string())
        }
        Command::Replay(args) => keyferry::replay::run(args).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyferry {name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's message (help, version or a usage error) and exits with
/// clap's code. clap quotes the offending value back, and a bad `--from`
/// may carry a password: it is masked before anything reaches the terminal
/// (argv is already visible in `ps`, scrollback and CI logs need not be).
fn exit_with_usage_error(error: &clap::Error) -> ! {
    let rendered = redact_passwords(&error.render().to_string());
    if error.use_stderr() {
        eprint!("{rendered}");
    } else {
        print!("{rendered}");
    }
    std::process::exit(error.exit_code())
}

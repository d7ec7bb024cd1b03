//! `keyferry`: parses the command line and runs the subcommand.
//!
//! Exit codes: 0 on success, 2 for a usage error (from clap), 1 for any
//! other failure, including subcommands that are not implemented yet.

use std::process::ExitCode;

use clap::Parser;
use keyferry::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    keyferry::telemetry::init_logging();
    let name = cli.command.name();
    let result = match cli.command {
        Command::Serve(args) => keyferry::serve::run(args).map_err(|e| e.to_string()),
        _ => Err("not implemented yet".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyferry {name}: {message}");
            ExitCode::FAILURE
        }
    }
}

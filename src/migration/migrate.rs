//! `keyferry migrate`: the whole migration in one command (see
//! `keyferry_actors::migration::orchestrator`).

use keyferry_actors::migration::orchestrator::{self, Cutover, MigrateConfig};
use keyferry_actors::migration::{Run, Settings};
use keyferry_actors::source::FetchLimits;
use keyferry_actors::source::info::Channels;
use tokio::io::AsyncBufReadExt;

use super::{progress, step};
use crate::cli::{Cutover as CutoverArg, MigrateArgs};

/// Runs `migrate`.
pub fn run(args: MigrateArgs) -> Result<(), String> {
    step::block_on(args.metrics_addr, async move {
        let source = step::reachable_source(args.source).await?;
        let store = step::open_store(&args.to).await?;
        let run_id = args.run_id.unwrap_or_else(generated_run_id);
        let run = Run {
            id: run_id,
            source,
            store: store.clone(),
        };
        eprintln!(
            "migrating {} into {} as run {}",
            run.source.redacted(),
            args.to.display(),
            run.id
        );
        let shutdown = step::stop_on_signals()?;
        let cutover = match args.cutover {
            CutoverArg::Auto => Cutover::Auto {
                switch_cmd: args.switch_cmd,
            },
            CutoverArg::Manual => {
                let usr1 =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                        .ok();
                Cutover::Manual(Box::pin(operator_go_ahead(usr1)))
            }
        };
        let progress = progress::report(run.clone());
        let outcome = orchestrator::migrate(MigrateConfig {
            run: run.clone(),
            settings: Settings::default(),
            limits: FetchLimits::default(),
            channels: Channels::Keyevent,
            enable_notifications: false,
            cutover,
            shutdown,
        })
        .await;
        progress.abort();
        step::close(store).await;
        let report = outcome.map_err(|e| e.to_string())?;
        eprintln!();
        if let Some(freeze) = report.freeze {
            println!("freeze: {} ms", freeze.as_millis());
        }
        println!(
            "final delta: {} applied, {} deleted; sample mismatches: {}; switched: {}",
            report.final_delta.applied,
            report.final_delta.deleted,
            report.sample_mismatches,
            report.switched
        );
        Ok(())
    })
}

/// Resolves when the operator says writes are frozen: a line on stdin, or
/// SIGUSR1 (for scripts without a terminal). `usr1` is installed by the
/// caller before anything is announced, so an early SIGUSR1 cannot hit the
/// default action (terminate).
async fn operator_go_ahead(mut usr1: Option<tokio::signal::unix::Signal>) {
    eprintln!(
        "\nready for cutover: freeze writes on the source, then press Enter (or send SIGUSR1)"
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(_)) => return,
                // A closed stdin is not a go-ahead.
                _ => stdin_open = false,
            },
            _ = async {
                match usr1.as_mut() {
                    Some(signal) => { signal.recv().await; }
                    None => std::future::pending().await,
                }
            } => return,
        }
    }
}

/// A run id from the current time, e.g. `run_20261122_081500`.
fn generated_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("run_{secs}")
}

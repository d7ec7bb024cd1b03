//! `keyferry tracker start|stop`.

use std::sync::Arc;

use keyferry_actors::migration::Run;
use keyferry_actors::migration::tracker::{self, TrackerConfig};
use keyferry_actors::source::info::Channels;
use keyferry_actors::supervisor::{RestartPolicy, Supervisor};
use keyferry_journal::Event;
use tokio::sync::{Mutex, mpsc, watch};

use super::step;
use crate::cli::{Channels as ChannelsArg, TrackerStartArgs, TrackerStopArgs};

/// `tracker start`: records dirty keys until `tracker stop` (from any
/// process) or SIGINT/SIGTERM, then restores notifications it changed.
pub fn start(args: TrackerStartArgs) -> Result<(), String> {
    step::block_on(args.metrics_addr, async move {
        let source = step::reachable_source(args.source).await?;
        let store = step::open_store(&args.run.to).await?;
        let run = Run {
            id: args.run.run_id,
            source,
            store: store.clone(),
        };
        let channels = match args.channels {
            ChannelsArg::Keyevent => Channels::Keyevent,
            ChannelsArg::Keyspace => Channels::Keyspace,
        };
        let outcome = track(&run, channels, args.enable_notifications).await;
        step::close(store).await;
        outcome
    })
}

async fn track(
    run: &keyferry_actors::migration::Run,
    channels: Channels,
    enable: bool,
) -> Result<(), String> {
    tracker::prepare(run, channels, enable)
        .await
        .map_err(|e| e.to_string())?;
    let mut signals = step::stop_on_signals()?;
    // Nobody fences a standalone tracker; the channel just stays open.
    let (_fences, fence_rx) = mpsc::unbounded_channel();
    let stopped = Arc::new(watch::Sender::new(false));
    let supervisor = Supervisor::start(
        vec![tracker::child_spec(TrackerConfig {
            run: run.clone(),
            channels,
            fences: Arc::new(Mutex::new(fence_rx)),
            stopped: Arc::clone(&stopped),
        })],
        RestartPolicy::default(),
        run.store.journal().clone(),
    )
    .await
    .map_err(|e| e.to_string())?;
    eprintln!("tracking {} for run {}", run.source.redacted(), run.id);
    let mut done = stopped.subscribe();
    let mut asked = false;
    loop {
        tokio::select! {
            _ = done.changed() => if *done.borrow() { break },
            _ = signals.changed(), if !asked => {
                asked = true;
                run.record(vec![Event::TrackerStopRequested { run_id: run.id.clone() }])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                if let Some(failed) = supervisor.failed_actors().first() {
                    let reason = failed.reason.clone();
                    supervisor.stop().await;
                    let _ = tracker::restore_notifications(run).await;
                    return Err(format!("the tracker failed for good: {reason}"));
                }
            }
        }
    }
    supervisor.stop().await;
    eprintln!("tracker stopped");
    Ok(())
}

/// `tracker stop`: asks the run's tracker (in whatever process) to stop.
pub fn stop(args: TrackerStopArgs) -> Result<(), String> {
    step::block_on(None, async move {
        let store = step::open_existing_store(&args.run.to).await?;
        let run_id = args.run.run_id;
        let exists = {
            let id = run_id.clone();
            store.read(move |view| Ok(keyferry_journal::registry::run(view.conn(), &id)?.is_some()))
        };
        if !matches!(exists, Ok(true)) {
            step::close(store).await;
            return Err(format!("no run {run_id} in {}", args.run.to.display()));
        }
        let outcome = store
            .write({
                let run_id = run_id.clone();
                move |tx| tx.append_events(&[Event::TrackerStopRequested { run_id }])
            })
            .await
            .map_err(|e| e.to_string());
        step::close(store).await;
        outcome?;
        println!("asked the tracker of run {run_id} to stop");
        Ok(())
    })
}

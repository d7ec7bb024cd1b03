//! The shutdown signal threaded through `serve`'s tasks.
//!
//! One [`Shutdown`] is triggered once (by SIGINT or SIGTERM); every task
//! holds a [`ShutdownSignal`] and stops at its next safe point: the accept
//! loop stops accepting, each connection finishes the commands it already
//! read, answers them, and closes.

use std::io;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The trigger side: fires every [`ShutdownSignal`] made from it.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

/// The listening side: cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// A shutdown not triggered yet.
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(false),
        }
    }

    /// A signal that fires when this shutdown is triggered.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }

    /// Fires every signal; later triggers do nothing more.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown was triggered (at once if it already was).
    /// Cancel-safe, so it can race other futures in `select!`.
    pub async fn wait(&mut self) {
        // An error means the Shutdown was dropped, which only happens when
        // the whole server is going away: treat it as a trigger too.
        let _ = self.rx.wait_for(|&triggered| triggered).await;
    }
}

/// Triggers `shutdown` on the first SIGINT or SIGTERM. A second one exits
/// the process at once, for when a graceful shutdown hangs.
///
/// The handlers are installed before this returns, so a signal that
/// arrives while the server is still starting is not lost.
pub fn trigger_on_signals(shutdown: Shutdown) -> io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: finishing in-flight commands");
        shutdown.trigger();
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::warn!(signal = name, "second signal: exiting without finishing");
        std::process::exit(1);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_signal_fires_including_late_subscribers() {
        let shutdown = Shutdown::new();
        let mut early = shutdown.signal();
        let waiter = tokio::spawn(async move { early.wait().await });
        shutdown.trigger();
        // A signal that never fires must fail the test, not hang it.
        let within = std::time::Duration::from_secs(5);
        tokio::time::timeout(within, waiter)
            .await
            .expect("an early subscriber was not woken")
            .unwrap();
        // Subscribed after the trigger: resolves at once.
        tokio::time::timeout(within, shutdown.signal().wait())
            .await
            .expect("a late subscriber was not woken");
    }

    #[tokio::test]
    async fn does_not_fire_before_the_trigger() {
        let shutdown = Shutdown::new();
        let mut signal = shutdown.signal();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), signal.wait()).await;
        assert!(waited.is_err());
    }
}

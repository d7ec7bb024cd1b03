//! The journal maintenance actor: every few seconds it applies the
//! [`SnapshotPolicy`] to the engine's journal — a snapshot of every
//! projection once enough events were appended since the last one (so a
//! restart replays a short tail, however long the history), and, with a
//! retention (`KEYFERRY_JOURNAL_RETENTION`), compaction of older events.
//!
//! The work is SQLite I/O, so it runs on tokio's blocking pool; the actor
//! only keeps the timer. It has no state of its own: a restarted actor
//! just carries on with the next tick.

use std::time::Duration;

use keyferry_journal::Journal;
use keyferry_journal::compaction::{self, SnapshotPolicy};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;

use crate::supervisor::ChildSpec;

/// The child's name in logs, journal events and metric labels.
pub const NAME: &str = "journal_maintenance";

/// How often the policy is checked.
const EVERY: Duration = Duration::from_secs(5);

/// The supervisor's child spec for maintenance of `journal` by `policy`.
pub fn child_spec(journal: Journal, policy: SnapshotPolicy) -> ChildSpec {
    ChildSpec::new(NAME, move |spawner| {
        let args = (journal.clone(), policy);
        async move { spawner.spawn(Maintainer, args).await }
    })
}

/// The maintenance actor.
pub struct Maintainer;

/// Its only message: time to check the policy.
pub struct Tick;

/// The actor's state: what to maintain, and the pass in progress.
pub struct State {
    journal: Journal,
    policy: SnapshotPolicy,
    /// A pass runs on the blocking pool while the actor stays responsive;
    /// `post_stop` waits for it, so no connection of ours outlives the
    /// engine's shutdown (the last connection to close checkpoints and
    /// removes the WAL only if it can write).
    running: Option<JoinHandle<()>>,
}

impl Actor for Maintainer {
    type Msg = Tick;
    type State = State;
    type Arguments = (Journal, SnapshotPolicy);

    async fn pre_start(
        &self,
        myself: ActorRef<Tick>,
        (journal, policy): Self::Arguments,
    ) -> Result<State, ActorProcessingErr> {
        // At once, then periodically: a process that starts on a long
        // journal snapshots it before anything else happens.
        myself.send_message(Tick)?;
        myself.send_interval(EVERY, || Tick);
        Ok(State {
            journal,
            policy,
            running: None,
        })
    }

    async fn post_stop(
        &self,
        _: ActorRef<Tick>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(running) = state.running.take() {
            let _ = running.await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Tick>,
        _: Tick,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if state
            .running
            .as_ref()
            .is_some_and(|pass| !pass.is_finished())
        {
            return Ok(());
        }
        let (journal, policy) = (state.journal.clone(), state.policy);
        state.running = Some(tokio::task::spawn_blocking(move || {
            match compaction::maintain(&journal, &policy) {
                Ok(done) => {
                    if let Some(taken) = done.snapshot {
                        tracing::info!(
                            seq = taken.seq,
                            rows = taken.rows,
                            "journal snapshot taken"
                        );
                    }
                    if done.deleted > 0 {
                        tracing::info!(deleted = done.deleted, "journal compacted");
                    }
                }
                // Maintenance can wait: a busy or full file is retried on
                // the next tick rather than counted as a failure (which
                // would make the supervisor give up on the actor).
                Err(e) => tracing::warn!(error = %e, "journal maintenance failed; retrying"),
            }
        }));
        Ok(())
    }
}

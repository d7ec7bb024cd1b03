//! The supervisor: starts its children, restarts each one that fails
//! (one-for-one) after an exponential backoff, and gives up on a child
//! that fails too often (restart intensity). ractor links children to
//! their supervisor but has no restart strategy of its own; this is it.
//!
//! Every restart — and every give-up — is appended to the journal as
//! [`Event::ActorRestarted`] before the restart is scheduled, and counted in
//! `keyferry_actor_restarts_total{actor}` (give-ups in
//! `keyferry_actor_gave_up_total{actor}`), so a restart loop is visible in
//! `keyferry replay` and on a dashboard alike.
//!
//! A child that *stops* normally (its work is done, or it was told to stop)
//! is not restarted: only failures — a panic or error in any handler, or a
//! failed start-up — are.

mod child;
mod policy;

use std::time::Duration;

use keyferry_journal::{Event, Journal};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::watch;
use tokio::time::Instant;

pub use child::{ChildSpec, SpawnError, Spawned, Spawner};
use policy::RestartHistory;
pub use policy::RestartPolicy;

/// How long children get to finish in-flight work when the supervisor
/// stops; stragglers are killed after it.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A child the supervisor stopped restarting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedActor {
    /// The child's name.
    pub name: String,
    /// Why it failed the last time.
    pub reason: String,
    /// Restarts it had inside the intensity window before the supervisor
    /// gave up.
    pub restarts: u32,
}

/// The supervisor could not start.
#[derive(Debug, thiserror::Error)]
#[error("could not start the supervisor: {0}")]
pub struct SupervisorError(String);

/// A running supervisor and its children.
///
/// Dropping it stops the tree without waiting; [`Supervisor::stop`] waits
/// until every child has stopped.
pub struct Supervisor {
    actor: ActorRef<Restart>,
    failed: watch::Receiver<Vec<FailedActor>>,
}

impl Supervisor {
    /// Starts a supervisor and each of `children`, in order.
    ///
    /// Returns once every child was started or, if its start-up failed,
    /// scheduled for a restart like any other failure.
    pub async fn start(
        children: Vec<ChildSpec>,
        policy: RestartPolicy,
        journal: Journal,
    ) -> Result<Self, SupervisorError> {
        let (failed_tx, failed) = watch::channel(Vec::new());
        let names = children.iter().map(|c| c.name.clone()).collect();
        let histories = past_restarts(&journal, names, &policy).await;
        let args = State {
            children: children
                .into_iter()
                .zip(histories)
                .map(|(spec, history)| Child::new(spec, history))
                .collect(),
            policy,
            journal,
            failed: failed_tx,
        };
        let (actor, _join) = SupervisorActor::spawn(None, SupervisorActor, args)
            .await
            .map_err(|e| SupervisorError(e.to_string()))?;
        Ok(Self { actor, failed })
    }

    /// The children it gave up on, in the order it did.
    pub fn failed_actors(&self) -> Vec<FailedActor> {
        self.failed.borrow().clone()
    }

    /// Stops every child gracefully (each finishes the message it is
    /// handling and runs its `post_stop`), then the supervisor itself.
    pub async fn stop(self) {
        // An error only means it already stopped.
        let _ = self.actor.stop_and_wait(None, None).await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Without this a dropped engine would leave its actors running.
        // A no-op once `stop` has run.
        self.actor.stop(None);
    }
}

/// The supervisor's one message: the backoff of the child at this index
/// (into its children) is over; start it again.
struct Restart(usize);

struct SupervisorActor;

struct Child {
    spec: ChildSpec,
    /// The running instance, `None` while it waits for a restart, after it
    /// stopped, or after the supervisor gave up on it.
    running: Option<ActorId>,
    history: RestartHistory,
}

impl Child {
    fn new(spec: ChildSpec, history: RestartHistory) -> Self {
        Self {
            spec,
            running: None,
            history,
        }
    }
}

/// Each child's restarts inside the intensity window, as the journal
/// recorded them — by this process or one before it — so a child that
/// crash-loops across process restarts still meets the limit. A journal
/// that cannot be read starts the histories empty (and says so).
async fn past_restarts(
    journal: &Journal,
    names: Vec<String>,
    policy: &RestartPolicy,
) -> Vec<RestartHistory> {
    let window_ms = i64::try_from(policy.window.as_millis()).unwrap_or(i64::MAX);
    let since = keyferry_journal::now_ms().saturating_sub(window_ms);
    let reader = journal.clone();
    let entries =
        tokio::task::spawn_blocking(move || reader.recent_of_kind("actor_restarted", since))
            .await
            .map_err(|e| e.to_string())
            .and_then(|read| read.map_err(|e| e.to_string()))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read past restarts from the journal");
                Vec::new()
            });
    let now = Instant::now();
    let now_ms = keyferry_journal::now_ms();
    names
        .into_iter()
        .map(|name| {
            let ages = entries
                .iter()
                .filter(|e| matches!(&e.event, Event::ActorRestarted { actor, gave_up: false, .. } if *actor == name))
                .map(|e| Duration::from_millis(u64::try_from(now_ms - e.at_ms).unwrap_or(0)))
                .collect();
            RestartHistory::with_past(now, ages)
        })
        .collect()
}

struct State {
    children: Vec<Child>,
    policy: RestartPolicy,
    journal: Journal,
    failed: watch::Sender<Vec<FailedActor>>,
}

impl State {
    /// Starts child `idx`; a failed start-up counts as a failure.
    async fn start_child(&mut self, myself: &ActorRef<Restart>, idx: usize) {
        let spawner = Spawner {
            supervisor: myself.get_cell(),
        };
        match self.children[idx].spec.start(spawner).await {
            Ok(spawned) => self.children[idx].running = Some(spawned.cell.get_id()),
            Err(e) => self.on_failure(myself, idx, e.to_string()).await,
        }
    }

    /// The child whose running instance is `id`, marked as no longer running.
    fn take_child(&mut self, id: ActorId) -> Option<usize> {
        let idx = self.children.iter().position(|c| c.running == Some(id))?;
        self.children[idx].running = None;
        Some(idx)
    }

    /// Journals the failure of child `idx`, then schedules its restart or
    /// gives up on it.
    async fn on_failure(&mut self, myself: &ActorRef<Restart>, idx: usize, reason: String) {
        let child = &mut self.children[idx];
        let name = child.spec.name.clone();
        let decision = child.history.on_failure(Instant::now(), &self.policy);
        let backoff_ms = decision
            .backoff
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let event = Event::ActorRestarted {
            actor: name.clone(),
            attempt: decision.attempt,
            reason: reason.clone(),
            backoff_ms,
            gave_up: decision.backoff.is_none(),
        };
        // The restart goes ahead even if it cannot be journaled: keeping
        // the actor alive matters more than the record of it.
        if let Err(e) = self.journal.append(vec![event]).await {
            tracing::error!(actor = %name, error = %e, "could not journal an actor restart");
        }
        match decision.backoff {
            Some(wait) => {
                tracing::warn!(actor = %name, attempt = decision.attempt, backoff_ms, %reason, "actor failed; restarting it");
                metrics::counter!("keyferry_actor_restarts_total", "actor" => name).increment(1);
                myself.send_after(wait, move || Restart(idx));
            }
            None => {
                let restarts = decision.attempt - 1;
                tracing::error!(actor = %name, restarts, %reason, "actor failed too often; no longer restarting it");
                metrics::counter!("keyferry_actor_gave_up_total", "actor" => name.clone())
                    .increment(1);
                self.failed.send_modify(|failed| {
                    failed.push(FailedActor {
                        name,
                        reason,
                        restarts,
                    })
                });
            }
        }
    }
}

impl Actor for SupervisorActor {
    type Msg = Restart;
    type State = State;
    type Arguments = State;

    async fn pre_start(
        &self,
        myself: ActorRef<Restart>,
        mut state: State,
    ) -> Result<State, ActorProcessingErr> {
        for idx in 0..state.children.len() {
            state.start_child(&myself, idx).await;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Restart>,
        Restart(idx): Restart,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        tracing::info!(actor = %state.children[idx].spec.name, "restarting actor");
        state.start_child(&myself, idx).await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Restart>,
        event: SupervisionEvent,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(idx) = state.take_child(cell.get_id()) {
                    state.on_failure(&myself, idx, error.to_string()).await;
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(idx) = state.take_child(cell.get_id()) {
                    tracing::info!(actor = %state.children[idx].spec.name, ?reason, "actor stopped");
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Restart>,
        _state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        myself
            .stop_children_and_wait(None, Some(CHILD_STOP_TIMEOUT))
            .await;
        Ok(())
    }
}

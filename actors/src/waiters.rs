//! The blocking waiter registry actor: the timers of blocked clients
//! (`BLPOP … timeout`).
//!
//! The wait queues themselves ([`WaitQueues`]) are served synchronously by
//! the single writer, on the hot path; registration, the per-client index
//! (`CLIENT UNBLOCK`, disconnects), limits and the blocked-clients gauge
//! and wakeup counter live there too. This actor owns what may run beside
//! it: it arms one timer for the soonest deadline, answers the waiters
//! whose deadline passed with the timeout reply (counting them in
//! `keyferry_blocked_timeouts_total`), and re-arms. It keeps no state of
//! its own — deadlines are stored with the waiters — so after a restart
//! by the supervisor it simply re-arms from the queues.

use std::sync::Arc;
use std::time::Instant;

use keyferry_engine::blocking::WaitQueues;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::supervisor::ChildSpec;

/// The child's name in logs, journal events and metric labels.
pub const NAME: &str = "waiter_registry";

/// A message to the registry.
#[derive(Debug)]
pub enum Msg {
    /// A waiter with this deadline was registered.
    Deadline(Instant),
    /// A timer fired: expire what is due and re-arm.
    Tick,
}

/// The registry actor.
pub struct WaiterRegistry;

/// Its state: the queues, and the deadline a timer is armed for.
pub struct State {
    waits: Arc<WaitQueues>,
    armed: Option<Instant>,
}

impl State {
    /// Arms a timer for `at` unless one fires sooner already.
    fn arm(&mut self, myself: &ActorRef<Msg>, at: Instant) {
        if self.armed.is_some_and(|armed| armed <= at) {
            return;
        }
        self.armed = Some(at);
        let wait = at.saturating_duration_since(Instant::now());
        myself.send_after(wait, || Msg::Tick);
    }
}

/// The supervisor's child spec for the registry over `waits`.
pub fn child_spec(waits: Arc<WaitQueues>) -> ChildSpec {
    ChildSpec::new(NAME, move |spawner| {
        let waits = Arc::clone(&waits);
        async move { spawner.spawn(WaiterRegistry, waits).await }
    })
}

impl Actor for WaiterRegistry {
    type Msg = Msg;
    type State = State;
    type Arguments = Arc<WaitQueues>;

    async fn pre_start(
        &self,
        myself: ActorRef<Msg>,
        waits: Arc<WaitQueues>,
    ) -> Result<State, ActorProcessingErr> {
        let hook = myself.clone();
        waits.set_timer_hook(Box::new(move |at| {
            // Fails only once the actor stopped; its successor re-arms
            // from the queues.
            let _ = hook.send_message(Msg::Deadline(at));
        }));
        let mut state = State { waits, armed: None };
        if let Some(at) = state.waits.next_deadline() {
            state.arm(&myself, at);
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Msg>,
        msg: Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Deadline(at) => state.arm(&myself, at),
            Msg::Tick => {
                state.armed = None;
                let expired = state.waits.expire_due(Instant::now());
                if expired > 0 {
                    metrics::counter!("keyferry_blocked_timeouts_total").increment(expired as u64);
                }
                if let Some(at) = state.waits.next_deadline() {
                    state.arm(&myself, at);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use keyferry_engine::command::blocking::BlockOp;
    use keyferry_engine::{Db, Reply, Side};

    use super::*;

    fn block(waits: &WaitQueues, client: u64, after: Duration) -> mpsc::Receiver<Reply> {
        let (send, receive) = mpsc::channel();
        waits
            .register(
                client,
                Db::new(0).unwrap(),
                vec![b"k".to_vec()],
                BlockOp::Pop(Side::Left),
                Some(Instant::now() + after),
                Box::new(move |reply| send.send(reply).unwrap()),
            )
            .unwrap();
        receive
    }

    #[tokio::test]
    async fn times_out_waiters_and_rearms_after_a_restart() {
        let waits = Arc::new(WaitQueues::default());
        let (actor, join) = Actor::spawn(None, WaiterRegistry, Arc::clone(&waits))
            .await
            .unwrap();
        let soon = block(&waits, 1, Duration::from_millis(20));
        let later = block(&waits, 2, Duration::from_secs(3600));
        let reply = tokio::task::spawn_blocking(move || soon.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(reply, Ok(Reply::NullArray));
        assert!(later.try_recv().is_err());
        assert_eq!(waits.blocked(), 1);
        // A waiter registered while no registry runs is timed out by the
        // next one.
        actor.stop(None);
        join.await.unwrap();
        let missed = block(&waits, 3, Duration::from_millis(1));
        let (actor, join) = Actor::spawn(None, WaiterRegistry, Arc::clone(&waits))
            .await
            .unwrap();
        let reply =
            tokio::task::spawn_blocking(move || missed.recv_timeout(Duration::from_secs(5)))
                .await
                .unwrap();
        assert_eq!(reply, Ok(Reply::NullArray));
        assert_eq!(waits.blocked(), 1);
        actor.stop(None);
        join.await.unwrap();
    }
}

//! How a supervised child is described and started.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorCell, SpawnErr};

/// The future a [`ChildSpec`] returns to start one instance of its actor.
type StartFuture = Pin<Box<dyn Future<Output = Result<Spawned, SpawnError>> + Send>>;

/// A supervised child: a name (used in logs, journal events and metric
/// labels) and a factory that starts a fresh instance, called once at
/// start-up and again for every restart.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: String,
    start: Arc<dyn Fn(Spawner) -> StartFuture + Send + Sync>,
}

impl ChildSpec {
    /// A child named `name`, started by `start`, which must spawn exactly
    /// one actor through the [`Spawner`] it is given — typically
    /// `move |spawner| spawner.spawn(MyActor, args.clone())`.
    pub fn new<F, Fut>(name: impl Into<String>, start: F) -> Self
    where
        F: Fn(Spawner) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Spawned, SpawnError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            start: Arc::new(move |spawner| Box::pin(start(spawner))),
        }
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn start(&self, spawner: Spawner) -> StartFuture {
        (self.start)(spawner)
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Spawns a child's actor linked to its supervisor, so the supervisor hears
/// about its failure. Handed to a [`ChildSpec`]'s factory.
pub struct Spawner {
    pub(crate) supervisor: ActorCell,
}

impl Spawner {
    /// Starts `actor` with `args` under the supervisor.
    ///
    /// The actor is not registered under a global name: two engines in one
    /// process may run children of the same name.
    pub async fn spawn<A: Actor>(
        self,
        actor: A,
        args: A::Arguments,
    ) -> Result<Spawned, SpawnError> {
        let (actor_ref, _join) = A::spawn_linked(None, actor, args, self.supervisor)
            .await
            .map_err(spawn_error)?;
        Ok(Spawned {
            cell: actor_ref.get_cell(),
        })
    }
}

/// A started child, as the supervisor tracks it.
pub struct Spawned {
    pub(crate) cell: ActorCell,
}

/// A child could not be started (its start-up panicked or returned an
/// error). The supervisor treats it like any other failure of the child.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SpawnError(String);

/// Keeps the actor's own error or panic message, which says more than
/// ractor's "Actor panicked during startup" wrapper around it.
fn spawn_error(e: SpawnErr) -> SpawnError {
    match e {
        SpawnErr::StartupFailed(reason) => SpawnError(reason.to_string()),
        other => SpawnError(other.to_string()),
    }
}

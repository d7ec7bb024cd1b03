//! [`Keyferry::serve`]: the RESP server of `keyferry serve`, on a listener
//! and a shutdown future of the embedding program's choosing.

use std::future::Future;
use std::io;

use tokio::net::TcpListener;

use super::Keyferry;
use crate::serve::serve_engine;
use crate::shutdown::Shutdown;

/// How [`Keyferry::serve`] answers clients.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The password clients must `AUTH` with (Redis's `requirepass`); none
    /// by default. Clients may change it with `CONFIG SET requirepass`,
    /// for this server only.
    pub requirepass: Option<String>,
}

impl ServeOptions {
    /// Requires clients to `AUTH` with `password` (an empty one requires
    /// nothing, as in Redis).
    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        self.requirepass = Some(password.into());
        self
    }
}

/// Why [`Keyferry::serve`] could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener's own address could not be read (the socket is
    /// unusable).
    #[error("cannot read the listener's address: {0}")]
    Listener(#[source] io::Error),
}

impl Keyferry {
    /// Answers Redis clients on `listener` until `shutdown` resolves, then
    /// shuts the server down gracefully: it stops accepting (the listener
    /// is closed), lets every connection finish and answer the commands
    /// it already read, and returns once all have closed (connections
    /// still busy after 10 s are dropped). Meanwhile the WAL is truncated
    /// periodically, as `keyferry serve` does.
    ///
    /// This is what `keyferry serve` runs; the engine stays open after it
    /// returns, so it may serve again or migrate. Several `serve` calls
    /// may run at once, each on its own listener, over the same data.
    ///
    /// Cancelling the returned future (dropping it) drops the listener at
    /// once but not the connections already accepted: they are tasks of
    /// their own and end when their clients leave. Prefer resolving
    /// `shutdown`.
    ///
    /// # Errors
    /// [`ServeError::Listener`] if the listener's address cannot be read;
    /// nothing was served then. Failures of single connections are logged
    /// (`tracing`) and never end the server.
    pub async fn serve(
        &self,
        listener: TcpListener,
        options: ServeOptions,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let addr = listener.local_addr().map_err(ServeError::Listener)?;
        let trigger = Shutdown::new();
        let signal = trigger.signal();
        let stop = async move {
            shutdown.await;
            trigger.trigger();
        };
        tokio::join!(
            serve_engine(&self.engine, listener, addr, options.requirepass, signal),
            stop
        );
        Ok(())
    }
}

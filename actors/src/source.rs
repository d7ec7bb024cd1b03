//! The source Redis: where its address and password come from, and how the
//! migration actors connect to it.
//!
//! A [`Source`] is built once per process from `--from` plus the password
//! sources the CLI allows (the URI, `KEYFERRY_SOURCE_PASSWORD`,
//! `--from-password-file`), so no actor ever handles a password itself and
//! [`Source::redacted`] is the only form of the address that reaches logs,
//! the journal and status output.
//!
//! Every connection is bound to one logical database at connect time (the
//! client sends `SELECT` during its handshake). Actors that work on several
//! databases hold one connection per database instead of switching with
//! `SELECT`, which would race on a multiplexed connection.

pub mod fetch;
pub mod info;
pub mod scan;
mod uri;

use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

pub use fetch::{BigKey, FetchLimits, Fetched, StreamError, approx_bytes, fetch_keys};
pub use scan::scan_page;
pub use uri::{SourceUri, UriError};

/// How long connecting (TCP, TLS and the AUTH/SELECT handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one reply may take. Generous: a page of big values is one
/// pipelined reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variable holding the source password (argv is visible in
/// `ps`, the environment is not).
pub const PASSWORD_ENV: &str = "KEYFERRY_SOURCE_PASSWORD";
/// Environment variable naming a PEM file of CA certificates to trust for
/// `rediss://` sources, instead of the public web roots.
pub const CA_FILE_ENV: &str = "KEYFERRY_SOURCE_CA_FILE";

/// Why the source cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The password file could not be read.
    #[error("cannot read the source password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file for TLS could not be read.
    #[error("cannot read the CA file {path} ({CA_FILE_ENV}): {source}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Connecting or the handshake failed or timed out.
    #[error("cannot connect to the source {uri}: {reason}")]
    Connect {
        /// The source, password masked.
        uri: String,
        /// Why.
        reason: String,
    },
    /// A command failed.
    #[error("source {uri}: {reason}")]
    Command {
        /// The source, password masked.
        uri: String,
        /// Why.
        reason: String,
    },
}

/// The source Redis and its credentials.
#[derive(Clone)]
pub struct Source {
    uri: SourceUri,
    ca_pem: Option<Vec<u8>>,
}

impl Source {
    /// Resolves the password: the URI's own wins, then `password_file`,
    /// then [`PASSWORD_ENV`]. A password file's trailing newline is not part
    /// of the password.
    pub fn new(
        mut uri: SourceUri,
        password_file: Option<&std::path::Path>,
    ) -> Result<Self, SourceError> {
        if uri.password.is_none() {
            uri.password = match password_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|source| SourceError::PasswordFile {
                            path: path.display().to_string(),
                            source,
                        })?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                None => std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()),
            };
        }
        let ca_pem = match std::env::var_os(CA_FILE_ENV) {
            Some(path) if uri.tls => {
                Some(std::fs::read(&path).map_err(|source| SourceError::CaFile {
                    path: path.to_string_lossy().into_owned(),
                    source,
                })?)
            }
            _ => None,
        };
        Ok(Source { uri, ca_pem })
    }

    /// The address with the password masked: the only form to log, show or
    /// store.
    pub fn redacted(&self) -> String {
        self.uri.to_string()
    }

    /// The address with no password at all (for the journal and jobs).
    pub fn without_password(&self) -> String {
        let mut uri = self.uri.clone();
        uri.password = None;
        uri.to_string()
    }

    /// The database named in the URI (`/db`), 0 by default.
    pub fn default_db(&self) -> u32 {
        self.uri.db
    }

    /// Opens a multiplexed connection bound to database `db`. Cheap to
    /// clone; commands from clones are pipelined on one socket.
    pub async fn connect(&self, db: u32) -> Result<MultiplexedConnection, SourceError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        self.client(db)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.connect_error(e))
    }

    /// Opens a RESP2 pub/sub connection (for the keyspace tracker).
    pub async fn pubsub(&self) -> Result<PubSub, SourceError> {
        let client = self.client(0)?;
        match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
            Ok(result) => result.map_err(|e| self.connect_error(e)),
            Err(_) => Err(SourceError::Connect {
                uri: self.redacted(),
                reason: format!("timed out after {CONNECT_TIMEOUT:?}"),
            }),
        }
    }

    /// Wraps a failed command's error, naming the source without its
    /// password.
    pub fn command_error(&self, error: impl std::fmt::Display) -> SourceError {
        SourceError::Command {
            uri: self.redacted(),
            reason: error.to_string(),
        }
    }

    fn connect_error(&self, error: impl std::fmt::Display) -> SourceError {
        SourceError::Connect {
            uri: self.redacted(),
            reason: error.to_string(),
        }
    }

    fn client(&self, db: u32) -> Result<Client, SourceError> {
        let addr = if self.uri.tls {
            ConnectionAddr::TcpTls {
                host: self.uri.host.clone(),
                port: self.uri.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(self.uri.host.clone(), self.uri.port)
        };
        let info = ConnectionInfo {
            addr,
            redis: RedisConnectionInfo {
                db: i64::from(db),
                username: self.uri.username.clone(),
                // A named user always authenticates as that user (an empty
                // password suits a `nopass` user); with no password at all
                // the client would skip AUTH and silently act as `default`.
                password: self
                    .uri
                    .password
                    .clone()
                    .or_else(|| self.uri.username.as_ref().map(|_| String::new())),
                ..Default::default()
            },
        };
        let built = match &self.ca_pem {
            Some(pem) => Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => Client::open(info),
        };
        built.map_err(|e| self.connect_error(e))
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({})", self.redacted())
    }
}

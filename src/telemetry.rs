//! Logs (tracing, to stderr) and metrics (Prometheus, over HTTP).

use std::io::IsTerminal;
use std::net::SocketAddr;

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder};
use tracing_subscriber::EnvFilter;

/// Sends logs to stderr, at `info` unless `RUST_LOG` says otherwise, in
/// colour only when stderr is a terminal (not in log files).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Installs the process's metrics recorder and serves its metrics in
/// Prometheus text format on `http://addr/metrics`. Must run inside the
/// tokio runtime, which the HTTP listener runs on.
pub fn serve_metrics(addr: SocketAddr) -> Result<(), BuildError> {
    PrometheusBuilder::new().with_http_listener(addr).install()
}

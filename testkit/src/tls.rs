//! A `redis-server` that also speaks TLS, with a throwaway CA made by the
//! `openssl` command-line tool at test time.
//!
//! The server keeps its plain `--port` (the readiness PING and test setup
//! use it) and adds a `--tls-port` signed by a fresh CA whose certificate
//! is in [`TlsRedis::ca_file`]. The server certificate names both
//! `localhost` and `127.0.0.1` as subject alternative names (rustls ignores
//! the common name), so `rediss://localhost:PORT` and
//! `rediss://127.0.0.1:PORT` both verify against the CA and fail against
//! the public web roots.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{RedisServer, free_port};

/// A throwaway certificate authority and a server certificate it signed,
/// as PEM files in a temp dir (deleted on drop).
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a CA and a server certificate for `localhost` and
    /// `127.0.0.1`, valid for a day, with P-256 keys (fast to generate).
    ///
    /// # Panics
    /// If `openssl` is missing or fails (its stderr is in the message).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("keyferry-tls-")
            .tempdir()
            .expect("create a temp dir for the certificates");
        let ext = dir.path().join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions file");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl(
            dir.path(),
            &[
                &["req", "-x509", "-nodes", "-days", "1"][..],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-subj",
                    "/CN=keyferry test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ][..],
            ]
            .concat(),
        );
        openssl(
            dir.path(),
            &[
                &["req", "-nodes"][..],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ][..],
            ]
            .concat(),
        );
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                "server.pem",
                "-extfile",
                "server.ext",
            ],
        );
        Self { dir }
    }

    /// The CA certificate (PEM): what clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("could not run openssl (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `redis-server` listening on a plain port and a TLS port, killed on
/// drop (the certificates with it).
pub struct TlsRedis {
    server: RedisServer,
    tls_port: u16,
    ca: TestCa,
}

impl TlsRedis {
    /// Starts `redis-server` with TLS on an extra free port (clients need
    /// no certificate of their own), plus `extra` configuration arguments.
    ///
    /// # Panics
    /// If `openssl` fails, or the server (built without TLS?) does not
    /// come up.
    pub fn start(extra: &[&str]) -> Self {
        let ca = TestCa::new();
        let tls_port = free_port();
        let (port, cert, key, ca_file) = (
            tls_port.to_string(),
            ca.cert_file(),
            ca.key_file(),
            ca.ca_file(),
        );
        let mut args = vec![
            "--tls-port",
            port.as_str(),
            "--tls-cert-file",
            cert.to_str().expect("utf-8 temp path"),
            "--tls-key-file",
            key.to_str().expect("utf-8 temp path"),
            "--tls-ca-cert-file",
            ca_file.to_str().expect("utf-8 temp path"),
            "--tls-auth-clients",
            "no",
        ];
        args.extend_from_slice(extra);
        let server = RedisServer::start_with_args(&args);
        Self {
            server,
            tls_port,
            ca,
        }
    }

    /// The plain (unencrypted) port: for setup and comparisons.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The TLS port.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The CA certificate that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.ca.ca_file()
    }

    /// The server behind both ports.
    pub fn server(&self) -> &RedisServer {
        &self.server
    }
}

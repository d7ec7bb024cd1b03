//! How keyferry reaches its source, run as the real binary against real
//! redis-servers: `rediss://` with a CA from `KEYFERRY_SOURCE_CA_FILE`
//! (and a clear certificate error without it), ACL users whose password
//! comes from the URI, `KEYFERRY_SOURCE_PASSWORD` or
//! `--from-password-file`, wrong passwords, `/db` in the URI — and that a
//! password given any of those ways never shows up in output, status,
//! metrics or the destination file.
//!
//! Migrations are judged by a whole-keyspace comparison through
//! `keyferry serve` (`testkit::dataset::keyspace_diff`), never by
//! `keyferry verify`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyferry_testkit::dataset::{Scale, populate};
use keyferry_testkit::resp::cmd;
use keyferry_testkit::tls::TlsRedis;
use keyferry_testkit::{RawClient, RedisServer, free_port};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyferry");
const PASSWORD_ENV: &str = "KEYFERRY_SOURCE_PASSWORD";
const CA_FILE_ENV: &str = "KEYFERRY_SOURCE_CA_FILE";

/// A failure that is reported at once (refused TLS handshake, refused
/// AUTH) must beat the 5 s connect timeout by far: anything slower means
/// keyferry waited or retried instead of failing.
const FAST: Duration = Duration::from_secs(4);

/// Small: these tests are about connecting, not volume.
const SCALE: Scale = Scale {
    keys_per_db: 150,
    big: 600,
};

/// The ACL user keyferry connects as (granted everything: `+@all`).
const USER: &str = "migrator";

/// One finished keyferry command and how long it took.
struct Ran {
    what: String,
    out: Output,
    took: Duration,
}

impl Ran {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert!(
            self.out.status.success(),
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            self.what,
            self.out.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Exit 1 (not a panic's 101, not a usage error's 2), quickly.
    #[track_caller]
    fn assert_fails_fast(&self) -> &Self {
        assert_eq!(
            self.code(),
            Some(1),
            "{} should fail with exit 1:\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout(),
            self.stderr()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "{} panicked: {}",
            self.what,
            self.stderr()
        );
        assert!(
            self.took < FAST,
            "{} took {:?} to fail: {}",
            self.what,
            self.took,
            self.stderr()
        );
        self
    }
}

/// The binary with a clean environment for the source's credentials and
/// CA: each test sets exactly the variables it means.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove(PASSWORD_ENV)
        .env_remove(CA_FILE_ENV)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Longer than any of these commands takes by far: a command still
/// running then is hung, and the test says so instead of hanging too.
const HUNG: Duration = Duration::from_secs(30);

/// Runs keyferry to completion (or kills it after [`HUNG`] and fails).
fn keyferry(args: &[&str], env: &[(&str, &str)]) -> Ran {
    finish(launch(args, env))
}

/// A running keyferry whose output is read as it comes (a full pipe would
/// block it), killed and reaped if the test fails while it runs.
struct Running {
    what: String,
    child: Child,
    started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn launch(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = command(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keyferry");
    Running {
        what: format!("keyferry {}", args.join(" ")),
        started: Instant::now(),
        stdout: child.stdout.take().map(drain),
        stderr: child.stderr.take().map(drain),
        child,
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for a started keyferry (or kills it after [`HUNG`] and fails).
fn finish(mut running: Running) -> Ran {
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("poll keyferry") {
            break status;
        }
        if running.started.elapsed() > HUNG {
            let _ = running.child.kill();
            let _ = running.child.wait();
            let stderr = running.stderr.take().map(|p| p.join().unwrap());
            panic!(
                "{} still running after {HUNG:?}: hung. stderr:\n{}",
                running.what,
                String::from_utf8_lossy(&stderr.unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = running.started.elapsed();
    let output =
        |pipe: Option<JoinHandle<Vec<u8>>>| pipe.map(|p| p.join().unwrap()).unwrap_or_default();
    let stdout = output(running.stdout.take());
    let stderr = output(running.stderr.take());
    Ran {
        what: running.what.clone(),
        out: Output {
            status,
            stdout,
            stderr,
        },
        took,
    }
}

/// A `migrate --cutover auto` that switches at once (`--switch-cmd true`).
fn migrate(from: &str, to: &str, run_id: &str, extra: &[&str], env: &[(&str, &str)]) -> Ran {
    let args = [
        &[
            "migrate",
            "--from",
            from,
            "--to",
            to,
            "--run-id",
            run_id,
            "--cutover",
            "auto",
            "--switch-cmd",
            "true",
        ][..],
        extra,
    ]
    .concat();
    keyferry(&args, env)
}

/// A source with keyspace notifications on (the tracker needs them) and a
/// small data set in databases 0, 1 and 5.
fn populated_source() -> RedisServer {
    let source = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    populate(source.port(), 11, SCALE);
    source
}

/// Adds the ACL user `migrator` with `password` (the default user stays
/// open, so the tests' own setup and comparison need no password).
fn add_user(port: u16, password: &str) {
    let mut admin = RawClient::connect(port).expect("connect to the source");
    let reply = cmd(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            USER,
            "on",
            &format!(">{password}"),
            "~*",
            "&*",
            "+@all",
        ],
    );
    assert_eq!(reply, b"+OK\r\n", "{}", String::from_utf8_lossy(&reply));
}

/// A fresh destination path in `dir`, as a path and as an argument.
fn destination(dir: &tempfile::TempDir, name: &str) -> (PathBuf, String) {
    let path = dir.path().join(name);
    let shown = path.to_str().expect("utf-8 temp path").to_string();
    (path, shown)
}

/// Serves the destination and compares every key with the source's.
#[track_caller]
fn assert_identical(source_port: u16, destination: &Path) {
    keyferry_testkit::dataset::assert_served_identical(Path::new(BIN), source_port, destination);
}

/// A migrate that worked: exit 0, the switch ran, the keyspaces agree.
#[track_caller]
fn assert_migrated(ran: &Ran, source_port: u16, destination: &Path) {
    ran.assert_ok();
    assert!(ran.stdout().contains("switched: true"), "{}", ran.stdout());
    assert_identical(source_port, destination);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn json(ran: &Ran) -> Value {
    serde_json::from_slice(&ran.out.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}: {}\n{}", ran.what, ran.stdout(), ran.stderr()))
}

// ---------------------------------------------------------------- TLS

#[test]
fn rediss_source_migrates_with_the_ca_from_the_environment() {
    let source = TlsRedis::start(&["--notify-keyspace-events", "KEA"]);
    populate(source.port(), 3, SCALE);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "tls.sqlite");
    let ca = source.ca_file();
    let from = format!("rediss://localhost:{}", source.tls_port());
    let ran = migrate(
        &from,
        &dest_arg,
        "tls",
        &[],
        &[(CA_FILE_ENV, ca.to_str().unwrap())],
    );
    assert_migrated(&ran, source.port(), &dest);
    eprintln!("rediss migrate took {:?}", ran.took);
    // The certificate's IP address verifies too, and an ACL user's
    // password travels inside TLS.
    add_user(source.port(), "s3cret");
    let ran = keyferry(
        &[
            "preflight",
            "--from",
            &format!("rediss://{USER}:s3cret@127.0.0.1:{}", source.tls_port()),
            "--to",
            &dest_arg,
            "--json",
        ],
        &[(CA_FILE_ENV, ca.to_str().unwrap())],
    );
    ran.assert_ok();
    let report = json(&ran);
    assert_eq!(report["reachable"], true, "{report}");
    assert_eq!(
        report["source"],
        format!("rediss://{USER}:***@127.0.0.1:{}/0", source.tls_port())
    );
}

#[test]
fn rediss_without_the_ca_fails_fast_with_a_certificate_error() {
    let source = TlsRedis::start(&["--notify-keyspace-events", "KEA"]);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "tls.sqlite");
    let from = format!("rediss://localhost:{}", source.tls_port());

    // The public web roots do not know the test CA.
    let ran = migrate(&from, &dest_arg, "noca", &[], &[]);
    ran.assert_fails_fast();
    let stderr = ran.stderr().to_lowercase();
    assert!(
        stderr.contains("certificate") && stderr.contains("cannot connect to the source"),
        "no clear TLS error: {stderr}"
    );
    assert!(
        !dest.exists(),
        "a failed connection created the destination"
    );

    // Preflight says the same, and names the source.
    let ran = keyferry(&["preflight", "--from", &from, "--to", &dest_arg], &[]);
    assert_eq!(ran.code(), Some(1), "{}\n{}", ran.stdout(), ran.stderr());
    assert!(ran.took < FAST, "preflight took {:?}", ran.took);
    let said = format!("{}{}", ran.stdout(), ran.stderr()).to_lowercase();
    assert!(said.contains("certificate"), "{said}");
    eprintln!("without the CA: {}", ran.stderr());

    // A CA file that does not exist is named, not ignored.
    let missing = dir.path().join("no-such-ca.pem");
    let ran = migrate(
        &from,
        &dest_arg,
        "noca",
        &[],
        &[(CA_FILE_ENV, missing.to_str().unwrap())],
    );
    ran.assert_fails_fast();
    assert!(
        ran.stderr().contains("no-such-ca.pem") && ran.stderr().contains(CA_FILE_ENV),
        "{}",
        ran.stderr()
    );
}

// ---------------------------------------------------------------- ACL users

#[test]
fn acl_user_with_the_password_in_the_uri() {
    let source = populated_source();
    add_user(source.port(), "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "uri.sqlite");
    let from = format!("redis://{USER}:s3cret@127.0.0.1:{}", source.port());
    let ran = migrate(&from, &dest_arg, "acl-uri", &[], &[]);
    assert_migrated(&ran, source.port(), &dest);
    eprintln!("ACL user, password in the URI: migrate took {:?}", ran.took);
}

#[test]
fn acl_user_with_the_password_from_the_environment() {
    let source = populated_source();
    add_user(source.port(), "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "env.sqlite");
    let from = format!("redis://{USER}@127.0.0.1:{}", source.port());
    let ran = migrate(
        &from,
        &dest_arg,
        "acl-env",
        &[],
        &[(PASSWORD_ENV, "s3cret")],
    );
    assert_migrated(&ran, source.port(), &dest);
    eprintln!(
        "ACL user, password in the environment: migrate took {:?}",
        ran.took
    );
}

#[test]
fn acl_user_with_the_password_from_a_file_with_a_trailing_newline() {
    let source = populated_source();
    add_user(source.port(), "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "file.sqlite");
    let file = dir.path().join("password");
    std::fs::write(&file, "s3cret\n").unwrap();
    let from = format!("redis://{USER}@127.0.0.1:{}", source.port());
    // The file wins over the environment, which holds a wrong password.
    let ran = migrate(
        &from,
        &dest_arg,
        "acl-file",
        &["--from-password-file", file.to_str().unwrap()],
        &[(PASSWORD_ENV, "wrong")],
    );
    assert_migrated(&ran, source.port(), &dest);
    eprintln!("ACL user, password in a file: migrate took {:?}", ran.took);
}

#[test]
fn a_wrong_password_fails_fast_with_an_auth_error() {
    let source = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    add_user(source.port(), "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "wrong.sqlite");
    let port = source.port();
    let user_only = format!("redis://{USER}@127.0.0.1:{port}");
    let wrong_file = dir.path().join("password");
    std::fs::write(&wrong_file, "Wr0ng-From-File\n").unwrap();
    /// Where the wrong password comes from.
    struct Case<'a> {
        how: &'a str,
        from: String,
        extra: Vec<&'a str>,
        env: Vec<(&'a str, &'a str)>,
        password: &'a str,
    }
    let cases = [
        Case {
            how: "in the URI",
            from: format!("redis://{USER}:Wr0ng-In-Uri@127.0.0.1:{port}"),
            extra: vec![],
            env: vec![],
            password: "Wr0ng-In-Uri",
        },
        Case {
            how: "in the environment",
            from: user_only.clone(),
            extra: vec![],
            env: vec![(PASSWORD_ENV, "Wr0ng-In-Env")],
            password: "Wr0ng-In-Env",
        },
        Case {
            how: "in the file",
            from: user_only.clone(),
            extra: vec!["--from-password-file", wrong_file.to_str().unwrap()],
            env: vec![],
            password: "Wr0ng-From-File",
        },
    ];
    for Case {
        how,
        from,
        extra,
        env,
        password,
    } in &cases
    {
        let ran = migrate(from, &dest_arg, "wrong", extra, env);
        ran.assert_fails_fast();
        let stderr = ran.stderr();
        assert!(
            stderr.contains("cannot connect to the source")
                && stderr.to_lowercase().contains("authentication failed"),
            "password {how}: no clear auth error: {stderr}"
        );
        assert!(
            !stderr.contains(password) && !ran.stdout().contains(password),
            "password {how} leaked: {stderr}"
        );
        assert!(
            !dest.exists(),
            "password {how}: a refused AUTH created the destination"
        );
        eprintln!("password {how}: {} in {:?}", stderr.trim(), ran.took);
    }
    // A password file that cannot be read is named.
    let missing = dir.path().join("no-such-password");
    let ran = migrate(
        &user_only,
        &dest_arg,
        "wrong",
        &["--from-password-file", missing.to_str().unwrap()],
        &[],
    );
    ran.assert_fails_fast();
    assert!(
        ran.stderr().contains("no-such-password"),
        "{}",
        ran.stderr()
    );
}

#[test]
fn a_named_user_without_a_password_is_not_dropped_for_the_default_user() {
    let source = RedisServer::start();
    add_user(source.port(), "s3cret");
    let mut admin = RawClient::connect(source.port()).unwrap();
    let port = source.port();
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "nopw.sqlite");
    // No password anywhere: keyferry must not fall back to the (open)
    // default user, which the operator did not name.
    let ran = migrate(
        &format!("redis://{USER}@127.0.0.1:{port}"),
        &dest_arg,
        "nopw",
        &[],
        &[],
    );
    ran.assert_fails_fast();
    assert!(
        ran.stderr()
            .to_lowercase()
            .contains("authentication failed"),
        "{}",
        ran.stderr()
    );
    assert!(!dest.exists());
    // A `nopass` user needs no password, and is who keyferry acts as: with
    // the default user disabled, nothing else would work.
    for argv in [
        &[
            "ACL", "SETUSER", "reader", "on", "nopass", "~*", "&*", "+@all",
        ][..],
        &["ACL", "SETUSER", "default", "off"],
    ] {
        assert_eq!(cmd(&mut admin, argv), b"+OK\r\n", "{argv:?}");
    }
    let ran = keyferry(
        &[
            "preflight",
            "--from",
            &format!("redis://reader@127.0.0.1:{port}"),
            "--to",
            &dest_arg,
            "--json",
        ],
        &[],
    );
    ran.assert_ok();
    assert_eq!(json(&ran)["reachable"], true);
}

// ---------------------------------------------------------------- no leaks

/// A password no output could contain by chance.
const CANARY: &str = "Pw-c4n4ry-7f3a9c";

/// Every command in the leak tests logs as much as it can.
const VERBOSE: (&str, &str) = ("RUST_LOG", "debug");

/// Collects what every command printed, to search it for the password.
#[derive(Default)]
struct Transcript {
    outputs: Vec<(String, Vec<u8>)>,
}

impl Transcript {
    fn run(&mut self, args: &[&str]) -> Ran {
        let ran = keyferry(args, &[VERBOSE]);
        self.record(&ran);
        ran
    }

    fn record(&mut self, ran: &Ran) {
        self.outputs
            .push((format!("stdout of {}", ran.what), ran.out.stdout.clone()));
        self.outputs
            .push((format!("stderr of {}", ran.what), ran.out.stderr.clone()));
    }

    fn add(&mut self, what: String, bytes: Vec<u8>) {
        self.outputs.push((what, bytes));
    }

    /// Every file of the destination (`PATH`, `PATH-wal`, `PATH-shm`,
    /// `PATH-journal`…), read after the commands exited.
    fn add_destination(&mut self, destination: &Path) {
        let name = destination.file_name().unwrap().to_str().unwrap();
        let mut found = 0;
        for entry in std::fs::read_dir(destination.parent().unwrap()).unwrap() {
            let entry = entry.unwrap();
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(name) {
                found += 1;
                let bytes = std::fs::read(entry.path()).unwrap();
                self.add(format!("destination file {file}"), bytes);
            }
        }
        assert!(found > 0, "no destination file {name}");
    }

    #[track_caller]
    fn assert_never_shows(&self, password: &str) {
        assert!(self.outputs.len() > 4, "nothing was checked");
        for (what, bytes) in &self.outputs {
            assert!(
                !contains(bytes, password.as_bytes()),
                "the password appears in the {what}:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

/// `GET /metrics` from a metrics listener.
fn scrape(addr: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = Vec::new();
    stream.read_to_end(&mut body).expect("read the metrics");
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// Polls `keyferry status --json` until the tracker is subscribed.
fn wait_for_tracker(transcript: &mut Transcript, run: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ran = transcript.run(&[&["status", "--json"][..], run].concat());
        if ran.out.status.success() && json(&ran)["tracker_connected"] == true {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the tracker never connected: {}{}",
            ran.stdout(),
            ran.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_password_in_the_uri_never_leaks_from_the_step_commands() {
    let source = populated_source();
    add_user(source.port(), CANARY);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "steps.sqlite");
    let from = format!("redis://{USER}:{CANARY}@127.0.0.1:{}", source.port());
    let mut t = Transcript::default();
    let start = Instant::now();

    t.run(&["preflight", "--from", &from, "--to", &dest_arg])
        .assert_ok();
    let pre = t.run(&["preflight", "--from", &from, "--to", &dest_arg, "--json"]);
    pre.assert_ok();
    assert_eq!(
        json(&pre)["source"],
        format!("redis://{USER}:***@127.0.0.1:{}/0", source.port())
    );

    let steps = ["--run-id", "steps", "--from", &from, "--to", &dest_arg];
    let run = ["--run-id", "steps", "--to", &dest_arg];
    let metrics = format!("127.0.0.1:{}", free_port());
    let tracker = launch(
        &[
            &["tracker", "start", "--metrics-addr", &metrics][..],
            &steps[..],
        ]
        .concat(),
        &[VERBOSE],
    );
    wait_for_tracker(&mut t, &run);
    t.run(&[&["bulk", "--metrics-addr", &free_addr()][..], &steps[..]].concat())
        .assert_ok();
    t.run(&[&["apply-dirty"][..], &steps[..]].concat())
        .assert_ok();
    t.add(
        format!("metrics of the tracker on {metrics}"),
        scrape(&metrics),
    );
    let status = t.run(&[&["status", "--json"][..], &run[..]].concat());
    status.assert_ok();
    assert_eq!(
        json(&status)["source_uri"],
        format!("redis://{USER}@127.0.0.1:{}/0", source.port()),
        "status shows the source without its password"
    );
    t.run(&[&["status"][..], &run[..]].concat()).assert_ok();
    t.run(&[&["verify", "--json"][..], &steps[..]].concat())
        .assert_ok();
    t.run(&[&["tracker", "stop"][..], &run[..]].concat())
        .assert_ok();
    let tracker = finish(tracker);
    tracker.assert_ok();
    t.record(&tracker);
    let took = start.elapsed();

    // Failures quote the source too.
    let usage = t.run(&[
        "bulk",
        "--from",
        &format!("{from}/notadb"),
        "--to",
        &dest_arg,
        "--run-id",
        "x",
    ]);
    assert_eq!(usage.code(), Some(2), "{}", usage.stderr());
    let unreachable = format!("redis://{USER}:{CANARY}@127.0.0.1:{}", free_port());
    let refused = t.run(&["preflight", "--from", &unreachable, "--to", &dest_arg]);
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr());
    let refused = t.run(&[&["apply-dirty", "--from", &unreachable][..], &run[..]].concat());
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr());

    t.add_destination(&dest);
    t.assert_never_shows(CANARY);
    assert_identical(source.port(), &dest);
    eprintln!("step commands took {took:?}");
}

#[test]
fn a_password_in_the_uri_never_leaks_from_migrate() {
    let source = populated_source();
    add_user(source.port(), CANARY);
    let dir = tempfile::tempdir().unwrap();
    let (dest, dest_arg) = destination(&dir, "migrate.sqlite");
    let from = format!("redis://{USER}:{CANARY}@127.0.0.1:{}", source.port());
    let mut t = Transcript::default();
    let ran = keyferry(
        &[
            "migrate",
            "--from",
            &from,
            "--to",
            &dest_arg,
            "--run-id",
            "leak",
            "--cutover",
            "auto",
            "--switch-cmd",
            "true",
            "--metrics-addr",
            &free_addr(),
        ],
        &[VERBOSE],
    );
    t.record(&ran);
    assert_migrated(&ran, source.port(), &dest);
    let run = ["--run-id", "leak", "--to", &dest_arg];
    let status = t.run(&[&["status", "--json"][..], &run[..]].concat());
    status.assert_ok();
    assert_eq!(json(&status)["status"], "completed");
    t.run(&[&["status"][..], &run[..]].concat()).assert_ok();
    t.add_destination(&dest);
    t.assert_never_shows(CANARY);
    eprintln!("migrate with the password in the URI took {:?}", ran.took);
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

// ---------------------------------------------------------------- /db

#[test]
fn a_database_in_the_uri_works_for_preflight() {
    let source = RedisServer::start();
    let mut admin = RawClient::connect(source.port()).unwrap();
    for argv in [
        &["SET", "in-db0", "v"][..],
        &["SELECT", "3"],
        &["SET", "a", "1"],
        &["SET", "b", "2", "EX", "1000"],
        &["HSET", "c", "f", "v"],
    ] {
        let reply = cmd(&mut admin, argv);
        assert!(
            !reply.starts_with(b"-"),
            "{argv:?}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    add_user(source.port(), "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let (_, dest_arg) = destination(&dir, "db3.sqlite");
    for from in [
        format!("redis://127.0.0.1:{}/3", source.port()),
        format!("redis://{USER}:s3cret@127.0.0.1:{}/3", source.port()),
    ] {
        let ran = keyferry(
            &["preflight", "--from", &from, "--to", &dest_arg, "--json"],
            &[],
        );
        ran.assert_ok();
        let report = json(&ran);
        assert_eq!(report["reachable"], true, "{report}");
        assert!(
            report["source"].as_str().unwrap().ends_with("/3"),
            "{report}"
        );
        let dbs = report["databases"].as_array().unwrap();
        let db3 = dbs
            .iter()
            .find(|d| d["db"] == 3)
            .unwrap_or_else(|| panic!("no database 3 in {report}"));
        assert_eq!(
            (db3["keys"].as_u64(), db3["expires"].as_u64()),
            (Some(3), Some(1))
        );
        assert!(!ran.stdout().contains("s3cret"), "{}", ran.stdout());
        // Text mode says the same.
        let ran = keyferry(&["preflight", "--from", &from, "--to", &dest_arg], &[]);
        ran.assert_ok();
        assert!(
            ran.stdout().contains("db3 3 (1 with TTL)"),
            "{}",
            ran.stdout()
        );
    }
}

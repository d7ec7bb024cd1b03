//! `keyferry serve` as clients see it: `redis-cli` and the `redis` crate
//! get PONG, replies match a real `redis-server` byte for byte, SIGTERM
//! shuts it down cleanly, and metrics are served.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use keyferry_testkit::{KeyferryServe, RawClient, RedisServer, free_port, redis_tool};

fn serve(extra: &[&str]) -> KeyferryServe {
    KeyferryServe::start(Path::new(env!("CARGO_BIN_EXE_keyferry")), extra)
}

#[test]
fn redis_cli_gets_pong() {
    let server = serve(&[]);
    let out = Command::new(redis_tool("redis-cli"))
        .args(["-p", &server.port().to_string(), "ping"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PONG\n");
}

#[tokio::test]
async fn redis_crate_pings_with_and_without_a_message() {
    let server = serve(&[]);
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let binary = b"\0\r\n\xff".to_vec();
    let echoed: Vec<u8> = redis::cmd("PING")
        .arg(&binary)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(echoed, binary);
    let err = redis::cmd("NOSUCHCMD")
        .arg("x")
        .query_async::<()>(&mut conn)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown command 'NOSUCHCMD'"),
        "{err}"
    );
}

/// Sends each request on one connection per server and compares the
/// replies byte for byte; `replies` is how many the request produces.
fn assert_same_replies(redis_port: u16, keyferry_port: u16, cases: &[(&[u8], usize)]) {
    let mut redis = RawClient::connect(redis_port).unwrap();
    let mut keyferry = RawClient::connect(keyferry_port).unwrap();
    for &(request, replies) in cases {
        redis.send(request).unwrap();
        keyferry.send(request).unwrap();
        for _ in 0..replies {
            let expected = redis.read_reply().unwrap();
            let got = keyferry.read_reply().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "request {:?}",
                String::from_utf8_lossy(request)
            );
            assert_eq!(got, expected);
        }
    }
}

/// Sends a malformed request on a fresh connection to each server: both
/// must answer the same error and then close the connection.
fn assert_same_protocol_error(redis_port: u16, keyferry_port: u16, request: &[u8]) {
    let mut replies = Vec::new();
    for port in [redis_port, keyferry_port] {
        let mut client = RawClient::connect(port).unwrap();
        client.send(request).unwrap();
        let reply = client.read_reply().unwrap();
        assert!(
            client.is_closed().unwrap(),
            "port {port} left the connection open after {reply:?}"
        );
        replies.push(reply);
    }
    assert_eq!(
        replies[1],
        replies[0],
        "request {:?}",
        String::from_utf8_lossy(request)
    );
}

fn long_args() -> Vec<u8> {
    let mut request = b"*6\r\n$9\r\nNOSUCHCMD\r\n".to_vec();
    for arg in [
        vec![b'x'; 100],
        b"nul\0hidden".to_vec(),
        vec![b'y'; 60],
        b"never".to_vec(),
        b"\xff\xfe".to_vec(),
    ] {
        request.extend(format!("${}\r\n", arg.len()).as_bytes());
        request.extend(arg);
        request.extend(b"\r\n");
    }
    request
}

#[test]
fn replies_match_redis_server_byte_for_byte() {
    let redis = RedisServer::start();
    let keyferry = serve(&[]);
    let long = long_args();
    let long_name = format!("*1\r\n$200\r\n{}\r\n", "z".repeat(200));
    let cases: &[(&[u8], usize)] = &[
        (b"*2\r\n$3\r\nfoo\r\n$1\r\na\r\n", 1),
        (b"*1\r\n$3\r\nfoo\r\n", 1),
        (b"*3\r\n$3\r\nfoo\r\n$4\r\na\r\nb\r\n$3\r\nc\nd\r\n", 1),
        (&long, 1),
        (long_name.as_bytes(), 1),
        (b"*1\r\n$0\r\n\r\n", 1),
        (b"foo bar  baz\r\n", 1),
        (
            b"PING\r\nping hello\n*3\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\nb\r\n",
            3,
        ),
        (b"*2\r\n$4\r\nPiNg\r\n$4\r\n\0\r\n\xff\r\n", 1),
        // Blank lines, *0 and *-1 produce nothing; the PING after them does.
        (b"\r\n*0\r\n*-1\r\nPING\r\n", 1),
        (b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", 1),
        (b"*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n", 1),
        (b"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$2\r\npw\r\n", 1),
        (b"*4\r\n$4\r\nAUTH\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", 1),
        (b"*1\r\n$4\r\nAUTH\r\n", 1),
    ];
    assert_same_replies(redis.port(), keyferry.port(), cases);

    let malformed: &[&[u8]] = &[
        b"*1\r\nx\r\n",
        b"*1\r\n\xff\r\n",
        b"*x\r\n",
        b"*01\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$x\r\n",
        b"*1\r\n$536870913\r\n",
        b"*3000000000\r\n",
    ];
    for request in malformed {
        assert_same_protocol_error(redis.port(), keyferry.port(), request);
    }
}

#[test]
fn requirepass_matches_redis_server_byte_for_byte() {
    let redis = RedisServer::start_with_args(&["--requirepass", "sesame"]);
    let keyferry = serve(&["--requirepass", "sesame"]);
    let cases: &[(&[u8], usize)] = &[
        (b"PING\r\n", 1),
        (b"NOSUCHCMD a\r\n", 1),
        (b"PING a b\r\n", 1),
        (b"AUTH wrong\r\n", 1),
        (b"AUTH default wrong\r\n", 1),
        (b"HELLO 3\r\n", 1),
        (b"HELLO 3 AUTH default wrong\r\n", 1),
        (b"CLIENT FOO\r\n", 1),
        (b"CLIENT SETNAME\r\n", 1),
        (b"CLIENT ID\r\n", 1),
        (b"RESET\r\n", 1),
        (b"AUTH sesame\r\nPING\r\n", 2),
        (b"RESET\r\nPING\r\nAUTH sesame\r\n", 3),
        // Authenticated: requests past the unauthenticated limits are fine.
        (b"*12\r\n$4\r\nnope\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n$1\r\n8\r\n$1\r\n9\r\n$1\r\n0\r\n$1\r\n1\r\n", 1),
    ];
    assert_same_replies(redis.port(), keyferry.port(), cases);
    assert_same_protocol_error(redis.port(), keyferry.port(), b"*11\r\n");
    assert_same_protocol_error(redis.port(), keyferry.port(), b"*1\r\n$16385\r\n");
}

#[test]
fn sigterm_finishes_connections_closes_the_database_and_exits_0() {
    let mut server = serve(&[]);
    let mut idle = RawClient::connect(server.port()).unwrap();
    assert_eq!(idle.command(&[b"PING"]).unwrap(), b"+PONG\r\n");

    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.log()
    );
    assert!(
        idle.is_closed().unwrap(),
        "the idle connection was not closed"
    );
    let log = server.log();
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // SQLite deletes the WAL when the last connection to the file closes.
    let wal = server.db_path().with_extension("db-wal");
    assert!(
        server.db_path().exists() && !wal.exists(),
        "the database was not closed cleanly"
    );
}

/// GETs `path` from `127.0.0.1:port` over plain HTTP/1.1, retrying until
/// the listener is up.
fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(mut stream) => {
                write!(
                    stream,
                    "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                return response;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("metrics endpoint never came up: {e}"),
        }
    }
}

#[test]
fn metrics_count_commands_and_clients() {
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = serve(&["--metrics-addr", &metrics_addr]);
    let mut client = RawClient::connect(server.port()).unwrap();
    for _ in 0..3 {
        client.command(&[b"PING"]).unwrap();
    }
    client.command(&[b"NOSUCHCMD"]).unwrap();

    let response = http_get(metrics_port, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The readiness probe of the test harness pinged too, hence "at least".
    let count = |label: &str| -> f64 {
        let prefix = format!("keyferry_commands_total{{command=\"{label}\"}} ");
        let line = response
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{prefix} missing:\n{response}"));
        line[prefix.len()..].parse().unwrap()
    };
    assert!(count("ping") >= 3.0);
    assert_eq!(count("unknown"), 1.0);
    // At least this client; the harness's probes may not have hung up yet.
    let clients = response
        .lines()
        .find_map(|l| l.strip_prefix("keyferry_connected_clients "));
    assert!(
        clients
            .and_then(|n| n.parse::<f64>().ok())
            .is_some_and(|n| n >= 1.0),
        "{response}"
    );
}

/// A client that pipelines reads and never reads the replies must not keep
/// the WAL from being checkpointed and emptied: its pipeline's shared read
/// transaction ends once its reply queue is full, before the session waits
/// for room. (Redis has no WAL; what it shares with us is that such a
/// client costs only its own output buffer, not the server's.)
#[test]
fn a_client_that_stops_reading_does_not_pin_the_wal() {
    const VALUE_LEN: usize = 4096;
    // Far more reply bytes (48 MiB) than the socket buffers and the reply
    // queue (4096 replies) hold, so the session must wait for room.
    const GETS: usize = 12_000;
    let server = serve(&[]);
    let mut writer = RawClient::connect(server.port()).unwrap();
    let value = vec![b'v'; VALUE_LEN];
    assert_eq!(writer.command(&[b"SET", b"v", &value]).unwrap(), b"+OK\r\n");

    let stalled = TcpStream::connect((Ipv4Addr::LOCALHOST, server.port())).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut requests = stalled.try_clone().unwrap();
    // The server stops reading this socket while the queue is full, so the
    // requests are sent from a thread of their own.
    let sender = std::thread::spawn(move || {
        let get = b"*2\r\n$3\r\nGET\r\n$1\r\nv\r\n".repeat(GETS);
        requests.write_all(&get)
    });

    // Wait until the replies back up: the unread bytes stop growing once
    // the socket buffers are full, and the queue fills right after.
    let mut unread = vec![0; 64 << 20];
    let mut last = 0;
    let backed_up_by = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < backed_up_by, "the replies never backed up");
        std::thread::sleep(Duration::from_millis(100));
        let now = stalled.peek(&mut unread).unwrap();
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    drop(unread);

    // Meanwhile the WAL keeps changing; the stalled client's snapshot is
    // older than these writes.
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    db.busy_timeout(Duration::from_millis(100)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let truncated = loop {
        assert_eq!(writer.command(&[b"INCR", b"n"]).unwrap()[0], b':');
        let busy: i64 = db
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .unwrap();
        if busy == 0 || Instant::now() > deadline {
            break busy == 0;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        truncated,
        "a client that stopped reading kept the WAL from being truncated"
    );

    // Nothing was lost: every GET is answered in order, in full.
    let mut replies = std::io::BufReader::new(stalled);
    let expected = [
        format!("${VALUE_LEN}\r\n").into_bytes(),
        value,
        b"\r\n".to_vec(),
    ]
    .concat();
    let mut reply = vec![0; expected.len()];
    for i in 0..GETS {
        replies.read_exact(&mut reply).unwrap();
        assert!(reply == expected, "reply {i} differs");
    }
    sender.join().unwrap().unwrap();
}

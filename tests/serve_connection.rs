//! Connection and server commands, inline requests and RESP3, compared
//! byte for byte with a real `redis-server`.
//!
//! Normalisations (documented where used): `HELLO`'s client `id`, `TIME`'s
//! values, and `CLIENT ID`, which count differently on each server.

use keyferry_testkit::{Differ, RawClient};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

#[test]
fn connection_commands_match_redis() {
    let mut d = differ();
    d.check_all(&[
        &["PING"],
        &["PING", "hello"],
        &["PING", "a", "b"],
        &["ECHO", "x"],
        &["ECHO"],
        &["SELECT", "15"],
        &["SELECT", "16"],
        &["SELECT", "-1"],
        &["SELECT", "x"],
        &["SELECT", "0"],
        &["AUTH", "pw"],
        &["AUTH", "default", "pw"],
        &["CLIENT"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "worker-1"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "a b"],
        &["CLIENT", "SETNAME"],
        &["CLIENT", "SETNAME", ""],
        &["CLIENT", "GETNAME"],
        &["client", "nosuch"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "NO-EVICT", "maybe"],
        &["CLIENT", "UNBLOCK", "12345"],
        &["CLIENT", "UNBLOCK", "x"],
        &["CLIENT", "UNBLOCK", "5", "foo"],
        &["CLIENT", "KILL", "ID", "x"],
        &["CLIENT", "KILL", "ID", "99999"],
        &["CLIENT", "KILL", "1.2.3.4:5"],
        &["CLIENT", "KILL", "ID"],
        &["FUNCTION", "FLUSH"],
        &["FUNCTION", "FLUSH", "ASYNC"],
        &["FUNCTION", "FLUSH", "x"],
        &["FUNCTION", "nosuch"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "GET", "databases"],
        &["CONFIG", "GET", "nosuch-parameter"],
        &["CONFIG", "GET"],
        &["CONFIG", "SET", "nosuch", "1"],
        &["CONFIG", "SET", "maxclients", "x"],
        &["CONFIG", "SET", "databases", "3"],
        &["CONFIG", "SET", "maxclients"],
        &["CONFIG", "REWRITE"],
        &["CONFIG", "nosuch"],
        &["COMMAND", "INFO", "nosuchcommand"],
        &["COMMAND", "nosuch"],
        &["PUBSUB", "NUMSUB", "a", "b"],
        &["PUBSUB", "NUMPAT"],
        &["PUBSUB", "CHANNELS"],
        &["PUBLISH", "nobody", "hi"],
        &["TIME", "x"],
        &["MULTI", "x"],
        &["EXEC"],
        &["DISCARD"],
        &["UNWATCH"],
        &["WATCH"],
        &["RESET"],
    ]);
    let time = d.both(|c| {
        let reply = String::from_utf8(c.command(&[b"TIME"]).unwrap()).unwrap();
        // Two bulk strings of digits whose values (and lengths) differ.
        reply
            .split("\r\n")
            .map(|l| match l.as_bytes().first() {
                Some(b'$') => "$",
                Some(b'0'..=b'9') if l.bytes().all(|b| b.is_ascii_digit()) => "N",
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    });
    assert_eq!(time, "*2\r\n$\r\nN\r\n$\r\nN\r\n");
    d.both(|c| c.command(&[b"QUIT"]).unwrap());
}

/// `HELLO`'s reply with the client id replaced by 0.
fn hello(c: &mut RawClient, argv: &[&[u8]]) -> Vec<u8> {
    let reply = String::from_utf8(c.command(argv).unwrap()).unwrap();
    let mut lines: Vec<String> = reply.split("\r\n").map(str::to_owned).collect();
    if let Some(i) = lines.iter().position(|l| l == "id") {
        lines[i + 1] = ":0".to_owned();
    }
    lines.join("\r\n").into_bytes()
}

#[test]
fn hello_switches_to_resp3_and_replies_change_type() {
    let mut d = differ();
    d.both(|c| hello(c, &[b"HELLO", b"3"]));
    d.check_all(&[
        &["HELLO", "4"],
        &["HELLO", "x"],
        &["HELLO", "3", "FOO"],
        &["HELLO", "2", "SETNAME"],
        &["PING"],
        &["CONFIG", "GET", "maxmemory"],
        &["CLIENT", "GETNAME"],
        &["PUBSUB", "NUMSUB", "a"],
        &["COMMAND", "INFO", "nosuchcommand"],
    ]);
    // Without requirepass, any password is accepted.
    d.both(|c| hello(c, &[b"HELLO", b"3", b"AUTH", b"default", b"any"]));
    d.both(|c| hello(c, &[b"HELLO", b"2", b"SETNAME", b"n"]));
    d.check_all(&[&["CLIENT", "GETNAME"], &["CONFIG", "GET", "maxmemory"]]);
    d.both(|c| hello(c, &[b"HELLO"]));
    d.resp3();
    d.check_all(&[&["CONFIG", "GET", "maxmemory"], &["ECHO", "resp3"]]);
}

#[test]
fn inline_commands_follow_redis_quoting() {
    let mut d = differ();
    for request in [
        &b"ECHO \"a b\\x41\\n\\\"\"\r\n"[..],
        b"ECHO 'it\\'s'\r\n",
        b"ECHO \"\"\r\n",
        b"echo x\"y z\"\n",
        b"  PING   \r\n",
    ] {
        d.both(|c| {
            c.send(request).unwrap();
            c.read_reply().unwrap()
        });
    }
    // Protocol errors close the connection: one fresh connection each.
    for request in [&b"ECHO \"abc\r\n"[..], b"ECHO 'a'b\r\n"] {
        let [expected, got] = [d.redis().port(), d.keyferry().port()].map(|port| {
            let mut c = RawClient::connect(port).unwrap();
            c.send(request).unwrap();
            let reply = c.read_reply().unwrap();
            (reply, c.is_closed().unwrap())
        });
        assert_eq!(expected, got);
    }
}

#[test]
fn subscribed_resp2_clients_are_limited_to_pubsub_commands() {
    let mut d = differ();
    d.check_all(&[
        &["SUBSCRIBE", "a", "b"],
        &["PING"],
        &["PING", "x"],
        &["GET", "k"],
        &["HELLO", "3"],
        &["PSUBSCRIBE", "n*"],
        &["PUNSUBSCRIBE"],
        &["UNSUBSCRIBE", "a"],
        &["UNSUBSCRIBE"],
        &["UNSUBSCRIBE"],
        &["PING"],
    ]);
}

/// Subscribes on one connection, publishes on another, and returns what
/// the subscriber receives: confirmations and messages, RESP2 and RESP3.
fn pubsub_exchange(port: u16) -> Vec<Vec<u8>> {
    let mut sub = RawClient::connect(port).unwrap();
    let mut publisher = RawClient::connect(port).unwrap();
    let mut seen = Vec::new();
    sub.send_command(&[b"SUBSCRIBE", b"news", b"sport"])
        .unwrap();
    seen.push(sub.read_reply().unwrap());
    seen.push(sub.read_reply().unwrap());
    sub.send_command(&[b"PSUBSCRIBE", b"n*"]).unwrap();
    seen.push(sub.read_reply().unwrap());
    seen.push(
        publisher
            .command(&[b"PUBLISH", b"news", b"a\r\nb"])
            .unwrap(),
    );
    seen.push(sub.read_reply().unwrap());
    seen.push(sub.read_reply().unwrap());
    seen.push(
        publisher
            .command(&[b"PUBSUB", b"NUMSUB", b"news", b"x"])
            .unwrap(),
    );
    seen.push(publisher.command(&[b"PUBSUB", b"NUMPAT"]).unwrap());
    seen.push(publisher.command(&[b"PUBSUB", b"CHANNELS", b"n*"]).unwrap());
    sub.send_command(&[b"UNSUBSCRIBE", b"news", b"sport"])
        .unwrap();
    seen.push(sub.read_reply().unwrap());
    seen.push(sub.read_reply().unwrap());
    sub.send_command(&[b"PUNSUBSCRIBE"]).unwrap();
    seen.push(sub.read_reply().unwrap());
    // RESP3: messages become push frames, and other commands work.
    sub.send_command(&[b"HELLO", b"3"]).unwrap();
    sub.read_reply().unwrap();
    sub.send_command(&[b"SUBSCRIBE", b"news"]).unwrap();
    seen.push(sub.read_reply().unwrap());
    seen.push(publisher.command(&[b"PUBLISH", b"news", b"hi"]).unwrap());
    seen.push(sub.read_reply().unwrap());
    seen.push(sub.command(&[b"ECHO", b"still usable"]).unwrap());
    // Without arguments: every channel (one here, since Redis confirms
    // several in an unspecified order).
    seen.push(sub.command(&[b"UNSUBSCRIBE"]).unwrap());
    seen
}

#[test]
fn pubsub_delivers_messages_like_redis() {
    let d = differ();
    assert_eq!(
        pubsub_exchange(d.keyferry().port()),
        pubsub_exchange(d.redis().port())
    );
}

#[test]
fn client_list_kill_and_info_describe_connections() {
    let d = differ();
    let port = d.keyferry().port();
    let mut a = RawClient::connect(port).unwrap();
    let mut b = RawClient::connect(port).unwrap();
    a.command(&[b"CLIENT", b"SETNAME", b"alpha"]).unwrap();
    b.command(&[b"SELECT", b"3"]).unwrap();
    let list = String::from_utf8(a.command(&[b"CLIENT", b"LIST"]).unwrap()).unwrap();
    assert!(
        list.contains(" name=alpha ") && list.contains(" db=3 "),
        "{list}"
    );
    let info = String::from_utf8(b.command(&[b"CLIENT", b"INFO"]).unwrap()).unwrap();
    assert!(
        info.contains(" db=3 ") && info.contains(" cmd=client|info "),
        "{info}"
    );
    let id = String::from_utf8(b.command(&[b"CLIENT", b"ID"]).unwrap()).unwrap();
    let id = id.trim_start_matches(':').trim_end();
    assert_eq!(
        a.command(&[b"CLIENT", b"KILL", b"ID", id.as_bytes()])
            .unwrap(),
        b":1\r\n"
    );
    assert!(b.is_closed().unwrap());
    assert_eq!(a.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
}

#[test]
fn info_reports_sections_redis_clients_parse() {
    let d = differ();
    let mut c = RawClient::connect(d.keyferry().port()).unwrap();
    c.command(&[b"SET", b"k", b"v"]).unwrap();
    c.command(&[b"SELECT", b"2"]).unwrap();
    c.command(&[b"SET", b"k2", b"v"]).unwrap();
    let info = String::from_utf8(c.command(&[b"INFO"]).unwrap()).unwrap();
    for needle in [
        "# Server\r\nredis_version:7.0.15\r\n",
        "connected_clients:",
        "blocked_clients:0",
        "db0:keys=1,expires=0",
        "db2:keys=1,expires=0",
    ] {
        assert!(info.contains(needle), "{needle} missing from\n{info}");
    }
    assert!(
        !info.contains("cmdstat_"),
        "commandstats is not a default section"
    );
    let stats = String::from_utf8(c.command(&[b"INFO", b"commandstats"]).unwrap()).unwrap();
    assert!(stats.contains("cmdstat_set:calls=2,"), "{stats}");
    assert!(!stats.contains("# Server"), "{stats}");
}

#[test]
fn command_lists_exactly_the_supported_commands() {
    let d = differ();
    let mut c = RawClient::connect(d.keyferry().port()).unwrap();
    let count = String::from_utf8(c.command(&[b"COMMAND", b"COUNT"]).unwrap()).unwrap();
    let count: usize = count[1..].trim_end().parse().unwrap();
    let list = c.command(&[b"COMMAND", b"LIST"]).unwrap();
    assert!(list.starts_with(format!("*{count}\r\n").as_bytes()));
    let info = c
        .command(&[b"COMMAND", b"INFO", b"ping", b"nosuch"])
        .unwrap();
    assert!(
        info.starts_with(
            b"*2\r\n*10\r\n$4\r\nping\r\n:-1\r\n*2\r\n+fast\r\n+sentinel\r\n:0\r\n:0\r\n:0\r\n"
        ),
        "{}",
        info.escape_ascii()
    );
    assert!(info.ends_with(b"$-1\r\n"));
    // Not supported: Redis's unknown-command error.
    assert!(
        c.command(&[b"SORT", b"k"])
            .unwrap()
            .starts_with(b"-ERR unknown command 'SORT'")
    );
}

#[test]
fn docs_list_every_supported_command() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md")).unwrap();
    let supported =
        &docs[docs.find("## Supported").unwrap()..docs.find("## Not supported").unwrap()];
    let documented: Vec<String> = supported
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_ascii_lowercase)
        .collect();
    let d = differ();
    let mut c = RawClient::connect(d.keyferry().port()).unwrap();
    let list = String::from_utf8(c.command(&[b"COMMAND", b"LIST"]).unwrap()).unwrap();
    let served: Vec<&str> = list
        .split("\r\n")
        .skip(2)
        .step_by(2)
        .filter(|n| !n.is_empty())
        .collect();
    assert!(!served.is_empty());
    for name in served {
        assert!(
            documented.iter().any(|d| d == name),
            "{name} is served but not in docs/commands.md"
        );
    }
}

#[test]
fn request_limits_follow_config_like_redis() {
    let mut d = differ();
    d.check_all(&[
        &["CONFIG", "SET", "proto-max-bulk-len", "1mb"],
        &["CONFIG", "GET", "proto-max-bulk-len"],
        &["CONFIG", "SET", "proto-max-bulk-len", "1k"],
        &["CONFIG", "SET", "client-query-buffer-limit", "2mb"],
        &["CONFIG", "GET", "client-query-buffer-limit"],
    ]);
    let [expected, got] = [d.redis().port(), d.keyferry().port()].map(|port| {
        let mut c = RawClient::connect(port).unwrap();
        let fits = vec![b'x'; 1024 * 1024];
        let echoed = c.command(&[b"ECHO", &fits]).unwrap().len();
        c.send(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n").unwrap();
        (echoed, c.read_reply().unwrap(), c.is_closed().unwrap())
    });
    assert_eq!(expected, got);
}

#[test]
fn quit_answers_then_closes_and_ignores_the_rest_of_the_pipeline() {
    let [expected, got] = {
        let d = differ();
        [d.redis().port(), d.keyferry().port()].map(|port| {
            let mut c = RawClient::connect(port).unwrap();
            c.send(b"PING\r\nQUIT\r\nPING\r\n").unwrap();
            let replies = [c.read_reply().unwrap(), c.read_reply().unwrap()];
            (replies, c.is_closed().unwrap())
        })
    };
    assert_eq!(expected, got);
    assert!(got.1, "the connection stayed open after QUIT");
}

//! `MULTI`/`EXEC`/`WATCH` and pipelining, compared with a real
//! `redis-server`: queued errors, errors inside `EXEC` that undo only their
//! own command, `WATCH` aborts (other clients, this client, expiry,
//! `FLUSHDB`), and a client's pipelined reads seeing its own writes.

use std::time::Duration;

use keyferry_testkit::{Differ, RawClient};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

#[test]
fn multi_exec_matches_redis() {
    let mut d = differ();
    d.check_all(&[
        // A command failing inside EXEC answers its error; the others run.
        &["MULTI"],
        &["SET", "k", "1"],
        &["INCR", "k"],
        &["LPUSH", "k", "x"],
        &["GET", "k"],
        &["PING"],
        &["EXEC"],
        &["GET", "k"],
        // Errors while queueing abort the whole block.
        &["MULTI"],
        &["SET", "k", "2"],
        &["NOSUCHCOMMAND"],
        &["GET"],
        &["EXEC"],
        &["GET", "k"],
        // Nesting and WATCH are refused inside MULTI without aborting it.
        &["MULTI"],
        &["MULTI"],
        &["WATCH", "k"],
        &["INCR", "k"],
        &["EXEC"],
        // SELECT inside the block moves the commands after it.
        &["MULTI"],
        &["SELECT", "1"],
        &["SET", "k", "db1"],
        &["SELECT", "0"],
        &["GET", "k"],
        &["EXEC"],
        &["SELECT", "1"],
        &["GET", "k"],
        &["SELECT", "0"],
        // DISCARD drops the queue.
        &["MULTI"],
        &["SET", "k", "discarded"],
        &["DISCARD"],
        &["GET", "k"],
        &["MULTI"],
        &["EXEC"],
        &["MULTI"],
        &["UNWATCH"],
        &["ECHO", "queued server command"],
        &["EXEC"],
    ]);
}

/// What happens between `WATCH` and `MULTI`, given the watcher and
/// another client.
type Act<'a> = &'a dyn Fn(&mut RawClient, &mut RawClient);

/// Runs a `WATCH` scenario on `port` with two clients: `watcher` watches
/// `k`, `other` acts, then `watcher` runs `MULTI; SET k mine; EXEC`.
/// Returns every reply.
fn watch_scenario(port: u16, act: Act<'_>) -> Vec<Vec<u8>> {
    let mut watcher = RawClient::connect(port).unwrap();
    let mut other = RawClient::connect(port).unwrap();
    let mut replies = vec![watcher.command(&[b"SET", b"k", b"0"]).unwrap()];
    replies.push(watcher.command(&[b"WATCH", b"k"]).unwrap());
    act(&mut watcher, &mut other);
    for argv in [
        &[&b"MULTI"[..]][..],
        &[b"SET", b"k", b"mine"],
        &[b"EXEC"],
        &[b"GET", b"k"],
    ] {
        replies.push(watcher.command(argv).unwrap());
    }
    replies
}

fn same_on_both(d: &Differ, act: Act<'_>) -> Vec<Vec<u8>> {
    let expected = watch_scenario(d.redis().port(), act);
    let got = watch_scenario(d.keyferry().port(), act);
    assert_eq!(
        got.iter()
            .map(|r| r.escape_ascii().to_string())
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|r| r.escape_ascii().to_string())
            .collect::<Vec<_>>()
    );
    got
}

#[test]
fn watch_aborts_exec_on_any_modification_like_redis() {
    let d = differ();
    let aborted = b"*-1\r\n".to_vec();
    let ran = b"*1\r\n+OK\r\n".to_vec();
    let cases: [(&str, Act<'_>, &Vec<u8>); 7] = [
        ("untouched", &|_, _| {}, &ran),
        (
            "another client writes the key",
            &|_, o| {
                o.command(&[b"SET", b"k", b"theirs"]).unwrap();
            },
            &aborted,
        ),
        (
            "another key changes",
            &|_, o| {
                o.command(&[b"SET", b"other", b"x"]).unwrap();
            },
            &ran,
        ),
        (
            "the watcher itself writes the key",
            &|w, _| {
                w.command(&[b"INCR", b"k"]).unwrap();
            },
            &aborted,
        ),
        (
            "the key expires",
            &|_, o| {
                o.command(&[b"PEXPIRE", b"k", b"20"]).unwrap();
                std::thread::sleep(Duration::from_millis(60));
            },
            &aborted,
        ),
        (
            "the database is flushed",
            &|_, o| {
                o.command(&[b"FLUSHDB"]).unwrap();
            },
            &aborted,
        ),
        (
            "UNWATCH forgets the key",
            &|w, o| {
                w.command(&[b"UNWATCH"]).unwrap();
                o.command(&[b"SET", b"k", b"theirs"]).unwrap();
            },
            &ran,
        ),
    ];
    for (what, act, expected) in cases {
        let replies = same_on_both(&d, act);
        assert_eq!(&replies[replies.len() - 2], expected, "{what}");
    }
}

/// Sends `rounds` pairs of `INCR c` / `GET c` in one write and checks that
/// every GET sees the INCR just before it.
fn pipeline_reads_own_writes(port: u16, rounds: usize) {
    let mut c = RawClient::connect(port).unwrap();
    let mut batch = Vec::new();
    for _ in 0..rounds {
        batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\n");
    }
    c.send(&batch).unwrap();
    for n in 1..=rounds {
        assert_eq!(c.read_reply().unwrap(), format!(":{n}\r\n").into_bytes());
        let text = n.to_string();
        assert_eq!(
            c.read_reply().unwrap(),
            format!("${}\r\n{text}\r\n", text.len()).into_bytes()
        );
    }
}

#[test]
fn pipelined_reads_see_the_clients_own_writes() {
    let d = differ();
    pipeline_reads_own_writes(d.redis().port(), 2000);
    pipeline_reads_own_writes(d.keyferry().port(), 2000);
}

/// Sends `rounds` of `GET d`, `INCR d` and 300 `PING`s in one write. The
/// reads of a pipeline share a read transaction until the client writes;
/// the `PING`s give the server time to commit the `INCR` before the next
/// `GET` (its queue of replies makes it yield now and then), which must
/// still see it.
fn pipeline_reads_after_writes(port: u16, rounds: usize) {
    const PINGS: usize = 300;
    let mut c = RawClient::connect(port).unwrap();
    let mut batch = Vec::new();
    for _ in 0..rounds {
        batch.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\nd\r\n*2\r\n$4\r\nINCR\r\n$1\r\nd\r\n");
        batch.extend_from_slice(&b"*1\r\n$4\r\nPING\r\n".repeat(PINGS));
    }
    c.send(&batch).unwrap();
    for n in 0..rounds {
        let expected = match n {
            0 => b"$-1\r\n".to_vec(),
            n => format!("${}\r\n{n}\r\n", n.to_string().len()).into_bytes(),
        };
        assert_eq!(c.read_reply().unwrap(), expected, "GET after {n} INCRs");
        assert_eq!(
            c.read_reply().unwrap(),
            format!(":{}\r\n", n + 1).into_bytes()
        );
        for _ in 0..PINGS {
            assert_eq!(c.read_reply().unwrap(), b"+PONG\r\n");
        }
    }
}

#[test]
fn pipelined_reads_after_writes_see_them() {
    let d = differ();
    pipeline_reads_after_writes(d.redis().port(), 200);
    pipeline_reads_after_writes(d.keyferry().port(), 200);
}

#[test]
fn pipelined_transactions_keep_replies_in_order() {
    let mut d = differ();
    d.both(|c| {
        let mut batch = Vec::new();
        for argv in [
            &["MULTI"][..],
            &["INCR", "n"],
            &["INCR", "n"],
            &["EXEC"],
            &["GET", "n"],
            &["WATCH", "n"],
            &["MULTI"],
            &["INCR", "n"],
            &["EXEC"],
            &["GET", "n"],
        ] {
            batch.extend(format!("*{}\r\n", argv.len()).bytes());
            for a in argv {
                batch.extend(format!("${}\r\n{a}\r\n", a.len()).bytes());
            }
        }
        c.send(&batch).unwrap();
        (0..10).map(|_| c.read_reply().unwrap()).collect::<Vec<_>>()
    });
}

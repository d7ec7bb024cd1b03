//! Blocking commands (`BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN
//! BZPOPMAX BZMPOP`) against a real `redis-server`, byte for byte.
//!
//! Single-client behaviour (argument errors, timeouts, `MULTI`) goes
//! through [`Differ::check`]. Scenarios with several clients run the same
//! script against each server and compare the transcripts; a script waits
//! until `INFO clients` shows its clients blocked before it goes on, so
//! the order of blocking is the same on both servers.

use std::thread::sleep;
use std::time::Duration;

use keyferry_testkit::{Differ, RawClient};

fn differ() -> Differ {
    Differ::start(env!("CARGO_BIN_EXE_keyferry"))
}

fn show(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).replace("\r\n", " ")
}

fn send(c: &mut RawClient, argv: &[&str]) {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    c.send_command(&argv).expect("send");
}

fn cmd(c: &mut RawClient, argv: &[&str]) -> String {
    send(c, argv);
    show(&c.read_reply().expect("reply"))
}

fn read(c: &mut RawClient) -> String {
    show(&c.read_reply().expect("reply"))
}

/// Waits until the server reports `n` blocked clients.
fn wait_blocked(c: &mut RawClient, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    for _ in 0..2000 {
        send(c, &["INFO", "clients"]);
        let info = c.read_reply().expect("INFO");
        if String::from_utf8_lossy(&info).contains(&want) {
            return;
        }
        sleep(Duration::from_millis(2));
    }
    panic!("never saw {want:?}");
}

/// Sends blocking command `argv` on `c` and waits (asking on `p`) until
/// `n` clients are blocked, so the order of blocking is the same on both
/// servers.
fn block(p: &mut RawClient, c: &mut RawClient, argv: &[&str], n: usize) {
    send(c, argv);
    wait_blocked(p, n);
}

/// Runs `script` against both servers (given a function that opens a
/// connection) and asserts equal transcripts.
fn same_transcript(d: &Differ, script: impl Fn(&mut dyn FnMut() -> RawClient) -> Vec<String>) {
    let run = |port: u16| {
        let mut connect = move || RawClient::connect(port).expect("connect");
        script(&mut connect)
    };
    let expected = run(d.redis().port());
    let got = run(d.keyferry().port());
    assert_eq!(
        expected, got,
        "redis-server (left) and keyferry serve (right) differ"
    );
}

#[test]
fn argument_errors_timeouts_and_multi() {
    let mut d = differ();
    d.check_all(&[
        &["BLPOP", "k"],
        &["BLPOP", "k", "-1"],
        &["BLPOP", "k", "abc"],
        &["BLPOP", "k", "inf"],
        &["BLPOP", "k", "nan"],
        &["BRPOP", "k", "0.05"],
        &["BLPOP", "a", "b", "0.01"],
        &["BRPOPLPUSH", "k", "d", "0.01"],
        &["BRPOPLPUSH", "k", "d", "-2"],
        &["BLMOVE", "k", "d", "UP", "LEFT", "x"],
        &["BLMOVE", "k", "d", "LEFT", "RIGHT", "x"],
        &["BLMOVE", "k", "d", "LEFT", "RIGHT", "0.01"],
        &["BLMPOP", "x", "1", "k", "LEFT"],
        &["BLMPOP", "0", "0", "k", "LEFT"],
        &["BLMPOP", "0", "1", "k", "UP"],
        &["BLMPOP", "0", "2", "k", "LEFT"],
        &["BLMPOP", "0", "1", "k", "LEFT", "COUNT", "0"],
        &["BLMPOP", "0.01", "2", "k", "j", "RIGHT", "COUNT", "2"],
        &["BZPOPMIN", "z", "0.01"],
        &["BZPOPMAX", "z", "y", "0.01"],
        &["BZMPOP", "0", "1", "z", "LEFT"],
        &["BZMPOP", "0.01", "1", "z", "MAX", "COUNT", "3"],
        // Data present: answered at once, keys in argument order.
        &["RPUSH", "l1", "a", "b", "c"],
        &["RPUSH", "l2", "x"],
        &["BLPOP", "nokey", "l2", "l1", "0"],
        &["BRPOP", "l2", "l1", "0"],
        &["BRPOPLPUSH", "l1", "l2", "0"],
        &["BLMOVE", "l1", "l2", "LEFT", "LEFT", "0"],
        &["LRANGE", "l2", "0", "-1"],
        &["BLMPOP", "0", "2", "nokey", "l2", "RIGHT", "COUNT", "5"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["BZPOPMIN", "nokey", "z", "0"],
        &["BZPOPMAX", "z", "0"],
        &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "9"],
        // WRONGTYPE at registration.
        &["SET", "s", "v"],
        &["BLPOP", "nokey", "s", "0"],
        &["BZPOPMIN", "s", "0"],
        &["BLMOVE", "s", "d", "LEFT", "LEFT", "0"],
        &["BLMPOP", "0", "1", "s", "LEFT"],
        &["BZMPOP", "0", "1", "s", "MIN"],
        // Inside MULTI the non-blocking form runs.
        &["MULTI"],
        &["BLPOP", "nokey", "0"],
        &["BLMOVE", "nokey", "d", "LEFT", "LEFT", "0"],
        &["BZPOPMIN", "nokey", "0"],
        &["BLMPOP", "0", "1", "nokey", "LEFT"],
        &["RPUSH", "m", "1"],
        &["BRPOP", "m", "0"],
        &["BLPOP", "m", "-1"],
        &["EXEC"],
    ]);
    d.resp3();
    d.check_all(&[
        &["BLPOP", "nokey", "0.01"],
        &["BLMOVE", "nokey", "d", "LEFT", "LEFT", "0.01"],
        &["ZADD", "z", "1.5", "a"],
        &["BZPOPMIN", "z", "0"],
        &["MULTI"],
        &["BLPOP", "nokey", "0"],
        &["BLMOVE", "nokey", "d", "LEFT", "LEFT", "0"],
        &["EXEC"],
    ]);
}

#[test]
fn first_blocked_first_served_and_fairness_across_keys() {
    let d = differ();
    same_transcript(&d, |connect| {
        let (mut p, mut c1, mut c2, mut c3) = (connect(), connect(), connect(), connect());
        let mut t = Vec::new();
        // Three waiters on one key, served in the order they blocked.
        block(&mut p, &mut c1, &["BLPOP", "q", "0"], 1);
        block(&mut p, &mut c2, &["BRPOP", "q", "0"], 2);
        block(&mut p, &mut c3, &["BLPOP", "other", "q", "0"], 3);
        t.push(cmd(&mut p, &["RPUSH", "q", "a", "b", "c", "d"]));
        t.extend([read(&mut c1), read(&mut c2), read(&mut c3)]);
        t.push(cmd(&mut p, &["LRANGE", "q", "0", "-1"]));
        // A waiter on two keys takes the first key that became ready; the
        // next waiter of that key gets what is left.
        block(&mut p, &mut c1, &["BLPOP", "k1", "k2", "0"], 1);
        block(&mut p, &mut c2, &["BLPOP", "k2", "0"], 2);
        t.push(cmd(&mut p, &["RPUSH", "k2", "x", "y", "z"]));
        t.extend([read(&mut c1), read(&mut c2)]);
        t.push(cmd(&mut p, &["LRANGE", "k2", "0", "-1"]));
        // A MULTI block serves after EXEC, once, keys in the order they
        // became ready.
        block(&mut p, &mut c1, &["BLPOP", "m1", "m2", "0"], 1);
        block(&mut p, &mut c2, &["BLPOP", "m1", "0"], 2);
        for argv in [
            &["MULTI"][..],
            &["RPUSH", "m2", "a"],
            &["RPUSH", "m1", "b"],
            &["LPOP", "m1"],
            &["RPUSH", "m1", "c"],
        ] {
            t.push(cmd(&mut p, argv));
        }
        t.push(cmd(&mut p, &["EXEC"]));
        t.extend([read(&mut c1), read(&mut c2)]);
        // A waiter whose key got another type stays blocked.
        block(&mut p, &mut c3, &["BLPOP", "w", "0"], 1);
        t.push(cmd(&mut p, &["SET", "w", "string"]));
        t.push(cmd(&mut p, &["DEL", "w"]));
        wait_blocked(&mut p, 1);
        t.push(cmd(&mut p, &["LPUSH", "w", "v"]));
        t.push(read(&mut c3));
        // Renaming a list onto a waited key wakes its waiter.
        block(&mut p, &mut c3, &["BLPOP", "renamed", "0"], 1);
        t.push(cmd(&mut p, &["RPUSH", "src", "r1", "r2"]));
        t.push(cmd(&mut p, &["RENAME", "src", "renamed"]));
        t.push(read(&mut c3));
        t.push(cmd(&mut p, &["LRANGE", "renamed", "0", "-1"]));
        // MOVE, COPY and SWAPDB bring data into the waited database.
        for (prepare, bring) in [
            (&["RPUSH", "mv", "m"][..], &["MOVE", "mv", "0"][..]),
            (&["RPUSH", "cp", "c"], &["COPY", "cp", "cp", "DB", "0"]),
            (&["RPUSH", "sw", "s"], &["SWAPDB", "0", "1"]),
        ] {
            block(&mut p, &mut c3, &["BLPOP", prepare[1], "0"], 1);
            t.push(cmd(&mut p, &["SELECT", "1"]));
            t.push(cmd(&mut p, prepare));
            t.push(cmd(&mut p, bring));
            t.push(read(&mut c3));
            t.push(cmd(&mut p, &["SELECT", "0"]));
        }
        t
    });
}

/// Waiters for the other type of key are passed over (and go to the back
/// of the queue), and a `BLMOVE` whose destination holds another type
/// gets WRONGTYPE while the next waiter is served: Redis 7.0's rules.
#[test]
fn mixed_waiters_and_a_move_onto_the_wrong_type() {
    let d = differ();
    same_transcript(&d, |connect| {
        let (mut p, mut c1, mut c2, mut c3) = (connect(), connect(), connect(), connect());
        let mut t = Vec::new();
        block(&mut p, &mut c1, &["BZPOPMIN", "mix", "0"], 1);
        block(&mut p, &mut c2, &["BLPOP", "mix", "0"], 2);
        block(&mut p, &mut c3, &["BZPOPMAX", "mix", "0"], 3);
        t.push(cmd(&mut p, &["RPUSH", "mix", "a", "b"]));
        t.push(read(&mut c2));
        t.push(cmd(&mut p, &["LRANGE", "mix", "0", "-1"]));
        t.push(cmd(&mut p, &["DEL", "mix"]));
        t.push(cmd(&mut p, &["ZADD", "mix", "1", "m", "2", "n"]));
        t.extend([read(&mut c1), read(&mut c3)]);
        // A move onto a string fails for that waiter only.
        t.push(cmd(&mut p, &["SET", "dst", "string"]));
        block(
            &mut p,
            &mut c1,
            &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"],
            1,
        );
        block(&mut p, &mut c2, &["BLPOP", "src", "0"], 2);
        t.push(cmd(&mut p, &["RPUSH", "src", "x", "y"]));
        t.extend([read(&mut c1), read(&mut c2)]);
        t.push(cmd(&mut p, &["LRANGE", "src", "0", "-1"]));
        t.push(cmd(&mut p, &["GET", "dst"]));
        t
    });
}

/// A push onto a key nobody holds, with clients waiting on it, is handed
/// to them before anything is written (`serve/hand_over.rs`): what each
/// waiter gets, the pusher's reply, what is left and `WATCH` must be as
/// if the list had been created and then popped.
#[test]
fn pushes_onto_an_empty_key_go_straight_to_waiters() {
    let d = differ();
    same_transcript(&d, |connect| {
        let (mut p, mut c1, mut c2, mut c3) = (connect(), connect(), connect(), connect());
        let mut t = Vec::new();
        // LPUSH puts each element in front: BLPOP takes the last one
        // pushed, BRPOP the first, BLMPOP from its side up to COUNT.
        block(&mut p, &mut c1, &["BLPOP", "h", "0"], 1);
        block(&mut p, &mut c2, &["BRPOP", "h", "0"], 2);
        block(
            &mut p,
            &mut c3,
            &["BLMPOP", "0", "1", "h", "LEFT", "COUNT", "2"],
            3,
        );
        t.push(cmd(&mut p, &["LPUSH", "h", "a", "b", "c", "d", "e", "f"]));
        t.extend([read(&mut c1), read(&mut c2), read(&mut c3)]);
        t.push(cmd(&mut p, &["LRANGE", "h", "0", "-1"]));
        // Everything taken: the key does not exist afterwards, and a
        // WATCH on it sees it modified.
        block(
            &mut p,
            &mut c1,
            &["BLMPOP", "0", "1", "g", "RIGHT", "COUNT", "5"],
            1,
        );
        t.push(cmd(&mut c2, &["WATCH", "g"]));
        t.push(cmd(&mut p, &["RPUSH", "g", "x", "y"]));
        t.push(read(&mut c1));
        t.push(cmd(&mut p, &["EXISTS", "g"]));
        t.push(cmd(&mut c2, &["MULTI"]));
        t.push(cmd(&mut c2, &["RPUSH", "g", "z"]));
        t.push(cmd(&mut c2, &["EXEC"]));
        t.push(cmd(&mut p, &["EXISTS", "g"]));
        // A pop waiter, then a move: the pop is handed its element, the
        // move is served from the list written with the rest.
        block(&mut p, &mut c1, &["BLPOP", "n", "0"], 1);
        block(
            &mut p,
            &mut c3,
            &["BLMOVE", "n", "n2", "RIGHT", "LEFT", "0"],
            2,
        );
        t.push(cmd(&mut p, &["RPUSH", "n", "1", "2", "3"]));
        t.extend([read(&mut c1), read(&mut c3)]);
        t.push(cmd(&mut p, &["LRANGE", "n", "0", "-1"]));
        t.push(cmd(&mut p, &["LRANGE", "n2", "0", "-1"]));
        // Moves along a chain change each list they push onto: a WATCH
        // on the last one aborts the EXEC.
        block(
            &mut p,
            &mut c1,
            &["BLMOVE", "c1", "c2", "LEFT", "RIGHT", "0"],
            1,
        );
        block(&mut p, &mut c3, &["BRPOPLPUSH", "c2", "c3", "0"], 2);
        t.push(cmd(&mut c2, &["WATCH", "c3"]));
        t.push(cmd(&mut p, &["RPUSH", "c1", "j"]));
        t.extend([read(&mut c1), read(&mut c3)]);
        t.push(cmd(&mut c2, &["MULTI"]));
        t.push(cmd(&mut c2, &["GET", "c3"]));
        t.push(cmd(&mut c2, &["EXEC"]));
        for key in ["c1", "c2", "c3"] {
            t.push(cmd(&mut p, &["LRANGE", key, "0", "-1"]));
        }
        t
    });
}

#[test]
fn move_chains_and_sorted_sets() {
    let d = differ();
    same_transcript(&d, |connect| {
        let (mut p, mut c1, mut c2, mut c3) = (connect(), connect(), connect(), connect());
        let mut t = Vec::new();
        // s1 → s2 → s3 → a BLPOP: one push travels the whole chain.
        block(
            &mut p,
            &mut c1,
            &["BLMOVE", "s1", "s2", "LEFT", "RIGHT", "0"],
            1,
        );
        block(&mut p, &mut c2, &["BRPOPLPUSH", "s2", "s3", "0"], 2);
        block(&mut p, &mut c3, &["BLPOP", "s3", "0"], 3);
        t.push(cmd(&mut p, &["RPUSH", "s1", "x", "y"]));
        t.extend([read(&mut c1), read(&mut c2), read(&mut c3)]);
        for key in ["s1", "s2", "s3"] {
            t.push(cmd(&mut p, &["LRANGE", key, "0", "-1"]));
        }
        // LMOVE's destination wakes a waiter.
        block(
            &mut p,
            &mut c1,
            &["BLMPOP", "0", "2", "nokey", "dst", "RIGHT", "COUNT", "3"],
            1,
        );
        t.push(cmd(&mut p, &["LMOVE", "s1", "dst", "LEFT", "LEFT"]));
        t.push(read(&mut c1));
        // Equal scores: ties go by member, low end and high end.
        block(&mut p, &mut c1, &["BZPOPMIN", "z", "0"], 1);
        block(&mut p, &mut c2, &["BZPOPMAX", "z", "0"], 2);
        block(
            &mut p,
            &mut c3,
            &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "10"],
            3,
        );
        t.push(cmd(
            &mut p,
            &["ZADD", "z", "1", "b", "1", "a", "1", "d", "1", "c"],
        ));
        t.extend([read(&mut c1), read(&mut c2), read(&mut c3)]);
        t.push(cmd(&mut p, &["EXISTS", "z"]));
        // ZINCRBY and ZUNIONSTORE wake too.
        block(&mut p, &mut c1, &["BZPOPMAX", "z2", "0"], 1);
        t.push(cmd(&mut p, &["ZINCRBY", "z2", "2.5", "m"]));
        t.push(read(&mut c1));
        block(&mut p, &mut c1, &["BZPOPMIN", "zu", "0"], 1);
        t.push(cmd(&mut p, &["ZADD", "zsrc", "3", "p", "4", "q"]));
        t.push(cmd(&mut p, &["ZUNIONSTORE", "zu", "1", "zsrc"]));
        t.push(read(&mut c1));
        t
    });
}

#[test]
fn disconnect_unblock_and_client_list() {
    let d = differ();
    same_transcript(&d, |connect| {
        let (mut p, mut c2) = (connect(), connect());
        let mut t = Vec::new();
        // A waiter that disconnects is skipped: the next one is served.
        let mut c1 = connect();
        block(&mut p, &mut c1, &["BLPOP", "q", "0"], 1);
        block(&mut p, &mut c2, &["BLPOP", "q", "0"], 2);
        drop(c1);
        wait_blocked(&mut p, 1);
        t.push(cmd(&mut p, &["RPUSH", "q", "x"]));
        t.push(read(&mut c2));
        // With nobody left the element stays in the list.
        let mut c3 = connect();
        block(&mut p, &mut c3, &["BRPOP", "q", "0"], 1);
        drop(c3);
        wait_blocked(&mut p, 0);
        t.push(cmd(&mut p, &["RPUSH", "q", "y"]));
        t.push(cmd(&mut p, &["LRANGE", "q", "0", "-1"]));
        // CLIENT LIST shows the blocked command; CLIENT UNBLOCK ends it.
        let id = cmd(&mut c2, &["CLIENT", "ID"]);
        let id = id.trim_start_matches(':').trim().to_owned();
        t.push(cmd(&mut c2, &["CLIENT", "SETNAME", "waiter"]));
        block(&mut p, &mut c2, &["BZPOPMIN", "nokey", "0"], 1);
        let list = cmd(&mut p, &["CLIENT", "LIST"]);
        let line = list
            .split('\n')
            .find(|l| l.contains("name=waiter"))
            .expect("the waiter is listed")
            .to_owned();
        let field = |name: &str| {
            line.split(' ')
                .find(|f| f.starts_with(name))
                .unwrap_or_default()
                .to_owned()
        };
        t.extend([field("flags="), field("cmd=")]);
        t.push(cmd(&mut p, &["CLIENT", "UNBLOCK", &id, "NOPE"]));
        t.push(cmd(&mut p, &["CLIENT", "UNBLOCK", &id]));
        t.push(read(&mut c2));
        t.push(cmd(&mut p, &["CLIENT", "UNBLOCK", &id]));
        block(
            &mut p,
            &mut c2,
            &["BLMOVE", "nokey", "d", "LEFT", "LEFT", "0"],
            1,
        );
        t.push(cmd(&mut p, &["CLIENT", "UNBLOCK", &id, "ERROR"]));
        t.push(read(&mut c2));
        block(&mut p, &mut c2, &["BLPOP", "nokey", "0"], 1);
        t.push(cmd(&mut p, &["CLIENT", "UNBLOCK", &id, "timeout"]));
        t.push(read(&mut c2));
        // The connection goes on normally afterwards.
        t.push(cmd(&mut c2, &["PING"]));
        t
    });
}

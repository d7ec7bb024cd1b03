//! Differential testing: the same commands sent to a real `redis-server`
//! and to `keyferry serve`, replies compared byte for byte.
//!
//! A [`Differ`] owns one server of each kind and one connection to each.
//! [`Differ::check`] is the usual assertion. Where Redis itself leaves the
//! order of an array's elements unspecified (`SMEMBERS`, `HKEYS`, `KEYS`,
//! …), [`Differ::check_sorted`] compares the two replies after sorting the
//! top-level elements' raw bytes: same type and length, same multiset of
//! elements. Anything else (random members, `INFO` values, cursors) goes
//! through [`Differ::both`], where the test normalises the replies itself.

use std::fmt::Debug;
use std::path::Path;

use crate::{KeyferryServe, RawClient, RedisServer};

/// A `redis-server` and a `keyferry serve`, each with one open connection.
pub struct Differ {
    redis_conn: RawClient,
    keyferry_conn: RawClient,
    // Declared after the connections so they close before the servers die.
    redis: RedisServer,
    keyferry: KeyferryServe,
}

impl Differ {
    /// Starts both servers (`bin` is the `keyferry` binary: pass
    /// `env!("CARGO_BIN_EXE_keyferry")`) and connects to each.
    ///
    /// # Panics
    /// If either server does not come up.
    pub fn start(bin: impl AsRef<Path>) -> Self {
        let redis = RedisServer::start();
        let keyferry = KeyferryServe::start(bin.as_ref(), &[]);
        Self {
            redis_conn: RawClient::connect(redis.port()).expect("connect to redis-server"),
            keyferry_conn: RawClient::connect(keyferry.port()).expect("connect to keyferry serve"),
            redis,
            keyferry,
        }
    }

    /// The real Redis.
    pub fn redis(&self) -> &RedisServer {
        &self.redis
    }

    /// The keyferry server.
    pub fn keyferry(&self) -> &KeyferryServe {
        &self.keyferry
    }

    /// Sends `argv` to both servers and asserts identical reply bytes;
    /// returns the reply.
    ///
    /// # Panics
    /// On different replies, showing both (escaped) and the command.
    pub fn check(&mut self, argv: &[&[u8]]) -> Vec<u8> {
        let (expected, got) = self.send(argv);
        assert!(
            expected == got,
            "replies differ for {}\n  redis-server:   {}\n  keyferry serve: {}",
            show_argv(argv),
            escape(&expected),
            escape(&got)
        );
        got
    }

    /// Like [`Differ::check`] for a command whose reply is an array (or set
    /// or map) in an order Redis leaves unspecified: both replies must have
    /// the same header and the same top-level elements in any order.
    /// Non-aggregate replies (errors, nulls) are compared exactly.
    pub fn check_sorted(&mut self, argv: &[&[u8]]) -> Vec<u8> {
        let (expected, got) = self.send(argv);
        assert!(
            sorted(&expected) == sorted(&got),
            "replies differ (ignoring element order) for {}\n  redis-server:   {}\n  keyferry serve: {}",
            show_argv(argv),
            escape(&expected),
            escape(&got)
        );
        got
    }

    /// [`Differ::check`] for each command of a script of text arguments.
    pub fn check_all(&mut self, script: &[&[&str]]) {
        for argv in script {
            let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
            self.check(&argv);
        }
    }

    /// Switches both connections to RESP3 (`HELLO 3`), so later checks
    /// compare RESP3 replies. The `HELLO` replies themselves are not
    /// compared: they carry each server's own client id.
    pub fn resp3(&mut self) {
        for conn in [&mut self.redis_conn, &mut self.keyferry_conn] {
            let reply = conn.command(&[b"HELLO", b"3"]).expect("HELLO 3");
            assert!(
                reply.starts_with(b"%7\r\n"),
                "HELLO 3 answered {}",
                escape(&reply)
            );
        }
    }

    /// Like [`Differ::check`] for `TTL`/`PTTL`-style replies: a remaining
    /// time counts down while the two servers are asked one after the
    /// other, and a loaded machine can stall between them, so two
    /// non-negative integers may differ by up to `tolerance`; anything else
    /// (-2, -1, errors, other types) must match byte for byte.
    pub fn check_ttl(&mut self, argv: &[&[u8]], tolerance: i64) -> Vec<u8> {
        let (expected, got) = self.send(argv);
        let remaining = |reply: &[u8]| {
            std::str::from_utf8(reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?)
                .ok()?
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
        };
        let close = match (remaining(&expected), remaining(&got)) {
            (Some(e), Some(g)) => (e - g).abs() <= tolerance,
            _ => expected == got,
        };
        assert!(
            close,
            "replies differ for {} (tolerance {tolerance})\n  redis-server:   {}\n  keyferry serve: {}",
            show_argv(argv),
            escape(&expected),
            escape(&got)
        );
        got
    }

    /// Runs `f` on the connection to each server (Redis first) and asserts
    /// the results are equal; returns keyferry's. For exchanges the other
    /// helpers cannot express: raw bytes, several replies, normalisation.
    pub fn both<T: PartialEq + Debug>(&mut self, mut f: impl FnMut(&mut RawClient) -> T) -> T {
        let expected = f(&mut self.redis_conn);
        let got = f(&mut self.keyferry_conn);
        assert_eq!(
            expected, got,
            "redis-server (left) and keyferry serve (right) differ"
        );
        got
    }

    fn send(&mut self, argv: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        let expected = self
            .redis_conn
            .command(argv)
            .unwrap_or_else(|e| panic!("redis-server, {}: {e}", show_argv(argv)));
        let got = self.keyferry_conn.command(argv).unwrap_or_else(|e| {
            panic!(
                "keyferry serve, {}: {e}\nits log:\n{}",
                show_argv(argv),
                self.keyferry.log()
            )
        });
        (expected, got)
    }
}

/// A reply with its top-level elements sorted: the header line, then the
/// elements' raw bytes in byte order. A non-aggregate reply is one element.
fn sorted(reply: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let header_end = line_end(reply, 0);
    let header = reply[..header_end].to_vec();
    if !matches!(reply.first(), Some(b'*' | b'~' | b'%' | b'>')) {
        return (reply.to_vec(), Vec::new());
    }
    let mut elements = Vec::new();
    let mut pos = header_end;
    while pos < reply.len() {
        let end = element_end(reply, pos);
        elements.push(reply[pos..end].to_vec());
        pos = end;
    }
    elements.sort();
    (header, elements)
}

/// Index just past the `\n` of the line starting at `start`.
fn line_end(reply: &[u8], start: usize) -> usize {
    reply[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(reply.len(), |i| start + i + 1)
}

/// Index just past the whole reply starting at `start` (a well-formed reply
/// read by [`RawClient`]).
fn element_end(reply: &[u8], start: usize) -> usize {
    let end = line_end(reply, start);
    let count = || {
        std::str::from_utf8(&reply[start + 1..end])
            .ok()
            .and_then(|s| s.trim_end().parse::<i64>().ok())
            .unwrap_or(0)
    };
    match reply[start] {
        b'$' | b'!' | b'=' => match usize::try_from(count()) {
            Ok(len) => end + len + 2,
            Err(_) => end,
        },
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let per_entry = if matches!(reply[start], b'%' | b'|') {
                2
            } else {
                1
            };
            (0..count().max(0) * per_entry).fold(end, |pos, _| element_end(reply, pos))
        }
        _ => end,
    }
}

fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn show_argv(argv: &[&[u8]]) -> String {
    argv.iter()
        .map(|a| format!("\"{}\"", escape(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_ignores_element_order_but_not_content() {
        let a = b"*3\r\n$1\r\nb\r\n*2\r\n:1\r\n:2\r\n$1\r\na\r\n";
        let b = b"*3\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n:1\r\n:2\r\n";
        assert_eq!(sorted(a), sorted(b));
        let c = b"*3\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n:2\r\n:1\r\n";
        assert_ne!(sorted(a), sorted(c));
        assert_ne!(sorted(b"*1\r\n$1\r\na\r\n"), sorted(b"~1\r\n$1\r\na\r\n"));
        assert_eq!(sorted(b"$-1\r\n").0, b"$-1\r\n");
    }
}

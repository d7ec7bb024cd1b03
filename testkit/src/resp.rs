//! Reading replies in differential tests that cannot compare bytes: the
//! RESP shapes the collection tests inspect, parsed into [`Resp`].

use std::collections::BTreeSet;

use crate::RawClient;

/// A reply, as far as these tests look into it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resp {
    /// A bulk string.
    Bulk(Vec<u8>),
    /// A RESP2 null bulk or a RESP3 null.
    Null,
    /// An integer.
    Int(i64),
    /// An error line, without its `-`.
    Error(String),
    /// A status line, without its `+`.
    Status(String),
    /// Arrays, RESP3 sets and maps (flattened), with their type byte.
    Agg(u8, Vec<Resp>),
}

/// Parses one whole reply.
///
/// # Panics
/// On malformed RESP or bytes left after the reply.
pub fn parse(bytes: &[u8]) -> Resp {
    let (resp, used) = parse_at(bytes, 0);
    assert_eq!(used, bytes.len(), "trailing bytes in {bytes:?}");
    resp
}

fn parse_at(b: &[u8], at: usize) -> (Resp, usize) {
    let end = at + b[at..].windows(2).position(|w| w == b"\r\n").unwrap();
    let line = std::str::from_utf8(&b[at + 1..end]).unwrap();
    let next = end + 2;
    match b[at] {
        b'$' if line == "-1" => (Resp::Null, next),
        b'$' => {
            let n: usize = line.parse().unwrap();
            (Resp::Bulk(b[next..next + n].to_vec()), next + n + 2)
        }
        b'_' => (Resp::Null, next),
        b':' => (Resp::Int(line.parse().unwrap()), next),
        b'-' => (Resp::Error(line.to_owned()), next),
        b'+' => (Resp::Status(line.to_owned()), next),
        kind @ (b'*' | b'~' | b'%') => {
            let n: usize = line.parse().unwrap();
            let n = if kind == b'%' { 2 * n } else { n };
            let mut items = Vec::with_capacity(n);
            let mut pos = next;
            for _ in 0..n {
                let (item, after) = parse_at(b, pos);
                items.push(item);
                pos = after;
            }
            (Resp::Agg(kind, items), pos)
        }
        other => panic!("unexpected RESP type {:?}", other as char),
    }
}

/// The field/value pairs of a flat `[f1, v1, f2, v2, …]` reply (or map),
/// as a set, with the reply's type byte.
pub fn pairs(reply: &[u8]) -> (u8, BTreeSet<(Resp, Resp)>) {
    let Resp::Agg(kind, items) = parse(reply) else {
        panic!("not an aggregate: {reply:?}")
    };
    let set = items
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    (kind, set)
}

/// Borrows each argument, for [`RawClient::command`].
pub fn as_refs(argv: &[Vec<u8>]) -> Vec<&[u8]> {
    argv.iter().map(Vec::as_slice).collect()
}

/// Sends a command of text arguments and returns the reply's bytes.
///
/// # Panics
/// On an I/O error.
pub fn cmd(conn: &mut RawClient, argv: &[&str]) -> Vec<u8> {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    conn.command(&argv).unwrap()
}

//! Command replies and their RESP2/RESP3 wire forms.
//!
//! Commands build a [`Reply`] without knowing which protocol the client
//! speaks; [`Reply::encode`] maps the RESP3-only types onto RESP2 the way
//! Redis 7.0 does (maps become flat arrays, doubles become bulk strings,
//! booleans become integers), so one implementation answers both kinds of
//! client byte for byte like a real server. [`errors`] holds Redis's exact
//! texts for the errors many commands share.

use std::borrow::Cow;
use std::io::Write as _;

use crate::error::StoreError;

/// The protocol a client negotiated with `HELLO` (RESP2 until it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, every client's protocol until `HELLO 3`.
    #[default]
    Resp2,
    /// RESP3: typed nulls, doubles, maps, sets, booleans and push messages.
    Resp3,
}

/// A reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`; must not contain `\r` or `\n`.
    Status(Cow<'static, str>),
    /// `-text`: the full text without the leading `-`, starting with its
    /// code, e.g. `ERR syntax error`.
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len` and the bytes.
    Bulk(Vec<u8>),
    /// A missing value: RESP2 `$-1`, RESP3 `_`.
    Null,
    /// A missing aggregate: RESP2 `*-1`, RESP3 `_`.
    NullArray,
    /// `*n` and `n` replies.
    Array(Vec<Reply>),
    /// A float: RESP3 `,`, RESP2 a bulk string; both formatted like Redis
    /// 7.0's `%.17g` (see [`format_double`]).
    Double(f64),
    /// RESP3 `%n` with `n` key/value pairs; RESP2 a flat array of `2n`.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~n`; RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 `#t`/`#f`; RESP2 `:1`/`:0`.
    Bool(bool),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Status(Cow::Borrowed("OK"))
    }

    /// An error reply; `msg` starts with its code, e.g. `ERR …`.
    pub fn error(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    /// A bulk string copied from `bytes`.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply's wire form in protocol `p` to `out`.
    pub fn encode(&self, p: Protocol, out: &mut Vec<u8>) {
        let resp3 = p == Protocol::Resp3;
        match self {
            Reply::Status(text) => {
                out.push(b'+');
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(text) => encode_error(text.as_bytes(), out),
            Reply::Integer(n) => header(out, b':', *n),
            Reply::Bulk(bytes) => encode_bulk(bytes, out),
            Reply::Null if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => encode_aggregate(b'*', items, p, out),
            Reply::Double(d) if resp3 => {
                out.push(b',');
                out.extend_from_slice(format_double(*d).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Double(d) => encode_bulk(format_double(*d).as_bytes(), out),
            Reply::Map(pairs) => {
                if resp3 {
                    header(out, b'%', pairs.len() as i64);
                } else {
                    header(out, b'*', 2 * pairs.len() as i64);
                }
                for (key, value) in pairs {
                    key.encode(p, out);
                    value.encode(p, out);
                }
            }
            Reply::Set(items) => encode_aggregate(if resp3 { b'~' } else { b'*' }, items, p, out),
            Reply::Bool(b) if resp3 => {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" })
            }
            Reply::Bool(b) => header(out, b':', i64::from(*b)),
        }
    }
}

impl From<StoreError> for Reply {
    /// `WRONGTYPE` keeps Redis's text; any other store failure (SQLite
    /// busy, disk full, shut down) becomes an `ERR` with its description.
    fn from(e: StoreError) -> Reply {
        match e {
            StoreError::WrongType => errors::wrong_type(),
            other => Reply::Error(format!("ERR {other}")),
        }
    }
}

/// `<prefix><n>\r\n`.
fn header(out: &mut Vec<u8>, prefix: u8, n: i64) {
    out.push(prefix);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
    out.extend_from_slice(b"\r\n");
}

fn encode_bulk(bytes: &[u8], out: &mut Vec<u8>) {
    header(out, b'$', bytes.len() as i64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `-text\r\n`. A newline inside an error would end it early and desync
/// the client; Redis turns both bytes into spaces too.
fn encode_error(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'-');
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

fn encode_aggregate(prefix: u8, items: &[Reply], p: Protocol, out: &mut Vec<u8>) {
    header(out, prefix, items.len() as i64);
    for item in items {
        item.encode(p, out);
    }
}

/// Formats `d` the way Redis 7.0's `addReplyDouble` does: `inf`/`-inf`,
/// otherwise C's `%.17g` (17 significant digits, trailing zeros dropped,
/// exponent form below 1e-4 and from 1e17 on, at least two exponent
/// digits), e.g. `1.1000000000000001`, `3`, `1e+300`.
pub fn format_double(d: f64) -> String {
    const PRECISION: i32 = 17;
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if d.is_nan() {
        return "nan".to_owned();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rounding to 17 significant digits first tells which exponent `%g`
    // sees (rounding may carry into a new leading digit).
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, d);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponents are integers");
    if !(-4..PRECISION).contains(&exp) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (PRECISION - 1 - exp) as usize;
        trim_fraction(&format!("{d:.decimals$}")).to_owned()
    }
}

/// Drops a fraction's trailing zeros, and its point if nothing is left.
fn trim_fraction(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// Redis 7.0's texts for errors shared by many commands.
pub mod errors {
    use super::Reply;

    /// `WRONGTYPE`: the key holds another type than the command needs.
    pub fn wrong_type() -> Reply {
        Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    /// A malformed option list.
    pub fn syntax() -> Reply {
        Reply::error("ERR syntax error")
    }

    /// An argument (or stored value) that must be a 64-bit integer.
    pub fn not_integer() -> Reply {
        Reply::error("ERR value is not an integer or out of range")
    }

    /// An argument (or stored value) that must be a float.
    pub fn not_float() -> Reply {
        Reply::error("ERR value is not a valid float")
    }

    /// `INCR`-style arithmetic beyond 64 bits.
    pub fn overflow() -> Reply {
        Reply::error("ERR increment or decrement would overflow")
    }

    /// A command (`name` as Redis spells it in this error: lowercase, or
    /// `container|sub` for a subcommand) called with too few or too many
    /// arguments.
    pub fn wrong_arity(name: &str) -> Reply {
        Reply::Error(format!(
            "ERR wrong number of arguments for '{name}' command"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: &Reply, p: Protocol) -> String {
        let mut out = Vec::new();
        reply.encode(p, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_format_like_redis_7_0() {
        let cases = [
            (1.1, "1.1000000000000001"),
            (3.0, "3"),
            (-2.5, "-2.5"),
            (1e300, "1.0000000000000001e+300"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123456789.123, "123456789.123"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1e23, "9.9999999999999992e+22"),
        ];
        for (d, text) in cases {
            assert_eq!(format_double(d), text, "{d:e}");
        }
    }

    #[test]
    fn resp3_types_degrade_to_resp2_like_redis() {
        let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Double(1.5))]);
        assert_eq!(
            wire(&map, Protocol::Resp2),
            "*2\r\n$1\r\na\r\n$3\r\n1.5\r\n"
        );
        assert_eq!(wire(&map, Protocol::Resp3), "%1\r\n$1\r\na\r\n,1.5\r\n");
        let set = Reply::Set(vec![Reply::Integer(1)]);
        assert_eq!(wire(&set, Protocol::Resp2), "*1\r\n:1\r\n");
        assert_eq!(wire(&set, Protocol::Resp3), "~1\r\n:1\r\n");
        assert_eq!(wire(&Reply::Bool(true), Protocol::Resp2), ":1\r\n");
        assert_eq!(wire(&Reply::Bool(false), Protocol::Resp3), "#f\r\n");
        assert_eq!(wire(&Reply::Null, Protocol::Resp2), "$-1\r\n");
        assert_eq!(wire(&Reply::NullArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(wire(&Reply::NullArray, Protocol::Resp3), "_\r\n");
    }

    #[test]
    fn scalar_replies_encode_the_same_in_both_protocols() {
        for p in [Protocol::Resp2, Protocol::Resp3] {
            assert_eq!(wire(&Reply::ok(), p), "+OK\r\n");
            assert_eq!(wire(&Reply::Integer(-3), p), ":-3\r\n");
            assert_eq!(wire(&Reply::bulk("a\r\nb"), p), "$4\r\na\r\nb\r\n");
            assert_eq!(wire(&Reply::error("ERR x\r\ny"), p), "-ERR x  y\r\n");
        }
    }

    #[test]
    fn store_errors_become_redis_errors() {
        assert_eq!(Reply::from(StoreError::WrongType), errors::wrong_type());
        assert!(
            matches!(Reply::from(StoreError::Closed), Reply::Error(e) if e.starts_with("ERR "))
        );
    }
}

//! A small RESP2 codec: parses client requests (arrays of bulk strings, and
//! inline commands) and encodes the few reply types `serve` sends so far.
//!
//! Limits and error texts follow Redis 7.0's `processMultibulkBuffer` and
//! `processInlineBuffer`, because clients and operators recognise them and
//! differential tests compare them byte for byte. A protocol error is fatal
//! for the connection, as in Redis: the server answers it and closes.

/// Longest inline command or `*`/`$` header line accepted before its
/// newline arrives (Redis's `PROTO_INLINE_MAX_SIZE`).
const INLINE_MAX: usize = 64 * 1024;

/// Largest bulk string argument (Redis's default `proto-max-bulk-len`).
const BULK_MAX: i64 = 512 * 1024 * 1024;

/// Most arguments, and longest argument, a client that still has to AUTH
/// may send (Redis's fix for CVE-2021-32675): until it authenticates, a
/// client cannot make the server buffer much.
const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;

/// Most arguments pre-allocated from an untrusted `*N` header; longer
/// commands grow as their arguments actually arrive.
const PREALLOC_MAX: usize = 1024;

/// A request the client sent that cannot be parsed.
///
/// The text is Redis's, in bytes because one of them quotes a byte the
/// client sent, which need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(Vec<u8>);

impl ProtocolError {
    fn new(text: impl Into<Vec<u8>>) -> Self {
        Self(text.into())
    }

    /// The error reply Redis sends before it closes the connection.
    pub fn reply(&self) -> Reply {
        let mut text = b"ERR Protocol error: ".to_vec();
        text.extend_from_slice(&self.0);
        Reply::Error(text)
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", String::from_utf8_lossy(&self.0))
    }
}

impl std::error::Error for ProtocolError {}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command name and its arguments. Empty for input Redis skips (a
    /// blank inline line, `*0`, `*-1`): there is nothing to run.
    pub argv: Vec<Vec<u8>>,
    /// How many bytes of the buffer the request took.
    pub len: usize,
}

/// Parses one request from the start of `buf`; `Ok(None)` when `buf` does
/// not hold a whole request yet. `unauthenticated` is
/// true while the server requires a password the client has not given yet;
/// such a client is held to much smaller requests.
pub fn parse_request(buf: &[u8], unauthenticated: bool) -> Result<Option<Request>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, unauthenticated),
        Some(_) => parse_inline(buf),
    }
}

/// `*<n>\r\n` followed by `n` times `$<len>\r\n<bytes>\r\n`.
fn parse_multibulk(buf: &[u8], unauthenticated: bool) -> Result<Option<Request>, ProtocolError> {
    let Some((header, mut pos)) = line(buf, 0, "too big mbulk count string")? else {
        return Ok(None);
    };
    let count = parse_i64(&header[1..])
        .filter(|&n| n <= i64::from(i32::MAX))
        .ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
    if unauthenticated && count > UNAUTHENTICATED_MAX_ARGS {
        return Err(ProtocolError::new("unauthenticated multibulk length"));
    }
    if count <= 0 {
        return Ok(Some(Request {
            argv: Vec::new(),
            len: pos,
        }));
    }
    // Bounded by the header check above; usize holds any i32.
    let count = count as usize;
    let mut args = Vec::with_capacity(count.min(PREALLOC_MAX));
    while args.len() < count {
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        if first != b'$' {
            let mut text = b"expected '$', got '".to_vec();
            text.extend_from_slice(&[first, b'\'']);
            return Err(ProtocolError::new(text));
        }
        let Some((header, data_start)) = line(buf, pos, "too big bulk count string")? else {
            return Ok(None);
        };
        let len = parse_i64(&header[1..])
            .filter(|&n| (0..=BULK_MAX).contains(&n))
            .ok_or_else(|| ProtocolError::new("invalid bulk length"))?;
        if unauthenticated && len > UNAUTHENTICATED_MAX_BULK {
            return Err(ProtocolError::new("unauthenticated bulk length"));
        }
        // Bounded by BULK_MAX above.
        let len = len as usize;
        // Redis skips the two bytes after the data without checking them.
        let end = data_start + len + 2;
        if buf.len() < end {
            return Ok(None);
        }
        args.push(buf[data_start..data_start + len].to_vec());
        pos = end;
    }
    Ok(Some(Request {
        argv: args,
        len: pos,
    }))
}

/// A line of space-separated words ended by `\n` or `\r\n`.
///
/// Quoted arguments (`"a b"`, `'x'`, `\xHH` escapes) are not understood
/// yet: the RESP codec of the `serve` issue adds them.
fn parse_inline(buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > INLINE_MAX {
            Err(ProtocolError::new("too big inline request"))
        } else {
            Ok(None)
        };
    };
    let argv = buf[..newline]
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok(Some(Request {
        argv,
        len: newline + 1,
    }))
}

/// Finds the `\r\n`-terminated line starting at `start`; returns it
/// without the terminator, and where the next one starts.
fn line<'a>(
    buf: &'a [u8],
    start: usize,
    too_big: &str,
) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
    let rest = &buf[start..];
    match rest.iter().position(|&b| b == b'\r') {
        Some(cr) if cr + 1 < rest.len() => Ok(Some((&rest[..cr], start + cr + 2))),
        Some(_) => Ok(None),
        None if rest.len() > INLINE_MAX => Err(ProtocolError::new(too_big)),
        None => Ok(None),
    }
}

/// Parses a decimal integer as strictly as Redis's `string2ll`: an
/// optional `-`, no `+`, no leading zeros, no spaces.
fn parse_i64(digits: &[u8]) -> Option<i64> {
    let body = digits.strip_prefix(b"-").unwrap_or(digits);
    let canonical = match body {
        [b'0'] => digits.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A reply to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text` (must not contain `\r` or `\n`).
    Simple(&'static str),
    /// `-text`: the text starts with its error code, e.g. `ERR …`. Bytes,
    /// not a string: errors quote client arguments, which may be any bytes.
    Error(Vec<u8>),
    /// `$len` followed by the bytes.
    Bulk(Vec<u8>),
}

impl Reply {
    /// An error reply; `text` starts with its code, e.g. `ERR …`.
    pub fn error(text: impl Into<Vec<u8>>) -> Self {
        Reply::Error(text.into())
    }

    /// Appends the reply's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(text) => {
                out.push(b'+');
                out.extend_from_slice(text.as_bytes());
            }
            Reply::Error(text) => {
                out.push(b'-');
                // A newline inside an error would end it early and desync
                // the client; Redis maps both to spaces too.
                out.extend(
                    text.iter()
                        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
                );
            }
            Reply::Bulk(bytes) => {
                out.push(b'$');
                out.extend_from_slice(bytes.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(bytes);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&[u8]]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.to_vec()).collect()
    }

    #[test]
    fn parses_a_multibulk_with_binary_arguments() {
        let req = b"*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$3\r\n\0\xff\n\r\n";
        let parsed = parse_request(req, false).unwrap().unwrap();
        assert_eq!(
            parsed,
            Request {
                argv: args(&[b"SET", b"a\r\nb", b"\0\xff\n"]),
                len: req.len()
            }
        );
    }

    #[test]
    fn waits_for_every_byte_of_a_request() {
        let req = b"*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n";
        for cut in 0..req.len() {
            assert_eq!(parse_request(&req[..cut], false), Ok(None), "cut at {cut}");
        }
        assert!(parse_request(req, false).unwrap().is_some());
    }

    #[test]
    fn leaves_pipelined_requests_for_the_next_call() {
        let req = b"*1\r\n$4\r\nPING\r\nPING x\r\n";
        let first = parse_request(req, false).unwrap().unwrap();
        assert_eq!(first.argv, args(&[b"PING"]));
        let second = parse_request(&req[first.len..], false).unwrap().unwrap();
        assert_eq!(
            second,
            Request {
                argv: args(&[b"PING", b"x"]),
                len: req.len() - first.len
            }
        );
    }

    #[test]
    fn inline_commands_split_on_whitespace_and_accept_bare_newlines() {
        let line = b"  ping\t a  b\r\n";
        let expected = Request {
            argv: args(&[b"ping", b"a", b"b"]),
            len: line.len(),
        };
        assert_eq!(parse_request(line, false).unwrap(), Some(expected));
        assert_eq!(
            parse_request(b"ping\n", false).unwrap(),
            Some(Request {
                argv: args(&[b"ping"]),
                len: 5
            })
        );
    }

    #[test]
    fn skippable_input_yields_no_arguments() {
        for (req, used) in [(&b"\r\n"[..], 2), (b"*0\r\n", 4), (b"*-1\r\n", 5)] {
            assert_eq!(
                parse_request(req, false).unwrap(),
                Some(Request {
                    argv: Vec::new(),
                    len: used
                }),
                "{req:?}"
            );
        }
    }

    #[test]
    fn malformed_requests_get_redis_error_texts() {
        let cases: &[(&[u8], &str)] = &[
            (b"*x\r\n", "invalid multibulk length"),
            (b"*01\r\n", "invalid multibulk length"),
            (b"*+1\r\n", "invalid multibulk length"),
            (b"*3000000000\r\n", "invalid multibulk length"),
            (b"*1\r\n:4\r\n", "expected '$', got ':'"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$536870913\r\n", "invalid bulk length"),
        ];
        for (req, text) in cases {
            assert_eq!(
                parse_request(req, false),
                Err(ProtocolError::new(*text)),
                "{req:?}"
            );
        }
    }

    #[test]
    fn unauthenticated_clients_send_small_requests_only() {
        let many = b"*11\r\n";
        assert_eq!(
            parse_request(many, true),
            Err(ProtocolError::new("unauthenticated multibulk length"))
        );
        assert_eq!(parse_request(many, false), Ok(None));
        let big = b"*1\r\n$16385\r\n";
        assert_eq!(
            parse_request(big, true),
            Err(ProtocolError::new("unauthenticated bulk length"))
        );
        assert_eq!(parse_request(big, false), Ok(None));
    }

    #[test]
    fn unterminated_lines_are_bounded() {
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(
            parse_request(&long, false),
            Err(ProtocolError::new("too big inline request"))
        );
        assert_eq!(parse_request(&long[..INLINE_MAX], false), Ok(None));
        let mut header = b"*1".to_vec();
        header.extend(vec![b'1'; INLINE_MAX]);
        assert_eq!(
            parse_request(&header, false),
            Err(ProtocolError::new("too big mbulk count string"))
        );
        let mut bulk = b"*1\r\n$1".to_vec();
        bulk.extend(vec![b'1'; INLINE_MAX]);
        assert_eq!(
            parse_request(&bulk, false),
            Err(ProtocolError::new("too big bulk count string"))
        );
    }

    #[test]
    fn protocol_errors_reply_in_redis_words_with_raw_bytes() {
        let err = parse_request(b"*1\r\n\xff\r\n", false).unwrap_err();
        let mut out = Vec::new();
        err.reply().encode(&mut out);
        assert_eq!(out, b"-ERR Protocol error: expected '$', got '\xff'\r\n");
    }

    #[test]
    fn encodes_replies() {
        let mut out = Vec::new();
        Reply::Simple("PONG").encode(&mut out);
        Reply::error("ERR bad\r\nthing").encode(&mut out);
        Reply::Bulk(b"a\r\nb".to_vec()).encode(&mut out);
        assert_eq!(out, b"+PONG\r\n-ERR bad  thing\r\n$4\r\na\r\nb\r\n");
    }
}

//! The request half of RESP: splitting a client's byte stream into
//! commands. (Replies are [`keyferry_engine::Reply`], which encodes itself
//! in RESP2 or RESP3.)
//!
//! Parsing runs in two passes, as in mini-redis: [`check`] walks the
//! buffer without allocating and says whether a whole request is there and
//! how long it is; only then [`parse`] copies its arguments out. A large
//! value arriving over many reads is thus scanned for its header once per
//! read, never copied until complete.
//!
//! Both request forms are accepted: multibulk (`*N` then `$len` strings)
//! and inline commands (a text line split with Redis's `sdssplitargs`
//! quoting rules). Limits and error texts follow Redis 7.0's
//! `processMultibulkBuffer` and `processInlineBuffer`, because clients and
//! operators recognise them and differential tests compare them byte for
//! byte. A protocol error is fatal for the connection, as in Redis: the
//! server answers it and closes.

/// Longest inline command or `*`/`$` header line accepted before its
/// newline arrives (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;

/// Redis's default `proto-max-bulk-len`: the largest bulk argument.
pub const DEFAULT_MAX_BULK: i64 = 512 * 1024 * 1024;

/// Most arguments, and longest argument, a client that still has to AUTH
/// may send (Redis's fix for CVE-2021-32675): until it authenticates, a
/// client cannot make the server buffer much.
const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;

/// Most arguments pre-allocated from an untrusted `*N` header; longer
/// commands grow as their arguments are copied.
const PREALLOC_MAX: usize = 1024;

/// The limits a request is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub max_bulk: i64,
    /// True while the server requires a password the client has not given
    /// yet; such a client is held to much smaller requests.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk: DEFAULT_MAX_BULK,
            unauthenticated: false,
        }
    }
}

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

    /// Appends the error reply Redis sends before it closes the connection
    /// (identical in RESP2 and RESP3).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR Protocol error: ");
        out.extend_from_slice(&self.0);
        out.extend_from_slice(b"\r\n");
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", String::from_utf8_lossy(&self.0))
    }
}

impl std::error::Error for ProtocolError {}

/// How many bytes the request at the start of `buf` takes: `Ok(None)`
/// while it is incomplete. Allocates nothing.
pub fn check(buf: &[u8], limits: Limits) -> Result<Option<usize>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => multibulk(buf, limits, None),
        Some(_) => Ok(inline_line(buf)?.map(|(_, len)| len)),
    }
}

/// The arguments of the request that [`check`] found complete in `buf`
/// (`buf` may extend past it). Empty for input Redis skips: a blank
/// inline line, `*0`, `*-1`.
pub fn parse(buf: &[u8], limits: Limits) -> Result<Vec<Vec<u8>>, ProtocolError> {
    if buf.first() == Some(&b'*') {
        let mut args = Vec::new();
        multibulk(buf, limits, Some(&mut args))?;
        Ok(args)
    } else {
        let (line, _) =
            inline_line(buf)?.ok_or_else(|| ProtocolError::new("incomplete request"))?;
        split_args(line).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
    }
}

/// Walks `*<n>\r\n` followed by `n` times `$<len>\r\n<bytes>\r\n`; copies
/// the arguments into `args` if given. Checks happen in Redis's order.
fn multibulk(
    buf: &[u8],
    limits: Limits,
    mut args: Option<&mut Vec<Vec<u8>>>,
) -> Result<Option<usize>, ProtocolError> {
    let Some((header, mut pos)) = line(buf, 0, "too big mbulk count string")? else {
        return Ok(None);
    };
    let count = parse_len(&header[1..])
        .filter(|&n| n <= i64::from(i32::MAX))
        .ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
    if limits.unauthenticated && count > UNAUTHENTICATED_MAX_ARGS {
        return Err(ProtocolError::new("unauthenticated multibulk length"));
    }
    // Bounded by the header check above; usize holds any i32.
    let count = count.max(0) as usize;
    if let Some(args) = args.as_deref_mut() {
        args.reserve(count.min(PREALLOC_MAX));
    }
    for _ in 0..count {
        let Some((header, data_start)) = line(buf, pos, "too big bulk count string")? else {
            return Ok(None);
        };
        if header.first() != Some(&b'$') {
            let mut text = b"expected '$', got '".to_vec();
            text.extend_from_slice(&[header.first().copied().unwrap_or(b'\r'), b'\'']);
            return Err(ProtocolError::new(text));
        }
        let len = parse_len(&header[1..])
            .filter(|&n| (0..=limits.max_bulk).contains(&n))
            .ok_or_else(|| ProtocolError::new("invalid bulk length"))?;
        if limits.unauthenticated && len > UNAUTHENTICATED_MAX_BULK {
            return Err(ProtocolError::new("unauthenticated bulk length"));
        }
        // Bounded by max_bulk above.
        let len = len as usize;
        // Redis skips the two bytes after the data without checking them.
        let end = data_start + len + 2;
        if buf.len() < end {
            return Ok(None);
        }
        if let Some(args) = args.as_deref_mut() {
            args.push(buf[data_start..data_start + len].to_vec());
        }
        pos = end;
    }
    Ok(Some(pos))
}

/// The inline line at the start of `buf` without its `\n` or `\r\n`, and
/// the bytes it takes with its terminator.
fn inline_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > INLINE_MAX {
            Err(ProtocolError::new("too big inline request"))
        } else {
            Ok(None)
        };
    };
    let text = &buf[..newline];
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    Ok(Some((text, newline + 1)))
}

/// Redis's `sdssplitargs`: words separated by spaces; `"…"` with `\n`,
/// `\r`, `\t`, `\b`, `\a`, `\xHH` and `\<char>` escapes; `'…'` with only
/// `\'`; a closing quote must be followed by a space or the end. `None`
/// for unbalanced quotes. A NUL byte ends the line (it is a C string).
fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let at = |i: usize| line.get(i).copied();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut word = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let Some(c) = at(i) else {
                if in_double || in_single {
                    return None;
                }
                break;
            };
            if in_double {
                let hex = |j: usize| at(j).and_then(|b| (b as char).to_digit(16));
                match (c, at(i + 1)) {
                    (b'\\', Some(b'x')) if hex(i + 2).is_some() && hex(i + 3).is_some() => {
                        word.push((hex(i + 2)? * 16 + hex(i + 3)?) as u8);
                        i += 3;
                    }
                    (b'\\', Some(e)) => {
                        word.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 1;
                    }
                    (b'"', next) => {
                        if next.is_some_and(|n| !is_space(n)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    _ => word.push(c),
                }
            } else if in_single {
                match (c, at(i + 1)) {
                    (b'\\', Some(b'\'')) => {
                        word.push(b'\'');
                        i += 1;
                    }
                    (b'\'', next) => {
                        if next.is_some_and(|n| !is_space(n)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    _ => word.push(c),
                }
            } else {
                match c {
                    c if is_space(c) => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => word.push(c),
                }
            }
            i += 1;
        }
        args.push(word);
    }
}

/// Finds the `\r`-terminated line starting at `start` (Redis looks for
/// `\r`, then needs one more byte for the `\n` it does not check); returns
/// it without the terminator, and where the next one starts.
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

/// A length as strict as Redis's `string2ll`.
fn parse_len(digits: &[u8]) -> Option<i64> {
    keyferry_engine::command::args::parse_i64(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&[u8]]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.to_vec()).collect()
    }

    /// A request's arguments and length.
    type Parsed = (Vec<Vec<u8>>, usize);

    /// Checks then parses the first request of `buf`.
    fn request(buf: &[u8], limits: Limits) -> Result<Option<Parsed>, ProtocolError> {
        match check(buf, limits)? {
            None => Ok(None),
            Some(len) => Ok(Some((parse(&buf[..len], limits)?, len))),
        }
    }

    fn ok(buf: &[u8]) -> Parsed {
        request(buf, Limits::default()).unwrap().unwrap()
    }

    fn err(buf: &[u8], limits: Limits) -> ProtocolError {
        request(buf, limits).unwrap_err()
    }

    #[test]
    fn parses_a_multibulk_with_binary_arguments() {
        let req = b"*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$3\r\n\0\xff\n\r\n";
        assert_eq!(
            ok(req),
            (args(&[b"SET", b"a\r\nb", b"\0\xff\n"]), req.len())
        );
    }

    #[test]
    fn waits_for_every_byte_of_a_request() {
        let req = b"*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n";
        for cut in 0..req.len() {
            assert_eq!(
                check(&req[..cut], Limits::default()),
                Ok(None),
                "cut at {cut}"
            );
        }
        assert_eq!(check(req, Limits::default()), Ok(Some(req.len())));
    }

    #[test]
    fn leaves_pipelined_requests_for_the_next_call() {
        let req = b"*1\r\n$4\r\nPING\r\nPING x\r\n";
        let (first, len) = ok(req);
        assert_eq!(first, args(&[b"PING"]));
        assert_eq!(ok(&req[len..]), (args(&[b"PING", b"x"]), req.len() - len));
    }

    #[test]
    fn inline_commands_split_like_sdssplitargs() {
        assert_eq!(ok(b"  ping\t a  b\r\n").0, args(&[b"ping", b"a", b"b"]));
        assert_eq!(ok(b"ping\n"), (args(&[b"ping"]), 5));
        assert_eq!(
            ok(b"set \"a b\\x41\\n\\\"\" 'it\\'s' x\"y z\"\r\n").0,
            args(&[b"set", b"a bA\n\"", b"it's", b"xy z"])
        );
        assert_eq!(ok(b"a \"\" ''\r\n").0, args(&[b"a", b"", b""]));
        assert_eq!(ok(b"a\0b c\r\n").0, args(&[b"a"]));
        for bad in [
            &b"a \"b\r\n"[..],
            b"a 'b\r\n",
            b"a \"b\"c\r\n",
            b"a 'b'c\r\n",
        ] {
            assert_eq!(
                err(bad, Limits::default()),
                ProtocolError::new("unbalanced quotes in request"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn skippable_input_yields_no_arguments() {
        for (req, used) in [(&b"\r\n"[..], 2), (b"*0\r\n", 4), (b"*-1\r\n", 5)] {
            assert_eq!(ok(req), (Vec::new(), used), "{req:?}");
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
                err(req, Limits::default()),
                ProtocolError::new(*text),
                "{req:?}"
            );
        }
        let small = Limits {
            max_bulk: 3,
            ..Limits::default()
        };
        assert_eq!(
            err(b"*1\r\n$4\r\n", small),
            ProtocolError::new("invalid bulk length")
        );
    }

    #[test]
    fn unauthenticated_clients_send_small_requests_only() {
        let strict = Limits {
            unauthenticated: true,
            ..Limits::default()
        };
        assert_eq!(
            err(b"*11\r\n", strict),
            ProtocolError::new("unauthenticated multibulk length")
        );
        assert_eq!(check(b"*11\r\n", Limits::default()), Ok(None));
        let big = b"*1\r\n$16385\r\n";
        assert_eq!(
            err(big, strict),
            ProtocolError::new("unauthenticated bulk length")
        );
        assert_eq!(check(big, Limits::default()), Ok(None));
    }

    #[test]
    fn unterminated_lines_are_bounded() {
        let long = vec![b'a'; INLINE_MAX + 1];
        let limits = Limits::default();
        assert_eq!(
            err(&long, limits),
            ProtocolError::new("too big inline request")
        );
        assert_eq!(check(&long[..INLINE_MAX], limits), Ok(None));
        let mut header = b"*1".to_vec();
        header.extend(vec![b'1'; INLINE_MAX]);
        assert_eq!(
            err(&header, limits),
            ProtocolError::new("too big mbulk count string")
        );
        let mut bulk = b"*1\r\n$1".to_vec();
        bulk.extend(vec![b'1'; INLINE_MAX]);
        assert_eq!(
            err(&bulk, limits),
            ProtocolError::new("too big bulk count string")
        );
    }

    #[test]
    fn protocol_errors_reply_in_redis_words_with_raw_bytes() {
        let mut out = Vec::new();
        err(b"*1\r\n\xff\r\n", Limits::default()).encode(&mut out);
        assert_eq!(out, b"-ERR Protocol error: expected '$', got '\xff'\r\n");
    }
}

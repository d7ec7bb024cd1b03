//! Argument parsing shared by every command family, with Redis 7.0's
//! rules and error texts: strict integers (`string2ll`), floats
//! (`strtod` plus Redis's checks), sorted-set score and lex range bounds,
//! and case-insensitive option names.

use crate::glob;
use crate::long_double;
use crate::reply::{Reply, errors};

/// True when `arg` is the option `name`, ignoring ASCII case (`name` is
/// given in any case, e.g. `"WITHSCORES"`).
pub fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// Parses a 64-bit integer as strictly as Redis's `string2ll`: an optional
/// `-`, digits without leading zeros (`0` alone is fine, `-0` is not), no
/// `+`, no spaces, no overflow. Error: "value is not an integer or out of
/// range".
pub fn parse_i64(arg: &[u8]) -> Result<i64, Reply> {
    let body = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = match body {
        [b'0'] => arg.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    canonical
        .then(|| std::str::from_utf8(arg).ok()?.parse().ok())
        .flatten()
        .ok_or_else(errors::not_integer)
}

/// Parses a float the way Redis's `getDoubleFromObject` does: `strtod`
/// syntax (`1`, `-1.5e3`, `.5`, `inf`, `-Infinity`, hexadecimal `0x10`,
/// `0X1P-2`…, as the crate's one `strtod` reader, `long_double::lex`,
/// reads it) with nothing before or after it, neither NaN nor a value
/// out of `f64`'s range (overflow to infinity or underflow to zero).
/// Error: "value is not a valid float".
pub fn parse_f64(arg: &[u8]) -> Result<f64, Reply> {
    long_double::to_f64(arg)
        .filter(|(d, out_of_range)| !d.is_nan() && !out_of_range)
        .map(|(d, _)| d)
        .ok_or_else(errors::not_float)
}

/// One end of a sorted-set score range (`ZRANGEBYSCORE` and friends).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    /// The score.
    pub value: f64,
    /// True for a `(`-prefixed, exclusive bound.
    pub exclusive: bool,
}

impl ScoreBound {
    /// Whether `score` is on the inner side of this bound used as a
    /// minimum.
    pub fn below(&self, score: f64) -> bool {
        if self.exclusive {
            self.value < score
        } else {
            self.value <= score
        }
    }

    /// Whether `score` is on the inner side of this bound used as a
    /// maximum.
    pub fn above(&self, score: f64) -> bool {
        if self.exclusive {
            score < self.value
        } else {
            score <= self.value
        }
    }
}

/// Parses a score bound as Redis's `zslParseRange`: `(` makes it
/// exclusive; then whatever `strtod` reads up to the end is accepted —
/// leading spaces (which `strtod` skips), `-inf`/`+inf`, hexadecimal
/// floats, values out of range (as infinity or zero), even nothing at
/// all (0, as `strtod` reads no number and stops at the end), and
/// anything after a NUL byte, where the C string ends — except NaN. Error: "min or max is not a float".
pub fn parse_score_bound(arg: &[u8]) -> Result<ScoreBound, Reply> {
    let (exclusive, number) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    // Redis checks only that `strtod` stopped at a NUL: the C string ends
    // at the first one.
    let number = number.split(|&b| b == 0).next().unwrap_or_default();
    // C's `isspace` also counts the vertical tab and form feed.
    let start = number
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .unwrap_or(number.len());
    let value = if number.is_empty() {
        Some(0.0)
    } else {
        long_double::to_f64(&number[start..]).map(|(d, _)| d)
    };
    value
        .filter(|d| !d.is_nan())
        .map(|value| ScoreBound { value, exclusive })
        .ok_or_else(|| Reply::error("ERR min or max is not a float"))
}

/// One end of a sorted-set lexicographic range (`ZRANGEBYLEX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    NegInf,
    /// `+`: above every member.
    PosInf,
    /// `[member`.
    Inclusive(Vec<u8>),
    /// `(member`.
    Exclusive(Vec<u8>),
}

/// Parses a lex bound as Redis's `zslParseLexRangeItem`. Error: "min or
/// max not valid string range item".
pub fn parse_lex_bound(arg: &[u8]) -> Result<LexBound, Reply> {
    match arg {
        [b'-'] => Ok(LexBound::NegInf),
        [b'+'] => Ok(LexBound::PosInf),
        [b'[', member @ ..] => Ok(LexBound::Inclusive(member.to_vec())),
        [b'(', member @ ..] => Ok(LexBound::Exclusive(member.to_vec())),
        _ => Err(Reply::error("ERR min or max not valid string range item")),
    }
}

/// Parses a `SCAN`-family cursor as Redis's `parseScanCursorOrReply`
/// (C's `strtoul` over the whole argument): no leading space, an optional
/// sign (a negative cursor wraps around, as `strtoul` does), decimal
/// digits that fit in 64 bits, nothing else; the empty string is cursor
/// 0. Error: "invalid cursor".
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let invalid = || Reply::error("ERR invalid cursor");
    if arg.is_empty() {
        return Ok(0);
    }
    let (negative, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let value: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(invalid)?;
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// The options of a scan (`MATCH pattern`, `COUNT n`, and for `SCAN`
/// itself `TYPE type`), parsed as Redis's `scanGenericCommand` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanArgs<'a> {
    /// Elements to examine per call (default 10).
    pub count: usize,
    /// Only elements matching this glob are returned (`None`: all, also
    /// for `MATCH *`).
    pub pattern: Option<&'a [u8]>,
    /// `SCAN … TYPE t`: only keys of this type name.
    pub kind: Option<&'a [u8]>,
}

impl<'a> ScanArgs<'a> {
    /// Parses the options after the cursor; `TYPE` is an option only when
    /// `keys` (the keyspace `SCAN`). Errors: a non-integer COUNT is "not
    /// an integer", a COUNT below 1 or anything unknown (an option
    /// without its value included) is a syntax error.
    pub fn parse(options: &'a [Vec<u8>], keys: bool) -> Result<Self, Reply> {
        let mut args = ScanArgs {
            count: 10,
            pattern: None,
            kind: None,
        };
        let mut rest = options;
        while let [option, value, tail @ ..] = rest {
            if is(option, "COUNT") {
                let count = parse_i64(value)?;
                if count < 1 {
                    return Err(errors::syntax());
                }
                args.count = usize::try_from(count).unwrap_or(usize::MAX);
            } else if is(option, "MATCH") {
                // `*` matches everything: skip matching altogether.
                args.pattern = (value.as_slice() != b"*").then_some(value.as_slice());
            } else if keys && is(option, "TYPE") {
                args.kind = Some(value.as_slice());
            } else {
                return Err(errors::syntax());
            }
            rest = tail;
        }
        if rest.is_empty() {
            Ok(args)
        } else {
            Err(errors::syntax())
        }
    }

    /// Whether an element with this name goes into the reply.
    pub fn keeps(&self, name: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob::matches(p, name))
    }

    /// `[cursor, [items…]]`.
    pub fn reply(cursor: u64, items: Vec<Reply>) -> Reply {
        Reply::Array(vec![
            Reply::Bulk(cursor.to_string().into_bytes()),
            Reply::Array(items),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_parsed_as_strictly_as_redis() {
        for (arg, value) in [
            (&b"0"[..], 0),
            (b"-1", -1),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(parse_i64(arg), Ok(value));
        }
        for arg in [
            &b""[..],
            b"-",
            b"-0",
            b"+1",
            b"01",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
            b"\xff",
        ] {
            assert_eq!(parse_i64(arg), Err(errors::not_integer()), "{arg:?}");
        }
    }

    #[test]
    fn floats_follow_strtod_with_redis_checks() {
        for (arg, value) in [
            (&b"1"[..], 1.0),
            (b"-1.5e3", -1500.0),
            (b".5", 0.5),
            (b"5.", 5.0),
            (b"+2", 2.0),
            (b"inf", f64::INFINITY),
            (b"-Infinity", f64::NEG_INFINITY),
            (b"0e5", 0.0),
            (b"0x10", 16.0),
            (b"0X1P-2", 0.25),
            (b"-0x.8", -0.5),
            (b"0x1.", 1.0),
            (b"0x1p-1074", 5e-324),
            (b"0x1.fffffffffffffp1023", f64::MAX),
            // Ties round to even, as glibc does.
            (b"0x1.00000000000008p0", 1.0),
            (b"0x1.00000000000018p0", 1.0 + 2.0 * f64::EPSILON),
            (b"0x1.000000000000081p0", 1.0 + f64::EPSILON),
        ] {
            assert_eq!(parse_f64(arg), Ok(value), "{arg:?}");
        }
        for arg in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1e400",
            b"1e-400",
            b"abc",
            b"1e",
            b"1_0",
            b"0x",
            b"0x1p",
            b"0x1p1024",
            b"0x1p-1076",
            b"0x10 ",
            b"1\x00",
        ] {
            assert_eq!(parse_f64(arg), Err(errors::not_float()), "{arg:?}");
        }
    }

    #[test]
    fn score_bounds() {
        assert_eq!(
            parse_score_bound(b"(1.5"),
            Ok(ScoreBound {
                value: 1.5,
                exclusive: true
            })
        );
        assert_eq!(
            parse_score_bound(b"-inf"),
            Ok(ScoreBound {
                value: f64::NEG_INFINITY,
                exclusive: false
            })
        );
        // strtod reads nothing and stops at the end: Redis takes it as 0.
        assert_eq!(
            parse_score_bound(b"("),
            Ok(ScoreBound {
                value: 0.0,
                exclusive: true
            })
        );
        assert_eq!(parse_score_bound(b" 0x10").map(|b| b.value), Ok(16.0));
        assert_eq!(
            parse_score_bound(b"1e400").map(|b| b.value),
            Ok(f64::INFINITY)
        );
        assert_eq!(parse_score_bound(b"1\x00x").map(|b| b.value), Ok(1.0));
        assert!(parse_score_bound(b" ").is_err());
        assert!(parse_score_bound(b"1 ").is_err());
        assert!(parse_score_bound(b"x").is_err());
        assert!(parse_score_bound(b"nan").is_err());
        let min = parse_score_bound(b"(1").unwrap();
        assert!(!min.below(1.0) && min.below(1.1));
        let max = parse_score_bound(b"1").unwrap();
        assert!(max.above(1.0) && !max.above(1.1));
    }

    #[test]
    fn cursors_follow_strtoul() {
        for (arg, cursor) in [
            (&b""[..], 0),
            (b"0", 0),
            (b"+7", 7),
            (b"-1", u64::MAX),
            (b"18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_cursor(arg), Ok(cursor), "{arg:?}");
        }
        for arg in [&b" 1"[..], b"1 ", b"-", b"1x", b"18446744073709551616"] {
            assert_eq!(
                parse_cursor(arg),
                Err(Reply::error("ERR invalid cursor")),
                "{arg:?}"
            );
        }
    }

    #[test]
    fn scan_options() {
        let argv = |args: &[&str]| -> Vec<Vec<u8>> {
            args.iter().map(|a| a.as_bytes().to_vec()).collect()
        };
        let options = argv(&["count", "3", "MATCH", "a*", "TYPE", "hash"]);
        let parsed = ScanArgs::parse(&options, true).unwrap();
        assert_eq!(
            (parsed.count, parsed.pattern, parsed.kind),
            (3, Some(&b"a*"[..]), Some(&b"hash"[..]))
        );
        assert!(parsed.keeps(b"abc") && !parsed.keeps(b"b"));
        assert_eq!(ScanArgs::parse(&options, false), Err(errors::syntax()));
        let everything = argv(&["MATCH", "*"]);
        assert_eq!(ScanArgs::parse(&everything, false).unwrap().pattern, None);
        for bad in [
            &["COUNT", "0"][..],
            &["COUNT"],
            &["MATCH", "a", "COUNT"],
            &["X", "1"],
        ] {
            assert_eq!(
                ScanArgs::parse(&argv(bad), true),
                Err(errors::syntax()),
                "{bad:?}"
            );
        }
        assert_eq!(
            ScanArgs::parse(&argv(&["COUNT", "x"]), true),
            Err(errors::not_integer())
        );
    }

    #[test]
    fn lex_bounds() {
        assert_eq!(parse_lex_bound(b"-"), Ok(LexBound::NegInf));
        assert_eq!(parse_lex_bound(b"+"), Ok(LexBound::PosInf));
        assert_eq!(
            parse_lex_bound(b"[a"),
            Ok(LexBound::Inclusive(b"a".to_vec()))
        );
        assert_eq!(parse_lex_bound(b"("), Ok(LexBound::Exclusive(Vec::new())));
        assert!(parse_lex_bound(b"a").is_err());
        assert!(parse_lex_bound(b"").is_err());
    }

    #[test]
    fn options_match_in_any_case() {
        assert!(is(b"WithScores", "WITHSCORES"));
        assert!(!is(b"WITHSCORE", "WITHSCORES"));
    }
}

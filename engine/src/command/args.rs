//! Argument parsing shared by every command family, with Redis 7.0's
//! rules and error texts: strict integers (`string2ll`), floats
//! (`strtod` plus Redis's checks), sorted-set score and lex range bounds,
//! and case-insensitive option names.

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
/// syntax (`1`, `-1.5e3`, `.5`, `inf`, `-Infinity`…) with nothing before
/// or after it, neither NaN nor a value out of `f64`'s range (overflow to
/// infinity or underflow to zero). Error: "value is not a valid float".
pub fn parse_f64(arg: &[u8]) -> Result<f64, Reply> {
    strtod(arg)
        .filter(|d| !d.is_nan() && !out_of_range(arg, *d))
        .ok_or_else(errors::not_float)
}

/// Parses like C's `strtod` over the whole argument (no leading or
/// trailing spaces), hexadecimal floats excepted; NaN is returned as is.
fn strtod(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    // Rust's parser also takes `+`-signed and `inf`/`infinity`/`nan` in any
    // case, like strtod; it rejects what strtod would stop early on.
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    text.parse().ok()
}

/// Whether `strtod` would have set `ERANGE` with a useless result: a
/// finite literal that overflowed to infinity or a nonzero one that
/// underflowed to zero.
fn out_of_range(arg: &[u8], d: f64) -> bool {
    let literal_is_inf = arg.iter().any(|b| b.eq_ignore_ascii_case(&b'i'));
    let mantissa = arg
        .split(|b| b.eq_ignore_ascii_case(&b'e'))
        .next()
        .unwrap_or_default();
    (d.is_infinite() && !literal_is_inf)
        || (d == 0.0 && mantissa.iter().any(|b| (b'1'..=b'9').contains(b)))
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
/// exclusive; `-inf`/`+inf` and anything `strtod` reads whole are
/// accepted (leading spaces included, as `strtod` skips them), NaN is not.
/// Error: "min or max is not a float".
pub fn parse_score_bound(arg: &[u8]) -> Result<ScoreBound, Reply> {
    let (exclusive, number) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let start = number
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(number.len());
    strtod(&number[start..])
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
        assert!(parse_score_bound(b"(").is_err());
        assert!(parse_score_bound(b"x").is_err());
        assert!(parse_score_bound(b"nan").is_err());
        let min = parse_score_bound(b"(1").unwrap();
        assert!(!min.below(1.0) && min.below(1.1));
        let max = parse_score_bound(b"1").unwrap();
        assert!(max.above(1.0) && !max.above(1.1));
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

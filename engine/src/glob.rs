//! Redis's glob-style patterns, matched exactly like Redis 7.0's
//! `stringmatchlen`: used by `KEYS`, `SCAN`/`HSCAN`/`SSCAN`/`ZSCAN` `MATCH`,
//! `PSUBSCRIBE`, `PUBSUB CHANNELS` and `CONFIG GET`. `*`, `?`, `[abc]`,
//! `[^abc]`, `[a-z]` (reversed ranges allowed), and `\` escaping the next
//! byte, inside a class too, over arbitrary bytes.
//!
//! Redis's quirks are kept on purpose, because clients send patterns
//! written against a real Redis: an unclosed `[` class runs to the end of
//! the pattern, a trailing lone `\` matches a literal `\`, range ends
//! compare as C's signed `char` (as on the x86-64 builds everyone runs),
//! and a pattern starting with `*` does not match the empty string —
//! `KEYS *` and `SCAN` without `MATCH` skip matching altogether, so callers
//! treat the pattern `*` as "no filter" before calling [`matches`].

/// Whether `text` matches `pattern`, byte for byte.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match_from(pattern, text, false, &mut false)
}

/// Whether `text` matches `pattern`, ASCII letters compared without case
/// (as `CONFIG GET` does).
pub fn matches_nocase(pattern: &[u8], text: &[u8]) -> bool {
    match_from(pattern, text, true, &mut false)
}

/// The literal bytes every match of `pattern` starts with (up to its first
/// special character), so a listing can read only keys with that prefix.
pub fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// The byte at `i`, or 0 past the end: Redis reads patterns from
/// NUL-terminated buffers and relies on that terminator in places.
fn at(pattern: &[u8], i: usize) -> u8 {
    pattern.get(i).copied().unwrap_or(0)
}

/// A byte as C's (signed) `char`, lowered like `tolower` when `nocase`.
fn char_value(b: u8, nocase: bool) -> i32 {
    let b = if nocase { b.to_ascii_lowercase() } else { b };
    i32::from(b as i8)
}

fn same(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// `stringmatchlen_impl`. `give_up` is Redis's `skipLongerMatches`: once
/// the rest of the pattern after a `*` matched nowhere in the rest of the
/// text, earlier `*`s cannot help either, which keeps patterns like
/// `a*a*a*a*b` from taking exponential time.
fn match_from(mut pattern: &[u8], mut text: &[u8], nocase: bool, give_up: &mut bool) -> bool {
    while !pattern.is_empty() && !text.is_empty() {
        match pattern[0] {
            b'*' => {
                while pattern.len() > 1 && pattern[1] == b'*' {
                    pattern = &pattern[1..];
                }
                if pattern.len() == 1 {
                    return true;
                }
                while !text.is_empty() {
                    if match_from(&pattern[1..], text, nocase, give_up) {
                        return true;
                    }
                    if *give_up {
                        return false;
                    }
                    text = &text[1..];
                }
                *give_up = true;
                return false;
            }
            b'?' => text = &text[1..],
            b'[' => {
                let (matched, last) = match_class(pattern, text[0], nocase);
                if !matched {
                    return false;
                }
                // The step below moves past the class's last byte.
                pattern = &pattern[last..];
                text = &text[1..];
            }
            first => {
                let literal = if first == b'\\' && pattern.len() >= 2 {
                    pattern = &pattern[1..];
                    pattern[0]
                } else {
                    first
                };
                if !same(literal, text[0], nocase) {
                    return false;
                }
                text = &text[1..];
            }
        }
        pattern = &pattern[1..];
        if text.is_empty() {
            while at(pattern, 0) == b'*' {
                pattern = &pattern[1..];
            }
            break;
        }
    }
    pattern.is_empty() && text.is_empty()
}

/// Matches byte `c` against the class opened by the `[` at the start of
/// `pattern`. Returns whether it matched and the index of the class's last
/// byte: its `]`, or for an unclosed class the pattern's last byte (Redis
/// steps back one there so that its caller's step forward ends the
/// pattern).
fn match_class(pattern: &[u8], c: u8, nocase: bool) -> (bool, usize) {
    let mut i = 1;
    let negated = at(pattern, i) == b'^';
    if negated {
        i += 1;
    }
    let mut matched = false;
    loop {
        let left = pattern.len().saturating_sub(i);
        if at(pattern, i) == b'\\' && left >= 2 {
            i += 1;
            matched |= pattern[i] == c;
        } else if at(pattern, i) == b']' {
            break;
        } else if left == 0 {
            i -= 1;
            break;
        } else if left >= 3 && pattern[i + 1] == b'-' {
            let (mut lo, mut hi) = (
                char_value(pattern[i], nocase),
                char_value(pattern[i + 2], nocase),
            );
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            matched |= (lo..=hi).contains(&char_value(c, nocase));
            i += 2;
        } else {
            matched |= same(pattern[i], c, nocase);
        }
        i += 1;
    }
    (matched != negated, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_redis() {
        let yes: &[(&[u8], &[u8])] = &[
            (b"*", b"anything"),
            (b"a*", b"a"),
            (b"a**b", b"ab"),
            (b"h?llo", b"hello"),
            (b"h*llo", b"heeello"),
            (b"h*llo", b"hllo"),
            (b"h[ae]llo", b"hallo"),
            (b"h[^e]llo", b"hallo"),
            (b"h[a-b]llo", b"hbllo"),
            (b"h[b-a]llo", b"hallo"),
            (b"h\\*llo", b"h*llo"),
            (b"a*b*c", b"a\0b\xffc"),
            (b"[\\]]", b"]"),
            (b"", b""),
        ];
        for (pattern, text) in yes {
            assert!(matches(pattern, text), "{pattern:?} {text:?}");
        }
        let no: &[(&[u8], &[u8])] = &[
            (b"h?llo", b"hllo"),
            (b"h[^e]llo", b"hello"),
            (b"h[ae]llo", b"hillo"),
            (b"h[a-b]llo", b"hcllo"),
            (b"h\\*llo", b"hello"),
            (b"abc", b"abcd"),
            (b"a*b", b"a"),
            (b"", b"a"),
            (b"?", b""),
            // Checked on redis-server 7.0.15: `KEYS **` misses the key "".
            (b"*", b""),
            (b"**", b""),
        ];
        for (pattern, text) in no {
            assert!(!matches(pattern, text), "{pattern:?} {text:?}");
        }
        assert!(matches_nocase(b"MAX*", b"maxmemory"));
        assert!(matches_nocase(b"[L-N]ax", b"max"));
        assert!(!matches(b"MAX*", b"maxmemory"));
    }

    #[test]
    fn escapes_and_unclosed_classes() {
        assert!(matches(b"\\", b"\\"), "a trailing backslash is literal");
        assert!(matches(b"a[bc", b"ab"), "an unclosed class runs to the end");
        assert!(matches(b"a[bc", b"ac"));
        assert!(!matches(b"a[bc", b"abc"));
        // Checked on redis-server 7.0.15: `KEYS [[` finds the key "[",
        // `KEYS [` (an empty unclosed class) does not.
        assert!(matches(b"[[", b"["));
        assert!(!matches(b"[", b"["));
    }

    #[test]
    fn ranges_compare_bytes_as_signed_chars() {
        // 0x80 is -128 and 0xff is -1 as a signed char.
        assert!(matches(b"[\x80-a]", b"\x90"));
        assert!(!matches(b"[a-\xff]", b"b"), "the range is -1..=97");
        assert!(matches(b"[a-\xff]", b"\x00"));
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let text = vec![b'a'; 5000];
        assert!(!matches(b"a*a*a*a*a*a*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn literal_prefix_stops_at_the_first_special_byte() {
        assert_eq!(literal_prefix(b"user:*"), b"user:");
        assert_eq!(literal_prefix(b"a\\*b"), b"a");
        assert_eq!(literal_prefix(b"abc"), b"abc");
        assert_eq!(literal_prefix(b"?x"), b"");
    }
}

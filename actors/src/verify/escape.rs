//! Showing binary keys the way Redis shows them.
//!
//! Keys are arbitrary bytes; reports print them as `redis-cli` does
//! (`sdscatrepr`): printable ASCII as is, `\\` and `"` backslashed, the
//! usual C escapes for `\n \r \t \a \b`, and `\xHH` (lower-case hex) for
//! every other byte. Nothing is ever decoded as UTF-8, so the text is
//! unambiguous and a key can be typed back into `redis-cli` between
//! double quotes.

use std::fmt::Write;

/// `bytes` escaped as Redis escapes keys, without surrounding quotes
/// (e.g. `a\r\n\xff`).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out
}

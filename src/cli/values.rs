//! Parsers for the values of flags: byte sizes, percentages and run ids
//! (source URIs are parsed by [`keyferry_actors::source::SourceUri`]).

pub use keyferry_actors::source::SourceUri;

/// Masks the password of every `scheme://user:password@host` in `text` as
/// `***`, for messages that quote what the user typed.
pub fn redact_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The URI runs to the next whitespace or quote.
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let (uri, after) = tail.split_at(end);
        match (uri.find(':'), uri.rfind('@')) {
            // `[user:pass@]` is the syntax in our own help text, not a URI.
            (Some(colon), Some(at)) if colon < at && !uri.starts_with('[') => {
                out.push_str(&uri[..=colon]);
                out.push_str("***");
                out.push_str(&uri[at..]);
            }
            _ => out.push_str(uri),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Parses a byte size the way redis.conf does: a number with an optional
/// case-insensitive unit, `k`/`m`/`g` = 1000ⁿ and `kb`/`mb`/`gb` = 1024ⁿ
/// (also `kib`/`mib`/`gib`).
pub(crate) fn parse_byte_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" | "kib" => 1 << 10,
        "m" => 1000 * 1000,
        "mb" | "mib" => 1 << 20,
        "g" => 1000 * 1000 * 1000,
        "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} (use b, k, kb, m, mb, g or gb)"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 64mb"))?;
    match n.checked_mul(multiplier) {
        Some(0) => Err("the size must be greater than zero".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{s:?} is too large")),
    }
}

/// Parses a percentage in (0, 100].
pub(crate) fn parse_percent(s: &str) -> Result<f64, String> {
    // `0.5%` as the seed's examples write it, or plain `0.5`.
    let number = s.trim().strip_suffix('%').unwrap_or(s.trim());
    let pct: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if pct > 0.0 && pct <= 100.0 {
        Ok(pct)
    } else {
        Err("the percentage must be greater than 0 and at most 100".into())
    }
}

/// Checks a run id: 1 to 128 printable characters, no whitespace (it is
/// shown in status lines and metric labels).
pub(crate) fn parse_run_id(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().count() > 128 {
        return Err("a run id has 1 to 128 characters".into());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a run id has no whitespace or control characters".into());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_follow_redis_conf_units() {
        assert_eq!(parse_byte_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_byte_size("64m"), Ok(64_000_000));
        assert_eq!(parse_byte_size("1kib"), Ok(1024));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert!(parse_byte_size("0").is_err());
        assert!(parse_byte_size("12 parsecs").is_err());
        assert!(parse_byte_size("99999999999gb").is_err());
    }

    #[test]
    fn percentages_and_run_ids_are_bounded() {
        assert_eq!(parse_percent("2.5"), Ok(2.5));
        assert_eq!(parse_percent("0.5%"), Ok(0.5));
        assert!(parse_percent("0").is_err() && parse_percent("NaN").is_err());
        assert!(parse_run_id("run_2026_03_03").is_ok());
        assert!(parse_run_id("has space").is_err() && parse_run_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn redact_passwords_masks_every_userinfo_password() {
        assert_eq!(
            redact_passwords("bad 'http://u:s3cr@t@h:1' and redis://:pw@h/2 or redis://h:6379"),
            "bad 'http://u:***@h:1' and redis://:***@h/2 or redis://h:6379"
        );
        assert_eq!(redact_passwords("no uri here"), "no uri here");
    }
}

//! Source URIs: `redis://[user:pass@]host[:port][/db]` and `rediss://`.

use std::fmt;
use std::str::FromStr;

/// A source Redis address from `--from`:
/// `redis://[user:pass@]host[:port][/db]`, or `rediss://` for TLS.
///
/// User and password are percent-decoded. [`fmt::Display`] and
/// [`fmt::Debug`] print the password as `***`, so logging a `SourceUri`
/// never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceUri {
    /// `rediss://`.
    pub tls: bool,
    /// ACL user name, if any.
    pub username: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (6379 when absent).
    pub port: u16,
    /// Database number (0 when absent).
    pub db: u32,
}

/// Why a `--from` value is not a source URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} (expected redis://[user:pass@]host:port[/db] or rediss://…)")]
pub struct UriError(&'static str);

impl FromStr for SourceUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let (tls, rest) = if let Some(rest) = s.strip_prefix("redis://") {
            (false, rest)
        } else if let Some(rest) = s.strip_prefix("rediss://") {
            (true, rest)
        } else {
            return Err(UriError("the scheme must be redis:// or rediss://"));
        };
        let (authority, db) = match rest.split_once('/') {
            None | Some((_, "")) => (rest.trim_end_matches('/'), 0),
            Some((authority, db)) => (
                authority,
                db.parse()
                    .map_err(|_| UriError("the database must be a number"))?,
            ),
        };
        // The password may itself contain '@' when not percent-encoded: the
        // host starts after the last one.
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = info
                    .split_once(':')
                    .map_or((info, None), |(u, p)| (u, Some(p)));
                let user = Some(percent_decode(user)?).filter(|u| !u.is_empty());
                (user, pass.map(percent_decode).transpose()?)
            }
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(UriError("the host is missing"));
        }
        Ok(SourceUri {
            tls,
            username,
            password,
            host: host.to_string(),
            port,
            db,
        })
    }
}

/// Splits `host[:port]` or `[v6addr][:port]`.
fn split_host_port(s: &str) -> Result<(&str, u16), UriError> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| UriError("the port must be a number from 0 to 65535"))
    };
    if let Some(bracketed) = s.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or(UriError("an IPv6 host lacks its closing ']'"))?;
        return match after {
            "" => Ok((host, 6379)),
            _ => Ok((
                host,
                parse_port(
                    after
                        .strip_prefix(':')
                        .ok_or(UriError("junk after the IPv6 host"))?,
                )?,
            )),
        };
    }
    match s.split_once(':') {
        None => Ok((s, 6379)),
        Some((host, port)) => Ok((host, parse_port(port)?)),
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, UriError> {
    const BAD: UriError = UriError("a bad %-escape in the user or password");
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next().ok_or(BAD)?, bytes.next().ok_or(BAD)?];
            let hex = std::str::from_utf8(&hex).map_err(|_| BAD)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| BAD)?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| UriError("the user or password is not UTF-8 once decoded"))
}

impl fmt::Display for SourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", if self.tls { "rediss" } else { "redis" })?;
        match (&self.username, &self.password) {
            (Some(user), Some(_)) => write!(f, "{user}:***@")?,
            (Some(user), None) => write!(f, "{user}@")?,
            (None, Some(_)) => write!(f, ":***@")?,
            (None, None) => {}
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

impl fmt::Debug for SourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceUri({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> SourceUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_every_part_of_a_uri() {
        let u = uri("rediss://alice:p%40ss@cache.example:6380/3");
        assert!(u.tls);
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!((u.host.as_str(), u.port, u.db), ("cache.example", 6380, 3));
    }

    #[test]
    fn fills_in_defaults_and_password_only_userinfo() {
        let u = uri("redis://:secret@10.0.0.10");
        assert!(!u.tls);
        assert_eq!((u.username, u.password.as_deref()), (None, Some("secret")));
        assert_eq!((u.host.as_str(), u.port, u.db), ("10.0.0.10", 6379, 0));
        let v6 = uri("redis://[::1]:7000/");
        assert_eq!((v6.host.as_str(), v6.port, v6.db), ("::1", 7000, 0));
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        let u = uri("redis://bob:hunter2@h:1/2");
        assert_eq!(u.to_string(), "redis://bob:***@h:1/2");
        assert!(!format!("{u:?}").contains("hunter2"));
        assert_eq!(
            uri("redis://[::1]:7000").to_string(),
            "redis://[::1]:7000/0"
        );
    }

    #[test]
    fn rejects_malformed_uris() {
        for bad in [
            "http://h:1",
            "redis://",
            "redis://h:port",
            "redis://h:1/x",
            "redis://[::1",
            "redis://u:%zz@h",
        ] {
            assert!(
                bad.parse::<SourceUri>().is_err(),
                "{bad} should be rejected"
            );
        }
    }
}

//! A client session and the commands `serve` knows so far: PING and AUTH.
//! Every other command gets Redis's unknown-command error, byte for byte.
//!
//! Checks run in Redis 7.0's order (`processCommand`): unknown command,
//! then arity, then authentication, so error replies match a real server's
//! whatever the client sends.

use std::sync::Arc;

use crate::resp::Reply;

/// A command's name (lowercase), arity in Redis's convention (`n`: exactly
/// `n` arguments counting the name; `-n`: at least `n`), whether it runs
/// before AUTH, and its implementation.
struct Command {
    name: &'static str,
    arity: i64,
    no_auth: bool,
    run: fn(&mut Session, &[Vec<u8>]) -> Reply,
}

impl Command {
    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
}

const COMMANDS: &[Command] = &[
    Command {
        name: "auth",
        arity: -2,
        no_auth: true,
        run: auth,
    },
    Command {
        name: "ping",
        arity: -1,
        no_auth: false,
        run: ping,
    },
];

/// One client's state.
pub(crate) struct Session {
    /// The `default` user's password (`--requirepass`), if any.
    requirepass: Option<Arc<str>>,
    authenticated: bool,
}

impl Session {
    /// A new client; it must AUTH first when `requirepass` is set.
    pub(crate) fn new(requirepass: Option<Arc<str>>) -> Self {
        Self {
            authenticated: requirepass.is_none(),
            requirepass,
        }
    }

    /// Whether the client still has to authenticate (it is then held to
    /// small requests, see [`crate::resp::parse_request`]).
    pub(crate) fn must_authenticate(&self) -> bool {
        !self.authenticated
    }

    /// Runs one command; `argv` is never empty.
    pub(crate) fn execute(&mut self, argv: &[Vec<u8>]) -> Reply {
        let name = argv[0].to_ascii_lowercase();
        let Some(command) = COMMANDS.iter().find(|c| c.name.as_bytes() == name) else {
            // Unknown names are unbounded: one label for all of them.
            metrics::counter!("keyferry_commands_total", "command" => "unknown").increment(1);
            return unknown_command(argv);
        };
        metrics::counter!("keyferry_commands_total", "command" => command.name).increment(1);
        if !command.arity_ok(argv.len()) {
            return wrong_arity(command.name);
        }
        if !self.authenticated && !command.no_auth {
            return Reply::error("NOAUTH Authentication required.");
        }
        (command.run)(self, argv)
    }
}

fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// `PING [message]`.
fn ping(_: &mut Session, argv: &[Vec<u8>]) -> Reply {
    match argv {
        [_] => Reply::Simple("PONG"),
        [_, message] => Reply::Bulk(message.clone()),
        _ => wrong_arity("ping"),
    }
}

/// `AUTH [username] password`, for the `default` user only (ACL users come
/// with ACL support).
fn auth(session: &mut Session, argv: &[Vec<u8>]) -> Reply {
    let (user, password) = match argv {
        [_, password] => {
            if session.requirepass.is_none() {
                return Reply::error(
                    "ERR AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?",
                );
            }
            (&b"default"[..], password)
        }
        [_, user, password] => (&user[..], password),
        _ => return Reply::error("ERR syntax error"),
    };
    let accepted = user == b"default"
        && match &session.requirepass {
            None => true,
            Some(expected) => same_secret(expected.as_bytes(), password),
        };
    if accepted {
        session.authenticated = true;
        Reply::Simple("OK")
    } else {
        Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Redis's reply to an unknown command:
/// `ERR unknown command 'name', with args beginning with: 'a' 'b' `.
///
/// Reproduces Redis's C formatting exactly: the name is cut at 128 bytes;
/// arguments are quoted one by one while the list is shorter than 128
/// bytes, each cut to what is left of those 128; every piece ends at its
/// first NUL byte (C strings); `\r` and `\n` become spaces when encoded.
fn unknown_command(argv: &[Vec<u8>]) -> Reply {
    const LIMIT: usize = 128;
    let c_str = |bytes: &[u8], max: usize| -> Vec<u8> {
        bytes
            .iter()
            .copied()
            .take_while(|&b| b != 0)
            .take(max)
            .collect()
    };
    let mut args = Vec::new();
    for arg in &argv[1..] {
        if args.len() >= LIMIT {
            break;
        }
        let room = LIMIT - args.len();
        args.push(b'\'');
        args.extend(c_str(arg, room));
        args.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend(c_str(&argv[0], LIMIT));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend(args);
    Reply::Error(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(session: &mut Session, argv: &[&[u8]]) -> Vec<u8> {
        let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
        let mut out = Vec::new();
        session.execute(&argv).encode(&mut out);
        out
    }

    #[test]
    fn ping_in_every_form() {
        let mut s = Session::new(None);
        assert_eq!(run(&mut s, &[b"PING"]), b"+PONG\r\n");
        assert_eq!(run(&mut s, &[b"ping", b"a\0b"]), b"$3\r\na\0b\r\n");
        assert_eq!(
            run(&mut s, &[b"PiNg", b"a", b"b"]),
            b"-ERR wrong number of arguments for 'ping' command\r\n"
        );
    }

    #[test]
    fn unknown_command_names_its_arguments() {
        let mut s = Session::new(None);
        assert_eq!(
            run(&mut s, &[b"foo"]),
            b"-ERR unknown command 'foo', with args beginning with: \r\n"
        );
        assert_eq!(
            run(&mut s, &[b"FOO", b"a", b"b\r\nc"]),
            b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b  c' \r\n"
        );
    }

    #[test]
    fn unknown_command_cuts_like_c() {
        let mut s = Session::new(None);
        let long = vec![b'x'; 200];
        let reply = run(&mut s, &[&long, b"a\0hidden", &long, b"never shown"]);
        let expected = format!(
            "-ERR unknown command '{}', with args beginning with: 'a' '{}' \r\n",
            "x".repeat(128),
            "x".repeat(128 - 4)
        );
        assert_eq!(String::from_utf8(reply).unwrap(), expected);
    }

    #[test]
    fn requirepass_gates_everything_but_auth() {
        let mut s = Session::new(Some("sesame".into()));
        assert!(s.must_authenticate());
        assert_eq!(
            run(&mut s, &[b"PING"]),
            b"-NOAUTH Authentication required.\r\n"
        );
        // Unknown commands and arity errors come before the auth check.
        assert!(run(&mut s, &[b"nope"]).starts_with(b"-ERR unknown command 'nope'"));
        assert_eq!(
            run(&mut s, &[b"AUTH"]),
            b"-ERR wrong number of arguments for 'auth' command\r\n"
        );
        let wrongpass = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
        assert_eq!(run(&mut s, &[b"AUTH", b"sesam"]), wrongpass);
        assert_eq!(run(&mut s, &[b"AUTH", b"alice", b"sesame"]), wrongpass);
        assert_eq!(
            run(&mut s, &[b"AUTH", b"a", b"b", b"c"]),
            b"-ERR syntax error\r\n"
        );
        assert!(s.must_authenticate());
        assert_eq!(run(&mut s, &[b"auth", b"default", b"sesame"]), b"+OK\r\n");
        assert_eq!(run(&mut s, &[b"PING"]), b"+PONG\r\n");
    }

    #[test]
    fn auth_without_requirepass() {
        let mut s = Session::new(None);
        assert!(
            run(&mut s, &[b"AUTH", b"pw"])
                .starts_with(b"-ERR AUTH <password> called without any password")
        );
        assert_eq!(run(&mut s, &[b"AUTH", b"default", b"anything"]), b"+OK\r\n");
    }
}

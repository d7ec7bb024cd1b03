//! The table entries for the commands the server implements itself
//! ([`Exec::Server`]): connection, session, server, transaction and
//! pub/sub commands. Listing them here gives `COMMAND`, arity checks and
//! dispatch one table for every command. Arity, flags and key positions
//! are Redis 7.0's.

use super::{CommandSpec, Exec};

/// A server-implemented command without keys.
const fn server(name: &'static str, arity: i32, flags: &'static [&'static str]) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 0,
        last_key: 0,
        step: 0,
        exec: Exec::Server,
    }
}

/// Flags of the commands a client may send before it authenticated.
const NO_AUTH: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
/// Flags of `MULTI`, `DISCARD`, `UNWATCH`.
const TRANSACTION: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
/// Flags of the subscribe family.
const SUBSCRIBE: &[&str] = &["pubsub", "noscript", "loading", "stale"];

/// The server's commands.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    server("ping", -1, &["fast", "sentinel"]),
    server("echo", 2, &["fast"]),
    server("quit", -1, NO_AUTH),
    server("reset", 1, NO_AUTH),
    server("select", 2, &["loading", "stale", "fast"]),
    server(
        "hello",
        -1,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "sentinel",
            "allow_busy",
        ],
    ),
    server(
        "auth",
        -2,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "sentinel",
            "allow_busy",
        ],
    ),
    server("client", -2, &[]),
    server("command", -1, &["loading", "stale", "sentinel"]),
    server("info", -1, &["loading", "stale", "sentinel"]),
    server("time", 1, &["loading", "stale", "fast"]),
    server("config", -2, &[]),
    server("function", -2, &[]),
    server("multi", 1, TRANSACTION),
    server("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"]),
    server("discard", 1, TRANSACTION),
    CommandSpec {
        first_key: 1,
        last_key: -1,
        step: 1,
        ..server("watch", -2, TRANSACTION)
    },
    server("unwatch", 1, TRANSACTION),
    server("subscribe", -2, SUBSCRIBE),
    server("unsubscribe", -1, SUBSCRIBE),
    server("psubscribe", -2, SUBSCRIBE),
    server("punsubscribe", -1, SUBSCRIBE),
    server(
        "publish",
        3,
        &["pubsub", "loading", "stale", "fast", "may_replicate"],
    ),
    server("pubsub", -2, &[]),
];

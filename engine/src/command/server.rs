//! The table entries for the commands the server implements itself
//! ([`Exec::Server`]): connection, session, server, transaction and
//! pub/sub commands. Listing them here gives `COMMAND`, arity checks and
//! dispatch one table for every command. Arity, flags and key positions
//! are Redis 7.0's.

use super::{CommandSpec, Exec, spec};

/// A server-implemented command without keys.
const fn server(name: &'static str, arity: i32, flags: &'static [&'static str]) -> CommandSpec {
    spec(name, arity, flags, (0, 0, 0), Exec::Server)
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
/// Flags of `HELLO` and `AUTH` (also allowed on a Sentinel).
const HANDSHAKE: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "sentinel",
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
    server("hello", -1, HANDSHAKE),
    server("auth", -2, HANDSHAKE),
    server("client", -2, &[]),
    server("command", -1, &["loading", "stale", "sentinel"]),
    server("info", -1, &["loading", "stale", "sentinel"]),
    server("time", 1, &["loading", "stale", "fast"]),
    server("config", -2, &[]),
    server("function", -2, &[]),
    server("multi", 1, TRANSACTION),
    server("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"]),
    server("discard", 1, TRANSACTION),
    spec("watch", -2, TRANSACTION, (1, -1, 1), Exec::Server),
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

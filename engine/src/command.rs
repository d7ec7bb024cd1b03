//! Command execution: the table of every command keyferry serves, with
//! Redis's metadata (arity, flags, key positions) and an implementation
//! over the keyspace.
//!
//! Sockets, sessions and dispatch live in the server (`src/serve/`); this
//! module only runs commands. A command is a [`Exec::Read`] over a [`View`]
//! (the server runs it on a pooled reader, or inside the writer's
//! transaction when it must see uncommitted writes), a [`Exec::Write`] over
//! a [`Tx`] (run by the group-committing writer, in its own savepoint: see
//! [`run_write`]), or [`Exec::Server`] for connection and server commands
//! that need the client's session and are implemented by the server.
//!
//! Each family module contributes a `COMMANDS` slice; [`lookup`] indexes
//! them all by name.

pub mod args;
pub mod blocking;
mod hashes;
mod keys;
mod lists;
mod server;
mod sets;
mod strings;
mod zsets;

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::db::Db;
use crate::error::StoreError;
use crate::read::View;
use crate::reply::{Protocol, Reply};
use crate::write::Tx;

/// What a command needs to know about the client running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandCtx {
    /// The client's `SELECT`ed database.
    pub db: Db,
    /// The protocol the client speaks (some replies differ, e.g. nested
    /// arrays versus maps).
    pub protocol: Protocol,
}

/// A read-only command: argv (name included, arity already checked) to a
/// reply.
pub type ReadFn = fn(&View<'_>, &CommandCtx, &[Vec<u8>]) -> Reply;

/// A writing command. `Err(reply)` rolls back everything this command
/// wrote (it runs in its own savepoint) and is sent to the client.
pub type WriteFn = fn(&mut Tx<'_>, &CommandCtx, &[Vec<u8>]) -> Result<Reply, Reply>;

/// How a command runs.
#[derive(Clone, Copy)]
pub enum Exec {
    /// Reads only.
    Read(ReadFn),
    /// Writes (see [`WriteFn`]).
    Write(WriteFn),
    /// Implemented by the server: connection, session, transaction and
    /// pub/sub commands, which need the client's state rather than the
    /// keyspace.
    Server,
}

/// One command and Redis's metadata for it (as `COMMAND INFO` reports).
pub struct CommandSpec {
    /// The name, lowercase.
    pub name: &'static str,
    /// Redis's convention: argv length including the name; negative means
    /// "at least".
    pub arity: i32,
    /// Redis's `COMMAND` flags: `"write"`, `"readonly"`, `"denyoom"`,
    /// `"fast"`, …
    pub flags: &'static [&'static str],
    /// argv index of the first key (0: no keys).
    pub first_key: i32,
    /// argv index of the last key; negative counts from the end (-1: the
    /// last argument).
    pub last_key: i32,
    /// Distance between keys (2 for `MSET key value key value`).
    pub step: i32,
    /// The implementation.
    pub exec: Exec,
    /// How a failed write is undone (see [`Undo`]).
    pub undo: Undo,
}

/// How [`run_write`] isolates a write command from the rest of its
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// The command runs in its own `SAVEPOINT`, rolled back when it answers
    /// an error: the default.
    Savepoint,
    /// Every error the command answers is found before its first write, so
    /// a failure leaves nothing to undo and the savepoint is skipped: it
    /// copies each page the command touches into a statement journal and
    /// costs two statements, a fifth of a one-row write. Marked on the
    /// hot, simple commands only; [`run_write`] checks the promise and
    /// fails the whole transaction rather than commit half a command.
    NothingWrittenOnError,
}

/// A table entry; `keys` is Redis's `(first_key, last_key, step)`. Every
/// family's table is built with this (or a shorthand over it).
const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    exec: Exec,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        exec,
        undo: Undo::Savepoint,
    }
}

impl CommandSpec {
    /// This spec, for a command whose errors all come before its first
    /// write ([`Undo::NothingWrittenOnError`]).
    pub(crate) const fn errors_before_writing(self) -> Self {
        CommandSpec {
            undo: Undo::NothingWrittenOnError,
            ..self
        }
    }

    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Whether the command has Redis flag `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// The keys of `argv` according to `first_key`/`last_key`/`step`.
    /// Commands whose keys move with their arguments (flag
    /// `"movablekeys"`, e.g. `ZUNIONSTORE`'s sources, `LMPOP`) report only
    /// their fixed keys here.
    pub fn keys<'a>(&self, argv: &'a [Vec<u8>]) -> Vec<&'a [u8]> {
        if self.first_key <= 0 || self.step <= 0 {
            return Vec::new();
        }
        let argc = argv.len() as i64;
        let last = i64::from(self.last_key);
        let last = if last < 0 {
            argc + last
        } else {
            last.min(argc - 1)
        };
        (i64::from(self.first_key)..=last)
            .step_by(self.step as usize)
            .filter_map(|i| argv.get(i as usize).map(Vec::as_slice))
            .collect()
    }
}

static TABLE: LazyLock<HashMap<&'static [u8], &'static CommandSpec>> = LazyLock::new(|| {
    let mut table = HashMap::new();
    for spec in families() {
        let previous = table.insert(spec.name.as_bytes(), spec);
        assert!(previous.is_none(), "command {} defined twice", spec.name);
    }
    table
});

fn families() -> impl Iterator<Item = &'static CommandSpec> {
    [
        server::COMMANDS,
        strings::COMMANDS,
        keys::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        lists::COMMANDS,
        blocking::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The command named `lowercase_name`, if keyferry supports it.
pub fn lookup(lowercase_name: &[u8]) -> Option<&'static CommandSpec> {
    TABLE.get(lowercase_name).copied()
}

/// Every supported command.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    TABLE.values().copied()
}

/// Runs write command `spec` in `tx`'s transaction, isolated as its
/// [`Undo`] says: an `Err` reply (or a failing savepoint statement) undoes
/// exactly what the command wrote, so the rest of a group-committed batch,
/// or of a `MULTI`/`EXEC` block, is unaffected. Returns the reply for the
/// client either way, and whether the command changed any row (which
/// tells `WATCH` whether it modified its keys).
///
/// Fails only when a command marked [`Undo::NothingWrittenOnError`] wrote
/// before answering an error: that write cannot be undone alone, so the
/// caller must fail its whole transaction.
pub fn run_write(
    spec: &CommandSpec,
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
) -> Result<(Reply, bool), StoreError> {
    let Exec::Write(exec) = spec.exec else {
        return Ok((
            Reply::error(format!("ERR '{}' is not a write command", spec.name)),
            false,
        ));
    };
    let conn = tx.conn();
    let before = conn.total_changes();
    if spec.undo == Undo::NothingWrittenOnError {
        let outcome = exec(tx, ctx, argv);
        let changed = conn.total_changes() != before;
        return match outcome {
            Ok(reply) => Ok((reply, changed)),
            Err(_) if changed => {
                tracing::error!(
                    command = spec.name,
                    "a command wrote before failing without a savepoint"
                );
                Err(StoreError::WroteBeforeFailing(spec.name))
            }
            Err(reply) => Ok((reply, false)),
        };
    }
    if let Err(e) = conn
        .prepare_cached("SAVEPOINT command")
        .and_then(|mut s| s.execute([]))
    {
        return Ok((Reply::Error(format!("ERR {e}")), false));
    }
    let outcome = exec(tx, ctx, argv);
    let changed = conn.total_changes() != before;
    let finish = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    Ok(match outcome {
        Ok(reply) => match finish("RELEASE command") {
            Ok(_) => (reply, changed),
            Err(e) => (Reply::Error(format!("ERR {e}")), false),
        },
        Err(reply) => {
            // If even the rollback fails the transaction is unusable; the
            // writer then fails the whole batch when it commits.
            let _ = keyferry_journal::writer::roll_back_to(conn, "command");
            (reply, false)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyvalue::KeyValue;
    use crate::test_support::{b, db, store};

    /// Writes `argv[1]` = "v", then fails if `argv[2]` is "fail".
    fn set_then_maybe_fail(
        tx: &mut Tx<'_>,
        ctx: &CommandCtx,
        argv: &[Vec<u8>],
    ) -> Result<Reply, Reply> {
        tx.import_key(ctx.db, &argv[1], &KeyValue::String(b("v")), None)?;
        if argv[2] == b"fail" {
            Err(Reply::error("ERR failed"))
        } else {
            Ok(Reply::ok())
        }
    }

    const SET_THEN_MAYBE_FAIL: CommandSpec = spec(
        "x",
        3,
        &["write"],
        (1, 1, 1),
        Exec::Write(set_then_maybe_fail),
    );

    /// Fails (before writing) if `argv[2]` is "fail", else writes `argv[1]`.
    fn check_then_set(tx: &mut Tx<'_>, ctx: &CommandCtx, argv: &[Vec<u8>]) -> Result<Reply, Reply> {
        if argv[2] == b"fail" {
            return Err(Reply::error("ERR refused"));
        }
        tx.import_key(ctx.db, &argv[1], &KeyValue::String(b("v")), None)?;
        Ok(Reply::ok())
    }

    fn ctx() -> CommandCtx {
        CommandCtx {
            db: db(0),
            protocol: Protocol::Resp2,
        }
    }

    fn argv(k: &str, how: &str) -> Vec<Vec<u8>> {
        vec![b("x"), b(k), b(how)]
    }

    #[test]
    fn a_failing_write_undoes_only_itself() {
        let (_dir, store) = store();
        let outcomes = store
            .write(move |tx| {
                Ok([
                    run_write(&SET_THEN_MAYBE_FAIL, tx, &ctx(), &argv("a", "ok"))?,
                    run_write(&SET_THEN_MAYBE_FAIL, tx, &ctx(), &argv("b", "fail"))?,
                    run_write(&SET_THEN_MAYBE_FAIL, tx, &ctx(), &argv("c", "ok"))?,
                ])
            })
            .wait()
            .unwrap();
        assert_eq!(
            outcomes,
            [
                (Reply::ok(), true),
                (Reply::error("ERR failed"), false),
                (Reply::ok(), true)
            ]
        );
        let present: Vec<bool> = ["a", "b", "c"]
            .iter()
            .map(|k| {
                store
                    .read(|v| v.string_get(db(0), k.as_bytes()))
                    .unwrap()
                    .is_some()
            })
            .collect();
        assert_eq!(present, [true, false, true]);
    }

    #[test]
    fn a_command_without_a_savepoint_that_fails_first_leaves_its_batch_alone() {
        let (_dir, store) = store();
        let checked = spec("y", 3, &["write"], (1, 1, 1), Exec::Write(check_then_set))
            .errors_before_writing();
        let outcomes = store
            .write(move |tx| {
                Ok([
                    run_write(&checked, tx, &ctx(), &argv("a", "ok"))?,
                    run_write(&checked, tx, &ctx(), &argv("b", "fail"))?,
                ])
            })
            .wait()
            .unwrap();
        assert_eq!(
            outcomes,
            [(Reply::ok(), true), (Reply::error("ERR refused"), false)]
        );
        assert!(store.read(|v| v.string_get(db(0), b"a")).unwrap().is_some());
    }

    #[test]
    fn a_command_without_a_savepoint_that_fails_after_writing_fails_its_transaction() {
        let (_dir, store) = store();
        let broken = SET_THEN_MAYBE_FAIL.errors_before_writing();
        let outcome = store
            .write(move |tx| {
                run_write(&broken, tx, &ctx(), &argv("a", "ok"))?;
                run_write(&broken, tx, &ctx(), &argv("b", "fail"))
            })
            .wait();
        assert!(
            matches!(outcome, Err(StoreError::WroteBeforeFailing("x"))),
            "{outcome:?}"
        );
        // The job's own savepoint (Store::write) undid both writes.
        for key in ["a", "b"] {
            assert!(
                store
                    .read(|v| v.string_get(db(0), key.as_bytes()))
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn every_command_is_found_by_its_lowercase_name() {
        for spec in all() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(std::ptr::eq(lookup(spec.name.as_bytes()).unwrap(), spec));
        }
        assert!(lookup(b"ping").is_some());
        assert!(lookup(b"PING").is_none());
        assert!(lookup(b"nosuchcommand").is_none());
    }

    #[test]
    fn arity_follows_redis_convention() {
        let ping = lookup(b"ping").unwrap();
        assert!(ping.arity_ok(1) && ping.arity_ok(2) && !ping.arity_ok(0));
        let echo = lookup(b"echo").unwrap();
        assert!(echo.arity_ok(2) && !echo.arity_ok(1) && !echo.arity_ok(3));
    }

    #[test]
    fn keys_follow_first_last_step() {
        let spec = CommandSpec {
            name: "mset",
            arity: -3,
            flags: &[],
            first_key: 1,
            last_key: -1,
            step: 2,
            exec: Exec::Server,
            undo: Undo::Savepoint,
        };
        let argv: Vec<Vec<u8>> = ["mset", "a", "1", "b", "2"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(spec.keys(&argv), vec![&b"a"[..], b"b"]);
        let watch = lookup(b"watch").unwrap();
        assert_eq!(watch.keys(&argv[..3]), vec![&b"a"[..], b"1"]);
        assert!(lookup(b"ping").unwrap().keys(&argv).is_empty());
    }
}

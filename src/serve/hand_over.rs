//! A push that goes straight to the clients blocked on its key.
//!
//! Redis runs `RPUSH` onto an empty list and then serves the clients
//! blocked in `BLPOP` on it: the list is created and popped again in one
//! step. Done literally here that inserts the key and its elements and
//! deletes them again, which costs as much as the rest of the wake-up (the
//! pages those rows live on go to the WAL at commit even though nothing
//! is left on them). So when a `LPUSH`/`RPUSH` finds no key and clients
//! waiting on it, the elements are handed to the waiters first
//! ([`WaitQueues::hand_over`]) and only what they did not take is
//! written (a `BLMOVE` still pushes onto its destination). The replies,
//! the waiters' order and what is left in the lists are what pushing and
//! then serving would give; `WATCH` sees every key that changed.
//!
//! [`WaitQueues::hand_over`]: keyferry_engine::blocking::WaitQueues::hand_over

use std::collections::VecDeque;

use keyferry_engine::command::{CommandCtx, CommandSpec};
use keyferry_engine::{Reply, Side, StoreError, Tx};

use super::transaction::Keyspace;

/// Runs `LPUSH`/`RPUSH` `argv` by handing its elements to the clients
/// blocked on its key, if the key does not exist and some wait on it;
/// `None` (nothing done) for any other command or case, which then runs
/// as usual.
pub(crate) fn push_to_waiters(
    spec: &CommandSpec,
    tx: &mut Tx<'_>,
    ctx: &CommandCtx,
    argv: &[Vec<u8>],
    shared: &Keyspace,
) -> Result<Option<Reply>, StoreError> {
    let side = match spec.name {
        "lpush" => Side::Left,
        "rpush" => Side::Right,
        _ => return Ok(None),
    };
    let (db, key) = (ctx.db, &argv[1]);
    if !shared.waits.waits_on(db, key) || tx.view().lookup(db, key)?.is_some() {
        return Ok(None);
    }
    // The list the push would create: LPUSH puts each element in front.
    let mut list: VecDeque<Vec<u8>> = match side {
        Side::Left => argv[2..].iter().rev().cloned().collect(),
        Side::Right => argv[2..].iter().cloned().collect(),
    };
    let pushed = list.len();
    let handed = shared.waits.hand_over(tx, db, key, &mut list)?;
    if handed.served == 0 {
        // Nobody took anything (a refused move answers its waiter but
        // takes nothing): push as usual.
        return Ok(None);
    }
    let mut ready = Vec::with_capacity(1 + handed.moved_to.len());
    if !list.is_empty() {
        let rest: Vec<Vec<u8>> = list.into();
        tx.list_push(db, key, Side::Right, &rest)?;
        ready.push((db, key.clone()));
    }
    ready.extend(handed.moved_to.iter().cloned());
    // Waiters the hand-over stopped at (a sorted-set pop) are passed over
    // on the written rest, and the moves' destinations serve their own
    // waiters, as after any push.
    shared.serve_blocked(tx, ready, handed.moved_to);
    shared.watches.touch(spec, db, argv);
    Ok(Some(Reply::Integer(pushed as i64)))
}

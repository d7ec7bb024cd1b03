//! The wait queues of blocked clients (`BLPOP` and friends), served by the
//! single writer.
//!
//! A client that found nothing to pop registers a waiter here from inside
//! its writer job ([`WaitQueues::register`]), so registration is ordered
//! with every other write. After each write command (or after a whole
//! `EXEC` block) the writer calls [`WaitQueues::serve`] with the keys the
//! command touched, in the same job: each ready key's waiters are served
//! first-blocked-first, each pop running in its own savepoint of the same
//! transaction, before the writer runs any other job (Redis's rule). No
//! other client can take the element in between, and a waiter that left
//! before that point is simply no longer in the queue: the element goes
//! to the next waiter or stays in the key.
//!
//! Replies to served waiters are handed over by the writer thread right
//! after the transaction committed ([`keyferry_journal::writer::after_commit`]),
//! whatever became of the client whose write served them. If the
//! transaction does not commit, the pops did not happen either: the
//! waiters get an error instead.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::command::blocking::{BlockOp, multi_popped, popped, try_key};
use crate::db::Db;
use crate::error::StoreError;
use crate::keyvalue::Side;
use crate::reply::Reply;
use crate::write::Tx;

/// Hands a reply to a blocked client (it must not block).
pub type Deliver = Box<dyn FnOnce(Reply) + Send>;

/// Told the deadline of each waiter registered with one, so a timer can
/// be armed (by the waiter registry actor). Must not block.
pub type TimerHook = Box<dyn Fn(Instant) + Send + Sync>;

/// How many waiters the queues accept; each limit answers a clear error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitLimits {
    /// Waiters on one key.
    pub per_key: usize,
    /// Blocked clients in all.
    pub total: usize,
    /// Keys one blocking command may name.
    pub keys_per_call: usize,
}

impl Default for WaitLimits {
    fn default() -> Self {
        Self {
            per_key: 10_000,
            total: 100_000,
            keys_per_call: 1_024,
        }
    }
}

/// One blocked client.
struct Waiter {
    client: u64,
    db: Db,
    keys: Vec<Vec<u8>>,
    op: BlockOp,
    deadline: Option<Instant>,
    deliver: Deliver,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// FIFO of waiter ids per key.
    queues: HashMap<(Db, Vec<u8>), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    /// The waiter of each blocked client (a client blocks on one command
    /// at a time).
    by_client: HashMap<u64, u64>,
    /// Waiters with a timeout, soonest first.
    deadlines: BTreeSet<(Instant, u64)>,
}

/// Every blocked client of the process, by key.
pub struct WaitQueues {
    /// Blocked clients; writes skip the lock while it is 0.
    blocked: AtomicUsize,
    limits: Mutex<WaitLimits>,
    inner: Mutex<Inner>,
    timer: Mutex<Option<TimerHook>>,
}

/// Why a client could not block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitReached(pub String);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WaitQueues {
    /// Empty queues with `limits`.
    pub fn new(limits: WaitLimits) -> Self {
        Self {
            blocked: AtomicUsize::new(0),
            limits: Mutex::new(limits),
            inner: Mutex::new(Inner::default()),
            timer: Mutex::new(None),
        }
    }

    /// Sets the hook told about every new deadline (replacing the previous
    /// one: a restarted timer owner installs its own).
    pub fn set_timer_hook(&self, hook: TimerHook) {
        *lock(&self.timer) = Some(hook);
    }

    /// The soonest deadline of a waiting client.
    pub fn next_deadline(&self) -> Option<Instant> {
        lock(&self.inner).deadlines.first().map(|(at, _)| *at)
    }

    /// Answers every waiter whose deadline is not after `now` with the
    /// timeout reply (a null array); returns how many timed out.
    pub fn expire_due(&self, now: Instant) -> usize {
        let expired: Vec<Waiter> = {
            let mut inner = lock(&self.inner);
            let mut expired = Vec::new();
            while let Some(&(at, id)) = inner.deadlines.first()
                && at <= now
            {
                inner.deadlines.pop_first();
                expired.extend(remove(&mut inner, id, &self.blocked));
            }
            expired
        };
        let count = expired.len();
        for waiter in expired {
            (waiter.deliver)(Reply::NullArray);
        }
        count
    }

    /// The current limits.
    pub fn limits(&self) -> WaitLimits {
        *lock(&self.limits)
    }

    /// Changes the limits (waiters already blocked stay).
    pub fn set_limits(&self, limits: WaitLimits) {
        *lock(&self.limits) = limits;
    }

    /// How many clients are blocked.
    pub fn blocked(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Whether `client` is blocked.
    pub fn is_blocked(&self, client: u64) -> bool {
        self.blocked() > 0 && lock(&self.inner).by_client.contains_key(&client)
    }

    /// Registers `client` as waiting on `keys` of `db` (in this order) to
    /// pop as `op` says, until `deadline` if any. Call it from the writer
    /// job that found the keys empty. Returns the waiter's id.
    pub fn register(
        &self,
        client: u64,
        db: Db,
        keys: Vec<Vec<u8>>,
        op: BlockOp,
        deadline: Option<Instant>,
        deliver: Deliver,
    ) -> Result<u64, LimitReached> {
        let limits = self.limits();
        if keys.len() > limits.keys_per_call {
            return Err(LimitReached(format!(
                "ERR too many keys for a blocking command ({} > blocked-max-keys-per-call {})",
                keys.len(),
                limits.keys_per_call
            )));
        }
        let mut inner = lock(&self.inner);
        if inner.waiters.len() >= limits.total {
            return Err(LimitReached(format!(
                "ERR too many blocked clients (blocked-max-clients {})",
                limits.total
            )));
        }
        for key in &keys {
            let waiting = inner
                .queues
                .get(&(db, key.clone()))
                .map_or(0, VecDeque::len);
            if waiting >= limits.per_key {
                return Err(LimitReached(format!(
                    "ERR too many clients blocked on key '{}' (blocked-max-per-key {})",
                    String::from_utf8_lossy(key),
                    limits.per_key
                )));
            }
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let mut distinct: Vec<&Vec<u8>> = Vec::with_capacity(keys.len());
        for key in &keys {
            if !distinct.contains(&key) {
                distinct.push(key);
            }
        }
        for key in distinct {
            inner
                .queues
                .entry((db, key.clone()))
                .or_default()
                .push_back(id);
        }
        inner.by_client.insert(client, id);
        if let Some(at) = deadline {
            inner.deadlines.insert((at, id));
        }
        inner.waiters.insert(
            id,
            Waiter {
                client,
                db,
                keys,
                op,
                deadline,
                deliver,
            },
        );
        self.blocked.fetch_add(1, Ordering::Relaxed);
        drop(inner);
        metrics::gauge!("keyferry_blocked_clients").increment(1.0);
        if let (Some(at), Some(hook)) = (deadline, lock(&self.timer).as_ref()) {
            hook(at);
        }
        Ok(id)
    }

    /// Removes waiter `id` (disconnect). False if it is no longer
    /// waiting: it was served (its reply is on its way) or unblocked.
    pub fn cancel(&self, id: u64) -> bool {
        remove(&mut lock(&self.inner), id, &self.blocked).is_some()
    }

    /// Removes `client`'s waiter, if it has one (disconnect).
    pub fn cancel_client(&self, client: u64) -> bool {
        let mut inner = lock(&self.inner);
        match inner.by_client.get(&client).copied() {
            Some(id) => remove(&mut inner, id, &self.blocked).is_some(),
            None => false,
        }
    }

    /// `CLIENT UNBLOCK`: answers `client`'s waiter with `reply` at once.
    /// False if the client is not blocked.
    pub fn unblock(&self, client: u64, reply: Reply) -> bool {
        let waiter = {
            let mut inner = lock(&self.inner);
            let Some(id) = inner.by_client.get(&client).copied() else {
                return false;
            };
            remove(&mut inner, id, &self.blocked)
        };
        match waiter {
            Some(waiter) => {
                (waiter.deliver)(reply);
                true
            }
            None => false,
        }
    }

    /// Every key of any database someone waits on (for commands that touch
    /// keys they do not name: `SWAPDB`, `FLUSHALL`, `MOVE`, `COPY`).
    pub fn waited_keys(&self) -> Vec<(Db, Vec<u8>)> {
        if self.blocked() == 0 {
            return Vec::new();
        }
        lock(&self.inner).queues.keys().cloned().collect()
    }

    /// Serves the waiters of `touched` keys that now hold data, in the
    /// writer's transaction `tx`: keys in the order given (and the
    /// destinations of served moves after them), each key's waiters first
    /// blocked first served, until the key is empty or every waiter was
    /// tried once. Returns the keys serving changed (each key popped from,
    /// each destination of a served move), for `WATCH`.
    ///
    /// As in Redis 7.0: a list serves its list waiters and a sorted set
    /// its sorted-set waiters; a waiter for the other type is passed over
    /// and goes to the back of the key's queue, and a key of any other
    /// type serves nobody. A waiter whose pop fails (a `BLMOVE` whose
    /// destination holds another type) gets the error and stops waiting;
    /// its pop is undone and the next waiter is served.
    pub fn serve(&self, tx: &mut Tx<'_>, touched: Vec<(Db, Vec<u8>)>) -> Vec<(Db, Vec<u8>)> {
        let mut changed = Vec::new();
        if self.blocked() == 0 {
            return changed;
        }
        let mut deliveries: Vec<(Deliver, Reply)> = Vec::new();
        let mut inner = lock(&self.inner);
        let mut ready: VecDeque<(Db, Vec<u8>)> = touched
            .into_iter()
            .filter(|k| inner.queues.contains_key(k))
            .collect();
        while let Some((db, key)) = ready.pop_front() {
            let Ok(Some(holds)) = tx.view().key_type(db, &key) else {
                continue;
            };
            let slot = (db, key.clone());
            let waiting = inner.queues.get(&slot).map_or(0, VecDeque::len);
            for _ in 0..waiting {
                let Some(&id) = inner.queues.get(&slot).and_then(VecDeque::front) else {
                    break;
                };
                let op = inner.waiters[&id].op.clone();
                if op.pops_from() != holds {
                    let queue = inner.queues.get_mut(&slot).expect("it has a front");
                    queue.rotate_left(1);
                    continue;
                }
                let reply = match in_savepoint(tx, |tx| try_key(tx, db, &key, &op)) {
                    Ok(Some(reply)) => reply,
                    // Emptied: the rest wait for the next push.
                    Ok(None) => break,
                    Err(error) => error,
                };
                if !answer(&mut inner, &self.blocked, id, reply, &mut deliveries) {
                    continue;
                }
                if !changed.contains(&slot) {
                    changed.push(slot.clone());
                }
                if let Some(dest) = op.dest() {
                    let dest = (db, dest.to_vec());
                    if inner.queues.contains_key(&dest) {
                        ready.push_back(dest.clone());
                    }
                    if !changed.contains(&dest) {
                        changed.push(dest);
                    }
                }
            }
        }
        drop(inner);
        deliver_after_commit(deliveries);
        changed
    }

    /// Whether a client waits on `key` of `db`.
    pub fn waits_on(&self, db: Db, key: &[u8]) -> bool {
        self.blocked() > 0 && lock(&self.inner).queues.contains_key(&(db, key.to_vec()))
    }

    /// Hands the elements of a list that a push is creating (`list`, in
    /// list order; `key` held nothing before) straight to the clients
    /// blocked on it in `BLPOP`, `BRPOP`, `BLMPOP`, `BLMOVE` or
    /// `BRPOPLPUSH`, first blocked first served, exactly as
    /// [`WaitQueues::serve`] would pop them once the list was written, but
    /// without writing it: what is left in `list` is what the list must
    /// hold afterwards. A move pushes onto its destination in `tx` (a
    /// destination of another type answers that waiter WRONGTYPE and the
    /// element stays). Stops at the first sorted-set waiter, which `serve`
    /// then passes over on the written rest. Call it from the writer job
    /// of the push, before writing anything.
    ///
    /// A job queue's workers wait on an empty list, so almost every push
    /// that wakes one is of this kind: handed over, it leaves nothing to
    /// write for the queue itself, where creating the list and popping it
    /// again wrote three pages to the WAL and doubled the wake latency.
    pub fn hand_over(
        &self,
        tx: &mut Tx<'_>,
        db: Db,
        key: &[u8],
        list: &mut VecDeque<Vec<u8>>,
    ) -> Result<HandedOver, StoreError> {
        let mut handed = HandedOver::default();
        if self.blocked() == 0 {
            return Ok(handed);
        }
        let mut deliveries: Vec<(Deliver, Reply)> = Vec::new();
        let mut inner = lock(&self.inner);
        let slot = (db, key.to_vec());
        let outcome = loop {
            let Some(&id) = inner.queues.get(&slot).and_then(VecDeque::front) else {
                break Ok(());
            };
            if list.is_empty() {
                break Ok(());
            }
            let reply = match take(tx, db, key, list, &inner.waiters[&id].op) {
                Ok(Some(Taken { reply, moved_to })) => {
                    handed.moved_to.extend(moved_to.map(|dest| (db, dest)));
                    reply
                }
                Ok(None) => break Ok(()),
                Err(StoreError::WrongType) => Reply::from(StoreError::WrongType),
                Err(e) => break Err(e),
            };
            if answer(&mut inner, &self.blocked, id, reply, &mut deliveries) {
                handed.served += 1;
            }
        };
        drop(inner);
        // Even when the job fails now, the waiters taken out of the queues
        // must hear of it (they get an error after the rollback).
        deliver_after_commit(deliveries);
        outcome.map(|()| handed)
    }
}

/// What [`WaitQueues::hand_over`] did.
#[derive(Debug, Default)]
pub struct HandedOver {
    /// Waiters that got an element (not counting a move refused
    /// WRONGTYPE).
    pub served: usize,
    /// The lists served moves pushed onto: they changed, and their own
    /// waiters may be ready now.
    pub moved_to: Vec<(Db, Vec<u8>)>,
}

/// What one waiter of a handed-over list got.
struct Taken {
    reply: Reply,
    moved_to: Option<Vec<u8>>,
}

/// Takes what `op` pops from the list being created on `key` (`list`,
/// not empty): a move pushes the element onto its destination in `tx`
/// (refused with WRONGTYPE, before anything is written or taken, when the
/// destination holds another type), or onto `list` itself when that is
/// the destination. `None` for a sorted-set waiter, where the hand-over
/// stops.
fn take(
    tx: &mut Tx<'_>,
    db: Db,
    key: &[u8],
    list: &mut VecDeque<Vec<u8>>,
    op: &BlockOp,
) -> Result<Option<Taken>, StoreError> {
    let pop = |list: &mut VecDeque<Vec<u8>>, side: Side| match side {
        Side::Left => list.pop_front(),
        Side::Right => list.pop_back(),
    };
    let mut moved_to = None;
    let reply = match op {
        BlockOp::Pop(side) => popped(key, pop(list, *side).expect("not empty")),
        BlockOp::MultiPop(side, count) => {
            let count = usize::try_from(*count)
                .unwrap_or(usize::MAX)
                .min(list.len());
            multi_popped(key, (0..count).filter_map(|_| pop(list, *side)).collect())
        }
        BlockOp::Move { dest, from, to } if dest == key => {
            let value = pop(list, *from).expect("not empty");
            match to {
                Side::Left => list.push_front(value.clone()),
                Side::Right => list.push_back(value.clone()),
            }
            Reply::Bulk(value)
        }
        BlockOp::Move { dest, from, to } => {
            let next = match from {
                Side::Left => list.front(),
                Side::Right => list.back(),
            };
            let value = next.expect("not empty").clone();
            tx.list_push(db, dest, *to, std::slice::from_ref(&value))?;
            pop(list, *from);
            moved_to = Some(dest.clone());
            Reply::Bulk(value)
        }
        BlockOp::ZPop(_) | BlockOp::ZMultiPop(..) => return Ok(None),
    };
    Ok(Some(Taken { reply, moved_to }))
}

/// Takes waiter `id` out of the queues and queues `reply` for it; returns
/// whether it was woken with data (not an error), which counts in
/// `keyferry_blocked_wakeups_total`.
fn answer(
    inner: &mut Inner,
    blocked: &AtomicUsize,
    id: u64,
    reply: Reply,
    deliveries: &mut Vec<(Deliver, Reply)>,
) -> bool {
    let waiter = remove(inner, id, blocked).expect("queued waiters exist");
    let woken = !reply.is_error();
    if woken {
        metrics::counter!("keyferry_blocked_wakeups_total").increment(1);
    }
    deliveries.push((waiter.deliver, reply));
    woken
}

/// Hands each reply to its waiter once the writer's transaction is known
/// to have committed (an error instead if it did not).
fn deliver_after_commit(deliveries: Vec<(Deliver, Reply)>) {
    if deliveries.is_empty() {
        return;
    }
    keyferry_journal::writer::after_commit(Box::new(move |committed| {
        for (deliver, reply) in deliveries {
            deliver(if committed {
                reply
            } else {
                Reply::error("ERR the write that served this blocked client did not commit")
            });
        }
    }));
}

/// Removes waiter `id` from every queue it is in.
fn remove(inner: &mut Inner, id: u64, blocked: &AtomicUsize) -> Option<Waiter> {
    let waiter = inner.waiters.remove(&id)?;
    inner.by_client.remove(&waiter.client);
    if let Some(at) = waiter.deadline {
        inner.deadlines.remove(&(at, id));
    }
    for key in &waiter.keys {
        let slot = (waiter.db, key.clone());
        if let Some(queue) = inner.queues.get_mut(&slot) {
            queue.retain(|w| *w != id);
            if queue.is_empty() {
                inner.queues.remove(&slot);
            }
        }
    }
    blocked.fetch_sub(1, Ordering::Relaxed);
    metrics::gauge!("keyferry_blocked_clients").decrement(1.0);
    Some(waiter)
}

/// Runs `op` in its own savepoint of `tx`: an error (or `None`) undoes
/// whatever it wrote.
fn in_savepoint(
    tx: &mut Tx<'_>,
    op: impl FnOnce(&mut Tx<'_>) -> Result<Option<Reply>, Reply>,
) -> Result<Option<Reply>, Reply> {
    let conn = tx.conn();
    let error = |e: rusqlite::Error| Reply::Error(format!("ERR {e}"));
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(error)
    };
    run("SAVEPOINT serve")?;
    let outcome = op(tx);
    match outcome {
        Ok(Some(reply)) => {
            run("RELEASE serve")?;
            Ok(Some(reply))
        }
        other => {
            keyferry_journal::writer::roll_back_to(conn, "serve").map_err(error)?;
            other
        }
    }
}

impl Default for WaitQueues {
    fn default() -> Self {
        Self::new(WaitLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::Store;
    use crate::test_support::{b, db, store};

    type Got = Arc<Mutex<Vec<(u64, Reply)>>>;

    /// Waiters served, lists moved onto, and what is left to write.
    type Handed = (usize, Vec<(Db, Vec<u8>)>, Vec<Vec<u8>>);

    fn block(queues: &WaitQueues, client: u64, op: BlockOp, got: &Got) {
        let got = Arc::clone(got);
        let deliver: Deliver = Box::new(move |reply| lock(&got).push((client, reply)));
        queues
            .register(client, db(0), vec![b("k")], op, None, deliver)
            .expect("under the limits");
    }

    /// Runs `hand_over` of `list` on key `k` in a writer job of `store`
    /// (its replies go out after the commit); returns how many it served,
    /// the lists moves pushed onto, and the rest.
    fn hand_over(store: &Store, queues: &Arc<WaitQueues>, list: &[&str]) -> Handed {
        let queues = Arc::clone(queues);
        let mut list: VecDeque<Vec<u8>> = list.iter().map(|v| b(v)).collect();
        let handed = store
            .write(move |tx| {
                let handed = queues.hand_over(tx, db(0), b"k", &mut list)?;
                Ok((handed.served, handed.moved_to, list.into()))
            })
            .wait()
            .expect("committed");
        // The waiters hear back right after the pusher: the next batch's
        // answer comes after that.
        store.write(|_| Ok(())).wait().expect("next batch");
        handed
    }

    fn range(store: &Store, key: &str) -> Vec<Vec<u8>> {
        store
            .read(|v| v.list_range(db(0), key.as_bytes(), 0, -1))
            .expect("read")
    }

    #[test]
    fn a_pushed_list_goes_to_its_waiters_in_order_until_a_sorted_set_waiter() {
        let (_dir, store) = store();
        let queues = Arc::new(WaitQueues::default());
        let got = Got::default();
        block(&queues, 1, BlockOp::Pop(Side::Left), &got);
        block(&queues, 2, BlockOp::MultiPop(Side::Right, 2), &got);
        let (dest, from, to) = (b("d"), Side::Left, Side::Right);
        block(&queues, 3, BlockOp::Move { dest, from, to }, &got);
        block(&queues, 4, BlockOp::ZPop(false), &got);
        block(&queues, 5, BlockOp::Pop(Side::Left), &got);
        let handed = hand_over(&store, &queues, &["a", "b", "c", "d", "e"]);
        assert_eq!(handed, (3, vec![(db(0), b("d"))], vec![b("c")]));
        assert_eq!(
            *lock(&got),
            [
                (1, popped(b"k", b("a"))),
                (2, multi_popped(b"k", vec![b("e"), b("d")])),
                (3, Reply::Bulk(b("b"))),
            ]
        );
        assert_eq!(range(&store, "d"), [b("b")]);
        assert_eq!(range(&store, "k"), Vec::<Vec<u8>>::new());
        // The sorted-set waiter and the pop behind it still wait.
        assert_eq!(queues.blocked(), 2);
    }

    #[test]
    fn a_move_onto_the_wrong_type_is_refused_and_the_element_stays() {
        let (_dir, store) = store();
        store
            .write(|tx| tx.string_set(db(0), b"s", b"v", crate::string::Expiry::Persist))
            .wait()
            .expect("set");
        let queues = Arc::new(WaitQueues::default());
        let got = Got::default();
        let (dest, from, to) = (b("s"), Side::Left, Side::Left);
        block(&queues, 1, BlockOp::Move { dest, from, to }, &got);
        let (dest, from, to) = (b("k"), Side::Right, Side::Left);
        block(&queues, 2, BlockOp::Move { dest, from, to }, &got);
        block(&queues, 3, BlockOp::MultiPop(Side::Left, 5), &got);
        block(&queues, 4, BlockOp::Pop(Side::Left), &got);
        // The refused move takes nothing; the move onto the list itself
        // turns it round; the multi-pop takes the lot.
        assert_eq!(hand_over(&store, &queues, &["x", "y"]), (2, vec![], vec![]));
        assert_eq!(
            *lock(&got),
            [
                (1, Reply::from(StoreError::WrongType)),
                (2, Reply::Bulk(b("y"))),
                (3, multi_popped(b"k", vec![b("y"), b("x")])),
            ]
        );
        assert!(queues.waits_on(db(0), b"k"));
    }
}

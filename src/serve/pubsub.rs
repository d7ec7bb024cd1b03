//! Pub/sub: who is subscribed to which channels and patterns, and
//! delivering `PUBLISH`ed messages.
//!
//! A message is encoded once per subscriber in the subscriber's protocol
//! (a RESP3 push `>`, or a RESP2 array) and queued on its connection's
//! outgoing queue, after the replies already queued there. A subscriber
//! that does not read fast enough for its queue to have room is
//! disconnected, as Redis does at its pub/sub output buffer limit, rather
//! than block the publisher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyferry_engine::{Protocol, Reply};
use tokio::sync::mpsc;

use super::connection::Outgoing;
use super::state::{ClientHandle, lock};

/// A subscribed connection.
#[derive(Clone)]
pub(crate) struct Subscriber {
    /// Its registry entry (protocol, kill switch).
    pub(crate) client: Arc<ClientHandle>,
    /// Its outgoing queue.
    pub(crate) out: mpsc::Sender<Outgoing>,
}

type Subscribers = HashMap<Vec<u8>, HashMap<u64, Subscriber>>;

/// Every subscription of the server.
#[derive(Default)]
pub(crate) struct PubSub {
    channels: Mutex<Subscribers>,
    patterns: Mutex<Subscribers>,
}

/// Whether a subscription is to a channel or a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `SUBSCRIBE`.
    Channel,
    /// `PSUBSCRIBE`.
    Pattern,
}

impl PubSub {
    fn map(&self, kind: Kind) -> &Mutex<Subscribers> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
        }
    }

    /// Subscribes `subscriber` to `name`.
    pub(crate) fn subscribe(&self, kind: Kind, name: &[u8], subscriber: Subscriber) {
        lock(self.map(kind))
            .entry(name.to_vec())
            .or_default()
            .insert(subscriber.client.id, subscriber);
    }

    /// Removes client `id`'s subscription to `name`.
    pub(crate) fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) {
        let mut map = lock(self.map(kind));
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers `message` on `channel`; returns how many subscriptions
    /// received it (`PUBLISH`'s reply).
    pub(crate) fn publish(&self, channel: &[u8], message: &[u8]) -> i64 {
        let mut receivers = 0;
        if let Some(subs) = lock(&self.channels).get(channel) {
            for sub in subs.values() {
                deliver(sub, &["message".as_bytes(), channel, message]);
                receivers += 1;
            }
        }
        for (pattern, subs) in lock(&self.patterns).iter() {
            if keyferry_engine::glob::matches(pattern, channel) {
                for sub in subs.values() {
                    deliver(sub, &[b"pmessage", pattern, channel, message]);
                    receivers += 1;
                }
            }
        }
        receivers
    }

    /// Active channels matching `pattern` (all without one), for `PUBSUB
    /// CHANNELS`.
    pub(crate) fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        lock(&self.channels)
            .keys()
            .filter(|c| pattern.is_none_or(|p| keyferry_engine::glob::matches(p, c)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (`PUBSUB NUMSUB`).
    pub(crate) fn numsub(&self, channel: &[u8]) -> usize {
        lock(&self.channels).get(channel).map_or(0, HashMap::len)
    }

    /// Distinct patterns subscribed to (`PUBSUB NUMPAT`).
    pub(crate) fn numpat(&self) -> usize {
        lock(&self.patterns).len()
    }
}

/// A pub/sub message or (un)subscribe confirmation: a RESP3 push, or a
/// RESP2 array.
pub(crate) fn push(protocol: Protocol, items: Vec<Reply>) -> Vec<u8> {
    let mut out = Vec::new();
    match protocol {
        Protocol::Resp3 => {
            out.extend_from_slice(format!(">{}\r\n", items.len()).as_bytes());
            for item in &items {
                item.encode(protocol, &mut out);
            }
        }
        Protocol::Resp2 => Reply::Array(items).encode(protocol, &mut out),
    }
    out
}

fn deliver(sub: &Subscriber, parts: &[&[u8]]) {
    let protocol = lock(&sub.client.info).protocol;
    let frame = push(protocol, parts.iter().map(|p| Reply::bulk(*p)).collect());
    if let Err(mpsc::error::TrySendError::Full(_)) = sub.out.try_send(Outgoing::Bytes(frame)) {
        tracing::warn!(
            client = sub.client.id,
            "disconnecting a pub/sub client that does not keep up"
        );
        sub.client.kill();
    }
}

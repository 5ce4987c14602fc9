//! What the link sends, in which order, and what it may shed: a pure outgoing queue.
//!
//! Messages leave in the order they were produced. Three delivery classes (see [`Delivery`]). Retained topics (state, availability, discovery)
//! are latest-wins: a newer payload replaces the one still waiting, so the broker's copy always
//! converges to the truth and nothing retained is ever dropped. Critical messages (a stop's
//! event and response, lifecycle events) are never shed. Bulk messages (other events and
//! responses) are shed, and counted, when more than the bulk capacity wait.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

/// How a publish is delivered when the broker is slower than we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Retained state, availability, discovery, images: never dropped, superseded per topic.
    Latest,
    /// A stop's event and response, lifecycle events: never shed.
    Critical,
    /// Other events and responses: shed (counted) under overload.
    Bulk,
}

/// One publish waiting to go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// Topic to publish on.
    pub(crate) topic: String,
    /// Payload bytes.
    pub(crate) payload: Bytes,
    /// Whether the broker retains it.
    pub(crate) retain: bool,
}

/// Bulk messages waiting beyond which critical and latest messages overtake them.
pub(crate) const OVERLOAD_BACKLOG: usize = 16;

/// Bulk messages allowed to wait before new ones are shed.
pub(crate) const BULK_CAPACITY: usize = 256;

/// The outgoing queue, in production order: latest-wins per topic (a superseding payload
/// keeps its topic's place), critical never shed, bulk bounded and counted.
#[derive(Debug)]
pub(crate) struct Outbox {
    next_seq: u64,
    critical: VecDeque<(u64, Message)>,
    /// Topics with a Latest message waiting, by the sequence number of their place.
    latest_order: VecDeque<(u64, String)>,
    latest: HashMap<String, Message>,
    bulk: VecDeque<(u64, Message)>,
    bulk_capacity: usize,
    shed: u64,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new(BULK_CAPACITY)
    }
}

impl Outbox {
    /// An empty outbox holding at most `bulk_capacity` bulk messages.
    pub fn new(bulk_capacity: usize) -> Outbox {
        Outbox {
            next_seq: 0,
            critical: VecDeque::new(),
            latest_order: VecDeque::new(),
            latest: HashMap::new(),
            bulk: VecDeque::new(),
            bulk_capacity,
            shed: 0,
        }
    }

    /// Queues `message`; returns `false` when it was shed (bulk only, when bulk is full).
    pub(crate) fn push(&mut self, message: Message, delivery: Delivery) -> bool {
        let seq = self.next_seq;
        match delivery {
            Delivery::Critical => self.critical.push_back((seq, message)),
            Delivery::Latest => {
                // A newer payload supersedes the waiting one but keeps its place in the queue.
                if !self.latest.contains_key(&message.topic) {
                    self.latest_order.push_back((seq, message.topic.clone()));
                }
                self.latest.insert(message.topic.clone(), message);
            }
            Delivery::Bulk => {
                if self.bulk.len() >= self.bulk_capacity {
                    self.shed += 1;
                    return false;
                }
                self.bulk.push_back((seq, message));
            }
        }
        self.next_seq += 1;
        true
    }

    /// The next message to send: the oldest place in the queue, whatever its class, except
    /// that under overload (more than [`OVERLOAD_BACKLOG`] bulk messages waiting) critical and
    /// latest messages go first.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let critical = self.critical.front().map(|(seq, _)| *seq);
        let latest = self.latest_order.front().map(|(seq, _)| *seq);
        let bulk = self.bulk.front().map(|(seq, _)| *seq);
        // Overloaded (a bulk backlog): state and critical messages stop waiting behind it.
        let bulk = bulk
            .filter(|_| self.bulk.len() <= OVERLOAD_BACKLOG || (critical, latest) == (None, None));
        let oldest = [critical, latest, bulk].into_iter().flatten().min()?;
        if critical == Some(oldest) {
            return self.critical.pop_front().map(|(_, m)| m);
        }
        if latest == Some(oldest) {
            let (_, topic) = self.latest_order.pop_front()?;
            return self.latest.remove(&topic);
        }
        self.bulk.pop_front().map(|(_, m)| m)
    }

    /// Whether nothing waits.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.critical.is_empty() && self.latest.is_empty() && self.bulk.is_empty()
    }

    /// Messages waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.critical.len() + self.latest.len() + self.bulk.len()
    }

    #[cfg(test)]
    /// Bulk messages shed since the outbox was made.
    pub(crate) fn shed_total(&self) -> u64 {
        self.shed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            topic: topic.into(),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            retain: false,
        }
    }

    fn drain(outbox: &mut Outbox) -> Vec<(String, String)> {
        std::iter::from_fn(|| outbox.pop())
            .map(|m| (m.topic, String::from_utf8_lossy(&m.payload).into_owned()))
            .collect()
    }

    #[test]
    fn latest_supersedes_per_topic_and_keeps_its_place() {
        let mut outbox = Outbox::new(4);
        outbox.push(message("state", "running"), Delivery::Latest);
        outbox.push(message("availability", "online"), Delivery::Latest);
        outbox.push(message("state", "idle"), Delivery::Latest);
        assert_eq!(outbox.len(), 2);
        assert_eq!(
            drain(&mut outbox),
            [
                ("state".into(), "idle".into()),
                ("availability".into(), "online".into())
            ]
        );
        assert!(outbox.is_empty());
    }

    #[test]
    fn order_is_kept_and_critical_is_never_shed() {
        let mut outbox = Outbox::new(1);
        outbox.push(message("response", "ok"), Delivery::Bulk);
        outbox.push(message("state", "idle"), Delivery::Latest);
        for i in 0..1000 {
            let kept = outbox.push(
                message("event", &format!("stopped {i}")),
                Delivery::Critical,
            );
            assert!(kept);
        }
        assert!(!outbox.push(message("response", "shed"), Delivery::Bulk));
        let sent = drain(&mut outbox);
        assert_eq!(sent.len(), 1002);
        assert_eq!(sent[0].1, "ok");
        assert_eq!(sent[1].1, "idle");
        assert_eq!(sent[2].1, "stopped 0");
        assert_eq!(outbox.shed_total(), 1);
    }

    #[test]
    fn under_overload_state_and_critical_overtake_the_bulk_backlog() {
        let mut outbox = Outbox::new(100);
        for i in 0..50 {
            outbox.push(message("response", &i.to_string()), Delivery::Bulk);
        }
        outbox.push(message("state", "idle"), Delivery::Latest);
        outbox.push(message("event", "stopped"), Delivery::Critical);
        let sent = drain(&mut outbox);
        assert_eq!(
            (sent[0].1.as_str(), sent[1].1.as_str()),
            ("idle", "stopped")
        );
        assert_eq!(sent.len(), 52);
    }

    #[test]
    fn bulk_is_shed_beyond_capacity_and_counted() {
        let mut outbox = Outbox::new(3);
        let kept: Vec<bool> = (0..10)
            .map(|i| outbox.push(message("response", &i.to_string()), Delivery::Bulk))
            .collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), 3);
        assert_eq!(outbox.shed_total(), 7);
        // Retained state is never shed, however full bulk is.
        assert!(outbox.push(message("state", "idle"), Delivery::Latest));
        assert_eq!(drain(&mut outbox).len(), 4);
        // Room again once drained.
        assert!(outbox.push(message("response", "late"), Delivery::Bulk));
    }

    #[test]
    fn after_any_flood_the_last_state_is_what_goes_out() {
        let mut outbox = Outbox::new(8);
        for i in 0..10_000 {
            outbox.push(message("state", &format!("s{i}")), Delivery::Latest);
            outbox.push(message("event", &format!("e{i}")), Delivery::Bulk);
        }
        let sent = drain(&mut outbox);
        let states: Vec<&String> = sent
            .iter()
            .filter(|(t, _)| t == "state")
            .map(|(_, p)| p)
            .collect();
        assert_eq!(states, ["s9999"]);
        assert_eq!(outbox.shed_total(), 10_000 - 8);
    }
}

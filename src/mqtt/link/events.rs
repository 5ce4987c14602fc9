//! The inbound lanes from the poll task to the consumer: a priority lane for stops and
//! connection events, which the poll task waits for room in (never dropped), and a bounded
//! queue for every other message, where a message that finds no room is shed rather than
//! stalling the poll task (which would stop the keep-alive pings and get the link killed).
//! [`Events`] is the consumer's end, [`Lanes`] the poll task's.

use super::LinkEvent;
use super::shared::Shared;
use crate::mqtt::command::is_stop;
use rumqttc::v5::mqttbytes::v5::Publish;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Stops and connection events waiting for the consumer before the poll task waits too.
const PRIORITY_CAPACITY: usize = 64;

/// The consumer's end of a link: stops and connection events first, then other messages.
#[derive(Debug)]
pub struct Events {
    priority: mpsc::Receiver<LinkEvent>,
    queue: mpsc::Receiver<LinkEvent>,
    shared: Arc<Shared>,
}

impl Events {
    /// The next event: a waiting stop or connection event before anything else, then a
    /// report of shed messages, then the next queued message. `None` once the link has ended.
    pub async fn recv(&mut self) -> Option<LinkEvent> {
        if let Ok(event) = self.priority.try_recv() {
            return Some(event);
        }
        if let Some(event) = self.shared.shed.take_overloaded() {
            return Some(event);
        }
        tokio::select! {
            biased;
            event = self.priority.recv() => match event {
                Some(event) => Some(event),
                None => self.queue.recv().await,
            },
            event = self.queue.recv() => event,
        }
    }

    /// An event already waiting, in the same order as [`Events::recv`], without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<LinkEvent> {
        if let Ok(event) = self.priority.try_recv() {
            return Some(event);
        }
        self.shared
            .shed
            .take_overloaded()
            .or_else(|| self.queue.try_recv().ok())
    }
}

/// Both ends of a link's lanes, the queue holding `capacity` messages (at least one); `done`
/// is dropped with the poll task's end.
pub(super) fn lanes(
    capacity: usize,
    shared: Arc<Shared>,
    done: oneshot::Sender<()>,
) -> (Lanes, Events) {
    let (priority_tx, priority_rx) = mpsc::channel(PRIORITY_CAPACITY);
    let (queue_tx, queue_rx) = mpsc::channel(capacity.max(1));
    let lanes = Lanes {
        priority: priority_tx,
        queue: queue_tx,
        shared: shared.clone(),
        _done: done,
    };
    let events = Events {
        priority: priority_rx,
        queue: queue_rx,
        shared,
    };
    (lanes, events)
}

/// The poll task's ends of the consumer's lanes; dropping it closes the link for publishers.
pub(super) struct Lanes {
    priority: mpsc::Sender<LinkEvent>,
    queue: mpsc::Sender<LinkEvent>,
    shared: Arc<Shared>,
    /// Dropped when the poll task ends, which ends the reporter task.
    _done: oneshot::Sender<()>,
}

impl Lanes {
    /// Sends a must-not-lose event, waiting for room; `false` when the consumer is gone.
    pub(super) async fn send_priority(&self, event: LinkEvent) -> bool {
        self.priority.send(event).await.is_ok()
    }

    /// Hands an incoming publish to the consumer: a stop through the priority lane, waiting
    /// for room; anything else through the queue, shed when it is full. `false` when the
    /// consumer is gone.
    pub(super) async fn deliver(&self, publish: Publish) -> bool {
        // MQTT requires UTF-8 topics; the codec hands them over as bytes. We announce no topic
        // aliases, so the topic is never empty.
        let Ok(topic) = String::from_utf8(publish.topic.to_vec()) else {
            tracing::warn!(
                bytes = publish.topic.len(),
                "mqtt message with a non-UTF-8 topic ignored"
            );
            return true;
        };
        let stop = is_stop(&publish.payload);
        let event = LinkEvent::Message {
            topic,
            payload: publish.payload,
            retain: publish.retain,
        };
        if stop {
            // A stop is never shed: it waits for room in its own lane.
            return self.send_priority(event).await;
        }
        match self.queue.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(LinkEvent::Message { topic, payload, .. })) => {
                self.shared
                    .shed
                    .inbound(&topic, &payload, std::time::Instant::now());
                true
            }
            Err(_) => false,
        }
    }

    /// Resolves once the consumer has dropped its [`Events`].
    pub(super) async fn closed(&self) {
        self.priority.closed().await
    }

    /// Waits `delay`; `false` if the consumer went away meanwhile.
    pub(super) async fn sleep(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.closed() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake_sender.notify_one();
    }
}

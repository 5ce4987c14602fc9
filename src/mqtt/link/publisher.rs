//! The outbound path: [`Publisher`] queues into the shared outbox and never waits;
//! [`send_loop`] drains it into rumqttc's request channel, waiting there instead, so the
//! backlog stays in the outbox where retained state is superseded rather than piling up.

use super::LinkError;
use super::shared::{Shared, lock};
use super::shed::ShedTotals;
use crate::mqtt::outbox::{Delivery, Message};
use bytes::Bytes;
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::{QoS, valid_topic};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Handle for publishing through a running link. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    pub(super) fn new(shared: Arc<Shared>) -> Publisher {
        Publisher { shared }
    }

    /// Queues a QoS 1 publish of `payload` on `topic` with the delivery class `delivery`;
    /// never waits. The sender task hands it to the event loop in outbox order (critical,
    /// latest, bulk). While the broker is unreachable messages wait; with a clean session those
    /// in flight when the connection dropped are discarded on reconnect (the consumer
    /// republishes its state on [`LinkEvent::Connected`](super::LinkEvent::Connected)).
    pub fn send(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        retain: bool,
        delivery: Delivery,
    ) -> Result<(), LinkError> {
        if !valid_topic(topic) || topic.is_empty() {
            return Err(LinkError::InvalidTopic(topic.to_owned()));
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(LinkError::Closed {
                topic: topic.to_owned(),
            });
        }
        let message = Message {
            topic: topic.to_owned(),
            payload: payload.into(),
            retain,
        };
        let kept = lock(&self.shared.outbox).push(message, delivery);
        if kept {
            self.shared.wake_sender.notify_one();
        } else {
            self.shared.shed.outbound(topic, std::time::Instant::now());
        }
        Ok(())
    }

    /// Publishes `payload` on `topic` as a critical message (never shed); see
    /// [`Publisher::send`]. Returns once queued.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        retain: bool,
    ) -> Result<(), LinkError> {
        self.send(topic, payload, retain, Delivery::Critical)
    }

    /// Removes the retained message on `topic` (an empty retained publish).
    pub async fn clear_retained(&self, topic: &str) -> Result<(), LinkError> {
        self.send(topic, Bytes::new(), true, Delivery::Latest)
    }

    /// Sends DISCONNECT once every message already queued has gone to the event loop; the
    /// broker then drops the last will, and the link ends with
    /// [`LinkEvent::Disconnected`](super::LinkEvent::Disconnected).
    pub async fn disconnect(&self) -> Result<(), LinkError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(LinkError::Closed {
                topic: String::new(),
            });
        }
        self.shared
            .disconnect_requested
            .store(true, Ordering::Release);
        self.shared.wake_sender.notify_one();
        Ok(())
    }

    /// Messages shed so far, both ways.
    pub fn shed_totals(&self) -> ShedTotals {
        self.shared.shed.totals()
    }
}

/// Hands queued publishes to the event loop, one at a time, in outbox order; then, when asked
/// and nothing is left, the DISCONNECT.
pub(super) async fn send_loop(client: AsyncClient, shared: Arc<Shared>) {
    loop {
        let next = lock(&shared.outbox).pop();
        match next {
            Some(message) => {
                // Waits while rumqttc's request queue is full: the backlog stays in the
                // outbox, where retained state is superseded instead of piling up.
                let sent = client
                    .publish_bytes(
                        message.topic,
                        QoS::AtLeastOnce,
                        message.retain,
                        message.payload,
                    )
                    .await;
                if sent.is_err() {
                    break;
                }
            }
            None if shared.disconnect_requested.load(Ordering::Acquire) => {
                if let Err(error) = client.disconnect().await {
                    tracing::debug!(%error, "mqtt disconnect request: link already closed");
                }
                break;
            }
            None if shared.closed.load(Ordering::Acquire) => break,
            None => shared.wake_sender.notified().await,
        }
    }
}

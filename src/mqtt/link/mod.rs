//! Thin async layer over the rumqttc MQTT 5 event loop: connect, resubscribe, reconnect with
//! backoff.
//!
//! MQTT 5 rather than 3.1.1 for one subscription option: "retain as published". Under 3.1.1 a
//! broker clears the retain flag when it forwards a live publish to a client already
//! subscribed, so a retained command published while we run looked like a live one; with the
//! option the flag arrives as the publisher set it (DESIGN.md: a retained command is never
//! executed).
//!
//! [`start_link`] spawns three tasks around one rumqttc client:
//!
//! ```text
//!  Publisher ─▶ Outbox ─▶ send task ─┐
//!                  resubscribe task ─┴─▶ request channel ─▶ EventLoop ◀─▶ broker
//!                                                               │ polled by
//!  Events ◀─ priority lane: stops, Connected, Disconnected ◀─ poll task
//!         ◀─ bounded queue: other messages (shed when full) ◀────┤
//!         ◀─ Overloaded ◀─ Shed ◀─ shed messages ◀───────────────┘
//!                            └─▶ report task: "flood over" log lines
//! ```
//!
//! The poll task never publishes or subscribes itself: a request from the polling task blocks
//! forever once the request channel is full, because only polling drains it. So publishes go
//! through the send task, and the subscriptions, renewed after every ConnAck (the session is
//! clean), through a short-lived resubscribe task.
//!
//! One file per idea: `options` what we connect with, `poll` the poll task and `reconnect`
//! its retry policy (backoff in `backoff`, client-id takeovers), `failure` how failed
//! attempts are named and logged, `subscribe` the subscriptions, `events` the inbound lanes
//! (a stop is never shed; other messages are, when the consumer is behind, counted in `shed`
//! and handed back as [`LinkEvent::Overloaded`] so each can be answered `overloaded`),
//! `publisher` the outbound path (an [`Outbox`](crate::mqtt::outbox::Outbox): latest-wins
//! retained state, critical messages never shed, bulk shed and counted), `shared` what the
//! handles and tasks share.

mod backoff;
mod events;
mod failure;
mod options;
mod poll;
mod publisher;
mod reconnect;
mod shared;
mod shed;
mod subscribe;

pub use events::Events;
#[cfg(feature = "embedded-broker")]
pub(crate) use options::PACKET_HEADROOM;
pub use options::{LastWill, LinkOptions};
pub use publisher::Publisher;

use crate::mqtt::command::CommandId;
use bytes::Bytes;
use options::REQUEST_CAPACITY;
use poll::PollTask;
use publisher::send_loop;
use rumqttc::v5::AsyncClient;
use shared::Shared;
use shed::report_loop;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Why a publish, clear or disconnect request failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The topic is empty or contains a wildcard.
    #[error("invalid topic '{0}' for publishing")]
    InvalidTopic(String),
    /// The event loop task has ended (disconnected or the consumer went away).
    #[error("mqtt link is closed; request for topic '{topic}' dropped")]
    Closed {
        /// Topic of the dropped request, empty for a disconnect.
        topic: String,
    },
}

/// What the link reports to its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The broker accepted the connection and acknowledged every subscription (after every
    /// ConnAck, the first and each reconnect), so messages published from now on arrive.
    Connected,
    /// A connection that had been up was lost; the link keeps reconnecting unless the
    /// disconnect was requested.
    Disconnected {
        /// Human-readable cause.
        reason: String,
    },
    /// Messages were shed because the consumer was behind (see the module docs); `ids` are
    /// the ids of the shed commands that carried one (at most a bounded number), to be
    /// answered `overloaded`.
    Overloaded {
        /// Messages shed since the last such event, with or without an id.
        shed: u64,
        /// Ids of shed commands, oldest first.
        ids: Vec<CommandId>,
    },
    /// A message on one of the subscriptions.
    Message {
        /// Topic it was published on.
        topic: String,
        /// Payload bytes.
        payload: Bytes,
        /// Whether it is a retained message: replayed when the subscription was made, or
        /// published with the retain flag (subscriptions are "retain as published").
        retain: bool,
    },
}

/// Connects: spawns the tasks that own the MQTT connection; must be called inside a tokio runtime.
///
/// The link ends after a requested [`Publisher::disconnect`], or when the [`Events`] are
/// dropped (then without DISCONNECT, so the broker publishes the last will).
pub fn start_link(options: LinkOptions) -> (Publisher, Events) {
    let (client, eventloop) = AsyncClient::new(options.to_mqtt_options(), REQUEST_CAPACITY);
    let shared = Arc::new(Shared::new());
    let (done_tx, done_rx) = oneshot::channel();
    let (lanes, events) = events::lanes(options.event_capacity, shared.clone(), done_tx);
    tokio::spawn(send_loop(client.clone(), shared.clone()));
    tokio::spawn(report_loop(shared.clone(), done_rx));
    tokio::spawn(PollTask::new(eventloop, client, &options, lanes).run());
    (Publisher::new(shared), events)
}

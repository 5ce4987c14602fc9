//! Thin async layer over the rumqttc MQTT 5 event loop: connect, resubscribe, reconnect with
//! backoff.
//!
//! MQTT 5 rather than 3.1.1 for one subscription option: "retain as published". Under 3.1.1 a
//! broker clears the retain flag when it forwards a live publish to a client already
//! subscribed, so a retained command published while we run looked like a live one; with the
//! option the flag arrives as the publisher set it (DESIGN.md: a retained command is never
//! executed).
//!
//! The task that polls the event loop never publishes or subscribes itself: a rumqttc request
//! sent from the polling task blocks forever once the request channel is full, because only
//! polling drains it. Resubscription after a ConnAck is therefore handed to a short-lived task.
//!
//! Inbound, events reach the consumer through two lanes read by [`Events::recv`]: a priority
//! lane for `stop` commands (found with the parser's cheap [`is_stop`]) and connection events,
//! which the poll task waits for room in (never dropped), and a bounded queue for every other
//! message. When the consumer is more than that queue behind, a message is shed rather than
//! stalling the poll task (which would stop the keep-alive pings and get the link killed):
//! counted, logged at most once per second with the true count and once more when the flood
//! ends, and the ids of shed commands kept (bounded) and handed to the consumer as
//! [`LinkEvent::Overloaded`] so each can be answered `overloaded`.
//!
//! Outbound, publishes go into an [`Outbox`] (latest-wins retained state, critical messages
//! never shed, bulk shed and counted) drained by a sender task, so publishing never blocks
//! the caller and nothing retained is ever lost to a full request queue.
//!
//! A broker that closes us because another client connected with our client id (MQTT 5
//! reason "session taken over") is not fought in a loop: it is logged once as a takeover and
//! retried with a long backoff (10 s doubling to 5 min).

use super::command::{CommandId, is_stop, peek_id};
use super::outbox::{Delivery, Message, Outbox};
use super::tls::{self, TlsFiles};
use super::url::BrokerUrl;
use crate::logging::LogThrottle;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, DisconnectReasonCode, Filter, LastWill as WillMessage, Packet,
    RetainForwardRule, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::{QoS, valid_topic};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// Room above [`LinkOptions::max_payload_bytes`] in the packet size announced in CONNECT (topic,
/// properties, and commands somewhat over the limit, so they arrive and are answered
/// `too_large` instead of being dropped unseen by the broker). The outgoing limit is the
/// broker's, announced in its CONNACK.
pub(crate) const PACKET_HEADROOM: usize = 64 * 1024;
/// Ids of shed commands kept for `overloaded` answers; beyond this only the count grows.
const MAX_SHED_IDS: usize = 1024;
/// Stops and connection events waiting for the consumer before the poll task waits too.
const PRIORITY_CAPACITY: usize = 64;
/// First delay after a client-id takeover; doubles up to [`TAKEOVER_BACKOFF_MAX`].
const TAKEOVER_BACKOFF_MIN: Duration = Duration::from_secs(10);
/// A connection the broker ends within this of its ConnAck counts as a quick close; two in a
/// row are taken for a client-id takeover when the broker does not say so (MQTT 5 reason
/// "session taken over"): it keeps accepting us and then drops us for the other client.
const QUICK_CLOSE: Duration = Duration::from_secs(3);
/// Longest delay after repeated client-id takeovers.
const TAKEOVER_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Unacknowledged QoS 1 publishes allowed at once (the broker may allow fewer).
const MAX_OUTGOING_INFLIGHT: u16 = 100;
/// Requests (publishes, subscribes) buffered between publishers and the event loop.
const REQUEST_CAPACITY: usize = 64;
/// A connection that lasted this long resets the backoff; a broker that accepts and then drops
/// every connection at once keeps growing it instead of being hammered at `backoff_min`.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

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

/// Message the broker publishes for us when the connection dies without a DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic of the will.
    pub topic: String,
    /// Payload of the will.
    pub payload: Bytes,
    /// Whether the broker retains it.
    pub retain: bool,
}

/// Connection settings for [`start_link`].
///
/// `Debug` is written by hand so the password never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkOptions {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// MQTT client id; reconnects reuse it.
    pub client_id: String,
    /// Keep-alive interval (pings while idle; the broker drops us after 1.5 times this).
    pub keep_alive: Duration,
    /// User name, if the broker needs one.
    pub username: Option<String>,
    /// Password, if the broker needs one.
    pub password: Option<String>,
    /// `Some` connects with TLS, verifying the broker against these files (re-read on every
    /// connection attempt); `None` is plain TCP.
    pub tls: Option<TlsFiles>,
    /// Will published by the broker if the link dies.
    pub last_will: Option<LastWill>,
    /// Topic filters subscribed at QoS 1, retain as published, after every ConnAck.
    pub subscriptions: Vec<String>,
    /// Smallest delay before a reconnect attempt.
    pub backoff_min: Duration,
    /// Largest delay before a reconnect attempt.
    pub backoff_max: Duration,
    /// Capacity of the event queue to the consumer (stops have their own lane).
    pub event_capacity: usize,
    /// Largest command the consumer accepts (`mqtt.max_payload_bytes`); the packet size
    /// announced to the broker follows it, so larger commands still arrive to be refused.
    pub max_payload_bytes: usize,
}

impl LinkOptions {
    /// Options for a plain-TCP broker with defaults for everything else.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        LinkOptions {
            host: host.into(),
            port,
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(30),
            username: None,
            password: None,
            tls: None,
            last_will: None,
            subscriptions: Vec::new(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            event_capacity: 256,
            max_payload_bytes: 4096,
        }
    }

    /// Options for a parsed broker URL: host, port, the credentials written in it, and TLS
    /// with the system CA store for `mqtts://` (set [`LinkOptions::tls`] files to change that).
    pub(crate) fn from_broker_url(url: &BrokerUrl, client_id: impl Into<String>) -> Self {
        let mut options = LinkOptions::new(url.host.clone(), url.port, client_id);
        options.username = url.username.clone();
        options.password = url.password.clone();
        options.tls = url.tls.then(TlsFiles::default);
        options
    }

    /// The largest packet announced in CONNECT: the payload limit plus headroom.
    pub(crate) fn max_packet_size(&self) -> u32 {
        u32::try_from(self.max_payload_bytes.saturating_add(PACKET_HEADROOM)).unwrap_or(u32::MAX)
    }

    fn to_mqtt_options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options
            .set_keep_alive(self.keep_alive)
            // A fresh session on every connect (clean start, and no session expiry interval so
            // the session also ends with the connection): no stale commands queued for us while
            // we were away. The price is that subscriptions must be renewed after every ConnAck.
            .set_clean_start(true)
            .set_session_expiry_interval(None)
            .set_max_packet_size(Some(self.max_packet_size()))
            // rumqttc preallocates a slot per allowed in-flight publish; left unset it takes
            // u16::MAX slots (14 MB of RSS). We never have more than a handful in flight.
            .set_outgoing_inflight_upper_limit(MAX_OUTGOING_INFLIGHT)
            .set_request_channel_capacity(REQUEST_CAPACITY);
        let mut network = options.network_options();
        // Without it a PUBACK and the state that answers a command wait ~40 ms for the
        // broker's delayed ACK (see DESIGN.md, Latency).
        network.set_tcp_nodelay(true);
        options.set_network_options(network);
        if let Some(username) = &self.username {
            options.set_credentials(username, self.password.as_deref().unwrap_or(""));
        }
        if let Some(will) = &self.last_will {
            options.set_last_will(WillMessage::new(
                &will.topic,
                will.payload.to_vec(),
                QoS::AtLeastOnce,
                will.retain,
                None,
            ));
        }
        options
    }
}

impl fmt::Debug for LinkOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("last_will", &self.last_will)
            .field("subscriptions", &self.subscriptions)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("event_capacity", &self.event_capacity)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish()
    }
}

/// Exponential backoff with full jitter above a floor.
///
/// The ceiling starts at `min` and doubles after every delay, up to `max`; each delay is drawn
/// uniformly from `[min, ceiling]`. The floor keeps a failing broker from being retried in a
/// busy loop, the jitter keeps many clients from reconnecting in lockstep after an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Backoff between `min` and `max` (`max` below `min` is raised to `min`).
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// Upper bound of the next delay.
    pub(crate) fn ceiling(&self) -> Duration {
        // 2^31 times anything sensible already exceeds any cap; saturating keeps it total.
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// Next delay, drawn with `rng`; raises the ceiling for the one after.
    pub(crate) fn next_delay(&mut self, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling();
        let spread = ceiling.saturating_sub(self.min);
        let spread_nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        let delay = self.min + Duration::from_nanos(rng.u64(0..=spread_nanos));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Back to the smallest ceiling, after a connection that held.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Totals since the link started, for the diagnostic counters in the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShedTotals {
    /// Incoming messages shed because the consumer was behind.
    pub inbound: u64,
    /// Bulk publishes shed because the broker was behind.
    pub outbound: u64,
}

/// What the publishers, the sender task and the poll task share.
#[derive(Debug)]
struct Shared {
    outbox: Mutex<Outbox>,
    /// Wakes the sender task when the outbox gains a message or a disconnect is asked.
    wake_sender: Notify,
    disconnect_requested: AtomicBool,
    closed: AtomicBool,
    inbound: Mutex<InboundShed>,
    outbound_log: Mutex<LogThrottle>,
    /// Wakes the reporter task at the first shed of a flood (for the final count).
    wake_reporter: Notify,
    inbound_total: AtomicU64,
    outbound_total: AtomicU64,
}

/// Shed incoming messages not yet reported to the consumer.
#[derive(Debug)]
struct InboundShed {
    log: LogThrottle,
    unreported: u64,
    ids: VecDeque<CommandId>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent across a panic elsewhere (plain counters and queues).
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn new() -> Shared {
        Shared {
            outbox: Mutex::new(Outbox::default()),
            wake_sender: Notify::new(),
            disconnect_requested: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            inbound: Mutex::new(InboundShed {
                log: LogThrottle::per_second(),
                unreported: 0,
                ids: VecDeque::new(),
            }),
            outbound_log: Mutex::new(LogThrottle::per_second()),
            wake_reporter: Notify::new(),
            inbound_total: AtomicU64::new(0),
            outbound_total: AtomicU64::new(0),
        }
    }

    /// Records an incoming message shed at `now`, logging at most once per second.
    fn shed_inbound(&self, topic: &str, payload: &[u8]) {
        let total = self.inbound_total.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inbound = lock(&self.inbound);
        inbound.unreported += 1;
        if inbound.ids.len() < MAX_SHED_IDS
            && let Some(id) = peek_id(payload)
        {
            inbound.ids.push_back(id);
        }
        if let Some(shed) = inbound.log.record(std::time::Instant::now()) {
            tracing::warn!(%topic, shed, total, "mqtt consumer behind, incoming messages shed");
        }
        drop(inbound);
        self.wake_reporter.notify_one();
    }

    /// Records a bulk publish shed, logging at most once per second.
    fn shed_outbound(&self, topic: &str) {
        let total = self.outbound_total.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(shed) = lock(&self.outbound_log).record(std::time::Instant::now()) {
            tracing::warn!(%topic, shed, total, "mqtt broker behind, publishes shed");
        }
        self.wake_reporter.notify_one();
    }

    /// The shed messages not yet handed to the consumer, as an event.
    fn take_overloaded(&self) -> Option<LinkEvent> {
        let mut inbound = lock(&self.inbound);
        if inbound.unreported == 0 {
            return None;
        }
        let shed = std::mem::take(&mut inbound.unreported);
        let ids = inbound.ids.drain(..).collect();
        Some(LinkEvent::Overloaded { shed, ids })
    }

    /// Logs the final count of a flood that ended; returns the next time to look again.
    fn report_ended_floods(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        let mut inbound = lock(&self.inbound);
        if let Some(shed) = inbound.log.handle_timeout(now) {
            let total = self.inbound_total.load(Ordering::Relaxed);
            tracing::warn!(shed, total, "mqtt incoming flood over; last messages shed");
        }
        let mut outbound = lock(&self.outbound_log);
        if let Some(shed) = outbound.handle_timeout(now) {
            let total = self.outbound_total.load(Ordering::Relaxed);
            tracing::warn!(shed, total, "mqtt outgoing flood over; last publishes shed");
        }
        [inbound.log.poll_timeout(), outbound.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Handle for publishing through a running link. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    /// Queues a QoS 1 publish of `payload` on `topic` with the delivery class `delivery`;
    /// never waits. The sender task hands it to the event loop in outbox order (critical,
    /// latest, bulk). While the broker is unreachable messages wait; with a clean session those
    /// in flight when the connection dropped are discarded on reconnect (the consumer
    /// republishes its state on [`LinkEvent::Connected`]).
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
            self.shared.shed_outbound(topic);
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
    /// broker then drops the last will, and the link ends with [`LinkEvent::Disconnected`].
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
        ShedTotals {
            inbound: self.shared.inbound_total.load(Ordering::Relaxed),
            outbound: self.shared.outbound_total.load(Ordering::Relaxed),
        }
    }
}

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
        if let Some(event) = self.shared.take_overloaded() {
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
    pub fn try_recv(&mut self) -> Option<LinkEvent> {
        if let Ok(event) = self.priority.try_recv() {
            return Some(event);
        }
        self.shared
            .take_overloaded()
            .or_else(|| self.queue.try_recv().ok())
    }
}

/// Connects: spawns the tasks that own the MQTT connection; must be called inside a tokio runtime.
///
/// The link ends after a requested [`Publisher::disconnect`], or when the [`Events`] are
/// dropped (then without DISCONNECT, so the broker publishes the last will).
pub fn start_link(options: LinkOptions) -> (Publisher, Events) {
    let (client, eventloop) = AsyncClient::new(options.to_mqtt_options(), REQUEST_CAPACITY);
    let shared = Arc::new(Shared::new());

    let (priority_tx, priority_rx) = mpsc::channel(PRIORITY_CAPACITY);
    let (queue_tx, queue_rx) = mpsc::channel(options.event_capacity.max(1));
    let filters: Vec<Filter> = options
        .subscriptions
        .iter()
        .map(|filter| subscription(filter))
        .collect();
    let backoff = Backoff::new(options.backoff_min, options.backoff_max);
    let target = Target {
        broker: format!("{}:{}", options.host, options.port),
        tls: options.tls.clone(),
    };
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(send_loop(client.clone(), shared.clone()));
    tokio::spawn(report_loop(shared.clone(), done_rx));
    tokio::spawn(poll_loop(
        eventloop,
        client,
        filters,
        backoff,
        target,
        Lanes {
            priority: priority_tx,
            queue: queue_tx,
            shared: shared.clone(),
            _done: done_tx,
        },
    ));
    (
        Publisher {
            shared: shared.clone(),
        },
        Events {
            priority: priority_rx,
            queue: queue_rx,
            shared,
        },
    )
}

/// Hands queued publishes to the event loop, one at a time, in outbox order; then, when asked
/// and nothing is left, the DISCONNECT.
async fn send_loop(client: AsyncClient, shared: Arc<Shared>) {
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

/// Logs the final shed count of each flood once it has been quiet for a second.
async fn report_loop(shared: Arc<Shared>, mut done: oneshot::Receiver<()>) {
    loop {
        let next = shared.report_ended_floods(std::time::Instant::now());
        let wait = async {
            match next {
                Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                None => shared.wake_reporter.notified().await,
            }
        };
        tokio::select! {
            _ = &mut done => break,
            _ = wait => {}
        }
    }
}

/// The poll task's ends of the consumer's lanes.
struct Lanes {
    priority: mpsc::Sender<LinkEvent>,
    queue: mpsc::Sender<LinkEvent>,
    shared: Arc<Shared>,
    /// Dropped when the poll task ends, which ends the reporter task.
    _done: oneshot::Sender<()>,
}

impl Lanes {
    /// Sends a must-not-lose event, waiting for room; `false` when the consumer is gone.
    async fn send_priority(&self, event: LinkEvent) -> bool {
        self.priority.send(event).await.is_ok()
    }

    async fn closed(&self) {
        self.priority.closed().await
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake_sender.notify_one();
    }
}

/// Whether the broker closed us because another client connected with our client id.
fn is_takeover(error: &ConnectionError) -> bool {
    matches!(
        error,
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        })
    )
}

/// Where the poll task connects, for log fields and the TLS settings of each attempt.
struct Target {
    broker: String,
    tls: Option<TlsFiles>,
}

/// Polls the event loop until a requested disconnect or until the consumer goes away.
async fn poll_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<Filter>,
    mut backoff: Backoff,
    target: Target,
    events: Lanes,
) {
    let mut rng = fastrand::Rng::new();
    let mut connected_since: Option<Instant> = None;
    let mut awaiting_suback = false;
    let mut takeover_backoff = Backoff::new(TAKEOVER_BACKOFF_MIN, TAKEOVER_BACKOFF_MAX);
    let mut takeover_logged = false;
    let mut quick_closes = 0u32;
    // The next poll opens a new connection (first poll, or after an error).
    let mut attempt_pending = true;
    let mut failures = FailureLog::default();
    loop {
        if attempt_pending && let Some(files) = &target.tls {
            match tls::client_config(files) {
                Ok(config) => {
                    eventloop.options.set_transport(Transport::tls_with_config(
                        TlsConfiguration::Rustls(config),
                    ));
                }
                Err(error) => {
                    // Never fall back to plain TCP: skip this attempt and retry the files later.
                    let reason = error.to_string();
                    failures.record(&target.broker, "tls_settings", &reason);
                    let delay = backoff.next_delay(&mut rng);
                    tracing::debug!(%reason, delay_ms = delay.as_millis() as u64, "mqtt reconnect scheduled");
                    tokio::select! {
                        _ = events.closed() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            }
        }
        // Cancelling `poll` only happens when we are about to drop the event loop anyway.
        let polled = tokio::select! {
            biased;
            _ = events.closed() => break,
            polled = eventloop.poll() => polled,
        };
        if polled.is_ok() {
            attempt_pending = false;
        }
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected_since = Some(Instant::now());
                failures = FailureLog::default();
                tracing::info!(
                    client_id = %eventloop.options.client_id(),
                    broker = %target.broker,
                    tls = target.tls.is_some(),
                    "mqtt connected"
                );
                if filters.is_empty() {
                    if !events.send_priority(LinkEvent::Connected).await {
                        break;
                    }
                } else {
                    awaiting_suback = true;
                    resubscribe(&client, &filters);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(suback))) if awaiting_suback => {
                awaiting_suback = false;
                let refused: Vec<&SubscribeReasonCode> = suback
                    .return_codes
                    .iter()
                    .filter(|code| !matches!(code, SubscribeReasonCode::Success(_)))
                    .collect();
                if !refused.is_empty() {
                    tracing::warn!(filters = ?filters, reasons = ?refused, "mqtt broker refused a subscription");
                }
                if !events.send_priority(LinkEvent::Connected).await {
                    break;
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                // MQTT requires UTF-8 topics; the codec hands them over as bytes. We announce
                // no topic aliases, so the topic is never empty.
                let Ok(topic) = String::from_utf8(publish.topic.to_vec()) else {
                    tracing::warn!(
                        bytes = publish.topic.len(),
                        "mqtt message with a non-UTF-8 topic ignored"
                    );
                    continue;
                };
                let stop = is_stop(&publish.payload);
                let event = LinkEvent::Message {
                    topic,
                    payload: publish.payload,
                    retain: publish.retain,
                };
                if stop {
                    // A stop is never shed: it waits for room in its own lane.
                    if !events.send_priority(event).await {
                        break;
                    }
                    continue;
                }
                match events.queue.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(LinkEvent::Message {
                        topic,
                        payload,
                        ..
                    })) => events.shared.shed_inbound(&topic, &payload),
                    Err(_) => break,
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                tracing::info!("mqtt disconnected on request");
                // Best effort: the consumer may already be gone.
                let _ = events
                    .send_priority(LinkEvent::Disconnected {
                        reason: "disconnect requested".into(),
                    })
                    .await;
                break;
            }
            Ok(_) => {}
            Err(error) => {
                let mut reason = error.to_string();
                attempt_pending = true;
                awaiting_suback = false;
                match connected_since {
                    Some(since) if since.elapsed() < QUICK_CLOSE => quick_closes += 1,
                    Some(_) => quick_closes = 0,
                    // A failed attempt: the broker is away, not another client.
                    None => quick_closes = 0,
                }
                let takeover = is_takeover(&error) || quick_closes >= 2;
                let delay = if takeover {
                    takeover_backoff.next_delay(&mut rng)
                } else {
                    backoff.next_delay(&mut rng)
                };
                if let Some(since) = connected_since.take() {
                    if since.elapsed() >= STABLE_CONNECTION {
                        backoff.reset();
                        if !takeover {
                            takeover_backoff.reset();
                            takeover_logged = false;
                        }
                    }
                    if takeover {
                        reason = format!(
                            "session taken over: another client connected with client id '{}'; retrying in {} s",
                            eventloop.options.client_id(),
                            delay.as_secs()
                        );
                        if takeover_logged {
                            tracing::debug!(%reason, "mqtt client id taken over again");
                        } else {
                            takeover_logged = true;
                            tracing::warn!(
                                client_id = %eventloop.options.client_id(),
                                retry_s = delay.as_secs(),
                                "mqtt session taken over by another client with our client id; backing off instead of taking it back (set mqtt.client_id to a unique value)"
                            );
                        }
                    } else {
                        tracing::warn!(%reason, "mqtt connection lost");
                    }
                    if !events
                        .send_priority(LinkEvent::Disconnected {
                            reason: reason.clone(),
                        })
                        .await
                    {
                        break;
                    }
                } else {
                    failures.record(&target.broker, problem_of(&error), &reason);
                }
                tracing::debug!(%reason, delay_ms = delay.as_millis() as u64, "mqtt reconnect scheduled");
                tokio::select! {
                    _ = events.closed() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Logs failed connection attempts: a warning when the cause changes, debug for repeats, so a
/// broker that stays unreachable for days does not flood the journal.
#[derive(Default)]
struct FailureLog {
    last_reason: Option<String>,
    attempts: u64,
}

impl FailureLog {
    fn record(&mut self, broker: &str, problem: &'static str, reason: &str) {
        self.attempts += 1;
        let attempts = self.attempts;
        if self.last_reason.as_deref() == Some(reason) {
            tracing::debug!(%broker, problem, error = %reason, attempts, "mqtt connection attempt failed");
        } else {
            tracing::warn!(%broker, problem, error = %reason, attempts, "mqtt connection attempt failed");
            self.last_reason = Some(reason.to_owned());
        }
    }
}

/// A short machine-readable name for why a connection attempt failed (the `problem` log field).
fn problem_of(error: &ConnectionError) -> &'static str {
    match error {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => "not_authorized",
        ConnectionError::ConnectionRefused(_) => "refused_by_broker",
        ConnectionError::Tls(tls_error) => match rustls_error(tls_error) {
            Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => "tls_certificate_name_mismatch",
            Some(rustls::Error::InvalidCertificate(_)) => "tls_certificate_rejected",
            Some(rustls::Error::AlertReceived(_)) => "tls_rejected_by_broker",
            _ => "tls_handshake_failed",
        },
        ConnectionError::Io(_) => "unreachable",
        ConnectionError::Timeout(_) => "timeout",
        _ => "connection_failed",
    }
}

/// The rustls error inside a TLS failure, if it was one.
fn rustls_error(error: &rumqttc::v5::TlsError) -> Option<&rustls::Error> {
    match error {
        rumqttc::v5::TlsError::TLS(inner) => Some(inner),
        rumqttc::v5::TlsError::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// A QoS 1 subscription to `filter` with "retain as published": a live publish keeps the
/// publisher's retain flag, so a retained command is recognised whenever it arrives. Retained
/// messages are still sent on every (re)subscription, and our own publishes still come back.
fn subscription(filter: &str) -> Filter {
    Filter {
        path: filter.to_owned(),
        qos: QoS::AtLeastOnce,
        nolocal: false,
        preserve_retain: true,
        retain_forward_rule: RetainForwardRule::OnEverySubscribe,
    }
}

/// Renews every subscription from a separate task, so the poll task never waits on the
/// request channel it alone drains.
fn resubscribe(client: &AsyncClient, filters: &[Filter]) {
    if filters.is_empty() {
        return;
    }
    let client = client.clone();
    let filters = filters.to_vec();
    tokio::spawn(async move {
        if let Err(error) = client.subscribe_many(filters).await {
            tracing::warn!(%error, "mqtt resubscribe failed: link closed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_broker_url_takes_host_port_credentials_and_tls() {
        let url = BrokerUrl::parse("mqtts://ha:pw@broker.lan").expect("valid url");
        let options = LinkOptions::from_broker_url(&url, "me");
        assert_eq!((options.host.as_str(), options.port), ("broker.lan", 8883));
        assert_eq!(options.username.as_deref(), Some("ha"));
        assert_eq!(options.password.as_deref(), Some("pw"));
        assert_eq!(options.tls, Some(TlsFiles::default()));
        assert_eq!(options.backoff_min, Duration::from_millis(100));
        assert!(!format!("{options:?}").contains("\"pw\""));
        let plain = BrokerUrl::parse("mqtt://[::1]").expect("valid url");
        let options = LinkOptions::from_broker_url(&plain, "me");
        assert_eq!((options.host.as_str(), options.port), ("::1", 1883));
        assert_eq!(options.tls, None);
    }

    #[test]
    fn connection_failures_are_named() {
        let refused = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert_eq!(problem_of(&refused), "not_authorized");
        let bad_password =
            ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword);
        assert_eq!(problem_of(&bad_password), "not_authorized");
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, untrusted);
        let tls = ConnectionError::Tls(rumqttc::v5::TlsError::Io(io));
        assert_eq!(problem_of(&tls), "tls_certificate_rejected");
        let wrong_name =
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let tls = ConnectionError::Tls(rumqttc::v5::TlsError::TLS(wrong_name));
        assert_eq!(problem_of(&tls), "tls_certificate_name_mismatch");
        let down = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(problem_of(&ConnectionError::Io(down)), "unreachable");
    }

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn backoff_ceiling_doubles_to_cap() {
        let mut backoff = Backoff::new(MIN, MAX);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            ceilings.push(backoff.ceiling().as_millis());
            backoff.next_delay(&mut rng);
        }
        assert_eq!(
            ceilings,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
    }

    #[test]
    fn backoff_delays_stay_within_floor_and_ceiling() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut backoff = Backoff::new(MIN, MAX);
            for _ in 0..40 {
                let ceiling = backoff.ceiling();
                let delay = backoff.next_delay(&mut rng);
                assert!(
                    delay >= MIN && delay <= ceiling,
                    "{delay:?} outside [{MIN:?}, {ceiling:?}]"
                );
            }
        }
    }

    #[test]
    fn backoff_is_jittered_and_deterministic_per_seed() {
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut backoff = Backoff::new(MIN, MAX);
            (0..10)
                .map(|_| backoff.next_delay(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // Late delays spread over the whole range, not bunched at the cap.
        let late: Vec<Duration> = (0..100).map(|seed| draw(seed)[9]).collect();
        assert!(late.iter().any(|d| *d < MAX / 2));
        assert!(late.iter().any(|d| *d > MAX / 2));
    }

    #[test]
    fn backoff_reset_returns_to_min() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut backoff = Backoff::new(MIN, MAX);
        for _ in 0..5 {
            backoff.next_delay(&mut rng);
        }
        backoff.reset();
        assert_eq!(backoff.ceiling(), MIN);
        assert_eq!(backoff.next_delay(&mut rng), MIN);
    }

    #[test]
    fn backoff_survives_huge_attempt_counts() {
        let mut rng = fastrand::Rng::with_seed(4);
        let mut backoff = Backoff::new(MIN, MAX);
        for _ in 0..100 {
            backoff.next_delay(&mut rng);
        }
        assert_eq!(backoff.ceiling(), MAX);
        let inverted = Backoff::new(MAX, MIN);
        assert_eq!(inverted.ceiling(), MAX);
    }
}

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
//! Events go to the consumer through a bounded channel. Messages are offered with `try_send`
//! and dropped (with a warning) when the consumer is more than the channel's capacity behind,
//! so a stalled consumer cannot stop the keep-alive pings and get the link killed by the
//! broker. Connection events are rare and must not be lost (the consumer republishes its
//! retained topics on `Connected`), so the poll task waits for room for those.

use super::tls::{self, TlsFiles};
use crate::config::BrokerUrl;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Filter, LastWill as WillMessage, Packet, RetainForwardRule,
    SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::{QoS, valid_topic};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Largest packet accepted from the broker, announced in CONNECT; commands are far smaller
/// (`mqtt.max_payload_bytes`). The outgoing limit is the broker's, announced in its CONNACK.
pub const MAX_INCOMING_PACKET: u32 = 64 * 1024;
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
    /// The request queue is full or closed (the broker has been unreachable for a while).
    #[error("mqtt request queue full or closed; publish on '{topic}' dropped")]
    Full {
        /// Topic of the dropped request.
        topic: String,
    },
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

/// Connection settings of a [`Link`].
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
    /// Capacity of the event channel to the consumer.
    pub event_capacity: usize,
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
        }
    }

    /// Options for a parsed broker URL: host, port, the credentials written in it, and TLS
    /// with the system CA store for `mqtts://` (set [`LinkOptions::tls`] files to change that).
    pub fn from_broker_url(url: &BrokerUrl, client_id: impl Into<String>) -> Self {
        let mut options = LinkOptions::new(url.host.clone(), url.port, client_id);
        options.username = url.username.clone();
        options.password = url.password.clone();
        options.tls = url.tls.then(TlsFiles::default);
        options
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
            .set_max_packet_size(Some(MAX_INCOMING_PACKET))
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
    pub fn ceiling(&self) -> Duration {
        // 2^31 times anything sensible already exceeds any cap; saturating keeps it total.
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// Next delay, drawn with `rng`; raises the ceiling for the one after.
    pub fn next_delay(&mut self, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling();
        let spread = ceiling.saturating_sub(self.min);
        let spread_nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        let delay = self.min + Duration::from_nanos(rng.u64(0..=spread_nanos));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Back to the smallest ceiling, after a connection that held.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Handle for publishing through a running link. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Publisher {
    client: AsyncClient,
}

impl Publisher {
    /// Publishes `payload` on `topic` at QoS 1.
    ///
    /// Returns once the request is queued for the event loop, not when the broker has
    /// acknowledged it. While the broker is unreachable, requests wait in the queue; with a
    /// clean session, those in flight when the connection dropped are discarded on reconnect
    /// (the consumer republishes its state on [`LinkEvent::Connected`]).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        retain: bool,
    ) -> Result<(), LinkError> {
        if !valid_topic(topic) || topic.is_empty() {
            return Err(LinkError::InvalidTopic(topic.to_owned()));
        }
        self.client
            .publish_bytes(topic, QoS::AtLeastOnce, retain, payload.into())
            .await
            .map_err(|_| LinkError::Closed {
                topic: topic.to_owned(),
            })
    }

    /// Queues a QoS 1 publish without waiting; fails when the request queue is full (the
    /// broker has been away for a while), so a caller on a timing-critical loop never blocks.
    pub fn try_publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), LinkError> {
        if !valid_topic(topic) || topic.is_empty() {
            return Err(LinkError::InvalidTopic(topic.to_owned()));
        }
        self.client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .map_err(|_| LinkError::Full {
                topic: topic.to_owned(),
            })
    }

    /// Removes the retained message on `topic` (an empty retained publish).
    pub async fn clear_retained(&self, topic: &str) -> Result<(), LinkError> {
        self.publish(topic, Bytes::new(), true).await
    }

    /// Sends DISCONNECT after the requests already queued; the broker then drops the last
    /// will, and the link ends with [`LinkEvent::Disconnected`].
    pub async fn disconnect(&self) -> Result<(), LinkError> {
        self.client
            .disconnect()
            .await
            .map_err(|_| LinkError::Closed {
                topic: String::new(),
            })
    }
}

/// The MQTT connection task.
pub struct Link;

impl Link {
    /// Spawns the task that owns the connection; must be called inside a tokio runtime.
    ///
    /// The task ends after a requested [`Publisher::disconnect`], or when the event receiver
    /// is dropped (then without DISCONNECT, so the broker publishes the last will).
    pub fn start(options: LinkOptions) -> (Publisher, mpsc::Receiver<LinkEvent>) {
        let (client, eventloop) = AsyncClient::new(options.to_mqtt_options(), REQUEST_CAPACITY);

        let (events_tx, events_rx) = mpsc::channel(options.event_capacity.max(1));
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
        tokio::spawn(poll_loop(
            eventloop,
            client.clone(),
            filters,
            backoff,
            target,
            events_tx,
        ));
        (Publisher { client }, events_rx)
    }
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
    events: mpsc::Sender<LinkEvent>,
) {
    let mut rng = fastrand::Rng::new();
    let mut connected_since: Option<Instant> = None;
    let mut awaiting_suback = false;
    let mut dropped_messages: u64 = 0;
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
                    if events.send(LinkEvent::Connected).await.is_err() {
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
                if events.send(LinkEvent::Connected).await.is_err() {
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
                let event = LinkEvent::Message {
                    topic,
                    payload: publish.payload,
                    retain: publish.retain,
                };
                match events.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(LinkEvent::Message { topic, .. })) => {
                        dropped_messages += 1;
                        tracing::warn!(%topic, dropped_messages, "mqtt consumer behind, message dropped");
                    }
                    Err(_) => break,
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                tracing::info!("mqtt disconnected on request");
                // Best effort: the consumer may already be gone.
                let _ = events
                    .send(LinkEvent::Disconnected {
                        reason: "disconnect requested".into(),
                    })
                    .await;
                break;
            }
            Ok(_) => {}
            Err(error) => {
                let reason = error.to_string();
                attempt_pending = true;
                awaiting_suback = false;
                if let Some(since) = connected_since.take() {
                    if since.elapsed() >= STABLE_CONNECTION {
                        backoff.reset();
                    }
                    tracing::warn!(%reason, "mqtt connection lost");
                    if events
                        .send(LinkEvent::Disconnected {
                            reason: reason.clone(),
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                } else {
                    failures.record(&target.broker, problem_of(&error), &reason);
                }
                let delay = backoff.next_delay(&mut rng);
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

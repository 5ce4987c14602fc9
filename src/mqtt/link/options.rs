//! What a link connects with: [`LinkOptions`] and their translation into rumqttc's
//! `MqttOptions`, where the session, packet-size and in-flight choices are made.

use crate::mqtt::tls::TlsFiles;
use crate::mqtt::url::BrokerUrl;
use bytes::Bytes;
use rumqttc::v5::MqttOptions;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::LastWill as WillMessage;
use std::fmt;
use std::time::Duration;

/// Room above [`LinkOptions::max_payload_bytes`] in the packet size announced in CONNECT (topic,
/// properties, and commands somewhat over the limit, so they arrive and are answered
/// `too_large` instead of being dropped unseen by the broker). The outgoing limit is the
/// broker's, announced in its CONNACK.
pub(crate) const PACKET_HEADROOM: usize = 64 * 1024;
/// Unacknowledged QoS 1 publishes allowed at once (the broker may allow fewer).
const MAX_OUTGOING_INFLIGHT: u16 = 100;
/// Requests (publishes, subscribes) buffered between publishers and the event loop.
pub(super) const REQUEST_CAPACITY: usize = 64;

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

/// Connection settings for [`start_link`](super::start_link).
///
/// `Debug` is written by hand so the password never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkOptions {
    /// Broker host name or address.
    pub(crate) host: String,
    /// Broker TCP port.
    pub(crate) port: u16,
    /// MQTT client id; reconnects reuse it.
    pub(crate) client_id: String,
    /// Keep-alive interval (pings while idle; the broker drops us after 1.5 times this).
    pub(crate) keep_alive: Duration,
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

    /// The rumqttc options for these settings (TLS is set per attempt by the poll task).
    pub(super) fn to_mqtt_options(&self) -> MqttOptions {
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
}

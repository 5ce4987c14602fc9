//! The link options for a configuration: the broker URL, credentials, keep-alive and TLS
//! files, and for the daemon its client id, last will and subscriptions. Here, in the wiring,
//! so neither `config` nor `mqtt` needs the other's types.

use super::RunOptions;
use crate::config::{Config, ConfigErrors};
use crate::mqtt::link::{LastWill, LinkOptions};
use crate::mqtt::topics::{PAYLOAD_OFFLINE, Topics};
use std::time::Duration;

/// Longest delay between reconnect attempts: a broker that comes back is found within this
/// (plus the connect itself), so the device is `online` again within 2 s (issue 4). An
/// attempt against a broker that is down costs one refused connection.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How to reach the broker: host and port from `mqtt.url`, the credentials of
/// [`Config::mqtt_credentials`], keep-alive, and for `mqtts://` the TLS files.
pub fn link_options_from_config(
    config: &Config,
    client_id: impl Into<String>,
) -> Result<LinkOptions, ConfigErrors> {
    let url = config.broker_url()?;
    let mut options = LinkOptions::from_broker_url(&url, client_id);
    (options.username, options.password) = config.mqtt_credentials()?;
    options.keep_alive = Duration::from_secs(config.mqtt.keep_alive_s.into());
    if let Some(files) = &mut options.tls {
        files.ca_file.clone_from(&config.mqtt.ca_file);
        files.client_cert.clone_from(&config.mqtt.client_cert);
        files.client_key.clone_from(&config.mqtt.client_key);
    }
    Ok(options)
}

/// The daemon's link: [`link_options_from_config`] plus its client id, the broker of
/// `options` if one is given, the `offline` will and the command subscriptions.
pub(super) fn daemon_link_options(
    config: &Config,
    options: &RunOptions,
    device_id: &str,
    topics: &Topics,
) -> Result<LinkOptions, ConfigErrors> {
    let client_id = if config.mqtt.client_id.is_empty() {
        format!("massaged-{device_id}")
    } else {
        config.mqtt.client_id.clone()
    };
    let mut link = link_options_from_config(config, client_id)?;
    if let Some((host, port)) = &options.broker_override {
        // The embedded broker listens in plain TCP on loopback.
        (link.host, link.port, link.tls) = (host.clone(), *port, None);
    }
    link.backoff_max = RECONNECT_BACKOFF_MAX;
    // Commands up to the limit reach us (and over it are answered `too_large`).
    link.max_payload_bytes = config.mqtt.max_payload_bytes;
    link.last_will = Some(LastWill {
        topic: topics.availability.clone(),
        payload: PAYLOAD_OFFLINE.into(),
        retain: true,
    });
    link.subscriptions = vec![topics.set.clone(), topics.ha_status.clone()];
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtts_url_carries_the_tls_files_and_credentials() {
        let mut config = Config::default();
        config.mqtt.url = "mqtts://broker.lan".into();
        config.mqtt.username = Some("ha".into());
        config.mqtt.password = Some("pw".into());
        config.mqtt.ca_file = Some("/etc/massaged/ca.pem".into());
        config.mqtt.keep_alive_s = 12;
        let options = link_options_from_config(&config, "me").expect("valid");
        assert_eq!((options.host.as_str(), options.port), ("broker.lan", 8883));
        assert_eq!(options.username.as_deref(), Some("ha"));
        assert_eq!(options.password.as_deref(), Some("pw"));
        assert_eq!(options.keep_alive, Duration::from_secs(12));
        let tls = options.tls.as_ref().expect("mqtts means TLS");
        assert_eq!(
            tls.ca_file.as_deref(),
            Some("/etc/massaged/ca.pem".as_ref())
        );
        assert!(!format!("{options:?}").contains("pw\""));
    }

    #[test]
    fn mqtt_url_is_plain_tcp_even_with_a_ca_file() {
        let mut config = Config::default();
        config.mqtt.ca_file = Some("/etc/massaged/ca.pem".into());
        let options = link_options_from_config(&config, "me").expect("valid");
        assert_eq!(options.port, 1883);
        assert_eq!(options.tls, None);
    }

    #[test]
    fn the_daemon_link_wills_offline_and_subscribes_to_its_commands() {
        let mut config = Config::default();
        config.mqtt.max_payload_bytes = 2048;
        let topics = Topics::new("massaged", "den-pi", "homeassistant");
        let link =
            daemon_link_options(&config, &RunOptions::default(), "den-pi", &topics).expect("valid");
        assert_eq!(link.client_id, "massaged-den-pi");
        assert_eq!(link.backoff_max, RECONNECT_BACKOFF_MAX);
        assert_eq!(link.max_payload_bytes, 2048);
        assert_eq!(
            link.last_will,
            Some(LastWill {
                topic: "massaged/den-pi/availability".into(),
                payload: PAYLOAD_OFFLINE.into(),
                retain: true,
            })
        );
        assert_eq!(
            link.subscriptions,
            ["massaged/den-pi/set", "homeassistant/status"]
        );
    }

    #[test]
    fn a_broker_override_is_plain_tcp_and_a_set_client_id_is_kept() {
        let mut config = Config::default();
        config.mqtt.url = "mqtts://broker.lan".into();
        config.mqtt.client_id = "headrest".into();
        let options = RunOptions {
            broker_override: Some(("127.0.0.1".into(), 18830)),
        };
        let topics = Topics::new("massaged", "den-pi", "homeassistant");
        let link = daemon_link_options(&config, &options, "den-pi", &topics).expect("valid");
        assert_eq!(link.client_id, "headrest");
        assert_eq!((link.host.as_str(), link.port), ("127.0.0.1", 18830));
        assert_eq!(link.tls, None);
    }
}

//! The link options for a configuration: the broker URL, credentials, keep-alive and TLS
//! files. Here, in the wiring, so neither `config` nor `mqtt` needs the other's types.

use crate::config::{Config, ConfigErrors};
use crate::mqtt::link::LinkOptions;
use std::time::Duration;

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
}

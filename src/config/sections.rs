//! The configuration file's sections as plain data, each with a default for every key.

use crate::core::Routine;
pub use crate::device::settings::{DriverKind, DriverSection, ZoneChannels};
pub use crate::device::{PwmSection, SerialSection};
pub use crate::logging::LogFormat;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Identity of the device.
    pub device: DeviceSection,
    /// Broker connection.
    pub mqtt: MqttSection,
    /// Home Assistant discovery.
    pub homeassistant: HomeAssistantSection,
    /// Output driver and channel map.
    pub driver: DriverSection,
    /// Frame rate and ramps.
    pub engine: EngineSection,
    /// Hard limits.
    pub safety: SafetySection,
    /// Relaxer guard.
    pub guard: GuardSection,
    /// Persisted state.
    pub(crate) store: StoreSection,
    /// Logging.
    pub log: LogSection,
    /// Who may connect to `run --embedded-broker`.
    pub embedded_broker: super::embedded_broker::EmbeddedBrokerSection,
    /// User routines, in the same format as the built-ins.
    pub routines: Vec<Routine>,
}

/// `[device]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSection {
    /// Topic-safe id (`[a-z0-9_-]`); empty means the host name made safe.
    pub id: String,
    /// Display name in Home Assistant.
    pub name: String,
}

impl Default for DeviceSection {
    fn default() -> Self {
        DeviceSection {
            id: String::new(),
            name: "Massage headrest".into(),
        }
    }
}

/// `[mqtt]`
///
/// `Debug` is written by hand so the password (and one embedded in the URL) never
/// reaches a log line or an error message.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttSection {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    /// Username, if the broker needs one.
    pub username: Option<String>,
    /// Password (prefer `password_file`).
    pub password: Option<String>,
    /// File holding the password (works with systemd `LoadCredential=`).
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) for `mqtts://`.
    pub(crate) ca_file: Option<PathBuf>,
    /// Client certificate (PEM).
    pub(crate) client_cert: Option<PathBuf>,
    /// Client key (PEM).
    pub(crate) client_key: Option<PathBuf>,
    /// MQTT client id; empty means `massaged-{device.id}`.
    pub(crate) client_id: String,
    /// Keep-alive in seconds.
    pub keep_alive_s: u16,
    /// First topic level.
    pub base_topic: String,
    /// Seconds between state updates while running.
    pub progress_interval_s: u32,
    /// Largest accepted command payload in bytes.
    pub(crate) max_payload_bytes: usize,
    /// Commands per second accepted on average (`stop` is never limited).
    pub(crate) rate_limit_per_s: u32,
    /// Commands accepted in a burst.
    pub(crate) rate_limit_burst: u32,
}

impl Default for MqttSection {
    fn default() -> Self {
        MqttSection {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            client_id: String::new(),
            keep_alive_s: 30,
            base_topic: "massaged".into(),
            progress_interval_s: 10,
            max_payload_bytes: 4096,
            rate_limit_per_s: 20,
            rate_limit_burst: 40,
        }
    }
}

/// Stands in for secrets in `Debug` output.
const REDACTED: &str = "<redacted>";

impl fmt::Debug for MqttSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be added without deciding here.
        let MqttSection {
            url,
            username,
            password,
            password_file,
            ca_file,
            client_cert,
            client_key,
            client_id,
            keep_alive_s,
            base_topic,
            progress_interval_s,
            max_payload_bytes,
            rate_limit_per_s,
            rate_limit_burst,
        } = self;
        f.debug_struct("MqttSection")
            .field("url", &crate::mqtt::url::redact_url(url))
            .field("username", username)
            .field("password", &password.as_ref().map(|_| Redacted))
            .field("password_file", password_file)
            .field("ca_file", ca_file)
            .field("client_cert", client_cert)
            .field("client_key", client_key)
            .field("client_id", client_id)
            .field("keep_alive_s", keep_alive_s)
            .field("base_topic", base_topic)
            .field("progress_interval_s", progress_interval_s)
            .field("max_payload_bytes", max_payload_bytes)
            .field("rate_limit_per_s", rate_limit_per_s)
            .field("rate_limit_burst", rate_limit_burst)
            .finish()
    }
}

impl MqttSection {
    #[cfg(test)]
    /// `url` with a password in it replaced by `<redacted>`, for messages and logs.
    pub(crate) fn url_for_display(&self) -> String {
        crate::mqtt::url::redact_url(&self.url)
    }
}

/// Prints as `<redacted>`, without quotes.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `[homeassistant]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeAssistantSection {
    /// Publish device discovery.
    pub enabled: bool,
    /// Discovery prefix.
    pub discovery_prefix: String,
    /// Manufacturer shown on the device page; empty leaves it out.
    pub(crate) manufacturer: String,
    /// Model shown on the device page; empty leaves it out.
    pub(crate) model: String,
    /// Serial number shown on the device page; empty leaves it out.
    pub(crate) serial_number: String,
}

impl Default for HomeAssistantSection {
    fn default() -> Self {
        HomeAssistantSection {
            enabled: true,
            discovery_prefix: "homeassistant".into(),
            manufacturer: String::new(),
            model: "Scalp massage headrest".into(),
            serial_number: String::new(),
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Frames per second while running.
    pub frame_hz: u32,
    /// Soft start, soft stop and intensity ramp, in milliseconds.
    pub ramp_ms: u32,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            frame_hz: 50,
            ramp_ms: 2000,
        }
    }
}

/// `[safety]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetySection {
    /// Longest session.
    pub max_session_minutes: u32,
    /// Longest continuous heat.
    pub max_heat_minutes: u32,
    /// Highest motor level, permille.
    pub max_level: u16,
    /// Heater level when on, permille.
    pub(crate) heat_level: u16,
}

impl Default for SafetySection {
    fn default() -> Self {
        SafetySection {
            max_session_minutes: 30,
            max_heat_minutes: 15,
            max_level: 1000,
            heat_level: 1000,
        }
    }
}

/// `[guard]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardSection {
    /// Days before the relaxer date on which starts are refused.
    pub days_before: u32,
}

impl Default for GuardSection {
    fn default() -> Self {
        GuardSection { days_before: 3 }
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StoreSection {
    /// Where settings and counters are saved.
    pub(crate) path: PathBuf,
    /// Delay that coalesces saves, in milliseconds.
    pub(crate) debounce_ms: u32,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: "/var/lib/massaged/state.json".into(),
            debounce_ms: 1000,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// Level filter (`RUST_LOG` syntax); `RUST_LOG` wins when set.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-very-secret";

    #[test]
    fn debug_output_never_shows_the_mqtt_password() {
        let config = Config {
            mqtt: MqttSection {
                url: format!("mqtts://massaged:{SECRET}@broker.lan:8883/"),
                username: Some("massaged".into()),
                password: Some(SECRET.into()),
                ..MqttSection::default()
            },
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains(SECRET), "password leaked: {text}");
        assert!(text.contains("password: Some(<redacted>)"), "{text}");
        assert!(
            text.contains("mqtts://massaged:***@broker.lan:8883/"),
            "{text}"
        );
        assert!(text.contains("username: Some(\"massaged\")"), "{text}");
        let pretty = format!("{config:#?}");
        assert!(!pretty.contains(SECRET), "password leaked: {pretty}");
        assert!(pretty.contains("<redacted>"), "{pretty}");
    }

    #[test]
    fn debug_output_says_when_there_is_no_password() {
        let text = format!("{:?}", MqttSection::default());
        assert!(text.contains("password: None"), "{text}");
        assert!(text.contains("url: \"mqtt://127.0.0.1:1883\""), "{text}");
    }

    #[test]
    fn url_for_display_hides_the_password() {
        let section = MqttSection {
            url: format!("mqtt://u:{SECRET}@broker:1883"),
            ..MqttSection::default()
        };
        assert_eq!(section.url_for_display(), "mqtt://u:***@broker:1883");
    }
}

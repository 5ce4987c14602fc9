//! Turning a validated configuration into what the core and the shells need.

use super::builtin::builtin_routines;
use super::device_id::{read_hostname, resolve_device_id};
use super::error::{ConfigErrors, ConfigIssue};
use super::sections::Config;
use crate::core::routine::validate_library;
use crate::core::{ChannelMap, EngineConfig, Routine};
use crate::mqtt::url::BrokerUrl;
use std::time::Duration;

impl Config {
    /// The device id: `device.id`, else the host name made safe, else `massaged`.
    pub fn device_id(&self) -> String {
        let hostname = if self.device.id.is_empty() {
            read_hostname()
        } else {
            None
        };
        resolve_device_id(&self.device.id, hostname.as_deref())
    }

    /// The engine's settings: frame rate, ramps, caps, guard and channel map.
    pub fn engine_config(&self) -> Result<EngineConfig, ConfigErrors> {
        let channels = &self.driver.channels;
        let slots = |list: &[u16]| list.iter().map(|&slot| usize::from(slot)).collect();
        let zones = [
            slots(&channels.temples),
            slots(&channels.hairline),
            slots(&channels.crown),
            slots(&channels.ears),
            slots(&channels.neck),
        ];
        let heat = self.driver.heat_channel.map(usize::from);
        let channels = ChannelMap::new(zones, heat).map_err(|error| {
            ConfigErrors::new(vec![ConfigIssue::at_key(
                "driver.channels",
                error.to_string(),
            )])
        })?;
        Ok(EngineConfig {
            frame_hz: self.engine.frame_hz,
            ramp: Duration::from_millis(self.engine.ramp_ms.into()),
            max_level: self.safety.max_level,
            heat_level: self.safety.heat_level,
            max_session_minutes: self.safety.max_session_minutes,
            max_heat: Duration::from_secs(u64::from(self.safety.max_heat_minutes) * 60),
            guard_days_before: self.guard.days_before,
            progress_interval: Duration::from_secs(self.mqtt.progress_interval_s.into()),
            channels,
        })
    }

    /// The routine library: the built-ins, then the user's routines.
    pub fn routine_library(&self) -> Result<Vec<Routine>, ConfigErrors> {
        let mut routines = builtin_routines();
        routines.extend(self.routines.iter().cloned());
        validate_library(&routines).map_err(|error| {
            ConfigErrors::new(vec![ConfigIssue::at_key("routines", error.to_string())])
        })?;
        Ok(routines)
    }

    /// The parsed `mqtt.url`.
    pub(crate) fn broker_url(&self) -> Result<BrokerUrl, ConfigErrors> {
        BrokerUrl::parse(&self.mqtt.url)
            .map_err(|error| ConfigErrors::new(vec![ConfigIssue::at_key("mqtt.url", error)]))
    }

    /// Broker user name and password: `mqtt.username` and `mqtt.password` or the first line of
    /// `mqtt.password_file`, else the ones written in `mqtt.url`.
    pub(crate) fn mqtt_credentials(
        &self,
    ) -> Result<(Option<String>, Option<String>), ConfigErrors> {
        let url = self.broker_url()?;
        let password = match (&self.mqtt.password, &self.mqtt.password_file) {
            (Some(password), _) => Some(password.clone()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|error| {
                    ConfigErrors::new(vec![ConfigIssue::at_key(
                        "mqtt.password_file",
                        format!("cannot read {}: {error}", file.display()),
                    )])
                })?;
                Some(text.lines().next().unwrap_or_default().to_string())
            }
            (None, None) => url.password,
        };
        let username = self.mqtt.username.clone().or(url.username);
        Ok((username, password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Zone;

    #[test]
    fn default_engine_config_matches_the_core_default() {
        let engine = Config::default().engine_config().expect("defaults convert");
        assert_eq!(engine, EngineConfig::default());
    }

    #[test]
    fn engine_config_carries_every_setting() {
        let mut config = Config::default();
        config.engine.frame_hz = 25;
        config.engine.ramp_ms = 500;
        config.safety.max_level = 700;
        config.safety.heat_level = 300;
        config.safety.max_session_minutes = 20;
        config.safety.max_heat_minutes = 5;
        config.guard.days_before = 7;
        config.mqtt.progress_interval_s = 3;
        config.driver.channels.neck = vec![12];
        config.driver.heat_channel = None;
        let engine = config.engine_config().expect("converts");
        assert_eq!(engine.frame_hz, 25);
        assert_eq!(engine.ramp, Duration::from_millis(500));
        assert_eq!((engine.max_level, engine.heat_level), (700, 300));
        assert_eq!(engine.max_session_minutes, 20);
        assert_eq!(engine.max_heat, Duration::from_secs(300));
        assert_eq!(engine.guard_days_before, 7);
        assert_eq!(engine.progress_interval, Duration::from_secs(3));
        assert_eq!(engine.channels.zone(Zone::Neck), &[12]);
        assert_eq!(engine.channels.heat(), None);
        assert_eq!(engine.channels.count(), 13);
    }

    #[test]
    fn routine_library_puts_builtins_first() {
        let mut config = Config::default();
        let mut mine = builtin_routines()[0].clone();
        mine.id = "my-temples".into();
        mine.name = "My temples".into();
        config.routines.push(mine);
        let library = config.routine_library().expect("valid");
        assert_eq!(library.len(), builtin_routines().len() + 1);
        assert_eq!(library[0].id, builtin_routines()[0].id);
        assert_eq!(library.last().map(|r| r.id.as_str()), Some("my-temples"));
    }

    #[test]
    fn configured_device_id_is_used_as_is() {
        let mut config = Config::default();
        config.device.id = "chair-1".into();
        assert_eq!(config.device_id(), "chair-1");
        config.device.id = String::new();
        let id = config.device_id();
        assert!(super::super::device_id::is_valid_device_id(&id), "{id}");
    }
}

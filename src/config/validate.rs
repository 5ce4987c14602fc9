//! Rules a loaded configuration must satisfy; every broken rule is reported with its key.

use super::builtin::builtin_routines;
use super::device_id::is_valid_device_id;
use super::error::ConfigIssue;
use super::sections::Config;
use crate::core::Routine;
use crate::core::limits;
use crate::core::routine::{RoutineError, validate_library};
use crate::device::DeviceError;
use crate::mqtt::url::BrokerUrl;
use std::fmt::Display;
use std::ops::RangeInclusive;

/// Highest frame slot a channel may use; keeps frames small.
pub const MAX_CHANNEL_SLOT: u16 = 255;

impl Config {
    /// Checks every rule; the error lists all broken ones, each naming its key.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), super::error::ConfigErrors> {
        let issues = self.issues();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(super::error::ConfigErrors::new(issues))
        }
    }

    /// Every broken rule, in section order.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        self.check_device(&mut issues);
        self.check_mqtt(&mut issues);
        check_topic(
            &mut issues,
            "homeassistant.discovery_prefix",
            &self.homeassistant.discovery_prefix,
        );
        check_device_info(&mut issues, &self.homeassistant);
        self.check_driver(&mut issues);
        self.check_engine_and_safety(&mut issues);
        check_routines(&mut issues, &builtin_routines(), &self.routines);
        issues.extend(self.embedded_broker.issues());
        issues
    }

    fn check_device(&self, issues: &mut Vec<ConfigIssue>) {
        let id = &self.device.id;
        if !id.is_empty() && !is_valid_device_id(id) {
            issues.push(ConfigIssue::at_key(
                "device.id",
                format!(
                    "'{id}' may contain only a-z, 0-9, '_' and '-' (or be empty for the host name)"
                ),
            ));
        }
        if self.device.name.trim().is_empty() {
            issues.push(ConfigIssue::at_key("device.name", "must not be empty"));
        }
    }

    fn check_mqtt(&self, issues: &mut Vec<ConfigIssue>) {
        let mqtt = &self.mqtt;
        if let Err(problem) = BrokerUrl::parse(&mqtt.url) {
            issues.push(ConfigIssue::at_key("mqtt.url", problem));
        }
        if mqtt.password.is_some() && mqtt.password_file.is_some() {
            issues.push(ConfigIssue::at_key(
                "mqtt.password_file",
                "set either password or password_file, not both",
            ));
        }
        match (&mqtt.client_cert, &mqtt.client_key) {
            (Some(_), None) => issues.push(ConfigIssue::at_key(
                "mqtt.client_key",
                "client_cert is set, so client_key must be set too",
            )),
            (None, Some(_)) => issues.push(ConfigIssue::at_key(
                "mqtt.client_cert",
                "client_key is set, so client_cert must be set too",
            )),
            _ => {}
        }
        check_range(issues, "mqtt.keep_alive_s", mqtt.keep_alive_s, 5..=3600);
        check_topic(issues, "mqtt.base_topic", &mqtt.base_topic);
        check_range(
            issues,
            "mqtt.progress_interval_s",
            mqtt.progress_interval_s,
            1..=3600,
        );
        check_range(
            issues,
            "mqtt.max_payload_bytes",
            mqtt.max_payload_bytes,
            64..=1 << 20,
        );
        check_range(
            issues,
            "mqtt.rate_limit_per_s",
            mqtt.rate_limit_per_s,
            1..=u32::MAX,
        );
        check_range(
            issues,
            "mqtt.rate_limit_burst",
            mqtt.rate_limit_burst,
            1..=u32::MAX,
        );
    }

    fn check_driver(&self, issues: &mut Vec<ConfigIssue>) {
        let driver = &self.driver;
        let channels = &driver.channels;
        let zones: [(&str, &[u16]); 5] = [
            ("temples", &channels.temples),
            ("hairline", &channels.hairline),
            ("crown", &channels.crown),
            ("ears", &channels.ears),
            ("neck", &channels.neck),
        ];
        let mut owners: Vec<(u16, String)> = Vec::new();
        for (zone, slots) in zones {
            let key = format!("driver.channels.{zone}");
            for &slot in slots {
                claim_slot(issues, &mut owners, slot, &key);
            }
        }
        if owners.is_empty() {
            issues.push(ConfigIssue::at_key(
                "driver.channels",
                "no zone has a motor channel; give at least one zone a slot",
            ));
        }
        if let Some(heat) = driver.heat_channel {
            claim_slot(issues, &mut owners, heat, "driver.heat_channel");
        }
        for problem in driver
            .pwm
            .problems()
            .into_iter()
            .chain(driver.serial.problems())
        {
            if let DeviceError::Config { key, problem } = problem {
                issues.push(ConfigIssue::at_key(key, problem));
            }
        }
    }

    fn check_engine_and_safety(&self, issues: &mut Vec<ConfigIssue>) {
        // The core owns these ranges; the engine checks the same ones.
        let engine = &self.engine;
        check_range(issues, "engine.frame_hz", engine.frame_hz, limits::FRAME_HZ);
        check_range(issues, "engine.ramp_ms", engine.ramp_ms, limits::RAMP_MS);
        let safety = &self.safety;
        check_range(
            issues,
            "safety.max_session_minutes",
            safety.max_session_minutes,
            limits::MAX_SESSION_MINUTES,
        );
        check_range(
            issues,
            "safety.max_heat_minutes",
            safety.max_heat_minutes,
            limits::MAX_HEAT_MINUTES,
        );
        check_range(issues, "safety.max_level", safety.max_level, limits::LEVEL);
        check_range(
            issues,
            "safety.heat_level",
            safety.heat_level,
            limits::LEVEL,
        );
        let days = self.guard.days_before;
        check_range(issues, "guard.days_before", days, limits::GUARD_DAYS_BEFORE);
        if self.store.path.as_os_str().is_empty() {
            issues.push(ConfigIssue::at_key("store.path", "must not be empty"));
        }
        check_range(
            issues,
            "store.debounce_ms",
            self.store.debounce_ms,
            0..=60_000,
        );
    }
}

/// Longest manufacturer, model or serial number shown on Home Assistant's device page.
const MAX_DEVICE_INFO_CHARS: usize = 64;

/// `[homeassistant]` manufacturer, model and serial number: short single-line text or empty.
fn check_device_info(issues: &mut Vec<ConfigIssue>, ha: &super::sections::HomeAssistantSection) {
    for (key, value) in [
        ("homeassistant.manufacturer", &ha.manufacturer),
        ("homeassistant.model", &ha.model),
        ("homeassistant.serial_number", &ha.serial_number),
    ] {
        let chars = value.chars().count();
        if chars > MAX_DEVICE_INFO_CHARS {
            issues.push(ConfigIssue::at_key(
                key,
                format!("is {chars} characters long; at most {MAX_DEVICE_INFO_CHARS}"),
            ));
        } else if value.chars().any(char::is_control) {
            issues.push(ConfigIssue::at_key(
                key,
                "must be one line without control characters",
            ));
        } else if !value.is_empty() && value.trim() != value {
            issues.push(ConfigIssue::at_key(
                key,
                "must not start or end with spaces",
            ));
        }
    }
}

fn check_range<T: PartialOrd + Display>(
    issues: &mut Vec<ConfigIssue>,
    key: &str,
    value: T,
    range: RangeInclusive<T>,
) {
    if let Some(problem) = limits::out_of_range(value, &range) {
        issues.push(ConfigIssue::at_key(key, problem));
    }
}

fn check_topic(issues: &mut Vec<ConfigIssue>, key: &str, topic: &str) {
    let problem = if topic.is_empty() {
        Some("must not be empty".to_owned())
    } else if topic.contains(['+', '#']) {
        Some(format!(
            "'{topic}' must not contain the wildcards '+' or '#'"
        ))
    } else if topic.ends_with('/') {
        Some(format!("'{topic}' must not end with '/'"))
    } else if topic.contains('\0') {
        Some("must not contain a NUL character".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        issues.push(ConfigIssue::at_key(key, problem));
    }
}

fn claim_slot(
    issues: &mut Vec<ConfigIssue>,
    owners: &mut Vec<(u16, String)>,
    slot: u16,
    key: &str,
) {
    if slot > MAX_CHANNEL_SLOT {
        issues.push(ConfigIssue::at_key(
            key,
            format!("channel {slot} is out of range 0..={MAX_CHANNEL_SLOT}"),
        ));
        return;
    }
    match owners.iter().find(|(used, _)| *used == slot) {
        Some((_, owner)) if owner == key => issues.push(ConfigIssue::at_key(
            key,
            format!("channel {slot} is listed twice"),
        )),
        Some((_, owner)) => issues.push(ConfigIssue::at_key(
            key,
            format!("channel {slot} is already used by {owner}"),
        )),
        None => owners.push((slot, key.to_owned())),
    }
}

/// Checks user routines on their own and against the built-ins (ids and names must not clash).
fn check_routines(issues: &mut Vec<ConfigIssue>, builtins: &[Routine], user: &[Routine]) {
    let before = issues.len();
    for (i, routine) in user.iter().enumerate() {
        let key = format!("routines[{i}]");
        if let Err(error) = routine.validate() {
            issues.push(ConfigIssue::at_key(
                routine_error_key(&key, &error),
                error.to_string(),
            ));
        }
        if builtins.iter().any(|b| b.id == routine.id) {
            issues.push(ConfigIssue::at_key(
                format!("{key}.id"),
                format!(
                    "routine id '{}' is already used by a built-in routine",
                    routine.id
                ),
            ));
        } else if let Some(j) = user[..i].iter().position(|r| r.id == routine.id) {
            issues.push(ConfigIssue::at_key(
                format!("{key}.id"),
                format!("duplicate routine id '{}' (also routines[{j}])", routine.id),
            ));
        }
        if builtins
            .iter()
            .any(|b| b.name.eq_ignore_ascii_case(&routine.name))
        {
            issues.push(ConfigIssue::at_key(
                format!("{key}.name"),
                format!(
                    "routine '{}': name '{}' is already used by a built-in routine",
                    routine.id, routine.name
                ),
            ));
        } else if let Some(j) = user[..i]
            .iter()
            .position(|r| r.name.eq_ignore_ascii_case(&routine.name))
        {
            issues.push(ConfigIssue::at_key(
                format!("{key}.name"),
                format!(
                    "routine '{}': duplicate routine name '{}' (also routines[{j}])",
                    routine.id, routine.name
                ),
            ));
        }
    }
    // The core's own library check is the final word; it only adds something if the
    // checks above missed a rule it enforces.
    if issues.len() == before {
        let all: Vec<Routine> = builtins.iter().chain(user).cloned().collect();
        if let Err(error) = validate_library(&all) {
            issues.push(ConfigIssue::at_key("routines", error.to_string()));
        }
    }
}

/// The key a routine error is about, e.g. `routines[2].steps[0].seconds`.
fn routine_error_key(prefix: &str, error: &RoutineError) -> String {
    match error {
        RoutineError::BadId(_) | RoutineError::DuplicateId(_) => format!("{prefix}.id"),
        RoutineError::EmptyName(_) | RoutineError::DuplicateName(_) => format!("{prefix}.name"),
        RoutineError::NoSteps(_) | RoutineError::TooManySteps { .. } => format!("{prefix}.steps"),
        RoutineError::BadStep { index, problem, .. } => {
            // The core phrases every step problem starting with the field's name.
            let word = problem.split([' ', '\'']).next().unwrap_or_default();
            let field = match word {
                "zone" => "zones",
                "label" | "zones" | "seconds" | "intensity" | "tempo" => word,
                _ => return format!("{prefix}.steps[{index}]"),
            };
            format!("{prefix}.steps[{index}].{field}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Step, Technique, Zone};

    fn step(seconds: u32) -> Step {
        Step {
            label: "Circles".into(),
            zones: vec![Zone::Crown],
            technique: Technique::Circles,
            seconds,
            intensity: 50,
            tempo: 30,
        }
    }

    fn routine(id: &str, name: &str, steps: Vec<Step>) -> Routine {
        Routine {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            steps,
        }
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults validate");
    }

    #[test]
    fn reports_every_broken_rule_with_its_key() {
        let mut config = Config::default();
        config.mqtt.url = "http://broker".into();
        config.mqtt.base_topic = "a/#".into();
        config.homeassistant.discovery_prefix = "homeassistant/".into();
        config.device.id = "Living Room".into();
        config.engine.frame_hz = 0;
        config.engine.ramp_ms = 60_001;
        config.safety.max_session_minutes = 241;
        config.safety.max_heat_minutes = 0;
        config.safety.max_level = 5000;
        config.safety.heat_level = 1001;
        config.mqtt.keep_alive_s = 4;
        config.mqtt.rate_limit_per_s = 0;
        config.mqtt.rate_limit_burst = 0;
        config.mqtt.password = Some("x".into());
        config.mqtt.password_file = Some("/run/pw".into());
        config.mqtt.client_cert = Some("/c.pem".into());
        config.driver.pwm.frequency_hz = 1_000_001;
        config.driver.serial.baud = 0;
        config.driver.serial.heartbeat_ms = 1000;
        let errors = config.validate().expect_err("invalid");
        for key in [
            "mqtt.url",
            "mqtt.base_topic",
            "homeassistant.discovery_prefix",
            "device.id",
            "engine.frame_hz",
            "engine.ramp_ms",
            "safety.max_session_minutes",
            "safety.max_heat_minutes",
            "safety.max_level",
            "safety.heat_level",
            "mqtt.keep_alive_s",
            "mqtt.rate_limit_per_s",
            "mqtt.rate_limit_burst",
            "mqtt.password_file",
            "mqtt.client_key",
            "driver.pwm.frequency_hz",
            "driver.serial.baud",
            "driver.serial.heartbeat_timeout_ms",
        ] {
            assert!(errors.mentions(key), "no error for {key}: {errors}");
        }
        assert_eq!(errors.issues.len(), 18, "{errors}");
    }

    #[test]
    fn channel_rules() {
        let mut config = Config::default();
        config.driver.channels.crown = vec![0, 4];
        config.driver.channels.neck = vec![8, 8];
        config.driver.heat_channel = Some(2);
        let errors = config.validate().expect_err("invalid");
        let messages: Vec<String> = errors.issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "driver.channels.crown: channel 0 is already used by driver.channels.temples",
                "driver.channels.neck: channel 8 is listed twice",
                "driver.heat_channel: channel 2 is already used by driver.channels.hairline",
            ]
        );

        let mut config = Config::default();
        config.driver.channels = crate::config::ZoneChannels {
            temples: vec![],
            hairline: vec![],
            crown: vec![],
            ears: vec![],
            neck: vec![],
        };
        assert!(
            config
                .validate()
                .expect_err("no motors")
                .mentions("driver.channels")
        );
    }

    #[test]
    fn user_routine_problems_name_the_routine_key() {
        let builtins = builtin_routines();
        let user = vec![
            routine("my-neck", "My neck", vec![step(60), step(0)]),
            routine("full-scalp", "Mine", vec![step(60)]),
            routine("my-neck", "Other", vec![step(60)]),
            routine("Bad Id", "Stress Relief", vec![step(60)]),
        ];
        let mut issues = Vec::new();
        check_routines(&mut issues, &builtins, &user);
        let keys: Vec<&str> = issues.iter().filter_map(|i| i.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                "routines[0].steps[1].seconds",
                "routines[1].id",
                "routines[2].id",
                "routines[3].id",
                "routines[3].name",
            ]
        );
        assert!(issues[0].message.contains("my-neck"), "{}", issues[0]);
        assert!(issues[1].message.contains("built-in"), "{}", issues[1]);
    }

    #[test]
    fn pwm_outputs_must_be_chip_colon_channel() {
        use crate::device::parse_pwm_output;
        assert_eq!(parse_pwm_output("0:3"), Some((0, 3)));
        assert_eq!(parse_pwm_output("3"), None);
        assert_eq!(parse_pwm_output("a:b"), None);
        let mut config = Config::default();
        config.driver.pwm.outputs = vec!["0:1".into(), "oops".into()];
        assert!(
            config
                .validate()
                .expect_err("bad")
                .mentions("driver.pwm.outputs[1]")
        );
    }

    #[test]
    fn device_info_must_be_short_single_line_text() {
        let mut config = Config::default();
        config.homeassistant.manufacturer = "Acme\nChairs".into();
        config.homeassistant.model = "m".repeat(65);
        config.homeassistant.serial_number = " SN-1".into();
        let keys: Vec<String> = config.issues().iter().map(|i| i.to_string()).collect();
        let text = keys.join("\n");
        assert!(text.contains("homeassistant.manufacturer"), "{text}");
        assert!(text.contains("homeassistant.model"), "{text}");
        assert!(text.contains("homeassistant.serial_number"), "{text}");
        config.homeassistant.manufacturer = "Acme Chairs".into();
        config.homeassistant.model = String::new();
        config.homeassistant.serial_number = "SN-1".into();
        assert!(config.issues().is_empty());
    }
}

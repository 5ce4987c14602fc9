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
        let (id, name) = (&routine.id, &routine.name);
        let earlier = &user[..i];
        if let Some(taken) = taken(builtins, earlier, |r| r.id == *id) {
            issues.push(taken.issue(
                format!("{key}.id"),
                &format!("routine id '{id}'"),
                &format!("duplicate routine id '{id}'"),
            ));
        }
        if let Some(taken) = taken(builtins, earlier, |r| r.name.eq_ignore_ascii_case(name)) {
            issues.push(taken.issue(
                format!("{key}.name"),
                &format!("routine '{id}': name '{name}'"),
                &format!("routine '{id}': duplicate routine name '{name}'"),
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

/// What already uses a user routine's id or name.
enum Taken {
    /// A built-in routine.
    Builtin,
    /// The user routine at this index, before the one checked.
    Earlier(usize),
}

impl Taken {
    /// The issue at `key`: "`subject` is already used by a built-in routine", or
    /// "`duplicate` (also routines[j])".
    fn issue(self, key: String, subject: &str, duplicate: &str) -> ConfigIssue {
        let message = match self {
            Taken::Builtin => format!("{subject} is already used by a built-in routine"),
            Taken::Earlier(j) => format!("{duplicate} (also routines[{j}])"),
        };
        ConfigIssue::at_key(key, message)
    }
}

/// The first routine, built-ins before `earlier` user routines, for which `same` holds.
fn taken(
    builtins: &[Routine],
    earlier: &[Routine],
    same: impl Fn(&Routine) -> bool,
) -> Option<Taken> {
    if builtins.iter().any(&same) {
        Some(Taken::Builtin)
    } else {
        earlier.iter().position(same).map(Taken::Earlier)
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
        // Each key and the change that breaks its rule; all are applied to one config.
        type Break = (&'static str, fn(&mut Config));
        let breaks: [Break; 18] = [
            ("mqtt.url", |c| c.mqtt.url = "http://broker".into()),
            ("mqtt.base_topic", |c| c.mqtt.base_topic = "a/#".into()),
            ("homeassistant.discovery_prefix", |c| {
                c.homeassistant.discovery_prefix = "homeassistant/".into()
            }),
            ("device.id", |c| c.device.id = "Living Room".into()),
            ("engine.frame_hz", |c| c.engine.frame_hz = 0),
            ("engine.ramp_ms", |c| c.engine.ramp_ms = 60_001),
            ("safety.max_session_minutes", |c| {
                c.safety.max_session_minutes = 241
            }),
            ("safety.max_heat_minutes", |c| c.safety.max_heat_minutes = 0),
            ("safety.max_level", |c| c.safety.max_level = 5000),
            ("safety.heat_level", |c| c.safety.heat_level = 1001),
            ("mqtt.keep_alive_s", |c| c.mqtt.keep_alive_s = 4),
            ("mqtt.rate_limit_per_s", |c| c.mqtt.rate_limit_per_s = 0),
            ("mqtt.rate_limit_burst", |c| c.mqtt.rate_limit_burst = 0),
            ("mqtt.password_file", |c| {
                c.mqtt.password = Some("x".into());
                c.mqtt.password_file = Some("/run/pw".into());
            }),
            ("mqtt.client_key", |c| {
                c.mqtt.client_cert = Some("/c.pem".into())
            }),
            ("driver.pwm.frequency_hz", |c| {
                c.driver.pwm.frequency_hz = 1_000_001
            }),
            ("driver.serial.baud", |c| c.driver.serial.baud = 0),
            ("driver.serial.heartbeat_timeout_ms", |c| {
                c.driver.serial.heartbeat_ms = 1000
            }),
        ];
        let mut config = Config::default();
        for (_, break_rule) in &breaks {
            break_rule(&mut config);
        }
        let errors = config.validate().expect_err("invalid");
        for (key, _) in &breaks {
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

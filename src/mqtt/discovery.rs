//! Home Assistant MQTT device discovery: one retained payload on
//! `{discovery_prefix}/device/{device_id}/config` describing the device and all its entities.
//!
//! Key names follow Home Assistant's MQTT discovery schemas. Its discovery schemas silently drop
//! unknown keys, so a misspelt key shows no error: the tests pin every key.

use super::topics::{PAYLOAD_OFFLINE, PAYLOAD_ONLINE, Topics};
use crate::core::{Action, EventKind, SessionState, limits};
use serde_json::{Map, Value, json};

use super::routine_image::CONTENT_TYPE;

/// Origin name shown in Home Assistant (the software that publishes the device).
pub(crate) const ORIGIN_NAME: &str = "massaged";
/// Default model shown on Home Assistant's device page.
pub(crate) const MODEL: &str = "Scalp massage headrest";

/// What the discovery payload needs to know about the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryInfo {
    /// Topic-safe device id; also the prefix of every `unique_id`.
    pub(crate) device_id: String,
    /// Display name of the device (entity names never repeat it).
    pub(crate) device_name: String,
    /// The device's topics.
    pub(crate) topics: Topics,
    /// Display names of the routines, in menu order: the routine select's options.
    pub(crate) routine_names: Vec<String>,
    /// Upper bound of the minutes number.
    pub(crate) max_session_minutes: u32,
    /// Software version reported for the device and the origin.
    pub(crate) sw_version: String,
    /// Optional `http(s)://` support page shown with the origin.
    pub(crate) support_url: Option<String>,
    /// Manufacturer on the device page; empty leaves it out.
    pub(crate) manufacturer: String,
    /// Model on the device page; empty leaves it out.
    pub(crate) model: String,
    /// Serial number on the device page; empty leaves it out.
    pub(crate) serial_number: String,
}

impl DiscoveryInfo {
    /// Discovery info reporting this crate's version.
    pub fn new(
        device_id: &str,
        device_name: &str,
        topics: Topics,
        routine_names: Vec<String>,
        max_session_minutes: u32,
    ) -> DiscoveryInfo {
        DiscoveryInfo {
            device_id: device_id.to_owned(),
            device_name: device_name.to_owned(),
            topics,
            routine_names,
            max_session_minutes,
            sw_version: env!("CARGO_PKG_VERSION").to_owned(),
            support_url: None,
            manufacturer: String::new(),
            model: MODEL.to_owned(),
            serial_number: String::new(),
        }
    }
}

#[cfg(test)]
/// Component keys, in the order of the contract's entity table.
pub(crate) const COMPONENT_KEYS: [&str; 24] = [
    "routine",
    "intensity",
    "minutes",
    "heat",
    "start",
    "stop",
    "pause",
    "resume",
    "skip",
    "state",
    "ends_at",
    "step",
    "running",
    "problem",
    "sessions_total",
    "massage_time_total",
    "relaxer_date",
    "session",
    "remaining",
    "progress",
    "guard",
    "start_anyway",
    "last_message",
    "picture",
];

/// Text entity pattern: a `YYYY-MM-DD` date or nothing (clears the date).
const RELAXER_DATE_PATTERN: &str = r"^(\d{4}-\d{2}-\d{2})?$";

/// Home Assistant's MQTT sensor, step and binary sensor read the payload `None` as "unknown";
/// an empty string would instead be an invalid timestamp.
const UNKNOWN: &str = "None";

/// The "Last message" sensor's state when no refusal is pending.
const NO_MESSAGE: &str = "OK";

/// Home Assistant's entity-id slug of an ASCII name: lower case, runs of anything else as
/// one `_`, none at the ends ("Massage headrest" -> "massage_headrest").
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_end_matches('_');
    if trimmed.is_empty() {
        "massaged".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The state sensor shows these words; the state JSON keeps the wire names.
fn human_state(state: SessionState) -> &'static str {
    match state {
        SessionState::Idle => "Idle",
        SessionState::Running => "Running",
        SessionState::Paused => "Paused",
        SessionState::Fault => "Fault",
    }
}

/// Maps the wire state to `human_state`, e.g. `{{ {'idle': 'Idle', ...}[value_json.state] }}`.
fn state_template() -> String {
    let pairs: Vec<String> = SessionState::ALL
        .iter()
        .map(|s| format!("'{}': '{}'", s.as_str(), human_state(*s)))
        .collect();
    format!(
        "{{{{ {{{}}}.get(value_json.state, value_json.state) }}}}",
        pairs.join(", ")
    )
}

/// The retained device discovery payload (JSON text).
pub fn discovery_payload(info: &DiscoveryInfo) -> String {
    discovery_value(info).to_string()
}

/// The device discovery payload as a JSON value.
pub(crate) fn discovery_value(info: &DiscoveryInfo) -> Value {
    let topics = &info.topics;
    let mut components = Components {
        device_id: &info.device_id,
        cmps: Map::new(),
    };
    for group in [controls, buttons, session, diagnostics] {
        group(&mut components, info);
    }
    let cmps = components.cmps;
    let mut origin = json!({
        "name": ORIGIN_NAME,
        "sw": info.sw_version,
    });
    if let Some(url) = &info.support_url {
        origin["url"] = url.as_str().into();
    }
    let mut device = json!({
        "ids": [info.device_id],
        "name": info.device_name,
        "sw": format!("{ORIGIN_NAME} {}", info.sw_version),
    });
    for (key, value) in [
        ("mf", &info.manufacturer),
        ("mdl", &info.model),
        ("sn", &info.serial_number),
    ] {
        if !value.is_empty() {
            device[key] = value.as_str().into();
        }
    }
    json!({
        "dev": device,
        "o": origin,
        "availability_topic": topics.availability,
        "payload_available": PAYLOAD_ONLINE,
        "payload_not_available": PAYLOAD_OFFLINE,
        "qos": 1,
        "cmps": cmps,
    })
}

/// The components of the device discovery payload, keyed as Home Assistant reads them.
struct Components<'a> {
    device_id: &'a str,
    cmps: Map<String, Value>,
}

impl Components<'_> {
    /// Adds component `key` on `platform` with its common fields and the `extra` ones.
    fn add(&mut self, key: &str, platform: &str, name: &str, icon: &str, extra: Value) {
        let mut component = Map::new();
        component.insert("p".into(), platform.into());
        component.insert("name".into(), name.into());
        component.insert(
            "unique_id".into(),
            format!("{}_{key}", self.device_id).into(),
        );
        component.insert("icon".into(), icon.into());
        if let Value::Object(extra) = extra {
            component.extend(extra);
        }
        self.cmps.insert(key.to_owned(), Value::Object(component));
    }
}

/// What the user sets: routine, intensity, minutes, heat and the relaxer date.
fn controls(c: &mut Components<'_>, info: &DiscoveryInfo) {
    let topics = &info.topics;
    // The numbers offer what a command may set: the ranges' one owner is `core::limits`.
    let minutes = limits::session_minutes(info.max_session_minutes.max(1));
    c.add(
        "routine",
        "select",
        "Routine",
        "mdi:format-list-bulleted",
        json!({
            "options": info.routine_names,
            "command_topic": topics.set,
            "command_template": "{{ {'routine': value} | tojson }}",
            "state_topic": topics.state,
            "value_template": "{{ value_json.routine_name }}",
        }),
    );
    c.add(
        "intensity",
        "number",
        "Intensity",
        "mdi:gauge",
        json!({
            "min": limits::INTENSITY.start(),
            "max": limits::INTENSITY.end(),
            "step": 1,
            "mode": "slider",
            "unit_of_measurement": "%",
            "command_topic": topics.set,
            "command_template": "{\"intensity\": {{ value | int }}}",
            "state_topic": topics.state,
            "value_template": "{{ value_json.intensity }}",
        }),
    );
    c.add(
        "minutes",
        "number",
        "Minutes",
        "mdi:timer-outline",
        json!({
            "min": minutes.start(),
            "max": minutes.end(),
            "step": 1,
            "mode": "box",
            "unit_of_measurement": "min",
            "command_topic": topics.set,
            "command_template": "{\"minutes\": {{ value | int }}}",
            "state_topic": topics.state,
            "value_template": "{{ value_json.minutes }}",
        }),
    );
    c.add(
        "heat",
        "switch",
        "Heat",
        "mdi:heat-wave",
        json!({
            "command_topic": topics.set,
            "payload_on": "{\"heat\": true}",
            "payload_off": "{\"heat\": false}",
            "state_topic": topics.state,
            "value_template": "{{ 'ON' if value_json.heat else 'OFF' }}",
            "state_on": "ON",
            "state_off": "OFF",
        }),
    );
    c.add(
        "relaxer_date",
        "text",
        "Relaxer date (YYYY-MM-DD)",
        "mdi:calendar-alert",
        json!({
            "entity_category": "config",
            "mode": "text",
            "min": 0,
            "max": 10,
            "pattern": RELAXER_DATE_PATTERN,
            // The name carries the format; the entity id stays `text.<device>_relaxer_date`.
            "default_entity_id": format!("text.{}_relaxer_date", slug(&info.device_name)),
            "command_topic": topics.set,
            "command_template": "{{ {'relaxer_date': value} | tojson }}",
            "state_topic": topics.state,
            // The text entity refuses states that miss the pattern, so null must become "".
            "value_template": "{{ value_json.relaxer_date or '' }}",
        }),
    );
}

/// The action buttons, and "Start anyway" past the relaxer guard.
fn buttons(c: &mut Components<'_>, info: &DiscoveryInfo) {
    let topics = &info.topics;
    for (action, name, icon) in [
        (Action::Start, "Start", "mdi:play"),
        (Action::Stop, "Stop", "mdi:stop"),
        (Action::Pause, "Pause", "mdi:pause"),
        (Action::Resume, "Resume", "mdi:play-pause"),
        (Action::Skip, "Skip", "mdi:skip-next"),
    ] {
        c.add(
            action.as_str(),
            "button",
            name,
            icon,
            json!({
                "command_topic": topics.set,
                "payload_press": json!({"action": action.as_str()}).to_string(),
            }),
        );
    }
    c.add(
        "start_anyway",
        "button",
        "Start anyway",
        "mdi:play-box-lock-open-outline",
        json!({
            "command_topic": topics.set,
            "payload_press": json!({"action": Action::Start.as_str(), "force": true}).to_string(),
        }),
    );
}

/// The session as it runs: state, step, times, progress, events and the routine picture.
fn session(c: &mut Components<'_>, info: &DiscoveryInfo) {
    let topics = &info.topics;
    c.add(
        "state",
        "sensor",
        "State",
        "mdi:list-status",
        json!({
            "device_class": "enum",
            "options": SessionState::ALL.map(human_state),
            "state_topic": topics.state,
            "value_template": state_template(),
        }),
    );
    c.add(
        "running",
        "binary_sensor",
        "Running",
        "mdi:motion-play-outline",
        json!({
            "device_class": "running",
            "state_topic": topics.state,
            "value_template": "{{ 'ON' if value_json.state == 'running' else 'OFF' }}",
        }),
    );
    c.add(
        "step",
        "sensor",
        "Step",
        "mdi:format-list-numbered",
        json!({
            "state_topic": topics.state,
            // "Step 2 of 4: Crown sweep"; Home Assistant states hold at most 255 characters.
            "value_template": concat!(
                "{% if value_json.step %}",
                "{{ ('Step ' ~ (value_json.step_index + 1) ~ ' of ' ~ value_json.step_count ~ ': ' ~ value_json.step)[:255] }}",
                "{% else %}", "Not running", "{% endif %}"
            ),
        }),
    );
    c.add(
        "ends_at",
        "sensor",
        "Ends at",
        "mdi:clock-end",
        json!({
            "device_class": "timestamp",
            "state_topic": topics.state,
            "value_template": format!("{{{{ value_json.ends_at or '{UNKNOWN}' }}}}"),
        }),
    );
    c.add(
        "remaining",
        "sensor",
        "Remaining",
        "mdi:timer-sand-complete",
        json!({
            "device_class": "duration",
            "unit_of_measurement": "min",
            "suggested_display_precision": 0,
            "state_topic": topics.state,
            // Idle: nothing remains. Rounded up, like remaining_s, so 0 means over.
            "value_template": "{{ ((value_json.remaining_s or 0) / 60) | round(0, 'ceil') | int }}",
        }),
    );
    c.add(
        "progress",
        "sensor",
        "Progress",
        "mdi:progress-clock",
        json!({
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "suggested_display_precision": 0,
            "state_topic": topics.state,
            "value_template": concat!(
                "{% set done = value_json.elapsed_s or 0 %}",
                "{% set total = done + (value_json.remaining_s or 0) %}",
                "{{ (100 * done / total) | round(0) | int if total > 0 else 0 }}"
            ),
            "json_attributes_topic": topics.state,
            "json_attributes_template": concat!(
                "{{ {'step': (value_json.step_index + 1) if value_json.step_index is not none else none,",
                " 'step_count': value_json.step_count, 'elapsed_s': value_json.elapsed_s,",
                " 'remaining_s': value_json.remaining_s} | tojson }}"
            ),
        }),
    );
    c.add(
        "session",
        "event",
        "Session",
        "mdi:bell-ring-outline",
        json!({
            "event_types": EventKind::ALL.map(EventKind::as_str),
            "state_topic": topics.event,
        }),
    );
    c.add(
        "picture",
        "image",
        "Routine",
        "mdi:chart-timeline-variant",
        json!({
            "image_topic": topics.routine_image,
            "content_type": CONTENT_TYPE,
        }),
    );
}

/// Problems, the guard, the last refusal and the lifetime counters.
fn diagnostics(c: &mut Components<'_>, info: &DiscoveryInfo) {
    let topics = &info.topics;
    c.add(
        "problem",
        "binary_sensor",
        "Problem",
        "mdi:alert-circle-outline",
        json!({
            "device_class": "problem",
            "entity_category": "diagnostic",
            "state_topic": topics.state,
            "value_template": "{{ 'ON' if value_json.state == 'fault' else 'OFF' }}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": "{{ (value_json.fault or {}) | tojson }}",
        }),
    );
    c.add(
        "guard",
        "binary_sensor",
        "Relaxer guard",
        "mdi:shield-alert-outline",
        json!({
            "state_topic": topics.state,
            "value_template": "{{ 'ON' if value_json.guard_active else 'OFF' }}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": "{{ {'relaxer_date': value_json.relaxer_date} | tojson }}",
        }),
    );
    c.add(
        "last_message",
        "sensor",
        "Last message",
        "mdi:message-alert-outline",
        json!({
            "state_topic": topics.state,
            // Cleared (OK) by the next accepted command.
            "value_template": format!("{{{{ value_json.last_message[:255] if value_json.last_message else '{NO_MESSAGE}' }}}}"),
        }),
    );
    c.add(
        "sessions_total",
        "sensor",
        "Sessions",
        "mdi:counter",
        json!({
            "state_class": "total_increasing",
            "entity_category": "diagnostic",
            "state_topic": topics.state,
            "value_template": "{{ value_json.sessions_total }}",
        }),
    );
    c.add(
        "massage_time_total",
        "sensor",
        "Massage time",
        "mdi:timer-sand",
        json!({
            "device_class": "duration",
            "state_class": "total_increasing",
            "unit_of_measurement": "min",
            "suggested_display_precision": 0,
            "entity_category": "diagnostic",
            "state_topic": topics.state,
            // Counts during a session too (massage_seconds_live); JSON keeps whole seconds.
            "value_template": "{{ (value_json.massage_seconds_live / 60) | round(1) }}",
        }),
    );
}

/// The retained topics to clear (publish empty) to remove the device from Home Assistant and
/// clear its picture, state and availability (discovery first, so entities go before they
/// turn unavailable).
pub fn forget_topics(topics: &Topics) -> [&str; 4] {
    [
        topics.discovery_config.as_str(),
        topics.routine_image.as_str(),
        topics.state.as_str(),
        topics.availability.as_str(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DiscoveryInfo {
        DiscoveryInfo {
            sw_version: "0.0.0-test".into(),
            ..DiscoveryInfo::new(
                "den-pi",
                "Massage headrest",
                Topics::new("massaged", "den-pi", "homeassistant"),
                vec![
                    "Full scalp".into(),
                    "Temple circles".into(),
                    "Neck \"and\" ears".into(),
                ],
                30,
            )
        }
    }

    #[test]
    fn payload_snapshot() {
        let value: Value = serde_json::from_str(&discovery_payload(&info())).unwrap();
        insta::assert_json_snapshot!("discovery_payload", value);
    }

    #[test]
    fn every_entity_of_the_table_is_there_with_a_unique_id_and_icon() {
        let value = discovery_value(&info());
        let cmps = value["cmps"].as_object().unwrap();
        let mut keys: Vec<&str> = cmps.keys().map(String::as_str).collect();
        let mut expected = COMPONENT_KEYS.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        for (key, component) in cmps {
            assert_eq!(component["unique_id"], format!("den-pi_{key}"));
            assert!(
                component["icon"].as_str().unwrap().starts_with("mdi:"),
                "{key}"
            );
            let name = component["name"].as_str().unwrap();
            assert!(
                !name.to_lowercase().contains("massage headrest"),
                "{key}: {name}"
            );
        }
    }

    #[test]
    fn platforms_match_the_entity_table() {
        let value = discovery_value(&info());
        let platform = |key: &str| value["cmps"][key]["p"].as_str().unwrap().to_owned();
        assert_eq!(platform("routine"), "select");
        assert_eq!(platform("intensity"), "number");
        assert_eq!(platform("minutes"), "number");
        assert_eq!(platform("heat"), "switch");
        for key in ["start", "stop", "pause", "resume", "skip"] {
            assert_eq!(platform(key), "button");
        }
        for key in [
            "state",
            "ends_at",
            "step",
            "sessions_total",
            "massage_time_total",
            "remaining",
            "progress",
            "last_message",
        ] {
            assert_eq!(platform(key), "sensor");
        }
        assert_eq!(platform("running"), "binary_sensor");
        assert_eq!(platform("problem"), "binary_sensor");
        assert_eq!(platform("guard"), "binary_sensor");
        assert_eq!(platform("start_anyway"), "button");
        assert_eq!(platform("picture"), "image");
        assert_eq!(platform("relaxer_date"), "text");
        assert_eq!(platform("session"), "event");
    }

    #[test]
    fn commands_the_entities_send_parse_as_commands() {
        use crate::mqtt::command::parse_command;
        let value = discovery_value(&info());
        for key in ["start", "stop", "pause", "resume", "skip"] {
            let payload = value["cmps"][key]["payload_press"].as_str().unwrap();
            let parsed = parse_command(payload.as_bytes(), 4096).unwrap();
            assert_eq!(parsed.command.action.map(Action::as_str), Some(key));
            assert!(!parsed.command.force, "{key}");
        }
        let payload = value["cmps"]["start_anyway"]["payload_press"]
            .as_str()
            .unwrap();
        let parsed = parse_command(payload.as_bytes(), 4096).unwrap();
        assert_eq!(parsed.command.action, Some(Action::Start));
        assert!(parsed.command.force, "Start anyway overrides the guard");
        for key in ["payload_on", "payload_off"] {
            let payload = value["cmps"]["heat"][key].as_str().unwrap();
            assert!(
                parse_command(payload.as_bytes(), 4096)
                    .unwrap()
                    .command
                    .heat
                    .is_some()
            );
        }
    }

    #[test]
    fn options_and_limits_come_from_the_info() {
        let value = discovery_value(&info());
        assert_eq!(value["cmps"]["routine"]["options"][2], "Neck \"and\" ears");
        assert_eq!(value["cmps"]["minutes"]["max"], 30);
        assert_eq!(
            value["cmps"]["state"]["options"],
            json!(["Idle", "Running", "Paused", "Fault"])
        );
        assert_eq!(
            value["cmps"]["session"]["event_types"]
                .as_array()
                .unwrap()
                .len(),
            9
        );
        assert_eq!(
            value["cmps"]["session"]["state_topic"],
            "massaged/den-pi/event"
        );
        assert_eq!(value["availability_topic"], "massaged/den-pi/availability");
    }

    #[test]
    fn device_info_comes_from_the_config_and_empty_fields_are_left_out() {
        let dev = &discovery_value(&info())["dev"];
        assert_eq!(dev["sw"], "massaged 0.0.0-test");
        assert_eq!(dev["mdl"], MODEL);
        assert_eq!(dev.get("mf"), None, "the software is not the manufacturer");
        assert_eq!(dev.get("sn"), None);
        let info = DiscoveryInfo {
            manufacturer: "Acme Chairs".into(),
            model: String::new(),
            serial_number: "SN-7".into(),
            ..info()
        };
        let dev = &discovery_value(&info)["dev"];
        assert_eq!(dev["mf"], "Acme Chairs");
        assert_eq!(dev.get("mdl"), None);
        assert_eq!(dev["sn"], "SN-7");
    }

    #[test]
    fn the_routine_picture_is_an_svg_image_on_its_own_topic() {
        let picture = &discovery_value(&info())["cmps"]["picture"];
        assert_eq!(picture["name"], "Routine");
        assert_eq!(picture["content_type"], "image/svg+xml");
        assert_eq!(picture["image_topic"], "massaged/den-pi/routine_image");
    }

    #[test]
    fn state_template_maps_every_wire_state_to_its_option() {
        let template = state_template();
        for state in SessionState::ALL {
            assert!(
                template.contains(&format!("'{}': '{}'", state.as_str(), human_state(state))),
                "{template}"
            );
        }
        assert!(template.starts_with("{{ {'idle': 'Idle'"), "{template}");
    }

    #[test]
    fn the_relaxer_date_keeps_its_entity_id_while_its_name_shows_the_format() {
        let relaxer = &discovery_value(&info())["cmps"]["relaxer_date"];
        assert_eq!(relaxer["name"], "Relaxer date (YYYY-MM-DD)");
        assert_eq!(
            relaxer["default_entity_id"],
            "text.massage_headrest_relaxer_date"
        );
        assert_eq!(slug("  Den: Pi #2 "), "den_pi_2");
        assert_eq!(slug("***"), "massaged");
    }

    #[test]
    fn support_url_is_optional_in_the_origin() {
        let mut info = info();
        assert_eq!(discovery_value(&info)["o"].get("url"), None);
        info.support_url = Some("https://example.org/massaged".into());
        assert_eq!(
            discovery_value(&info)["o"]["url"],
            "https://example.org/massaged"
        );
    }

    #[test]
    fn forgetting_clears_discovery_picture_state_and_availability() {
        let topics = Topics::new("massaged", "den-pi", "homeassistant");
        assert_eq!(
            forget_topics(&topics),
            [
                "homeassistant/device/den-pi/config",
                "massaged/den-pi/routine_image",
                "massaged/den-pi/state",
                "massaged/den-pi/availability"
            ]
        );
    }
}

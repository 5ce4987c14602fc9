//! Home Assistant MQTT device discovery: one retained payload on
//! `{discovery_prefix}/device/{device_id}/config` describing the device and all its entities.
//!
//! Key names follow Home Assistant's MQTT discovery schemas. Its discovery schemas silently drop
//! unknown keys, so a misspelt key shows no error: the tests pin every key.

use super::topics::{PAYLOAD_OFFLINE, PAYLOAD_ONLINE, Topics};
use crate::core::{Action, EventKind, SessionState};
use serde_json::{Map, Value, json};

/// Manufacturer and origin name shown in Home Assistant.
pub const ORIGIN_NAME: &str = "massaged";
/// Model shown in Home Assistant's device page.
pub const MODEL: &str = "Scalp massage headrest";

/// What the discovery payload needs to know about the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryInfo {
    /// Topic-safe device id; also the prefix of every `unique_id`.
    pub device_id: String,
    /// Display name of the device (entity names never repeat it).
    pub device_name: String,
    /// The device's topics.
    pub topics: Topics,
    /// Display names of the routines, in menu order: the routine select's options.
    pub routine_names: Vec<String>,
    /// Upper bound of the minutes number.
    pub max_session_minutes: u32,
    /// Software version reported for the device and the origin.
    pub sw_version: String,
    /// Optional `http(s)://` support page shown with the origin.
    pub support_url: Option<String>,
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
        }
    }
}

/// Component keys, in the order of the contract's entity table.
pub const COMPONENT_KEYS: [&str; 18] = [
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
];

/// Text entity pattern: a `YYYY-MM-DD` date or nothing (clears the date).
const RELAXER_DATE_PATTERN: &str = r"^(\d{4}-\d{2}-\d{2})?$";

/// Home Assistant's MQTT sensor, step and binary sensor read the payload `None` as "unknown";
/// an empty string would instead be an invalid timestamp.
const UNKNOWN: &str = "None";

/// The retained device discovery payload (JSON text).
pub fn discovery_payload(info: &DiscoveryInfo) -> String {
    discovery_value(info).to_string()
}

/// The device discovery payload as a JSON value.
pub fn discovery_value(info: &DiscoveryInfo) -> Value {
    let topics = &info.topics;
    let mut cmps = Map::new();
    let mut add = |key: &str, platform: &str, name: &str, icon: &str, extra: Value| {
        let mut component = Map::new();
        component.insert("p".into(), platform.into());
        component.insert("name".into(), name.into());
        component.insert(
            "unique_id".into(),
            format!("{}_{key}", info.device_id).into(),
        );
        component.insert("icon".into(), icon.into());
        if let Value::Object(extra) = extra {
            component.extend(extra);
        }
        cmps.insert(key.to_owned(), Value::Object(component));
    };

    add(
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
    add(
        "intensity",
        "number",
        "Intensity",
        "mdi:gauge",
        json!({
            "min": 1,
            "max": 100,
            "step": 1,
            "mode": "slider",
            "unit_of_measurement": "%",
            "command_topic": topics.set,
            "command_template": "{\"intensity\": {{ value | int }}}",
            "state_topic": topics.state,
            "value_template": "{{ value_json.intensity }}",
        }),
    );
    add(
        "minutes",
        "number",
        "Minutes",
        "mdi:timer-outline",
        json!({
            "min": 1,
            "max": info.max_session_minutes.max(1),
            "step": 1,
            "mode": "box",
            "unit_of_measurement": "min",
            "command_topic": topics.set,
            "command_template": "{\"minutes\": {{ value | int }}}",
            "state_topic": topics.state,
            "value_template": "{{ value_json.minutes }}",
        }),
    );
    add(
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
    for (action, name, icon) in [
        (Action::Start, "Start", "mdi:play"),
        (Action::Stop, "Stop", "mdi:stop"),
        (Action::Pause, "Pause", "mdi:pause"),
        (Action::Resume, "Resume", "mdi:play-pause"),
        (Action::Skip, "Skip", "mdi:skip-next"),
    ] {
        add(
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
    add(
        "state",
        "sensor",
        "State",
        "mdi:list-status",
        json!({
            "device_class": "enum",
            "options": SessionState::ALL.map(SessionState::as_str),
            "state_topic": topics.state,
            "value_template": "{{ value_json.state }}",
        }),
    );
    add(
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
    add(
        "step",
        "sensor",
        "Step",
        "mdi:format-list-numbered",
        json!({
            "state_topic": topics.state,
            // Home Assistant states hold at most 255 characters.
            "value_template": format!("{{{{ value_json.step[:255] if value_json.step else '{UNKNOWN}' }}}}"),
        }),
    );
    add(
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
    add(
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
    add(
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
    add(
        "massage_time_total",
        "sensor",
        "Massage time",
        "mdi:timer-sand",
        json!({
            "device_class": "duration",
            "state_class": "total_increasing",
            "unit_of_measurement": "s",
            "entity_category": "diagnostic",
            "state_topic": topics.state,
            "value_template": "{{ value_json.massage_seconds_total }}",
        }),
    );
    add(
        "relaxer_date",
        "text",
        "Relaxer date",
        "mdi:calendar-alert",
        json!({
            "entity_category": "config",
            "mode": "text",
            "min": 0,
            "max": 10,
            "pattern": RELAXER_DATE_PATTERN,
            "command_topic": topics.set,
            "command_template": "{{ {'relaxer_date': value} | tojson }}",
            "state_topic": topics.state,
            // The text entity refuses states that miss the pattern, so null must become "".
            "value_template": "{{ value_json.relaxer_date or '' }}",
        }),
    );
    add(
        "session",
        "event",
        "Session",
        "mdi:bell-ring-outline",
        json!({
            "event_types": EventKind::ALL.map(EventKind::as_str),
            "state_topic": topics.event,
        }),
    );

    let mut origin = json!({
        "name": ORIGIN_NAME,
        "sw": info.sw_version,
    });
    if let Some(url) = &info.support_url {
        origin["url"] = url.as_str().into();
    }
    json!({
        "dev": {
            "ids": [info.device_id],
            "name": info.device_name,
            "mf": ORIGIN_NAME,
            "mdl": MODEL,
            "sw": info.sw_version,
        },
        "o": origin,
        "availability_topic": topics.availability,
        "payload_available": PAYLOAD_ONLINE,
        "payload_not_available": PAYLOAD_OFFLINE,
        "qos": 1,
        "cmps": cmps,
    })
}

/// What to publish, retained and empty, to remove the device from Home Assistant and clear the
/// retained state and availability (discovery first, so entities go before they turn unavailable).
pub fn forget_payloads(topics: &Topics) -> [(&str, &'static [u8]); 3] {
    [
        (topics.discovery_config.as_str(), b""),
        (topics.state.as_str(), b""),
        (topics.availability.as_str(), b""),
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
        ] {
            assert_eq!(platform(key), "sensor");
        }
        assert_eq!(platform("running"), "binary_sensor");
        assert_eq!(platform("problem"), "binary_sensor");
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
        }
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
            json!(["idle", "running", "paused", "fault"])
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
    fn forgetting_clears_discovery_state_and_availability() {
        let topics = Topics::new("massaged", "den-pi", "homeassistant");
        let forget = forget_payloads(&topics);
        assert_eq!(
            forget.map(|(topic, _)| topic),
            [
                "homeassistant/device/den-pi/config",
                "massaged/den-pi/state",
                "massaged/den-pi/availability"
            ]
        );
        assert!(forget.iter().all(|(_, payload)| payload.is_empty()));
    }
}

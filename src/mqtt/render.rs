//! JSON payloads for the state, event and response topics, with the contract's key order.

use crate::core::{Event, EventKind, Fault, Rejection, Snapshot};
use crate::mqtt::command::CommandId;
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime};

/// One reading of the monotonic and the wall clock taken together, to turn the core's
/// instants into calendar times. The daemon takes it once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// The monotonic reading.
    pub(crate) instant: Instant,
    /// The wall-clock reading at the same moment.
    pub(crate) system: SystemTime,
}

impl WallClock {
    /// An anchor pair read at (nearly) the same moment.
    pub fn new(instant: Instant, system: SystemTime) -> WallClock {
        WallClock { instant, system }
    }

    /// The wall-clock time of `at`, or `None` when it is not representable.
    pub(crate) fn system_time(&self, at: Instant) -> Option<SystemTime> {
        match at.checked_duration_since(self.instant) {
            Some(ahead) => self.system.checked_add(ahead),
            None => self.system.checked_sub(self.instant.duration_since(at)),
        }
    }

    /// RFC 3339 UTC time of `at`, rounded to the second, e.g. `2026-11-25T20:15:00Z`.
    pub(crate) fn rfc3339(&self, at: Instant) -> Option<String> {
        let system = self.system_time(at)?;
        let timestamp = jiff::Timestamp::try_from(system).ok()?;
        let rounded = timestamp.round(jiff::Unit::Second).ok()?;
        Some(rounded.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    }
}

#[derive(Serialize)]
struct FaultJson<'a> {
    code: &'a str,
    message: &'a str,
}

impl<'a> From<&'a Fault> for FaultJson<'a> {
    fn from(fault: &'a Fault) -> Self {
        FaultJson {
            code: &fault.code,
            message: &fault.message,
        }
    }
}

/// The state JSON; field order is the contract's key order.
#[derive(Serialize)]
struct StateJson<'a> {
    state: &'static str,
    routine: &'a str,
    routine_name: &'a str,
    step: Option<&'a str>,
    step_index: Option<usize>,
    step_count: usize,
    zones: Option<Vec<&'static str>>,
    technique: Option<&'static str>,
    intensity: u32,
    heat: bool,
    minutes: u32,
    elapsed_s: Option<u64>,
    remaining_s: Option<u64>,
    ends_at: Option<String>,
    relaxer_date: Option<String>,
    guard_active: bool,
    sessions_total: u64,
    massage_seconds_total: u64,
    fault: Option<FaultJson<'a>>,
    last_message: Option<&'a str>,
    massage_seconds_live: u64,
}

/// Whole seconds, rounded up: a countdown shows 1 until the time is really over.
fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Serializes a value that holds only strings, numbers, booleans and options.
fn to_json<T: Serialize>(value: &T) -> String {
    // Invariant: these structs have no maps with non-string keys and no custom Serialize
    // impls, the only ways serde_json serialization to a String can fail.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

/// The retained `{root}/state` payload; every field is present, `null` where it does not apply.
/// `last_message` is the reason of the last refused command (see `LastMessage`).
pub fn render_state(snapshot: &Snapshot, clock: &WallClock, last_message: Option<&str>) -> String {
    let session_seconds = snapshot.elapsed.map_or(0, |d| d.as_secs());
    to_json(&StateJson {
        state: snapshot.state.as_str(),
        routine: &snapshot.routine,
        routine_name: &snapshot.routine_name,
        step: snapshot.step.as_deref(),
        step_index: snapshot.step_index,
        step_count: snapshot.step_count,
        zones: snapshot
            .zones
            .as_ref()
            .map(|zones| zones.iter().map(|z| z.as_str()).collect()),
        technique: snapshot.technique.map(|t| t.as_str()),
        intensity: snapshot.intensity,
        heat: snapshot.heat,
        minutes: snapshot.minutes,
        // Elapsed counts whole seconds done; remaining rounds up so it reaches 0 only at the end.
        elapsed_s: snapshot.elapsed.map(|d| d.as_secs()),
        remaining_s: snapshot.remaining.map(ceil_seconds),
        ends_at: snapshot.ends_at.and_then(|at| clock.rfc3339(at)),
        relaxer_date: snapshot.relaxer_date.map(|d| d.to_string()),
        guard_active: snapshot.guard_active,
        sessions_total: snapshot.counters.sessions_total,
        massage_seconds_total: snapshot.counters.massage_seconds_total,
        fault: snapshot.fault.as_ref().map(FaultJson::from),
        last_message,
        // The total counts a session when it ends; this adds the running one so the massage
        // time grows during a session. The core adds the same whole seconds at the end, so
        // the value never goes back.
        massage_seconds_live: snapshot
            .counters
            .massage_seconds_total
            .saturating_add(session_seconds),
    })
}

#[derive(Serialize)]
struct EventJson<'a> {
    event_type: &'static str,
    routine: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<FaultJson<'a>>,
}

/// The `{root}/event` payload of an engine event; absent details are left out.
pub fn render_event(event: &Event) -> String {
    to_json(&EventJson {
        event_type: event.kind.as_str(),
        routine: &event.routine,
        step: event.step.as_deref(),
        step_index: event.step_index,
        reason: event.reason.map(|r| r.as_str()),
        fault: event.fault.as_ref().map(FaultJson::from),
    })
}

#[derive(Serialize)]
struct RejectedJson<'a> {
    event_type: &'static str,
    code: &'static str,
    message: &'a str,
}

/// Appends `"id":<id>` as the last member of the JSON object `json`: an integer id keeps its
/// digits, which serde_json (without arbitrary precision) could not carry through a number.
fn with_id(json: String, id: Option<&CommandId>) -> String {
    match (id, json.strip_suffix('}')) {
        (Some(id), Some(open)) => format!("{open},\"id\":{}}}", id.to_json()),
        _ => json,
    }
}

/// The `{root}/event` payload for a refused command, with the command's id when it had one.
pub fn render_rejected(rejection: &Rejection, id: Option<&CommandId>) -> String {
    let json = to_json(&RejectedJson {
        event_type: EventKind::Rejected.as_str(),
        code: rejection.code.as_str(),
        message: &rejection.message,
    });
    with_id(json, id)
}

#[derive(Serialize)]
struct ResponseJson<'a> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// The `{root}/response` reply to a command that carried `id`; the id is echoed exactly.
pub fn render_response(id: &CommandId, result: Result<(), &Rejection>) -> String {
    let rejection = result.err();
    let rest = to_json(&ResponseJson {
        ok: rejection.is_none(),
        code: rejection.map(|r| r.code.as_str()),
        message: rejection.map(|r| r.message.as_str()),
    });
    // `rest` is a JSON object, so it starts with '{'; the id goes first, as documented.
    format!("{{\"id\":{},{}", id.to_json(), rest.get(1..).unwrap_or("}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Counters, Reason, RejectCode, SessionState, Technique, Zone};
    use serde_json::{Value, json};

    /// 2026-11-25T20:00:00Z.
    const ANCHOR_UNIX_S: u64 = 1_795_636_800;

    fn clock() -> WallClock {
        WallClock::new(
            Instant::now(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(ANCHOR_UNIX_S),
        )
    }

    fn running(clock: &WallClock) -> Snapshot {
        Snapshot {
            state: SessionState::Running,
            routine: "full-scalp".into(),
            routine_name: "Full scalp".into(),
            step: Some("Thumb circles at the temples".into()),
            step_index: Some(0),
            step_count: 4,
            zones: Some(vec![Zone::Temples]),
            technique: Some(Technique::Circles),
            intensity: 60,
            heat: false,
            minutes: 15,
            elapsed: Some(Duration::from_millis(42_300)),
            remaining: Some(Duration::from_millis(857_700)),
            ends_at: Some(clock.instant + Duration::from_millis(900_400)),
            relaxer_date: None,
            guard_active: false,
            guard_reason: None,
            counters: Counters {
                sessions_total: 12,
                massage_seconds_total: 7200,
            },
            fault: None,
        }
    }

    fn idle() -> Snapshot {
        Snapshot {
            state: SessionState::Idle,
            routine: "full-scalp".into(),
            routine_name: "Full scalp".into(),
            step: None,
            step_index: None,
            step_count: 4,
            zones: None,
            technique: None,
            intensity: 60,
            heat: false,
            minutes: 15,
            elapsed: None,
            remaining: None,
            ends_at: None,
            relaxer_date: Some("2026-12-01".parse().unwrap()),
            guard_active: true,
            guard_reason: Some(crate::core::GuardReason::RelaxerSoon),
            counters: Counters::default(),
            fault: None,
        }
    }

    const STATE_KEYS: [&str; 21] = [
        "state",
        "routine",
        "routine_name",
        "step",
        "step_index",
        "step_count",
        "zones",
        "technique",
        "intensity",
        "heat",
        "minutes",
        "elapsed_s",
        "remaining_s",
        "ends_at",
        "relaxer_date",
        "guard_active",
        "sessions_total",
        "massage_seconds_total",
        "fault",
        "last_message",
        "massage_seconds_live",
    ];

    fn keys_in_order(json: &str) -> Vec<String> {
        // Reads the top-level keys in document order (serde_json's Value would sort them).
        let mut keys = Vec::new();
        let mut de = serde_json::Deserializer::from_str(json);
        struct Keys<'k>(&'k mut Vec<String>);
        impl<'de> serde::de::Visitor<'de> for Keys<'_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    self.0.push(key);
                }
                Ok(())
            }
        }
        serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys)).unwrap();
        keys
    }

    #[test]
    fn running_state_matches_the_contract_example() {
        let clock = clock();
        let json = render_state(&running(&clock), &clock, None);
        assert_eq!(keys_in_order(&json), STATE_KEYS);
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["massage_seconds_total"], 7200);
        assert_eq!(value["massage_seconds_live"], 7242);
        assert_eq!(value["elapsed_s"], 42);
        assert_eq!(value["remaining_s"], 858);
        assert_eq!(value["ends_at"], "2026-11-25T20:15:00Z");
        insta::assert_snapshot!("state_running", json);
    }

    #[test]
    fn idle_state_has_every_key_with_nulls() {
        let clock = clock();
        let json = render_state(&idle(), &clock, None);
        assert_eq!(keys_in_order(&json), STATE_KEYS);
        let value: Value = serde_json::from_str(&json).unwrap();
        for key in [
            "step",
            "step_index",
            "zones",
            "technique",
            "elapsed_s",
            "remaining_s",
            "ends_at",
            "fault",
            "last_message",
        ] {
            assert_eq!(value[key], Value::Null, "{key}");
        }
        assert_eq!(value["massage_seconds_live"], 0);
        assert_eq!(value["relaxer_date"], "2026-12-01");
        assert_eq!(value["guard_active"], true);
    }

    #[test]
    fn fault_state_carries_code_and_message() {
        let clock = clock();
        let mut snapshot = idle();
        snapshot.state = SessionState::Fault;
        snapshot.fault = Some(Fault {
            code: "driver_io".into(),
            message: "write failed".into(),
        });
        let value: Value = serde_json::from_str(&render_state(&snapshot, &clock, None)).unwrap();
        assert_eq!(value["state"], "fault");
        assert_eq!(
            value["fault"],
            json!({"code": "driver_io", "message": "write failed"})
        );
    }

    #[test]
    fn last_message_is_published_as_given() {
        let clock = clock();
        let json = render_state(&idle(), &clock, Some("relaxer guard: \"force\" overrides"));
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["last_message"], "relaxer guard: \"force\" overrides");
    }

    #[test]
    fn wall_clock_maps_instants_before_and_after_the_anchor() {
        let clock = clock();
        let later = clock.instant + Duration::from_millis(1_499);
        assert_eq!(clock.rfc3339(later).unwrap(), "2026-11-25T20:00:01Z");
        let later = clock.instant + Duration::from_millis(1_500);
        assert_eq!(clock.rfc3339(later).unwrap(), "2026-11-25T20:00:02Z");
        if let Some(earlier) = clock.instant.checked_sub(Duration::from_secs(60)) {
            assert_eq!(clock.rfc3339(earlier).unwrap(), "2026-11-25T19:59:00Z");
        }
    }

    #[test]
    fn events_carry_the_details_they_have() {
        let step = Event {
            kind: EventKind::Step,
            routine: "full-scalp".into(),
            step: Some("Crown sweep".into()),
            step_index: Some(2),
            reason: None,
            fault: None,
        };
        assert_eq!(
            render_event(&step),
            r#"{"event_type":"step","routine":"full-scalp","step":"Crown sweep","step_index":2}"#
        );
        let stopped = Event {
            kind: EventKind::Stopped,
            routine: "full-scalp".into(),
            step: None,
            step_index: None,
            reason: Some(Reason::Command),
            fault: None,
        };
        assert_eq!(
            render_event(&stopped),
            r#"{"event_type":"stopped","routine":"full-scalp","reason":"command"}"#
        );
        let heat_off = Event::new(EventKind::HeatOff, "full-scalp").with_reason(Reason::HeatCap);
        assert_eq!(
            render_event(&heat_off),
            r#"{"event_type":"heat_off","routine":"full-scalp","reason":"heat_cap"}"#
        );
        let fault = Event {
            kind: EventKind::Fault,
            routine: "full-scalp".into(),
            step: None,
            step_index: None,
            reason: Some(Reason::Fault),
            fault: Some(Fault {
                code: "driver_io".into(),
                message: "write \"failed\"".into(),
            }),
        };
        let value: Value = serde_json::from_str(&render_event(&fault)).unwrap();
        assert_eq!(value["fault"]["message"], "write \"failed\"");
    }

    #[test]
    fn rejections_render_as_events() {
        let rejection = Rejection::new(RejectCode::UnknownRoutine, "no routine named 'x'");
        assert_eq!(
            render_rejected(&rejection, Some(&text("abc"))),
            r#"{"event_type":"rejected","code":"unknown_routine","message":"no routine named 'x'","id":"abc"}"#
        );
        assert_eq!(
            render_rejected(&rejection, None),
            r#"{"event_type":"rejected","code":"unknown_routine","message":"no routine named 'x'"}"#
        );
    }

    #[test]
    fn responses_match_the_contract_exactly() {
        assert_eq!(
            render_response(&text("abc"), Ok(())),
            r#"{"id":"abc","ok":true}"#
        );
        let rejection = Rejection::new(RejectCode::UnknownRoutine, "no routine named 'x'");
        assert_eq!(
            render_response(&text("abc"), Err(&rejection)),
            r#"{"id":"abc","ok":false,"code":"unknown_routine","message":"no routine named 'x'"}"#
        );
    }

    fn text(id: &str) -> CommandId {
        CommandId::Text(id.into())
    }

    #[test]
    fn integer_ids_of_any_length_keep_their_digits() {
        let id = CommandId::Integer("12345678901234567890123".into());
        assert_eq!(
            render_response(&id, Ok(())),
            r#"{"id":12345678901234567890123,"ok":true}"#
        );
        let rejection = Rejection::new(RejectCode::Overloaded, "busy");
        let event = render_rejected(&rejection, Some(&id));
        assert!(
            event.ends_with(r#","id":12345678901234567890123}"#),
            "{event}"
        );
        let value: Value = serde_json::from_str(&event).unwrap();
        assert_eq!(value["code"], "overloaded");
    }

    #[test]
    fn text_ids_are_escaped_json_strings() {
        let id = text("a\"b\n\u{0}");
        let reply = render_response(&id, Ok(()));
        let value: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(value["id"], "a\"b\n\u{0}");
        assert!(!reply.contains('\n'));
    }
}

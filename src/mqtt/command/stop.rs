//! "Stop always wins": finding a top-level `"action":"stop"` in the raw bytes, without parsing,
//! so a stop is recognised in payloads that are too large or not valid commands. The parser
//! and the link both ask here, so they cannot disagree on what a stop is.

use super::fields::bare_word;
use super::raw::{json_string, key_is, scan_object};
use crate::core::Action;

/// Whether `payload` is a stop as [`super::parse_command`] reads it (size aside): the bare word, or
/// a complete JSON object with `"action": "stop"`. Linear in the payload, allocation-free for
/// plain keys, so the link can route stops ahead of its queue.
pub(crate) fn is_stop(payload: &[u8]) -> bool {
    if let Ok(text) = std::str::from_utf8(payload) {
        let word = text.trim();
        let word = word
            .strip_prefix('"')
            .and_then(|w| w.strip_suffix('"'))
            .unwrap_or(word);
        if bare_word(word) == Some(Action::Stop) {
            return true;
        }
    }
    let mut stop = false;
    let complete = scan_object(payload, |key, value| {
        if key_is(key, "action")
            && value.first() == Some(&b'"')
            && json_string(value).is_some_and(|word| bare_word(&word) == Some(Action::Stop))
        {
            stop = true;
        }
    });
    complete && stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Command, RejectCode};
    use crate::mqtt::command::testing::{MAX, ok};
    use crate::mqtt::command::{CommandId, ParsedCommand, parse_command};

    fn stop_with_refusals(payload: &str) -> ParsedCommand {
        let parsed = ok(payload);
        assert_eq!(parsed.command, Command::action(Action::Stop), "{payload}");
        assert!(!parsed.refused.is_empty(), "{payload}: nothing refused");
        assert!(is_stop(payload.as_bytes()), "{payload}: is_stop disagrees");
        parsed
    }

    #[test]
    fn stop_with_an_unknown_field_still_stops() {
        let parsed = stop_with_refusals(r#"{"action":"stop","speed":1}"#);
        assert_eq!(parsed.refused[0].code, RejectCode::UnknownAction);
        assert!(parsed.refused[0].message.contains("'speed'"));
    }

    #[test]
    fn stop_with_a_wrong_type_still_stops() {
        let parsed = stop_with_refusals(r#"{"action":"stop","intensity":"60","id":"s1"}"#);
        assert_eq!(parsed.refused[0].code, RejectCode::OutOfRange);
        assert!(parsed.refused[0].message.contains("intensity"));
        assert_eq!(parsed.id, Some(CommandId::Text("s1".into())));
    }

    #[test]
    fn stop_with_an_over_long_id_still_stops_without_the_id() {
        let id = "i".repeat(100);
        let parsed = stop_with_refusals(&format!(r#"{{"action":"stop","id":"{id}"}}"#));
        assert_eq!(parsed.id, None);
        assert_eq!(parsed.refused[0].code, RejectCode::OutOfRange);
        assert!(parsed.refused[0].message.contains("id"));
    }

    #[test]
    fn stop_with_nested_junk_and_several_bad_fields_lists_each_refusal() {
        let parsed = stop_with_refusals(
            r#"{"routine":{"a":[1,{"b":"}]"},null]},"action":"STOP","minutes":-3,"x":[[[]]],"id":7}"#,
        );
        assert_eq!(parsed.id, Some(CommandId::Integer("7".into())));
        assert_eq!(parsed.refused.len(), 3, "{:?}", parsed.refused);
    }

    #[test]
    fn stop_with_a_number_json_cannot_hold_still_stops_and_keeps_its_id() {
        let parsed = stop_with_refusals(r#"{"action":"stop","intensity":1e309,"id":"big"}"#);
        assert_eq!(parsed.refused[0].code, RejectCode::InvalidJson);
        assert_eq!(parsed.id, Some(CommandId::Text("big".into())));
    }

    #[test]
    fn a_valid_stop_keeps_its_fields_and_has_no_refusals() {
        let parsed = ok(r#"{"action":"stop","heat":false,"id":"k"}"#);
        assert_eq!(parsed.command.action, Some(Action::Stop));
        assert_eq!(parsed.command.heat, Some(false));
        assert!(parsed.refused.is_empty());
    }

    #[test]
    fn duplicate_actions_let_stop_win() {
        let parsed = ok(r#"{"action":"stop","action":"start"}"#);
        assert_eq!(parsed.command.action, Some(Action::Stop));
    }

    #[test]
    fn only_a_complete_top_level_object_is_a_stop() {
        for payload in [
            r#"{"action":"stop""#,
            r#"{"action":"stop"} x"#,
            r#"{"nested":{"action":"stop"}}"#,
            r#"["stop"]"#,
            r#"{"action":"stopped"}"#,
        ] {
            assert!(!is_stop(payload.as_bytes()), "{payload}");
            assert!(
                parse_command(payload.as_bytes(), MAX)
                    .map(|p| p.command.action != Some(Action::Stop))
                    .unwrap_or(true),
                "{payload}"
            );
        }
        for payload in ["stop", " STOP\n", "\"stop\"", r#" { "action" : "Stop" } "#] {
            assert!(is_stop(payload.as_bytes()), "{payload}");
        }
        assert!(is_stop(br#"{"act\u0069on":"st\u006fp"}"#));
    }

    #[test]
    fn a_too_large_stop_still_stops_and_is_answered_too_large_with_its_id() {
        let payload = format!(
            r#"{{"id":"t1","action":"stop","pad":"{}"}}"#,
            "x".repeat(200)
        );
        let parsed = parse_command(payload.as_bytes(), 100).expect("a stop");
        assert_eq!(parsed.command, Command::action(Action::Stop));
        assert_eq!(parsed.id, Some(CommandId::Text("t1".into())));
        assert_eq!(parsed.refused.len(), 1);
        assert_eq!(parsed.refused[0].code, RejectCode::TooLarge);
        let parsed = parse_command(b"stop", 3).expect("the bare word too");
        assert_eq!(parsed.command, Command::action(Action::Stop));
        // Anything else over the limit is refused whole, with the id from the prefix.
        let payload = format!(
            r#"{{"id":"t2","action":"pause","pad":"{}"}}"#,
            "x".repeat(200)
        );
        let e = parse_command(payload.as_bytes(), 100).unwrap_err();
        assert_eq!(e.rejection.code, RejectCode::TooLarge);
        assert_eq!(e.id, Some(CommandId::Text("t2".into())));
    }

    mod properties {
        use super::*;
        use crate::mqtt::command::testing::json_value;
        use proptest::prelude::*;
        use serde_json::Value;

        proptest! {
            #[test]
            fn any_object_with_action_stop_stops(value in json_value()) {
                let mut fields = match value {
                    Value::Object(fields) => fields,
                    other => [("other".to_owned(), other)].into_iter().collect(),
                };
                fields.insert("action".into(), Value::from("stop"));
                let text = Value::Object(fields).to_string();
                let parsed = parse_command(text.as_bytes(), usize::MAX);
                prop_assert_eq!(parsed.map(|p| p.command.action), Ok(Some(Action::Stop)));
                prop_assert!(is_stop(text.as_bytes()));
            }

            #[test]
            fn is_stop_agrees_with_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                let parsed_stop = parse_command(&bytes, usize::MAX)
                    .is_ok_and(|p| p.command == Command::action(Action::Stop) || p.command.action == Some(Action::Stop));
                prop_assert_eq!(is_stop(&bytes), parsed_stop);
            }
        }
    }
}

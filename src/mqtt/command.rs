//! Parsing a payload from `{root}/set` into a core [`Command`], or a [`Rejection`] saying why not.

use crate::core::{Action, Command, Date, RejectCode, Rejection};
use serde_json::{Map, Value};

/// Longest accepted command `id`, in characters.
pub const MAX_ID_CHARS: usize = 64;

/// Longest field name or value echoed back in a rejection message, in characters.
const MAX_ECHO_CHARS: usize = 40;

/// A command that parsed, with the id its reply must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCommand {
    /// The `id` field, if the command carried one.
    pub id: Option<String>,
    /// What the command asks.
    pub command: Command,
}

/// A command that did not parse: the rejection, and the id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rejection}")]
pub struct CommandError {
    /// The `id` field, when the payload parsed far enough to read it.
    pub id: Option<String>,
    /// Why the command was refused.
    pub rejection: Rejection,
}

impl CommandError {
    fn new(id: Option<String>, code: RejectCode, message: impl Into<String>) -> CommandError {
        CommandError {
            id,
            rejection: Rejection::new(code, message),
        }
    }
}

/// Parses a command payload: a bare word (`start`, `stop`, `pause`, `resume`, `skip`,
/// `clear_fault`) or one JSON object. Never panics, whatever the bytes.
pub fn parse_command(payload: &[u8], max_bytes: usize) -> Result<ParsedCommand, CommandError> {
    if payload.len() > max_bytes {
        return Err(CommandError::new(
            None,
            RejectCode::TooLarge,
            format!(
                "command is {} bytes, the limit is {max_bytes}",
                payload.len()
            ),
        ));
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return Err(CommandError::new(
            None,
            RejectCode::InvalidJson,
            "command is not valid UTF-8",
        ));
    };
    if let Some(action) = bare_word(text) {
        return Ok(ParsedCommand {
            id: None,
            command: Command::action(action),
        });
    }
    // serde_json refuses nesting deeper than 128 levels with an error (no stack overflow) and
    // reads integers beyond u64 as floats, so neither deep nor huge input can hurt here.
    let value: Value = serde_json::from_str(text).map_err(|err| {
        CommandError::new(
            None,
            RejectCode::InvalidJson,
            format!("command is not a JSON object or a bare word ({err})"),
        )
    })?;
    match value {
        Value::Object(fields) => parse_object(&fields),
        Value::String(word) => match bare_word(&word) {
            Some(action) => Ok(ParsedCommand {
                id: None,
                command: Command::action(action),
            }),
            None => Err(not_an_object()),
        },
        _ => Err(not_an_object()),
    }
}

fn not_an_object() -> CommandError {
    CommandError::new(
        None,
        RejectCode::InvalidJson,
        format!(
            "command must be a JSON object or one of the words {}",
            action_list()
        ),
    )
}

fn action_list() -> String {
    Action::ALL.map(Action::as_str).join(", ")
}

/// The action a word names, ignoring surrounding white space and case.
fn bare_word(text: &str) -> Option<Action> {
    let word = text.trim();
    Action::ALL
        .into_iter()
        .find(|action| action.as_str().eq_ignore_ascii_case(word))
}

/// At most [`MAX_ECHO_CHARS`] characters of untrusted text, for messages.
fn echo(text: &str) -> String {
    let mut short: String = text.chars().take(MAX_ECHO_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

fn parse_object(fields: &Map<String, Value>) -> Result<ParsedCommand, CommandError> {
    let id = match fields.get("id") {
        None => None,
        Some(value) => Some(parse_id(value)?),
    };
    let fail = |code: RejectCode, message: String| CommandError::new(id.clone(), code, message);
    let out_of_range = |message: String| fail(RejectCode::OutOfRange, message);

    let mut command = Command::default();
    for (name, value) in fields {
        match name.as_str() {
            "id" => {}
            "action" => {
                let word = value.as_str().ok_or_else(|| {
                    fail(
                        RejectCode::UnknownAction,
                        format!("action must be a string, one of {}", action_list()),
                    )
                })?;
                let action = bare_word(word).ok_or_else(|| {
                    fail(
                        RejectCode::UnknownAction,
                        format!(
                            "unknown action '{}', expected one of {}",
                            echo(word),
                            action_list()
                        ),
                    )
                })?;
                command.action = Some(action);
            }
            "routine" => {
                let routine = value.as_str().ok_or_else(|| {
                    out_of_range("routine must be a string (an id or display name)".into())
                })?;
                command.routine = Some(routine.to_owned());
            }
            "intensity" => {
                command.intensity = Some(whole_number(value, "intensity").map_err(out_of_range)?)
            }
            "minutes" => {
                command.minutes = Some(whole_number(value, "minutes").map_err(out_of_range)?)
            }
            "heat" => command.heat = Some(boolean(value, "heat").map_err(out_of_range)?),
            "force" => command.force = boolean(value, "force").map_err(out_of_range)?,
            "relaxer_date" => {
                command.relaxer_date = Some(relaxer_date(value).map_err(out_of_range)?)
            }
            other => {
                return Err(fail(
                    RejectCode::UnknownAction,
                    format!(
                        "unknown field '{}'; fields are action, routine, intensity, minutes, heat, force, relaxer_date, id",
                        echo(other)
                    ),
                ));
            }
        }
    }

    let has_setting = command.routine.is_some()
        || command.intensity.is_some()
        || command.minutes.is_some()
        || command.heat.is_some()
        || command.relaxer_date.is_some();
    if command.action.is_none() && !has_setting {
        return Err(fail(
            RejectCode::UnknownAction,
            "command has neither an action nor a setting (routine, intensity, minutes, heat, relaxer_date)".into(),
        ));
    }
    Ok(ParsedCommand { id, command })
}

fn parse_id(value: &Value) -> Result<String, CommandError> {
    let id = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(CommandError::new(
                None,
                RejectCode::OutOfRange,
                "id must be a string or a number",
            ));
        }
    };
    if id.chars().count() > MAX_ID_CHARS {
        return Err(CommandError::new(
            None,
            RejectCode::OutOfRange,
            format!("id must be at most {MAX_ID_CHARS} characters"),
        ));
    }
    Ok(id)
}

/// A non-negative whole number that fits `u32`; the core checks the allowed range.
fn whole_number(value: &Value, field: &str) -> Result<u32, String> {
    let Value::Number(n) = value else {
        return Err(format!("{field} must be a whole number"));
    };
    // `as_u64` is `None` for negative numbers and for any number written as a float.
    let n64 = n.as_u64().ok_or_else(|| {
        format!(
            "{field} must be a whole number, got {}",
            echo(&n.to_string())
        )
    })?;
    u32::try_from(n64).map_err(|_| format!("{field} is far out of range, got {n64}"))
}

fn boolean(value: &Value, field: &str) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("{field} must be true or false"))
}

/// `Some(date)` sets the relaxer date, `None` (from `null` or `""`) clears it.
fn relaxer_date(value: &Value) -> Result<Option<Date>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => s.parse::<Date>().map(Some).map_err(|_| {
            format!(
                "relaxer_date must be YYYY-MM-DD or empty, got '{}'",
                echo(s)
            )
        }),
        _ => Err("relaxer_date must be a string YYYY-MM-DD, empty or null".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 4096;

    fn ok(payload: &str) -> ParsedCommand {
        parse_command(payload.as_bytes(), MAX).unwrap_or_else(|e| panic!("{payload}: {e}"))
    }

    fn err(payload: &str) -> CommandError {
        match parse_command(payload.as_bytes(), MAX) {
            Ok(parsed) => panic!("{payload} parsed as {parsed:?}"),
            Err(e) => e,
        }
    }

    fn assert_rejected(payload: &str, code: RejectCode, needle: &str) {
        let e = err(payload);
        assert_eq!(e.rejection.code, code, "{payload}: {e}");
        assert!(
            e.rejection.message.contains(needle),
            "{payload}: message '{}' should name '{needle}'",
            e.rejection.message
        );
    }

    #[test]
    fn bare_words_are_actions_whatever_the_case_and_spacing() {
        for (word, action) in [
            ("start", Action::Start),
            ("STOP", Action::Stop),
            (" pause\n", Action::Pause),
            ("Resume", Action::Resume),
            ("skip", Action::Skip),
            ("clear_fault", Action::ClearFault),
            ("\"stop\"", Action::Stop),
        ] {
            let parsed = ok(word);
            assert_eq!(parsed.command, Command::action(action), "{word:?}");
            assert_eq!(parsed.id, None);
        }
    }

    #[test]
    fn full_start_command_reads_every_field() {
        let parsed = ok(
            r#"{"action": "start", "routine": "temple-circles", "intensity": 60,
            "minutes": 10, "heat": true, "force": true, "id": "abc"}"#,
        );
        assert_eq!(parsed.id.as_deref(), Some("abc"));
        assert_eq!(
            parsed.command,
            Command {
                action: Some(Action::Start),
                routine: Some("temple-circles".into()),
                intensity: Some(60),
                minutes: Some(10),
                heat: Some(true),
                force: true,
                relaxer_date: None,
            }
        );
    }

    #[test]
    fn settings_alone_are_commands() {
        assert_eq!(
            ok(r#"{"routine": "Neck and ears"}"#)
                .command
                .routine
                .as_deref(),
            Some("Neck and ears")
        );
        assert_eq!(ok(r#"{"intensity": 40}"#).command.intensity, Some(40));
        assert_eq!(ok(r#"{"minutes": 20}"#).command.minutes, Some(20));
        assert_eq!(ok(r#"{"heat": false}"#).command.heat, Some(false));
        let date: Date = "2026-12-01".parse().unwrap();
        assert_eq!(
            ok(r#"{"relaxer_date": "2026-12-01"}"#).command.relaxer_date,
            Some(Some(date))
        );
    }

    #[test]
    fn empty_or_null_relaxer_date_clears_it() {
        assert_eq!(
            ok(r#"{"relaxer_date": ""}"#).command.relaxer_date,
            Some(None)
        );
        assert_eq!(
            ok(r#"{"relaxer_date": null}"#).command.relaxer_date,
            Some(None)
        );
    }

    #[test]
    fn numeric_id_is_kept_as_its_text() {
        assert_eq!(
            ok(r#"{"action": "stop", "id": 42}"#).id.as_deref(),
            Some("42")
        );
    }

    #[test]
    fn too_large_is_checked_before_anything_else() {
        let e = parse_command(b"stop", 3).unwrap_err();
        assert_eq!(e.rejection.code, RejectCode::TooLarge);
        assert!(
            e.rejection.message.contains("4 bytes"),
            "{}",
            e.rejection.message
        );
        assert!(parse_command(b"stop", 4).is_ok());
    }

    #[test]
    fn non_json_and_non_objects_are_invalid_json() {
        for payload in [
            "",
            "launch",
            "{",
            "[1,2]",
            "42",
            "null",
            "\"launch\"",
            "{\"action\":\"stop\"} x",
        ] {
            assert_rejected(payload, RejectCode::InvalidJson, "");
        }
        let e = parse_command(&[0xff, 0xfe], MAX).unwrap_err();
        assert_eq!(e.rejection.code, RejectCode::InvalidJson);
        assert!(e.rejection.message.contains("UTF-8"));
    }

    #[test]
    fn unknown_action_is_named() {
        assert_rejected(
            r#"{"action": "launch"}"#,
            RejectCode::UnknownAction,
            "'launch'",
        );
        assert_rejected(r#"{"action": 3}"#, RejectCode::UnknownAction, "action");
    }

    #[test]
    fn unknown_field_is_named() {
        assert_rejected(
            r#"{"action": "start", "speed": 3}"#,
            RejectCode::UnknownAction,
            "'speed'",
        );
    }

    #[test]
    fn object_without_action_or_setting_is_refused() {
        assert_rejected("{}", RejectCode::UnknownAction, "neither");
        assert_rejected(r#"{"force": true}"#, RejectCode::UnknownAction, "neither");
        let e = err(r#"{"id": "q1"}"#);
        assert_eq!(e.rejection.code, RejectCode::UnknownAction);
        assert_eq!(e.id.as_deref(), Some("q1"));
    }

    #[test]
    fn bad_numbers_are_out_of_range_naming_the_field() {
        for field in ["intensity", "minutes"] {
            for bad in [
                "-1",
                "1.5",
                "60.0",
                "\"60\"",
                "true",
                "null",
                "[60]",
                "1e3",
                "4294967296",
                "18446744073709551616",
                "123456789012345678901234567890",
            ] {
                let payload = format!(r#"{{"{field}": {bad}}}"#);
                assert_rejected(&payload, RejectCode::OutOfRange, field);
            }
        }
        // Range checks belong to the core: a large but representable value passes through.
        assert_eq!(
            ok(r#"{"intensity": 4294967295}"#).command.intensity,
            Some(u32::MAX)
        );
        assert_eq!(ok(r#"{"minutes": 0}"#).command.minutes, Some(0));
    }

    #[test]
    fn numbers_beyond_f64_are_invalid_json_not_a_panic() {
        assert_rejected(r#"{"intensity": 1e400}"#, RejectCode::InvalidJson, "");
    }

    #[test]
    fn booleans_must_be_booleans() {
        for field in ["heat", "force"] {
            for bad in ["1", "\"true\"", "null"] {
                let payload = format!(r#"{{"action": "start", "{field}": {bad}}}"#);
                assert_rejected(&payload, RejectCode::OutOfRange, field);
            }
        }
    }

    #[test]
    fn bad_relaxer_dates_are_out_of_range() {
        for bad in ["\"2026-02-30\"", "\"tomorrow\"", "20261201", "true"] {
            let payload = format!(r#"{{"relaxer_date": {bad}}}"#);
            assert_rejected(&payload, RejectCode::OutOfRange, "relaxer_date");
        }
    }

    #[test]
    fn routine_must_be_a_string() {
        assert_rejected(r#"{"routine": 7}"#, RejectCode::OutOfRange, "routine");
    }

    #[test]
    fn errors_keep_the_id_when_it_was_readable() {
        let e = err(r#"{"id": "abc", "action": "launch"}"#);
        assert_eq!(e.id.as_deref(), Some("abc"));
        let e = err(r#"{"id": "abc", "intensity": -5}"#);
        assert_eq!(e.id.as_deref(), Some("abc"));
        assert_eq!(e.rejection.code, RejectCode::OutOfRange);
    }

    #[test]
    fn bad_ids_are_refused_without_an_id() {
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let e = err(&format!(r#"{{"id": "{long}", "action": "stop"}}"#));
        assert_eq!((e.rejection.code, e.id), (RejectCode::OutOfRange, None));
        assert!(e.rejection.message.contains("id"));
        let e = err(r#"{"id": {"a": 1}, "action": "stop"}"#);
        assert_eq!((e.rejection.code, e.id), (RejectCode::OutOfRange, None));
        let exact = "é".repeat(MAX_ID_CHARS);
        assert_eq!(
            ok(&format!(r#"{{"id": "{exact}", "action": "stop"}}"#)).id,
            Some(exact)
        );
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        let field = "f".repeat(10_000);
        let e = err(&format!(r#"{{"{field}": 1}}"#));
        assert!(
            e.rejection.message.len() < 300,
            "{}",
            e.rejection.message.len()
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let deep = format!(
            "{{\"routine\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let e = parse_command(deep.as_bytes(), usize::MAX).unwrap_err();
        assert_eq!(e.rejection.code, RejectCode::InvalidJson);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                ".{0,12}".prop_map(Value::String),
                prop::sample::select(vec!["start", "stop", "2026-12-01", "", "STOP "])
                    .prop_map(|s| Value::String(s.into())),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(
                        prop::sample::select(vec![
                            "action",
                            "routine",
                            "intensity",
                            "minutes",
                            "heat",
                            "force",
                            "relaxer_date",
                            "id",
                            "other",
                        ])
                        .prop_map(String::from),
                        inner,
                        0..6
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), max in 0usize..600) {
                let _ = parse_command(&bytes, max);
            }

            #[test]
            fn arbitrary_json_never_panics_and_rejections_have_messages(value in json_value()) {
                let text = value.to_string();
                if let Err(e) = parse_command(text.as_bytes(), usize::MAX) {
                    prop_assert!(!e.rejection.message.is_empty());
                }
            }
        }
    }
}

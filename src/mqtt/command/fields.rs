//! What the fields of a JSON command object mean: each field's reader, and the rule that a stop
//! with refused fields is a plain stop while any other command is refused at its first bad field.
//! Also the vocabulary every reader shares: the action words and bounded echoes of untrusted text.

use super::id::read_id;
use super::{CommandError, ParsedCommand};
use crate::core::{Action, Command, Date, RejectCode, Rejection};
use serde_json::{Map, Value};

/// Longest field name or value echoed back in a rejection message, in characters.
const MAX_ECHO_CHARS: usize = 40;

/// The action words, comma separated, for messages.
pub(super) fn action_list() -> String {
    Action::ALL.map(Action::as_str).join(", ")
}

/// The action a word names, ignoring surrounding white space and case.
pub(super) fn bare_word(text: &str) -> Option<Action> {
    let word = text.trim();
    Action::ALL
        .into_iter()
        .find(|action| action.as_str().eq_ignore_ascii_case(word))
}

/// At most [`MAX_ECHO_CHARS`] characters of untrusted text, for messages.
pub(super) fn echo(text: &str) -> String {
    let mut short: String = text.chars().take(MAX_ECHO_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// The command an object asks for; `stop` says [`super::is_stop`] already found `"action":"stop"`.
pub(super) fn parse_object(
    payload: &[u8],
    fields: &Map<String, Value>,
    stop: bool,
) -> Result<ParsedCommand, CommandError> {
    let mut refused = Vec::new();
    let id = if fields.contains_key("id") {
        // From the raw text, so integers of any length keep their digits.
        match read_id(payload).unwrap_or_else(|| Err("id could not be read".into())) {
            Ok(id) => Some(id),
            Err(message) => {
                refused.push(Rejection::new(RejectCode::OutOfRange, message));
                None
            }
        }
    } else {
        None
    };
    let mut out_of_range = |message: String| {
        refused.push(Rejection::new(RejectCode::OutOfRange, message));
    };

    let mut command = Command::default();
    let mut unknown = Vec::new();
    for (name, value) in fields {
        match name.as_str() {
            "id" => {}
            "action" => match value.as_str() {
                None => unknown.push(format!(
                    "action must be a string, one of {}",
                    action_list()
                )),
                Some(word) => match bare_word(word) {
                    Some(action) => command.action = Some(action),
                    None => unknown.push(format!(
                        "unknown action '{}', expected one of {}",
                        echo(word),
                        action_list()
                    )),
                },
            },
            "routine" => match value.as_str() {
                Some(routine) => command.routine = Some(routine.to_owned()),
                None => out_of_range("routine must be a string (an id or display name)".into()),
            },
            "intensity" => match whole_number(value, "intensity") {
                Ok(n) => command.intensity = Some(n),
                Err(message) => out_of_range(message),
            },
            "minutes" => match whole_number(value, "minutes") {
                Ok(n) => command.minutes = Some(n),
                Err(message) => out_of_range(message),
            },
            "heat" => match boolean(value, "heat") {
                Ok(b) => command.heat = Some(b),
                Err(message) => out_of_range(message),
            },
            "force" => match boolean(value, "force") {
                Ok(b) => command.force = b,
                Err(message) => out_of_range(message),
            },
            "relaxer_date" => match relaxer_date(value) {
                Ok(date) => command.relaxer_date = Some(date),
                Err(message) => out_of_range(message),
            },
            other => unknown.push(format!(
                "unknown field '{}'; fields are action, routine, intensity, minutes, heat, force, relaxer_date, id",
                echo(other)
            )),
        }
    }
    refused.extend(
        unknown
            .into_iter()
            .map(|message| Rejection::new(RejectCode::UnknownAction, message)),
    );

    if stop {
        if !refused.is_empty() {
            // All or nothing for the settings: a stop with a bad field is a plain stop.
            command = Command::action(Action::Stop);
        }
        command.action = Some(Action::Stop);
        return Ok(ParsedCommand {
            id,
            command,
            refused,
        });
    }
    if let Some(first) = refused.into_iter().next() {
        return Err(CommandError {
            id,
            rejection: first,
        });
    }
    let has_setting = command.routine.is_some()
        || command.intensity.is_some()
        || command.minutes.is_some()
        || command.heat.is_some()
        || command.relaxer_date.is_some();
    if command.action.is_none() && !has_setting {
        return Err(CommandError::new(
            id,
            RejectCode::UnknownAction,
            "command has neither an action nor a setting (routine, intensity, minutes, heat, relaxer_date)",
        ));
    }
    Ok(ParsedCommand {
        id,
        command,
        refused: Vec::new(),
    })
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
    use crate::mqtt::command::CommandId;
    use crate::mqtt::command::testing::{assert_rejected, err, ok};

    #[test]
    fn full_start_command_reads_every_field() {
        let parsed = ok(
            r#"{"action": "start", "routine": "temple-circles", "intensity": 60,
            "minutes": 10, "heat": true, "force": true, "id": "abc"}"#,
        );
        assert_eq!(parsed.id.as_ref().map(CommandId::as_str), Some("abc"));
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
        assert_eq!(e.id.as_ref().map(CommandId::as_str), Some("q1"));
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
    fn long_names_are_shortened_in_messages() {
        let field = "f".repeat(10_000);
        let e = err(&format!(r#"{{"{field}": 1}}"#));
        assert!(
            e.rejection.message.len() < 300,
            "{}",
            e.rejection.message.len()
        );
    }
}

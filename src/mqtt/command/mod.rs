//! Parsing a payload from `{root}/set` into a core [`Command`], or a [`Rejection`] saying why not.
//!
//! This file owns the types and the entry point, [`parse_command`]: size, emptiness, UTF-8,
//! bare words and JSON syntax are decided here. What each field of an object means is
//! `fields.rs`; the "stop always wins" scan is `stop.rs`; reading an `id` out of refused or
//! raw JSON is `id.rs`; both of those walk the bytes with the scanner in `raw.rs`.

mod fields;
mod id;
mod raw;
mod stop;
#[cfg(test)]
mod testing;

pub(crate) use id::peek_id;
pub(crate) use stop::is_stop;

use crate::core::{Action, Command, RejectCode, Rejection};
use fields::{action_list, bare_word, parse_object};
use serde_json::Value;

/// A command's `id`, kept exactly as sent so the reply echoes it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommandId {
    /// A JSON string id, unescaped.
    Text(String),
    /// A JSON integer id, as its digits (with a leading `-` when negative), of any length.
    Integer(String),
}

impl CommandId {
    /// The id as text: the string, or the digits.
    pub fn as_str(&self) -> &str {
        match self {
            CommandId::Text(text) | CommandId::Integer(text) => text,
        }
    }

    /// The id as a JSON value: a quoted string, or the integer's digits unquoted.
    pub fn to_json(&self) -> String {
        match self {
            CommandId::Text(text) => serde_json::Value::from(text.as_str()).to_string(),
            CommandId::Integer(digits) => digits.clone(),
        }
    }
}

impl std::fmt::Display for CommandId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command that parsed, with the id its reply must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCommand {
    /// The `id` field, if the command carried a valid one.
    pub id: Option<CommandId>,
    /// What the command asks.
    pub command: Command,
    /// Only for a `stop`: the fields that were refused (a stop always stops; its other
    /// fields are then ignored, and each refusal says why). Empty otherwise.
    pub refused: Vec<Rejection>,
}

/// A command that did not parse: the rejection, and the id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rejection}")]
pub struct CommandError {
    /// The `id` field, when it could be read from the payload (even a refused one).
    pub id: Option<CommandId>,
    /// Why the command was refused.
    pub rejection: Rejection,
}

impl CommandError {
    fn new(id: Option<CommandId>, code: RejectCode, message: impl Into<String>) -> CommandError {
        CommandError {
            id,
            rejection: Rejection::new(code, message),
        }
    }
}

/// Parses a command payload: a bare word (`start`, `stop`, `pause`, `resume`, `skip`,
/// `clear_fault`) or one JSON object. Never panics, whatever the bytes.
///
/// `stop` wins: a JSON object whose `action` is `stop` parses as a stop whatever else it
/// carries (unknown fields, wrong types, values out of range, a bad id, numbers JSON cannot
/// hold), even over `max_bytes`, with the refusals of the other fields in
/// [`ParsedCommand::refused`]. Anything else over `max_bytes`, or not a complete JSON
/// object, is refused whole.
pub fn parse_command(payload: &[u8], max_bytes: usize) -> Result<ParsedCommand, CommandError> {
    if payload.len() > max_bytes {
        // The id is read from a bounded prefix only: that much we were willing to read anyway,
        // and one byte more, so a number that ends exactly at the limit is seen to end there.
        let id = peek_id(&payload[..=max_bytes]);
        let rejection = Rejection::new(
            RejectCode::TooLarge,
            format!(
                "command is {} bytes, the limit is {max_bytes}",
                payload.len()
            ),
        );
        // Even an oversized stop stops: the scan is linear and the link bounds the packet.
        if is_stop(payload) {
            return Ok(ParsedCommand {
                id,
                command: Command::action(Action::Stop),
                refused: vec![rejection],
            });
        }
        return Err(CommandError { id, rejection });
    }
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(CommandError::new(
            None,
            RejectCode::InvalidJson,
            format!(
                "command is empty; send a JSON object or one of the words {}",
                action_list()
            ),
        ));
    }
    let stop = is_stop(payload);
    let Ok(text) = std::str::from_utf8(payload) else {
        return refuse_whole(
            payload,
            stop,
            RejectCode::InvalidJson,
            "command is not valid UTF-8".into(),
        );
    };
    if let Some(action) = bare_word(text) {
        return Ok(ParsedCommand {
            id: None,
            command: Command::action(action),
            refused: Vec::new(),
        });
    }
    // serde_json refuses nesting deeper than 128 levels with an error (no stack overflow) and
    // reads integers beyond u64 as floats (ids are read from the raw text instead), so neither
    // deep nor huge input can hurt here.
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            return refuse_whole(
                payload,
                stop,
                RejectCode::InvalidJson,
                format!("command is not a JSON object or a bare word ({err})"),
            );
        }
    };
    match value {
        Value::Object(fields) => parse_object(payload, &fields, stop),
        Value::String(word) => match bare_word(&word) {
            Some(action) => Ok(ParsedCommand {
                id: None,
                command: Command::action(action),
                refused: Vec::new(),
            }),
            None => Err(not_an_object()),
        },
        _ => Err(not_an_object()),
    }
}

/// A refusal of the whole payload, unless it is a stop: then the stop with that refusal.
fn refuse_whole(
    payload: &[u8],
    stop: bool,
    code: RejectCode,
    message: String,
) -> Result<ParsedCommand, CommandError> {
    let id = peek_id(payload);
    if stop {
        Ok(ParsedCommand {
            id,
            command: Command::action(Action::Stop),
            refused: vec![Rejection::new(code, message)],
        })
    } else {
        Err(CommandError::new(id, code, message))
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

#[cfg(test)]
mod tests {
    use super::testing::{MAX, assert_rejected, ok};
    use super::*;

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
    fn too_large_is_checked_before_anything_else() {
        let e = parse_command(b"pause", 4).unwrap_err();
        assert_eq!(e.rejection.code, RejectCode::TooLarge);
        assert!(
            e.rejection.message.contains("5 bytes"),
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
    fn numbers_beyond_f64_are_invalid_json_not_a_panic() {
        assert_rejected(r#"{"intensity": 1e400}"#, RejectCode::InvalidJson, "");
    }

    #[test]
    fn empty_and_blank_payloads_are_invalid_json() {
        for payload in ["", "  \n"] {
            assert_rejected(payload, RejectCode::InvalidJson, "empty");
        }
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
        use crate::mqtt::command::testing::json_value;
        use proptest::prelude::*;

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

//! Parsing a payload from `{root}/set` into a core [`Command`], or a [`Rejection`] saying why not.

use crate::core::{Action, Command, Date, RejectCode, Rejection};
use serde_json::{Map, Value};

/// Longest accepted command `id`, in characters (digits for a numeric id).
pub(crate) const MAX_ID_CHARS: usize = 64;

/// Longest field name or value echoed back in a rejection message, in characters.
const MAX_ECHO_CHARS: usize = 40;

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
        // The id is read from a bounded prefix only: that much we were willing to read anyway.
        let id = peek_id(&payload[..max_bytes]);
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

/// Whether `payload` is a stop as [`parse_command`] reads it (size aside): the bare word, or
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

/// The `id` of a JSON command when it can be read, even from a payload that is refused: a
/// truncated prefix, invalid JSON, a number JSON cannot hold in another field.
pub(crate) fn peek_id(payload: &[u8]) -> Option<CommandId> {
    read_id(payload).and_then(Result::ok)
}

/// The last top-level `id` of `payload` (JSON keeps the last of duplicate keys), parsed.
fn read_id(payload: &[u8]) -> Option<Result<CommandId, String>> {
    let mut id = None;
    scan_object(payload, |key, value| {
        if key_is(key, "id") {
            id = Some(value);
        }
    });
    id.map(id_from_raw)
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

fn parse_object(
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

/// An id from its raw JSON text: a string of at most [`MAX_ID_CHARS`] characters, or an
/// integer of at most as many digits; anything else is refused with a message.
fn id_from_raw(raw: &[u8]) -> Result<CommandId, String> {
    let too_long = || format!("id must be at most {MAX_ID_CHARS} characters");
    if raw.first() == Some(&b'"') {
        let text = json_string(raw).ok_or_else(|| "id is not a valid JSON string".to_owned())?;
        if text.chars().count() > MAX_ID_CHARS {
            return Err(too_long());
        }
        return Ok(CommandId::Text(text));
    }
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    let integer = match digits {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if integer {
        if raw.len() > MAX_ID_CHARS {
            return Err(too_long());
        }
        // Only ASCII digits and '-' get here.
        return Ok(CommandId::Integer(
            String::from_utf8_lossy(raw).into_owned(),
        ));
    }
    if digits.first().is_some_and(u8::is_ascii_digit) {
        let shown = echo(&String::from_utf8_lossy(raw));
        return Err(format!(
            "id must be a string or a whole number, got {shown}"
        ));
    }
    Err("id must be a string or a whole number".into())
}

/// Whether the raw JSON string token `key` (with quotes) is `name`.
fn key_is(key: &[u8], name: &str) -> bool {
    match key.strip_prefix(b"\"").and_then(|k| k.strip_suffix(b"\"")) {
        Some(inner) if !inner.contains(&b'\\') => inner == name.as_bytes(),
        _ => json_string(key).as_deref() == Some(name),
    }
}

/// The text of a raw JSON string token (with quotes), unescaped.
fn json_string(raw: &[u8]) -> Option<String> {
    serde_json::from_slice::<String>(raw).ok()
}

/// Walks the top-level pairs of a JSON object without building it, calling `visit(key,
/// value)` with each raw key token and raw value text as it goes. Tolerant: it stops at the
/// first thing it cannot read (so a truncated prefix still yields its first pairs) and does
/// not check scalars. Returns whether the object was read to its end with nothing after it.
/// No recursion (nesting is counted), so depth cannot exhaust the stack.
fn scan_object<'a>(bytes: &'a [u8], mut visit: impl FnMut(&'a [u8], &'a [u8])) -> bool {
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(bytes, i + 1);
    if bytes.get(i) == Some(&b'}') {
        return skip_ws(bytes, i + 1) == bytes.len();
    }
    loop {
        let Some(key_end) = string_end(bytes, i) else {
            return false;
        };
        let key = &bytes[i..key_end];
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(bytes, i + 1);
        let Some(value_end) = value_end(bytes, i) else {
            return false;
        };
        visit(key, &bytes[i..value_end]);
        i = skip_ws(bytes, value_end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(bytes, i + 1),
            Some(b'}') => return skip_ws(bytes, i + 1) == bytes.len(),
            _ => return false,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// End (exclusive) of the JSON string token starting at `i`.
fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match *bytes.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// End (exclusive) of the JSON value starting at `i`; containers are matched by counting.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    match *bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *bytes.get(j)? {
                    b'"' => {
                        j = string_end(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = bytes[i..]
                .iter()
                .position(|b| {
                    matches!(
                        b,
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'[' | b'"'
                    )
                })
                .unwrap_or(bytes.len() - i);
            (len > 0).then_some(i + len)
        }
    }
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
    fn numeric_id_is_kept_as_its_text() {
        assert_eq!(
            ok(r#"{"action": "stop", "id": 42}"#).id,
            Some(CommandId::Integer("42".into()))
        );
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
        assert_eq!(e.id.as_ref().map(CommandId::as_str), Some("abc"));
        let e = err(r#"{"id": "abc", "intensity": -5}"#);
        assert_eq!(e.id.as_ref().map(CommandId::as_str), Some("abc"));
        assert_eq!(e.rejection.code, RejectCode::OutOfRange);
    }

    #[test]
    fn bad_ids_are_refused_without_an_id() {
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let e = err(&format!(r#"{{"id": "{long}", "action": "start"}}"#));
        assert_eq!((e.rejection.code, e.id), (RejectCode::OutOfRange, None));
        assert!(e.rejection.message.contains("id"));
        let e = err(r#"{"id": {"a": 1}, "action": "start"}"#);
        assert_eq!((e.rejection.code, e.id), (RejectCode::OutOfRange, None));
        let e = err(r#"{"id": 1.5, "action": "start"}"#);
        assert_eq!(
            (e.rejection.code, e.id.clone()),
            (RejectCode::OutOfRange, None)
        );
        assert!(e.rejection.message.contains("1.5"), "{}", e.rejection);
        let exact = "é".repeat(MAX_ID_CHARS);
        assert_eq!(
            ok(&format!(r#"{{"id": "{exact}", "action": "stop"}}"#)).id,
            Some(CommandId::Text(exact))
        );
    }

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

    #[test]
    fn ids_are_recovered_from_refused_json() {
        let e = err(r#"{"id":"j1","intensity":1e309}"#);
        assert_eq!(e.rejection.code, RejectCode::InvalidJson);
        assert_eq!(e.id, Some(CommandId::Text("j1".into())));
        let e = err(r#"{"id":99,"action":"start","#);
        assert_eq!(e.rejection.code, RejectCode::InvalidJson);
        assert_eq!(e.id, Some(CommandId::Integer("99".into())));
    }

    #[test]
    fn integer_ids_of_any_length_are_kept_as_digits() {
        let parsed = ok(r#"{"action":"pause","id":12345678901234567890123}"#);
        assert_eq!(
            parsed.id,
            Some(CommandId::Integer("12345678901234567890123".into()))
        );
        assert_eq!(
            ok(r#"{"action":"pause","id":-0}"#).id,
            Some(CommandId::Integer("-0".into()))
        );
        let e = err(r#"{"action":"pause","id":1e3}"#);
        assert_eq!((e.rejection.code, e.id), (RejectCode::OutOfRange, None));
    }

    #[test]
    fn empty_and_blank_payloads_are_invalid_json() {
        for payload in ["", "  \n"] {
            assert_rejected(payload, RejectCode::InvalidJson, "empty");
        }
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

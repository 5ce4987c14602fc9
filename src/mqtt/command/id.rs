//! A command's `id` read from raw JSON text rather than from a parsed value, so integer ids of
//! any length keep their digits and an id can still be answered when the rest of the payload
//! is refused (a truncated prefix, invalid JSON, a number JSON cannot hold).

use super::CommandId;
use super::fields::echo;
use super::raw::{json_string, key_is, scan_object};

/// Longest accepted command `id`, in characters (digits for a numeric id).
const MAX_ID_CHARS: usize = 64;

/// The `id` of a JSON command when it can be read, even from a payload that is refused: a
/// truncated prefix, invalid JSON, a number JSON cannot hold in another field.
pub(crate) fn peek_id(payload: &[u8]) -> Option<CommandId> {
    read_id(payload).and_then(Result::ok)
}

/// The last top-level `id` of `payload` (JSON keeps the last of duplicate keys), parsed.
pub(super) fn read_id(payload: &[u8]) -> Option<Result<CommandId, String>> {
    let end = payload.as_ptr_range().end;
    let mut id = None;
    scan_object(payload, |key, value| {
        if key_is(key, "id") {
            // A number running to the very end may have been cut there (a payload over the
            // size limit is read as its prefix): its digits are not the id. A string proves
            // its end with the closing quote.
            let cut = value.first() != Some(&b'"') && value.as_ptr_range().end == end;
            id = Some((!cut).then_some(value));
        }
    });
    id.flatten().map(id_from_raw)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::RejectCode;
    use crate::mqtt::command::parse_command;
    use crate::mqtt::command::testing::{err, ok};

    #[test]
    fn an_integer_id_cut_by_the_size_limit_is_not_answered_with_its_prefix() {
        let payload = br#"{"id":12345,"action":"pause"}"#;
        let cut = parse_command(payload, 8).expect_err("over the limit");
        assert_eq!(cut.rejection.code, RejectCode::TooLarge);
        assert_eq!(cut.id, None, "{{\"id\":12 is a prefix, not the id");
        for limit in [11, 12] {
            let whole = parse_command(payload, limit).expect_err("over the limit");
            assert_eq!(
                whole.id,
                Some(CommandId::Integer("12345".into())),
                "{limit}"
            );
        }
        let string = parse_command(br#"{"id":"12345","action":"pause"}"#, 10);
        assert_eq!(string.expect_err("over the limit").id, None);
    }

    #[test]
    fn numeric_id_is_kept_as_its_text() {
        assert_eq!(
            ok(r#"{"action": "stop", "id": 42}"#).id,
            Some(CommandId::Integer("42".into()))
        );
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
}

//! Test helpers shared by the parser's modules: parse-or-panic, and a strategy for JSON values.

use super::{CommandError, ParsedCommand, parse_command};
use crate::core::RejectCode;
use proptest::prelude::*;
use serde_json::Value;

/// The payload limit the unit tests parse under.
pub(super) const MAX: usize = 4096;

pub(super) fn ok(payload: &str) -> ParsedCommand {
    parse_command(payload.as_bytes(), MAX).unwrap_or_else(|e| panic!("{payload}: {e}"))
}

pub(super) fn err(payload: &str) -> CommandError {
    match parse_command(payload.as_bytes(), MAX) {
        Ok(parsed) => panic!("{payload} parsed as {parsed:?}"),
        Err(e) => e,
    }
}

pub(super) fn assert_rejected(payload: &str, code: RejectCode, needle: &str) {
    let e = err(payload);
    assert_eq!(e.rejection.code, code, "{payload}: {e}");
    assert!(
        e.rejection.message.contains(needle),
        "{payload}: message '{}' should name '{needle}'",
        e.rejection.message
    );
}

pub(super) fn json_value() -> impl Strategy<Value = Value> {
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

//! Property-based fuzzing of the entry points the cargo-fuzz targets drive, in `cargo test`:
//! the same invariants (fuzz/src/checks.rs), fed by proptest instead of libFuzzer.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use proptest::prelude::*;
use serde_json::{Map, Value};

/// A JSON value near a valid command: known fields with plausible and implausible values.
fn near_command() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        "action",
        "routine",
        "intensity",
        "minutes",
        "heat",
        "force",
        "relaxer_date",
        "id",
        "speed",
        "",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "start",
            "stop",
            "pause",
            "resume",
            "skip",
            "clear_fault",
            "STOP",
            "temple-circles",
            "Full scalp",
            "2026-01-02",
            "2026-02-30",
            "",
        ])
        .prop_map(|s| Value::String(s.into())),
        (0u64..200).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        "\\PC{0,80}".prop_map(Value::String),
        Just(Value::Array(vec![])),
    ];
    prop::collection::vec((field, value), 0..6).prop_map(|pairs| {
        let map: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        Value::Object(map)
    })
}

/// A TOML line near a valid configuration line.
fn toml_line() -> impl Strategy<Value = String> {
    let section = prop::sample::select(vec![
        "[device]",
        "[mqtt]",
        "[homeassistant]",
        "[driver]",
        "[driver.channels]",
        "[driver.pwm]",
        "[driver.serial]",
        "[engine]",
        "[safety]",
        "[guard]",
        "[store]",
        "[log]",
        "[[routines]]",
        "[[routines.steps]]",
        "[nope]",
    ])
    .prop_map(String::from);
    let key = prop::sample::select(vec![
        "id",
        "name",
        "url",
        "keep_alive_s",
        "base_topic",
        "max_payload_bytes",
        "kind",
        "heat_channel",
        "temples",
        "neck",
        "outputs",
        "frame_hz",
        "ramp_ms",
        "max_session_minutes",
        "max_level",
        "days_before",
        "label",
        "zones",
        "technique",
        "seconds",
        "intensity",
        "tempo",
        "steps",
        "bogus",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..2000).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "\"mqtt://127.0.0.1:8883\"",
            "\"mqtts://h\"",
            "\"x y\"",
            "\"sim\"",
            "\"pwm\"",
            "\"none\"",
            "\"circles\"",
            "\"sweep\"",
            "[0, 1]",
            "[\"temples\", \"neck\"]",
            "[]",
            "true",
            "1.5",
            "\"\"",
            "{ a = 1 }",
        ])
        .prop_map(String::from),
        "\\PC{0,20}",
    ];
    prop_oneof![
        1 => section,
        4 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "[ -~]{0,30}",
    ]
}

/// Script lines for the engine: commands, time steps and faults.
fn engine_line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => near_command().prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec!["start", "stop", "pause", "resume", "skip", "clear_fault"])
            .prop_map(String::from),
        3 => (0u64..400).prop_map(|s| format!("@{s}")),
        1 => Just("!fault".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_command_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for max in [checks::MAX_PAYLOAD, bytes.len().saturating_sub(1)] {
            checks::check_command(&bytes, max).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn parse_command_rejections_are_well_formed(value in near_command()) {
        let text = value.to_string();
        checks::check_command(text.as_bytes(), checks::MAX_PAYLOAD).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn config_survives_arbitrary_text(text in "\\PC{0,200}") {
        checks::check_config(&text, &[]).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn config_errors_name_a_key_or_line(
        lines in prop::collection::vec(toml_line(), 0..16),
        env in prop::collection::vec(
            (prop::sample::select(vec![
                "SAFETY__MAX_LEVEL", "MQTT__URL", "DRIVER__CHANNELS__NECK", "ENGINE__FRAME_HZ",
                "GUARD__DAYS_BEFORE", "DRIVER__PWM__OUTPUTS", "NOPE",
            ]), "[ -~]{0,12}"),
            0..3,
        ),
    ) {
        let text = lines.join("\n");
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(name, value)| (format!("MASSAGED__{name}"), value))
            .collect();
        checks::check_config(&text, &env).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn rejected_commands_change_nothing_in_the_engine(
        heater in any::<bool>(),
        lines in prop::collection::vec(engine_line(), 1..20),
    ) {
        let mut script = if heater { String::new() } else { "%noheat\n".to_string() };
        script.push_str(&lines.join("\n"));
        checks::EngineRun::script(script.as_bytes()).map_err(TestCaseError::fail)?;
    }
}

/// The committed seeds pass the checks (the fuzzers start from them).
#[test]
fn fuzz_seeds_pass_the_checks() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut count = 0;
    for target in ["parse_command", "config", "engine"] {
        for entry in std::fs::read_dir(seeds.join(target)).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = match target {
                "parse_command" => checks::check_command(&data, checks::MAX_PAYLOAD).map(drop),
                "config" => {
                    let (text, env) = checks::split_config_input(&data).unwrap();
                    checks::check_config(text, &env).map(drop)
                }
                _ => checks::EngineRun::script(&data),
            };
            if let Err(broken) = result {
                panic!("{}: {broken}", path.display());
            }
            count += 1;
        }
    }
    assert!(count >= 20, "only {count} seeds");
}

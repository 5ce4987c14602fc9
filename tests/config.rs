//! Loading configuration text and environment overrides, and the errors users see.

use massaged::config::{
    CheckReport, Config, ConfigErrors, ConfigWarning, DriverKind, Location, builtin_routines,
    check_config_with_env,
};
use std::io::Write;

const EXAMPLE: &str = include_str!("../config/massaged.toml");

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn rejected(text: &str) -> ConfigErrors {
    Config::from_toml(text, &no_env()).expect_err("configuration should be rejected")
}

fn line(n: usize) -> Option<Location> {
    Some(Location::File { line: n, column: 1 })
}

#[test]
fn empty_file_gives_the_defaults_and_is_valid() {
    let config = Config::from_toml("", &no_env()).expect("empty file is valid");
    assert_eq!(config, Config::default());
    let config = Config::from_toml("# only a comment\n\n", &no_env()).expect("valid");
    assert_eq!(config, Config::default());
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::default();
    assert_eq!(c.device.id, "");
    assert_eq!(c.device.name, "Massage headrest");
    let broker = massaged::config::BrokerUrl::parse(&c.mqtt.url).unwrap();
    assert_eq!(
        (broker.tls, broker.host.as_str(), broker.port),
        (false, "127.0.0.1", 1883),
        "the default broker is plain MQTT on this host"
    );
    assert_eq!(c.mqtt.keep_alive_s, 30);
    assert_eq!(c.mqtt.base_topic, "massaged");
    assert_eq!(c.mqtt.progress_interval_s, 10);
    assert!(c.homeassistant.enabled);
    assert_eq!(c.homeassistant.discovery_prefix, "homeassistant");
    assert_eq!(c.driver.kind, DriverKind::Sim);
    assert_eq!(c.driver.heat_channel, Some(10));
    assert_eq!(c.engine.frame_hz, 50);
    assert_eq!(c.engine.ramp_ms, 2000);
    assert_eq!(c.safety.max_session_minutes, 30);
    assert_eq!(c.safety.max_heat_minutes, 15);
    assert_eq!(c.safety.max_level, 1000);
    assert_eq!(c.guard.days_before, 3);
    assert!(c.routines.is_empty());
}

/// Keys the example shows with an illustrative value rather than the default (which is unset).
const EXAMPLE_ONLY: &[&str] = &[
    "username",
    "password",
    "password_file",
    "ca_file",
    "client_cert",
    "client_key",
    "record",
    "outputs",
];

/// The example with every `# key = value` line of the sections uncommented, except
/// illustrative ones.
fn example_with_defaults_uncommented() -> String {
    let routines = EXAMPLE
        .find("# [[routines]]")
        .expect("example routine present");
    let mut out = String::new();
    for line in EXAMPLE[..routines].lines() {
        let uncommented = line.strip_prefix("# ").filter(|rest| {
            rest.split_once(" = ").is_some_and(|(key, _)| {
                key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && !EXAMPLE_ONLY.contains(&key)
            })
        });
        out.push_str(uncommented.unwrap_or(line));
        out.push('\n');
    }
    out
}

#[test]
fn example_file_validates_and_documents_the_real_defaults() {
    let config = Config::from_toml(EXAMPLE, &no_env()).expect("example validates");
    assert_eq!(config, Config::default());
    let uncommented = example_with_defaults_uncommented();
    assert!(uncommented.contains("\nkeep_alive_s = 30\n"));
    let config = Config::from_toml(&uncommented, &no_env()).expect("uncommented validates");
    assert_eq!(config, Config::default());
}

#[test]
fn example_user_routine_validates_when_uncommented() {
    let start = EXAMPLE
        .find("# [[routines]]")
        .expect("example routine present");
    let routine: String = EXAMPLE[start..]
        .lines()
        .map(|l| l.strip_prefix("# ").or(l.strip_prefix("#")).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!("{}\n{routine}\n", &EXAMPLE[..start]);
    let config = Config::from_toml(&text, &no_env()).expect("example routine validates");
    assert_eq!(config.routines.len(), 1);
    assert_eq!(config.routines[0].id, "evening-wind-down");
    let library = config.routine_library().expect("library valid");
    assert_eq!(library.len(), builtin_routines().len() + 1);
}

#[test]
fn environment_overrides_numbers_bools_and_strings() {
    let text = "[safety]\nmax_session_minutes = 45\n";
    let vars = env(&[
        ("MASSAGED__SAFETY__MAX_SESSION_MINUTES", "20"),
        ("MASSAGED__HOMEASSISTANT__ENABLED", "false"),
        ("MASSAGED__MQTT__URL", "mqtts://broker.lan:8883"),
        ("MASSAGED__DEVICE__ID", "007"),
        ("MASSAGED__DRIVER__PWM__FREQUENCY_HZ", "20000"),
        ("MASSAGED__DRIVER__KIND", "pwm"),
        ("MASSAGED__DRIVER__HEAT_CHANNEL", "none"),
        ("MASSAGED__DRIVER__CHANNELS__NECK", "10, 11"),
        ("MASSAGED__DRIVER__CHANNELS__EARS", ""),
        ("MASSAGED__DRIVER__PWM__OUTPUTS", "0:0,1:3"),
        ("OTHER__SAFETY__MAX_LEVEL", "1"),
        ("MASSAGED_SAFETY_MAX_LEVEL", "1"),
    ]);
    let config = Config::from_toml(text, &vars).expect("valid");
    assert_eq!(
        config.safety.max_session_minutes, 20,
        "env wins over the file"
    );
    assert!(!config.homeassistant.enabled);
    assert_eq!(config.mqtt.url, "mqtts://broker.lan:8883");
    assert_eq!(config.device.id, "007", "strings stay strings");
    assert_eq!(config.driver.pwm.frequency_hz, 20_000);
    assert_eq!(config.driver.kind, DriverKind::Pwm);
    assert_eq!(config.driver.heat_channel, None);
    assert_eq!(
        config.driver.channels.neck,
        [10, 11],
        "lists are comma-separated"
    );
    assert!(config.driver.channels.ears.is_empty());
    assert_eq!(config.driver.pwm.outputs, ["0:0", "1:3"]);
    assert_eq!(config.safety.max_level, 1000, "other prefixes are ignored");
}

#[test]
fn bad_environment_value_names_the_key_and_variable() {
    let errors = Config::from_toml("", &env(&[("MASSAGED__MQTT__KEEP_ALIVE_S", "soon")]))
        .expect_err("not a number");
    let issue = &errors.issues[0];
    assert_eq!(issue.key.as_deref(), Some("mqtt.keep_alive_s"));
    assert_eq!(
        issue.location,
        Some(Location::Env("MASSAGED__MQTT__KEEP_ALIVE_S".into()))
    );

    let errors = Config::from_toml(
        "[safety]\nmax_level = 500\n",
        &env(&[("MASSAGED__SAFETY__MAX_LEVEL", "5000")]),
    )
    .expect_err("out of range");
    assert_eq!(errors.issues.len(), 1);
    assert_eq!(
        errors.issues[0].to_string(),
        "safety.max_level (environment MASSAGED__SAFETY__MAX_LEVEL): 5000 is out of range 0..=1000"
    );

    let errors = Config::from_toml("", &env(&[("MASSAGED__DRIVER__CHANNELS__NECK", "8,x")]))
        .expect_err("not a number");
    assert_eq!(
        errors.issues[0].key.as_deref(),
        Some("driver.channels.neck[1]")
    );
    assert_eq!(
        errors.issues[0].location,
        Some(Location::Env("MASSAGED__DRIVER__CHANNELS__NECK".into()))
    );

    let errors = Config::from_toml("", &env(&[("MASSAGED__MQTT__KEEPALIVE", "5")]))
        .expect_err("unknown key");
    assert_eq!(errors.issues[0].key.as_deref(), Some("mqtt.keepalive"));
}

#[test]
fn syntax_error_names_the_line() {
    let errors = rejected("[mqtt]\nurl = \"mqtt://x\nkeep_alive_s = 30\n");
    let issue = &errors.issues[0];
    assert_eq!(issue.key, None);
    assert!(
        matches!(issue.location, Some(Location::File { line: 2, .. })),
        "{errors}"
    );
    assert!(errors.to_string().contains("line 2, column"), "{errors}");
}

#[test]
fn out_of_range_value_names_key_and_line() {
    let errors = rejected("[device]\nname = \"Chair\"\n\n[safety]\nmax_level = 5000\n");
    assert_eq!(errors.issues.len(), 1);
    assert_eq!(
        errors.issues[0].to_string(),
        "safety.max_level (line 5, column 1): 5000 is out of range 0..=1000"
    );
}

#[test]
fn example_lists_every_section_and_key() {
    let defaults = serde_json::to_value(Config::default()).expect("serialises");
    let mut missing = Vec::new();
    let mut sections = vec![(String::new(), &defaults)];
    while let Some((section, value)) = sections.pop() {
        let Some(table) = value.as_object() else {
            continue;
        };
        let body = if section.is_empty() {
            EXAMPLE
        } else {
            let header = format!("\n[{section}]\n");
            let Some(start) = EXAMPLE.find(&header) else {
                missing.push(format!("[{section}]"));
                continue;
            };
            let body = &EXAMPLE[start + header.len()..];
            &body[..body.find("\n[").unwrap_or(body.len())]
        };
        for (key, child) in table {
            let path = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            if child.is_object() {
                sections.push((path, child));
            } else if section.is_empty() {
                // Top-level arrays: `routines`.
                if !EXAMPLE.contains(&format!("[[{key}]]")) {
                    missing.push(path);
                }
            } else if !body.contains(&format!("# {key} = ")) {
                missing.push(path);
            }
        }
    }
    assert!(missing.is_empty(), "the example does not show {missing:?}");
}

#[test]
fn every_invalid_value_is_reported() {
    let text = "\
[mqtt]
url = \"http://broker\"
keep_alive_s = 2
base_topic = \"home/#\"

[engine]
frame_hz = 500

[driver.serial]
heartbeat_ms = 2000
";
    let errors = rejected(text);
    let found: Vec<(Option<&str>, Option<Location>)> = errors
        .issues
        .iter()
        .map(|i| (i.key.as_deref(), i.location.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (Some("mqtt.url"), line(2)),
            (Some("mqtt.keep_alive_s"), line(3)),
            (Some("mqtt.base_topic"), line(4)),
            (Some("engine.frame_hz"), line(7)),
            // Not written: reported at its table's header.
            (
                Some("driver.serial.heartbeat_timeout_ms"),
                Some(Location::File { line: 9, column: 9 })
            ),
        ]
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    let errors = rejected("[mqtt]\nkeep_alive_s = \"soon\"\n");
    let issue = &errors.issues[0];
    assert_eq!(issue.key.as_deref(), Some("mqtt.keep_alive_s"));
    assert!(
        matches!(issue.location, Some(Location::File { line: 2, .. })),
        "{errors}"
    );
}

#[test]
fn unknown_keys_are_named() {
    let errors = rejected("[mqtt]\nurl = \"mqtt://x\"\nkeep_alive = 30\n");
    let issue = &errors.issues[0];
    assert_eq!(issue.key.as_deref(), Some("mqtt.keep_alive"), "{errors}");
    assert!(
        matches!(issue.location, Some(Location::File { line: 3, .. })),
        "{errors}"
    );
    assert!(issue.message.contains("unknown field"), "{errors}");

    let errors = rejected("[mqttt]\nurl = \"mqtt://x\"\n");
    assert_eq!(errors.issues[0].key.as_deref(), Some("mqttt"), "{errors}");
}

#[test]
fn heat_channel_can_be_none() {
    let config =
        Config::from_toml("[driver]\nheat_channel = \"none\"\n", &no_env()).expect("valid");
    assert_eq!(config.driver.heat_channel, None);
    assert_eq!(
        config.engine_config().expect("converts").channels.heat(),
        None
    );
    let config = Config::from_toml("[driver]\nheat_channel = 12\n", &no_env()).expect("valid");
    assert_eq!(config.driver.heat_channel, Some(12));
    let errors = rejected("[driver]\nheat_channel = \"heater\"\n");
    assert_eq!(errors.issues[0].key.as_deref(), Some("driver.heat_channel"));
}

const GOOD_STEP: &str = "\
[[routines.steps]]
label = \"Circles\"
zones = [\"crown\"]
technique = \"circles\"
seconds = 60
";

fn routine(id: &str, name: &str, step: &str) -> String {
    format!("[[routines]]\nid = \"{id}\"\nname = \"{name}\"\n\n{step}\n")
}

#[test]
fn unknown_zone_names_the_routine_and_line() {
    let text = routine("mine", "Mine", &GOOD_STEP.replace("crown", "forehead"));
    let errors = rejected(&text);
    let issue = &errors.issues[0];
    assert_eq!(
        issue.key.as_deref(),
        Some("routines[0].steps[0].zones[0]"),
        "{errors}"
    );
    assert!(
        matches!(issue.location, Some(Location::File { line: 7, .. })),
        "{errors}"
    );
    assert!(issue.message.contains("routine 'mine'"), "{errors}");
    assert!(issue.message.contains("forehead"), "{errors}");
}

#[test]
fn unknown_technique_is_rejected() {
    let text = routine("mine", "Mine", &GOOD_STEP.replace("\"circles\"", "\"tap\""));
    let errors = rejected(&text);
    assert_eq!(
        errors.issues[0].key.as_deref(),
        Some("routines[0].steps[0].technique"),
        "{errors}"
    );
}

#[test]
fn zero_seconds_duplicate_and_builtin_ids_are_all_reported() {
    let text = [
        routine("mine", "Mine", GOOD_STEP),
        routine(
            "zero",
            "Zero",
            &GOOD_STEP.replace("seconds = 60", "seconds = 0"),
        ),
        routine("mine", "Mine again", GOOD_STEP),
        routine("full-scalp", "My full scalp", GOOD_STEP),
    ]
    .concat();
    let errors = rejected(&text);
    let keys: Vec<&str> = errors
        .issues
        .iter()
        .filter_map(|i| i.key.as_deref())
        .collect();
    assert_eq!(
        keys,
        [
            "routines[1].steps[0].seconds",
            "routines[2].id",
            "routines[3].id"
        ],
        "{errors}"
    );
    assert!(errors.issues[0].message.contains("'zero'"), "{errors}");
    assert!(
        matches!(
            errors.issues[0].location,
            Some(Location::File { line: 19, .. })
        ),
        "{errors}"
    );
    assert!(errors.issues[2].message.contains("built-in"), "{errors}");
}

#[test]
fn explicit_path_must_exist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.toml");
    let errors = Config::load_with_env(Some(&missing), &no_env()).expect_err("missing");
    assert_eq!(errors.file.as_deref(), Some(missing.as_path()));
    assert!(errors.to_string().contains("cannot read"), "{errors}");
}

#[test]
fn check_config_summarises_a_valid_file_without_the_password() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    write!(
        file,
        "[device]\nid = \"chair\"\n[mqtt]\nurl = \"mqtt://ha:s3cret@broker.lan\"\n[driver]\nkind = \"serial\"\n{}",
        routine("mine", "Mine", GOOD_STEP)
    )
    .expect("write");
    let report = check_config_with_env(Some(file.path()), &no_env()).expect("valid");
    assert_eq!(
        report,
        CheckReport {
            file: Some(file.path().to_owned()),
            device_id: "chair".into(),
            driver: DriverKind::Serial,
            broker: "mqtt://ha:***@broker.lan".into(),
            routines: builtin_routines().len() + 1,
            user_routines: 1,
            warnings: vec![ConfigWarning::ClearTextPassword {
                host: "broker.lan".into()
            }],
        }
    );
    let text = report.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("chair"), "{text}");
}

#[test]
fn check_config_lists_every_error_with_file_key_and_line() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    write!(file, "[safety]\nmax_level = 5000\nmax_heat_minutes = 0\n").expect("write");
    let errors = check_config_with_env(Some(file.path()), &no_env()).expect_err("invalid");
    let text = errors.to_string();
    assert!(text.starts_with("2 configuration errors in "), "{text}");
    assert!(
        text.contains("safety.max_level (line 2, column 1)"),
        "{text}"
    );
    assert!(
        text.contains("safety.max_heat_minutes (line 3, column 1)"),
        "{text}"
    );
}

/// Found by the config fuzzer: the TOML parser's recursion limit has no span, and the
/// error used to name neither a key nor a line.
#[test]
fn every_syntax_error_points_somewhere_even_past_the_recursion_limit() {
    let text = include_str!("../fuzz/known-crashes/config-recursion-limit-no-location.toml");
    let errors = rejected(text);
    assert!(
        errors.issues.len() <= 21,
        "summarised: {}",
        errors.issues.len()
    );
    for issue in &errors.issues {
        assert!(
            issue.key.is_some() || issue.location.is_some(),
            "{issue:?} names no key and no place"
        );
    }
}

#[test]
fn check_config_warns_of_a_clear_text_password_in_a_readable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bedroom.toml");
    std::fs::write(
        &path,
        "[mqtt]\nurl = \"mqtt://10.0.0.2\"\npassword = \"s3cret\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let report = check_config_with_env(Some(&path), &no_env()).expect("valid");
    let text = report.to_string();
    assert_eq!(report.warnings.len(), 2, "{text}");
    assert!(
        text.contains("warning: the MQTT password goes to 10.0.0.2 in clear text"),
        "{text}"
    );
    assert!(
        text.contains(&format!("chmod 600 {}", path.display())),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let report = check_config_with_env(Some(&path), &no_env()).expect("valid");
    assert_eq!(report.warnings.len(), 1, "{report}");
}

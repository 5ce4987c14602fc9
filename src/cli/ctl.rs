//! `massaged ctl`: one command or query to a running daemon over MQTT, as
//! [`massaged::ctl`] sends it.

use super::{client_target, load, runtime};
use crate::CtlCmd;
use anyhow::Result;
use massaged::ctl::{CtlOutcome, CtlRequest};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::process::ExitCode;

/// Sends `action` to `device` (default: this configuration's); exits non-zero when the
/// daemon refused it or is offline.
pub(crate) fn ctl(
    config: Option<&Path>,
    device: Option<String>,
    action: CtlCmd,
) -> Result<ExitCode> {
    let config = load(config)?;
    massaged::logging::init("warn", massaged::config::LogFormat::Text);
    let (options, topics) = client_target(&config, device)?;
    let request = ctl_request(action);
    let outcome = runtime()?.block_on(massaged::ctl::run(options, topics, request))?;
    Ok(match outcome {
        CtlOutcome::Ok => ExitCode::SUCCESS,
        CtlOutcome::Failed => ExitCode::FAILURE,
    })
}

/// The command JSON (only the options given) or the query of a `ctl` subcommand.
fn ctl_request(action: CtlCmd) -> CtlRequest {
    let simple = |action: &str| {
        let mut map = Map::new();
        map.insert("action".into(), json!(action));
        CtlRequest::Command(map)
    };
    match action {
        CtlCmd::Start {
            routine,
            intensity,
            minutes,
            heat,
            force,
        } => {
            let mut map = Map::new();
            map.insert("action".into(), json!("start"));
            if let Some(routine) = routine {
                map.insert("routine".into(), Value::String(routine));
            }
            if let Some(intensity) = intensity {
                map.insert("intensity".into(), json!(intensity));
            }
            if let Some(minutes) = minutes {
                map.insert("minutes".into(), json!(minutes));
            }
            if heat {
                map.insert("heat".into(), json!(true));
            }
            if force {
                map.insert("force".into(), json!(true));
            }
            CtlRequest::Command(map)
        }
        CtlCmd::Stop => simple("stop"),
        CtlCmd::Pause => simple("pause"),
        CtlCmd::Resume => simple("resume"),
        CtlCmd::Skip => simple("skip"),
        CtlCmd::ClearFault => simple("clear_fault"),
        CtlCmd::Status => CtlRequest::Status,
        CtlCmd::Watch => CtlRequest::Watch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(action: CtlCmd) -> Value {
        match ctl_request(action) {
            CtlRequest::Command(map) => Value::Object(map),
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[test]
    fn start_sends_only_the_options_given() {
        let start = CtlCmd::Start {
            routine: Some("temple-circles".into()),
            intensity: None,
            minutes: Some(12),
            heat: true,
            force: false,
        };
        assert_eq!(
            command(start),
            json!({"action": "start", "routine": "temple-circles", "minutes": 12, "heat": true})
        );
        let bare = CtlCmd::Start {
            routine: None,
            intensity: Some(40),
            minutes: None,
            heat: false,
            force: true,
        };
        assert_eq!(
            command(bare),
            json!({"action": "start", "intensity": 40, "force": true})
        );
    }

    #[test]
    fn actions_are_commands_and_status_and_watch_are_queries() {
        assert_eq!(
            command(CtlCmd::ClearFault),
            json!({"action": "clear_fault"})
        );
        assert_eq!(command(CtlCmd::Stop), json!({"action": "stop"}));
        assert!(matches!(ctl_request(CtlCmd::Status), CtlRequest::Status));
        assert!(matches!(ctl_request(CtlCmd::Watch), CtlRequest::Watch));
    }
}

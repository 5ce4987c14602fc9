//! The invariants that both the cargo-fuzz targets (fuzz/fuzz_targets/) and the proptest suite
//! (tests/fuzz_props.rs) check, so the two fuzzers hold the code to the same rules. Included by
//! path (`#[path = ...] mod checks;`) from both, since the fuzz crate is not in the main build.
//!
//! Every check returns `Err(description)` on a broken invariant; a panic inside the code under
//! test is caught by libFuzzer or proptest themselves.
#![allow(dead_code)]

use massaged::config::{Config, ConfigErrors, Location};
use massaged::core::{Action, Date, Engine, Fault, Output, Rejection};
use massaged::mqtt::{ParsedCommand, parse_command};
use massaged::store::SavedState;
use std::time::{Duration, Instant};

/// Payload limit used by the checks (the daemon's default `mqtt.max_payload_bytes`).
pub const MAX_PAYLOAD: usize = 4096;

/// Longest rejection message accepted: messages echo untrusted text only in short pieces.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// A rejection must carry a non-empty, bounded message (its code is typed, so always present).
pub fn check_rejection(rejection: &Rejection) -> Result<(), String> {
    if rejection.code.as_str().is_empty() {
        return Err(format!("rejection {rejection:?} has an empty code"));
    }
    if rejection.message.trim().is_empty() {
        return Err(format!(
            "rejection {} has an empty message",
            rejection.code.as_str()
        ));
    }
    let chars = rejection.message.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(format!(
            "rejection {} message is {chars} characters (limit {MAX_MESSAGE_CHARS})",
            rejection.code.as_str()
        ));
    }
    Ok(())
}

/// Parses `payload`; rejections must be well formed. Returns the command when it parsed.
pub fn check_command(payload: &[u8], max_bytes: usize) -> Result<Option<ParsedCommand>, String> {
    match parse_command(payload, max_bytes) {
        Ok(parsed) => {
            let oversized_stop = parsed.command.action == Some(Action::Stop)
                && parsed
                    .refused
                    .iter()
                    .any(|r| r.code == massaged::core::RejectCode::TooLarge);
            if payload.len() > max_bytes && !oversized_stop {
                return Err(format!(
                    "{} bytes accepted over a {max_bytes}-byte limit",
                    payload.len()
                ));
            }
            Ok(Some(parsed))
        }
        Err(error) => {
            check_rejection(&error.rejection)?;
            Ok(None)
        }
    }
}

/// Environment overrides from text: one `NAME=VALUE` a line; names get the `MASSAGED__`
/// prefix when they lack it, so the fuzzer need not discover it.
pub fn env_from_text(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let name = if name.to_ascii_uppercase().starts_with("MASSAGED__") {
                name.to_owned()
            } else {
                format!("MASSAGED__{name}")
            };
            (name, value.to_owned())
        })
        .collect()
}

/// Splits fuzz input into TOML text and environment text at the first NUL byte.
pub fn split_config_input(data: &[u8]) -> Option<(&str, Vec<(String, String)>)> {
    let (toml, env) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let toml = std::str::from_utf8(toml).ok()?;
    let env = std::str::from_utf8(env).ok()?;
    Some((toml, env_from_text(env)))
}

/// Loads `text` with `env`. Every error names a key or a place (line or variable) and says
/// what is wrong; a configuration that loads must also build the engine the daemon runs.
pub fn check_config(text: &str, env: &[(String, String)]) -> Result<Option<Config>, String> {
    match Config::from_toml(text, env) {
        Ok(config) => {
            let engine_config = config
                .engine_config()
                .map_err(|e| format!("loaded, but engine_config failed: {e}"))?;
            let routines = config
                .routine_library()
                .map_err(|e| format!("loaded, but routine_library failed: {e}"))?;
            Engine::new(
                engine_config,
                routines,
                SavedState::default().settings(),
                Default::default(),
            )
            .map_err(|e| format!("loaded, but the engine refused it: {e}"))?;
            Ok(Some(config))
        }
        Err(errors) => {
            check_config_errors(text, env, &errors)?;
            Ok(None)
        }
    }
}

fn check_config_errors(
    text: &str,
    env: &[(String, String)],
    errors: &ConfigErrors,
) -> Result<(), String> {
    if errors.issues.is_empty() {
        return Err("an error with no issues".into());
    }
    // Display must work (check-config prints it).
    let _ = errors.to_string();
    let lines = text.split('\n').count();
    for issue in &errors.issues {
        if issue.message.trim().is_empty() {
            return Err(format!("issue with an empty message: {issue:?}"));
        }
        if issue.key.is_none() && issue.location.is_none() {
            return Err(format!("issue names neither a key nor a line: {issue}"));
        }
        match &issue.location {
            Some(Location::File { line, column })
                if *line == 0 || *line > lines || *column == 0 =>
            {
                return Err(format!(
                    "issue points outside the {lines}-line file: {issue}"
                ));
            }
            Some(Location::Env(name)) if !env.iter().any(|(var, _)| var == name) => {
                return Err(format!("issue names a variable that is not set: {issue}"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Longest time one `@` line may advance, in seconds.
const MAX_ADVANCE_S: u64 = 3600;

/// Timeouts one script may handle (frames while running): keeps one input to well under a
/// second; idle time, which has no timeouts, stays free. A script that spends them ends there.
const TIMEOUT_BUDGET: u32 = 20_000;

/// An engine driven by a script, checking that rejected commands change nothing.
///
/// Script lines: `@N` advances N seconds (running every timeout on the way), `!fault` reports
/// a driver fault, anything else is a command payload parsed as the daemon parses `{root}/set`.
/// A first line `%noheat` builds a device without a heater.
pub struct EngineRun {
    engine: Engine,
    max_level: u16,
    now: Instant,
    timeouts_left: u32,
}

impl EngineRun {
    /// An idle engine on the default configuration (built-in routines), today 2026-01-01.
    pub fn new(heater: bool) -> Result<EngineRun, String> {
        let mut config = Config::default();
        if !heater {
            config.driver.heat_channel = None;
        }
        let engine_config = config.engine_config().map_err(|e| e.to_string())?;
        let max_level = engine_config.max_level;
        let routines = config.routine_library().map_err(|e| e.to_string())?;
        let mut engine = Engine::new(
            engine_config,
            routines,
            SavedState::default().settings(),
            Default::default(),
        )
        .map_err(|e| e.to_string())?;
        let today: Date = "2026-01-01".parse().map_err(|_| "bad date".to_string())?;
        engine.set_today(today);
        let mut run = EngineRun {
            engine,
            max_level,
            now: Instant::now(),
            timeouts_left: TIMEOUT_BUDGET,
        };
        run.drain()?;
        Ok(run)
    }

    /// Runs a whole script.
    pub fn script(data: &[u8]) -> Result<(), String> {
        let heater = !data.starts_with(b"%noheat");
        let mut run = EngineRun::new(heater)?;
        for line in data.split(|&b| b == b'\n') {
            if line.starts_with(b"%") {
                continue;
            }
            run.line(line)?;
            if run.timeouts_left == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Runs one script line.
    pub fn line(&mut self, line: &[u8]) -> Result<(), String> {
        if let Some(digits) = line.strip_prefix(b"@") {
            let seconds = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.trim().parse::<u64>().ok());
            if let Some(seconds) = seconds {
                return self.advance(Duration::from_secs(seconds.min(MAX_ADVANCE_S)));
            }
        }
        if line == b"!fault" {
            self.engine.handle_fault(
                self.now,
                Fault {
                    code: "driver_io".into(),
                    message: "fuzz".into(),
                },
            );
            self.drain()?;
            if !self.engine.last_frame().is_zero() {
                return Err("outputs not zero after a fault".into());
            }
            return Ok(());
        }
        self.command(line)
    }

    /// Parses and applies one payload.
    pub fn command(&mut self, payload: &[u8]) -> Result<(), String> {
        let Some(parsed) = check_command(payload, MAX_PAYLOAD)? else {
            // The daemon answers a parse error and never reaches the engine.
            return Ok(());
        };
        let before = self.engine.snapshot(self.now);
        let frame_before = self.engine.last_frame().clone();
        let settings_before = self.engine.settings().clone();
        match self.engine.handle_command(self.now, &parsed.command) {
            Ok(()) => {
                let first = self.engine.poll_output();
                if parsed.command.action == Some(Action::Stop)
                    && !matches!(&first, Some(Output::Frame(f)) if f.is_zero())
                {
                    return Err(format!(
                        "the first output after stop is not an all-zero frame: {first:?}"
                    ));
                }
                if let Some(out) = first {
                    self.observe(&out)?;
                }
                self.drain()
            }
            Err(rejection) if parsed.command.action == Some(Action::Stop) => {
                // Safety beats all-or-nothing: a stop with bad fields still stops.
                check_rejection(&rejection)?;
                let settings_after = self.engine.settings().clone();
                if settings_after != settings_before {
                    return Err(format!("stop with bad fields applied them: {parsed:?}"));
                }
                let first = self.engine.poll_output();
                if !matches!(&first, Some(Output::Frame(f)) if f.is_zero()) {
                    return Err(format!(
                        "the first output after a refused stop is not an all-zero frame: {first:?}"
                    ));
                }
                self.drain()
            }
            Err(rejection) => {
                check_rejection(&rejection)?;
                let after = self.engine.snapshot(self.now);
                if after != before {
                    return Err(format!(
                        "rejected {:?} ({}) changed the state:\n before {before:?}\n after  {after:?}",
                        parsed.command,
                        rejection.code.as_str()
                    ));
                }
                if *self.engine.last_frame() != frame_before {
                    return Err(format!("rejected {:?} changed the outputs", parsed.command));
                }
                if *self.engine.settings() != settings_before {
                    return Err(format!(
                        "rejected {:?} changed the settings",
                        parsed.command
                    ));
                }
                if let Some(out) = self.engine.poll_output() {
                    return Err(format!("rejected {:?} emitted {out:?}", parsed.command));
                }
                Ok(())
            }
        }
    }

    /// Advances virtual time, handling every timeout up to the target.
    pub fn advance(&mut self, by: Duration) -> Result<(), String> {
        let target = self.now + by;
        while let Some(at) = self.engine.poll_timeout() {
            if at > target {
                break;
            }
            if self.timeouts_left == 0 {
                return Ok(());
            }
            self.timeouts_left -= 1;
            if at < self.now {
                return Err("a timeout went back in time".into());
            }
            self.now = at;
            self.engine.handle_timeout(at);
            self.drain()?;
            if self.engine.poll_timeout() == Some(at) {
                return Err("a timeout repeats at the same instant".into());
            }
        }
        self.now = target;
        Ok(())
    }

    fn drain(&mut self) -> Result<(), String> {
        while let Some(out) = self.engine.poll_output() {
            self.observe(&out)?;
        }
        Ok(())
    }

    fn observe(&self, out: &Output) -> Result<(), String> {
        if let Output::Frame(frame) = out {
            let top = frame.levels.iter().copied().max().unwrap_or(0);
            if top > self.max_level {
                return Err(format!("level {top} above max_level {}", self.max_level));
            }
        }
        Ok(())
    }
}

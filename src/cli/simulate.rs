//! `massaged simulate`: a routine's deterministic timeline, as a table, JSON, CSV or an SVG
//! picture, from the engine itself and without a device.

use super::{emit, load};
use crate::Format;
use anyhow::{Context, Result};
use massaged::config::Config;
use massaged::core::{Command, Engine};
use std::path::Path;
use std::process::ExitCode;

/// Session settings of `massaged simulate`.
pub(crate) struct SimulateArgs {
    pub(crate) minutes: Option<u32>,
    pub(crate) intensity: u32,
    pub(crate) frame_hz: Option<u32>,
    pub(crate) heat: bool,
}

/// Prints the timeline of `routine` (an id or display name) in `format`.
pub(crate) fn simulate(
    config: Option<&Path>,
    routine: &str,
    session: &SimulateArgs,
    format: Format,
) -> Result<ExitCode> {
    let config = load(config)?;
    emit(&timeline_text(&config, routine, session, format)?)?;
    Ok(ExitCode::SUCCESS)
}

fn timeline_text(
    config: &Config,
    routine: &str,
    session: &SimulateArgs,
    format: Format,
) -> Result<String> {
    let SimulateArgs {
        minutes,
        intensity,
        frame_hz,
        heat,
    } = *session;
    let mut engine_config = config.engine_config()?;
    if let Some(hz) = frame_hz {
        engine_config.frame_hz = hz;
    }
    let routines = config.routine_library()?;
    let length = massaged::core::routine::find_routine(&routines, routine)
        .map(|i| routines[i].duration().as_secs().div_ceil(60) as u32)
        .with_context(|| format!("no routine named '{routine}' (see `massaged routines`)"))?;
    let minutes = minutes.unwrap_or(length.min(engine_config.max_session_minutes));
    let settings = massaged::core::Settings {
        routine: routine.to_string(),
        intensity,
        minutes,
        heat,
        relaxer_date: None,
    };
    let engine = Engine::new(engine_config, routines, settings, Default::default())?;
    let start = Command {
        routine: Some(routine.to_string()),
        minutes: Some(minutes),
        intensity: Some(intensity),
        heat: Some(heat),
        force: true,
        ..Command::action(massaged::core::Action::Start)
    };
    let timeline = massaged::timeline::simulate(engine, &start)?;
    Ok(match format {
        Format::Table => timeline.to_table(),
        Format::Json => timeline.to_json(),
        Format::Csv => timeline.to_csv(),
        Format::Svg => massaged::picture::timeline_svg(&timeline),
    })
}

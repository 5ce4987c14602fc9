//! `massaged forget`: the command line around [`massaged::forget`].

use super::{client_target, emit, load, runtime};
use anyhow::Result;
use massaged::config::Config;
use std::path::Path;
use std::process::ExitCode;

/// Removes `device` (default: this configuration's) from Home Assistant and says so.
pub(crate) fn forget(config: Option<&Path>, device: Option<String>) -> Result<ExitCode> {
    let config = load(config)?;
    massaged::logging::init("warn", massaged::config::LogFormat::Text);
    let (options, topics) = client_target(&config, device)?;
    runtime()?.block_on(massaged::forget::run(options, topics))?;
    emit(&format!(
        "removed {} from Home Assistant and cleared its retained topics\n",
        topics_root(&config)
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn topics_root(config: &Config) -> String {
    format!("{}/{}", config.mqtt.base_topic, config.device_id())
}

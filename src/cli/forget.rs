//! `massaged forget`: the command line around [`massaged::forget`].

use super::{client_target, emit, load, runtime};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

/// Removes `device` (default: this configuration's) from Home Assistant and says so.
pub(crate) fn forget(config: Option<&Path>, device: Option<String>) -> Result<ExitCode> {
    let config = load(config)?;
    massaged::logging::init("warn", massaged::config::LogFormat::Text);
    let (options, topics) = client_target(&config, device)?;
    // The device named by `--device`, not the configuration's own.
    let root = topics.root().to_owned();
    runtime()?.block_on(massaged::forget::run(options, topics))?;
    emit(&format!(
        "removed {root} from Home Assistant and cleared its retained topics\n"
    ))?;
    Ok(ExitCode::SUCCESS)
}

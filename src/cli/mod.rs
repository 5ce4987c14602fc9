//! The bodies of the `massaged` subcommands, a file each (`main.rs` holds the command line and
//! hands each subcommand here), and what several of them share: loading the configuration,
//! the async runtime, writing to stdout, and the broker target of the MQTT clients.

pub(crate) mod check_config;
pub(crate) mod ctl;
pub(crate) mod forget;
pub(crate) mod outputs_off;
pub(crate) mod routines;
pub(crate) mod run;
pub(crate) mod simulate;

use anyhow::{Context, Result};
use massaged::config::Config;
use massaged::mqtt::link::LinkOptions;
use massaged::mqtt::topics::Topics;
use std::path::Path;

fn load(path: Option<&Path>) -> Result<Config> {
    Config::load(path).context("loading the configuration")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Writes `text` to stdout. A closed stdout (a pipe into `head`) ends the output quietly: the
/// reader has what it wanted, which is not an error worth a message or a panic.
fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// The broker and topics of `device` (default: this configuration's device), for `ctl` and
/// `forget`.
fn client_target(config: &Config, device: Option<String>) -> Result<(LinkOptions, Topics)> {
    let device_id = device.unwrap_or_else(|| config.device_id());
    let topics = Topics::new(
        &config.mqtt.base_topic,
        &device_id,
        &config.homeassistant.discovery_prefix,
    );
    let options = massaged::daemon::link_options_from_config(config, "massaged-ctl")?;
    Ok((options, topics))
}

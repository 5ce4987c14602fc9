//! `massaged run`: logging, configuration warnings, the optional embedded broker, then
//! [`massaged::daemon::run`] on a current-thread runtime.

use super::{load, runtime};
#[cfg(feature = "embedded-broker")]
use anyhow::Context;
use anyhow::Result;
use massaged::config::{Config, LogFormat};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

/// Runs the daemon until a signal stops it; `log_format` overrides `log.format`.
pub(crate) fn run(
    config_path: Option<&Path>,
    embedded_broker: Option<SocketAddr>,
    log_format: Option<LogFormat>,
) -> Result<ExitCode> {
    let config = load(config_path)?;
    massaged::logging::init(&config.log.level, log_format.unwrap_or(config.log.format));
    massaged::config::warnings::log_warnings(
        &config,
        massaged::config::config_path(config_path).as_deref(),
    );
    runtime()?.block_on(serve(config, embedded_broker))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg_attr(not(feature = "embedded-broker"), allow(unused_mut))]
async fn serve(mut config: Config, embedded_broker: Option<SocketAddr>) -> Result<()> {
    // Only the embedded broker changes the options.
    #[cfg_attr(not(feature = "embedded-broker"), allow(unused_mut))]
    let mut options = massaged::daemon::RunOptions::default();
    #[cfg(feature = "embedded-broker")]
    let _broker = match embedded_broker {
        Some(addr) => {
            let access = config.embedded_broker.access(addr)?;
            let broker = massaged::broker::EmbeddedBroker::start_with(access.clone())
                .with_context(|| format!("starting the embedded broker on {addr}"))?;
            let local = broker.local_addr();
            tracing::info!(addr = %local, "embedded MQTT broker listening");
            // The daemon is one of the broker's clients: same address (loopback when the broker
            // listens on every interface) and, when the broker asks for one, the same login.
            let host = match local.ip() {
                std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
                std::net::IpAddr::V6(ip) if ip.is_unspecified() => "::1".to_owned(),
                ip => ip.to_string(),
            };
            options.broker_override = Some((host, local.port()));
            if let Some(user) = access.credentials() {
                config.mqtt.username = Some(user.username.clone());
                config.mqtt.password = Some(user.password.clone());
                config.mqtt.password_file = None;
            }
            Some(broker)
        }
        None => None,
    };
    #[cfg(not(feature = "embedded-broker"))]
    if embedded_broker.is_some() {
        anyhow::bail!(
            "this build has no embedded broker (built without the cargo feature \
             `embedded-broker`); set mqtt.url to your MQTT broker instead"
        );
    }
    massaged::daemon::run(config, options).await?;
    Ok(())
}

//! `massaged run`: the wiring and the loop. The pure [`Service`] decides; this module opens
//! the device, the store and the MQTT link, then loops: wait in one biased `select!` for the
//! next input, feed it to the service, and let the shell (`shell.rs`) execute the actions it
//! returns, until the service exits.

pub(crate) mod calendar;
mod link_options;
mod pictures;
mod saver;
mod shell;
mod signals;

use crate::config::Config;
use crate::core::{Engine, EngineConfig};
use crate::device::DeviceError;
use crate::device::front::{self, Front};
use crate::mqtt::discovery::{DiscoveryInfo, discovery_payload};
use crate::mqtt::link::{Events, start_link};
use crate::mqtt::render::WallClock;
use crate::mqtt::topics::Topics;
use crate::service::{Service, ServiceConfig, Signal};
use crate::store::{LoadOutcome, SavedState, Store};
use crate::systemd::Notifier;
use link_options::daemon_link_options;
use pictures::{DrawnPicture, Pictures};
use saver::Saver;
use shell::Shell;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, sleep_until};

pub use link_options::link_options_from_config;
pub(crate) use signals::shutdown_signal;

/// Why the daemon could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration does not make a working engine.
    #[error("configuration: {0}")]
    Config(String),
    /// The device could not be opened.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    /// The MQTT link task ended unexpectedly.
    #[error("the MQTT link ended unexpectedly")]
    LinkEnded,
}

/// How `run` was asked to connect.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Connect to this broker instead of `mqtt.url` (the embedded broker's address).
    pub broker_override: Option<(String, u16)>,
}

/// Link events handled per loop turn at most, so timers get their turn during a flood.
const EVENT_BATCH: usize = 32;

/// Runs the service until SIGTERM, SIGINT, SIGHUP or SIGQUIT.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    let shutdown = shutdown_signal().map_err(DaemonError::Signals)?;
    run_until(config, options, shutdown).await
}

/// Runs the service until `shutdown` resolves (or the link ends), then stops cleanly.
pub(crate) async fn run_until(
    config: Config,
    options: RunOptions,
    shutdown: impl Future<Output = Signal>,
) -> Result<(), DaemonError> {
    let engine_config = config.engine_config().map_err(config_error)?;
    let slots = engine_config.channels.count();
    // Outputs are forced to zero before anything else happens.
    let front = Front::open(&config.driver, slots).await?;
    let store = Store::new(config.store.path.clone());
    let (engine, saved) = restore(&config, engine_config, &store)?;
    let device_id = config.device_id();
    let topics = Topics::new(
        &config.mqtt.base_topic,
        &device_id,
        &config.homeassistant.discovery_prefix,
    );
    let discovery = config
        .homeassistant
        .enabled
        .then(|| discovery(&config, &device_id, &topics, &engine));
    let link_options =
        daemon_link_options(&config, &options, &device_id, &topics).map_err(config_error)?;
    let broker = format!("{}:{}", link_options.host, link_options.port);
    tracing::info!(
        device_id = %device_id,
        broker = %broker,
        tls = link_options.tls.is_some(),
        driver = ?front.kind(),
        "massaged starting"
    );
    let notifier = Notifier::from_env();
    let now = Instant::now();
    let service_config = ServiceConfig {
        topics,
        discovery,
        clock: WallClock::new(now, SystemTime::now()),
        rate_limit_per_s: config.mqtt.rate_limit_per_s,
        rate_limit_burst: config.mqtt.rate_limit_burst,
        max_payload_bytes: config.mqtt.max_payload_bytes,
        save_debounce: Duration::from_millis(config.store.debounce_ms.into()),
        watchdog: notifier.watchdog_interval(),
        broker,
        routine_picture: config.homeassistant.enabled,
    };
    let (pictures, drawn) = Pictures::new(engine.config().clone(), engine.routines().to_vec());
    let mut service = Service::new(now, engine, saved, service_config, fastrand::Rng::new());
    service.set_today(
        now,
        calendar::local_today(),
        calendar::until_next_midnight(),
    );
    let (publisher, events) = start_link(link_options);
    let saver = Saver::spawn(store);
    let shell = Shell::new(service, front, saver, publisher, pictures, notifier);
    let heartbeat = front::heartbeat_interval(&config.driver);
    serve(shell, events, drawn, heartbeat, shutdown).await
}

fn config_error(error: impl std::fmt::Display) -> DaemonError {
    DaemonError::Config(error.to_string())
}

/// The engine as the store left it; a state that cannot be used is logged and replaced.
fn restore(
    config: &Config,
    engine_config: EngineConfig,
    store: &Store,
) -> Result<(Engine, SavedState), DaemonError> {
    let loaded = store.load();
    match &loaded.outcome {
        LoadOutcome::Fresh | LoadOutcome::Loaded => {}
        outcome => {
            tracing::warn!(path = %config.store.path.display(), %outcome, "saved state not usable")
        }
    }
    let saved = loaded.state;
    let mut engine = Engine::new(
        engine_config,
        config.routine_library().map_err(config_error)?,
        saved.settings(),
        saved.counters(),
    )
    .map_err(config_error)?;
    if saved.relaxer_date_lost {
        // No saved date to trust: the guard holds until the user sets the date again.
        tracing::warn!(
            "relaxer date lost with the saved state; starting needs force until it is set again"
        );
        engine.mark_relaxer_date_lost();
    }
    Ok((engine, saved))
}

/// The Home Assistant discovery payload for this device and its routines.
fn discovery(config: &Config, device_id: &str, topics: &Topics, engine: &Engine) -> String {
    let ha = &config.homeassistant;
    discovery_payload(&DiscoveryInfo {
        manufacturer: ha.manufacturer.clone(),
        model: ha.model.clone(),
        serial_number: ha.serial_number.clone(),
        ..DiscoveryInfo::new(
            device_id,
            &config.device.name,
            topics.clone(),
            engine.routines().iter().map(|r| r.name.clone()).collect(),
            engine.config().max_session_minutes,
        )
    })
}

/// The loop: feeds the service one input, executes what it returns, and waits for the next
/// input until the service exits. Timers and the device come before MQTT events, and events
/// come in bounded batches, so a flood of commands cannot starve the watchdog, the heartbeat
/// or the frames.
async fn serve(
    mut shell: Shell,
    mut events: Events,
    mut pictures: mpsc::Receiver<DrawnPicture>,
    heartbeat: Option<Duration>,
    shutdown: impl Future<Output = Signal>,
) -> Result<(), DaemonError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut heartbeat = heartbeat.map(|period| {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let mut result = Ok(());
    loop {
        shell.execute();
        if shell.service.is_exited() {
            break;
        }
        let due = shell.service.poll_timeout();
        tokio::select! {
            biased;
            signal = &mut shutdown => shell.service.handle_signal(Instant::now(), signal),
            _ = sleep_until_opt(due) => shell.service.handle_timeout(Instant::now()),
            _ = tick_opt(&mut heartbeat) => shell.front.heartbeat(),
            report = shell.front.report() => shell.on_device(report),
            result = shell.saver.result() => {
                if let Some(result) = result {
                    shell.service.handle_saved(Instant::now(), result);
                }
            }
            Some((key, drawn)) = pictures.recv() => shell.service.handle_picture(&key, drawn),
            received = events.recv() => {
                let Some(first) = received else {
                    result = Err(DaemonError::LinkEnded);
                    shell.service.shutdown(Instant::now());
                    continue;
                };
                let mut next = Some(first);
                let mut taken = 0;
                while let Some(event) = next.take() {
                    shell.on_link(event);
                    shell.execute();
                    taken += 1;
                    if taken < EVENT_BATCH {
                        next = events.try_recv();
                    }
                }
            }
        }
    }
    shell.close(&mut events).await;
    result
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

async fn tick_opt(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

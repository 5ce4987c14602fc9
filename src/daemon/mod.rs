//! `massaged run`: wires MQTT, the engine, the device and the store with one `select!` loop.

pub mod calendar;
pub mod rate;
mod saver;

use crate::config::Config;
use crate::core::{Action, Engine, Fault, Output, RejectCode, Rejection, SessionState};
use crate::device::{DeviceError, Driver};
use crate::mqtt::command::{CommandError, ParsedCommand, parse_command};
use crate::mqtt::discovery::{DiscoveryInfo, discovery_payload};
use crate::mqtt::last_message::LastMessage;
use crate::mqtt::link::{LastWill, Link, LinkEvent, LinkOptions, Publisher};
use crate::mqtt::render::{
    WallClock, render_event, render_rejected, render_response, render_state,
};
use crate::mqtt::routine_image::{self, PictureKey, PictureSchedule};
use crate::mqtt::topics::{PAYLOAD_OFFLINE, PAYLOAD_ONLINE, Topics};
use crate::store::{SavedState, Store};
use crate::systemd::Notifier;
use rate::TokenBucket;
use saver::Saver;
use std::time::{Duration, Instant, SystemTime};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::sleep_until;

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

/// Longest delay between reconnect attempts: a broker that comes back is found within this
/// (plus the connect itself), so the device is `online` again within 2 s (issue 4). An
/// attempt against a broker that is down costs one refused connection.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Longest wait for the broker to take `offline` and our DISCONNECT on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);
/// Home Assistant asks for a republish with its birth message; spread the answers.
const REPUBLISH_DELAY_MS: std::ops::Range<u64> = 200..2500;

/// The running service's state, owned by the main loop.
struct Daemon {
    engine: Engine,
    driver: Driver,
    publisher: Publisher,
    topics: Topics,
    discovery: Option<String>,
    clock: WallClock,
    bucket: TokenBucket,
    max_payload: usize,
    saver: Saver,
    saved: SavedState,
    connected: bool,
    /// Publishes dropped since the last warning about them.
    publishes_dropped: std::cell::Cell<u64>,
    /// When the last dropped-publish warning was logged.
    drop_warned_at: std::cell::Cell<Option<Instant>>,
    /// When the last `rate_limited` rejection was logged.
    rate_limit_replied: Option<Instant>,
    republish_at: Option<tokio::time::Instant>,
    /// Reason of the last refused command, shown in the state until one is accepted.
    last_message: LastMessage,
    /// When to publish the "Routine" picture; `None` without Home Assistant discovery.
    picture: Option<PictureSchedule>,
    /// What the picture is drawn with (the same device the engine drives).
    picture_config: crate::core::EngineConfig,
    /// Pictures drawn off the loop come back here, to be published in order.
    pictures_done: mpsc::Sender<DrawnPicture>,
    notifier: Notifier,
    /// READY=1 goes out after the first connection attempt, or at this deadline at the latest.
    ready_deadline: Option<tokio::time::Instant>,
    broker: String,
}

/// A routine picture drawn on a blocking thread (one simulated session; too slow for the loop).
type DrawnPicture = (PictureKey, Result<String, crate::picture::PictureError>);

/// Longest wait for the first connection attempt before telling systemd we are ready anyway.
const READY_DEADLINE: Duration = Duration::from_secs(5);

/// Runs the service until SIGTERM or SIGINT.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    let engine_config = config
        .engine_config()
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    let slots = engine_config.channels.count();
    // Outputs are forced to zero before anything else happens.
    let mut driver = Driver::open(&config.driver, slots).await?;
    driver.all_off().await?;

    let store = Store::new(config.store.path.clone());
    let (saved, warning) = store.load();
    if let Some(warning) = warning {
        tracing::warn!(path = %config.store.path.display(), %warning, "saved state not usable, using defaults");
    }
    let routines = config
        .routine_library()
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    let mut engine = Engine::new(
        engine_config.clone(),
        routines,
        saved.settings(),
        saved.counters(),
    )
    .map_err(|e| DaemonError::Config(e.to_string()))?;
    engine.set_today(calendar::local_today());

    let device_id = config.device_id();
    let topics = Topics::new(
        &config.mqtt.base_topic,
        &device_id,
        &config.homeassistant.discovery_prefix,
    );
    let discovery = config.homeassistant.enabled.then(|| {
        let ha = &config.homeassistant;
        discovery_payload(&DiscoveryInfo {
            manufacturer: ha.manufacturer.clone(),
            model: ha.model.clone(),
            serial_number: ha.serial_number.clone(),
            ..DiscoveryInfo::new(
                &device_id,
                &config.device.name,
                topics.clone(),
                engine.routines().iter().map(|r| r.name.clone()).collect(),
                engine_config.max_session_minutes,
            )
        })
    });
    let link_options = link_options(&config, &options, &device_id, &topics)?;
    tracing::info!(
        device_id = %device_id,
        broker = %format!("{}:{}", link_options.host, link_options.port),
        tls = link_options.tls.is_some(),
        driver = ?driver.kind(),
        "massaged starting"
    );
    let broker = format!("{}:{}", link_options.host, link_options.port);
    let (publisher, events) = Link::start(link_options);
    let saver = Saver::spawn(
        store,
        Duration::from_millis(config.store.debounce_ms.into()),
    );
    let (pictures_done, mut pictures) = mpsc::channel(2);
    let picture = config
        .homeassistant
        .enabled
        .then(|| PictureSchedule::new(routine_image::MIN_INTERVAL));
    let mut daemon = Daemon {
        engine,
        driver,
        publisher,
        topics,
        discovery,
        clock: WallClock::new(Instant::now(), SystemTime::now()),
        bucket: TokenBucket::new(config.mqtt.rate_limit_per_s, config.mqtt.rate_limit_burst),
        max_payload: config.mqtt.max_payload_bytes,
        saver,
        saved,
        connected: false,
        rate_limit_replied: None,
        publishes_dropped: std::cell::Cell::new(0),
        drop_warned_at: std::cell::Cell::new(None),
        republish_at: None,
        last_message: LastMessage::default(),
        picture,
        picture_config: engine_config,
        pictures_done,
        notifier: Notifier::from_env(),
        ready_deadline: Some(tokio::time::Instant::now() + READY_DEADLINE),
        broker,
    };
    let mut events = events;
    daemon.drain().await;
    let result = daemon.main_loop(&mut events, &mut pictures).await;
    daemon.shutdown(&mut events).await;
    result
}

fn link_options(
    config: &Config,
    options: &RunOptions,
    device_id: &str,
    topics: &Topics,
) -> Result<LinkOptions, DaemonError> {
    let client_id = if config.mqtt.client_id.is_empty() {
        format!("massaged-{device_id}")
    } else {
        config.mqtt.client_id.clone()
    };
    let mut link = config
        .mqtt_link_options(client_id)
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    if let Some((host, port)) = &options.broker_override {
        // The embedded broker listens in plain TCP on loopback.
        (link.host, link.port, link.tls) = (host.clone(), *port, None);
    }
    link.backoff_max = RECONNECT_BACKOFF_MAX;
    link.last_will = Some(LastWill {
        topic: topics.availability.clone(),
        payload: PAYLOAD_OFFLINE.into(),
        retain: true,
    });
    link.subscriptions = vec![topics.set.clone(), topics.ha_status.clone()];
    Ok(link)
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
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

/// Debug builds only: panics in the shell when a command's payload equals the environment
/// variable `MASSAGED_DEBUG_PANIC_ON`, so tests can check that a panic leaves the outputs off.
#[cfg(debug_assertions)]
fn debug_panic_on(payload: &[u8]) {
    if std::env::var_os("MASSAGED_DEBUG_PANIC_ON").is_some_and(|v| v.as_encoded_bytes() == payload)
    {
        panic!("deliberate panic (debug build, MASSAGED_DEBUG_PANIC_ON)");
    }
}

fn to_tokio(at: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(at)
}

impl Daemon {
    async fn main_loop(
        &mut self,
        events: &mut mpsc::Receiver<LinkEvent>,
        pictures: &mut mpsc::Receiver<DrawnPicture>,
    ) -> Result<(), DaemonError> {
        let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
        let mut midnight = tokio::time::Instant::now() + calendar::until_next_midnight();
        // Pinged from this loop, so a hung loop is what the watchdog catches.
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        loop {
            let engine_due = self.engine.poll_timeout().map(to_tokio);
            let heartbeat_due = self.driver.heartbeat_due().map(to_tokio);
            let picture_due = self
                .picture
                .as_ref()
                .filter(|_| self.connected)
                .and_then(PictureSchedule::poll_timeout)
                .map(to_tokio);
            tokio::select! {
                biased;
                _ = sigterm.recv() => {
                    tracing::info!(signal = "SIGTERM", "stopping");
                    return Ok(());
                }
                _ = sigint.recv() => {
                    tracing::info!(signal = "SIGINT", "stopping");
                    return Ok(());
                }
                _ = sleep_until_opt(engine_due) => {
                    self.engine.handle_timeout(Instant::now());
                }
                event = events.recv() => match event {
                    Some(event) => self.on_link_event(event).await,
                    None => return Err(DaemonError::LinkEnded),
                },
                _ = sleep_until_opt(heartbeat_due) => {
                    if let Err(error) = self.driver.heartbeat().await {
                        self.fault(error).await;
                    }
                }
                // Due: `drain` below hands it out.
                _ = sleep_until_opt(picture_due) => {}
                Some((key, drawn)) = pictures.recv() => self.publish_picture(&key, drawn),
                _ = sleep_until_opt(self.republish_at) => {
                    self.republish_at = None;
                    self.publish_all();
                }
                _ = sleep_until_opt(self.ready_deadline) => {
                    tracing::warn!(broker = %self.broker, "no broker answer yet; reporting ready and retrying");
                    self.mark_ready();
                }
                _ = tick_opt(&mut watchdog) => {
                    self.notifier.watchdog();
                }
                _ = sleep_until(midnight) => {
                    self.engine.set_today(calendar::local_today());
                    midnight = tokio::time::Instant::now() + calendar::until_next_midnight();
                }
            }
            self.drain().await;
        }
    }

    async fn on_link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected => {
                self.connected = true;
                self.publish_all();
                self.mark_ready();
                self.notifier
                    .status(&format!("connected to {}", self.broker));
            }
            LinkEvent::Disconnected { reason } => {
                self.connected = false;
                tracing::warn!(%reason, broker = %self.broker, "mqtt connection lost or refused; retrying with backoff");
                self.mark_ready();
                self.notifier
                    .status(&format!("broker {} unreachable, retrying", self.broker));
            }
            LinkEvent::Message {
                topic,
                payload,
                retain,
            } => {
                if topic == self.topics.set {
                    self.on_set(&payload, retain).await;
                } else if topic == self.topics.ha_status {
                    if payload.as_ref() == b"online" {
                        let delay = fastrand::u64(REPUBLISH_DELAY_MS);
                        tracing::info!(
                            delay_ms = delay,
                            "home assistant online; republishing soon"
                        );
                        self.republish_at =
                            Some(tokio::time::Instant::now() + Duration::from_millis(delay));
                    }
                } else {
                    tracing::debug!(%topic, "message on an unexpected topic ignored");
                }
            }
        }
    }

    fn mark_ready(&mut self) {
        if self.ready_deadline.take().is_some() {
            self.notifier.ready();
        }
    }

    /// Availability, discovery and state, all retained: what a (re)connected broker or a
    /// restarted Home Assistant needs.
    fn publish_all(&mut self) {
        self.publish(
            &self.topics.availability.clone(),
            PAYLOAD_ONLINE.as_bytes().to_vec(),
            true,
        );
        if let Some(discovery) = self.discovery.clone() {
            self.publish(
                &self.topics.discovery_config.clone(),
                discovery.into_bytes(),
                true,
            );
        }
        self.publish_state();
        if let Some(picture) = &mut self.picture {
            picture.republish();
        }
    }

    /// Starts drawing the routine picture when the schedule says one is due.
    fn schedule_picture(&mut self) {
        let Some(picture) = self.picture.as_mut() else {
            return;
        };
        let settings = self.engine.settings();
        picture.select(PictureKey {
            routine: settings.routine.clone(),
            minutes: settings.minutes,
            intensity: settings.intensity,
            heat: settings.heat,
        });
        if !self.connected {
            return;
        }
        let Some(key) = picture.poll_publish(Instant::now()) else {
            return;
        };
        let Some(routine) = self
            .engine
            .routines()
            .iter()
            .find(|r| r.id == key.routine)
            .cloned()
        else {
            return;
        };
        let config = self.picture_config.clone();
        let done = self.pictures_done.clone();
        tokio::task::spawn_blocking(move || {
            let drawn = crate::picture::routine_svg(
                &config,
                &routine,
                key.minutes,
                key.intensity,
                key.heat,
            );
            // The loop may have ended (shutdown): nothing left to publish to.
            let _ = done.blocking_send((key, drawn));
        });
    }

    /// Publishes a drawn picture, retained, unless a newer selection superseded it.
    fn publish_picture(
        &self,
        key: &PictureKey,
        drawn: Result<String, crate::picture::PictureError>,
    ) {
        if self.picture.as_ref().and_then(PictureSchedule::published) != Some(key) {
            return;
        }
        match drawn {
            Ok(svg) => {
                tracing::debug!(routine = %key.routine, bytes = svg.len(), "routine picture");
                self.publish(
                    &routine_image::image_topic(&self.topics),
                    svg.into_bytes(),
                    true,
                );
            }
            Err(error) => {
                tracing::warn!(routine = %key.routine, %error, "could not draw the routine picture");
            }
        }
    }

    /// The retained state as of now.
    fn publish_state(&self) {
        let state = render_state(
            &self.engine.snapshot(Instant::now()),
            &self.clock,
            self.last_message.get(),
        );
        self.publish(&self.topics.state, state.into_bytes(), true);
    }

    /// Queues a publish without ever waiting: the loop must keep writing frames even when the
    /// broker is away (everything retained is republished on reconnect).
    fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) {
        if !self.connected {
            return;
        }
        if let Err(error) = self.publisher.try_publish(topic, payload, retain) {
            // A broker that stopped reading would otherwise turn every frame-loop turn into a
            // log line: warn at most once per second, with the count since the last warning.
            let dropped = self.publishes_dropped.get() + 1;
            self.publishes_dropped.set(dropped);
            let now = Instant::now();
            if self
                .drop_warned_at
                .get()
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
            {
                self.drop_warned_at.set(Some(now));
                self.publishes_dropped.set(0);
                tracing::warn!(%topic, %error, dropped, "mqtt publish dropped");
            }
        }
    }

    async fn on_set(&mut self, payload: &[u8], retain: bool) {
        if payload.is_empty() {
            // Our own clearing of a retained command comes back empty.
            return;
        }
        if retain {
            tracing::warn!(topic = %self.topics.set, bytes = payload.len(), "retained command ignored and cleared");
            if let Err(error) = self
                .publisher
                .try_publish(&self.topics.set, Vec::new(), true)
            {
                tracing::warn!(%error, "could not clear the retained command");
            }
            return;
        }
        #[cfg(debug_assertions)]
        debug_panic_on(payload);
        let now = Instant::now();
        let ParsedCommand { id, command } = match parse_command(payload, self.max_payload) {
            Ok(parsed) => parsed,
            Err(CommandError { id, rejection }) => {
                self.reject(id.as_deref(), &rejection);
                return;
            }
        };
        if command.action != Some(Action::Stop) && !self.bucket.allow(now) {
            // Every refused command is answered (event, and response when it carried an id),
            // but a flood must not become a flood of log lines: those go out once per second.
            let loud = self
                .rate_limit_replied
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
            if loud {
                self.rate_limit_replied = Some(now);
            }
            let rejection = Rejection::new(
                RejectCode::RateLimited,
                "too many commands; stop is always accepted",
            );
            self.reject_with(id.as_deref(), &rejection, loud);
            return;
        }
        if command.action == Some(Action::ClearFault)
            && self.engine.state() == SessionState::Fault
            && let Err(error) = self.driver.recover().await
        {
            let rejection = Rejection::new(
                RejectCode::FaultActive,
                format!("the device still fails: {error}"),
            );
            self.reject(id.as_deref(), &rejection);
            return;
        }
        match self.engine.handle_command(now, &command) {
            Ok(()) => {
                tracing::info!(
                    action = command.action.map(|a| a.as_str()),
                    id = id.as_deref(),
                    "command accepted"
                );
                if self.last_message.on_accepted() {
                    self.publish_state();
                }
                if let Some(id) = id {
                    let reply = render_response(&id, Ok(()));
                    self.publish(&self.topics.response.clone(), reply.into_bytes(), false);
                }
            }
            Err(rejection) => self.reject(id.as_deref(), &rejection),
        }
    }

    fn reject(&mut self, id: Option<&str>, rejection: &Rejection) {
        self.reject_with(id, rejection, true);
    }

    /// Answers a refused command: the `rejected` event, the response when it carried an id,
    /// and, when `loud`, a log line.
    fn reject_with(&mut self, id: Option<&str>, rejection: &Rejection, loud: bool) {
        if loud {
            tracing::info!(code = rejection.code.as_str(), message = %rejection.message, id, "command rejected");
        }
        self.publish(
            &self.topics.event,
            render_rejected(rejection, id).into_bytes(),
            false,
        );
        if let Some(id) = id {
            let reply = render_response(id, Err(rejection));
            self.publish(&self.topics.response, reply.into_bytes(), false);
        }
        if self.last_message.on_rejected(rejection) {
            self.publish_state();
        }
    }

    async fn fault(&mut self, error: DeviceError) {
        tracing::error!(%error, "device fault: outputs off");
        // Best effort: the device may be gone entirely.
        if let Err(error) = self.driver.all_off().await {
            tracing::warn!(%error, "could not zero the outputs after the fault");
        }
        if self.engine.state() != SessionState::Fault {
            self.engine.handle_fault(
                Instant::now(),
                Fault {
                    code: error.code().to_string(),
                    message: error.to_string(),
                },
            );
        }
    }

    /// Hands every engine output to the device and the broker, then schedules a save.
    async fn drain(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Frame(frame) => {
                    if let Err(error) = self.driver.write(&frame).await {
                        self.fault(error).await;
                    }
                }
                Output::State(snapshot) => {
                    let state = render_state(&snapshot, &self.clock, self.last_message.get());
                    self.publish(&self.topics.state.clone(), state.into_bytes(), true);
                }
                Output::Event(event) => {
                    tracing::info!(event = event.kind.as_str(), routine = %event.routine, "session event");
                    self.publish(
                        &self.topics.event.clone(),
                        render_event(&event).into_bytes(),
                        false,
                    );
                }
            }
        }
        self.schedule_picture();
        let current = SavedState::new(self.engine.settings(), self.engine.counters());
        if current != self.saved {
            self.saved = current.clone();
            self.saver.save(current);
        }
    }

    /// Outputs to zero, `offline` published, state saved, broker disconnected.
    async fn shutdown(mut self, events: &mut mpsc::Receiver<LinkEvent>) {
        self.engine.shutdown(Instant::now());
        self.notifier.stopping();
        self.drain().await;
        self.publish(
            &self.topics.availability,
            PAYLOAD_OFFLINE.as_bytes().to_vec(),
            true,
        );
        let Daemon {
            driver,
            publisher,
            saver,
            connected,
            ..
        } = self;
        if let Err(error) = driver.close().await {
            tracing::warn!(%error, "closing the device");
        }
        saver.finish(SHUTDOWN_GRACE).await;
        if connected {
            // DISCONNECT is queued after `offline`; the link reports when it went out.
            let disconnected = async {
                if let Err(error) = publisher.disconnect().await {
                    tracing::warn!(%error, "mqtt disconnect");
                    return;
                }
                while let Some(event) = events.recv().await {
                    if matches!(event, LinkEvent::Disconnected { .. }) {
                        return;
                    }
                }
            };
            if tokio::time::timeout(SHUTDOWN_GRACE, disconnected)
                .await
                .is_err()
            {
                tracing::warn!("broker did not take the disconnect in time");
            }
        }
        tracing::info!("massaged stopped");
    }
}

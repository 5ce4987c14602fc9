//! `massaged run`: wiring only. The pure [`Service`] decides; this module opens the device,
//! the store and the MQTT link, feeds the service its inputs from one `select!` loop and
//! executes the actions it returns.

pub mod calendar;
mod link_options;
mod saver;
mod signals;

use crate::config::Config;
use crate::core::{Engine, EngineConfig, Routine};
use crate::device::DeviceError;
use crate::device::front::{self, DeviceReport, Front};
use crate::mqtt::discovery::{DiscoveryInfo, discovery_payload};
use crate::mqtt::link::{Events, LastWill, LinkEvent, LinkOptions, Publisher, start_link};
use crate::mqtt::render::WallClock;
use crate::mqtt::routine_image::PictureKey;
use crate::mqtt::topics::{PAYLOAD_OFFLINE, Topics};
use crate::service::{Action, DeviceFailure, LinkInput, Notice, Service, ServiceConfig, Signal};
use crate::store::{LoadOutcome, Store};
use crate::systemd::Notifier;
use saver::Saver;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, sleep_until};

pub use link_options::link_options_from_config;
pub use signals::shutdown_signal;

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
    let engine_config = config
        .engine_config()
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    let slots = engine_config.channels.count();
    // Outputs are forced to zero before anything else happens.
    let front = Front::open(&config.driver, slots).await?;

    let store = Store::new(config.store.path.clone());
    let loaded = store.load();
    match &loaded.outcome {
        LoadOutcome::Fresh | LoadOutcome::Loaded => {}
        outcome => {
            tracing::warn!(path = %config.store.path.display(), %outcome, "saved state not usable")
        }
    }
    let saved = loaded.state;
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
    if saved.relaxer_date_lost {
        // No saved date to trust: the guard holds until the user sets the date again.
        tracing::warn!(
            "relaxer date lost with the saved state; starting needs force until it is set again"
        );
        engine.mark_relaxer_date_lost();
    }

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
    let routines_for_pictures = engine.routines().to_vec();
    let mut service = Service::new(now, engine, saved, service_config, fastrand::Rng::new());
    service.set_today(
        now,
        calendar::local_today(),
        calendar::until_next_midnight(),
    );
    let (publisher, events) = start_link(link_options);
    let (pictures_done, pictures) = mpsc::channel(2);
    let shell = Shell {
        pictures: Pictures {
            config: engine_config,
            routines: routines_for_pictures,
            done: pictures_done,
        },
        service,
        front,
        publisher,
        saver: Saver::spawn(store),
        notifier,
        connected: false,
        shed_seen: 0,
    };
    shell
        .run(
            events,
            pictures,
            front::heartbeat_interval(&config.driver),
            shutdown,
        )
        .await
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
    let mut link = link_options_from_config(config, client_id)
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    if let Some((host, port)) = &options.broker_override {
        // The embedded broker listens in plain TCP on loopback.
        (link.host, link.port, link.tls) = (host.clone(), *port, None);
    }
    link.backoff_max = RECONNECT_BACKOFF_MAX;
    // Commands up to the limit reach us (and over it are answered `too_large`).
    link.max_payload_bytes = config.mqtt.max_payload_bytes;
    link.last_will = Some(LastWill {
        topic: topics.availability.clone(),
        payload: PAYLOAD_OFFLINE.into(),
        retain: true,
    });
    link.subscriptions = vec![topics.set.clone(), topics.ha_status.clone()];
    Ok(link)
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

/// Debug builds only: panics in the shell when a command's payload equals the environment
/// variable `MASSAGED_DEBUG_PANIC_ON`, so tests can check that a panic leaves the outputs off.
#[cfg(debug_assertions)]
fn debug_panic_on(event: &LinkEvent) {
    if let LinkEvent::Message {
        payload,
        retain: false,
        ..
    } = event
        && std::env::var_os("MASSAGED_DEBUG_PANIC_ON")
            .is_some_and(|v| v.as_encoded_bytes() == payload.as_ref())
    {
        panic!("deliberate panic (debug build, MASSAGED_DEBUG_PANIC_ON)");
    }
}

fn link_input(event: LinkEvent) -> LinkInput {
    match event {
        LinkEvent::Connected => LinkInput::Connected,
        LinkEvent::Disconnected { reason } => LinkInput::Disconnected { reason },
        LinkEvent::Message {
            topic,
            payload,
            retain,
        } => LinkInput::Message {
            topic,
            payload,
            retain,
        },
        LinkEvent::Overloaded { shed, ids } => LinkInput::Overloaded { shed, ids },
    }
}

/// A routine picture drawn off the loop, for the service's [`Service::handle_picture`].
type DrawnPicture = (PictureKey, Result<String, String>);

/// What the routine pictures are drawn from, and where they go when done.
struct Pictures {
    config: EngineConfig,
    routines: Vec<Routine>,
    done: mpsc::Sender<DrawnPicture>,
}

impl Pictures {
    /// Draws on a blocking thread: one simulated session is too slow for the loop.
    fn draw(&self, key: PictureKey) {
        let Some(routine) = self.routines.iter().find(|r| r.id == key.routine).cloned() else {
            return;
        };
        let config = self.config.clone();
        let done = self.done.clone();
        tokio::task::spawn_blocking(move || {
            let drawn = crate::picture::routine_svg(
                &config,
                &routine,
                key.minutes,
                key.intensity,
                key.heat,
            )
            .map_err(|error| error.to_string());
            // The loop may have ended (shutdown): nothing is left to publish to.
            let _ = done.blocking_send((key, drawn));
        });
    }
}

/// What executes the service's actions.
struct Shell {
    pictures: Pictures,
    service: Service,
    front: Front,
    publisher: Publisher,
    saver: Saver,
    notifier: Notifier,
    /// Whether the broker took our last connection (for the DISCONNECT at shutdown).
    connected: bool,
    /// Outbound publishes the link had shed when last looked at.
    shed_seen: u64,
}

impl Shell {
    /// The loop: timers and the device before MQTT events, events in bounded batches, so a
    /// flood of commands cannot starve the watchdog, the heartbeat or the frames.
    async fn run(
        mut self,
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
            self.execute();
            if self.service.is_exited() {
                break;
            }
            let due = self.service.poll_timeout();
            tokio::select! {
                biased;
                signal = &mut shutdown => self.service.handle_signal(Instant::now(), signal),
                _ = sleep_until_opt(due) => self.service.handle_timeout(Instant::now()),
                _ = tick_opt(&mut heartbeat) => self.front.heartbeat(),
                report = self.front.report() => self.on_device(report),
                result = self.saver.result() => {
                    if let Some(result) = result {
                        self.service.handle_saved(Instant::now(), result);
                    }
                }
                Some((key, drawn)) = pictures.recv() => self.service.handle_picture(&key, drawn),
                received = events.recv() => {
                    let Some(first) = received else {
                        result = Err(DaemonError::LinkEnded);
                        self.service.shutdown(Instant::now());
                        continue;
                    };
                    let mut next = Some(first);
                    let mut taken = 0;
                    while let Some(event) = next.take() {
                        #[cfg(debug_assertions)]
                        debug_panic_on(&event);
                        match event {
                            LinkEvent::Connected => self.connected = true,
                            LinkEvent::Disconnected { .. } => self.connected = false,
                            LinkEvent::Message { .. } | LinkEvent::Overloaded { .. } => {}
                        }
                        self.service.handle_link(Instant::now(), link_input(event));
                        self.execute();
                        taken += 1;
                        if taken < EVENT_BATCH {
                            next = events.try_recv();
                        }
                    }
                }
            }
        }
        self.close(&mut events).await;
        result
    }

    fn on_device(&mut self, report: Option<DeviceReport>) {
        let now = Instant::now();
        match report {
            Some(DeviceReport::Failed(error)) => {
                self.service
                    .handle_device(now, Err(DeviceFailure::from(&error)));
            }
            Some(DeviceReport::Recovered(result)) => {
                let result = result.map_err(|error| DeviceFailure::from(&error));
                self.service.handle_recovered(now, result);
            }
            Some(DeviceReport::Closed(_)) | None => {
                // The device thread ended (it panicked): nothing drives the outputs any more.
                let failure = DeviceFailure {
                    code: "driver_io".into(),
                    message: "the device thread ended unexpectedly".into(),
                };
                self.service.handle_device(now, Err(failure));
                self.service.shutdown(now);
            }
        }
    }

    /// Executes every action the service has queued; none of them waits. Bulk publishes the
    /// link shed since the last turn are counted in the state.
    fn execute(&mut self) {
        let shed = self.publisher.shed_totals().outbound;
        if shed > self.shed_seen {
            self.service
                .handle_shed(Instant::now(), shed - self.shed_seen);
            self.shed_seen = shed;
        }
        while let Some(action) = self.service.poll_action() {
            match action {
                Action::WriteFrame(frame) => self.front.write(frame),
                Action::Publish(publish) => {
                    if let Err(error) = self.publisher.send(
                        &publish.topic,
                        publish.payload,
                        publish.retain,
                        publish.delivery,
                    ) {
                        tracing::debug!(%error, "publish not queued");
                    }
                }
                Action::Save(state) => self.saver.save(state),
                Action::RecoverDevice => self.front.recover(),
                Action::DrawPicture(key) => self.pictures.draw(key),
                Action::Notify(notice) => match notice {
                    Notice::Ready => self.notifier.ready(),
                    Notice::Watchdog => self.notifier.watchdog(),
                    Notice::Stopping => self.notifier.stopping(),
                    Notice::Status(text) => self.notifier.status(&text),
                },
                Action::CheckCalendar => self.service.set_today(
                    Instant::now(),
                    calendar::local_today(),
                    calendar::until_next_midnight(),
                ),
                // The loop sees `is_exited` and closes down.
                Action::Exit => {}
            }
        }
    }

    /// Device off and released, pending save written, broker disconnected.
    async fn close(self, events: &mut Events) {
        let Shell {
            front,
            publisher,
            saver,
            connected,
            ..
        } = self;
        if let Err(error) = front.close(SHUTDOWN_GRACE).await {
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

//! The daemon's policy as a pure state machine, around the engine: command intake (retained
//! commands, rate limit, replies), Home Assistant's birth, faults and recovery, saves,
//! readiness, the watchdog, midnight and shutdown.
//!
//! Like [`Engine`], it never reads a clock, never does I/O and draws randomness only from the
//! RNG it was given: the shell feeds `handle_*(now, input)`, then drains [`Service::poll_action`]
//! and sleeps until [`Service::poll_timeout`]:
//!
//! ```text
//! loop {
//!     while let Some(action) = service.poll_action() { execute(action) }
//!     select! { timeout => service.handle_timeout(now), event => service.handle_link(now, event), .. }
//! }
//! ```
//!
//! This file holds the service, its inputs and the dispatch; each policy has a file of its
//! own: set-topic intake (`intake`, carried out by `commands`), `publishing` and delivery
//! classes, the broker `connection` and Home Assistant's birth (`republish`), `device`
//! results, `saves`, `pictures`, `overload` (shed counts), `shutdown`, and the timers
//! (`ready`, `watchdog`, `midnight`, on a one-shot `deadline`).

mod action;
mod commands;
mod connection;
mod deadline;
mod device;
mod intake;
mod midnight;
mod overload;
mod pictures;
mod publishing;
mod rate;
mod ready;
mod republish;
mod saves;
mod shutdown;
mod state;
mod throttle;
mod watchdog;

#[cfg(test)]
mod tests;

pub use action::{Action, Notice, Publish};
pub use state::Diagnostics;

use crate::core::{Date, Engine};
use crate::mqtt::last_message::LastMessage;
use crate::mqtt::render::WallClock;
use crate::mqtt::routine_image::{self, PictureSchedule};
use crate::mqtt::topics::Topics;
use crate::store::SavedState;
use bytes::Bytes;
use intake::{CommandId, Intake};
use midnight::Midnight;
use ready::Ready;
use republish::Republish;
use saves::Saves;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use throttle::CountedLog;
use watchdog::Watchdog;

/// Window of the log throttles: at most one line per second per kind.
const LOG_WINDOW: Duration = Duration::from_secs(1);

/// Everything the service needs from the configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The device's topics.
    pub topics: Topics,
    /// The retained discovery payload; `None` when Home Assistant discovery is off.
    pub discovery: Option<String>,
    /// Turns the engine's instants into calendar times for the state.
    pub clock: WallClock,
    /// Commands per second on average (`mqtt.rate_limit_per_s`).
    pub rate_limit_per_s: u32,
    /// Commands at once (`mqtt.rate_limit_burst`).
    pub rate_limit_burst: u32,
    /// Largest accepted command (`mqtt.max_payload_bytes`).
    pub max_payload_bytes: usize,
    /// Changes are saved this long after the first of them (`store.debounce_ms`).
    pub save_debounce: Duration,
    /// How often to ping the systemd watchdog; `None` when it does not apply.
    pub watchdog: Option<Duration>,
    /// The broker's address, for logs and the systemd status line.
    pub broker: String,
    /// Whether to publish the "Routine" picture (with Home Assistant discovery).
    pub routine_picture: bool,
}

/// What the MQTT link reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkInput {
    /// Connected and subscribed (first time or again).
    Connected,
    /// A connection attempt failed or a connection was lost.
    Disconnected {
        /// Human-readable cause.
        reason: String,
    },
    /// A message on one of our subscriptions.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Bytes,
        /// Whether it was retained (replayed or published with the flag).
        retain: bool,
    },
    /// Incoming messages the link shed because we were behind, with the ids it could read.
    Overloaded {
        /// Messages shed, with or without an id.
        shed: u64,
        /// Ids of shed commands: each gets an `overloaded` answer.
        ids: Vec<CommandId>,
    },
}

/// A device error as the service needs it: the published fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFailure {
    /// Machine-readable code, e.g. `driver_io`.
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

impl From<&crate::device::DeviceError> for DeviceFailure {
    fn from(error: &crate::device::DeviceError) -> Self {
        DeviceFailure {
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }
}

/// A signal that ends the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM.
    Terminate,
    /// SIGINT.
    Interrupt,
    /// SIGHUP: no configuration reload; treated like SIGTERM (outputs off, exit).
    Hangup,
    /// SIGQUIT: treated like SIGTERM.
    Quit,
}

impl Signal {
    /// The signal's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Hangup => "SIGHUP",
            Signal::Quit => "SIGQUIT",
        }
    }
}

/// The service: owns the engine and every policy around it.
#[derive(Debug)]
pub struct Service {
    engine: Engine,
    topics: Topics,
    discovery: Option<String>,
    clock: WallClock,
    broker: String,
    intake: Intake,
    refusal_log: CountedLog,
    shed_log: CountedLog,
    shed_total: u64,
    republish: Republish,
    ready: Ready,
    midnight: Midnight,
    saves: Saves,
    watchdog: Option<Watchdog>,
    connected: bool,
    last_message: LastMessage,
    picture: Option<PictureSchedule>,
    exited: bool,
    actions: VecDeque<Action>,
}

impl Service {
    /// A service around `engine`, whose settings and counters were loaded as `saved`; the
    /// republish delays come from `rng`. Its first actions are the engine's zero frame.
    pub fn new(
        now: Instant,
        engine: Engine,
        saved: SavedState,
        config: ServiceConfig,
        rng: fastrand::Rng,
    ) -> Service {
        let mut service = Service {
            engine,
            topics: config.topics,
            discovery: config.discovery,
            clock: config.clock,
            broker: config.broker,
            intake: Intake::new(
                config.max_payload_bytes,
                config.rate_limit_per_s,
                config.rate_limit_burst,
            ),
            refusal_log: CountedLog::new(LOG_WINDOW),
            shed_log: CountedLog::new(LOG_WINDOW),
            shed_total: 0,
            republish: Republish::new(rng),
            ready: Ready::new(now),
            midnight: Midnight::default(),
            saves: Saves::new(saved, config.save_debounce),
            watchdog: config.watchdog.map(|interval| Watchdog::new(now, interval)),
            connected: false,
            last_message: LastMessage::default(),
            picture: config
                .routine_picture
                .then(|| PictureSchedule::new(routine_image::MIN_INTERVAL)),
            exited: false,
            actions: VecDeque::new(),
        };
        service.settle(now);
        service
    }

    /// The next thing for the shell to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Service::handle_timeout`] is next due; `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.exited {
            return None;
        }
        [
            self.engine.poll_timeout(),
            self.watchdog.as_ref().map(Watchdog::due),
            self.ready.deadline(),
            self.republish.due(),
            self.midnight.due(),
            self.saves.due(),
            self.refusal_log.flush_due(),
            self.shed_log.flush_due(),
            self.picture_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The engine's state right now.
    #[cfg(test)]
    pub fn state(&self) -> crate::core::SessionState {
        self.engine.state()
    }

    /// The engine's snapshot at `now`.
    #[cfg(test)]
    pub fn snapshot(&self, now: Instant) -> crate::core::Snapshot {
        self.engine.snapshot(now)
    }

    /// The service's diagnostics as shown in the state.
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            shed: self.shed_total,
            problem: self.saves.problem(),
        }
    }

    /// Whether the service has shut down (after [`Action::Exit`]).
    pub fn is_exited(&self) -> bool {
        self.exited
    }

    /// Today's local date, and how long until the next local midnight (read by the shell at
    /// start-up and after every [`Action::CheckCalendar`]).
    pub fn set_today(&mut self, now: Instant, today: Date, until_midnight: Duration) {
        self.engine.set_today(today);
        self.midnight.set(now, until_midnight);
        self.settle(now);
    }

    /// Time passed: frames, timers, retries, throttled log lines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.exited {
            return;
        }
        // The watchdog first: a turn that has work to do still proves the loop is alive.
        if self.watchdog.as_mut().is_some_and(|w| w.fire(now)) {
            self.actions.push_back(Action::Notify(Notice::Watchdog));
        }
        if self.engine.poll_timeout().is_some_and(|due| now >= due) {
            self.engine.handle_timeout(now);
        }
        if self.ready.expired(now) {
            tracing::warn!(broker = %self.broker, "no broker answer yet; reporting ready and retrying");
            self.actions.push_back(Action::Notify(Notice::Ready));
        }
        if self.republish.fire(now) {
            self.publish_all(now);
        }
        if self.midnight.fire(now) {
            self.actions.push_back(Action::CheckCalendar);
        }
        self.flush_refusal_log(now);
        self.flush_shed_log(now);
        self.settle(now);
        let current = self.current_saved();
        if let Some(state) = self.saves.take_due(now, &current) {
            self.actions.push_back(Action::Save(state));
        }
    }

    /// An event from the MQTT link.
    pub fn handle_link(&mut self, now: Instant, input: LinkInput) {
        if self.exited {
            return;
        }
        match input {
            LinkInput::Connected => self.on_connected(now),
            LinkInput::Disconnected { reason } => self.on_disconnected(&reason),
            LinkInput::Overloaded { shed, ids } => self.on_overloaded(shed, &ids),
            LinkInput::Message {
                topic,
                payload,
                retain,
            } => {
                if topic == self.topics.set {
                    self.on_set(now, &payload, retain);
                } else if topic == self.topics.ha_status {
                    self.on_ha_status(now, &payload);
                } else {
                    tracing::debug!(%topic, "message on an unexpected topic ignored");
                }
            }
        }
        self.settle(now);
    }

    /// After every input: the engine's outputs become actions, and a change arms a save.
    fn settle(&mut self, now: Instant) {
        self.drain_engine();
        self.schedule_picture(now);
        let current = self.current_saved();
        self.saves.observe(now, &current);
    }

    fn current_saved(&self) -> SavedState {
        SavedState::new(self.engine.settings(), self.engine.counters())
            .with_relaxer_date_lost(self.engine.relaxer_date_lost())
    }
}

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

mod action;
mod intake;
mod midnight;
mod rate;
mod ready;
mod republish;
mod saves;
mod state;
mod throttle;
mod watchdog;

#[cfg(test)]
mod tests;

pub use action::{Action, Notice, Publish};
pub use state::{Diagnostics, Problem};

use crate::core::{Action as CommandAction, Date, Engine, Fault, Output, RejectCode, Rejection};
use crate::core::{EventKind, SessionState, Snapshot};
use crate::logging::escape_for_log;
use crate::mqtt::last_message::LastMessage;
use crate::mqtt::outbox::Delivery;
use crate::mqtt::render::{WallClock, render_event};
use crate::mqtt::routine_image::{self, PictureKey, PictureSchedule};
use crate::mqtt::topics::{PAYLOAD_OFFLINE, PAYLOAD_ONLINE, Topics};
use crate::store::SavedState;
use bytes::Bytes;
use intake::{CommandId, Parsed, RateLimit};
use midnight::Midnight;
use ready::Ready;
use republish::Republish;
use saves::{SaveNews, Saves};
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

/// A `clear_fault` waiting for the device's recovery.
#[derive(Debug, Clone)]
struct PendingClear {
    parsed: Parsed,
}

/// The service: owns the engine and every policy around it.
#[derive(Debug)]
pub struct Service {
    engine: Engine,
    topics: Topics,
    discovery: Option<String>,
    clock: WallClock,
    broker: String,
    max_payload: usize,
    rate: RateLimit,
    refusal_log: CountedLog,
    shed_log: CountedLog,
    shed_total: u64,
    republish: Republish,
    ready: Ready,
    midnight: Midnight,
    saves: Saves,
    watchdog: Option<Watchdog>,
    connected: bool,
    clearing: Option<PendingClear>,
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
            max_payload: config.max_payload_bytes,
            rate: RateLimit::new(config.rate_limit_per_s, config.rate_limit_burst),
            refusal_log: CountedLog::new(LOG_WINDOW),
            shed_log: CountedLog::new(LOG_WINDOW),
            shed_total: 0,
            republish: Republish::new(rng),
            ready: Ready::new(now),
            midnight: Midnight::default(),
            saves: Saves::new(saved, config.save_debounce),
            watchdog: config.watchdog.map(|interval| Watchdog::new(now, interval)),
            connected: false,
            clearing: None,
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
            self.picture
                .as_ref()
                .filter(|_| self.connected)
                .and_then(PictureSchedule::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The engine's state right now.
    pub fn state(&self) -> SessionState {
        self.engine.state()
    }

    /// The engine's snapshot at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        self.engine.snapshot(now)
    }

    /// The service's diagnostics as shown in the state.
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            shed: self.shed_total,
            problem: self.saves.failing().map(|error| Problem {
                code: "save_failed",
                message: format!("could not save state: {error}; retrying"),
            }),
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
        if let Some(count) = self.refusal_log.flush(now) {
            tracing::info!(count, "command refusals not logged in the last second");
        }
        if let Some(count) = self.shed_log.flush(now) {
            tracing::warn!(
                count,
                total = self.shed_total,
                "mqtt publishes shed in the last second"
            );
        }
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
            LinkInput::Connected => {
                self.connected = true;
                self.publish_all(now);
                self.attempted();
                let status = format!("connected to {}", self.broker);
                self.actions
                    .push_back(Action::Notify(Notice::Status(status)));
            }
            LinkInput::Disconnected { reason } => {
                self.connected = false;
                tracing::warn!(%reason, broker = %self.broker, "mqtt connection lost or refused; retrying with backoff");
                self.attempted();
                let status = format!("broker {} unreachable, retrying", self.broker);
                self.actions
                    .push_back(Action::Notify(Notice::Status(status)));
            }
            LinkInput::Overloaded { shed, ids } => {
                self.shed_total = self.shed_total.saturating_add(shed);
                let rejection = Rejection::new(
                    RejectCode::Overloaded,
                    "the daemon was behind and dropped this command; send it again",
                );
                for id in &ids {
                    let reply = intake::response_payload(id, Err(&rejection));
                    self.publish(self.topics.response.clone(), reply, false, Delivery::Bulk);
                }
            }
            LinkInput::Message {
                topic,
                payload,
                retain,
            } => {
                if topic == self.topics.set {
                    self.on_set(now, &payload, retain);
                } else if topic == self.topics.ha_status {
                    if payload.as_ref() == PAYLOAD_ONLINE.as_bytes()
                        && let Some(delay) = self.republish.birth(now)
                    {
                        tracing::info!(
                            delay_ms = delay.as_millis() as u64,
                            "home assistant online; republishing soon"
                        );
                    }
                } else {
                    tracing::debug!(%topic, "message on an unexpected topic ignored");
                }
            }
        }
        self.settle(now);
    }

    /// The result of writing a frame or a heartbeat: an error puts the engine in `fault`.
    pub fn handle_device(&mut self, now: Instant, result: Result<(), DeviceFailure>) {
        if self.exited {
            return;
        }
        if let Err(failure) = result {
            if self.engine.state() == SessionState::Fault {
                tracing::debug!(code = %failure.code, error = %failure.message, "device still failing");
            } else {
                tracing::error!(code = %failure.code, error = %failure.message, "device fault: outputs off");
                self.engine.handle_fault(
                    now,
                    Fault {
                        code: failure.code,
                        message: failure.message,
                    },
                );
            }
        }
        self.settle(now);
    }

    /// The result of [`Action::RecoverDevice`]: the waiting `clear_fault` is applied on
    /// success, refused with `fault_active` otherwise.
    pub fn handle_recovered(&mut self, now: Instant, result: Result<(), DeviceFailure>) {
        let Some(PendingClear { parsed }) = self.clearing.take() else {
            return;
        };
        if self.exited {
            return;
        }
        match result {
            Ok(()) => {
                tracing::info!("device recovered");
                self.apply(now, parsed);
            }
            Err(failure) => {
                let rejection = Rejection::new(
                    RejectCode::FaultActive,
                    format!("the device still fails: {}", failure.message),
                );
                self.refuse(now, parsed.id.as_ref(), &rejection, Delivery::Bulk);
            }
        }
        self.settle(now);
    }

    /// The result of [`Action::Save`]; a failure is retried with backoff and shown as a
    /// `problem` in the state until a save succeeds.
    pub fn handle_saved(&mut self, now: Instant, result: Result<(), String>) {
        let error = result.as_ref().err().cloned();
        let current = self.current_saved();
        match self.saves.result(now, result, &current) {
            SaveNews::Quiet => {
                if let Some(error) = error {
                    tracing::debug!(%error, "state save failed again; retrying with backoff");
                }
            }
            SaveNews::StartedFailing => {
                tracing::warn!(
                    error = error.as_deref().unwrap_or(""),
                    "could not save state; retrying with backoff"
                );
                self.publish_state(now);
            }
            SaveNews::Recovered => {
                tracing::info!("state saved again");
                self.publish_state(now);
            }
        }
    }

    /// Publishes that the shell could not queue (`n` of them) are counted and reported.
    pub fn handle_shed(&mut self, now: Instant, n: u64) {
        self.shed_total = self.shed_total.saturating_add(n);
        if let Some(count) = self.shed_log.note(now, n) {
            tracing::warn!(count, total = self.shed_total, "mqtt publishes shed");
        }
    }

    /// A signal: stop like [`Service::shutdown`].
    pub fn handle_signal(&mut self, now: Instant, signal: Signal) {
        tracing::info!(signal = signal.name(), "stopping");
        self.shutdown(now);
    }

    /// Outputs off, the session ended and saved, `offline` published, then [`Action::Exit`].
    pub fn shutdown(&mut self, now: Instant) {
        if self.exited {
            return;
        }
        self.engine.shutdown(now);
        self.actions.push_back(Action::Notify(Notice::Stopping));
        self.drain_engine();
        self.publish(
            self.topics.availability.clone(),
            PAYLOAD_OFFLINE.as_bytes().to_vec(),
            true,
            Delivery::Latest,
        );
        let current = self.current_saved();
        if let Some(state) = self.saves.take_final(&current) {
            self.actions.push_back(Action::Save(state));
        }
        self.exited = true;
        self.actions.push_back(Action::Exit);
    }

    fn attempted(&mut self) {
        if self.ready.attempted() {
            self.actions.push_back(Action::Notify(Notice::Ready));
        }
    }

    fn on_set(&mut self, now: Instant, payload: &[u8], retain: bool) {
        if retain {
            // Our own clearing comes back as an empty retained message.
            if !payload.is_empty() {
                tracing::warn!(topic = %self.topics.set, bytes = payload.len(), "retained command ignored and cleared");
                self.publish(self.topics.set.clone(), Vec::new(), true, Delivery::Latest);
            }
            return;
        }
        let parsed = match intake::parse(payload, self.max_payload) {
            Ok(parsed) => parsed,
            Err((id, rejection)) => {
                self.refuse(now, id.as_ref(), &rejection, Delivery::Bulk);
                return;
            }
        };
        if !self.rate.admit(now, &parsed) {
            let rejection = Rejection::new(
                RejectCode::RateLimited,
                "too many commands; stop is always accepted",
            );
            self.refuse(now, parsed.id.as_ref(), &rejection, Delivery::Bulk);
            return;
        }
        if parsed.command.action == Some(CommandAction::ClearFault)
            && self.engine.state() == SessionState::Fault
        {
            if self.clearing.is_some() {
                let rejection =
                    Rejection::new(RejectCode::FaultActive, "the device is being re-checked");
                self.refuse(now, parsed.id.as_ref(), &rejection, Delivery::Bulk);
            } else {
                // The fault is cleared only once the device answers again.
                self.clearing = Some(PendingClear { parsed });
                self.actions.push_back(Action::RecoverDevice);
            }
            return;
        }
        self.apply(now, parsed);
    }

    /// Hands a command to the engine and answers it.
    fn apply(&mut self, now: Instant, parsed: Parsed) {
        let delivery = if parsed.is_stop() {
            Delivery::Critical
        } else {
            Delivery::Bulk
        };
        let result = self.engine.handle_command(now, &parsed.command);
        // A stop that stopped may still have fields to refuse.
        let result = result.and_then(|()| parsed.refused.first().cloned().map_or(Ok(()), Err));
        match result {
            Ok(()) => {
                tracing::info!(
                    action = parsed.command.action.map(|a| a.as_str()),
                    id = parsed
                        .id
                        .as_ref()
                        .map(|id| escape_for_log(id.as_str()))
                        .as_deref(),
                    "command accepted"
                );
                if let Some(id) = &parsed.id {
                    let reply = intake::response_payload(id, Ok(()));
                    self.publish(self.topics.response.clone(), reply, false, delivery);
                }
                // After the answer, so a client sees the reply before the state it changed.
                if self.last_message.on_accepted() {
                    self.publish_state(now);
                }
            }
            Err(rejection) => self.refuse(now, parsed.id.as_ref(), &rejection, delivery),
        }
    }

    /// Answers a refused command: the `rejected` event, the response when it carried an id,
    /// and a log line under the shared refusal throttle.
    fn refuse(
        &mut self,
        now: Instant,
        id: Option<&CommandId>,
        rejection: &Rejection,
        delivery: Delivery,
    ) {
        if let Some(count) = self.refusal_log.note(now, 1) {
            tracing::info!(
                code = rejection.code.as_str(),
                message = %escape_for_log(&rejection.message),
                id = id.map(|id| escape_for_log(id.as_str())).as_deref(),
                refusals = count,
                "command rejected"
            );
        }
        let event = intake::rejected_payload(rejection, id);
        self.publish(self.topics.event.clone(), event, false, delivery);
        if let Some(id) = id {
            let reply = intake::response_payload(id, Err(rejection));
            self.publish(self.topics.response.clone(), reply, false, delivery);
        }
        if self.last_message.on_rejected(rejection) {
            self.publish_state(now);
        }
    }

    /// Availability, discovery and state, all retained: what a (re)connected broker or a
    /// restarted Home Assistant needs.
    fn publish_all(&mut self, now: Instant) {
        self.publish(
            self.topics.availability.clone(),
            PAYLOAD_ONLINE.as_bytes().to_vec(),
            true,
            Delivery::Latest,
        );
        if let Some(discovery) = self.discovery.clone() {
            self.publish(
                self.topics.discovery_config.clone(),
                discovery.into_bytes(),
                true,
                Delivery::Latest,
            );
        }
        self.publish_state(now);
        if let Some(picture) = &mut self.picture {
            picture.republish();
        }
    }

    /// Asks the shell to draw the routine picture when the selection changed or a republish
    /// is due, within the picture's rate bound.
    fn schedule_picture(&mut self, now: Instant) {
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
        if let Some(key) = picture.poll_publish(now) {
            self.actions.push_back(Action::DrawPicture(key));
        }
    }

    /// A picture the shell drew for `key`: published, retained, unless a newer selection
    /// superseded it meanwhile.
    pub fn handle_picture(&mut self, key: &PictureKey, drawn: Result<String, String>) {
        if self.picture.as_ref().and_then(PictureSchedule::published) != Some(key) {
            return;
        }
        match drawn {
            Ok(svg) => self.publish(
                routine_image::image_topic(&self.topics),
                svg.into_bytes(),
                true,
                Delivery::Latest,
            ),
            Err(error) => {
                tracing::warn!(routine = %key.routine, %error, "could not draw the routine picture");
            }
        }
    }

    fn publish_state(&mut self, now: Instant) {
        let snapshot = self.engine.snapshot(now);
        self.publish_snapshot(&snapshot);
    }

    fn publish_snapshot(&mut self, snapshot: &Snapshot) {
        let payload = state::render(
            snapshot,
            &self.clock,
            self.last_message.get(),
            &self.diagnostics(),
        );
        self.publish(
            self.topics.state.clone(),
            payload.into_bytes(),
            true,
            Delivery::Latest,
        );
    }

    /// Queues a publish; nothing while the broker is away (everything retained is
    /// republished on reconnect).
    fn publish(&mut self, topic: String, payload: Vec<u8>, retain: bool, delivery: Delivery) {
        if self.connected {
            self.actions.push_back(Action::Publish(Publish {
                topic,
                payload,
                retain,
                delivery,
            }));
        }
    }

    /// After every input: the engine's outputs become actions, and a change arms a save.
    fn settle(&mut self, now: Instant) {
        self.drain_engine();
        self.schedule_picture(now);
        let current = self.current_saved();
        self.saves.observe(now, &current);
    }

    fn drain_engine(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Frame(frame) => self.actions.push_back(Action::WriteFrame(frame)),
                Output::State(snapshot) => self.publish_snapshot(&snapshot),
                Output::Event(event) => {
                    tracing::info!(event = event.kind.as_str(), routine = %event.routine, "session event");
                    // Engine events are few (commands are rate limited) and say what really
                    // happened, a stop's `stopped` first of all: never shed.
                    let delivery = match event.kind {
                        EventKind::Rejected => Delivery::Bulk,
                        _ => Delivery::Critical,
                    };
                    self.publish(
                        self.topics.event.clone(),
                        render_event(&event).into_bytes(),
                        false,
                        delivery,
                    );
                }
            }
        }
    }

    fn current_saved(&self) -> SavedState {
        SavedState::new(self.engine.settings(), self.engine.counters())
            .with_relaxer_date_lost(self.engine.relaxer_date_lost())
    }
}

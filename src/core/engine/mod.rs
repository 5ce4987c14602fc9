//! The session state machine, sans-IO: `handle_command`, `handle_timeout`, `poll_timeout`,
//! `poll_output`. Clock maths live in [`session`], level and frame synthesis in [`synth`],
//! refusals in [`validate`], the published state in [`snapshot`].

mod session;
mod snapshot;
mod synth;
mod validate;

use super::channels::{Frame, LEVEL_MAX};
use super::command::{Action, Command, Rejection};
use super::config::{ConfigError, EngineConfig};
use super::date::Date;
use super::limits;
use super::output::{
    Counters, Event, EventKind, Fault, GuardReason, Output, Reason, SessionState, Settings,
};
use super::routine::{self, Routine, RoutineError};
use session::{Plan, Session, StepMark, ns};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use synth::Ramp;

/// Why an engine cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The library is empty.
    #[error("no routines: the engine needs at least one")]
    NoRoutines,
    /// A configuration value is unusable.
    #[error(transparent)]
    BadConfig(#[from] ConfigError),
    /// A routine of the library breaks a rule (e.g. it has no steps).
    #[error(transparent)]
    BadRoutine(#[from] RoutineError),
}

/// The heater, while it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heat {
    since: Instant,
    /// Turned on without a session, so it outlives sessions (until its cap or an off).
    outlives_session: bool,
}

/// The deterministic massage engine.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    routines: Vec<Routine>,
    settings: Settings,
    counters: Counters,
    today: Option<Date>,
    /// The saved relaxer date was lost: the guard stays on until a date is set again.
    relaxer_date_lost: bool,
    session: Option<Session>,
    fault: Option<Fault>,
    heat: Option<Heat>,
    last_frame: Frame,
    scratch: Frame,
    outputs: VecDeque<Output>,
    state_dirty: bool,
}

fn minutes(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 60)
}

impl Engine {
    /// Builds an idle engine; its first outputs are an all-zero frame and the state.
    ///
    /// The configuration and the routine library are checked first (see [`limits`] and
    /// [`routine::validate_library`]). An unknown `settings.routine` falls back to the first
    /// routine; out-of-range settings are clamped.
    pub fn new(
        config: EngineConfig,
        routines: Vec<Routine>,
        mut settings: Settings,
        counters: Counters,
    ) -> Result<Engine, EngineError> {
        config.check()?;
        let first = routines.first().ok_or(EngineError::NoRoutines)?;
        routine::validate_library(&routines)?;
        if !routines.iter().any(|r| r.id == settings.routine) {
            settings.routine = first.id.clone();
        }
        settings.intensity = settings
            .intensity
            .clamp(*limits::INTENSITY.start(), *limits::INTENSITY.end());
        let minutes = limits::session_minutes(config.max_session_minutes);
        settings.minutes = settings.minutes.clamp(*minutes.start(), *minutes.end());
        if config.channels.heat().is_none() {
            settings.heat = false;
        }
        let count = config.channels.count();
        let mut engine = Engine {
            config,
            routines,
            settings,
            counters,
            today: None,
            relaxer_date_lost: false,
            session: None,
            fault: None,
            heat: None,
            last_frame: Frame::zero(count),
            scratch: Frame::zero(count),
            outputs: VecDeque::new(),
            state_dirty: true,
        };
        engine.outputs.push_back(Output::Frame(Frame::zero(count)));
        Ok(engine)
    }

    /// The routine library.
    pub(crate) fn routines(&self) -> &[Routine] {
        &self.routines
    }

    /// The engine's configuration.
    pub(crate) fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The user's current settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Lifetime counters (the running session is added when it ends).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The last frame handed out.
    pub fn last_frame(&self) -> &Frame {
        &self.last_frame
    }

    /// State machine state.
    pub fn state(&self) -> SessionState {
        match (&self.fault, &self.session) {
            (Some(_), _) => SessionState::Fault,
            (None, None) => SessionState::Idle,
            (None, Some(s)) if s.paused_at.is_some() => SessionState::Paused,
            (None, Some(_)) => SessionState::Running,
        }
    }

    /// Finds a routine by id, or by display name ignoring case.
    pub fn find_routine(&self, name: &str) -> Option<usize> {
        routine::find_routine(&self.routines, name)
    }

    fn selected_routine(&self) -> usize {
        self.find_routine(&self.settings.routine).unwrap_or(0)
    }

    /// The running routine, else the selected one.
    fn current_routine(&self) -> usize {
        self.session
            .as_ref()
            .map_or_else(|| self.selected_routine(), |s| s.routine)
    }

    /// Tells the engine today's local date, which the relaxer guard needs.
    pub fn set_today(&mut self, date: Date) {
        let before = self.guard_active();
        self.today = Some(date);
        if before != self.guard_active() {
            self.state_dirty = true;
        }
        self.flush_state_with(None);
    }

    /// Whether the relaxer guard refuses starts today (without `force`).
    pub fn guard_active(&self) -> bool {
        self.guard_reason().is_some()
    }

    /// Why the relaxer guard refuses starts today; `None` when it does not.
    pub(crate) fn guard_reason(&self) -> Option<GuardReason> {
        self.guard_with(self.settings.relaxer_date, self.relaxer_date_lost)
    }

    /// Tells the engine the saved relaxer date was lost (the state file was unreadable):
    /// the guard refuses starts without `force` until a command sets `relaxer_date` again
    /// (to a date or to `null`).
    pub fn mark_relaxer_date_lost(&mut self) {
        if !self.relaxer_date_lost {
            self.relaxer_date_lost = true;
            self.state_dirty = true;
        }
        self.flush_state_with(None);
    }

    /// Whether the saved relaxer date was lost and not set again since.
    pub fn relaxer_date_lost(&self) -> bool {
        self.relaxer_date_lost
    }

    /// Applies a command. A rejected command changes nothing and produces no output, with one
    /// exception for safety: `stop` always stops, and only its other fields are refused.
    pub fn handle_command(&mut self, now: Instant, cmd: &Command) -> Result<(), Rejection> {
        let routine = match self.validate(cmd) {
            Ok(routine) => routine,
            Err(rejection) if cmd.action == Some(Action::Stop) => {
                self.stop_all(now, Reason::Command);
                self.flush_state_with(Some(now));
                return Err(Rejection::new(
                    rejection.code,
                    format!(
                        "stopped; the other fields were ignored: {}",
                        rejection.message
                    ),
                ));
            }
            Err(rejection) => return Err(rejection),
        };
        self.apply(now, cmd, routine);
        self.state_dirty = true;
        self.emit_frame(now, false);
        self.flush_state_with(Some(now));
        Ok(())
    }

    fn apply(&mut self, now: Instant, cmd: &Command, routine: Option<usize>) {
        if let Some(index) = routine {
            self.settings.routine = self.routines[index].id.clone();
        }
        if let Some(intensity) = cmd.intensity {
            self.settings.intensity = intensity;
        }
        if let Some(m) = cmd.minutes {
            self.settings.minutes = m;
        }
        if let Some(heat) = cmd.heat {
            self.settings.heat = heat;
        }
        if let Some(date) = cmd.relaxer_date {
            self.settings.relaxer_date = date;
            self.relaxer_date_lost = false;
        }
        if cmd.action == Some(Action::Stop) {
            self.stop_all(now, Reason::Command);
            return;
        }
        if self.session.is_some() {
            self.apply_live(now, cmd, routine);
        } else if let Some(heat) = cmd.heat
            && cmd.action != Some(Action::Start)
            && self.fault.is_none()
        {
            self.set_heat(now, heat, true);
        }
        match cmd.action {
            Some(Action::Start) if self.session.is_none() => {
                let heat = cmd.heat.unwrap_or(self.settings.heat);
                self.start_session(now, heat);
            }
            Some(Action::Start) | Some(Action::Resume) => self.resume(now),
            Some(Action::Pause) => self.pause(now),
            Some(Action::Skip) => self.skip(now),
            Some(Action::ClearFault) => {
                if self.fault.take().is_some() {
                    self.emit_frame(now, true);
                }
            }
            Some(Action::Stop) | None => {}
        }
    }

    fn apply_live(&mut self, now: Instant, cmd: &Command, routine: Option<usize>) {
        let ramp = self.config.ramp;
        let envelope_now = self.envelope_at(now);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let t = session.active(now);
        if let Some(index) = routine
            && index != session.routine
        {
            session.switch_routine(index, Plan::of(&self.routines[index]), t);
        }
        if let Some(intensity) = cmd.intensity {
            let current = session.intensity.value_at(t, ramp);
            session.intensity = Ramp {
                origin: t,
                from: current,
                to: intensity * 10,
            };
        }
        if let Some(m) = cmd.minutes {
            // Never cut the level faster than a soft stop would.
            let ramp_down = Duration::from_nanos(ns(ramp) * u64::from(envelope_now) / 1000);
            session.end = minutes(m).max(t + ramp_down);
            session.envelope = Ramp {
                origin: t,
                from: envelope_now,
                to: LEVEL_MAX.into(),
            };
        }
        if let Some(heat) = cmd.heat {
            self.set_heat(now, heat, false);
        }
        self.announce_step(now);
    }

    fn set_heat(&mut self, now: Instant, on: bool, outlives_session: bool) {
        match (on, self.heat) {
            (true, None) => {
                self.heat = Some(Heat {
                    since: now,
                    outlives_session,
                })
            }
            (true, Some(_)) => {}
            (false, _) => self.heat = None,
        }
    }

    fn start_session(&mut self, now: Instant, heat: bool) {
        let routine = self.selected_routine();
        let plan = Plan::of(&self.routines[routine]);
        let first = &self.routines[routine].steps[0];
        self.counters.sessions_total += 1;
        self.session = Some(Session {
            routine,
            plan,
            start: now,
            paused_total: Duration::ZERO,
            paused_at: None,
            end: minutes(self.settings.minutes),
            shift: Duration::ZERO,
            envelope: Ramp {
                origin: Duration::ZERO,
                from: 0,
                to: LEVEL_MAX.into(),
            },
            intensity: Ramp::hold(self.settings.intensity * 10),
            announced: StepMark {
                routine,
                pass: 0,
                index: 0,
            },
            step_ends: first.duration(),
            next_frame_at: now,
            next_progress: now + self.config.progress_interval,
        });
        let event =
            Event::new(EventKind::Started, &self.routines[routine].id).with_step(&first.label, 0);
        if heat {
            self.set_heat(now, true, false);
        } else {
            self.heat = None;
        }
        self.outputs.push_back(Output::Event(event));
    }

    fn pause(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut()
            && session.paused_at.is_none()
        {
            session.paused_at = Some(now);
            let routine = session.routine;
            self.push_event(EventKind::Paused, routine, Reason::Command);
        }
    }

    fn resume(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut()
            && let Some(paused_at) = session.paused_at.take()
        {
            session.paused_total += now.saturating_duration_since(paused_at);
            session.envelope = Ramp {
                origin: session.active(now),
                from: 0,
                to: LEVEL_MAX.into(),
            };
            session.next_progress = now + self.config.progress_interval;
            let routine = session.routine;
            self.push_event(EventKind::Resumed, routine, Reason::Command);
        }
    }

    fn skip(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut() {
            session.skip_step(now);
        }
        self.announce_step(now);
    }

    /// Emits a `step` event when the step under the session's clock changed.
    fn announce_step(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let position = session.position(now);
        session.step_ends = position.active + Duration::from_nanos(position.step_left);
        let mark = StepMark {
            routine: session.routine,
            pass: position.pass,
            index: position.index,
        };
        if mark != session.announced {
            session.announced = mark;
            let routine = &self.routines[session.routine];
            let step = &routine.steps[position.index];
            let event = Event::new(EventKind::Step, &routine.id).with_step(&step.label, mark.index);
            self.outputs.push_back(Output::Event(event));
            self.state_dirty = true;
        }
    }

    fn push_event(&mut self, kind: EventKind, routine: usize, reason: Reason) {
        let event = Event::new(kind, &self.routines[routine].id).with_reason(reason);
        self.outputs.push_back(Output::Event(event));
        self.state_dirty = true;
    }

    /// Ends the session, if any; the heater goes off unless it was turned on alone (it outlives the session).
    /// Returns the event to publish once the resulting frame is out.
    fn end_session(&mut self, now: Instant, reason: Reason) -> Option<Event> {
        let session = self.session.take()?;
        let active = session.active(now).min(session.end);
        self.counters.massage_seconds_total += active.as_secs();
        if self.heat.is_some_and(|h| !h.outlives_session) {
            self.heat = None;
        }
        let kind = if reason == Reason::Completed {
            EventKind::Finished
        } else {
            EventKind::Stopped
        };
        self.state_dirty = true;
        Some(Event::new(kind, &self.routines[session.routine].id).with_reason(reason))
    }

    /// Zeroes every output first, then reports the session's end.
    fn stop_all(&mut self, now: Instant, reason: Reason) {
        let ended = self.end_session(now, reason);
        self.heat = None;
        self.state_dirty = true;
        self.emit_frame(now, true);
        self.outputs.extend(ended.map(Output::Event));
    }

    /// Stops everything for a shutdown: the next output is an all-zero frame.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        self.stop_all(now, Reason::Shutdown);
        self.flush_state_with(Some(now));
    }

    /// Reports a driver error: outputs off, state `fault` until `clear_fault`.
    pub fn handle_fault(&mut self, now: Instant, fault: Fault) {
        self.fault = Some(fault.clone());
        self.stop_all(now, Reason::Fault);
        let routine = &self.routines[self.selected_routine()].id;
        let event = Event::fault(routine, fault);
        self.outputs.push_back(Output::Event(event));
        self.flush_state_with(Some(now));
    }

    /// The next instant the engine wants `handle_timeout`; `None` while nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let heat_deadline = self.heat.map(|h| h.since + self.config.max_heat);
        let session = match &self.session {
            Some(s) if s.paused_at.is_none() => s,
            _ => return heat_deadline,
        };
        let end = session.instant_at(session.end);
        [
            Some(session.next_frame_at),
            Some(end),
            Some(session.next_progress),
            heat_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advances time to `now`: frames, step changes, session end, heat cap, progress.
    pub fn handle_timeout(&mut self, now: Instant) {
        // The routine the heat cap is reported against: the running one, else the selected one.
        let heat_capped = match self.heat {
            Some(heat) if now >= heat.since + self.config.max_heat => {
                self.heat = None;
                self.state_dirty = true;
                Some(self.current_routine())
            }
            _ => None,
        };
        let (due_end, due_progress) = match &self.session {
            Some(s) if s.paused_at.is_none() => (s.active(now) >= s.end, now >= s.next_progress),
            _ => (false, false),
        };
        if due_end {
            let ended = self.end_session(now, Reason::Completed);
            self.emit_frame(now, false);
            self.outputs.extend(ended.map(Output::Event));
        } else {
            if self
                .session
                .as_ref()
                .is_some_and(|s| s.active(now) >= s.step_ends)
            {
                self.announce_step(now);
            }
            if due_progress && let Some(session) = self.session.as_mut() {
                let interval = self
                    .config
                    .progress_interval
                    .max(Duration::from_millis(100));
                while session.next_progress <= now {
                    session.next_progress += interval;
                }
                self.state_dirty = true;
            }
        }
        self.emit_frame(now, false);
        if let Some(routine) = heat_capped {
            // Reported once the heater's zero is out, so users see why the heat went off.
            self.push_event(EventKind::HeatOff, routine, Reason::HeatCap);
        }
        self.flush_state_with(Some(now));
    }

    /// The next thing for the shell to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}

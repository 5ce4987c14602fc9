//! The session state machine, sans-IO: `handle_command`, `handle_timeout`, `poll_timeout`, `poll_output`.

use super::channels::{Frame, LEVEL_MAX};
use super::command::{Action, Command, RejectCode, Rejection};
use super::config::EngineConfig;
use super::date::Date;
use super::output::{
    Counters, Event, EventKind, Fault, Output, Reason, SessionState, Settings, Snapshot,
};
use super::routine::{Routine, Step, Technique};
use super::waveform::{self, PHASE_ONE};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const NANOS_PER_SEC: u64 = 1_000_000_000;
const MICROS_PER_MINUTE: u64 = 60_000_000;

/// Nanoseconds in `d`; session times stay far below the 584 years where this saturates.
/// u64 rather than u128 arithmetic: 128-bit division is a slow library call on every target.
fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn step_ns(step: &Step) -> u64 {
    u64::from(step.seconds) * NANOS_PER_SEC
}

/// One pass through the routine, in nanoseconds (at least 1, so it can divide).
fn routine_ns(routine: &Routine) -> u64 {
    routine.steps.iter().map(step_ns).sum::<u64>().max(1)
}

/// Why an engine cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The library is empty.
    #[error("no routines: the engine needs at least one")]
    NoRoutines,
    /// A configuration value is unusable.
    #[error("engine setting {key} = {value} is out of range {range}")]
    BadConfig {
        /// The setting's name.
        key: &'static str,
        /// Its value.
        value: String,
        /// The allowed range.
        range: &'static str,
    },
}

/// The heater, while it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heat {
    since: Instant,
    /// Turned on without a session, so it outlives sessions (until its cap or an off).
    alone: bool,
}

/// Which step was last announced, so each step start is published once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StepMark {
    routine: usize,
    pass: u64,
    index: usize,
}

/// A linear ramp of a permille value in active session time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ramp {
    origin: Duration,
    from: u32,
    to: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Session {
    routine: usize,
    start: Instant,
    paused_total: Duration,
    paused_at: Option<Instant>,
    /// Active time at which the session ends.
    end: Duration,
    /// Routine position = (active + shift) mod routine length; moved by skip and routine changes.
    shift: Duration,
    /// Soft start: rises from `from` toward 1000; the soft stop toward `end` is applied on top.
    envelope: Ramp,
    intensity: Ramp,
    announced: StepMark,
    /// Active time at which the announced step ends; no step check is needed before it.
    step_ends: Duration,
    next_frame: u64,
    /// When grid frame `next_frame` is due, cached so `poll_timeout` does no arithmetic.
    next_frame_at: Instant,
    next_progress: Instant,
}

impl Session {
    fn active(&self, now: Instant) -> Duration {
        let reference = self.paused_at.unwrap_or(now);
        reference
            .saturating_duration_since(self.start)
            .saturating_sub(self.paused_total)
    }

    fn instant_at(&self, active: Duration) -> Instant {
        self.start + self.paused_total + active
    }
}

/// The deterministic massage engine.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    routines: Vec<Routine>,
    settings: Settings,
    counters: Counters,
    today: Option<Date>,
    session: Option<Session>,
    fault: Option<Fault>,
    heat: Option<Heat>,
    last_frame: Frame,
    scratch: Frame,
    outputs: VecDeque<Output>,
    state_dirty: bool,
}

fn check_range(
    key: &'static str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    text: &'static str,
) -> Result<(), EngineError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(EngineError::BadConfig {
            key,
            value: value.to_string(),
            range: text,
        })
    }
}

fn duration_from_nanos(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}

fn minutes(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 60)
}

/// Permille value of `ramp` at `t`, moving at full scale per `length`.
fn ramp_value(ramp: &Ramp, t: Duration, length: Duration) -> u32 {
    let elapsed = ns(t.saturating_sub(ramp.origin));
    let length = ns(length);
    if length == 0 || ramp.from == ramp.to {
        return ramp.to;
    }
    let span = u64::from(ramp.from.abs_diff(ramp.to));
    // Full scale (1000) takes `length`; a smaller change takes proportionally less.
    let moved = (elapsed.saturating_mul(1000) / length).min(span);
    // moved <= span <= 1000, so it fits in u32.
    let moved = moved as u32;
    if ramp.to > ramp.from {
        ramp.from + moved
    } else {
        ramp.from - moved
    }
}

impl Engine {
    /// Builds an idle engine; its first outputs are an all-zero frame and the state.
    ///
    /// An unknown `settings.routine` falls back to the first routine; out-of-range settings are clamped.
    pub fn new(
        config: EngineConfig,
        routines: Vec<Routine>,
        mut settings: Settings,
        counters: Counters,
    ) -> Result<Engine, EngineError> {
        check_range("frame_hz", config.frame_hz.into(), 1..=200, "1..=200")?;
        check_range("max_level", config.max_level.into(), 0..=1000, "0..=1000")?;
        check_range("heat_level", config.heat_level.into(), 0..=1000, "0..=1000")?;
        check_range(
            "max_session_minutes",
            config.max_session_minutes.into(),
            1..=240,
            "1..=240",
        )?;
        check_range(
            "ramp_ms",
            u64::try_from(config.ramp.as_millis()).unwrap_or(u64::MAX),
            0..=60_000,
            "0..=60000",
        )?;
        let first = routines.first().ok_or(EngineError::NoRoutines)?;
        if !routines.iter().any(|r| r.id == settings.routine) {
            settings.routine = first.id.clone();
        }
        settings.intensity = settings.intensity.clamp(1, 100);
        settings.minutes = settings.minutes.clamp(1, config.max_session_minutes);
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
    pub fn routines(&self) -> &[Routine] {
        &self.routines
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
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
        let name = name.trim();
        self.routines.iter().position(|r| r.id == name).or_else(|| {
            self.routines
                .iter()
                .position(|r| r.name.eq_ignore_ascii_case(name))
        })
    }

    fn selected_routine(&self) -> usize {
        self.find_routine(&self.settings.routine).unwrap_or(0)
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

    /// Whether the relaxer guard refuses starts today.
    pub fn guard_active(&self) -> bool {
        match (self.today, self.settings.relaxer_date) {
            (Some(today), Some(relaxer)) => {
                let days = today.days_until(relaxer);
                days >= 0 && days <= i64::from(self.config.guard_days_before)
            }
            _ => false,
        }
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

    fn validate(&self, cmd: &Command) -> Result<Option<usize>, Rejection> {
        let routine = match &cmd.routine {
            Some(name) => Some(self.find_routine(name).ok_or_else(|| {
                let shown: String = name.chars().take(64).collect();
                Rejection::new(
                    RejectCode::UnknownRoutine,
                    format!("no routine named '{shown}'"),
                )
            })?),
            None => None,
        };
        if let Some(intensity) = cmd.intensity
            && !(1..=100).contains(&intensity)
        {
            return Err(Rejection::new(
                RejectCode::OutOfRange,
                format!("intensity must be 1..=100, got {intensity}"),
            ));
        }
        if let Some(m) = cmd.minutes
            && !(1..=self.config.max_session_minutes).contains(&m)
        {
            return Err(Rejection::new(
                RejectCode::OutOfRange,
                format!(
                    "minutes must be 1..={}, got {m}",
                    self.config.max_session_minutes
                ),
            ));
        }
        if cmd.heat == Some(true) && self.config.channels.heat().is_none() {
            return Err(Rejection::new(
                RejectCode::OutOfRange,
                "heat: this device has no heater channel",
            ));
        }
        let state = self.state();
        match cmd.action {
            None | Some(Action::Stop) | Some(Action::ClearFault) => {}
            Some(_) if state == SessionState::Fault => {
                return Err(Rejection::new(
                    RejectCode::FaultActive,
                    format!(
                        "in fault ({}); send clear_fault first",
                        self.fault.as_ref().map_or("", |f| f.code.as_str())
                    ),
                ));
            }
            Some(Action::Start) => {
                let relaxer = cmd.relaxer_date.unwrap_or(self.settings.relaxer_date);
                if state == SessionState::Idle && !cmd.force && self.guard_active_for(relaxer) {
                    return Err(Rejection::new(
                        RejectCode::GuardActive,
                        format!(
                            "relaxer guard: no massage within {} days before the relaxer on {}; send \"force\": true to start anyway",
                            self.config.guard_days_before,
                            relaxer.map(|d| d.to_string()).unwrap_or_default()
                        ),
                    ));
                }
            }
            Some(Action::Pause) if state != SessionState::Running => {
                return Err(Rejection::new(
                    RejectCode::NotRunning,
                    format!("pause needs a running session; state is {}", state.as_str()),
                ));
            }
            Some(Action::Resume) if state != SessionState::Paused => {
                return Err(Rejection::new(
                    RejectCode::NotRunning,
                    format!("resume needs a paused session; state is {}", state.as_str()),
                ));
            }
            Some(Action::Skip) if self.session.is_none() => {
                return Err(Rejection::new(
                    RejectCode::NotRunning,
                    "skip needs a running or paused session; state is idle",
                ));
            }
            Some(_) => {}
        }
        Ok(routine)
    }

    fn guard_active_for(&self, relaxer: Option<Date>) -> bool {
        match (self.today, relaxer) {
            (Some(today), Some(relaxer)) => {
                let days = today.days_until(relaxer);
                days >= 0 && days <= i64::from(self.config.guard_days_before)
            }
            _ => false,
        }
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
            let len = routine_ns(&self.routines[index]);
            session.routine = index;
            session.shift = duration_from_nanos((len - ns(t) % len) % len);
        }
        if let Some(intensity) = cmd.intensity {
            let current = ramp_value(&session.intensity, t, ramp);
            session.intensity = Ramp {
                origin: t,
                from: current,
                to: intensity * 10,
            };
        }
        if let Some(m) = cmd.minutes {
            // Never cut the level faster than a soft stop would.
            let ramp_down = duration_from_nanos(ns(ramp) * u64::from(envelope_now) / 1000);
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

    fn set_heat(&mut self, now: Instant, on: bool, alone: bool) {
        match (on, self.heat) {
            (true, None) => self.heat = Some(Heat { since: now, alone }),
            (true, Some(_)) => {}
            (false, _) => self.heat = None,
        }
    }

    fn start_session(&mut self, now: Instant, heat: bool) {
        let routine = self.selected_routine();
        let intensity = self.settings.intensity * 10;
        self.counters.sessions_total += 1;
        self.session = Some(Session {
            routine,
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
            intensity: Ramp {
                origin: Duration::ZERO,
                from: intensity,
                to: intensity,
            },
            announced: StepMark {
                routine,
                pass: 0,
                index: 0,
            },
            step_ends: self.routines[routine].steps[0].duration(),
            next_frame: 0,
            next_frame_at: now,
            next_progress: now + self.config.progress_interval,
        });
        if heat {
            self.set_heat(now, true, false);
        } else {
            self.heat = None;
        }
        let first = &self.routines[routine].steps[0];
        self.outputs.push_back(Output::Event(Event {
            kind: EventKind::Started,
            routine: self.routines[routine].id.clone(),
            step: Some(first.label.clone()),
            step_index: Some(0),
            reason: None,
            fault: None,
        }));
    }

    fn pause(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut()
            && session.paused_at.is_none()
        {
            session.paused_at = Some(now);
            let routine = self.routines[session.routine].id.clone();
            self.push_event(EventKind::Paused, routine, Some(Reason::Command));
        }
    }

    fn resume(&mut self, now: Instant) {
        let hz = self.config.frame_hz;
        if let Some(session) = self.session.as_mut()
            && let Some(paused_at) = session.paused_at.take()
        {
            session.paused_total += now.saturating_duration_since(paused_at);
            let t = session.active(now);
            session.envelope = Ramp {
                origin: t,
                from: 0,
                to: LEVEL_MAX.into(),
            };
            session.next_frame = frame_index(t, hz);
            session.next_progress = now + self.config.progress_interval;
            let routine = self.routines[session.routine].id.clone();
            self.push_event(EventKind::Resumed, routine, Some(Reason::Command));
        }
    }

    fn skip(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut() {
            let routine = &self.routines[session.routine];
            let len = routine_ns(routine);
            let t = session.active(now);
            let pos = (ns(t) + ns(session.shift)) % len;
            let (_, step, step_start) = step_at(routine, pos);
            let step_end = step_start + step_ns(step);
            // The shift only grows, so a skip past the last step starts the next pass.
            session.shift += duration_from_nanos(step_end - pos);
        }
        self.announce_step(now);
    }

    /// Emits a `step` event when the step under the session's clock changed.
    fn announce_step(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let routine = &self.routines[session.routine];
        let len = routine_ns(routine);
        let t = session.active(now);
        let absolute = ns(t) + ns(session.shift);
        let pos = absolute % len;
        let (index, step, start) = step_at(routine, pos);
        session.step_ends = t + duration_from_nanos(start + step_ns(step) - pos);
        let mark = StepMark {
            routine: session.routine,
            pass: absolute / len,
            index,
        };
        if mark != session.announced {
            session.announced = mark;
            let step = &routine.steps[index];
            let event = Event {
                kind: EventKind::Step,
                routine: routine.id.clone(),
                step: Some(step.label.clone()),
                step_index: Some(index),
                reason: None,
                fault: None,
            };
            self.outputs.push_back(Output::Event(event));
            self.state_dirty = true;
        }
    }

    fn push_event(&mut self, kind: EventKind, routine: String, reason: Option<Reason>) {
        self.outputs.push_back(Output::Event(Event {
            kind,
            routine,
            step: None,
            step_index: None,
            reason,
            fault: None,
        }));
        self.state_dirty = true;
    }

    /// Ends the session, if any; the heater goes off unless it was turned on alone.
    /// Returns the event to publish once the resulting frame is out.
    fn end_session(&mut self, now: Instant, reason: Reason) -> Option<Event> {
        let session = self.session.take()?;
        let active = session.active(now).min(session.end);
        self.counters.massage_seconds_total += active.as_secs();
        if self.heat.is_some_and(|h| !h.alone) {
            self.heat = None;
        }
        let kind = if reason == Reason::Completed {
            EventKind::Finished
        } else {
            EventKind::Stopped
        };
        self.state_dirty = true;
        Some(Event {
            kind,
            routine: self.routines[session.routine].id.clone(),
            step: None,
            step_index: None,
            reason: Some(reason),
            fault: None,
        })
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
    pub fn shutdown(&mut self, now: Instant) {
        self.stop_all(now, Reason::Shutdown);
        self.flush_state_with(Some(now));
    }

    /// Reports a driver error: outputs off, state `fault` until `clear_fault`.
    pub fn handle_fault(&mut self, now: Instant, fault: Fault) {
        self.fault = Some(fault.clone());
        self.stop_all(now, Reason::Fault);
        let routine = self.routines[self.selected_routine()].id.clone();
        self.outputs.push_back(Output::Event(Event {
            kind: EventKind::Fault,
            routine,
            step: None,
            step_index: None,
            reason: Some(Reason::Fault),
            fault: Some(fault),
        }));
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
        if let Some(heat) = self.heat
            && now >= heat.since + self.config.max_heat
        {
            self.heat = None;
            self.state_dirty = true;
        }
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
        self.flush_state_with(Some(now));
    }

    /// The next thing for the shell to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn flush_state_with(&mut self, now: Option<Instant>) {
        if !self.state_dirty {
            return;
        }
        let Some(now) = now.or_else(|| self.session.as_ref().map(|s| s.start)) else {
            // No session and no clock: the snapshot does not depend on time.
            let snapshot = self.snapshot_at(None);
            self.outputs.push_back(Output::State(Box::new(snapshot)));
            self.state_dirty = false;
            return;
        };
        let snapshot = self.snapshot_at(Some(now));
        self.outputs.push_back(Output::State(Box::new(snapshot)));
        self.state_dirty = false;
    }

    /// The state at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        self.snapshot_at(Some(now))
    }

    fn snapshot_at(&self, now: Option<Instant>) -> Snapshot {
        let state = self.state();
        let routine_index = self
            .session
            .as_ref()
            .map_or_else(|| self.selected_routine(), |s| s.routine);
        let routine = &self.routines[routine_index];
        let mut snapshot = Snapshot {
            state,
            routine: routine.id.clone(),
            routine_name: routine.name.clone(),
            step: None,
            step_index: None,
            step_count: routine.steps.len(),
            zones: None,
            technique: None,
            intensity: self.settings.intensity,
            heat: self.heat.is_some(),
            minutes: self.settings.minutes,
            elapsed: None,
            remaining: None,
            ends_at: None,
            relaxer_date: self.settings.relaxer_date,
            guard_active: self.guard_active(),
            counters: self.counters,
            fault: self.fault.clone(),
        };
        if let (Some(session), Some(now)) = (&self.session, now) {
            let t = session.active(now);
            let len = routine_ns(routine);
            let pos = (ns(t) + ns(session.shift)) % len;
            let (index, step, _) = step_at(routine, pos);
            snapshot.step = Some(step.label.clone());
            snapshot.step_index = Some(index);
            snapshot.zones = Some(step.zones.clone());
            snapshot.technique = Some(step.technique);
            snapshot.elapsed = Some(t.min(session.end));
            snapshot.remaining = Some(session.end.saturating_sub(t));
            if session.paused_at.is_none() {
                snapshot.ends_at = Some(session.instant_at(session.end));
            }
        }
        snapshot
    }

    fn envelope_at(&self, now: Instant) -> u32 {
        match &self.session {
            Some(s) if s.paused_at.is_none() => envelope(s, s.active(now), self.config.ramp),
            _ => 0,
        }
    }

    /// Computes the frame for `now` and queues it when it differs from the last (or `force`).
    fn emit_frame(&mut self, now: Instant, force: bool) {
        // Computed in a reused buffer; a new allocation only when the frame changed.
        let mut frame = std::mem::replace(&mut self.scratch, Frame::zero(0));
        frame.levels.clear();
        frame.levels.resize(self.config.channels.count(), 0);
        if self.fault.is_none() {
            if let Some(session) = self.session.as_mut()
                && session.paused_at.is_none()
            {
                let t = session.active(now);
                let k = frame_index(t, self.config.frame_hz);
                session.next_frame = k + 1;
                session.next_frame_at = session.instant_at(frame_time(k + 1, self.config.frame_hz));
                let at = frame_time(k, self.config.frame_hz);
                let session = &*session;
                motor_levels(
                    &self.config,
                    &self.routines[session.routine],
                    session,
                    at,
                    &mut frame.levels,
                );
            }
            if let (Some(_), Some(slot)) = (self.heat, self.config.channels.heat()) {
                frame.levels[slot] = self.config.heat_level.min(self.config.max_level);
            }
        }
        if force || frame != self.last_frame {
            self.last_frame.levels.clone_from(&frame.levels);
            self.outputs.push_back(Output::Frame(frame.clone()));
        }
        self.scratch = frame;
    }
}

/// Index of the grid frame at or before active time `t`.
fn frame_index(t: Duration, hz: u32) -> u64 {
    ns(t).saturating_mul(u64::from(hz)) / NANOS_PER_SEC
}

/// Active time of grid frame `k`; computed from `k`, never accumulated, so it cannot drift.
fn frame_time(k: u64, hz: u32) -> Duration {
    duration_from_nanos(
        k.saturating_mul(NANOS_PER_SEC)
            .div_ceil(u64::from(hz.max(1))),
    )
}

/// The step at routine position `pos` (nanoseconds): its index, the step, and its start.
fn step_at(routine: &Routine, pos: u64) -> (usize, &Step, u64) {
    let mut start = 0u64;
    for (index, step) in routine.steps.iter().enumerate() {
        let end = start + step_ns(step);
        if pos < end {
            return (index, step, start);
        }
        start = end;
    }
    // A valid routine has steps; positions are taken modulo its length.
    let last = routine.steps.len().saturating_sub(1);
    let step = &routine.steps[last];
    (last, step, start - step_ns(step))
}

/// Session envelope (permille): soft start from the last resume or change, soft stop into the end.
fn envelope(session: &Session, t: Duration, ramp: Duration) -> u32 {
    if t >= session.end {
        return 0;
    }
    let rise = ramp_value(&session.envelope, t, ramp);
    let left = ns(session.end - t);
    // Without a ramp the level stays full until the end; the result is clamped to 1000.
    let fall = left
        .saturating_mul(1000)
        .checked_div(ns(ramp))
        .map_or(1000, |f| f.min(1000) as u32);
    rise.min(fall)
}

/// Motor levels at active time `t` into `levels` (which is all zero on entry).
fn motor_levels(
    config: &EngineConfig,
    routine: &Routine,
    session: &Session,
    t: Duration,
    levels: &mut [u16],
) {
    let len = routine_ns(routine);
    let pos = (ns(t) + ns(session.shift)) % len;
    let (_, step, start) = step_at(routine, pos);
    let in_step = pos - start;
    // Microseconds keep the product in u64: 3600 s * 240 cycles/min * 2^16 < 2^64.
    let cycles =
        (in_step / 1000) * u64::from(step.tempo) * u64::from(PHASE_ONE) / MICROS_PER_MINUTE;
    // Reduced modulo PHASE_ONE (2^16), so it fits in u32.
    let phase = (cycles % u64::from(PHASE_ONE)) as u32;
    let intensity = u64::from(ramp_value(&session.intensity, t, config.ramp));
    let env = u64::from(envelope(session, t, config.ramp));
    let max = u64::from(config.max_level);
    let base = max * intensity * u64::from(step.intensity) * env / (1000 * 100 * 1000);
    let zone_count = step.zones.len();
    for (zone_index, zone) in step.zones.iter().enumerate() {
        let slots = config.channels.zone(*zone);
        for (channel_index, &slot) in slots.iter().enumerate() {
            let wave = if step.technique == Technique::Sweep {
                waveform::sweep(phase, zone_index, zone_count)
            } else {
                waveform::zone_level(step.technique, phase, channel_index, slots.len())
            };
            let level = (base * u64::from(wave) / 1000).min(max);
            // level <= max <= 1000.
            levels[slot] = level as u16;
        }
    }
}

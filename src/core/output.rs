//! What the engine tells the shell: frames, state snapshots and events.

use super::channels::Frame;
use super::date::Date;
use super::routine::{Technique, Zone};
use std::time::{Duration, Instant};

/// The session state machine's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Nothing running (the heater may still be on by itself).
    Idle,
    /// A session is running.
    Running,
    /// A session is paused; its clock is stopped.
    Paused,
    /// A driver error stopped everything; `clear_fault` leaves it.
    Fault,
}

impl SessionState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Idle => "idle",
            SessionState::Running => "running",
            SessionState::Paused => "paused",
            SessionState::Fault => "fault",
        }
    }

    /// Every state, for discovery options.
    pub(crate) const ALL: [SessionState; 4] = [
        SessionState::Idle,
        SessionState::Running,
        SessionState::Paused,
        SessionState::Fault,
    ];
}

/// A fault: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Machine-readable code, e.g. `driver_io`.
    pub code: String,
    /// What happened.
    pub message: String,
}

/// The settings a user chooses; persisted across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Selected routine id.
    pub routine: String,
    /// User level in percent, 1..=100.
    pub intensity: u32,
    /// Session length in minutes.
    pub minutes: u32,
    /// Whether sessions heat by default.
    pub heat: bool,
    /// Date of the next chemical relaxer, if any.
    pub relaxer_date: Option<Date>,
}

/// Lifetime counters; persisted across restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Sessions started.
    pub sessions_total: u64,
    /// Seconds of massage (running, not paused) over all sessions.
    pub massage_seconds_total: u64,
}

/// Everything the published state shows, at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// State machine state.
    pub state: SessionState,
    /// Routine id: the running one, else the selected one.
    pub routine: String,
    /// Its display name.
    pub(crate) routine_name: String,
    /// Current step label, while a session exists.
    pub(crate) step: Option<String>,
    /// Current step index, while a session exists.
    pub step_index: Option<usize>,
    /// Number of steps of the routine.
    pub(crate) step_count: usize,
    /// Zones of the current step.
    pub zones: Option<Vec<Zone>>,
    /// Technique of the current step.
    pub(crate) technique: Option<Technique>,
    /// User level in percent.
    pub intensity: u32,
    /// Heater on now.
    pub heat: bool,
    /// Session length in minutes (the setting).
    pub minutes: u32,
    /// Session time elapsed, not counting pauses.
    pub elapsed: Option<Duration>,
    /// Session time left.
    pub remaining: Option<Duration>,
    /// When the session will end, while running.
    pub ends_at: Option<Instant>,
    /// Relaxer date.
    pub(crate) relaxer_date: Option<Date>,
    /// Whether the guard refuses starts today.
    pub guard_active: bool,
    /// Why the guard is active; `None` when it is not.
    pub guard_reason: Option<GuardReason>,
    /// Lifetime counters.
    pub counters: Counters,
    /// The fault, in the fault state.
    pub fault: Option<Fault>,
}

impl Snapshot {
    /// Massage seconds over all sessions including the running one, as the persisted counter
    /// will read if the session ends now; it never goes back.
    pub fn massage_seconds_live(&self) -> u64 {
        let running = self.elapsed.map_or(0, |elapsed| elapsed.as_secs());
        self.counters.massage_seconds_total + running
    }
}

/// Why a session ended or an event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A user command.
    Command,
    /// The session reached its length.
    Completed,
    /// The daemon is shutting down.
    Shutdown,
    /// A driver error.
    Fault,
    /// The heat cap turned the heater off.
    HeatCap,
}

impl Reason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Completed => "completed",
            Reason::Shutdown => "shutdown",
            Reason::Fault => "fault",
            Reason::HeatCap => "heat_cap",
        }
    }
}

/// Why the relaxer guard refuses starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardReason {
    /// Today is within `guard.days_before` days before the relaxer date.
    RelaxerSoon,
    /// The saved relaxer date was lost (unreadable state); set it again to lift the guard.
    RelaxerDateLost,
}

impl GuardReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardReason::RelaxerSoon => "relaxer_soon",
            GuardReason::RelaxerDateLost => "relaxer_date_lost",
        }
    }
}

/// Kinds of events, as published in `event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A session started.
    Started,
    /// A new step began.
    Step,
    /// The session paused.
    Paused,
    /// The session resumed.
    Resumed,
    /// The session reached its end.
    Finished,
    /// The session was stopped before its end.
    Stopped,
    /// A fault occurred.
    Fault,
    /// A command was refused (emitted by the shell).
    Rejected,
    /// The heat cap turned the heater off (reason `heat_cap`); a session goes on without it.
    HeatOff,
}

impl EventKind {
    /// Every kind, for Home Assistant `event_types`.
    pub(crate) const ALL: [EventKind; 9] = [
        EventKind::Started,
        EventKind::Step,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Finished,
        EventKind::Stopped,
        EventKind::Fault,
        EventKind::Rejected,
        EventKind::HeatOff,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Step => "step",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Finished => "finished",
            EventKind::Stopped => "stopped",
            EventKind::Fault => "fault",
            EventKind::Rejected => "rejected",
            EventKind::HeatOff => "heat_off",
        }
    }
}

/// Something that happened, for the event topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The routine id concerned.
    pub routine: String,
    /// Step label, for `step` and `started`.
    pub step: Option<String>,
    /// Step index, for `step` and `started`.
    pub step_index: Option<usize>,
    /// Why, where there is a reason.
    pub reason: Option<Reason>,
    /// The fault, for `fault`.
    pub fault: Option<Fault>,
}

impl Event {
    /// An event with no step, reason or fault.
    pub fn new(kind: EventKind, routine: impl Into<String>) -> Event {
        Event {
            kind,
            routine: routine.into(),
            step: None,
            step_index: None,
            reason: None,
            fault: None,
        }
    }

    /// The `fault` event for `fault`.
    pub(crate) fn fault(routine: impl Into<String>, fault: Fault) -> Event {
        Event {
            fault: Some(fault),
            ..Event::new(EventKind::Fault, routine).with_reason(Reason::Fault)
        }
    }

    /// The same event with the step it concerns.
    pub(crate) fn with_step(self, label: impl Into<String>, index: usize) -> Event {
        Event {
            step: Some(label.into()),
            step_index: Some(index),
            ..self
        }
    }

    /// The same event with a reason.
    pub(crate) fn with_reason(self, reason: Reason) -> Event {
        Event {
            reason: Some(reason),
            ..self
        }
    }
}

/// One thing for the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these levels to the device.
    Frame(Frame),
    /// Publish this state.
    State(Box<Snapshot>),
    /// Publish this event.
    Event(Event),
}

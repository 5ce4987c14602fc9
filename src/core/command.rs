//! Commands the engine accepts, and why it refuses them.

use super::date::Date;
use std::fmt;

/// What a command asks the session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start a session (or apply the fields live when one is running, resume when paused).
    Start,
    /// Stop everything, outputs to zero. Always accepted.
    Stop,
    /// Pause a running session; paused time is not counted.
    Pause,
    /// Resume a paused session with a soft start.
    Resume,
    /// Jump to the next step.
    Skip,
    /// Leave the fault state.
    ClearFault,
}

impl Action {
    /// Every action, for parsers and docs.
    pub(crate) const ALL: [Action; 6] = [
        Action::Start,
        Action::Stop,
        Action::Pause,
        Action::Resume,
        Action::Skip,
        Action::ClearFault,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Skip => "skip",
            Action::ClearFault => "clear_fault",
        }
    }
}

/// One command: an optional action plus setting changes, applied all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// The action, if any.
    pub action: Option<Action>,
    /// Routine by id or display name.
    pub routine: Option<String>,
    /// User level in percent, 1..=100.
    pub intensity: Option<u32>,
    /// Session length in minutes, 1..=`max_session_minutes`.
    pub minutes: Option<u32>,
    /// Heater on or off.
    pub heat: Option<bool>,
    /// Start even inside the relaxer-guard window.
    pub force: bool,
    /// `Some(None)` clears the relaxer date.
    pub relaxer_date: Option<Option<Date>>,
}

impl Command {
    /// A command with only an action.
    pub fn action(action: Action) -> Command {
        Command {
            action: Some(action),
            ..Command::default()
        }
    }
}

/// Machine-readable rejection code, as published on MQTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// The payload is not JSON or not an object.
    InvalidJson,
    /// Unknown action or field.
    UnknownAction,
    /// No routine with that id or name.
    UnknownRoutine,
    /// A value outside its allowed range or of the wrong type.
    OutOfRange,
    /// The action needs a running or paused session.
    NotRunning,
    /// The relaxer guard refuses to start.
    GuardActive,
    /// The engine is in fault.
    FaultActive,
    /// The payload is larger than allowed.
    TooLarge,
    /// Too many commands too fast.
    RateLimited,
    /// Shed unread under a flood: the daemon could not keep up.
    Overloaded,
}

impl RejectCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::InvalidJson => "invalid_json",
            RejectCode::UnknownAction => "unknown_action",
            RejectCode::UnknownRoutine => "unknown_routine",
            RejectCode::OutOfRange => "out_of_range",
            RejectCode::NotRunning => "not_running",
            RejectCode::GuardActive => "guard_active",
            RejectCode::FaultActive => "fault_active",
            RejectCode::TooLarge => "too_large",
            RejectCode::RateLimited => "rate_limited",
            RejectCode::Overloaded => "overloaded",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    /// Machine-readable code.
    pub code: RejectCode,
    /// What was wrong, naming the field or value.
    pub message: String,
}

impl Rejection {
    /// A rejection with a code and message.
    pub fn new(code: RejectCode, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

//! The deterministic core: no async runtime, no I/O, no clock reads. Time comes in as an argument.

pub(crate) mod channels;
pub(crate) mod command;
pub(crate) mod config;
pub(crate) mod date;
pub(crate) mod engine;
pub(crate) mod limits;
pub(crate) mod output;
pub mod routine;
pub(crate) mod waveform;

pub use channels::{ChannelMap, Frame, LEVEL_MAX};
pub use command::{Action, Command, RejectCode, Rejection};
pub use config::EngineConfig;
pub use date::Date;
pub use engine::{Engine, EngineError};
pub use output::{
    Counters, Event, EventKind, Fault, GuardReason, Output, Reason, SessionState, Settings,
    Snapshot,
};
pub use routine::{Routine, Step, Technique, Zone};

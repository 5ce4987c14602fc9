//! The deterministic core: no async runtime, no I/O, no clock reads. Time comes in as an argument.

pub mod channels;
pub mod command;
pub mod config;
pub mod date;
pub mod engine;
pub mod limits;
pub mod output;
pub mod routine;
pub mod waveform;

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

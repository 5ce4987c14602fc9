//! MQTT layer: topic layout, command parsing, payload rendering and Home Assistant discovery.
//!
//! Everything here but `link` is pure (no I/O, no clock reads) so it can be unit-tested;
//! `link` owns the broker connection.

pub(crate) mod command;
pub(crate) mod discovery;
pub(crate) mod last_message;
pub mod link;
pub mod outbox;
pub(crate) mod render;
pub(crate) mod routine_image;
pub mod tls;
pub mod topics;
pub(crate) mod url;

pub use command::{CommandError, CommandId, ParsedCommand, parse_command};

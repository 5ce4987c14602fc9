//! MQTT layer: topic layout, command parsing, payload rendering and Home Assistant discovery.
//!
//! Everything here but `link` is pure (no I/O, no clock reads) so it can be unit-tested;
//! `link` owns the broker connection.

pub mod command;
pub mod discovery;
pub mod last_message;
pub mod link;
pub mod outbox;
pub mod render;
pub mod routine_image;
pub mod tls;
pub mod topics;
pub mod url;

pub use command::{CommandError, CommandId, ParsedCommand, parse_command};
pub use discovery::{DiscoveryInfo, discovery_payload, forget_topics};
pub use render::{WallClock, render_event, render_rejected, render_response, render_state};
pub use topics::{PAYLOAD_OFFLINE, PAYLOAD_ONLINE, Topics};

//! Commands from `{root}/set`: the one place that calls the parser and renders refusals and
//! replies, plus the rate limit. The rest of the service sees only [`Parsed`] and payloads.

use super::rate::TokenBucket;
use crate::core::{Action, Command, Rejection};
use crate::mqtt::command::{CommandError, ParsedCommand, parse_command};
use crate::mqtt::render::{render_rejected, render_response};
use std::time::Instant;

pub use crate::mqtt::command::CommandId;

/// A command that parsed: what it asks, its id, and the refused fields of a stop that still
/// stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The id its reply carries.
    pub id: Option<CommandId>,
    /// What it asks.
    pub command: Command,
    /// Refusals of other fields of a `stop`.
    pub refused: Vec<Rejection>,
}

impl Parsed {
    /// Whether it is a `stop` (never rate limited, answered as critical).
    pub(crate) fn is_stop(&self) -> bool {
        self.command.action == Some(Action::Stop)
    }
}

/// Parses a payload from `{root}/set`; on refusal, the id when it could be read.
pub fn parse(payload: &[u8], max_bytes: usize) -> Result<Parsed, (Option<CommandId>, Rejection)> {
    match parse_command(payload, max_bytes) {
        Ok(ParsedCommand {
            id,
            command,
            refused,
        }) => Ok(Parsed {
            id,
            command,
            refused,
        }),
        Err(CommandError { id, rejection }) => Err((id, rejection)),
    }
}

/// The `rejected` event payload.
pub(crate) fn rejected_payload(rejection: &Rejection, id: Option<&CommandId>) -> Vec<u8> {
    render_rejected(rejection, id).into_bytes()
}

/// The `{root}/response` payload.
pub(crate) fn response_payload(id: &CommandId, result: Result<(), &Rejection>) -> Vec<u8> {
    render_response(id, result).into_bytes()
}

/// The command rate limit. `stop` never reaches it.
#[derive(Debug, Clone)]
pub struct RateLimit {
    bucket: TokenBucket,
}

impl RateLimit {
    /// `per_s` on average, `burst` at once.
    pub fn new(per_s: u32, burst: u32) -> RateLimit {
        RateLimit {
            bucket: TokenBucket::new(per_s, burst),
        }
    }

    /// Whether `parsed` may go on at `now`; a stop always may and takes no token.
    pub(crate) fn admit(&mut self, now: Instant, parsed: &Parsed) -> bool {
        parsed.is_stop() || self.bucket.allow(now)
    }
}

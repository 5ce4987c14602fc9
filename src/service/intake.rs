//! Commands from `{root}/set`: the one place that calls the parser and renders refusals and
//! replies, and [`Intake`], which decides what becomes of each message (retained ones are
//! cleared, floods are rate limited, a `clear_fault` waits for the device) before the engine
//! sees it. The rest of the service sees only a [`Verdict`], [`Parsed`] and payloads.

use super::rate::TokenBucket;
use crate::core::{Action, Command, RejectCode, Rejection};
use crate::mqtt::command::{CommandError, ParsedCommand, parse_command};
use crate::mqtt::render::{render_rejected, render_response};
use std::time::Instant;

pub(crate) use crate::mqtt::command::CommandId;

/// A command that parsed: what it asks, its id, and the refused fields of a stop that still
/// stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The id its reply carries.
    pub(crate) id: Option<CommandId>,
    /// What it asks.
    pub(crate) command: Command,
    /// Refusals of other fields of a `stop`.
    pub(crate) refused: Vec<Rejection>,
}

impl Parsed {
    /// Whether it is a `stop` (never rate limited, answered as critical).
    pub(crate) fn is_stop(&self) -> bool {
        self.command.action == Some(Action::Stop)
    }
}

/// Parses a payload from `{root}/set`; on refusal, the id when it could be read.
fn parse(payload: &[u8], max_bytes: usize) -> Result<Parsed, (Option<CommandId>, Rejection)> {
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
struct RateLimit {
    bucket: TokenBucket,
}

impl RateLimit {
    /// `per_s` on average, `burst` at once.
    fn new(per_s: u32, burst: u32) -> RateLimit {
        RateLimit {
            bucket: TokenBucket::new(per_s, burst),
        }
    }

    /// Whether `parsed` may go on at `now`; a stop always may and takes no token.
    fn admit(&mut self, now: Instant, parsed: &Parsed) -> bool {
        parsed.is_stop() || self.bucket.allow(now)
    }
}

/// What becomes of a message on `{root}/set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A retained command: never executed, and cleared from the broker.
    ClearRetained,
    /// Our own clearing came back as an empty retained message: nothing to do.
    Ignore,
    /// Refused, answered to its id when it could be read.
    Refuse(Option<CommandId>, Rejection),
    /// A `clear_fault` during a fault: the device is re-checked first and the command waits
    /// for [`Intake::recovered`].
    Recover,
    /// For the engine.
    Apply(Parsed),
}

/// The set-topic intake: payload bound, rate limit, and the `clear_fault` waiting for the
/// device's recovery.
#[derive(Debug, Clone)]
pub(super) struct Intake {
    max_payload: usize,
    rate: RateLimit,
    clearing: Option<Parsed>,
}

impl Intake {
    /// Payloads up to `max_payload` bytes; `per_s` commands on average, `burst` at once.
    pub(super) fn new(max_payload: usize, per_s: u32, burst: u32) -> Intake {
        Intake {
            max_payload,
            rate: RateLimit::new(per_s, burst),
            clearing: None,
        }
    }

    /// A message on `{root}/set` at `now`, while the engine is (`in_fault`) or is not in fault.
    pub(super) fn on_set(
        &mut self,
        now: Instant,
        payload: &[u8],
        retain: bool,
        in_fault: bool,
    ) -> Verdict {
        if retain {
            return if payload.is_empty() {
                Verdict::Ignore
            } else {
                Verdict::ClearRetained
            };
        }
        let parsed = match parse(payload, self.max_payload) {
            Ok(parsed) => parsed,
            Err((id, rejection)) => return Verdict::Refuse(id, rejection),
        };
        if !self.rate.admit(now, &parsed) {
            let rejection = Rejection::new(
                RejectCode::RateLimited,
                "too many commands; stop is always accepted",
            );
            return Verdict::Refuse(parsed.id, rejection);
        }
        if parsed.command.action == Some(Action::ClearFault) && in_fault {
            if self.clearing.is_some() {
                let rejection =
                    Rejection::new(RejectCode::FaultActive, "the device is being re-checked");
                return Verdict::Refuse(parsed.id, rejection);
            }
            // The fault is cleared only once the device answers again.
            self.clearing = Some(parsed);
            return Verdict::Recover;
        }
        Verdict::Apply(parsed)
    }

    /// The device's answer to [`Verdict::Recover`] (`Err` with what still fails): the waiting
    /// `clear_fault` to apply, or its `fault_active` refusal; `None` when none was waiting.
    pub(super) fn recovered(
        &mut self,
        result: Result<(), String>,
    ) -> Option<Result<Parsed, (Option<CommandId>, Rejection)>> {
        let parsed = self.clearing.take()?;
        Some(match result {
            Ok(()) => Ok(parsed),
            Err(failure) => Err((
                parsed.id,
                Rejection::new(
                    RejectCode::FaultActive,
                    format!("the device still fails: {failure}"),
                ),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn intake() -> Intake {
        Intake::new(4096, 10, 5)
    }

    fn code(verdict: &Verdict) -> Option<&'static str> {
        match verdict {
            Verdict::Refuse(_, rejection) => Some(rejection.code.as_str()),
            _ => None,
        }
    }

    #[test]
    fn a_retained_command_is_cleared_and_our_clearing_ignored() {
        let t0 = Instant::now();
        let mut intake = intake();
        let start = br#"{"action":"start","id":"replayed"}"#;
        assert_eq!(
            intake.on_set(t0, start, true, false),
            Verdict::ClearRetained
        );
        assert_eq!(intake.on_set(t0, b"", true, false), Verdict::Ignore);
        let live = intake.on_set(t0, b"", false, false);
        assert_eq!(code(&live), Some("invalid_json"), "{live:?}");
    }

    #[test]
    fn a_flood_is_rate_limited_but_a_stop_never_is() {
        let t0 = Instant::now();
        let mut intake = intake();
        let verdicts: Vec<_> = (0..8)
            .map(|n| {
                intake.on_set(
                    t0,
                    format!(r#"{{"action":"pause","id":"p{n}"}}"#).as_bytes(),
                    false,
                    false,
                )
            })
            .collect();
        assert!(
            verdicts[..5].iter().all(|v| matches!(v, Verdict::Apply(_))),
            "{verdicts:?}"
        );
        assert!(
            verdicts[5..]
                .iter()
                .all(|v| code(v) == Some("rate_limited")),
            "{verdicts:?}"
        );
        match &verdicts[5] {
            Verdict::Refuse(Some(id), _) => assert_eq!(id.as_str(), "p5"),
            other => panic!("refused with its id: {other:?}"),
        }
        let stop = intake.on_set(t0, br#"{"action":"stop"}"#, false, false);
        assert!(
            matches!(stop, Verdict::Apply(ref p) if p.is_stop()),
            "{stop:?}"
        );
        let later = t0 + Duration::from_millis(100);
        let pause = intake.on_set(later, br#"{"action":"pause"}"#, false, false);
        assert!(
            matches!(pause, Verdict::Apply(_)),
            "a token is back: {pause:?}"
        );
    }

    #[test]
    fn clear_fault_during_a_fault_waits_for_the_device() {
        let t0 = Instant::now();
        let mut intake = intake();
        let clear = br#"{"action":"clear_fault","id":"c1"}"#;
        assert!(
            matches!(intake.on_set(t0, clear, false, false), Verdict::Apply(_)),
            "no fault"
        );
        assert_eq!(intake.recovered(Ok(())), None, "none waiting");

        assert_eq!(intake.on_set(t0, clear, false, true), Verdict::Recover);
        let again = intake.on_set(t0, br#"{"action":"clear_fault","id":"c2"}"#, false, true);
        assert_eq!(code(&again), Some("fault_active"), "{again:?}");
        let Some(Err((id, rejection))) = intake.recovered(Err("pwm0: gone".into())) else {
            panic!("the waiting command is refused");
        };
        assert_eq!(id.as_ref().map(CommandId::as_str), Some("c1"));
        assert_eq!(rejection.code, RejectCode::FaultActive);
        assert!(
            rejection.message.contains("pwm0: gone"),
            "{}",
            rejection.message
        );

        assert_eq!(intake.on_set(t0, clear, false, true), Verdict::Recover);
        let Some(Ok(parsed)) = intake.recovered(Ok(())) else {
            panic!("the waiting command goes on");
        };
        assert_eq!(parsed.command.action, Some(Action::ClearFault));
        assert_eq!(intake.recovered(Ok(())), None, "answered once");
    }
}

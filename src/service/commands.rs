//! Carrying out the set-topic intake's [`Verdict`]s: a command handed to the engine and
//! answered, a refusal answered (event, response, throttled log line), a retained command
//! cleared. What each message deserves is decided in [`super::intake`].

use super::intake::{self, CommandId, Parsed, Verdict};
use super::publishing::command_delivery;
use super::{Action, Service};
use crate::core::{Rejection, SessionState};
use crate::logging::escape_for_log;
use crate::mqtt::outbox::Delivery;
use std::time::Instant;

impl Service {
    /// A message on `{root}/set`.
    pub(super) fn on_set(&mut self, now: Instant, payload: &[u8], retain: bool) {
        let in_fault = self.engine.state() == SessionState::Fault;
        match self.intake.on_set(now, payload, retain, in_fault) {
            Verdict::ClearRetained => {
                tracing::warn!(topic = %self.topics.set, bytes = payload.len(), "retained command ignored and cleared");
                self.publish_retained(self.topics.set.clone(), Vec::new());
            }
            Verdict::Ignore => {}
            Verdict::Refuse(id, rejection) => {
                self.refuse(now, id.as_ref(), &rejection, Delivery::Bulk);
            }
            Verdict::Recover => self.actions.push_back(Action::RecoverDevice),
            Verdict::Apply(parsed) => self.apply(now, parsed),
        }
    }

    /// Hands a command to the engine and answers it.
    pub(super) fn apply(&mut self, now: Instant, parsed: Parsed) {
        let delivery = command_delivery(&parsed);
        let result = self.engine.handle_command(now, &parsed.command);
        // A stop that stopped may still have fields to refuse.
        let result = result.and_then(|()| parsed.refused.first().cloned().map_or(Ok(()), Err));
        match result {
            Ok(()) => {
                tracing::info!(
                    action = parsed.command.action.map(|a| a.as_str()),
                    id = parsed
                        .id
                        .as_ref()
                        .map(|id| escape_for_log(id.as_str()))
                        .as_deref(),
                    "command accepted"
                );
                if let Some(id) = &parsed.id {
                    let reply = intake::response_payload(id, Ok(()));
                    self.publish(self.topics.response.clone(), reply, delivery);
                }
                // After the answer, so a client sees the reply before the state it changed.
                if self.last_message.on_accepted() {
                    self.publish_state(now);
                }
            }
            Err(rejection) => self.refuse(now, parsed.id.as_ref(), &rejection, delivery),
        }
    }

    /// Answers a refused command: the `rejected` event, the response when it carried an id,
    /// and a log line under the shared refusal throttle.
    pub(super) fn refuse(
        &mut self,
        now: Instant,
        id: Option<&CommandId>,
        rejection: &Rejection,
        delivery: Delivery,
    ) {
        if let Some(count) = self.refusal_log.note(now, 1) {
            tracing::info!(
                code = rejection.code.as_str(),
                message = %escape_for_log(&rejection.message),
                id = id.map(|id| escape_for_log(id.as_str())).as_deref(),
                refusals = count,
                "command rejected"
            );
        }
        let event = intake::rejected_payload(rejection, id);
        self.publish(self.topics.event.clone(), event, delivery);
        if let Some(id) = id {
            let reply = intake::response_payload(id, Err(rejection));
            self.publish(self.topics.response.clone(), reply, delivery);
        }
        if self.last_message.on_rejected(rejection) {
            self.publish_state(now);
        }
    }

    /// The count of refusals the throttle kept out of the log, once their window is over.
    pub(super) fn flush_refusal_log(&mut self, now: Instant) {
        if let Some(count) = self.refusal_log.flush(now) {
            tracing::info!(count, "command refusals not logged in the last second");
        }
    }
}

//! What the service publishes and how: availability, discovery and state (retained, superseded
//! per topic), the engine's events and command answers with their delivery class, and nothing
//! at all while the broker is away (everything retained is republished on reconnect).

use super::intake::Parsed;
use super::{Action, Publish, Service, state};
use crate::core::{EventKind, Output, Snapshot};
use crate::mqtt::outbox::Delivery;
use crate::mqtt::render::render_event;
use crate::mqtt::topics::PAYLOAD_ONLINE;
use std::time::Instant;

/// A command's answers: a stop's are never shed, others may be under overload.
pub(super) fn command_delivery(parsed: &Parsed) -> Delivery {
    if parsed.is_stop() {
        Delivery::Critical
    } else {
        Delivery::Bulk
    }
}

/// An engine event: they are few (commands are rate limited) and say what really happened, a
/// stop's `stopped` first of all, so never shed; a refusal is only as critical as its command.
fn event_delivery(kind: EventKind) -> Delivery {
    match kind {
        EventKind::Rejected => Delivery::Bulk,
        _ => Delivery::Critical,
    }
}

impl Service {
    /// Availability, discovery and state, all retained: what a (re)connected broker or a
    /// restarted Home Assistant needs.
    pub(super) fn publish_all(&mut self, now: Instant) {
        self.publish_retained(
            self.topics.availability.clone(),
            PAYLOAD_ONLINE.as_bytes().to_vec(),
        );
        if let Some(discovery) = self.discovery.clone() {
            self.publish_retained(self.topics.discovery_config.clone(), discovery.into_bytes());
        }
        self.publish_state(now);
        if let Some(picture) = &mut self.picture {
            picture.republish();
        }
    }

    /// The state as of `now`.
    pub(super) fn publish_state(&mut self, now: Instant) {
        let snapshot = self.engine.snapshot(now);
        self.publish_snapshot(&snapshot);
    }

    fn publish_snapshot(&mut self, snapshot: &Snapshot) {
        let payload = state::render(
            snapshot,
            &self.clock,
            self.last_message.get(),
            &self.diagnostics(),
        );
        self.publish_retained(self.topics.state.clone(), payload.into_bytes());
    }

    /// The engine's outputs as actions: frames for the device, states and events to publish.
    pub(super) fn drain_engine(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Frame(frame) => self.actions.push_back(Action::WriteFrame(frame)),
                Output::State(snapshot) => self.publish_snapshot(&snapshot),
                Output::Event(event) => {
                    tracing::info!(event = event.kind.as_str(), routine = %event.routine, "session event");
                    let payload = render_event(&event).into_bytes();
                    self.publish(
                        self.topics.event.clone(),
                        payload,
                        event_delivery(event.kind),
                    );
                }
            }
        }
    }

    /// Queues a retained publish: the broker keeps the latest per topic, so it is never shed.
    pub(super) fn publish_retained(&mut self, topic: String, payload: Vec<u8>) {
        self.queue(topic, payload, true, Delivery::Latest);
    }

    /// Queues an event or a response with its delivery class.
    pub(super) fn publish(&mut self, topic: String, payload: Vec<u8>, delivery: Delivery) {
        self.queue(topic, payload, false, delivery);
    }

    /// Nothing while the broker is away: everything retained is republished on reconnect.
    fn queue(&mut self, topic: String, payload: Vec<u8>, retain: bool, delivery: Delivery) {
        if self.connected {
            self.actions.push_back(Action::Publish(Publish {
                topic,
                payload,
                retain,
                delivery,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Action as CommandAction, Command};

    fn parsed(action: CommandAction) -> Parsed {
        Parsed {
            id: None,
            command: Command {
                action: Some(action),
                ..Command::default()
            },
            refused: Vec::new(),
        }
    }

    #[test]
    fn stop_answers_and_session_events_are_never_shed_refusals_may_be() {
        assert_eq!(
            command_delivery(&parsed(CommandAction::Stop)),
            Delivery::Critical
        );
        assert_eq!(
            command_delivery(&parsed(CommandAction::Start)),
            Delivery::Bulk
        );
        assert_eq!(event_delivery(EventKind::Rejected), Delivery::Bulk);
        for kind in [EventKind::Started, EventKind::Stopped, EventKind::Fault] {
            assert_eq!(event_delivery(kind), Delivery::Critical, "{kind:?}");
        }
    }
}

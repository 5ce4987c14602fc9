//! Stopping: outputs off, the session ended and saved, `offline` published, then
//! [`Action::Exit`]; after that the service takes no input and sets no timer.

use super::{Action, Notice, Service, Signal};
use crate::mqtt::topics::PAYLOAD_OFFLINE;
use std::time::Instant;

impl Service {
    /// A signal: stop like [`Service::shutdown`].
    pub(crate) fn handle_signal(&mut self, now: Instant, signal: Signal) {
        tracing::info!(signal = signal.name(), "stopping");
        self.shutdown(now);
    }

    /// Outputs off, the session ended and saved, `offline` published, then [`Action::Exit`].
    pub(crate) fn shutdown(&mut self, now: Instant) {
        if self.exited {
            return;
        }
        self.engine.shutdown(now);
        self.actions.push_back(Action::Notify(Notice::Stopping));
        self.drain_engine();
        self.publish_retained(
            self.topics.availability.clone(),
            PAYLOAD_OFFLINE.as_bytes().to_vec(),
        );
        let current = self.current_saved();
        if let Some(state) = self.saves.take_final(&current) {
            self.actions.push_back(Action::Save(state));
        }
        self.exited = true;
        self.actions.push_back(Action::Exit);
    }
}

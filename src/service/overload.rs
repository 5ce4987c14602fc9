//! Load shedding as the service sees it: publishes the shell could not queue and messages the
//! link dropped unread are counted for the state's `shed` and logged with the true count at
//! most once a second; a dropped command whose id could be read is answered `overloaded`.

use super::Service;
use super::intake::{self, CommandId};
use crate::core::{RejectCode, Rejection};
use crate::mqtt::outbox::Delivery;
use std::time::Instant;

impl Service {
    /// Publishes that the shell could not queue (`n` of them) are counted and reported.
    pub(crate) fn handle_shed(&mut self, now: Instant, n: u64) {
        self.shed_total = self.shed_total.saturating_add(n);
        if let Some(count) = self.shed_log.note(now, n) {
            tracing::warn!(count, total = self.shed_total, "mqtt publishes shed");
        }
    }

    /// Incoming messages the link shed: counted, and each readable command id answered.
    pub(super) fn on_overloaded(&mut self, shed: u64, ids: &[CommandId]) {
        self.shed_total = self.shed_total.saturating_add(shed);
        let rejection = Rejection::new(
            RejectCode::Overloaded,
            "the daemon was behind and dropped this command; send it again",
        );
        for id in ids {
            let reply = intake::response_payload(id, Err(&rejection));
            self.publish(self.topics.response.clone(), reply, Delivery::Bulk);
        }
    }

    /// The count of shed publishes not logged yet, once their window is over.
    pub(super) fn flush_shed_log(&mut self, now: Instant) {
        if let Some(count) = self.shed_log.flush(now) {
            tracing::warn!(
                count,
                total = self.shed_total,
                "mqtt publishes shed in the last second"
            );
        }
    }
}

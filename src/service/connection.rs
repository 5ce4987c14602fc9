//! The broker connection as the service sees it: everything retained published on each
//! (re)connect, `READY=1` after the first attempt whatever its outcome, the systemd status
//! line, and Home Assistant's birth answered by one delayed republish.

use super::{Action, Notice, Service};
use crate::mqtt::topics::PAYLOAD_ONLINE;
use std::time::Instant;

impl Service {
    /// Connected and subscribed, first time or again.
    pub(super) fn on_connected(&mut self, now: Instant) {
        self.connected = true;
        self.publish_all(now);
        self.attempted();
        let status = format!("connected to {}", self.broker);
        self.actions
            .push_back(Action::Notify(Notice::Status(status)));
    }

    /// A connection attempt failed or a connection was lost.
    pub(super) fn on_disconnected(&mut self, reason: &str) {
        self.connected = false;
        tracing::warn!(%reason, broker = %self.broker, "mqtt connection lost or refused; retrying with backoff");
        self.attempted();
        let status = format!("broker {} unreachable, retrying", self.broker);
        self.actions
            .push_back(Action::Notify(Notice::Status(status)));
    }

    /// A message on Home Assistant's status topic: `online` is its birth.
    pub(super) fn on_ha_status(&mut self, now: Instant, payload: &[u8]) {
        if payload == PAYLOAD_ONLINE.as_bytes()
            && let Some(delay) = self.republish.birth(now)
        {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "home assistant online; republishing soon"
            );
        }
    }

    /// The first connection attempt ended: `READY=1`, unless the deadline already sent it.
    fn attempted(&mut self) {
        if self.ready.attempted() {
            self.actions.push_back(Action::Notify(Notice::Ready));
        }
    }
}

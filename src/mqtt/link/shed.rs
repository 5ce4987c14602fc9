//! Bookkeeping of shed messages, both ways: counted, logged at most once per second with the
//! true count and once more when a flood ends, and the ids of shed incoming commands kept
//! (bounded) until the consumer is handed them as [`LinkEvent::Overloaded`].
//!
//! Time comes in as an argument; [`report_loop`] is the task that supplies it for the
//! flood-over lines.

use super::LinkEvent;
use super::shared::{Shared, lock};
use crate::logging::LogThrottle;
use crate::mqtt::command::{CommandId, peek_id};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Notify, oneshot};

/// Ids of shed commands kept for `overloaded` answers; beyond this only the count grows.
const MAX_SHED_IDS: usize = 1024;

/// Totals since the link started, for the diagnostic counters in the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShedTotals {
    /// Incoming messages shed because the consumer was behind.
    pub inbound: u64,
    /// Bulk publishes shed because the broker was behind.
    pub(crate) outbound: u64,
}

/// Shed messages of both directions: totals, log throttles, and what the consumer has not
/// been told yet.
#[derive(Debug)]
pub(super) struct Shed {
    inbound: Mutex<InboundShed>,
    outbound_log: Mutex<LogThrottle>,
    /// Wakes the reporter task at the first shed of a flood (for the final count).
    wake_reporter: Notify,
    inbound_total: AtomicU64,
    outbound_total: AtomicU64,
}

/// Shed incoming messages not yet reported to the consumer.
#[derive(Debug)]
struct InboundShed {
    log: LogThrottle,
    unreported: u64,
    ids: VecDeque<CommandId>,
}

impl Shed {
    pub(super) fn new() -> Shed {
        Shed {
            inbound: Mutex::new(InboundShed {
                log: LogThrottle::per_second(),
                unreported: 0,
                ids: VecDeque::new(),
            }),
            outbound_log: Mutex::new(LogThrottle::per_second()),
            wake_reporter: Notify::new(),
            inbound_total: AtomicU64::new(0),
            outbound_total: AtomicU64::new(0),
        }
    }

    /// Records an incoming message shed at `now`, logging at most once per second.
    pub(super) fn inbound(&self, topic: &str, payload: &[u8], now: Instant) {
        let total = self.inbound_total.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inbound = lock(&self.inbound);
        inbound.unreported += 1;
        if inbound.ids.len() < MAX_SHED_IDS
            && let Some(id) = peek_id(payload)
        {
            inbound.ids.push_back(id);
        }
        if let Some(shed) = inbound.log.record(now) {
            tracing::warn!(%topic, shed, total, "mqtt consumer behind, incoming messages shed");
        }
        drop(inbound);
        self.wake_reporter.notify_one();
    }

    /// Records a bulk publish shed at `now`, logging at most once per second.
    pub(super) fn outbound(&self, topic: &str, now: Instant) {
        let total = self.outbound_total.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(shed) = lock(&self.outbound_log).record(now) {
            tracing::warn!(%topic, shed, total, "mqtt broker behind, publishes shed");
        }
        self.wake_reporter.notify_one();
    }

    /// The shed messages not yet handed to the consumer, as an event.
    pub(super) fn take_overloaded(&self) -> Option<LinkEvent> {
        let mut inbound = lock(&self.inbound);
        if inbound.unreported == 0 {
            return None;
        }
        let shed = std::mem::take(&mut inbound.unreported);
        let ids = inbound.ids.drain(..).collect();
        Some(LinkEvent::Overloaded { shed, ids })
    }

    /// Messages shed so far, both ways.
    pub(super) fn totals(&self) -> ShedTotals {
        ShedTotals {
            inbound: self.inbound_total.load(Ordering::Relaxed),
            outbound: self.outbound_total.load(Ordering::Relaxed),
        }
    }

    /// Logs the final count of a flood that ended; returns the next time to look again.
    fn report_ended_floods(&self, now: Instant) -> Option<Instant> {
        let mut inbound = lock(&self.inbound);
        if let Some(shed) = inbound.log.handle_timeout(now) {
            let total = self.inbound_total.load(Ordering::Relaxed);
            tracing::warn!(shed, total, "mqtt incoming flood over; last messages shed");
        }
        let mut outbound = lock(&self.outbound_log);
        if let Some(shed) = outbound.handle_timeout(now) {
            let total = self.outbound_total.load(Ordering::Relaxed);
            tracing::warn!(shed, total, "mqtt outgoing flood over; last publishes shed");
        }
        [inbound.log.poll_timeout(), outbound.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Logs the final shed count of each flood once it has been quiet for a second; ends when
/// `done` is dropped (with the poll task).
pub(super) async fn report_loop(shared: Arc<Shared>, mut done: oneshot::Receiver<()>) {
    loop {
        let next = shared.shed.report_ended_floods(Instant::now());
        let wait = async {
            match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => shared.shed.wake_reporter.notified().await,
            }
        };
        tokio::select! {
            _ = &mut done => break,
            _ = wait => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shed_commands_are_reported_once_with_their_ids_in_order() {
        let shed = Shed::new();
        let now = Instant::now();
        assert_eq!(shed.take_overloaded(), None);
        shed.inbound("dev/set", br#"{"id":"a","action":"pause"}"#, now);
        shed.inbound("dev/set", b"pause", now);
        shed.inbound("dev/set", br#"{"id":7,"action":"resume"}"#, now);
        let ids = [br#"{"id":"a"}"#.as_slice(), br#"{"id":7}"#.as_slice()]
            .map(|payload| peek_id(payload).expect("an id"));
        assert_eq!(
            shed.take_overloaded(),
            Some(LinkEvent::Overloaded {
                shed: 3,
                ids: ids.to_vec()
            })
        );
        assert_eq!(shed.take_overloaded(), None);
        shed.outbound("dev/state", now);
        assert_eq!(
            shed.totals(),
            ShedTotals {
                inbound: 3,
                outbound: 1
            }
        );
    }

    #[test]
    fn kept_ids_are_bounded_but_the_count_is_not() {
        let shed = Shed::new();
        let now = Instant::now();
        for _ in 0..MAX_SHED_IDS + 5 {
            shed.inbound("dev/set", br#"{"id":"x"}"#, now);
        }
        let Some(LinkEvent::Overloaded { shed: count, ids }) = shed.take_overloaded() else {
            panic!("nothing reported");
        };
        assert_eq!(count, MAX_SHED_IDS as u64 + 5);
        assert_eq!(ids.len(), MAX_SHED_IDS);
    }

    #[test]
    fn a_flood_is_looked_at_again_a_second_after_its_last_line() {
        let shed = Shed::new();
        let start = Instant::now();
        assert_eq!(shed.report_ended_floods(start), None);
        shed.inbound("dev/set", b"pause", start);
        // The first shed is logged at once; nothing is held back yet.
        assert_eq!(shed.report_ended_floods(start), None);
        shed.outbound("dev/state", start);
        shed.outbound("dev/state", start + Duration::from_millis(20));
        shed.inbound("dev/set", b"pause", start + Duration::from_millis(10));
        let at = start + Duration::from_secs(1);
        assert_eq!(shed.report_ended_floods(start), Some(at));
        // At that time the held-back count is logged and nothing is left to look at.
        assert_eq!(shed.report_ended_floods(at), None);
    }
}

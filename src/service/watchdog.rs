//! The systemd watchdog ping, due every interval while the service loop turns.

use std::time::{Duration, Instant};

/// When the next `WATCHDOG=1` is due.
#[derive(Debug, Clone)]
pub(crate) struct Watchdog {
    interval: Duration,
    next: Instant,
}

impl Watchdog {
    /// First ping at `now`, then every `interval`.
    pub fn new(now: Instant, interval: Duration) -> Watchdog {
        Watchdog {
            interval: interval.max(Duration::from_millis(1)),
            next: now,
        }
    }

    /// When the next ping is due.
    pub(crate) fn due(&self) -> Instant {
        self.next
    }

    /// True when a ping is due at `now`; the next one is then an interval later.
    pub(crate) fn fire(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        // Late (a slow turn): ping now, and keep the full interval before the next one.
        self.next = now + self.interval;
        true
    }
}

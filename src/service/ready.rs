//! When to tell systemd we are ready: after the first connection attempt (it worked or it
//! failed), or at a deadline, so a missing broker does not hold up the boot.

use std::time::{Duration, Instant};

/// Longest wait for the first connection attempt.
pub(crate) const READY_DEADLINE: Duration = Duration::from_secs(5);

/// Whether `READY=1` is still to be sent, and its deadline.
#[derive(Debug, Clone)]
pub struct Ready {
    deadline: Option<Instant>,
}

impl Ready {
    /// Not ready yet; the deadline runs from `now`.
    pub fn new(now: Instant) -> Ready {
        Ready {
            deadline: Some(now + READY_DEADLINE),
        }
    }

    /// A connection attempt ended: true (once) if `READY=1` is to be sent now.
    pub(crate) fn attempted(&mut self) -> bool {
        self.deadline.take().is_some()
    }

    /// When `READY=1` goes out at the latest, while not yet sent.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True (once) when the deadline passed before any attempt ended.
    pub(crate) fn expired(&mut self, now: Instant) -> bool {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            self.deadline = None;
            true
        } else {
            false
        }
    }
}

//! When to tell systemd we are ready: after the first connection attempt (it worked or it
//! failed), or at a deadline, so a missing broker does not hold up the boot.

use super::deadline::Deadline;
use std::time::{Duration, Instant};

/// Longest wait for the first connection attempt.
pub(crate) const READY_DEADLINE: Duration = Duration::from_secs(5);

/// Whether `READY=1` is still to be sent, and its deadline.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    deadline: Deadline,
}

impl Ready {
    /// Not ready yet; the deadline runs from `now`.
    pub fn new(now: Instant) -> Ready {
        Ready {
            deadline: Deadline::at(now + READY_DEADLINE),
        }
    }

    /// A connection attempt ended: true (once) if `READY=1` is to be sent now.
    pub(crate) fn attempted(&mut self) -> bool {
        self.deadline.clear()
    }

    /// When `READY=1` goes out at the latest, while not yet sent.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.due()
    }

    /// True (once) when the deadline passed before any attempt ended.
    pub(crate) fn expired(&mut self, now: Instant) -> bool {
        self.deadline.fire(now)
    }
}

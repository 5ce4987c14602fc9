//! Local midnight, when the relaxer guard's "today" moves on. The shell reads the calendar;
//! the service only knows how long until the next midnight, as it was told.

use super::deadline::Deadline;
use std::time::{Duration, Instant};

/// Shortest wait for the next midnight, so an edge case never makes a busy loop.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// When the calendar is next to be read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Midnight {
    at: Deadline,
}

impl Midnight {
    /// Told at `now` that midnight is `until` away.
    pub(crate) fn set(&mut self, now: Instant, until: Duration) {
        self.at.set(now + until.max(MIN_WAIT));
    }

    /// When the next midnight is.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.at.due()
    }

    /// True (once) when midnight passed; the calendar must then be read and `set` again.
    pub(crate) fn fire(&mut self, now: Instant) -> bool {
        self.at.fire(now)
    }
}

//! Home Assistant's birth message asks every device to republish; answer after a random
//! delay so a house full of devices does not answer at once, and only once per burst.

use super::deadline::Deadline;
use std::ops::Range;
use std::time::{Duration, Instant};

/// Delay between Home Assistant's birth and our republish, in milliseconds.
pub(crate) const DELAY_MS: Range<u64> = 200..2500;

/// The pending republish, with its seeded RNG.
#[derive(Debug, Clone)]
pub(crate) struct Republish {
    rng: fastrand::Rng,
    due: Deadline,
}

impl Republish {
    /// Nothing pending; delays are drawn from `rng`.
    pub fn new(rng: fastrand::Rng) -> Republish {
        Republish {
            rng,
            due: Deadline::default(),
        }
    }

    /// A birth message at `now`: `Some(delay)` when it schedules a republish, `None` when one
    /// is already pending (it covers this birth too).
    pub(crate) fn birth(&mut self, now: Instant) -> Option<Duration> {
        if self.due.is_set() {
            return None;
        }
        let delay = Duration::from_millis(self.rng.u64(DELAY_MS));
        self.due.set(now + delay);
        Some(delay)
    }

    /// When the pending republish is due.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.due.due()
    }

    /// True (once) when the republish is due at `now`.
    pub(crate) fn fire(&mut self, now: Instant) -> bool {
        self.due.fire(now)
    }
}

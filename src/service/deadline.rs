//! A one-shot deadline: armed at an instant, it fires once when that instant has passed and is
//! then clear. The policies that use it (ready, republish, midnight, saves) decide when to arm it.

use std::time::Instant;

/// An instant to act at, or none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Deadline(Option<Instant>);

impl Deadline {
    /// Armed for `at`.
    pub(super) fn at(at: Instant) -> Deadline {
        Deadline(Some(at))
    }

    /// Arms it for `at`, replacing any earlier instant.
    pub(super) fn set(&mut self, at: Instant) {
        self.0 = Some(at);
    }

    /// When it fires, while armed.
    pub(super) fn due(&self) -> Option<Instant> {
        self.0
    }

    /// Whether it is armed.
    pub(super) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Disarms it; true if it was armed.
    pub(super) fn clear(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// True (once) when it is due at `now`; it is then clear.
    pub(super) fn fire(&mut self, now: Instant) -> bool {
        let due = self.0.is_some_and(|at| now >= at);
        if due {
            self.0 = None;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_once_at_its_instant_then_is_clear() {
        let t0 = Instant::now();
        let mut deadline = Deadline::at(t0 + Duration::from_secs(1));
        assert_eq!(deadline.due(), Some(t0 + Duration::from_secs(1)));
        assert!(!deadline.fire(t0 + Duration::from_millis(999)));
        assert!(deadline.is_set());
        assert!(deadline.fire(t0 + Duration::from_secs(1)));
        assert!(!deadline.fire(t0 + Duration::from_secs(2)), "only once");
        assert_eq!(deadline.due(), None);
    }

    #[test]
    fn an_unarmed_deadline_never_fires_and_set_replaces_the_instant() {
        let t0 = Instant::now();
        let mut deadline = Deadline::default();
        assert!(!deadline.is_set() && !deadline.fire(t0));
        assert!(!deadline.clear(), "nothing to clear");
        deadline.set(t0 + Duration::from_secs(5));
        deadline.set(t0 + Duration::from_secs(1));
        assert_eq!(deadline.due(), Some(t0 + Duration::from_secs(1)));
        assert!(deadline.clear());
        assert!(!deadline.fire(t0 + Duration::from_secs(10)), "cleared");
    }
}

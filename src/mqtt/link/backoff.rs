//! The reconnect delay: exponential backoff with full jitter, the RNG injected so every delay
//! is a deterministic test.

use std::time::Duration;

/// Exponential backoff with full jitter above a floor.
///
/// The ceiling starts at `min` and doubles after every delay, up to `max`; each delay is drawn
/// uniformly from `[min, ceiling]`. The floor keeps a failing broker from being retried in a
/// busy loop, the jitter keeps many clients from reconnecting in lockstep after an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Backoff between `min` and `max` (`max` below `min` is raised to `min`).
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// Upper bound of the next delay.
    fn ceiling(&self) -> Duration {
        // 2^31 times anything sensible already exceeds any cap; saturating keeps it total.
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// Next delay, drawn with `rng`; raises the ceiling for the one after.
    pub(super) fn next_delay(&mut self, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling();
        let spread = ceiling.saturating_sub(self.min);
        let spread_nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        let delay = self.min + Duration::from_nanos(rng.u64(0..=spread_nanos));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Back to the smallest ceiling, after a connection that held.
    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn backoff_ceiling_doubles_to_cap() {
        let mut backoff = Backoff::new(MIN, MAX);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            ceilings.push(backoff.ceiling().as_millis());
            backoff.next_delay(&mut rng);
        }
        assert_eq!(
            ceilings,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
    }

    #[test]
    fn backoff_delays_stay_within_floor_and_ceiling() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut backoff = Backoff::new(MIN, MAX);
            for _ in 0..40 {
                let ceiling = backoff.ceiling();
                let delay = backoff.next_delay(&mut rng);
                assert!(
                    delay >= MIN && delay <= ceiling,
                    "{delay:?} outside [{MIN:?}, {ceiling:?}]"
                );
            }
        }
    }

    #[test]
    fn backoff_is_jittered_and_deterministic_per_seed() {
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut backoff = Backoff::new(MIN, MAX);
            (0..10)
                .map(|_| backoff.next_delay(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // Late delays spread over the whole range, not bunched at the cap.
        let late: Vec<Duration> = (0..100).map(|seed| draw(seed)[9]).collect();
        assert!(late.iter().any(|d| *d < MAX / 2));
        assert!(late.iter().any(|d| *d > MAX / 2));
    }

    #[test]
    fn backoff_reset_returns_to_min() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut backoff = Backoff::new(MIN, MAX);
        for _ in 0..5 {
            backoff.next_delay(&mut rng);
        }
        backoff.reset();
        assert_eq!(backoff.ceiling(), MIN);
        assert_eq!(backoff.next_delay(&mut rng), MIN);
    }

    #[test]
    fn backoff_survives_huge_attempt_counts() {
        let mut rng = fastrand::Rng::with_seed(4);
        let mut backoff = Backoff::new(MIN, MAX);
        for _ in 0..100 {
            backoff.next_delay(&mut rng);
        }
        assert_eq!(backoff.ceiling(), MAX);
        let inverted = Backoff::new(MAX, MIN);
        assert_eq!(inverted.ceiling(), MAX);
    }
}

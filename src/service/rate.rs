//! A token bucket that limits commands per second (stop is never asked).

use std::time::Instant;

/// Allows `burst` commands at once and `per_sec` on average.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    per_sec: u64,
    /// Capacity in thousandths of a token.
    capacity_milli: u64,
    tokens_milli: u64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_sec: u32, burst: u32) -> TokenBucket {
        let capacity_milli = u64::from(burst.max(1)) * 1000;
        TokenBucket {
            per_sec: u64::from(per_sec.max(1)),
            capacity_milli,
            tokens_milli: capacity_milli,
            last: None,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed_micros = now.saturating_duration_since(last).as_micros();
            let refill = elapsed_micros.saturating_mul(u128::from(self.per_sec)) / 1000;
            let refill = u64::try_from(refill).unwrap_or(u64::MAX);
            self.tokens_milli = self
                .tokens_milli
                .saturating_add(refill)
                .min(self.capacity_milli);
        }
        self.last = Some(now);
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_average_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 5);
        assert_eq!((0..8).filter(|_| bucket.allow(t0)).count(), 5);
        // 10 per second: one more token every 100 ms.
        assert!(!bucket.allow(t0 + Duration::from_millis(50)));
        assert!(bucket.allow(t0 + Duration::from_millis(150)));
        assert!(!bucket.allow(t0 + Duration::from_millis(160)));
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..8).filter(|_| bucket.allow(later)).count(), 5);
    }
}

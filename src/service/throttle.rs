//! Log throttling that keeps the true count: one line per window, then the number that
//! happened since, and a final count once things calm down.

use std::time::{Duration, Instant};

/// Counts occurrences and says when a log line is due.
#[derive(Debug, Clone)]
pub(crate) struct CountedLog {
    window: Duration,
    /// When the last line was written.
    last_line: Option<Instant>,
    /// Occurrences since that line that were not logged.
    unlogged: u64,
}

impl CountedLog {
    /// At most one line per `window`.
    pub fn new(window: Duration) -> CountedLog {
        CountedLog {
            window,
            last_line: None,
            unlogged: 0,
        }
    }

    /// Notes `n` occurrences at `now`; `Some(count)` means log a line now covering `count`
    /// occurrences (these and the unlogged ones before them).
    pub(crate) fn note(&mut self, now: Instant, n: u64) -> Option<u64> {
        self.unlogged = self.unlogged.saturating_add(n);
        if self.last_line.is_some_and(|at| now < at + self.window) {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }

    /// When the unlogged occurrences are due as a line of their own.
    pub(crate) fn flush_due(&self) -> Option<Instant> {
        let at = self.last_line?;
        (self.unlogged > 0).then(|| at + self.window)
    }

    /// `Some(count)` when the unlogged occurrences are due: log a line with the count.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<u64> {
        if self.flush_due().is_some_and(|due| now >= due) {
            self.last_line = Some(now);
            Some(std::mem::take(&mut self.unlogged))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_with_the_true_count_and_a_final_count() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut log = CountedLog::new(Duration::from_secs(1));
        assert_eq!(log.note(t0, 1), Some(1));
        let quiet = (1..=999).filter_map(|i| log.note(t0 + ms(i), 1)).count();
        assert_eq!(quiet, 0);
        assert_eq!(log.flush_due(), Some(t0 + ms(1000)));
        assert_eq!(log.flush(t0 + ms(999)), None);
        assert_eq!(log.flush(t0 + ms(1000)), Some(999));
        assert_eq!(log.flush_due(), None);
        // The next one within a window of the flush line waits for the next flush.
        assert_eq!(log.note(t0 + ms(1500), 3), None);
        assert_eq!(log.flush(t0 + ms(2000)), Some(3));
        // After a quiet window the next occurrence is logged at once.
        assert_eq!(log.note(t0 + ms(5000), 1), Some(1));
    }
}

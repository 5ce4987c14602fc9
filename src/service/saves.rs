//! When to save: changes are coalesced for a debounce delay, one save is in flight at a time,
//! and a failed save stays dirty and is retried with a growing delay until it succeeds.

use crate::store::SavedState;
use std::time::{Duration, Instant};

/// First retry delay after a failed save; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest delay between retries of a failing save.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the save policy decided about a save result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveNews {
    /// Nothing worth a log line or a state change.
    Quiet,
    /// The first failure of a run of failures (warn, and show the problem).
    StartedFailing,
    /// A save succeeded after failures (the problem is gone).
    Recovered,
}

/// The saving state machine.
#[derive(Debug, Clone)]
pub struct Saves {
    debounce: Duration,
    /// What the store holds, as far as we know.
    written: SavedState,
    /// The save handed to the shell and not reported yet.
    in_flight: Option<SavedState>,
    /// When the next save is to be issued.
    due: Option<Instant>,
    /// Delay before the next retry while saves fail.
    retry: Duration,
    /// The last save error, while saves fail.
    failing: Option<String>,
}

impl Saves {
    /// `written` is what was loaded from the store.
    pub fn new(written: SavedState, debounce: Duration) -> Saves {
        Saves {
            debounce,
            written,
            in_flight: None,
            due: None,
            retry: RETRY_MIN,
            failing: None,
        }
    }

    /// Notes the state after an input; a change arms the debounce (later changes do not move it).
    pub fn observe(&mut self, now: Instant, current: &SavedState) {
        if *current != self.written && self.due.is_none() && self.in_flight.is_none() {
            self.due = Some(now + self.debounce);
        }
    }

    /// When the next save is due.
    pub fn due(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            None
        } else {
            self.due
        }
    }

    /// The save to issue at `now`, if one is due.
    pub(crate) fn take_due(&mut self, now: Instant, current: &SavedState) -> Option<SavedState> {
        if self.in_flight.is_some() || self.due.is_none_or(|due| now < due) {
            return None;
        }
        self.due = None;
        if *current == self.written && self.failing.is_none() {
            return None;
        }
        self.in_flight = Some(current.clone());
        Some(current.clone())
    }

    /// The save to issue at shutdown: whatever is not on disk yet, now.
    pub(crate) fn take_final(&mut self, current: &SavedState) -> Option<SavedState> {
        let pending = self.in_flight.as_ref() != Some(current)
            && (*current != self.written || self.failing.is_some());
        self.due = None;
        pending.then(|| {
            self.in_flight = Some(current.clone());
            current.clone()
        })
    }

    /// The shell's report on the save in flight.
    pub fn result(
        &mut self,
        now: Instant,
        result: Result<(), String>,
        current: &SavedState,
    ) -> SaveNews {
        let Some(saved) = self.in_flight.take() else {
            return SaveNews::Quiet;
        };
        match result {
            Ok(()) => {
                self.written = saved;
                self.retry = RETRY_MIN;
                let news = if self.failing.take().is_some() {
                    SaveNews::Recovered
                } else {
                    SaveNews::Quiet
                };
                self.observe(now, current);
                news
            }
            Err(error) => {
                self.due = Some(now + self.retry);
                self.retry = (self.retry * 2).min(RETRY_MAX);
                let first = self.failing.is_none();
                self.failing = Some(error);
                if first {
                    SaveNews::StartedFailing
                } else {
                    SaveNews::Quiet
                }
            }
        }
    }

    /// The last save error while saves fail.
    pub fn failing(&self) -> Option<&str> {
        self.failing.as_deref()
    }
}

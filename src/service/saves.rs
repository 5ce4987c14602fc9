//! When to save: changes are coalesced for a debounce delay, one save is in flight at a time,
//! and a failed save stays dirty and is retried with a growing delay until it succeeds, shown
//! meanwhile as the `save_failed` problem. [`Saves`] decides; [`Service::handle_saved`] logs
//! and republishes what it decided.

use super::Service;
use super::deadline::Deadline;
use super::state::Problem;
use crate::store::SavedState;
use std::time::{Duration, Instant};

/// First retry delay after a failed save; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest delay between retries of a failing save.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the save policy decided about a save result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaveNews {
    /// Nothing worth a log line or a state change.
    Quiet,
    /// The first failure of a run of failures (warn, and show the problem).
    StartedFailing,
    /// A save succeeded after failures (the problem is gone).
    Recovered,
}

/// The saving state machine.
#[derive(Debug, Clone)]
pub(crate) struct Saves {
    debounce: Duration,
    /// What the store holds, as far as we know.
    written: SavedState,
    /// The save handed to the shell and not reported yet.
    in_flight: Option<SavedState>,
    /// When the next save is to be issued.
    due: Deadline,
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
            due: Deadline::default(),
            retry: RETRY_MIN,
            failing: None,
        }
    }

    /// Notes the state after an input; a change arms the debounce (later changes do not move it).
    pub(crate) fn observe(&mut self, now: Instant, current: &SavedState) {
        if *current != self.written && !self.due.is_set() && self.in_flight.is_none() {
            self.due.set(now + self.debounce);
        }
    }

    /// When the next save is due.
    pub(crate) fn due(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            None
        } else {
            self.due.due()
        }
    }

    /// The save to issue at `now`, if one is due.
    pub(crate) fn take_due(&mut self, now: Instant, current: &SavedState) -> Option<SavedState> {
        if self.in_flight.is_some() || !self.due.fire(now) {
            return None;
        }
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
        self.due.clear();
        pending.then(|| {
            self.in_flight = Some(current.clone());
            current.clone()
        })
    }

    /// The shell's report on the save in flight.
    pub(crate) fn result(
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
                self.due.set(now + self.retry);
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

    /// The `save_failed` problem shown in the state while saves fail.
    pub(super) fn problem(&self) -> Option<Problem> {
        self.failing.as_ref().map(|error| Problem {
            code: "save_failed",
            message: format!("could not save state: {error}; retrying"),
        })
    }
}

impl Service {
    /// The result of [`super::Action::Save`]; a failure is retried with backoff and shown as a
    /// `problem` in the state until a save succeeds.
    pub(crate) fn handle_saved(&mut self, now: Instant, result: Result<(), String>) {
        let error = result.as_ref().err().cloned();
        let current = self.current_saved();
        match self.saves.result(now, result, &current) {
            SaveNews::Quiet => {
                if let Some(error) = error {
                    tracing::debug!(%error, "state save failed again; retrying with backoff");
                }
            }
            SaveNews::StartedFailing => {
                tracing::warn!(
                    error = error.as_deref().unwrap_or(""),
                    "could not save state; retrying with backoff"
                );
                self.publish_state(now);
            }
            SaveNews::Recovered => {
                tracing::info!("state saved again");
                self.publish_state(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn with_intensity(intensity: u32) -> SavedState {
        SavedState {
            intensity,
            ..SavedState::default()
        }
    }

    #[test]
    fn a_change_is_saved_once_after_the_debounce_from_its_first_observation() {
        let t0 = Instant::now();
        let mut saves = Saves::new(with_intensity(50), ms(50));
        saves.observe(t0, &with_intensity(50));
        assert_eq!(saves.due(), None, "unchanged: nothing to save");
        saves.observe(t0, &with_intensity(60));
        saves.observe(t0 + ms(10), &with_intensity(70));
        assert_eq!(
            saves.due(),
            Some(t0 + ms(50)),
            "later changes do not move it"
        );
        assert_eq!(saves.take_due(t0 + ms(49), &with_intensity(70)), None);
        assert_eq!(
            saves.take_due(t0 + ms(50), &with_intensity(70)),
            Some(with_intensity(70))
        );
        assert_eq!(saves.due(), None, "one save in flight at a time");
        saves.observe(t0 + ms(60), &with_intensity(80));
        assert_eq!(saves.due(), None, "not armed while one is in flight");
        let news = saves.result(t0 + ms(70), Ok(()), &with_intensity(80));
        assert_eq!(news, SaveNews::Quiet);
        assert_eq!(saves.due(), Some(t0 + ms(120)), "the newer change is armed");
    }

    #[test]
    fn a_failing_save_is_retried_with_a_doubling_delay_and_shown_as_a_problem() {
        let t0 = Instant::now();
        let current = with_intensity(70);
        let mut saves = Saves::new(with_intensity(50), ms(50));
        saves.observe(t0, &current);
        let mut at = t0 + ms(50);
        assert!(saves.take_due(at, &current).is_some());
        let mut news = Vec::new();
        let mut delays = Vec::new();
        for _ in 0..8 {
            news.push(saves.result(at, Err("disk full".into()), &current));
            let due = saves.due().expect("a retry is armed");
            delays.push((due - at).as_secs());
            at = due;
            assert_eq!(saves.take_due(at, &current), Some(current.clone()));
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(news[0], SaveNews::StartedFailing);
        assert!(news[1..].iter().all(|n| *n == SaveNews::Quiet), "{news:?}");
        let problem = saves.problem().expect("problem");
        assert_eq!(problem.code, "save_failed");
        assert!(problem.message.contains("disk full"), "{}", problem.message);
        assert_eq!(saves.result(at, Ok(()), &current), SaveNews::Recovered);
        assert_eq!(saves.problem(), None);
        assert_eq!(saves.due(), None, "saved: nothing pending");
    }

    #[test]
    fn the_final_save_is_whatever_is_not_on_disk_yet() {
        let t0 = Instant::now();
        let mut saves = Saves::new(with_intensity(50), ms(50));
        assert_eq!(saves.take_final(&with_intensity(50)), None, "nothing new");
        saves.observe(t0, &with_intensity(60));
        assert_eq!(
            saves.take_final(&with_intensity(60)),
            Some(with_intensity(60)),
            "not waiting for the debounce"
        );
        assert_eq!(saves.due(), None);
        assert_eq!(
            saves.take_final(&with_intensity(60)),
            None,
            "already in flight"
        );
    }
}

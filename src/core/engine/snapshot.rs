//! The published state: a snapshot of the engine at one instant.

use super::Engine;
use crate::core::output::{Output, Snapshot};
use std::time::Instant;

impl Engine {
    pub(super) fn flush_state_with(&mut self, now: Option<Instant>) {
        if !self.state_dirty {
            return;
        }
        // Without a clock, a session's start stands in; with neither, the state has no times.
        let now = now.or_else(|| self.session.as_ref().map(|s| s.start));
        let snapshot = self.snapshot_at(now);
        self.outputs.push_back(Output::State(Box::new(snapshot)));
        self.state_dirty = false;
    }

    /// The state at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        self.snapshot_at(Some(now))
    }

    fn snapshot_at(&self, now: Option<Instant>) -> Snapshot {
        let state = self.state();
        let routine = &self.routines[self.current_routine()];
        let mut snapshot = Snapshot {
            state,
            routine: routine.id.clone(),
            routine_name: routine.name.clone(),
            step: None,
            step_index: None,
            step_count: routine.steps.len(),
            zones: None,
            technique: None,
            intensity: self.settings.intensity,
            heat: self.heat.is_some(),
            minutes: self.settings.minutes,
            elapsed: None,
            remaining: None,
            ends_at: None,
            relaxer_date: self.settings.relaxer_date,
            guard_active: self.guard_active(),
            guard_reason: self.guard_reason(),
            counters: self.counters,
            fault: self.fault.clone(),
        };
        if let (Some(session), Some(now)) = (&self.session, now) {
            let position = session.position(now);
            let step = &routine.steps[position.index];
            let t = position.active;
            snapshot.step = Some(step.label.clone());
            snapshot.step_index = Some(position.index);
            snapshot.zones = Some(step.zones.clone());
            snapshot.technique = Some(step.technique);
            snapshot.elapsed = Some(t.min(session.end));
            snapshot.remaining = Some(session.end.saturating_sub(t));
            if session.paused_at.is_none() {
                snapshot.ends_at = Some(session.instant_at(session.end));
            }
        }
        snapshot
    }
}

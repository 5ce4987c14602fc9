//! Session clock maths: active time, the routine position under it, and the frame grid.
//!
//! Every position is computed from the session start and summed step lengths (plus pauses),
//! never accumulated, so nothing drifts.

use super::synth::Ramp;
use crate::core::routine::Routine;
use std::time::{Duration, Instant};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Nanoseconds in `d`; session times stay far below the 584 years where this saturates.
/// u64 rather than u128 arithmetic: 128-bit division is a slow library call on every target.
pub(super) fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Where each step of a routine ends, in nanoseconds from the start of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    ends: Vec<u64>,
}

impl Plan {
    /// The plan of `routine`, which the engine has validated to have steps.
    pub(super) fn of(routine: &Routine) -> Plan {
        let ends = routine
            .steps
            .iter()
            .scan(0u64, |end, step| {
                *end += u64::from(step.seconds) * NANOS_PER_SEC;
                Some(*end)
            })
            .collect();
        Plan { ends }
    }

    /// One pass, in nanoseconds (at least 1, so it can divide).
    pub(super) fn length(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0).max(1)
    }
}

/// Where a session is in its routine at one active time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    /// Active session time (pauses not counted).
    pub(crate) active: Duration,
    /// Completed passes through the routine.
    pub(crate) pass: u64,
    /// Index of the current step.
    pub(crate) index: usize,
    /// Nanoseconds since the current step began.
    pub(crate) into_step: u64,
    /// Nanoseconds until the current step ends.
    pub(crate) step_left: u64,
}

/// Which step was last announced, so each step start is published once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StepMark {
    pub(crate) routine: usize,
    pub(crate) pass: u64,
    pub(crate) index: usize,
}

/// One run of a routine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Session {
    /// Index of the routine in the library.
    pub(crate) routine: usize,
    /// Step ends of that routine.
    pub(crate) plan: Plan,
    pub(crate) start: Instant,
    pub(crate) paused_total: Duration,
    pub(crate) paused_at: Option<Instant>,
    /// Active time at which the session ends.
    pub(crate) end: Duration,
    /// Routine position = (active + shift) mod routine length; moved by skip and routine changes.
    pub(crate) shift: Duration,
    /// Soft start: rises from `from` toward 1000; the soft stop toward `end` is applied on top.
    pub(crate) envelope: Ramp,
    pub(crate) intensity: Ramp,
    pub(crate) announced: StepMark,
    /// Active time at which the announced step ends; no step check is needed before it.
    pub(crate) step_ends: Duration,
    /// When the next grid frame is due, cached so `poll_timeout` does no arithmetic.
    pub(crate) next_frame_at: Instant,
    pub(crate) next_progress: Instant,
}

impl Session {
    /// Session time at `now`, not counting pauses; frozen while paused.
    pub(super) fn active(&self, now: Instant) -> Duration {
        let reference = self.paused_at.unwrap_or(now);
        reference
            .saturating_duration_since(self.start)
            .saturating_sub(self.paused_total)
    }

    /// The instant at which active time `active` is reached if the session keeps running.
    pub(super) fn instant_at(&self, active: Duration) -> Instant {
        self.start + self.paused_total + active
    }

    /// Where the session is at `now`.
    pub(super) fn position(&self, now: Instant) -> Position {
        self.position_at(self.active(now))
    }

    /// Where the session is at active time `active`.
    pub(super) fn position_at(&self, active: Duration) -> Position {
        let length = self.plan.length();
        let absolute = ns(active) + ns(self.shift);
        let offset = absolute % length;
        // The first step that ends after the offset; offsets stay below the length.
        let index = self.plan.ends.partition_point(|&end| end <= offset);
        let start = index
            .checked_sub(1)
            .and_then(|i| self.plan.ends.get(i))
            .copied()
            .unwrap_or(0);
        let end = self.plan.ends.get(index).copied().unwrap_or(length);
        Position {
            active,
            pass: absolute / length,
            index,
            into_step: offset - start,
            step_left: end - offset,
        }
    }

    /// Moves the routine position to the start of the next step.
    pub(super) fn skip_step(&mut self, now: Instant) {
        // The shift only grows, so a skip past the last step starts the next pass.
        self.shift += Duration::from_nanos(self.position(now).step_left);
    }

    /// Switches to another routine, which starts from its first step at `active`.
    pub(super) fn switch_routine(&mut self, routine: usize, plan: Plan, active: Duration) {
        let length = plan.length();
        self.routine = routine;
        self.plan = plan;
        self.shift = Duration::from_nanos((length - ns(active) % length) % length);
    }
}

/// Index of the grid frame at or before active time `t`.
pub(super) fn frame_index(t: Duration, hz: u32) -> u64 {
    ns(t).saturating_mul(u64::from(hz)) / NANOS_PER_SEC
}

/// Active time of grid frame `k`; computed from `k`, never accumulated, so it cannot drift.
pub(super) fn frame_time(k: u64, hz: u32) -> Duration {
    Duration::from_nanos(
        k.saturating_mul(NANOS_PER_SEC)
            .div_ceil(u64::from(hz.max(1))),
    )
}

//! Frame synthesis: the level of every channel at one instant, from the session's step,
//! its waveform, the user's intensity, the soft start and stop ramps, and the heater.
//!
//! Integer arithmetic only, so every platform computes the same levels.

use super::Engine;
use super::session::{Session, frame_index, frame_time, ns};
use crate::core::channels::Frame;
use crate::core::config::EngineConfig;
use crate::core::output::Output;
use crate::core::routine::{Routine, Technique};
use crate::core::waveform::{self, PHASE_ONE};
use std::time::{Duration, Instant};

const MICROS_PER_MINUTE: u64 = 60_000_000;

/// A linear ramp of a permille value in active session time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ramp {
    pub(crate) origin: Duration,
    pub(crate) from: u32,
    pub(crate) to: u32,
}

impl Ramp {
    /// A ramp that holds `value`.
    pub(super) fn hold(value: u32) -> Ramp {
        Ramp {
            origin: Duration::ZERO,
            from: value,
            to: value,
        }
    }

    /// Permille value at `t`, moving at full scale per `length`.
    pub(super) fn value_at(&self, t: Duration, length: Duration) -> u32 {
        let elapsed = ns(t.saturating_sub(self.origin));
        let length = ns(length);
        if length == 0 || self.from == self.to {
            return self.to;
        }
        let span = u64::from(self.from.abs_diff(self.to));
        // Full scale (1000) takes `length`; a smaller change takes proportionally less.
        let moved = (elapsed.saturating_mul(1000) / length).min(span);
        // moved <= span <= 1000, so it fits in u32.
        let moved = moved as u32;
        if self.to > self.from {
            self.from + moved
        } else {
            self.from - moved
        }
    }
}

/// Session envelope (permille): soft start from the last resume or change, soft stop into the end.
pub(super) fn envelope(session: &Session, t: Duration, ramp: Duration) -> u32 {
    if t >= session.end {
        return 0;
    }
    let rise = session.envelope.value_at(t, ramp);
    let left = ns(session.end - t);
    // Without a ramp the level stays full until the end; the result is clamped to 1000.
    let fall = left
        .saturating_mul(1000)
        .checked_div(ns(ramp))
        .map_or(1000, |f| f.min(1000) as u32);
    rise.min(fall)
}

/// The heater's level while it is on.
pub(super) fn heat_level(config: &EngineConfig) -> u16 {
    config.heat_level.min(config.max_level)
}

/// Motor levels at active time `t` into `levels` (which is all zero on entry).
pub(super) fn motor_levels(
    config: &EngineConfig,
    routine: &Routine,
    session: &Session,
    t: Duration,
    levels: &mut [u16],
) {
    let position = session.position_at(t);
    let step = &routine.steps[position.index];
    // Microseconds keep the product in u64: 3600 s * 240 cycles/min * 2^16 < 2^64.
    let cycles = (position.into_step / 1000) * u64::from(step.tempo) * u64::from(PHASE_ONE)
        / MICROS_PER_MINUTE;
    // Reduced modulo PHASE_ONE (2^16), so it fits in u32.
    let phase = (cycles % u64::from(PHASE_ONE)) as u32;
    let intensity = u64::from(session.intensity.value_at(t, config.ramp));
    let env = u64::from(envelope(session, t, config.ramp));
    let max = u64::from(config.max_level);
    let base = max * intensity * u64::from(step.intensity) * env / (1000 * 100 * 1000);
    let zone_count = step.zones.len();
    for (zone_index, zone) in step.zones.iter().enumerate() {
        let slots = config.channels.zone(*zone);
        for (channel_index, &slot) in slots.iter().enumerate() {
            let wave = if step.technique == Technique::Sweep {
                waveform::sweep(phase, zone_index, zone_count)
            } else {
                waveform::zone_level(step.technique, phase, channel_index, slots.len())
            };
            let level = (base * u64::from(wave) / 1000).min(max);
            // level <= max <= 1000.
            levels[slot] = level as u16;
        }
    }
}

impl Engine {
    pub(super) fn envelope_at(&self, now: Instant) -> u32 {
        match &self.session {
            Some(s) if s.paused_at.is_none() => envelope(s, s.active(now), self.config.ramp),
            _ => 0,
        }
    }

    /// Computes the frame for `now` and queues it when it differs from the last (or `force`).
    pub(super) fn emit_frame(&mut self, now: Instant, force: bool) {
        // Computed in a reused buffer; a new allocation only when the frame changed.
        let mut frame = std::mem::replace(&mut self.scratch, Frame::zero(0));
        frame.levels.clear();
        frame.levels.resize(self.config.channels.count(), 0);
        if self.fault.is_none() {
            if let Some(session) = self.session.as_mut()
                && session.paused_at.is_none()
            {
                let hz = self.config.frame_hz;
                let k = frame_index(session.active(now), hz);
                session.next_frame_at = session.instant_at(frame_time(k + 1, hz));
                let session = &*session;
                motor_levels(
                    &self.config,
                    &self.routines[session.routine],
                    session,
                    frame_time(k, hz),
                    &mut frame.levels,
                );
            }
            if let (Some(_), Some(slot)) = (self.heat, self.config.channels.heat()) {
                frame.levels[slot] = heat_level(&self.config);
            }
        }
        if force || frame != self.last_frame {
            self.last_frame.levels.clone_from(&frame.levels);
            self.outputs.push_back(Output::Frame(frame.clone()));
        }
        self.scratch = frame;
    }
}

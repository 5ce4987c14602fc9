//! A session run in virtual time, and its rendering as a table, JSON or CSV.

use crate::core::{
    ChannelMap, Command, Engine, Event, EventKind, Frame, Output, Rejection, Routine, Zone,
};
use serde_json::json;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Everything one simulated session produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The routine that ran first.
    pub(crate) routine: Routine,
    /// Session length setting.
    pub(crate) minutes: u32,
    /// User intensity setting.
    pub(crate) intensity: u32,
    /// Frame rate.
    pub(crate) frame_hz: u32,
    /// Whether the session asked for heat.
    pub(crate) heat: bool,
    /// Which frame slots belong to which zone and the heater.
    pub(crate) channels: ChannelMap,
    /// Events with their offsets from the start.
    pub events: Vec<(Duration, Event)>,
    /// Frames with their offsets from the start (only frames that changed).
    pub frames: Vec<(Duration, Frame)>,
    /// When the session ended.
    pub end: Duration,
}

/// Upper bound on simulated wake-ups, far above a capped session at the highest frame rate.
const MAX_WAKEUPS: usize = 10_000_000;

/// Runs `start` on `engine` from an arbitrary origin until the engine has nothing scheduled.
pub fn simulate(engine: Engine, start: &Command) -> Result<Timeline, Rejection> {
    let mut frames = Vec::new();
    let mut timeline = simulate_with(engine, start, |at, frame| frames.push((at, frame)))?;
    timeline.frames = frames;
    Ok(timeline)
}

/// [`simulate`], handing each frame to `frame` in time order instead of keeping it: the
/// returned timeline has no frames, so memory does not grow with the session's length.
pub(crate) fn simulate_with(
    mut engine: Engine,
    start: &Command,
    mut frame: impl FnMut(Duration, Frame),
) -> Result<Timeline, Rejection> {
    let origin = Instant::now();
    engine.handle_command(origin, start)?;
    let snapshot = engine.snapshot(origin);
    let routine = engine
        .find_routine(&snapshot.routine)
        .map(|i| engine.routines()[i].clone())
        .unwrap_or_else(|| engine.routines()[0].clone());
    let mut timeline = Timeline {
        routine,
        minutes: snapshot.minutes,
        intensity: snapshot.intensity,
        frame_hz: engine.config().frame_hz,
        heat: snapshot.heat,
        channels: engine.config().channels.clone(),
        events: Vec::new(),
        frames: Vec::new(),
        end: Duration::ZERO,
    };
    let mut collect = |engine: &mut Engine, at: Instant, timeline: &mut Timeline| {
        while let Some(output) = engine.poll_output() {
            match output {
                Output::Frame(levels) => frame(at - origin, levels),
                Output::Event(event) => timeline.events.push((at - origin, event)),
                Output::State(_) => {}
            }
        }
        timeline.end = at - origin;
    };
    collect(&mut engine, origin, &mut timeline);
    for _ in 0..MAX_WAKEUPS {
        let Some(at) = engine.poll_timeout() else {
            break;
        };
        engine.handle_timeout(at);
        collect(&mut engine, at, &mut timeline);
    }
    Ok(timeline)
}

/// A name for every frame slot: `temples_left`, `temples_right`, ..., `heat`.
///
/// A zone with two motors names them `_left` and `_right` (the first slot is the left one);
/// a zone with one motor is named after the zone; more motors are numbered from 1. A slot
/// nothing uses is `chN`.
pub(crate) fn channel_names(channels: &ChannelMap) -> Vec<String> {
    let mut names: Vec<String> = (0..channels.count()).map(|i| format!("ch{i}")).collect();
    for zone in Zone::ALL {
        let slots = channels.zone(zone);
        for (n, &slot) in slots.iter().enumerate() {
            let name = match (slots.len(), n) {
                (1, _) => zone.as_str().to_string(),
                (2, 0) => format!("{zone}_left"),
                (2, _) => format!("{zone}_right"),
                (_, n) => format!("{zone}_{}", n + 1),
            };
            if let Some(entry) = names.get_mut(slot) {
                *entry = name;
            }
        }
    }
    if let Some(entry) = channels.heat().and_then(|slot| names.get_mut(slot)) {
        *entry = "heat".to_string();
    }
    names
}

fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// FNV-1a over every frame's offset and levels: one number that changes if any frame does.
pub(crate) fn frames_digest(frames: &[(Duration, Frame)]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (at, frame) in frames {
        feed(&at.as_nanos().to_le_bytes());
        for level in &frame.levels {
            feed(&level.to_le_bytes());
        }
    }
    hash
}

impl Timeline {
    /// Steps as they began: offset, index, and the step itself.
    fn step_starts(&self) -> Vec<(Duration, &Event)> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e.kind, EventKind::Started | EventKind::Step))
            .map(|(t, e)| (*t, e))
            .collect()
    }

    /// Human-readable step boundaries.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}): {} min at {}%, {} Hz",
            self.routine.name, self.routine.id, self.minutes, self.intensity, self.frame_hz
        );
        let _ = writeln!(
            out,
            "{:>9}  {:>4}  {:<10} {:<28} label",
            "time_s", "step", "technique", "zones"
        );
        for (at, event) in self.step_starts() {
            let index = event.step_index.unwrap_or(0);
            let Some(step) = self.routine.steps.get(index) else {
                continue;
            };
            let zones: Vec<&str> = step.zones.iter().map(|z| z.as_str()).collect();
            let _ = writeln!(
                out,
                "{:>9}  {:>4}  {:<10} {:<28} {}",
                seconds(at),
                index,
                step.technique.as_str(),
                zones.join(","),
                step.label
            );
        }
        let _ = writeln!(
            out,
            "{:>9}  end ({} frames written)",
            seconds(self.end),
            self.frames.len()
        );
        out
    }

    /// The timeline as JSON: settings, step boundaries, events and a digest of every frame.
    pub fn to_json(&self) -> String {
        let steps: Vec<_> = self
            .step_starts()
            .into_iter()
            .filter_map(|(at, event)| {
                let index = event.step_index?;
                let step = self.routine.steps.get(index)?;
                Some(json!({
                    "t_ms": at.as_millis() as u64,
                    "index": index,
                    "label": step.label,
                    "zones": step.zones,
                    "technique": step.technique,
                    "intensity": step.intensity,
                    "tempo": step.tempo,
                }))
            })
            .collect();
        let events: Vec<_> = self
            .events
            .iter()
            .map(|(at, e)| {
                json!({
                    "t_ms": at.as_millis() as u64,
                    "event_type": e.kind.as_str(),
                    "routine": e.routine,
                    "step_index": e.step_index,
                    "reason": e.reason.map(|r| r.as_str()),
                })
            })
            .collect();
        let peak = self
            .frames
            .iter()
            .flat_map(|(_, f)| f.levels.iter().copied())
            .max()
            .unwrap_or(0);
        let value = json!({
            "routine": self.routine.id,
            "routine_name": self.routine.name,
            "minutes": self.minutes,
            "intensity": self.intensity,
            "frame_hz": self.frame_hz,
            "duration_ms": self.end.as_millis() as u64,
            "frames": self.frames.len(),
            "frames_digest": format!("{:016x}", frames_digest(&self.frames)),
            "peak_level": peak,
            "steps": steps,
            "events": events,
        });
        // Serialising a Value built from strings and numbers cannot fail.
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }

    /// Every frame as CSV: `t_ms,temples_left,temples_right,...,heat` (see [`channel_names`]).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("t_ms");
        for name in channel_names(&self.channels) {
            let _ = write!(out, ",{name}");
        }
        out.push('\n');
        for (at, frame) in &self.frames {
            let _ = write!(out, "{}.{:03}", at.as_millis(), at.subsec_micros() % 1000);
            for level in &frame.levels {
                let _ = write!(out, ",{level}");
            }
            out.push('\n');
        }
        out
    }
}

//! Where everything in the picture goes: its geometry in pixels and each slot's level envelope,
//! worked out from the timeline alone.
//!
//! No markup is written here, so every position, column and tick is plain integer arithmetic
//! that a test can check without parsing SVG; `svg` only turns these numbers into elements.

use crate::core::{ChannelMap, EventKind, Frame, Zone};
use crate::timeline::Timeline;
use std::time::Duration;

/// Total width of the picture in pixels.
pub(super) const WIDTH: u64 = 800;
/// Left edge of the plot (zone names sit left of it).
pub(super) const PLOT_X: u64 = 92;
/// Width of the plot in pixels.
pub(super) const PLOT_W: u64 = 690;
/// Top of the first lane.
pub(super) const LANES_Y: u64 = 70;
/// Height of one zone lane: left motors above its centre line, right motors below.
const LANE_H: u64 = 44;
/// Pixels from a lane's centre line to full level.
pub(super) const HALF: u64 = 20;
/// Height of the heat lane.
const HEAT_H: u64 = 18;
/// Height of one legend row.
const ROW_H: u64 = 16;
/// Shortest time one plotted column covers; shorter columns would draw every wave of a
/// circle and make the picture large without making it clearer.
const MIN_BUCKET_MS: u64 = 3000;
/// Estimated width of one character at the 10 px label size, to decide whether a label fits.
const CHAR_W: u64 = 6;

/// An axis-aligned rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rect {
    pub(super) x: u64,
    pub(super) y: u64,
    pub(super) width: u64,
    pub(super) height: u64,
}

/// One lane: the zone's name and its motor slots split into the upper (left) and lower (right)
/// side.
pub(super) struct Lane {
    pub(super) zone: Zone,
    pub(super) upper: Vec<usize>,
    pub(super) lower: Vec<usize>,
}

fn lanes(channels: &ChannelMap) -> Vec<Lane> {
    Zone::ALL
        .iter()
        .filter_map(|&zone| {
            let slots = channels.zone(zone);
            if slots.is_empty() {
                return None;
            }
            let split = slots.len().div_ceil(2);
            Some(Lane {
                zone,
                upper: slots[..split].to_vec(),
                lower: slots[split..].to_vec(),
            })
        })
        .collect()
}

/// Per-column lowest and highest level of every slot.
pub(super) struct Envelope {
    /// Pixels per column.
    column_px: u64,
    /// `[column][slot] = (min, max)`.
    columns: Vec<Vec<(u16, u16)>>,
}

impl Envelope {
    /// Number of plotted columns.
    pub(super) fn len(&self) -> usize {
        self.columns.len()
    }

    /// Pixel x where `column` starts; `len()` gives the plot's right edge.
    pub(super) fn column_x(&self, column: usize) -> u64 {
        (PLOT_X + column as u64 * self.column_px).min(PLOT_X + PLOT_W)
    }

    /// The highest of `pick(min, max)` over `slots` in `column` (0 without slots).
    pub(super) fn side(&self, slots: &[usize], column: usize, pick: fn((u16, u16)) -> u16) -> u16 {
        slots
            .iter()
            .filter_map(|&s| self.columns[column].get(s).copied())
            .map(pick)
            .max()
            .unwrap_or(0)
    }
}

/// The envelope of frames already kept in a timeline.
fn envelope(frames: &[(Duration, Frame)], slots: usize, end: Duration) -> Envelope {
    let mut envelope = EnvelopeBuilder::new(slots, end);
    for (at, frame) in frames {
        envelope.push(*at, frame);
    }
    envelope.finish()
}

/// An [`Envelope`] built from frames as they come, in time order, without keeping them: the
/// routine picture streams a whole session through it, so its memory is one range per slot
/// and column however long the session (a 30-minute session is about 90,000 frames).
pub(super) struct EnvelopeBuilder {
    end_us: u64,
    column_px: u64,
    count: u64,
    /// Every slot's level as of the last frame.
    current: Vec<u16>,
    /// The ranges of the column being filled (index `columns.len()`), once a frame fell
    /// inside it.
    range: Option<Vec<(u16, u16)>>,
    columns: Vec<Vec<(u16, u16)>>,
}

impl EnvelopeBuilder {
    /// Columns for a session of `end` (at least a microsecond), `slots` levels per frame.
    pub(super) fn new(slots: usize, end: Duration) -> EnvelopeBuilder {
        let end_us = (end.as_micros() as u64).max(1);
        // Wide enough that one column covers MIN_BUCKET_MS, and at least one pixel.
        let column_px = (MIN_BUCKET_MS * 1000 * PLOT_W)
            .div_ceil(end_us)
            .clamp(1, PLOT_W);
        let count = PLOT_W.div_ceil(column_px);
        EnvelopeBuilder {
            end_us,
            column_px,
            count,
            current: vec![0; slots],
            range: None,
            columns: Vec::with_capacity(count as usize),
        }
    }

    /// Start and end of `column` in microseconds into the session.
    fn bounds(&self, column: u64) -> (u64, u64) {
        let time_at = |px: u64| px.min(PLOT_W) * self.end_us / PLOT_W;
        (
            time_at(column * self.column_px),
            time_at((column + 1) * self.column_px),
        )
    }

    /// The next frame, `at` into the session. A frame at a column's start sets the levels the
    /// column starts from; one inside it widens its ranges; one past the end changes nothing.
    pub(super) fn push(&mut self, at: Duration, frame: &Frame) {
        let at = at.as_micros() as u64;
        while (self.columns.len() as u64) < self.count {
            let (start, stop) = self.bounds(self.columns.len() as u64);
            if self.range.is_none() && at <= start {
                copy_levels(&mut self.current, frame);
                return;
            }
            if at < stop {
                // The column's ranges start from the levels before its first frame.
                let range = self.range.get_or_insert_with(|| flat(&self.current));
                copy_levels(&mut self.current, frame);
                for (r, &l) in range.iter_mut().zip(&self.current) {
                    *r = (r.0.min(l), r.1.max(l));
                }
                return;
            }
            self.close_column();
        }
    }

    /// Ends the column being filled; one no frame reached holds the levels as they stand.
    fn close_column(&mut self) {
        let range = self.range.take().unwrap_or_else(|| flat(&self.current));
        self.columns.push(range);
    }

    /// The envelope; columns after the last frame keep its levels.
    pub(super) fn finish(mut self) -> Envelope {
        while (self.columns.len() as u64) < self.count {
            self.close_column();
        }
        Envelope {
            column_px: self.column_px,
            columns: self.columns,
        }
    }
}

/// Each level as a range of its own.
fn flat(levels: &[u16]) -> Vec<(u16, u16)> {
    levels.iter().map(|&l| (l, l)).collect()
}

fn copy_levels(current: &mut [u16], frame: &Frame) {
    for (c, &l) in current.iter_mut().zip(&frame.levels) {
        *c = l;
    }
}

/// Pixels for a level in permille.
pub(super) fn height(level: u16, full: u64) -> u64 {
    (u64::from(level) * full + 500) / 1000
}

/// A session laid out: its lanes, levels and steps, and where each band of the picture sits.
pub(super) struct Layout {
    pub(super) lanes: Vec<Lane>,
    /// The heater's slot, when the device has one (then the picture has a heat lane).
    pub(super) heat_slot: Option<usize>,
    pub(super) envelope: Envelope,
    /// Each step start as it played: offset into the session and step index.
    pub(super) starts: Vec<(Duration, usize)>,
    /// Index of every step that played, ascending, once each.
    pub(super) played: Vec<usize>,
    /// Session length, at least a millisecond.
    end: Duration,
    /// Top of the heat lane, just below the zone lanes.
    lanes_bottom: u64,
    /// Bottom of the plot (lanes and heat).
    pub(super) plot_bottom: u64,
    /// The time axis line.
    pub(super) axis_y: u64,
    /// Baseline of the first legend row.
    legend_y: u64,
    /// Total height of the picture.
    pub(super) height: u64,
}

impl Layout {
    /// Lays out `timeline`. Cost: one pass over its frames and events.
    pub(super) fn new(timeline: &Timeline) -> Layout {
        let end = Layout::end(timeline);
        let envelope = envelope(&timeline.frames, timeline.channels.count(), end);
        Layout::with_envelope(timeline, envelope)
    }

    /// Where the plot ends for `timeline`: its end, at least a millisecond.
    pub(super) fn end(timeline: &Timeline) -> Duration {
        timeline.end.max(Duration::from_millis(1))
    }

    /// Lays out `timeline` with the `envelope` of its frames built for [`Layout::end`]
    /// (the timeline's own frames are not looked at).
    pub(super) fn with_envelope(timeline: &Timeline, envelope: Envelope) -> Layout {
        let lanes = lanes(&timeline.channels);
        let heat_slot = timeline.channels.heat();
        let end = Layout::end(timeline);
        let lanes_bottom = LANES_Y + LANE_H * lanes.len() as u64;
        let plot_bottom = lanes_bottom + if heat_slot.is_some() { HEAT_H } else { 0 };
        let axis_y = plot_bottom + 4;
        let starts: Vec<(Duration, usize)> = timeline
            .events
            .iter()
            .filter(|(_, e)| matches!(e.kind, EventKind::Started | EventKind::Step))
            .filter_map(|(t, e)| Some((*t, e.step_index?)))
            .collect();
        let mut played: Vec<usize> = starts.iter().map(|&(_, i)| i).collect();
        played.sort_unstable();
        played.dedup();
        let legend_y = axis_y + 36;
        let height = legend_y + ROW_H * played.len() as u64 + 8;
        Layout {
            lanes,
            heat_slot,
            envelope,
            starts,
            played,
            end,
            lanes_bottom,
            plot_bottom,
            axis_y,
            legend_y,
            height,
        }
    }

    /// The background band of zone lane `lane`.
    pub(super) fn lane_band(&self, lane: usize) -> Rect {
        Rect {
            x: PLOT_X,
            y: LANES_Y + LANE_H * lane as u64 + 1,
            width: PLOT_W,
            height: LANE_H - 2,
        }
    }

    /// The centre line of zone lane `lane`: left motors rise above it, right ones below.
    pub(super) fn centre(&self, lane: usize) -> u64 {
        LANES_Y + LANE_H * lane as u64 + LANE_H / 2
    }

    /// The background band of the heat lane.
    pub(super) fn heat_band(&self) -> Rect {
        Rect {
            x: PLOT_X,
            y: self.lanes_bottom + 1,
            width: PLOT_W,
            height: HEAT_H - 2,
        }
    }

    /// Baseline of the heat lane's name.
    pub(super) fn heat_label_y(&self) -> u64 {
        self.lanes_bottom + HEAT_H / 2 + 4
    }

    /// The heater's level as bars standing on the heat lane's floor, one per run of columns
    /// at the same height; nothing where the heater is off.
    pub(super) fn heat_bars(&self, slot: usize) -> Vec<Rect> {
        let env = &self.envelope;
        let bottom = self.lanes_bottom + HEAT_H - 2;
        let bar = |column: usize| height(env.side(&[slot], column, |r| r.1), HEAT_H - 4);
        let mut bars = Vec::new();
        let mut column = 0;
        while column < env.len() {
            let h = bar(column);
            let mut run = column + 1;
            while run < env.len() && bar(run) == h {
                run += 1;
            }
            if h > 0 {
                let x = env.column_x(column);
                bars.push(Rect {
                    x,
                    y: bottom - h,
                    width: env.column_x(run) - x,
                    height: h,
                });
            }
            column = run;
        }
        bars
    }

    /// Pixel x of an offset into the session.
    pub(super) fn x_of(&self, at: Duration) -> u64 {
        let end_us = self.end.as_micros() as u64;
        PLOT_X + (at.as_micros() as u64).min(end_us) * PLOT_W / end_us
    }

    /// How many label characters fit right of the `n`th step start, before the next one.
    pub(super) fn label_room(&self, n: usize) -> usize {
        let x = self.x_of(self.starts[n].0);
        let next = self
            .starts
            .get(n + 1)
            .map_or(PLOT_X + PLOT_W, |&(t, _)| self.x_of(t));
        (next.saturating_sub(x + 6) / CHAR_W) as usize
    }

    /// Seconds of every time-axis tick: the finest round interval giving at most ten of them
    /// up to the end.
    pub(super) fn ticks(&self) -> Vec<u64> {
        let end_s = self.end.as_secs_f64().ceil() as u64;
        let tick = [15, 30, 60, 120, 300, 600, 900, 1800, 3600]
            .into_iter()
            .find(|&t| end_s / t <= 10)
            .unwrap_or(3600);
        (0..)
            .map(|i| i * tick)
            .take_while(|&s| Duration::from_secs(s) <= self.end)
            .collect()
    }

    /// Baseline of legend row `row`.
    pub(super) fn legend_row_y(&self, row: usize) -> u64 {
        self.legend_y + ROW_H * row as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(levels: &[u16]) -> Frame {
        Frame {
            levels: levels.to_vec(),
        }
    }

    fn timeline(channels: ChannelMap, end: Duration, frames: Vec<(Duration, Frame)>) -> Timeline {
        Timeline {
            routine: crate::config::builtin_routines().remove(0),
            minutes: 1,
            intensity: 60,
            frame_hz: 10,
            heat: true,
            channels,
            events: Vec::new(),
            frames,
            end,
        }
    }

    /// The default headrest laid out for `secs` seconds in which nothing played.
    fn headrest_idle(secs: u64) -> Layout {
        Layout::new(&timeline(
            ChannelMap::headrest(),
            Duration::from_secs(secs),
            Vec::new(),
        ))
    }

    #[test]
    fn lanes_skip_empty_zones_and_put_the_odd_motor_on_the_left() {
        let channels =
            ChannelMap::new([vec![0, 1, 2], vec![], vec![3], vec![], vec![4, 5]], None).unwrap();
        let lanes = lanes(&channels);
        let shape: Vec<_> = lanes
            .iter()
            .map(|l| (l.zone, l.upper.clone(), l.lower.clone()))
            .collect();
        assert_eq!(
            shape,
            [
                (Zone::Temples, vec![0, 1], vec![2]),
                (Zone::Crown, vec![3], vec![]),
                (Zone::Neck, vec![4], vec![5]),
            ]
        );
    }

    #[test]
    fn envelope_columns_cover_three_seconds_and_keep_each_columns_range() {
        // 69 s over 690 px: 3 s is 30 px, so 23 columns.
        let end = Duration::from_secs(69);
        let frames = vec![
            (Duration::ZERO, frame(&[100, 0])),
            (Duration::from_secs(1), frame(&[700, 0])),
            (Duration::from_secs(2), frame(&[300, 0])),
            (Duration::from_secs(4), frame(&[0, 1000])),
        ];
        let env = envelope(&frames, 2, end);
        assert_eq!((env.column_px, env.len()), (30, 23));
        assert_eq!(env.columns[0], [(100, 700), (0, 0)]);
        assert_eq!(env.columns[1], [(0, 300), (0, 1000)]);
        assert_eq!(env.columns[2], [(0, 0), (1000, 1000)]);
        assert_eq!(env.column_x(0), PLOT_X);
        assert_eq!(env.column_x(env.len()), PLOT_X + PLOT_W);
        assert_eq!(env.side(&[0, 1], 1, |r| r.1), 1000);
        assert_eq!(env.side(&[0, 1], 1, |r| r.0), 0);
        assert_eq!(
            env.side(&[7], 1, |r| r.1),
            0,
            "a slot past the frame is off"
        );
    }

    /// The envelope as it was computed before it streamed: over the kept frames, column by
    /// column. An independent model for the builder.
    fn batch_envelope(
        frames: &[(Duration, Frame)],
        slots: usize,
        end: Duration,
    ) -> Vec<Vec<(u16, u16)>> {
        let end_us = (end.as_micros() as u64).max(1);
        let column_px = (MIN_BUCKET_MS * 1000 * PLOT_W)
            .div_ceil(end_us)
            .clamp(1, PLOT_W);
        let time_at = |px: u64| px.min(PLOT_W) * end_us / PLOT_W;
        let mut current = vec![0u16; slots];
        let mut next = 0;
        let mut columns = Vec::new();
        for column in 0..PLOT_W.div_ceil(column_px) {
            let start = time_at(column * column_px);
            let stop = time_at((column + 1) * column_px);
            let at = |i: usize| frames[i].0.as_micros() as u64;
            while next < frames.len() && at(next) <= start {
                copy_levels(&mut current, &frames[next].1);
                next += 1;
            }
            let mut range: Vec<(u16, u16)> = current.iter().map(|&l| (l, l)).collect();
            while next < frames.len() && at(next) < stop {
                copy_levels(&mut current, &frames[next].1);
                for (r, &l) in range.iter_mut().zip(&current) {
                    *r = (r.0.min(l), r.1.max(l));
                }
                next += 1;
            }
            columns.push(range);
        }
        columns
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Frames with `levels`, each `gap` units of `unit` after the one before.
        fn frames_after_gaps(
            steps: Vec<(u64, Vec<u16>)>,
            unit: Duration,
        ) -> Vec<(Duration, Frame)> {
            let mut at = Duration::ZERO;
            steps
                .into_iter()
                .map(|(gap, levels)| {
                    at += unit * gap as u32;
                    (at, Frame { levels })
                })
                .collect()
        }

        proptest! {
            #[test]
            fn streamed_envelope_matches_the_batch_one(
                slots in 1usize..4,
                end_ms in 1u64..4_000_000,
                // Gaps between frames in ms (0: two frames at the same offset), levels per frame.
                steps in prop::collection::vec((0u64..20_000, prop::collection::vec(0u16..=1000, 0..5)), 0..200),
            ) {
                let frames = frames_after_gaps(steps, Duration::from_millis(1));
                let end = Duration::from_millis(end_ms);
                let streamed = envelope(&frames, slots, end);
                prop_assert_eq!(streamed.columns, batch_envelope(&frames, slots, end));
            }

            #[test]
            fn frames_on_column_boundaries_stream_like_the_batch(
                // A session of k * PLOT_W ms has a column boundary every few k ms; gaps in k ms.
                k in 1u64..6000,
                steps in prop::collection::vec((0u64..40, prop::collection::vec(0u16..=1000, 2)), 0..200),
            ) {
                let frames = frames_after_gaps(steps, Duration::from_millis(k));
                let end = Duration::from_millis(k * PLOT_W);
                let streamed = envelope(&frames, 2, end);
                prop_assert_eq!(streamed.columns, batch_envelope(&frames, 2, end));
            }
        }
    }

    #[test]
    fn a_long_session_gets_one_pixel_columns() {
        let env = envelope(&[], 1, Duration::from_secs(3600));
        assert_eq!((env.column_px, env.len()), (1, PLOT_W as usize));
    }

    #[test]
    fn heights_round_to_the_nearest_pixel() {
        assert_eq!(height(0, HALF), 0);
        assert_eq!(height(24, HALF), 0);
        assert_eq!(height(25, HALF), 1);
        assert_eq!(height(1000, HALF), HALF);
    }

    #[test]
    fn bands_stack_lanes_then_heat_then_axis_and_legend() {
        let layout = headrest_idle(240);
        assert_eq!(layout.lanes.len(), 5);
        assert_eq!(
            layout.lane_band(1),
            Rect {
                x: PLOT_X,
                y: 115,
                width: PLOT_W,
                height: 42
            }
        );
        assert_eq!(layout.centre(0), 92);
        assert_eq!(layout.heat_band().y, 291);
        assert_eq!((layout.plot_bottom, layout.axis_y), (308, 312));
        assert_eq!(layout.legend_row_y(1), 364);
        assert_eq!(layout.height, 356, "no step played, no legend rows");
    }

    #[test]
    fn offsets_map_onto_the_plot_and_stop_at_its_end() {
        let layout = headrest_idle(100);
        assert_eq!(layout.x_of(Duration::ZERO), PLOT_X);
        assert_eq!(layout.x_of(Duration::from_secs(50)), PLOT_X + PLOT_W / 2);
        assert_eq!(layout.x_of(Duration::from_secs(500)), PLOT_X + PLOT_W);
    }

    #[test]
    fn ticks_are_round_and_at_most_eleven() {
        let ticks = |secs| headrest_idle(secs).ticks();
        assert_eq!(ticks(240), [0, 30, 60, 90, 120, 150, 180, 210, 240]);
        assert_eq!(ticks(900), [0, 120, 240, 360, 480, 600, 720, 840]);
        assert_eq!(ticks(100), [0, 15, 30, 45, 60, 75, 90]);
    }

    #[test]
    fn heat_bars_merge_equal_columns_and_skip_off() {
        // 69 s: 23 columns of 30 px; heat on at full for the first two columns only.
        let frames = vec![
            (Duration::ZERO, frame(&[0, 1000])),
            (Duration::from_secs(6), frame(&[0, 0])),
        ];
        let layout = Layout::new(&timeline(
            ChannelMap::new([vec![0], vec![], vec![], vec![], vec![]], Some(1)).unwrap(),
            Duration::from_secs(69),
            frames,
        ));
        // One lane: the heat lane's floor is at 70 + 44 + 18 - 2 = 130, a full bar 14 px.
        assert_eq!(
            layout.heat_bars(1),
            [Rect {
                x: PLOT_X,
                y: 116,
                width: 60,
                height: 14
            }]
        );
    }
}
